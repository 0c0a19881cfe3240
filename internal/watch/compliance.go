package watch

import (
	"cmp"
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
	"github.com/upgradewatch/upgradewatch/internal/patch"
)

// ComplianceStore keeps the compliance figures (implemented by
// *state.ComplianceTable, table <prefix>Compliance, docs/tables.md): one
// current summary row per cluster, a bounded set of aggregate rows (the
// fleet, per location, per subscription, per status) and one snapshot per
// UTC day. The API answers from the aggregate and day rows only, so its cost
// does not grow with the fleet.
//
// Every write is an upsert of whole rows, so writing the same figures twice
// (a redelivery, a takeover of the day) changes nothing. ClaimDay is the one
// conditional write: true for exactly one caller per day at a time, and for
// another only once the holder's lease has run out without FinishDay. All
// methods are safe for concurrent use from any number of instances; errors
// are fleet.ErrUnavailable.
type ComplianceStore interface {
	// PutSummaries upserts current summary rows (a few transactions: they
	// share one partition).
	PutSummaries(ctx context.Context, sums []ClusterSummary) error
	// Summaries reads every current summary row (one paged query).
	Summaries(ctx context.Context) ([]ClusterSummary, error)
	// PutAggregates makes the aggregate rows exactly aggs: upserts them and
	// deletes the aggregate rows of scopes that are gone.
	PutAggregates(ctx context.Context, aggs []Aggregate) error
	// Aggregate reads one aggregate row by scope; false when there is none.
	Aggregate(ctx context.Context, scope string) (Aggregate, bool, error)
	// ClaimDay takes the day's snapshot for owner until now+lease
	// (ClaimMine), or answers that it is done (ClaimDone) or held by another
	// owner whose lease runs (ClaimHeld).
	ClaimDay(ctx context.Context, day time.Time, owner string, now time.Time, lease time.Duration) (DayClaim, error)
	// PutDay writes the day's fleet row and one row per cluster.
	PutDay(ctx context.Context, day time.Time, fleetFigures Aggregate, clusters []ClusterSummary) error
	// FinishDay marks the day's snapshot done.
	FinishDay(ctx context.Context, day time.Time, owner string) error
	// History reads the fleet rows of the days from..to (UTC days,
	// inclusive), oldest first, in one query of a partition range.
	History(ctx context.Context, from, to time.Time) ([]Aggregate, error)
	// PruneDays deletes the rows of days before the given day, at most
	// limit rows, answering how many it deleted.
	PruneDays(ctx context.Context, before time.Time, limit int) (int, error)
}

// DayClaim is ClaimDay's answer.
type DayClaim string

// ClaimDay answers.
const (
	ClaimMine DayClaim = "mine" // write the snapshot, then FinishDay
	ClaimDone DayClaim = "done" // written already
	ClaimHeld DayClaim = "held" // another instance is writing it
)

// Scopes of the aggregate rows: ScopeFleet, or a prefix and a value.
const (
	ScopeFleet        = "fleet"
	ScopeLocation     = "location~"
	ScopeSubscription = "subscription~"
	ScopeStatus       = "status~"
)

// Bounds of the pool lists kept in the rows: the worst pools first, and a
// count of what was left out.
const (
	MaxSummaryPools   = 20 // per cluster
	MaxAggregatePools = 50 // per aggregate
	maxReasonChars    = 240
	maxLatencies      = 64 // per cluster, the newest within 90 days
)

// PoolBrief is a pool not UpToDate, as the compliance rows list it.
type PoolBrief struct {
	Cluster        string `json:"cluster"` // ARM ID
	SubscriptionID string `json:"subscriptionId"`
	Location       string `json:"location,omitempty"`
	Pool           string `json:"pool"`
	Status         string `json:"status"`
	BlockedBy      string `json:"blockedBy,omitempty"`
	Reason         string `json:"reason"`
	Image          string `json:"image,omitempty"`
	LatestImage    string `json:"latestImage,omitempty"`
	DaysBehind     int    `json:"daysBehind"`
}

// LatencyPoint is one operation's time-to-patch, kept on the summary so
// that wider scopes get true percentiles, not percentiles of percentiles.
type LatencyPoint struct {
	AppliedAt time.Time `json:"at"`
	Seconds   int64     `json:"s"`
}

// ClusterSummary is one cluster's current compliance: a row of PK current.
type ClusterSummary struct {
	Cluster     fleet.ClusterID
	Location    string // normalised region
	Deleted     bool
	Figures     patch.Compliance
	TimeToPatch patch.TimeToPatchFigures
	Latencies   []LatencyPoint
	// Pools are the pools not UpToDate, most days behind first, at most
	// MaxSummaryPools; PoolsOmitted counts the others.
	Pools        []PoolBrief
	PoolsOmitted int
	ComputedAt   time.Time
	Seq          int64 // the cluster's commit sequence the summary was computed from
	// Dash are the dashboard's facts of the cluster (compliance_dash.go).
	Dash DashFacts
}

