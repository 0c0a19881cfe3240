package handlers_test

import (
	"context"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/upgradewatch/upgradewatch/handlers"
	"github.com/upgradewatch/upgradewatch/internal/azuritetest"
	"github.com/upgradewatch/upgradewatch/internal/dashboard"
	"github.com/upgradewatch/upgradewatch/internal/findings"
	"github.com/upgradewatch/upgradewatch/internal/fleet"
	"github.com/upgradewatch/upgradewatch/internal/host"
	"github.com/upgradewatch/upgradewatch/internal/outbox"
	"github.com/upgradewatch/upgradewatch/internal/state"
	"github.com/upgradewatch/upgradewatch/internal/timeline"
	"github.com/upgradewatch/upgradewatch/internal/watch"
)

// dashNow is the clock of the dashboard tests: the day after the demo
// timeline's last event.
var dashNow = time.Date(2026, 11, 24, 9, 30, 0, 0, time.UTC)

// Demo cluster IDs (internal/timeline's Demo).
var (
	demoPayments = fleet.ClusterID{SubscriptionID: "3f2b8c1e-7d4a-4e29-9b6f-0a1c5d8e2f47", ResourceGroup: "rg-payments-prod", Name: "aks-payments-weu"}
	demoCheckout = fleet.ClusterID{SubscriptionID: "3f2b8c1e-7d4a-4e29-9b6f-0a1c5d8e2f47", ResourceGroup: "rg-checkout-prod", Name: "aks-checkout-neu"}
)

// newDashServer is the handler with the finding rules, over a store and an
// image catalogue on tables of their own.
func newDashServer(t testing.TB) *handlers.Server {
	t.Helper()
	svc := azuritetest.Service(t, azuritetest.Endpoint(t))
	prefix := azuritetest.Prefix(t)
	clock := func() time.Time { return dashNow }
	store := state.New(svc, state.Options{TablePrefix: prefix, CacheSize: 100, Now: clock})
	t.Cleanup(store.Close)
	cat := state.NewCatalogue(svc, state.CatalogueOptions{TablePrefix: prefix, Now: clock})
	azuritetest.DropTables(t, svc, append(store.Tables(), cat.Table())...)
	ctx := context.Background()
	if err := store.EnsureTables(ctx); err != nil {
		t.Fatal(err)
	}
	if err := cat.EnsureTable(ctx); err != nil {
		t.Fatal(err)
	}
	pol := fleet.Policy{NodeOSChannel: fleet.ChannelNodeImage, UpgradeChannel: fleet.UpgradePatch, Source: "defaults"}.WithDefaults()
	rules := outbox.Evaluator(findings.Evaluator(func(*fleet.Cluster) (fleet.Policy, []string) { return pol, nil }),
		outbox.Config{Grace: outbox.DefaultGrace()})
	srv := newServer(store, watch.Options{Rules: rules, Catalogue: cat}, handlers.Options{Now: clock})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return srv
}

// feedDemo delivers the demo timeline, in order, as the host would.
func feedDemo(t testing.TB, srv *handlers.Server) {
	t.Helper()
	for i, ev := range timeline.Demo() {
		body, err := host.NewEventGridRequest("event", "AksEvents", ev.Raw, ev.Time.Add(time.Minute), fmt.Sprintf("dash-%d", i))
		if err != nil {
			t.Fatal(err)
		}
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/AksEvents", strings.NewReader(string(body))))
		if rec.Code != http.StatusOK {
			t.Fatalf("event %s: %d %s", ev.ID, rec.Code, rec.Body.String())
		}
	}
	postNodeFixture(t, srv, demoPayments, "dashboard/payments-nodes.json")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
}

// postNodeFixture posts a node snapshot fixture for the cluster, as node-reporter does.
func postNodeFixture(t testing.TB, srv *handlers.Server, id fleet.ClusterID, fixture string) {
	t.Helper()
	path := "/api/clusters/" + id.SubscriptionID + "/" + id.ResourceGroup + "/" + id.Name + "/nodes"
	b, err := os.ReadFile("testdata/" + fixture)
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(string(b)))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("snapshot %s: %d %s", fixture, rec.Code, rec.Body.String())
	}
}

