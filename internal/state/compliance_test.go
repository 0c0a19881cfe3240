package state_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
	"github.com/google/go-cmp/cmp"

	"github.com/upgradewatch/upgradewatch/internal/azuritetest"
	"github.com/upgradewatch/upgradewatch/internal/fleet"
	"github.com/upgradewatch/upgradewatch/internal/patch"
	"github.com/upgradewatch/upgradewatch/internal/state"
	"github.com/upgradewatch/upgradewatch/internal/watch"
)

func newComplianceTable(t *testing.T) (*state.ComplianceTable, *aztables.Client) {
	t.Helper()
	svc := azuritetest.Service(t, azuritetest.Endpoint(t))
	c := state.NewCompliance(svc, state.ComplianceOptions{TablePrefix: azuritetest.Prefix(t)})
	azuritetest.DropTables(t, svc, c.Tables()...)
	if err := c.EnsureTable(context.Background()); err != nil {
		t.Fatal(err)
	}
	return c, svc.NewClient(c.Tables()[0])
}

func sampleSummary(i int, at time.Time) watch.ClusterSummary {
	return watch.ClusterSummary{
		Cluster:  fleet.ClusterID{SubscriptionID: "7f3c2a91-5b4e-4d1f-9e8a-2c6b0d4f1a37", ResourceGroup: "rg-aks-weu-prod", Name: fmt.Sprintf("aks-weu-prod-%02d", i)},
		Location: "westeurope",
		Figures: patch.Compliance{Pools: 3, PoolsCurrent: 2, PoolsBehind: 1, Nodes: 8, NodesCurrent: 5, NodesBehind: 3,
			PercentPoolsCurrent: 66.7, PercentNodesCurrent: 62.5, OldestImage: "AKSUbuntu-2204gen2containerd-202604.07.0",
			OldestImageReleasedAt: time.Date(2026, 4, 7, 0, 0, 0, 0, time.UTC), MaxDaysBehind: 14, UpToDate: 2, Behind: 1},
		TimeToPatch: patch.TimeToPatchFigures{Last30: patch.Stats{Count: 1, Median: 9 * 24 * time.Hour, P90: 9 * 24 * time.Hour},
			Last90: patch.Stats{Count: 1, Median: 9 * 24 * time.Hour, P90: 9 * 24 * time.Hour}},
		Latencies: []watch.LatencyPoint{{AppliedAt: time.Date(2026, 5, 3, 1, 45, 0, 0, time.UTC), Seconds: 9 * 24 * 3600}},
		Pools: []watch.PoolBrief{{Cluster: "/subscriptions/7f3c2a91-5b4e-4d1f-9e8a-2c6b0d4f1a37/resourceGroups/rg-aks-weu-prod/providers/Microsoft.ContainerService/managedClusters/aks-weu-prod-01",
			SubscriptionID: "7f3c2a91-5b4e-4d1f-9e8a-2c6b0d4f1a37", Location: "westeurope", Pool: "system", Status: patch.StatusBehind,
			Reason: "AKSUbuntu-2204gen2containerd-202604.22.0 has been available since 2026-04-24", Image: "AKSUbuntu-2204gen2containerd-202604.07.0",
			LatestImage: "AKSUbuntu-2204gen2containerd-202604.22.0", DaysBehind: 14}},
		ComputedAt: at, Seq: int64(40 + i),
	}
}

