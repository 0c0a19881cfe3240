package handlers_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/upgradewatch/upgradewatch/handlers"
	"github.com/upgradewatch/upgradewatch/internal/azuritetest"
	"github.com/upgradewatch/upgradewatch/internal/findings"
	"github.com/upgradewatch/upgradewatch/internal/fleet"
	"github.com/upgradewatch/upgradewatch/internal/host"
	"github.com/upgradewatch/upgradewatch/internal/patch"
	"github.com/upgradewatch/upgradewatch/internal/policy"
	"github.com/upgradewatch/upgradewatch/internal/state"
	"github.com/upgradewatch/upgradewatch/internal/timeline"
	"github.com/upgradewatch/upgradewatch/internal/watch"
)

// demoEnd is a day after the demo timeline's last event.
var demoEnd = time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)

// The demo timeline, replayed through the handler with the demo's policy
// document (scripts/demo-policy.json, as `make demo` runs it), gives at least
// one pool in each patch status, and the pools the timeline was written for
// the verdict it was written for: GET /api/compliance answers from the
// summary rows the Sweep aggregates.
func TestDemoTimelineReachesEveryPatchStatus(t *testing.T) {
	clk := &clock{t: demoEnd}
	srv := newDemoPolicyServer(t, clk)
	for i, ev := range timeline.Demo() {
		body, err := host.NewEventGridRequest("event", "AksEvents", ev.Raw, ev.Time.Add(time.Minute), fmt.Sprintf("demo-%d", i))
		if err != nil {
			t.Fatal(err)
		}
		if code, _, sum := invokeRaw(t, srv, body); code != http.StatusOK || sum["committed"] != float64(1) {
			t.Fatalf("event %d %s: %d %v", i, ev.ID, code, sum)
		}
	}
	waitIdle(t, srv)
	if code, resp, _ := (&env{srv: srv}).invoke(t, "Sweep", timerInvocation(t, demoEnd)); code != http.StatusOK {
		t.Fatalf("sweep: %d %v", code, resp.Logs)
	}

	code, body := serve(t, srv, http.MethodGet, "/api/compliance", nil)
	t.Logf("the demo timeline's pools by status: %v", body["byStatus"])
	if code != http.StatusOK || body["clusters"] != float64(9) {
		t.Fatalf("GET /api/compliance: %d %v; want the demo's 9 clusters", code, body)
	}
	for _, st := range []string{patch.StatusUpToDate, patch.StatusAwaitingWindow, patch.StatusRolling, patch.StatusBehind,
		patch.StatusBlocked, patch.StatusFailed, patch.StatusUnmanaged, patch.StatusNotPatched, patch.StatusUnknown} {
		if byStatus(t, body, st) < 1 {
			t.Errorf("no pool %s in the demo: byStatus %v", st, body["byStatus"])
		}
	}
	want := map[string]string{
		"aks-search-uks/system": "UpToDate", "aks-search-uks/api": "Behind", "aks-search-uks/ingest": "Failed",
		"aks-ml-uks/system": "AwaitingWindow", "aks-reports-uks/system": "Blocked/KubernetesUnsupported",
		"aks-build-uks/runners": "Unmanaged", "aks-orders-neu/system": "Unknown",
		"aks-payments-weu/payments": "Rolling", "aks-analytics-eus/spark": "NotPatched",
	}
	got := map[string]string{}
	pools, _ := body["poolsNotUpToDate"].([]any)
	for _, raw := range pools {
		p := raw.(map[string]any)
		c := p["cluster"].(string)
		k := c[strings.LastIndex(c, "/")+1:] + "/" + p["pool"].(string)
		got[k] = p["status"].(string)
		if b, _ := p["blockedBy"].(string); b != "" {
			got[k] += "/" + b
		}
	}
	for k, w := range want {
		if w == "UpToDate" {
			if _, listed := got[k]; listed {
				t.Errorf("%s is listed as not up to date (%s), want UpToDate", k, got[k])
			}
			continue
		}
		if got[k] != w {
			t.Errorf("%s: %q, want %q (pools not up to date: %v)", k, got[k], w, got)
		}
	}
}

// newDemoPolicyServer is the handler with the demo's policy document, the
// finding rules and the compliance tables, on tables of its own.
func newDemoPolicyServer(t *testing.T, clk *clock) *handlers.Server {
	t.Helper()
	policies, err := policy.Load("../scripts/demo-policy.json")
	if err != nil {
		t.Fatal(err)
	}
	resolve := func(c *fleet.Cluster) (fleet.Policy, []string) {
		p, problems := policies.For(c)
		out := make([]string, len(problems))
		for i, pr := range problems {
			out[i] = pr.String()
		}
		return p, out
	}
	svc := azuritetest.Service(t, azuritetest.Endpoint(t))
	prefix := azuritetest.Prefix(t)
	store := state.New(svc, state.Options{TablePrefix: prefix, CacheSize: 100, Now: clk.now})
	t.Cleanup(store.Close)
	cat := state.NewCatalogue(svc, state.CatalogueOptions{TablePrefix: prefix, Now: clk.now})
	comp := state.NewCompliance(svc, state.ComplianceOptions{TablePrefix: prefix})
	azuritetest.DropTables(t, svc, append(append(store.Tables(), cat.Table()), comp.Tables()...)...)
	ctx := context.Background()
	for _, ensure := range []func(context.Context) error{store.EnsureTables, cat.EnsureTable, comp.EnsureTable} {
		if err := ensure(ctx); err != nil {
			t.Fatal(err)
		}
	}
	app := watch.New(store, watch.Options{Now: clk.now, Catalogue: cat, Compliance: comp, Rules: findings.Evaluator(resolve),
		Policy: func(c *fleet.Cluster) fleet.Policy { p, _ := policies.For(c); return p }})
	srv := handlers.New(app, handlers.Options{Now: clk.now})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return srv
}