// page GETs a dashboard path from loopback, as a browser on the machine
// would, and checks the headers every answer carries.
func page(t testing.TB, srv *handlers.Server, path string) (int, string, http.Header) {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	req.RemoteAddr, req.Host = "127.0.0.1:53211", "127.0.0.1:7071"
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, req)
	if got := rec.Header().Get("Content-Security-Policy"); got != dashboard.CSP {
		t.Errorf("%s: Content-Security-Policy %q, want %q", path, got, dashboard.CSP)
	}
	if rec.Header().Get("X-Content-Type-Options") != "nosniff" || rec.Header().Get("X-Frame-Options") != "DENY" {
		t.Errorf("%s: security headers missing: %v", path, rec.Header())
	}
	return rec.Code, rec.Body.String(), rec.Header()
}

func mustPage(t testing.TB, srv *handlers.Server, path string) string {
	t.Helper()
	code, body, h := page(t, srv, path)
	if code != http.StatusOK || !strings.HasPrefix(h.Get("Content-Type"), "text/html") {
		t.Fatalf("GET %s = %d %s\n%s", path, code, h.Get("Content-Type"), body)
	}
	if !strings.Contains(body, `Data as of <time datetime="2026-11-24T09:30:00Z"`) {
		t.Errorf("GET %s: no 'data as of' stamp", path)
	}
	return body
}

// rowsOf returns the rows of the table with the id, one string per row
// (its cells' text, tags stripped, separated by |).
func rowsOf(t testing.TB, body, id string) []string {
	t.Helper()
	start := strings.Index(body, `<table id="`+id+`"`)
	if start < 0 {
		return nil
	}
	end := strings.Index(body[start:], "</table>")
	tbody := body[start : start+end]
	tbody = tbody[strings.Index(tbody, "<tbody>"):]
	tags := regexp.MustCompile(`<[^>]+>`)
	var rows []string
	for _, tr := range strings.Split(tbody, "<tr>")[1:] {
		cells := strings.Split(tr, "</td>")
		for i := range cells {
			cells[i] = strings.TrimSpace(tags.ReplaceAllString(cells[i], ""))
		}
		rows = append(rows, strings.Join(cells[:len(cells)-1], "|"))
	}
	return rows
}

func TestDashboardEmptyFleet(t *testing.T) {
	srv := newDashServer(t)
	body := mustPage(t, srv, "/api/dashboard")
	for _, want := range []string{"<h1>Fleet</h1>", "no cluster known yet", "No daily compliance snapshots yet"} {
		if !strings.Contains(body, want) {
			t.Errorf("fleet page lacks %q", want)
		}
	}
	if body := mustPage(t, srv, "/api/dashboard/clusters"); !strings.Contains(body, "0 of 0 clusters: no cluster matches") {
		t.Errorf("clusters page of an empty fleet:\n%s", body)
	}
	if body := mustPage(t, srv, "/api/dashboard/findings"); !strings.Contains(body, "0 of 0 open findings: no open finding matches") {
		t.Errorf("findings page of an empty fleet:\n%s", body)
	}
	code, body, _ := page(t, srv, "/api/dashboard/clusters/3f2b8c1e-7d4a-4e29-9b6f-0a1c5d8e2f47/rg-none/aks-none")
	if code != http.StatusNotFound || !strings.Contains(body, "no state for") {
		t.Errorf("unknown cluster: %d\n%s", code, body)
	}
}

