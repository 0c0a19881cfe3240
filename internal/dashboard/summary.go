package dashboard

import (
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
// the catalogue could not be read: every pool Unknown), with the facts the
// summary rows keep (watch.DashFactsOf), so a row read from a summary and
// one built from the cluster agree.
func Summarise(c *fleet.Cluster, pv *watch.PatchView, now time.Time) ClusterRow {
	var st []patch.PoolStatus
	for _, p := range c.SortedPools() {
		if p.Removed {
			continue
		}
		ps, ok := pv.Pool(p.Name)
		if !ok {
			ps = patch.PoolStatus{Pool: p.Name, Status: patch.StatusUnknown, Compliance: patch.ComplianceUnknown}
		}
		st = append(st, ps)
	}
	r := fromFacts(c.ID, c.Location, c.Deleted, watch.DashFactsOf(c, st, now), now)
	r.Bucket = patch.StatusUpToDate
	for _, ps := range st {
		r.Pools++
		if ps.Compliance == patch.ComplianceBehind {
			r.PoolsBehind++
		}
		if BucketRank(ps.Status) < BucketRank(r.Bucket) {
			r.Bucket = ps.Status
		}
	}
	if r.Deleted {
		r.Bucket, r.Pools, r.PoolsBehind = watch.BucketDeleted, 0, 0
	}
	for key, u := range c.Upgrades {
		if d, ok := pv.Latency(key); ok && now.Sub(u.EndedAt) <= 90*24*time.Hour {
			r.TimeToPatch = append(r.TimeToPatch, d)
		}
	}
	return r
}

// fromFacts is the part of a row both sources give alike.
func fromFacts(id fleet.ClusterID, location string, deleted bool, d watch.DashFacts, now time.Time) ClusterRow {
	r := ClusterRow{ID: id, Location: location, UpgradeChannel: d.UpgradeChannel, NodeOSUpgradeChannel: d.NodeOSUpgradeChannel,
		ChannelProblem: d.ChannelProblem, LastSuccess: d.LastSuccess, Findings: d.Findings, Worst: d.Worst,
		Deleted: deleted, Failed7d: d.Failed7d(now), Stalled: d.Stalled, PoolCells: d.Cells}
	if d.Window != nil {
		r.WindowName, r.WindowOff = d.Window.Name, d.Window.UTCOffset
		r.NextWindow, r.WindowKnown = d.NextWindow(now)
	}
	return r
}

// FromSummary builds a cluster's row from its compliance summary row (what
// the clusters page reads at fleet scale instead of the cluster itself).
// What ages is judged at now: the next window, the failures of 7 days, the
// time-to-patch of 90 days.
func FromSummary(s watch.ClusterSummary, now time.Time) ClusterRow {
	r := fromFacts(s.Cluster, s.Location, s.Deleted, s.Dash, now)
	r.Bucket = s.Bucket()
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
