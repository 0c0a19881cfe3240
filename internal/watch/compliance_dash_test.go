package watch_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
	"github.com/upgradewatch/upgradewatch/internal/patch"
	"github.com/upgradewatch/upgradewatch/internal/watch"
)

// The fleet's view counts clusters per bucket (deleted ones included),
// takes days-behind percentiles over every pool behind, counts failures of
// the last 7 days, stalls and windows opening within 24 h, and keeps only
// the worst MaxGridClusters clusters for the grid, worst first.
func TestFleetView(t *testing.T) {
	now := time.Date(2026, 5, 6, 9, 0, 0, 0, time.UTC)
	sub := "7f3c2a91-5b4e-4d1f-9e8a-2c6b0d4f1a37"
	soon := &fleet.MaintenanceWindow{Name: fleet.MaintenanceNodeOS, DurationHours: 4, StartDate: "2026-01-01", StartTime: "20:00",
		Schedule: fleet.MaintenanceSchedule{Kind: fleet.ScheduleDaily, IntervalDays: 1}}
	var sums []watch.ClusterSummary
	for i := range 250 {
		s := watch.ClusterSummary{Cluster: fleet.ClusterID{SubscriptionID: sub, ResourceGroup: "rg", Name: fmt.Sprintf("aks-%03d", i)},
			Figures: patch.Compliance{Pools: 1, UpToDate: 1}}
		s.Dash.Cells = []watch.PoolCell{{Pool: "system", Status: patch.StatusUpToDate, Compliance: patch.ComplianceCurrent}}
		switch {
		case i < 10: // 10 Behind, 1..10 days
			s.Figures = patch.Compliance{Pools: 1, Behind: 1, PoolsBehind: 1}
			s.Dash.Cells = []watch.PoolCell{{Pool: "system", Status: patch.StatusBehind, Compliance: patch.ComplianceBehind, DaysBehind: i + 1}}
		case i == 10: // Failed: a failure 2 days ago, another 9 days ago; stalled
			s.Figures = patch.Compliance{Pools: 1, Failed: 1}
			s.Dash.Failures = []time.Time{now.Add(-9 * 24 * time.Hour), now.Add(-48 * time.Hour)}
			s.Dash.Stalled = 1
		case i == 11:
			s.Dash.Window = soon
		}
		sums = append(sums, s)
	}
	sums = append(sums, watch.ClusterSummary{Cluster: fleet.ClusterID{SubscriptionID: sub, ResourceGroup: "rg", Name: "aaa-gone"}, Deleted: true})
	v := watch.Aggregates(sums, now)[0].View
	if v == nil {
		t.Fatal("the fleet's aggregate has no view")
	}
	if v.Buckets[patch.StatusBehind] != 10 || v.Buckets[patch.StatusFailed] != 1 || v.Buckets[patch.StatusUpToDate] != 239 ||
		v.Buckets[watch.BucketDeleted] != 1 {
		t.Errorf("buckets %v: want 10 Behind, 1 Failed, 239 UpToDate, 1 Deleted", v.Buckets)
	}
	if v.DaysBehindPools != 10 || v.DaysBehindP50 != 5 || v.DaysBehindP90 != 9 {
		t.Errorf("days behind over %d pools: p50 %d p90 %d; want 10 pools, 5 and 9", v.DaysBehindPools, v.DaysBehindP50, v.DaysBehindP90)
	}
	if v.Failed7d != 1 || v.Stalled != 1 || v.WindowsSoon != 1 {
		t.Errorf("failed 7d %d, stalled %d, windows soon %d; want 1, 1, 1", v.Failed7d, v.Stalled, v.WindowsSoon)
	}
	if len(v.Worst) != watch.MaxGridClusters || v.GridOmitted != 250-watch.MaxGridClusters {
		t.Fatalf("grid %d rows, %d omitted; want %d and %d (the deleted cluster nowhere)", len(v.Worst), v.GridOmitted,
			watch.MaxGridClusters, 250-watch.MaxGridClusters)
	}
	if v.Worst[0].Cluster.Name != "aks-010" || v.Worst[0].Bucket != patch.StatusFailed || v.Worst[1].Cluster.Name != "aks-000" ||
		v.Worst[10].Bucket != patch.StatusBehind || v.Worst[11].Bucket != patch.StatusUpToDate {
		t.Errorf("grid starts %v, %v, …, row 11 %v: want the Failed cluster, then the 10 Behind ones by name, then UpToDate",
			v.Worst[0], v.Worst[1], v.Worst[11])
	}
	for _, a := range watch.Aggregates(sums, now)[1:] {
		if a.View != nil {
			t.Errorf("scope %s carries a view; only the fleet's does", a.Scope)
		}
	}
}