// One cluster from one rolling event: one row, its page, its pool.
func TestDashboardOneCluster(t *testing.T) {
	srv := newDashServer(t)
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/AksEvents", strings.NewReader(string(readFixture(t, "envelope-eventgrid-object.json")))))
	if rec.Code != http.StatusOK {
		t.Fatalf("event: %d %s", rec.Code, rec.Body.String())
	}
	rows := rowsOf(t, mustPage(t, srv, "/api/dashboard/clusters"), "clusters")
	if len(rows) != 1 || !strings.HasPrefix(rows[0], "aks-payments-weu|6f1c2a3b-4d5e-4f60-8a71-92b3c4d5e6f7|rg-payments-prod|") {
		t.Fatalf("clusters rows %q, want the one cluster", rows)
	}
	body := mustPage(t, srv, "/api/dashboard/clusters/6f1c2a3b-4d5e-4f60-8a71-92b3c4d5e6f7/rg-payments-prod/aks-payments-weu")
	if pools := rowsOf(t, body, "pools"); len(pools) != 1 || !strings.HasPrefix(pools[0], "system|") {
		t.Errorf("pools rows %q, want system", pools)
	}
	if ops := rowsOf(t, body, "history"); len(ops) != 1 || !strings.Contains(ops[0], "InProgress") {
		t.Errorf("history rows %q, want one operation in progress", ops)
	}
}

// The demo fleet: every page, its figures against the data fed in, the
// filters, the sorts and the CSV downloads.
func TestDashboardDemoFleet(t *testing.T) {
	srv := newDashServer(t)
	feedDemo(t, srv)
	open := openFindings(t, srv)

	t.Run("clusters", func(t *testing.T) {
		body := mustPage(t, srv, "/api/dashboard/clusters")
		rows := rowsOf(t, body, "clusters")
		if len(rows) != 9 {
			t.Fatalf("%d rows, want the demo's 9 clusters: %q", len(rows), rows)
		}
		for _, name := range []string{"aks-payments-weu", "aks-checkout-neu", "aks-analytics-eus", "aks-platform-wus2"} {
			if !strings.Contains(body, `<a href="/api/dashboard/clusters/`) || !strings.Contains(body, ">"+name+"</a>") {
				t.Errorf("no link to %s", name)
			}
		}
		filtered := rowsOf(t, mustPage(t, srv, "/api/dashboard/clusters?subscription="+demoPayments.SubscriptionID), "clusters")
		if len(filtered) != 5 {
			t.Errorf("filtered by the payments subscription: %q, want payments, checkout, search, build and orders", filtered)
		}
		sorted := rowsOf(t, mustPage(t, srv, "/api/dashboard/clusters?sort=-cluster"), "clusters")
		if !strings.HasPrefix(sorted[0], "aks-search-uks|") || !strings.HasPrefix(sorted[8], "aks-analytics-eus|") {
			t.Errorf("sorted by name descending: %q", sorted)
		}
	})
	t.Run("cluster", func(t *testing.T) {
		body := mustPage(t, srv, dashboard.ClusterHref(demoPayments))
		pools := rowsOf(t, body, "pools")
		if len(pools) != 2 || !strings.HasPrefix(pools[0], "payments|") || !strings.HasPrefix(pools[1], "system|") {
			t.Errorf("pools %q, want payments and system", pools)
		}
		ops := rowsOf(t, body, "history")
		inProgress := 0
		for _, o := range ops {
			if strings.Contains(o, "|InProgress|") {
				inProgress++
			}
		}
		if len(ops) < 5 || inProgress != 1 {
			t.Errorf("history %q: want the demo's weekly rolls and the payments roll that never ended", ops)
		}
		nodes := rowsOf(t, body, "nodes")
		quarantined := 0
		for _, n := range nodes {
			if strings.Contains(n, "|yes|") {
				quarantined++
			}
		}
		if len(nodes) != 9 || quarantined != 1 {
			t.Errorf("nodes %q: want the snapshot's 9 nodes, one quarantined", nodes)
		}
		for _, want := range []string{`<svg xmlns="http://www.w3.org/2000/svg"`, `id="windowlog"`, "Operation history",
			"https://github.com/Azure/AgentBaker/blob/master/vhdbuilder/release-notes/"} {
			if !strings.Contains(body, want) {
				t.Errorf("cluster page lacks %q", want)
			}
		}
	})
	t.Run("findings", func(t *testing.T) {
		body := mustPage(t, srv, "/api/dashboard/findings")
		rows := rowsOf(t, body, "findings")
		if len(rows) != open || open == 0 {
			t.Fatalf("%d rows, want the %d open findings of GET /api/findings", len(rows), open)
		}
		if !strings.Contains(body, `href="`+dashboard.ClusterHref(demoCheckout)+`#findings"`) {
			t.Errorf("findings do not link to their cluster")
		}
		errs := rowsOf(t, mustPage(t, srv, "/api/dashboard/findings?severity=error"), "findings")
		for _, r := range errs {
			if !strings.HasPrefix(r, "Error|") {
				t.Errorf("severity=error lists %q", r)
			}
		}
	})
	t.Run("csv", func(t *testing.T) {
		code, body, h := page(t, srv, "/api/dashboard/clusters?format=csv&sort=cluster")
		if code != http.StatusOK || h.Get("Content-Type") != "text/csv; charset=utf-8" {
			t.Fatalf("csv: %d %s", code, h.Get("Content-Type"))
		}
		recs, err := csv.NewReader(strings.NewReader(body)).ReadAll()
		if err != nil || len(recs) != 10 || recs[0][0] != "cluster" || recs[1][0] != "aks-analytics-eus" {
			t.Errorf("csv %q (%v), want a header and the 9 clusters by name", recs, err)
		}
		code, body, _ = page(t, srv, dashboard.ClusterHref(demoPayments)+"?format=csv&table=history")
		if recs, err := csv.NewReader(strings.NewReader(body)).ReadAll(); code != 200 || err != nil || recs[0][0] != "pool" {
			t.Errorf("history csv: %d %v %q", code, err, body)
		}
	})
	t.Run("fleet", func(t *testing.T) {
		body := mustPage(t, srv, "/api/dashboard")
		if grid := rowsOf(t, body, "grid"); len(grid) != 9 {
			t.Errorf("grid %q, want 9 clusters", grid)
		}
		if !strings.Contains(body, `<dt>Clusters</dt><dd><a href="/api/dashboard/clusters">9</a>`) {
			t.Errorf("fleet page does not count 9 clusters")
		}
	})
}

