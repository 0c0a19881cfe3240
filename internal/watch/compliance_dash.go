package watch

import (
	"cmp"
	"slices"
	"strings"
	"time"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
	"github.com/upgradewatch/upgradewatch/internal/maintenance"
	"github.com/upgradewatch/upgradewatch/internal/patch"
)

// Bounds of the dashboard facts kept on the compliance rows.
const (
	// MaxGridClusters bounds the fleet grid kept on the fleet's aggregate:
	// the worst clusters, worst first (docs/dashboard.md).
	MaxGridClusters = 200
	// failureWindow is how far back failed operations are counted.
	failureWindow = 7 * 24 * time.Hour
	maxFailures   = 32
	maxCells      = 120 // pools per cluster (AKS allows 100)
	maxProblem    = 480
)

// BucketDeleted is the bucket of a cluster that is gone.
const BucketDeleted = "Deleted"

// WorstFirst orders the clusters' status buckets, worst first: a cluster is
// in the bucket of its worst pool's patch status, BucketDeleted when gone.
var WorstFirst = []string{
	patch.StatusFailed, patch.StatusBlocked, patch.StatusBehind, patch.StatusNotPatched, patch.StatusUnknown,
	patch.StatusRolling, patch.StatusAwaitingWindow, patch.StatusUnmanaged, patch.StatusUpToDate, BucketDeleted,
}

// BucketRank orders buckets worst first (0 is the worst); unknown names last.
func BucketRank(b string) int {
	if i := slices.Index(WorstFirst, b); i >= 0 {
		return i
	}
	return len(WorstFirst)
}

// Bucket is the summary's status bucket: its worst pool's status (from the
// figures' status counts), UpToDate without pools, BucketDeleted when gone.
func (s ClusterSummary) Bucket() string {
	if s.Deleted {
		return BucketDeleted
	}
	for _, b := range WorstFirst {
		if b != BucketDeleted && statusCount(s.Figures, b) > 0 {
			return b
		}
	}
	return patch.StatusUpToDate
}

// PoolCell is one live pool as the dashboard's grid shows it.
type PoolCell struct {
	Pool       string `json:"p"`
	Status     string `json:"s"`
	Compliance string `json:"c"`
	DaysBehind int    `json:"d,omitempty"`
}

// DashFacts are what the dashboard's clusters page and fleet grid show of a
// cluster besides its compliance figures. They are kept on its summary so
// that those pages read summary and aggregate rows, never cluster
// partitions. Facts that age (failures, the next window) are kept as what
// they are computed from, and judged when read.
type DashFacts struct {
	UpgradeChannel       string `json:"upgradeChannel,omitempty"`
	NodeOSUpgradeChannel string `json:"nodeOSChannel,omitempty"`
	// Window is the window gating node OS upgrades: AKS's node OS schedule,
	// else the default configuration; nil when neither is configured.
	Window      *fleet.MaintenanceWindow `json:"window,omitempty"`
	LastSuccess time.Time                `json:"lastSuccess,omitzero"`
	// Failures are when operations ended Failed in the 7 days before the
	// summary was computed, oldest first, at most maxFailures.
	Failures []time.Time `json:"failures,omitempty"`
	Findings int         `json:"findings,omitempty"`
	// Worst is the most severe open finding's severity.
	Worst string `json:"worst,omitempty"`
	// ChannelProblem says why AKS cannot honour the channels (the open
	// UnsupportedChannel and ChannelLocked findings' summaries).
	ChannelProblem string     `json:"channelProblem,omitempty"`
	Stalled        int        `json:"stalled,omitempty"`
	Cells          []PoolCell `json:"cells,omitempty"`
}

// Failed7d counts the failures within 7 days before now.
func (d DashFacts) Failed7d(now time.Time) int {
	n := 0
	for _, t := range d.Failures {
		if now.Sub(t) <= failureWindow {
			n++
		}
	}
	return n
}

// NextWindow is the node OS window open at now or the next one; false when
// none is configured or none lies ahead.
func (d DashFacts) NextWindow(now time.Time) (maintenance.Interval, bool) {
	if d.Window == nil {
		return maintenance.Interval{}, false
	}
	in, found, err := maintenance.Next(*d.Window, now)
	return in, err == nil && found
}

// DashFactsOf computes a cluster's facts at now; st are its pools'
// statuses. The summary rows keep them; the dashboard's cluster page reads
// them from the cluster itself.
func DashFactsOf(c *fleet.Cluster, st []patch.PoolStatus, now time.Time) DashFacts {
	d := DashFacts{UpgradeChannel: c.UpgradeChannel, NodeOSUpgradeChannel: c.NodeOSUpgradeChannel, Window: NodeOSWindow(c)}
	d.findings(c)
	for _, u := range c.Upgrades {
		switch {
		case u.Outcome == fleet.OutcomeSucceeded && u.EndedAt.After(d.LastSuccess):
			d.LastSuccess = u.EndedAt.UTC()
		case u.Outcome == fleet.OutcomeFailed && now.Sub(u.EndedAt) <= failureWindow:
			d.Failures = append(d.Failures, u.EndedAt.UTC())
		}
	}
	slices.SortFunc(d.Failures, func(a, b time.Time) int { return a.Compare(b) })
	if len(d.Failures) > maxFailures {
		d.Failures = d.Failures[len(d.Failures)-maxFailures:]
	}
	for _, p := range st {
		if len(d.Cells) < maxCells {
			d.Cells = append(d.Cells, PoolCell{Pool: p.Pool, Status: p.Status, Compliance: p.Compliance, DaysBehind: p.DaysBehind})
		}
	}
	return d
}

