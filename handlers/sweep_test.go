package handlers_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/upgradewatch/upgradewatch/handlers"
	"github.com/upgradewatch/upgradewatch/internal/findings"
	"github.com/upgradewatch/upgradewatch/internal/fleet"
	"github.com/upgradewatch/upgradewatch/internal/host"
	"github.com/upgradewatch/upgradewatch/internal/state"
	"github.com/upgradewatch/upgradewatch/internal/watch"
)

func newFindingsEnv(t *testing.T, clk *clock, p fleet.Policy) (*handlers.Server, *state.Store) {
	t.Helper()
	store := newStore(t, state.Options{Now: clk.now})
	return newServer(store, watch.Options{Rules: findings.Evaluator(func(*fleet.Cluster) (fleet.Policy, []string) { return p, nil })},
		handlers.Options{Now: clk.now}), store
}

// timerInvocation is what the host POSTs to /Sweep.
func timerInvocation(t *testing.T, at time.Time) []byte {
	t.Helper()
	b, _ := json.Marshal(map[string]any{
		"Data": map[string]any{"timer": map[string]any{
			"Schedule":       map[string]any{"AdjustForDST": true},
			"ScheduleStatus": map[string]any{"Last": at.Add(-5 * time.Minute).Format(time.RFC3339), "Next": at.Add(5 * time.Minute).Format(time.RFC3339), "LastUpdated": at.Format(time.RFC3339)},
			"IsPastDue":      false,
		}},
		"Metadata": map[string]any{"sys": map[string]any{"MethodName": "Sweep", "UtcNow": at.Format(time.RFC3339), "RandGuid": "3f2b1c0d-9e8f-4a7b-8c6d-5e4f3a2b1c0d"}},
	})
	return b
}

