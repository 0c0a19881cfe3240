package main

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/upgradewatch/upgradewatch/internal/azuritetest"
	"github.com/upgradewatch/upgradewatch/internal/state"
	"github.com/upgradewatch/upgradewatch/internal/timeline"
)

// The built binary serves the dashboard as the host forwards it: pages with
// the strict CSP, their embedded assets, open to loopback and closed to a
// request the front end forwarded without a signed-in principal.
func TestDashboardServedByTheBinary(t *testing.T) {
	ep := azuritetest.Endpoint(t)
	svc := azuritetest.Service(t, ep)
	prefix := azuritetest.Prefix(t)
	azuritetest.DropTables(t, svc, prefix+state.TableFleet, prefix+state.TableIndex, prefix+state.TableRejected,
		prefix+state.TableCatalogue, prefix+state.TableCompliance, prefix+state.TableComplianceFleet)
	p := startHandler(t, ep, prefix)
	for _, ev := range timeline.Demo()[:12] {
		if code, _ := deliver(t, p.URL, ev.Raw); code != http.StatusOK {
			t.Fatalf("event %s: %d", ev.ID, code)
		}
	}
	get := func(path string, header ...string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, p.URL+path, nil)
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	for _, path := range []string{"/api/dashboard", "/api/dashboard/clusters", "/api/dashboard/findings"} {
		resp, body := get(path)
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") ||
			!strings.HasPrefix(resp.Header.Get("Content-Security-Policy"), "default-src 'none'") {
			t.Errorf("GET %s: %d %v", path, resp.StatusCode, resp.Header)
		}
		if !strings.Contains(body, "Data as of") {
			t.Errorf("GET %s has no 'data as of'", path)
		}
	}
	if resp, body := get("/api/dashboard/clusters"); !strings.Contains(body, ">aks-payments-weu</a>") {
		t.Errorf("the clusters page does not list the demo's first cluster: %d", resp.StatusCode)
	}
	if resp, body := get("/api/dashboard/static/sort.js"); resp.StatusCode != 200 || !strings.Contains(body, "aria-sort") {
		t.Errorf("sort.js: %d", resp.StatusCode)
	}
	if resp, _ := get("/api/dashboard", "X-Forwarded-For", "203.0.113.9", "X-ARR-LOG-ID", "8d1e"); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("forwarded without sign-in: %d, want 401", resp.StatusCode)
	}
}