// Aggregate is the compliance of a scope (the fleet, a location, a
// subscription, the clusters with pools in a status): an aggregate row, or
// a day's fleet row.
type Aggregate struct {
	Scope       string
	Clusters    int
	Figures     patch.Compliance
	TimeToPatch patch.TimeToPatchFigures
	// Pools are the scope's pools not UpToDate (of the status, for a status
	// scope), most days behind first, at most MaxAggregatePools; PoolsOmitted
	// counts the others.
	Pools        []PoolBrief
	PoolsOmitted int
	ComputedAt   time.Time
	Day          time.Time // day rows only
	// View is the dashboard's fleet page (the fleet's aggregate only; nil
	// on the others, on day rows and on rows written before it existed).
	View *FleetView
}

// Summarise computes a cluster's summary: a pure function of its state, the
// catalogue (merged with the cluster's own sightings), its policy and now.
// Node figures come from the pools' version spreads of the newest node
// snapshots, so no node row is read.
func Summarise(c *fleet.Cluster, seq int64, cat patch.Catalogue, pol fleet.Policy, now time.Time) ClusterSummary {
	now = now.UTC()
	s := ClusterSummary{Cluster: c.ID, Location: patch.NormaliseRegion(c.Location), Deleted: c.Deleted,
		ComputedAt: now.Truncate(time.Second), Seq: seq}
	if c.Deleted {
		s.Dash = DashFacts{UpgradeChannel: c.UpgradeChannel, NodeOSUpgradeChannel: c.NodeOSUpgradeChannel}
		return s
	}
	cat = patch.Merge(cat, plausible(patch.FromCluster(c))...)
	st := patch.Status(c, cat, pol, now)
	s.Dash = DashFactsOf(c, st, now)
	s.Figures = patch.Tally(st, spreadNodes(c, cat, pol, now))
	var all []PoolBrief
	for _, p := range st {
		if p.Status != patch.StatusUpToDate {
			all = append(all, brief(c, s.Location, p))
		}
	}
	sortBriefs(all)
	s.Pools, s.PoolsOmitted = bound(all, MaxSummaryPools)
	s.Latencies = latencyPoints(c, cat, now)
	s.TimeToPatch = summariseLatencies(s.Latencies, now)
	return s
}

// spreadNodes judges one node per image of each pool's version spread, as
// many times as the spread counts it.
func spreadNodes(c *fleet.Cluster, cat patch.Catalogue, pol fleet.Policy, now time.Time) []patch.NodeStatus {
	var nodes []fleet.Node
	counts := map[string]int{}
	for _, p := range c.SortedPools() {
		if p.Removed || p.Nodes == nil {
			continue
		}
		for v, n := range p.Nodes.Versions {
			name := p.Name + "/" + v
			nodes = append(nodes, fleet.Node{NodeObservation: fleet.NodeObservation{Name: name, Pool: p.Name, NodeImageVersion: v}})
			counts[name] = n
		}
	}
	var out []patch.NodeStatus
	for _, ns := range patch.Nodes(c, nodes, cat, pol, now) {
		for range counts[ns.Node] {
			out = append(out, ns)
		}
	}
	return out
}

func brief(c *fleet.Cluster, location string, p patch.PoolStatus) PoolBrief {
	return PoolBrief{Cluster: c.ID.ResourceID(), SubscriptionID: c.ID.SubscriptionID, Location: location, Pool: p.Pool,
		Status: p.Status, BlockedBy: p.Blocked, Reason: clipRunes(p.Reason, maxReasonChars), Image: p.Image,
		LatestImage: p.LatestImage, DaysBehind: p.DaysBehind}
}

// sortBriefs orders pools most days behind first, then by cluster and pool,
// so that every instance lists them alike.
func sortBriefs(ps []PoolBrief) {
	slices.SortStableFunc(ps, func(a, b PoolBrief) int {
		return cmp.Or(cmp.Compare(b.DaysBehind, a.DaysBehind), cmp.Compare(strings.ToLower(a.Cluster), strings.ToLower(b.Cluster)),
			cmp.Compare(a.Pool, b.Pool))
	})
}

func bound(ps []PoolBrief, n int) ([]PoolBrief, int) {
	if len(ps) <= n {
		return ps, 0
	}
	return ps[:n:n], len(ps) - n
}

