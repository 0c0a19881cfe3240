package state_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
	"github.com/upgradewatch/upgradewatch/internal/patch"
	"github.com/upgradewatch/upgradewatch/internal/watch"
)

// A summary's dashboard facts read back as written, with flat columns for
// people (Bucket, channels, open findings); the fleet's view reads back
// whole although its JSON spans several columns, and a day's fleet row
// carries no view.
func TestComplianceDashboardRoundTrip(t *testing.T) {
	ctx := context.Background()
	c, raw := newComplianceTable(t)
	at := time.Date(2026, 5, 6, 9, 0, 0, 0, time.UTC)
	s := sampleSummary(1, at)
	s.Dash = watch.DashFacts{UpgradeChannel: "patch", NodeOSUpgradeChannel: "NodeImage", LastSuccess: at.Add(-72 * time.Hour),
		Window: &fleet.MaintenanceWindow{Name: fleet.MaintenanceNodeOS, DurationHours: 4, UTCOffset: "+01:00", StartTime: "02:00",
			Schedule: fleet.MaintenanceSchedule{Kind: fleet.ScheduleWeekly, IntervalWeeks: 1, DayOfWeek: "Sunday"}},
		Failures: []time.Time{at.Add(-24 * time.Hour)}, Findings: 2, Worst: fleet.SeverityError, Stalled: 1,
		ChannelProblem: `locked "<by> policy"`, Cells: []watch.PoolCell{{Pool: "system", Status: patch.StatusBehind, Compliance: patch.ComplianceBehind, DaysBehind: 14}}}
	if err := c.PutSummaries(ctx, []watch.ClusterSummary{s}); err != nil {
		t.Fatal(err)
	}
	got, err := c.Summaries(ctx)
	if err != nil || len(got) != 1 {
		t.Fatalf("summaries %v, %v", got, err)
	}
	if d := cmp.Diff(s.Dash, got[0].Dash); d != "" {
		t.Errorf("dashboard facts (-want +got):\n%s", d)
	}
	e, err := raw.GetEntity(ctx, "current", s.Cluster.Key(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, col := range []string{`"Bucket":"Behind"`, `"UpgradeChannel":"patch"`, `"OpenFindings":2`, `"WorstSeverity":"Error"`} {
		if !strings.Contains(string(e.Value), col) {
			t.Errorf("summary row lacks %s: %s", col, e.Value)
		}
	}

	// A view of 200 grid rows of 100 pools each: about 1 MB of JSON, more
	// than the columns hold, so the grid is cut from its end and counted.
	v := watch.FleetView{Buckets: map[string]int{patch.StatusBehind: 200, watch.BucketDeleted: 1}, DaysBehindP50: 5, DaysBehindP90: 9,
		DaysBehindPools: 200, Failed7d: 3, Stalled: 1, WindowsSoon: 7}
	for i := range watch.MaxGridClusters {
		row := watch.GridRow{Cluster: fleet.ClusterID{SubscriptionID: "7f3c2a91-5b4e-4d1f-9e8a-2c6b0d4f1a37", ResourceGroup: "rg", Name: fmt.Sprintf("aks-%03d", i)},
			Bucket: patch.StatusBehind}
		for p := range 100 {
			row.Cells = append(row.Cells, watch.PoolCell{Pool: fmt.Sprintf("pool%03d", p), Status: patch.StatusBehind, Compliance: patch.ComplianceBehind, DaysBehind: p})
		}
		v.Worst = append(v.Worst, row)
	}
	small := v
	small.Worst = v.Worst[:20]
	for _, tc := range []struct {
		name string
		view watch.FleetView
		cut  bool
	}{{"fits", small, false}, {"cut", v, true}} {
		t.Run(tc.name, func(t *testing.T) {
			agg := watch.Aggregate{Scope: watch.ScopeFleet, Clusters: 200, ComputedAt: at, View: &tc.view}
			if err := c.PutAggregates(ctx, []watch.Aggregate{agg}); err != nil {
				t.Fatal(err)
			}
			back, ok, err := c.Aggregate(ctx, watch.ScopeFleet)
			if err != nil || !ok || back.View == nil {
				t.Fatalf("aggregate %v %v %v: want it with its view", back.View, ok, err)
			}
			want := tc.view
			if tc.cut {
				if len(back.View.Worst) >= len(v.Worst) || back.View.GridOmitted != len(v.Worst)-len(back.View.Worst) {
					t.Fatalf("grid of %d rows, %d omitted: want it cut and the cut counted", len(back.View.Worst), back.View.GridOmitted)
				}
				want.Worst, want.GridOmitted = v.Worst[:len(back.View.Worst)], back.View.GridOmitted
			}
			if d := cmp.Diff(&want, back.View); d != "" {
				t.Errorf("view (-want +got):\n%s", d)
			}
		})
	}
	if err := c.PutDay(ctx, at, watch.Aggregate{Scope: watch.ScopeFleet, View: &small}, nil); err != nil {
		t.Fatal(err)
	}
	hist, err := c.History(ctx, at, at)
	if err != nil || len(hist) != 1 || hist[0].View != nil {
		t.Errorf("day rows %+v, %v: want one, without a view", hist, err)
	}
}