// A roll that outlives its expected duration is reported by the sweep, once,
// and is listed fleet-wide and per cluster, filterable.
func TestSweepOpensStallAndFindingsAPI(t *testing.T) {
	start := time.Date(2026, 11, 22, 1, 0, 0, 0, time.UTC)
	clk := &clock{t: start}
	srv, _ := newFindingsEnv(t, clk, fleet.Policy{NodeOSChannel: "NodeImage", Source: "test policy"})

	// An ARM-like profile (via a resource notification) on Unmanaged, then a roll.
	profile := []byte(`{"id":"c0d1e2f3-a4b5-4c6d-8e7f-9a0b1c2d3e4f","topic":"/subscriptions/8f1c2b3a-4d5e-4f60-9a7b-1c2d3e4f5a6b/resourceGroups/rg-platform-weu/providers/Microsoft.ContainerService/managedClusters/aks-prod-weu",
	  "subject":"/subscriptions/8f1c2b3a-4d5e-4f60-9a7b-1c2d3e4f5a6b/resourceGroups/rg-platform-weu/providers/Microsoft.ContainerService/managedClusters/aks-prod-weu",
	  "eventType":"Microsoft.ResourceNotifications.Resources.CreatedOrUpdated","eventTime":"2026-11-21T18:00:00Z","dataVersion":"1","metadataVersion":"1",
	  "data":{"resourceInfo":{"id":"/subscriptions/8f1c2b3a-4d5e-4f60-9a7b-1c2d3e4f5a6b/resourceGroups/rg-platform-weu/providers/Microsoft.ContainerService/managedClusters/aks-prod-weu",
	    "name":"aks-prod-weu","type":"Microsoft.ContainerService/managedClusters","location":"westeurope",
	    "properties":{"kubernetesVersion":"1.31.9","provisioningState":"Succeeded","autoUpgradeProfile":{"upgradeChannel":"patch","nodeOSUpgradeChannel":"Unmanaged"},
	      "agentPoolProfiles":[{"name":"system","count":3,"vmSize":"Standard_D4ds_v5","osType":"Linux","osSKU":"Ubuntu","mode":"System",
	        "nodeImageVersion":"AKSUbuntu-2204gen2containerd-202611.10.0","upgradeSettings":{"maxSurge":"33%","drainTimeoutInMinutes":30}}]}},
	    "operationalInfo":{"resourceEventTime":"2026-11-21T18:00:00Z"},"apiVersion":"2025-10-01"}}`)
	body, err := host.NewEventGridRequest("event", "AksEvents", profile, start, "1d2c3b4a-5e6f-4a7b-8c9d-0e1f2a3b4c5d")
	if err != nil {
		t.Fatal(err)
	}
	if code, _, sum := invokeRaw(t, srv, body); code != 200 || sum["committed"] != float64(1) {
		t.Fatalf("profile: %d %v", code, sum)
	}
	if code, _, _ := invokeRaw(t, srv, rollingEvent(t, "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d", "RollingStarted", "system", start)); code != 200 {
		t.Fatalf("started: %d", code)
	}

	// The drift is open at once, from the commit itself.
	code, list := serve(t, srv, http.MethodGet, "/api/findings?code=ChannelDrift", nil)
	if code != 200 || list["count"] != float64(1) {
		t.Fatalf("findings after the profile: %d %v", code, list)
	}

	sweep := func(at time.Time) map[string]any {
		clk.set(at)
		_, resp, sum := (&env{srv: srv}).invoke(t, "Sweep", timerInvocation(t, at))
		_ = resp
		return sum
	}
	if sum := sweep(start.Add(time.Hour)); sum["due"] != float64(0) {
		t.Errorf("sweep 1 h in: %v, want nothing due", sum)
	}
	if sum := sweep(start.Add(150 * time.Minute)); sum["opened"] != float64(1) || sum["evaluated"] != float64(1) {
		t.Errorf("sweep past the deadline: %v, want the stall opened", sum)
	}
	if sum := sweep(start.Add(155 * time.Minute)); sum["opened"] != float64(0) || sum["due"] != float64(0) {
		t.Errorf("the next sweep: %v, want nothing due and nothing opened again", sum)
	}

	code, list = serve(t, srv, http.MethodGet, "/api/findings?minSeverity=error", nil)
	fs, _ := list["findings"].([]any)
	if code != 200 || len(fs) != 1 || fs[0].(map[string]any)["code"] != fleet.CodeUpgradeStalled {
		t.Fatalf("error findings: %d %v", code, list)
	}
	if c := fs[0].(map[string]any)["cluster"]; c != prodCluster {
		t.Errorf("finding cluster %v", c)
	}
	if code, list = serve(t, srv, http.MethodGet, "/api/findings?severity=Info", nil); code != 200 || list["count"] != float64(1) {
		t.Errorf("info findings (RebootsUnmanaged): %d %v", code, list)
	}
	if code, _ = serve(t, srv, http.MethodGet, "/api/findings?status=resolved", nil); code != http.StatusBadRequest {
		t.Errorf("fleet-wide resolved list: %d, want 400 pointing at the per-cluster route", code)
	}

	// The roll ends: the stall resolves; per cluster, status=all lists both.
	clk.set(start.Add(160 * time.Minute))
	if code, _, _ := invokeRaw(t, srv, rollingEvent(t, "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9", "RollingSucceeded", "system", start.Add(158*time.Minute))); code != 200 {
		t.Fatal("succeeded")
	}
	code, list = serve(t, srv, http.MethodGet, prodAPI+"/findings?status=all&code=UpgradeStalled", nil)
	fs, _ = list["findings"].([]any)
	if code != 200 || len(fs) != 1 || fs[0].(map[string]any)["status"] != fleet.FindingResolved || fs[0].(map[string]any)["evidence"] == nil {
		t.Errorf("cluster findings: %d %v", code, list)
	}
	if code, list = serve(t, srv, http.MethodGet, "/api/findings?code=UpgradeStalled", nil); list["count"] != float64(0) {
		t.Errorf("resolved stall still listed as open: %d %v", code, list)
	}
}