// latencyPoints are the cluster's time-to-patch figures of the last 90 days,
// the stored figure where the Upgrade row has one, newest last.
func latencyPoints(c *fleet.Cluster, cat patch.Catalogue, now time.Time) []LatencyPoint {
	from := now.Add(-90 * 24 * time.Hour)
	var out []LatencyPoint
	for _, u := range c.Upgrades {
		var p LatencyPoint
		switch {
		case !u.AvailableSince.IsZero() && u.Outcome == fleet.OutcomeSucceeded:
			p = LatencyPoint{AppliedAt: u.EndedAt, Seconds: int64(u.TimeToPatch / time.Second)}
		default:
			l, ok := patch.TimeToPatch(u, c.Location, cat)
			if !ok {
				continue
			}
			p = LatencyPoint{AppliedAt: l.AppliedAt, Seconds: int64(l.Duration / time.Second)}
		}
		if p.AppliedAt.After(from) && !p.AppliedAt.After(now) {
			p.AppliedAt = p.AppliedAt.UTC().Truncate(time.Second)
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(a, b LatencyPoint) int {
		return cmp.Or(a.AppliedAt.Compare(b.AppliedAt), cmp.Compare(a.Seconds, b.Seconds))
	})
	if len(out) > maxLatencies {
		out = out[len(out)-maxLatencies:]
	}
	return out
}

func summariseLatencies(ps []LatencyPoint, now time.Time) patch.TimeToPatchFigures {
	ls := make([]patch.Latency, len(ps))
	for i, p := range ps {
		ls[i] = patch.Latency{AppliedAt: p.AppliedAt, Duration: time.Duration(p.Seconds) * time.Second}
	}
	return patch.Summarise(ls, now)
}

func clipRunes(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// fingerprint is what a summary says, without when it was computed: equal
// fingerprints need no write.
func fingerprint(s ClusterSummary) string {
	s.ComputedAt, s.Seq = time.Time{}, 0
	b, _ := json.Marshal(s)
	return string(b)
}

// summaryMemo remembers, per process, the fingerprint of the summary last
// written per cluster, so that a commit that changes no verdict costs
// nothing. Bounded: beyond maxMemo clusters it starts afresh (a few
// summaries are written again, nothing is lost).
type summaryMemo struct {
	mu   sync.Mutex
	last map[string]string
}

const maxMemo = 50000

// changed reports whether s differs from the last summary written for its
// cluster, recording it as written when it does.
func (m *summaryMemo) changed(s ClusterSummary) bool {
	fp := fingerprint(s)
	key := s.Cluster.Key()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.last == nil || len(m.last) >= maxMemo {
		m.last = map[string]string{}
	}
	if m.last[key] == fp {
		return false
	}
	m.last[key] = fp
	return true
}

// forget drops what is remembered of a cluster (its write failed).
func (m *summaryMemo) forget(key string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.last, key)
}

// noteSummary computes the summary of a cluster as committed and queues its
// write when it differs from the last one this process wrote: best effort,
// in the background, never failing the signal. cat is the catalogue read
// before the commit (nil: the last one this process read).
func (a *App) noteSummary(c *fleet.Cluster, seq int64, cat *patch.Catalogue) {
	if a.compliance == nil || c == nil {
		return
	}
	if cat == nil {
		cat = a.lastCatalogue()
	}
	var base patch.Catalogue
	if cat != nil {
		base = *cat
	}
	s := Summarise(c, seq, base, a.policy(c), a.now())
	if a.summaries.changed(s) {
		a.summaryQ.put(s)
	}
}

// lastCatalogue is the catalogue this process read last (nil: none yet).
func (a *App) lastCatalogue() *patch.Catalogue {
	return a.lastCat.Load()
}

// patchWake brings the cluster's next evaluation forward to when the clock
// alone changes a pool's verdict, so that the Sweep re-evaluates it then and
// rewrites its summary. Only with compliance on: nothing else reads verdicts
// in the background.
func (a *App) patchWake(c *fleet.Cluster, now time.Time) {
	if a.compliance == nil || c == nil {
		return
	}
	var cat patch.Catalogue
	if p := a.lastCatalogue(); p != nil {
		cat = *p
	}
	cat = patch.Merge(cat, plausible(patch.FromCluster(c))...)
	t := patch.NextChange(c, cat, a.policy(c), now)
	if t.IsZero() {
		return
	}
	// Whole seconds, rounded up: never before the change itself.
	if r := t.UTC().Truncate(time.Second); r.Before(t) {
		t = r.Add(time.Second)
	}
	if c.NextEvaluation.IsZero() || t.Before(c.NextEvaluation) {
		c.NextEvaluation = t.UTC()
	}
}
