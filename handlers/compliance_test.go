package handlers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/upgradewatch/upgradewatch/handlers"
	"github.com/upgradewatch/upgradewatch/internal/azuritetest"
	"github.com/upgradewatch/upgradewatch/internal/findings"
	"github.com/upgradewatch/upgradewatch/internal/fleet"
	"github.com/upgradewatch/upgradewatch/internal/state"
	"github.com/upgradewatch/upgradewatch/internal/watch"
)

// complianceEnv is the handler over a store, an image catalogue and a
// compliance table on tables of their own, with the finding rules on (the
// Sweep's due evaluations need them) and a count of storage requests.
type complianceEnv struct {
	srv      *handlers.Server
	app      *watch.App
	svc      *aztables.ServiceClient
	prefix   string
	requests *atomic.Int64
}

// newComplianceEnv builds one instance; prefix "" makes fresh tables, a
// prefix shares another instance's tables (a second process).
func newComplianceEnv(t *testing.T, clk *clock, prefix string) *complianceEnv {
	t.Helper()
	ep := azuritetest.Endpoint(t)
	var n atomic.Int64
	svc, err := state.NewServiceClient(state.Connection{Name: "test", ConnectionString: azuritetest.ConnectionString(ep)},
		state.ClientOptions{TryTimeout: 5 * time.Second, MaxRetries: 1, Counter: &n})
	if err != nil {
		t.Fatal(err)
	}
	fresh := prefix == ""
	if fresh {
		prefix = azuritetest.Prefix(t)
	}
	store := state.New(svc, state.Options{TablePrefix: prefix, CacheSize: 100, Now: clk.now})
	t.Cleanup(store.Close)
	cat := state.NewCatalogue(svc, state.CatalogueOptions{TablePrefix: prefix, Now: clk.now})
	comp := state.NewCompliance(svc, state.ComplianceOptions{TablePrefix: prefix})
	if fresh {
		azuritetest.DropTables(t, svc, append(append(store.Tables(), cat.Table()), comp.Tables()...)...)
		ctx := context.Background()
		for _, ensure := range []func(context.Context) error{store.EnsureTables, cat.EnsureTable, comp.EnsureTable} {
			if err := ensure(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	pol := fleet.Policy{NodeOSChannel: fleet.ChannelNodeImage, Source: "test policy"}
	app := watch.New(store, watch.Options{Now: clk.now, Catalogue: cat, Compliance: comp,
		Rules:  findings.Evaluator(func(*fleet.Cluster) (fleet.Policy, []string) { return pol, nil }),
		Policy: func(*fleet.Cluster) fleet.Policy { return pol }})
	srv := handlers.New(app, handlers.Options{Now: clk.now})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return &complianceEnv{srv: srv, app: app, svc: svc, prefix: prefix, requests: &n}
}

const (
	subWEU  = "7f3c2a91-5b4e-4d1f-9e8a-2c6b0d4f1a37"
	subEUS  = "2b9d4e6f-8a1c-4e3b-9d5f-7a2c4e6b8d0f"
	imgOld  = "AKSUbuntu-2204gen2containerd-202604.07.0"
	imgNew  = "AKSUbuntu-2204gen2containerd-202604.22.0"
	prodWEU = "/subscriptions/7f3c2a91-5b4e-4d1f-9e8a-2c6b0d4f1a37/resourceGroups/rg-aks-weu-prod/providers/Microsoft.ContainerService/managedClusters/aks-weu-prod-01"
)

// ingestFixtures delivers the two West Europe clusters of testdata/patch:
// aks-weu-shop-02 on 202604.22.0 (seen 24 April) and aks-weu-prod-01 whose
// system pool still runs 202604.07.0 (Behind on 6 May).
func (e *complianceEnv) ingestFixtures(t *testing.T, at time.Time) {
	t.Helper()
	for _, fx := range []string{"patch/eg-cluster-weu-shop-02-newer-image.json", "patch/eg-cluster-weu-prod-01.json"} {
		if code, _, sum := invokeRaw(t, e.srv, eventEnvelope(t, fx, at)); code != http.StatusOK || sum["committed"] != float64(1) {
			t.Fatalf("%s: %d %v", fx, code, sum)
		}
	}
}

// ingestGenerated adds n East US clusters of another subscription, each
// with one Ubuntu pool on the image its ARM upgrade profile calls newest.
func (e *complianceEnv) ingestGenerated(t *testing.T, from, n int, at time.Time) {
	t.Helper()
	for i := from; i < from+n; i++ {
		id := fleet.ClusterID{SubscriptionID: subEUS, ResourceGroup: "rg-aks-eus", Name: fmt.Sprintf("aks-eus-%03d", i)}
		e.armRead(t, id, "eastus", imgNew, imgNew, at)
	}
}

// armRead commits what an ARM read of a cluster with one Ubuntu pool says:
// its image and the newest its upgrade profile offers.
func (e *complianceEnv) armRead(t *testing.T, id fleet.ClusterID, location, image, latest string, at time.Time) {
	t.Helper()
	_, err := e.app.Ingest(context.Background(), fleet.Signal{ID: "arm-read-" + id.Name + at.Format(time.RFC3339), Type: fleet.TypeARMRead,
		Source: id.ResourceID(), Time: at, Cluster: id, Kind: fleet.KindClusterUpdated, Profile: &fleet.ClusterProfile{
			Location: location, KubernetesVersion: "1.33.5", UpgradeChannel: "patch", NodeOSUpgradeChannel: "NodeImage",
			ProvisioningState: "Succeeded", Pools: []fleet.PoolProfile{{Name: "system", Mode: "System", OSType: "Linux", OSSKU: "Ubuntu",
				VMSize: "Standard_D4ds_v5", Count: 3, NodeImageVersion: image, LatestNodeImageVersion: latest}}}})
	if err != nil {
		t.Fatalf("%s: %v", id.Name, err)
	}
}

// sweep runs the timer function and answers its compliance report.
func (e *complianceEnv) sweep(t *testing.T, at time.Time) map[string]any {
	t.Helper()
	waitIdle(t, e.srv)
	code, resp, sum := (&env{srv: e.srv}).invoke(t, "Sweep", timerInvocation(t, at))
	if code != http.StatusOK {
		t.Fatalf("sweep: %d %v", code, resp.Logs)
	}
	c, _ := sum["compliance"].(map[string]any)
	return c
}

// get serves a GET and answers its status, body and the storage requests it
// cost. It waits for the summaries queued before it to be written first: on a
// loaded machine their write could otherwise land inside the count.
func (e *complianceEnv) get(t *testing.T, path string) (int, map[string]any, int64) {
	t.Helper()
	waitIdle(t, e.srv)
	before := e.requests.Load()
	code, body := serve(t, e.srv, http.MethodGet, path, nil)
	return code, body, e.requests.Load() - before
}

func byStatus(t *testing.T, body map[string]any, status string) float64 {
	t.Helper()
	m, _ := body["byStatus"].(map[string]any)
	v, ok := m[status].(float64)
	if !ok {
		t.Fatalf("byStatus %v has no %s", body["byStatus"], status)
	}
	return v
}

// GET /api/compliance costs one point read of an aggregate row whether the
// fleet holds 2 clusters or 32, and shows the Behind pool with its reason.
func TestComplianceCostsTheSameAtAnySize(t *testing.T) {
	now := time.Date(2026, 5, 6, 9, 0, 0, 0, time.UTC)
	clk := &clock{t: now}
	e := newComplianceEnv(t, clk, "")
	e.ingestFixtures(t, now)
	if rep := e.sweep(t, now); rep["refreshed"] != true || rep["clusters"] != float64(2) || rep["snapshot"] != "written" {
		t.Fatalf("first sweep's compliance pass %v: want refreshed over 2 clusters, the day's snapshot written", rep)
	}
	code, small, reqSmall := e.get(t, "/api/compliance")
	if code != http.StatusOK {
		t.Fatalf("compliance: %d %v", code, small)
	}
	if small["clusters"] != float64(2) || byStatus(t, small, "Behind") != 1 || small["asOf"] != now.Format(time.RFC3339) {
		t.Errorf("fleet of 2: %v; want 2 clusters, 1 pool Behind, asOf %s", small, now.Format(time.RFC3339))
	}
	pools, _ := small["poolsNotUpToDate"].([]any)
	if len(pools) != 1 {
		t.Fatalf("poolsNotUpToDate %v, want the one Behind pool", small["poolsNotUpToDate"])
	}
	p := pools[0].(map[string]any)
	if p["cluster"] != prodWEU || p["pool"] != "system" || p["status"] != "Behind" || p["daysBehind"] != float64(14) ||
		p["latestImage"] != imgNew || !strings.Contains(p["reason"].(string), "202604.22.0") {
		t.Errorf("pool %v: want aks-weu-prod-01/system Behind 14 days on %s, with the reason", p, imgNew)
	}

	e.ingestGenerated(t, 0, 30, now)
	clk.set(now.Add(16 * time.Minute))
	if rep := e.sweep(t, clk.now()); rep["clusters"] != float64(32) || rep["snapshot"] != nil {
		t.Fatalf("second sweep %v: want 32 clusters and no second snapshot today", rep)
	}
	code, big, reqBig := e.get(t, "/api/compliance")
	if want := byStatus(t, small, "UpToDate") + 30; code != http.StatusOK || big["clusters"] != float64(32) || byStatus(t, big, "UpToDate") != want {
		t.Fatalf("fleet of 32: %d %v; want 32 clusters, %v pools UpToDate", code, big, want)
	}
	if reqSmall != 1 || reqBig != reqSmall {
		t.Errorf("storage requests per GET: %d at 2 clusters, %d at 32; want 1 each (one aggregate row)", reqSmall, reqBig)
	}
}

// The API reads the summary rows' aggregates, never Fleet: a pool changed
// in its Fleet partition behind the app's back shows nowhere until its
// cluster's summary row changes.
func TestComplianceIsAnsweredFromSummaryRows(t *testing.T) {
	now := time.Date(2026, 5, 6, 9, 0, 0, 0, time.UTC)
	clk := &clock{t: now}
	e := newComplianceEnv(t, clk, "")
	e.ingestFixtures(t, now)
	e.sweep(t, now)

	// Move aks-weu-prod-01's system pool to the new image in Fleet itself.
	fleetT := e.svc.NewClient(e.prefix + state.TableFleet)
	pk := fleet.ClusterID{SubscriptionID: subWEU, ResourceGroup: "rg-aks-weu-prod", Name: "aks-weu-prod-01"}.Key()
	filter := "PartitionKey eq '" + pk + "' and RowKey ge 'pool~' and RowKey lt 'pool~~'"
	pager := fleetT.NewListEntitiesPager(&aztables.ListEntitiesOptions{Filter: &filter})
	edited := 0
	for pager.More() {
		page, err := pager.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range page.Entities {
			var m map[string]any
			_ = json.Unmarshal(b, &m)
			for k, v := range m {
				if v == imgOld {
					m[k] = imgNew
					edited++
				}
			}
			nb, _ := json.Marshal(m)
			if _, err := fleetT.UpsertEntity(context.Background(), nb, &aztables.UpsertEntityOptions{UpdateMode: aztables.UpdateModeMerge}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if edited == 0 {
		t.Fatal("no pool row held the old image")
	}
	clk.set(now.Add(16 * time.Minute))
	e.sweep(t, clk.now())
	if _, body, _ := e.get(t, "/api/compliance"); byStatus(t, body, "Behind") != 1 {
		t.Fatalf("after a change to Fleet alone: %v; want the pool still Behind (the summary row did not change)", body["byStatus"])
	}

	// Now the summary row changes: the next refresh shows it.
	comp := e.svc.NewClient(e.prefix + state.TableCompliance)
	merge, _ := json.Marshal(map[string]any{"PartitionKey": "current", "RowKey": pk, "Behind": 0, "UpToDate": 2,
		"NotUpToDatePools": "[]"})
	if _, err := comp.UpsertEntity(context.Background(), merge, &aztables.UpsertEntityOptions{UpdateMode: aztables.UpdateModeMerge}); err != nil {
		t.Fatal(err)
	}
	clk.set(now.Add(32 * time.Minute))
	e.sweep(t, clk.now())
	_, body, _ := e.get(t, "/api/compliance")
	if byStatus(t, body, "Behind") != 0 || byStatus(t, body, "UpToDate") != 3 {
		t.Errorf("after the summary row changed: %v; want 0 Behind, 3 UpToDate", body["byStatus"])
	}
}

// Filters answer from the matching aggregate; several at once from the
// most selective, its bounded list filtered by the others; bad values are
// 400 with the reason.
func TestComplianceFilters(t *testing.T) {
	now := time.Date(2026, 5, 6, 9, 0, 0, 0, time.UTC)
	clk := &clock{t: now}
	e := newComplianceEnv(t, clk, "")
	e.ingestFixtures(t, now)
	e.ingestGenerated(t, 0, 3, now)
	e.sweep(t, now)
	cases := []struct {
		name, query string
		scope       string
		clusters    float64
		pools       int
	}{
		{"by status", "status=behind", "status~Behind", 1, 1},
		{"by location", "location=West%20Europe", "location~westeurope", 2, 1},
		{"by subscription", "subscriptionId=" + strings.ToUpper(subEUS), "subscription~" + subEUS, 3, 0},
		{"no such location", "location=brazilsouth", "location~brazilsouth", 0, 0},
		{"status and location", "status=Behind&location=westeurope", "status~Behind", 1, 1},
		{"status and another subscription", "status=Behind&subscriptionId=" + subEUS, "subscription~" + subEUS, 3, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, body, reqs := e.get(t, "/api/compliance?"+tc.query)
			if code != http.StatusOK {
				t.Fatalf("%d %v", code, body)
			}
			pools, _ := body["poolsNotUpToDate"].([]any)
			if body["scope"] != tc.scope || body["clusters"] != tc.clusters || len(pools) != tc.pools || body["poolsBounded"] != true {
				t.Errorf("got scope %v, %v clusters, %d pools (%v); want %s, %v, %d, bounded", body["scope"], body["clusters"], len(pools),
					body["poolsNotUpToDate"], tc.scope, tc.clusters, tc.pools)
			}
			if n := strings.Count(tc.query, "="); reqs > int64(n) {
				t.Errorf("%d storage requests for %d filters; want at most one point read each", reqs, n)
			}
		})
	}
	for _, bad := range []string{"status=Sideways", "subscriptionId=not-a-guid", "location=west'europe", "location=" + strings.Repeat("a", 65),
		"region=westeurope", "status=Behind&status=Blocked"} {
		if code, body, reqs := e.get(t, "/api/compliance?"+bad); code != http.StatusBadRequest || body["error"] == "" || reqs != 0 {
			t.Errorf("%s: %d %v after %d requests; want 400 with a reason and no storage read", bad, code, body, reqs)
		}
	}
}

// The history holds one fleet row per day, read in one query; days is
// bounded to 1–400.
func TestComplianceHistory(t *testing.T) {
	day1 := time.Date(2026, 5, 5, 9, 0, 0, 0, time.UTC)
	clk := &clock{t: day1}
	e := newComplianceEnv(t, clk, "")
	e.ingestFixtures(t, day1)
	e.sweep(t, day1)
	day2 := day1.Add(24 * time.Hour)
	clk.set(day2)
	if rep := e.sweep(t, day2); rep["snapshot"] != "written" {
		t.Fatalf("second day's pass %v: want its snapshot written", rep)
	}
	code, body, reqs := e.get(t, "/api/compliance/history")
	if code != http.StatusOK || body["days"] != float64(90) || body["count"] != float64(2) || reqs != 1 {
		t.Fatalf("history: %d %v after %d requests; want 90 days asked, 2 days listed, one query", code, body, reqs)
	}
	days := body["history"].([]any)
	if d0, d1 := days[0].(map[string]any), days[1].(map[string]any); d0["day"] != "2026-05-05" || d1["day"] != "2026-05-06" || d1["clusters"] != float64(2) {
		t.Errorf("history %v: want 2026-05-05 then 2026-05-06, 2 clusters each", days)
	}
	if _, body, _ := e.get(t, "/api/compliance/history?days=1"); body["count"] != float64(1) {
		t.Errorf("days=1: %v, want today only", body)
	}
	for _, bad := range []string{"0", "401", "ninety", "-3", "1e2"} {
		if code, body, _ := e.get(t, "/api/compliance/history?days="+bad); code != http.StatusBadRequest ||
			!strings.Contains(fmt.Sprint(body["error"]), "1 to 400") {
			t.Errorf("days=%s: %d %v; want 400 naming 1 to 400", bad, code, body)
		}
	}
}

// Two instances sweeping at the same moment write the day's snapshot once:
// one claims it, the other finds it held or done; every cluster has its day row. A
// claim whose holder stopped is taken over once its lease has run out.
func TestComplianceDaySnapshotOnceUnderConcurrentSweeps(t *testing.T) {
	now := time.Date(2026, 5, 6, 9, 0, 0, 0, time.UTC)
	clk := &clock{t: now}
	a := newComplianceEnv(t, clk, "")
	a.ingestFixtures(t, now)
	a.ingestGenerated(t, 0, 5, now)
	waitIdle(t, a.srv)
	b := newComplianceEnv(t, clk, a.prefix)
	var wg sync.WaitGroup
	reps := make([]map[string]any, 2)
	for i, e := range []*complianceEnv{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, sum := (&env{srv: e.srv}).invoke(t, "Sweep", timerInvocation(t, now))
			reps[i], _ = sum["compliance"].(map[string]any)
		}()
	}
	wg.Wait()
	written := 0
	for _, r := range reps {
		if r["snapshot"] == "written" {
			written++
		} else if r["snapshot"] != "held" && r["snapshot"] != "done" {
			t.Errorf("report %v: want the snapshot written, held (claimed by the other) or done", r)
		}
	}
	if written != 1 {
		t.Fatalf("snapshots written %d (%v); want exactly 1", written, reps)
	}
	comp := a.svc.NewClient(a.prefix + state.TableCompliance)
	countDay := func(day string) (rows, clusters int) {
		filter := "PartitionKey eq 'day~" + day + "'"
		pager := comp.NewListEntitiesPager(&aztables.ListEntitiesOptions{Filter: &filter})
		for pager.More() {
			page, err := pager.NextPage(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			for _, en := range page.Entities {
				rows++
				if strings.Contains(string(en), `"RowKey":"cluster~`) {
					clusters++
				}
			}
		}
		return rows, clusters
	}
	if rows, clusters := countDay("20260506"); clusters != 7 || rows != 8 {
		t.Errorf("day rows %d (%d clusters); want 7 cluster rows + the claim", rows, clusters)
	}

	// The next day, a claim left by an instance that stopped mid-way.
	next := now.Add(24 * time.Hour)
	claim, _ := json.Marshal(map[string]any{"PartitionKey": "day~20260507", "RowKey": "claim", "Kind": "ComplianceDayClaim",
		"Owner": "stopped-instance", "Done": false, "LeaseUntil": next.Add(5 * time.Minute).Format(time.RFC3339), "LeaseUntil@odata.type": "Edm.DateTime"})
	if _, err := comp.AddEntity(context.Background(), claim, nil); err != nil {
		t.Fatal(err)
	}
	clk.set(next)
	if rep := a.sweep(t, next); rep["snapshot"] != "held" {
		t.Errorf("pass during the stopped claimer's lease: %v, want held", rep)
	}
	clk.set(next.Add(20 * time.Minute))
	if rep := b.sweep(t, clk.now()); rep["snapshot"] != "written" {
		t.Errorf("pass after the lease ran out: %v, want the snapshot taken over and written", rep)
	}
	if _, clusters := countDay("20260507"); clusters != 7 {
		t.Errorf("day 2 cluster rows %d, want 7", clusters)
	}
}

// A pool whose newer image is within the grace is AwaitingWindow; the cluster
// comes due when the grace ends, and the Sweep rewrites its summary as
// Behind with no event in between.
func TestComplianceMovesWithTimeAlone(t *testing.T) {
	seen := time.Date(2026, 4, 24, 3, 12, 44, 512_000_000, time.UTC)
	graceEnds := seen.Add(7 * 24 * time.Hour)
	// Two hours before the grace ends: the summary is fresh when it ends, so
	// only the cluster coming due can rewrite it.
	now := graceEnds.Add(-2 * time.Hour)
	clk := &clock{t: now}
	e := newComplianceEnv(t, clk, "")
	e.armRead(t, fleet.ClusterID{SubscriptionID: subWEU, ResourceGroup: "rg-aks-weu-prod", Name: "aks-weu-prod-01"}, "westeurope", imgOld, imgNew, seen)
	// A first sweep takes what the rules had due soon after the commit.
	clk.set(now.Add(6 * time.Minute))
	e.sweep(t, clk.now())
	_, body, _ := e.get(t, "/api/compliance")
	if byStatus(t, body, "AwaitingWindow") != 1 || byStatus(t, body, "Behind") != 0 {
		t.Fatalf("within the grace: %v; want 1 AwaitingWindow, 0 Behind", body["byStatus"])
	}
	_, detail := serve(t, e.srv, http.MethodGet, "/api/clusters/"+subWEU+"/rg-aks-weu-prod/aks-weu-prod-01", nil)
	if want := graceEnds.Truncate(time.Second).Add(time.Second).Format(time.RFC3339); detail["nextEvaluation"] != want {
		t.Errorf("nextEvaluation %v, want %s: the grace's end, when the verdict changes", detail["nextEvaluation"], want)
	}
	clk.set(graceEnds.Add(10 * time.Minute))
	waitIdle(t, e.srv)
	code, resp, sum := (&env{srv: e.srv}).invoke(t, "Sweep", timerInvocation(t, clk.now()))
	if rep, _ := sum["compliance"].(map[string]any); code != http.StatusOK || sum["evaluated"].(float64) < 1 || rep["refreshed"] != true || rep["recomputed"] != nil {
		t.Fatalf("sweep at the grace's end: %d %v %v; want the cluster evaluated (it came due) and the figures refreshed, no summary recomputed for age", code, sum, resp.Logs)
	}
	_, body, _ = e.get(t, "/api/compliance")
	if byStatus(t, body, "AwaitingWindow") != 0 || byStatus(t, body, "Behind") != 1 {
		t.Errorf("after the grace, no event since: %v; want 0 AwaitingWindow, 1 Behind", body["byStatus"])
	}
}

// Without a compliance table the routes say so.
func TestComplianceOff(t *testing.T) {
	srv := newServer(newStore(t, state.Options{}), watch.Options{}, handlers.Options{})
	for _, path := range []string{"/api/compliance", "/api/compliance/history"} {
		if code, body := serve(t, srv, http.MethodGet, path, nil); code != http.StatusNotImplemented {
			t.Errorf("%s: %d %v, want 501", path, code, body)
		}
	}
}
