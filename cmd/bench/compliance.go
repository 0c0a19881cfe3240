package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/upgradewatch/upgradewatch/handlers"
	"github.com/upgradewatch/upgradewatch/internal/fleet"
	"github.com/upgradewatch/upgradewatch/internal/state"
	"github.com/upgradewatch/upgradewatch/internal/watch"
)

// complianceGets is how many GET /api/compliance are timed per fleet size
// (a call is about a millisecond: many calls make a steady median).
const complianceGets = 40

// complianceBench times GET /api/compliance on fleets of 100 and 10,000
// clusters: it reads one aggregate row, so the two should cost the same.
func complianceBench(c config, out io.Writer, sum *summary) error {
	fmt.Fprintln(out, "\n## compliance (GET /api/compliance from the aggregate rows)")
	fmt.Fprintln(out)
	fmt.Fprintln(out, "| fleet | first refresh ms (with the day snapshot) | refresh ms (aggregates only) | GET ms (median) | GET ms with 2 filters (median) | storage requests per GET | storage baseline ms (point read of the row) | fill time |")
	fmt.Fprintln(out, "|---|---|---|---|---|---|---|---|")
	var base complianceResult
	for _, size := range []int{100, 10000} {
		r, err := complianceFleet(c, size)
		if err != nil {
			return fmt.Errorf("compliance %d: %w", size, err)
		}
		fmt.Fprintf(out, "| %d | %.0f | %.0f | %.2f | %.2f | %.0f | %.2f | %s |\n", size, r.firstRefresh, r.refresh, r.get, r.filtered, r.reqs,
			r.raw, r.fill.Round(time.Second))
		sum.add(check{Name: fmt.Sprintf("storage requests per GET /api/compliance, %d clusters", size), Value: r.reqs})
		if base.get == 0 {
			base = r
			continue
		}
		ratio, raw := r.get/base.get, r.raw/base.raw
		fmt.Fprintf(out, "\nGET /api/compliance ratio 10,000 / 100 clusters: %.2f (goal ≤ 1.5); the same point read alone: %.2f; "+
			"GET ratio relative to storage: %.2f\n", ratio, raw, ratio/raw)
		sum.add(check{Name: "GET /api/compliance ms, 10,000 ÷ 100 clusters", Value: ratio, Op: opAtMost, Limit: 1.5})
		sum.add(check{Name: "GET /api/compliance ratio relative to the storage point read's", Value: ratio / raw, Op: opAtMost, Limit: 1.5})
	}
	return nil
}

type complianceResult struct {
	firstRefresh, refresh, get, filtered, reqs, raw float64
	fill                                            time.Duration
}

// complianceFill is a fleet filled through the app, on tables of its own.
type complianceFill struct {
	app      *watch.App
	svc      *aztables.ServiceClient
	clk      *benchClock
	prefix   string
	requests *sweepCounter
	fill     time.Duration
	close    func()
}

// complianceFleet fills a fleet through the app, lets the summaries land,
// refreshes the aggregates and times the GETs in process.
func complianceFleet(c config, size int) (complianceResult, error) {
	var res complianceResult
	f, err := fillCompliance(c, size, "benchcomp")
	if err != nil {
		return res, err
	}
	defer f.close()
	app, ctx := f.app, context.Background()
	res.fill = f.fill
	for i, into := range []*float64{&res.firstRefresh, &res.refresh} {
		t := time.Now()
		rep, err := app.RefreshComplianceNow(ctx)
		if err != nil {
			return res, err
		}
		*into = float64(time.Since(t).Microseconds()) / 1000
		if rep.Clusters != size || (i == 0) != (rep.Snapshot == "written") {
			return res, fmt.Errorf("refresh %d saw %d clusters (want %d), snapshot %q", i, rep.Clusters, size, rep.Snapshot)
		}
	}
	srv := handlers.New(app, handlers.Options{Now: f.clk.now})
	agg := f.svc.NewClient(f.prefix + state.TableComplianceFleet)
	var gets, filtered, reqs, raws []float64
	for range complianceGets {
		// The storage work of a GET alone, interleaved: Azurite's own cost
		// of a point read in a bigger table.
		t := time.Now()
		if _, err := agg.GetEntity(ctx, "agg", "fleet", nil); err != nil {
			return res, err
		}
		raws = append(raws, float64(time.Since(t).Microseconds())/1000)
		ms, n, err := timeGet(srv, "/api/compliance", f.requests)
		if err != nil {
			return res, err
		}
		gets, reqs = append(gets, ms), append(reqs, float64(n))
		if ms, _, err = timeGet(srv, "/api/compliance?status=Behind&location=westeurope", f.requests); err != nil {
			return res, err
		}
		filtered = append(filtered, ms)
	}
	res.get, res.filtered, res.reqs, res.raw = median(gets), median(filtered), median(reqs), median(raws)
	return res, nil
}

