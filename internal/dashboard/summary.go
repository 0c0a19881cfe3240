package dashboard

import (
	"slices"
	"strings"
	"time"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
	"github.com/upgradewatch/upgradewatch/internal/maintenance"
	"github.com/upgradewatch/upgradewatch/internal/patch"
	"github.com/upgradewatch/upgradewatch/internal/watch"
)

// Buckets are the clusters' status buckets, worst first: a cluster is in the
// bucket of its worst pool (patch statuses, docs/patch-status.md), Deleted
// when it is gone, Unknown when its patch status could not be judged. The
// compliance summaries keep the same buckets (watch.WorstFirst).
var Buckets = watch.WorstFirst

// BucketRank orders buckets worst first (0 is the worst); unknown names last.
func BucketRank(b string) int { return watch.BucketRank(b) }

// PoolCell is one pool of a cluster as the fleet grid shows it.
type PoolCell = watch.PoolCell

// ClusterRow is one cluster as the clusters and fleet pages show it.
type ClusterRow struct {
	ID                   fleet.ClusterID
	Location             string
	UpgradeChannel       string
	NodeOSUpgradeChannel string
	// ChannelProblem says why AKS cannot honour the channels (the open
	// UnsupportedChannel or ChannelLocked findings); "" when it can.
	ChannelProblem string
	// NextWindow is the next node OS window (or the one open now), in
	// WindowName's offset; zero when none is configured or known.
	NextWindow  maintenance.Interval
	WindowName  string
	WindowOff   string
	WindowKnown bool
	LastSuccess time.Time
	Pools       int
	PoolsBehind int
	PoolCells   []PoolCell
	Findings    int
	// Worst is the most severe open finding's severity ("" when none).
	Worst   string
	Bucket  string
	Deleted bool
	// Failed7d and Stalled count operations failed in the last 7 days and
	// open UpgradeStalled findings.
	Failed7d int
	Stalled  int
	// TimeToPatch lists the operations' time-to-patch of the last 90 days.
	TimeToPatch []time.Duration
}

// Summarise builds a cluster's row from its state and patch view (nil when
// the image catalogue could not be read: the bucket is then Unknown).
func Summarise(c *fleet.Cluster, pv *watch.PatchView, now time.Time) ClusterRow {
	r := ClusterRow{ID: c.ID, Location: c.Location, UpgradeChannel: c.UpgradeChannel,
		NodeOSUpgradeChannel: c.NodeOSUpgradeChannel, Deleted: c.Deleted}
	r.findings(c)
	r.window(c, now)
	r.upgrades(c, pv, now)
	r.pools(c, pv)
	return r
}

func (r *ClusterRow) findings(c *fleet.Cluster) {
	var problems []string
	for _, f := range c.Findings {
		if f.Status != fleet.FindingOpen {
			continue
		}
		r.Findings++
		if fleet.SeverityRank(f.Severity) > fleet.SeverityRank(r.Worst) {
			r.Worst = f.Severity
		}
		switch f.Code {
		case fleet.CodeUnsupportedChannel, fleet.CodeChannelLocked:
			problems = append(problems, f.Summary)
		case fleet.CodeUpgradeStalled:
			r.Stalled++
		}
	}
	slices.Sort(problems)
	r.ChannelProblem = strings.Join(problems, " ")
}

// nodeOSWindow is the window that gates node OS upgrades: AKS's node OS
// schedule; without one, the cluster's default configuration.
func nodeOSWindow(c *fleet.Cluster) (fleet.MaintenanceWindow, bool) {
	var def *fleet.MaintenanceWindow
	for i, w := range c.Maintenance {
		switch w.Name {
		case fleet.MaintenanceNodeOS:
			return w, true
		case fleet.MaintenanceDefault:
			def = &c.Maintenance[i]
		}
	}
	if def != nil {
		return *def, true
	}
	return fleet.MaintenanceWindow{}, false
}

func (r *ClusterRow) window(c *fleet.Cluster, now time.Time) {
	w, ok := nodeOSWindow(c)
	if !ok {
		return
	}
	r.WindowName, r.WindowOff = w.Name, w.UTCOffset
	if in, found, err := maintenance.Next(w, now); err == nil && found {
		r.NextWindow, r.WindowKnown = in, true
	}
}

func (r *ClusterRow) upgrades(c *fleet.Cluster, pv *watch.PatchView, now time.Time) {
	for key, u := range c.Upgrades {
		switch {
		case u.Outcome == fleet.OutcomeSucceeded && u.EndedAt.After(r.LastSuccess):
			r.LastSuccess = u.EndedAt
		case u.Outcome == fleet.OutcomeFailed && now.Sub(u.EndedAt) <= 7*24*time.Hour:
			r.Failed7d++
		}
		if d, ok := pv.Latency(key); ok && now.Sub(u.EndedAt) <= 90*24*time.Hour {
			r.TimeToPatch = append(r.TimeToPatch, d)
		}
	}
}

func (r *ClusterRow) pools(c *fleet.Cluster, pv *watch.PatchView) {
	r.Bucket = patch.StatusUpToDate
	for _, p := range c.SortedPools() {
		if p.Removed {
			continue
		}
		r.Pools++
		cell := PoolCell{Pool: p.Name, Status: patch.StatusUnknown, Compliance: patch.ComplianceUnknown}
		if st, ok := pv.Pool(p.Name); ok {
			cell = PoolCell{Pool: p.Name, Status: st.Status, Compliance: st.Compliance, DaysBehind: st.DaysBehind}
		}
		if cell.Compliance == patch.ComplianceBehind {
			r.PoolsBehind++
		}
		if BucketRank(cell.Status) < BucketRank(r.Bucket) {
			r.Bucket = cell.Status
		}
		r.PoolCells = append(r.PoolCells, cell)
	}
	if r.Deleted {
		r.Bucket = "Deleted"
	}
}

// FromSummary builds a cluster's row from its compliance summary row (what
// the clusters page reads at fleet scale instead of the cluster itself).
// What ages is judged at now: the next window, the failures of 7 days, the
// time-to-patch of 90 days.
func FromSummary(s watch.ClusterSummary, now time.Time) ClusterRow {
	d := s.Dash
	r := ClusterRow{ID: s.Cluster, Location: s.Location, UpgradeChannel: d.UpgradeChannel, NodeOSUpgradeChannel: d.NodeOSUpgradeChannel,
		ChannelProblem: d.ChannelProblem, LastSuccess: d.LastSuccess, Findings: d.Findings, Worst: d.Worst, Bucket: s.Bucket(),
		Deleted: s.Deleted, Failed7d: d.Failed7d(now), Stalled: d.Stalled, PoolCells: d.Cells}
	if d.Window != nil {
		r.WindowName, r.WindowOff = d.Window.Name, d.Window.UTCOffset
		r.NextWindow, r.WindowKnown = d.NextWindow(now)
	}
	if !s.Deleted {
		r.Pools, r.PoolsBehind = s.Figures.Pools, s.Figures.PoolsBehind
	}
	for _, l := range s.Latencies {
		if now.Sub(l.AppliedAt) <= 90*24*time.Hour {
			r.TimeToPatch = append(r.TimeToPatch, time.Duration(l.Seconds)*time.Second)
		}
	}
	return r
}
