package watch_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
	"github.com/upgradewatch/upgradewatch/internal/patch"
	"github.com/upgradewatch/upgradewatch/internal/watch"
)

// The aggregates add the clusters' figures per scope, list the worst pools
// first within the bound and count the rest, and take time-to-patch
// percentiles over every operation of the scope, not over the clusters'
// percentiles.
func TestAggregates(t *testing.T) {
	now := time.Date(2026, 5, 6, 9, 0, 0, 0, time.UTC)
	var sums []watch.ClusterSummary
	for i := range 60 {
		id := fleet.ClusterID{SubscriptionID: "7f3c2a91-5b4e-4d1f-9e8a-2c6b0d4f1a37", ResourceGroup: "rg", Name: fmt.Sprintf("aks-%02d", i)}
		s := watch.ClusterSummary{Cluster: id, Location: "westeurope", ComputedAt: now,
			Figures: patch.Compliance{Pools: 2, PoolsCurrent: 1, PoolsBehind: 1, UpToDate: 1, Behind: 1, MaxDaysBehind: i}}
		s.Pools = []watch.PoolBrief{{Cluster: id.ResourceID(), SubscriptionID: id.SubscriptionID, Location: "westeurope", Pool: "system",
			Status: patch.StatusBehind, DaysBehind: i}}
		// One cluster with a slow patch, 59 with a day's.
		secs := int64(24 * 3600)
		if i == 0 {
			secs = 40 * 24 * 3600
		}
		s.Latencies = []watch.LatencyPoint{{AppliedAt: now.Add(-48 * time.Hour), Seconds: secs}}
		sums = append(sums, s)
	}
	sums = append(sums, watch.ClusterSummary{Cluster: fleet.ClusterID{SubscriptionID: "0b2d4f6a-8c1e-4a3b-9d5f-7e1a3c5b7d9f", ResourceGroup: "rg", Name: "gone"},
		Location: "eastus", Deleted: true, Figures: patch.Compliance{Pools: 5, Blocked: 5}})
	aggs := watch.Aggregates(sums, now)
	byScope := map[string]watch.Aggregate{}
	for _, a := range aggs {
		byScope[a.Scope] = a
	}
	fleetAgg := aggs[0]
	if fleetAgg.Scope != watch.ScopeFleet || fleetAgg.Clusters != 60 || fleetAgg.Figures.Pools != 120 || fleetAgg.Figures.Behind != 60 {
		t.Errorf("fleet %+v: want 60 clusters (the deleted one left out), 120 pools, 60 Behind", fleetAgg)
	}
	if len(fleetAgg.Pools) != watch.MaxAggregatePools || fleetAgg.PoolsOmitted != 60-watch.MaxAggregatePools || fleetAgg.Pools[0].DaysBehind != 59 {
		t.Errorf("fleet pools: %d listed, %d omitted, first %+v; want %d, %d, the 59 days behind first",
			len(fleetAgg.Pools), fleetAgg.PoolsOmitted, fleetAgg.Pools[0], watch.MaxAggregatePools, 60-watch.MaxAggregatePools)
	}
	if got := fleetAgg.TimeToPatch.Last30; got.Count != 60 || got.Median != 24*time.Hour || got.P90 != 24*time.Hour {
		t.Errorf("fleet time-to-patch %+v: want 60 operations, median and p90 a day", got)
	}
	for _, scope := range []string{"location~westeurope", "subscription~7f3c2a91-5b4e-4d1f-9e8a-2c6b0d4f1a37", "status~Behind", "status~UpToDate"} {
		if a, ok := byScope[scope]; !ok || a.Clusters != 60 {
			t.Errorf("scope %s: %+v, want 60 clusters", scope, a)
		}
	}
	if len(byScope["status~UpToDate"].Pools) != 0 {
		t.Errorf("status~UpToDate lists pools %v; its list holds only pools in that status (none listed)", byScope["status~UpToDate"].Pools)
	}
	for _, scope := range []string{"location~eastus", "status~Blocked", "subscription~0b2d4f6a-8c1e-4a3b-9d5f-7e1a3c5b7d9f"} {
		if _, ok := byScope[scope]; ok {
			t.Errorf("scope %s exists only through a deleted cluster", scope)
		}
	}
}