// fillCompliance fills a fleet of size clusters through the app (each an
// ARM read: four regions, ten subscriptions, one pool in three behind) and
// waits for their summaries to land; close drops the tables.
func fillCompliance(c config, size int, name string) (f *complianceFill, err error) {
	f = &complianceFill{prefix: fmt.Sprintf("%s%d", name, time.Now().UnixNano()%1e9), requests: &sweepCounter{}}
	var closers []func()
	f.close = func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	defer func() {
		if err != nil {
			f.close()
		}
	}()
	closers = append(closers, func() { dropTables(c, f.prefix) })
	svc, err := state.NewServiceClient(state.Connection{Name: "bench", ConnectionString: connString(c.endpoint)},
		state.ClientOptions{TryTimeout: 10 * time.Second, MaxRetries: 2, Counter: &f.requests.n})
	if err != nil {
		return nil, err
	}
	t0 := time.Date(2026, 11, 23, 6, 0, 0, 0, time.UTC)
	f.clk, f.svc = &benchClock{t: t0}, svc
	ctx := context.Background()
	store := state.New(svc, state.Options{TablePrefix: f.prefix, CacheSize: 2000, Now: f.clk.now})
	closers = append(closers, store.Close)
	cat := state.NewCatalogue(svc, state.CatalogueOptions{TablePrefix: f.prefix, Now: f.clk.now})
	comp := state.NewCompliance(svc, state.ComplianceOptions{TablePrefix: f.prefix})
	for _, ensure := range []func(context.Context) error{store.EnsureTables, cat.EnsureTable, comp.EnsureTable} {
		if err := ensure(ctx); err != nil {
			return nil, err
		}
	}
	f.app = watch.New(store, watch.Options{Now: f.clk.now, Catalogue: cat, Compliance: comp})
	closers = append(closers, func() { _ = f.app.Shutdown(ctx) })
	start := time.Now()
	if _, _, err = drive(8, size, func(_, i int) error { return benchARMRead(ctx, f.app, i, t0) }); err != nil {
		return nil, err
	}
	if err := f.app.WaitIdle(ctx); err != nil {
		return nil, err
	}
	f.fill = time.Since(start)
	return f, nil
}

// benchARMRead commits the ARM read of bench cluster i.
func benchARMRead(ctx context.Context, app *watch.App, i int, at time.Time) error {
	regions := []string{"westeurope", "northeurope", "eastus", "southeastasia"}
	id := fleet.ClusterID{SubscriptionID: fmt.Sprintf("6f1c2a3b-4d5e-4f60-8a71-92b3c4d5e6%02d", i%10), ResourceGroup: "rg-bench", Name: fmt.Sprintf("aks-%05d", i)}
	image := "AKSUbuntu-2204gen2containerd-202611.17.0"
	if i%3 == 0 {
		image = "AKSUbuntu-2204gen2containerd-202610.20.0"
	}
	_, err := app.Ingest(ctx, fleet.Signal{ID: fmt.Sprintf("arm-%d", i), Type: fleet.TypeARMRead, Time: at, Cluster: id,
		Kind: fleet.KindClusterUpdated, Profile: &fleet.ClusterProfile{Location: regions[i%len(regions)],
			NodeOSUpgradeChannel: "NodeImage", UpgradeChannel: "patch", KubernetesVersion: "1.32.6", ProvisioningState: "Succeeded",
			Pools: []fleet.PoolProfile{{Name: "system", OSType: "Linux", OSSKU: "Ubuntu", Count: 3, MaxSurge: "33%",
				DrainTimeoutMinutes: 30, NodeImageVersion: image, LatestNodeImageVersion: "AKSUbuntu-2204gen2containerd-202611.17.0"}}}})
	return err
}

// timeGet serves one GET in process and answers its time in ms and the
// storage requests it cost.
func timeGet(srv *handlers.Server, path string, requests *sweepCounter) (float64, int64, error) {
	before := requests.n.Load()
	rec := httptest.NewRecorder()
	t := time.Now()
	srv.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	ms := float64(time.Since(t).Microseconds()) / 1000
	if rec.Code != http.StatusOK {
		return 0, 0, fmt.Errorf("GET %s answered %d: %s", path, rec.Code, rec.Body)
	}
	return ms, requests.n.Load() - before, nil
}