func openFindings(t *testing.T, srv *handlers.Server) int {
	t.Helper()
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/findings", nil))
	var out struct{ Count int }
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || rec.Code != 200 {
		t.Fatalf("GET /api/findings: %d %v", rec.Code, err)
	}
	return out.Count
}

// What comes from outside (a reporter's node labels, kernel strings, a
// Ready condition) is escaped, never markup.
func TestDashboardHostileNamesEscaped(t *testing.T) {
	srv := newDashServer(t)
	postNodeFixture(t, srv, fleet.ClusterID{SubscriptionID: "6f1c2a3b-4d5e-4f60-8a71-92b3c4d5e6f7", ResourceGroup: "rg-payments-prod", Name: "aks-payments-weu"},
		"dashboard/hostile-nodes.json")
	body := mustPage(t, srv, "/api/dashboard/clusters/6f1c2a3b-4d5e-4f60-8a71-92b3c4d5e6f7/rg-payments-prod/aks-payments-weu")
	if strings.Contains(body, "<script>alert") || strings.Contains(body, "<img src=x") {
		t.Fatalf("hostile input rendered as markup:\n%s", body)
	}
	if !strings.Contains(body, "&lt;script&gt;alert(&#34;kernel&#34;)&lt;/script&gt;") {
		t.Errorf("the kernel string is not shown escaped")
	}
	_, csvBody, _ := page(t, srv, "/api/dashboard/clusters/6f1c2a3b-4d5e-4f60-8a71-92b3c4d5e6f7/rg-payments-prod/aks-payments-weu?format=csv&table=nodes")
	if !strings.Contains(csvBody, `<script>alert(""kernel"")</script>`) {
		t.Errorf("the CSV does not carry the kernel string as data:\n%s", csvBody)
	}
}