func (d *DashFacts) findings(c *fleet.Cluster) {
	var problems []string
	for _, f := range c.Findings {
		if f.Status != fleet.FindingOpen {
			continue
		}
		d.Findings++
		if fleet.SeverityRank(f.Severity) > fleet.SeverityRank(d.Worst) {
			d.Worst = f.Severity
		}
		switch f.Code {
		case fleet.CodeUnsupportedChannel, fleet.CodeChannelLocked:
			problems = append(problems, f.Summary)
		case fleet.CodeUpgradeStalled:
			d.Stalled++
		}
	}
	slices.Sort(problems)
	d.ChannelProblem = clipRunes(strings.Join(problems, " "), maxProblem)
}

// NodeOSWindow is the window that gates node OS upgrades: AKS's node OS
// schedule; without one, the cluster's default configuration; nil when
// neither is configured.
func NodeOSWindow(c *fleet.Cluster) *fleet.MaintenanceWindow {
	var def *fleet.MaintenanceWindow
	for i, w := range c.Maintenance {
		switch w.Name {
		case fleet.MaintenanceNodeOS:
			return &c.Maintenance[i]
		case fleet.MaintenanceDefault:
			def = &c.Maintenance[i]
		}
	}
	return def
}

// GridRow is one cluster of the fleet grid.
type GridRow struct {
	Cluster fleet.ClusterID `json:"id"`
	Bucket  string          `json:"b"`
	Cells   []PoolCell      `json:"cells,omitempty"`
}

// FleetView is what the dashboard's fleet page shows beyond the fleet's
// compliance figures, computed with the aggregates from every summary so
// that the page reads one row (docs/dashboard.md). Facts that age are as of
// the aggregate's ComputedAt.
type FleetView struct {
	// Buckets counts the clusters per status bucket, deleted ones included.
	Buckets map[string]int `json:"buckets"`
	// DaysBehind are the median and p90 days behind over the pools behind
	// (DaysBehind > 0), DaysBehindPools how many those are.
	DaysBehindP50   int `json:"daysBehindP50"`
	DaysBehindP90   int `json:"daysBehindP90"`
	DaysBehindPools int `json:"daysBehindPools"`
	Failed7d        int `json:"failed7d"`
	Stalled         int `json:"stalled"`
	// WindowsSoon counts clusters whose node OS window is open or opens
	// within 24 hours.
	WindowsSoon int `json:"windowsSoon"`
	// Worst are the worst MaxGridClusters live clusters, worst bucket first,
	// then by name; GridOmitted counts the other live clusters.
	Worst       []GridRow `json:"worst"`
	GridOmitted int       `json:"gridOmitted"`
}

// fleetView computes the fleet page's view from every summary.
func fleetView(sums []ClusterSummary, now time.Time) FleetView {
	v := FleetView{Buckets: map[string]int{}}
	var behind []int
	var live []ClusterSummary
	for _, s := range sums {
		v.Buckets[s.Bucket()]++
		if s.Deleted {
			continue
		}
		live = append(live, s)
		for _, c := range s.Dash.Cells {
			if c.DaysBehind > 0 {
				behind = append(behind, c.DaysBehind)
			}
		}
		v.Failed7d += s.Dash.Failed7d(now)
		v.Stalled += s.Dash.Stalled
		if in, ok := s.Dash.NextWindow(now); ok && in.Start.Before(now.Add(24*time.Hour)) {
			v.WindowsSoon++
		}
	}
	slices.Sort(behind)
	if n := len(behind); n > 0 {
		v.DaysBehindP50, v.DaysBehindP90, v.DaysBehindPools = behind[(n-1)*50/100], behind[(n-1)*90/100], n
	}
	slices.SortFunc(live, func(a, b ClusterSummary) int {
		return cmp.Or(cmp.Compare(BucketRank(a.Bucket()), BucketRank(b.Bucket())),
			cmp.Compare(strings.ToLower(a.Cluster.Name), strings.ToLower(b.Cluster.Name)), cmp.Compare(a.Cluster.Key(), b.Cluster.Key()))
	})
	for i, s := range live {
		if i == MaxGridClusters {
			v.GridOmitted = len(live) - i
			break
		}
		v.Worst = append(v.Worst, GridRow{Cluster: s.Cluster, Bucket: s.Bucket(), Cells: s.Dash.Cells})
	}
	return v
}