// A summary reads back as written, through flat typed columns; aggregates of scopes that are gone are
// deleted; a day's rows are pruned once past the cut.
func TestComplianceTableRoundTrip(t *testing.T) {
	ctx := context.Background()
	c, raw := newComplianceTable(t)
	at := time.Date(2026, 5, 6, 9, 0, 0, 0, time.UTC)
	s := sampleSummary(1, at)
	s.Figures.PercentNodesCurrent = 100
	if err := c.PutSummaries(ctx, []watch.ClusterSummary{s}); err != nil {
		t.Fatal(err)
	}
	got, err := c.Summaries(ctx)
	if err != nil || len(got) != 1 {
		t.Fatalf("summaries %v, %v; want one", got, err)
	}
	if d := cmp.Diff(s, got[0]); d != "" {
		t.Errorf("summary read back (-want +got):\n%s", d)
	}
	ent, err := raw.GetEntity(ctx, "current", s.Cluster.Key(), &aztables.GetEntityOptions{Format: toPtr(aztables.MetadataFormatFull)})
	if err != nil {
		t.Fatal(err)
	}
	var cols map[string]any
	_ = json.Unmarshal(ent.Value, &cols)
	for col, typ := range map[string]string{"Seq": "Edm.Int64",
		"ComputedAt": "Edm.DateTime", "TimeToPatch30P50Seconds": "Edm.Int64"} {
		if cols[col+"@odata.type"] != typ {
			t.Errorf("column %s typed %v, want %s", col, cols[col+"@odata.type"], typ)
		}
	}
	if cols["PoolsBehind"] != float64(1) || cols["Behind"] != float64(1) || cols["ClusterName"] != "aks-weu-prod-01" {
		t.Errorf("flat columns %v: want PoolsBehind 1, Behind 1, ClusterName", cols)
	}

	aggs := []watch.Aggregate{{Scope: watch.ScopeFleet, Clusters: 2, ComputedAt: at}, {Scope: watch.ScopeLocation + "westeurope", Clusters: 2, ComputedAt: at}}
	if err := c.PutAggregates(ctx, aggs); err != nil {
		t.Fatal(err)
	}
	if err := c.PutAggregates(ctx, aggs[:1]); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := c.Aggregate(ctx, watch.ScopeLocation+"westeurope"); ok || err != nil {
		t.Errorf("aggregate of a scope gone: found %v (%v), want deleted", ok, err)
	}
	if a, ok, err := c.Aggregate(ctx, watch.ScopeFleet); !ok || err != nil || a.Clusters != 2 || !a.ComputedAt.Equal(at) {
		t.Errorf("fleet aggregate %+v %v %v", a, ok, err)
	}

	old := time.Date(2025, 4, 1, 0, 0, 0, 0, time.UTC)
	if err := c.PutDay(ctx, old, aggs[0], []watch.ClusterSummary{s, sampleSummary(2, at)}); err != nil {
		t.Fatal(err)
	}
	if err := c.PutDay(ctx, old.AddDate(0, 0, 1), aggs[0], []watch.ClusterSummary{s}); err != nil {
		t.Fatal(err)
	}
	n, err := c.PruneDays(ctx, old.AddDate(0, 0, 1), 100)
	if err != nil || n != 3 {
		t.Errorf("pruned %d rows (%v), want the first day's 3", n, err)
	}
	hist, err := c.History(ctx, old, old.AddDate(0, 0, 5))
	if err != nil || len(hist) != 1 || !hist[0].Day.Equal(old.AddDate(0, 0, 1)) {
		t.Errorf("history after the prune %+v (%v): want only the second day", hist, err)
	}
}

// A pool list too long for a column is cut at a pool, and what was cut is
// counted as omitted.
func TestComplianceTableBoundsPoolLists(t *testing.T) {
	ctx := context.Background()
	c, _ := newComplianceTable(t)
	at := time.Date(2026, 5, 6, 9, 0, 0, 0, time.UTC)
	agg := watch.Aggregate{Scope: watch.ScopeFleet, ComputedAt: at, PoolsOmitted: 5}
	for i := range watch.MaxAggregatePools {
		agg.Pools = append(agg.Pools, watch.PoolBrief{Cluster: strings.Repeat("c", 400), Pool: fmt.Sprintf("pool%02d", i),
			Status: patch.StatusBehind, Reason: strings.Repeat("r", 240), DaysBehind: 90 - i})
	}
	if err := c.PutAggregates(ctx, []watch.Aggregate{agg}); err != nil {
		t.Fatal(err)
	}
	got, _, err := c.Aggregate(ctx, watch.ScopeFleet)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Pools) == 0 || len(got.Pools) >= len(agg.Pools) || got.PoolsOmitted != 5+len(agg.Pools)-len(got.Pools) {
		t.Errorf("kept %d pools, omitted %d; want fewer than %d kept and the rest counted", len(got.Pools), got.PoolsOmitted, len(agg.Pools))
	}
	if got.Pools[0].DaysBehind != 90 {
		t.Errorf("first pool kept %+v, want the most days behind", got.Pools[0])
	}
}

func toPtr[T any](v T) *T { return &v }