// A cluster's summary keeps what the clusters page shows: its channels,
// its node OS window, its last success and recent failures, its open
// findings, and a cell per live pool.
func TestSummariseDashFacts(t *testing.T) {
	now := time.Date(2026, 5, 6, 9, 0, 0, 0, time.UTC)
	c := &fleet.Cluster{ID: fleet.ClusterID{SubscriptionID: "7f3c2a91-5b4e-4d1f-9e8a-2c6b0d4f1a37", ResourceGroup: "rg", Name: "aks-1"},
		Location: "westeurope", UpgradeChannel: "patch", NodeOSUpgradeChannel: "NodeImage",
		Maintenance: []fleet.MaintenanceWindow{{Name: fleet.MaintenanceDefault}, {Name: fleet.MaintenanceNodeOS, DurationHours: 4,
			Schedule: fleet.MaintenanceSchedule{Kind: fleet.ScheduleDaily, IntervalDays: 1}}},
		Pools: map[string]*fleet.Pool{"system": {Name: "system"}, "old": {Name: "old", Removed: true}},
		Upgrades: map[string]*fleet.Upgrade{
			"a": {Outcome: fleet.OutcomeSucceeded, EndedAt: now.Add(-72 * time.Hour)},
			"b": {Outcome: fleet.OutcomeFailed, EndedAt: now.Add(-24 * time.Hour)},
			"c": {Outcome: fleet.OutcomeFailed, EndedAt: now.Add(-10 * 24 * time.Hour)},
		},
		Findings: map[string]*fleet.Finding{
			"x": {Code: fleet.CodeUpgradeStalled, Severity: fleet.SeverityError, Status: fleet.FindingOpen},
			"y": {Code: fleet.CodeChannelLocked, Severity: fleet.SeverityWarning, Status: fleet.FindingOpen, Summary: "locked by policy"},
			"z": {Code: fleet.CodeChannelDrift, Severity: fleet.SeverityCritical, Status: fleet.FindingResolved},
		}}
	d := watch.Summarise(c, 1, patch.Catalogue{}, fleet.Policy{}, now).Dash
	if d.UpgradeChannel != "patch" || d.NodeOSUpgradeChannel != "NodeImage" || d.Window == nil || d.Window.Name != fleet.MaintenanceNodeOS {
		t.Errorf("channels %q %q, window %+v: want patch, NodeImage and the node OS schedule", d.UpgradeChannel, d.NodeOSUpgradeChannel, d.Window)
	}
	if !d.LastSuccess.Equal(now.Add(-72*time.Hour)) || len(d.Failures) != 1 || d.Failed7d(now) != 1 || d.Failed7d(now.Add(7*24*time.Hour)) != 0 {
		t.Errorf("last success %v, failures %v: want 3 days ago and the one failure of the last 7 days, aged out a week later", d.LastSuccess, d.Failures)
	}
	if d.Findings != 2 || d.Worst != fleet.SeverityError || d.Stalled != 1 || d.ChannelProblem != "locked by policy" {
		t.Errorf("findings %d worst %q stalled %d problem %q: want 2 open, Error, 1 stalled, the ChannelLocked summary", d.Findings, d.Worst, d.Stalled, d.ChannelProblem)
	}
	if len(d.Cells) != 1 || d.Cells[0].Pool != "system" {
		t.Errorf("cells %v: want the live pool only", d.Cells)
	}
}
