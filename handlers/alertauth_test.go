package handlers_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/upgradewatch/upgradewatch/handlers"
	"github.com/upgradewatch/upgradewatch/internal/auth"
	"github.com/upgradewatch/upgradewatch/internal/auth/authtest"
	"github.com/upgradewatch/upgradewatch/internal/fleet"
	"github.com/upgradewatch/upgradewatch/internal/state"
	"github.com/upgradewatch/upgradewatch/internal/watch"
)

const (
	alertTenant   = "9c3e1f5a-7b2d-4e8c-a6f0-1d4b7e9a2c58"
	alertAudience = "api://upgradewatch-alerts"
)

func postAlertAuth(t *testing.T, srv *handlers.Server, authz string, body []byte) (*httptest.ResponseRecorder, map[string]any) {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/api/activitylog/alert", strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, req)
	var out map[string]any
	_ = json.Unmarshal(rec.Body.Bytes(), &out)
	return rec, out
}

// With a secure webhook configured, an alert carrying only the function key
// is refused and recorded, changing nothing; the action group's Entra token
// gets it in; a token of another application does not; Entra's keys
// unreachable is a 503 the action group retries.
func TestActivityLogAlertSecureWebhook(t *testing.T) {
	clk := &clock{t: received}
	entra := authtest.New(t, "/"+alertTenant+"/v2.0", "/"+alertTenant+"/discovery/v2.0/keys")
	verifier, err := auth.NewEntraTokens(auth.EntraConfig{TenantID: alertTenant, Audiences: []string{alertAudience},
		Authority: entra.ServerURL(), V1IssuerBase: entra.ServerURL()}, auth.Options{Transport: entra.Transport(), Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	store := newStore(t, state.Options{})
	srv := newServer(store, watch.Options{}, handlers.Options{Now: clk.now, AlertTokens: verifier})
	body := readFixture(t, "activity/alert-cluster-write.json")
	good := authtest.Claims(t, "../internal/auth/testdata/entra-v1-action-group.json", entra.ServerURL()+"/"+alertTenant+"/", received, time.Hour)

	// Entra's keys unreachable: transient, the action group retries 503.
	entra.FailKeys(http.StatusServiceUnavailable)
	rec, res := postAlertAuth(t, srv, "Bearer "+entra.Sign(t, good), body)
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("Entra keys unreachable: %d %v, want 503", rec.Code, res)
	}
	entra.FailKeys(0)
	clk.set(received.Add(30 * time.Second))

	for _, tc := range []struct {
		name, authz, want string
	}{
		{"function key only", "", "no bearer token"},
		{"another application's token", "Bearer " + entra.Sign(t, withClaim(good, "appid", "04b07795-8ddb-461a-bbee-02f9e1bf7b46")), "not to Azure Monitor action groups"},
		{"another tenant's token", "Bearer " + entra.Sign(t, withClaim(good, "iss", "https://sts.windows.net/0d2e4f6a-8b1c-4d3e-9f5a-7b6c8d0e2f14/")), "not by tenant"},
		{"forged", "Bearer " + entra.Forge(t, good), "signature"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec, res := postAlertAuth(t, srv, tc.authz, body)
			if rec.Code != http.StatusUnauthorized || res["result"] != "rejected" || !strings.Contains(res["reason"].(string), tc.want) {
				t.Fatalf("got %d %v, want 401 rejected mentioning %q", rec.Code, res, tc.want)
			}
		})
	}
	rejs, err := store.Rejections(context.Background(), received)
	if err != nil {
		t.Fatal(err)
	}
	if len(rejs) == 0 || !strings.Contains(rejs[0].Reason, "authentication") || !strings.Contains(rejs[0].Body, "managedClusters") {
		t.Errorf("refused alerts not recorded with their body: %+v", rejs)
	}
	id, err := fleet.NewClusterID("8f1c2b3a-4d5e-4f60-9a7b-1c2d3e4f5a6b", "rg-platform-weu", "aks-prod-weu") // the fixture's
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Cluster(context.Background(), id); !errors.Is(err, state.ErrNotFound) {
		t.Fatalf("refused alerts created state: %v", err)
	}

	rec, res = postAlertAuth(t, srv, "Bearer "+entra.Sign(t, good), body)
	if rec.Code != http.StatusOK || res["result"] != "committed" {
		t.Fatalf("the action group's token: %d %v, want 200 committed", rec.Code, res)
	}
	if c, err := store.Cluster(context.Background(), id); err != nil || len(c.Activities) != 1 {
		t.Errorf("the accepted alert's cluster: %v, want one activity", err)
	}
}