// Loopback is open; from elsewhere only App Service Authentication's
// principal opens the pages; a function key never reaches a page.
func TestDashboardAccess(t *testing.T) {
	srv := newDashServer(t)
	principal := base64.StdEncoding.EncodeToString([]byte(`{"auth_typ":"aad","claims":[{"typ":"name","val":"Dana"}]}`))
	cases := []struct {
		name    string
		remote  string
		host    string
		headers map[string]string
		want    int
	}{
		{"loopback", "127.0.0.1:4000", "localhost:7071", nil, 200},
		{"ipv6 loopback", "[::1]:4000", "[::1]:7071", nil, 200},
		{"remote without sign-in", "203.0.113.9:4000", "upgradewatch.azurewebsites.net", nil, 401},
		{"forwarded by the host in Azure", "127.0.0.1:4000", "upgradewatch.azurewebsites.net",
			map[string]string{"X-Forwarded-For": "203.0.113.9:51234"}, 401},
		{"loopback peer, loopback host, forwarded", "127.0.0.1:4000", "127.0.0.1:7071", map[string]string{"X-ARR-LOG-ID": "x"}, 401},
		{"signed in", "127.0.0.1:4000", "upgradewatch.azurewebsites.net",
			map[string]string{"X-Forwarded-For": "203.0.113.9", "X-MS-CLIENT-PRINCIPAL": principal, "X-MS-CLIENT-PRINCIPAL-NAME": "dana@contoso.com"}, 200},
		{"forged principal", "203.0.113.9:4000", "upgradewatch.azurewebsites.net", map[string]string{"X-MS-CLIENT-PRINCIPAL": "not-base64!"}, 401},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "/api/dashboard/clusters?code=s3cr3t-function-key", nil)
			req.RemoteAddr, req.Host = tc.remote, tc.host
			for k, v := range tc.headers {
				req.Header.Set(k, v)
			}
			rec := httptest.NewRecorder()
			srv.ServeHTTP(rec, req)
			if rec.Code != tc.want {
				t.Fatalf("status %d, want %d\n%s", rec.Code, tc.want, rec.Body.String())
			}
			if strings.Contains(rec.Body.String(), "s3cr3t") {
				t.Errorf("the function key appears in the page")
			}
			if tc.want == 401 && !strings.Contains(rec.Body.String(), "App Service Authentication") {
				t.Errorf("401 without a clear message: %s", rec.Body.String())
			}
			if tc.name == "signed in" && !strings.Contains(rec.Body.String(), "signed in as dana@contoso.com") {
				t.Errorf("the signed-in user is not shown")
			}
		})
	}
}

// Bad input gets a clear 400, not a silently different page.
func TestDashboardBadQueries(t *testing.T) {
	srv := newDashServer(t)
	cases := []struct{ path, want string }{
		{"/api/dashboard/clusters?status=Sideways", "status must be one of Failed"},
		{"/api/dashboard/clusters?sort=colour", `has no column "colour"`},
		{"/api/dashboard/findings?severity=loud", "severity must be one of Critical"},
		{"/api/dashboard/clusters?format=csv&table=nope", `no table "nope"`},
		{"/api/dashboard/clusters?format=pdf", "format must be html or csv"},
		{"/api/dashboard/clusters/not-a-guid/rg/aks", "subscription"},
	}
	for _, tc := range cases {
		code, body, _ := page(t, srv, tc.path)
		if code != http.StatusBadRequest || !strings.Contains(body, template.HTMLEscapeString(tc.want)) {
			t.Errorf("GET %s = %d, want 400 saying %q\n%s", tc.path, code, tc.want, body)
		}
	}
	code, body, h := page(t, srv, "/api/dashboard/static/style.css")
	if code != 200 || h.Get("Content-Type") != "text/css; charset=utf-8" || !strings.Contains(body, ".st-Failed") {
		t.Errorf("style.css: %d %s", code, h.Get("Content-Type"))
	}
	if code, _, _ := page(t, srv, "/api/dashboard/static/..%2Fpage.html"); code != http.StatusNotFound {
		t.Errorf("a path outside the assets: %d, want 404", code)
	}
}
