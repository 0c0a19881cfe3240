package watch

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
	"github.com/upgradewatch/upgradewatch/internal/patch"
)

// Defaults and bounds of the compliance pass.
const (
	// DefaultComplianceEvery is how often the Sweep refreshes the aggregates.
	DefaultComplianceEvery = 15 * time.Minute
	// HistoryDays is how long the daily snapshots are kept, and the most
	// days the history answers.
	HistoryDays = 400
	// staleSummary is the age past which the pass recomputes a summary from
	// the cluster's state (the days behind grow; a write from another
	// instance may have overtaken a newer one).
	staleSummary = 24 * time.Hour
	// recomputeLimit bounds the summaries one pass recomputes (each loads
	// one cluster); the rest wait for the next pass.
	recomputeLimit = 250
	// dayLease is how long a claim of the day's snapshot holds before
	// another instance takes it over.
	dayLease = 10 * time.Minute
	// pruneRows bounds the old day rows one pass deletes.
	pruneRows = 2000
)

// ComplianceReport says what a Sweep's compliance pass did.
type ComplianceReport struct {
	Refreshed  bool   `json:"refreshed"`
	Clusters   int    `json:"clusters,omitempty"`
	Recomputed int    `json:"recomputed,omitempty"`
	Aggregates int    `json:"aggregates,omitempty"`
	Snapshot   string `json:"snapshot,omitempty"` // written|done|held: the day's snapshot
	Pruned     int    `json:"prunedDayRows,omitempty"`
}

// complianceState is the App's per-process bookkeeping of the pass.
type complianceState struct {
	owner   string     // this process, as a claimer of day snapshots
	mu      sync.Mutex // one pass at a time in a process
	last    time.Time  // of this process's last refresh (or another's it saw)
	dayDone string     // YYYYMMDD whose snapshot is known done
	pruned  string     // YYYYMMDD on which no day row was left to prune
}

func newComplianceState() *complianceState {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return &complianceState{owner: hex.EncodeToString(b)}
}

// HasCompliance reports whether the compliance figures are kept.
func (a *App) HasCompliance() bool { return a.compliance != nil }

// compliancePass refreshes the aggregates when the last refresh (this
// process's, or another's the fleet row shows) is ComplianceEvery old. A
// sweep with nothing to refresh reads nothing.
func (a *App) compliancePass(ctx context.Context, l *slog.Logger) (*ComplianceReport, error) {
	if a.compliance == nil {
		return nil, nil
	}
	now := a.now()
	cs := a.cstate
	cs.mu.Lock()
	recent := !cs.last.IsZero() && now.Sub(cs.last) < a.complianceEvery
	cs.mu.Unlock()
	if recent {
		return nil, nil
	}
	agg, ok, err := a.compliance.Aggregate(ctx, ScopeFleet)
	if err != nil {
		return nil, err
	}
	if ok && now.Sub(agg.ComputedAt) < a.complianceEvery && now.Format(dayLayout) == agg.ComputedAt.Format(dayLayout) &&
		a.dayKnownDone(now) {
		cs.mu.Lock()
		cs.last = agg.ComputedAt
		cs.mu.Unlock()
		return nil, nil
	}
	rep, err := a.RefreshCompliance(ctx, l)
	return &rep, err
}

const dayLayout = "20060102"

func (a *App) dayKnownDone(now time.Time) bool {
	a.cstate.mu.Lock()
	defer a.cstate.mu.Unlock()
	return a.cstate.dayDone == now.UTC().Format(dayLayout)
}

// RefreshCompliance recomputes the aggregates from every current summary
// row (one paged query), after recomputing summaries a day old from their
// clusters' state; once per UTC day it also writes the day's snapshot
// (exactly once across instances) and removes days past HistoryDays.
// Errors: fleet.ErrUnavailable.
func (a *App) RefreshCompliance(ctx context.Context, l *slog.Logger) (ComplianceReport, error) {
	var rep ComplianceReport
	if a.compliance == nil {
		return rep, nil
	}
	cs := a.cstate
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if a.summaryQ != nil {
		// This process's own pending summaries first.
		_ = a.summaryQ.idle(ctx)
	}
	now := a.now().UTC()
	sums, err := a.compliance.Summaries(ctx)
	if err != nil {
		return rep, fmt.Errorf("read compliance summaries: %w", err)
	}
	rep.Recomputed = a.recomputeStale(ctx, l, sums, now)
	aggs := Aggregates(sums, now)
	if err := a.compliance.PutAggregates(ctx, aggs); err != nil {
		return rep, fmt.Errorf("write compliance aggregates: %w", err)
	}
	cs.last = now
	rep.Refreshed, rep.Aggregates = true, len(aggs)
	for _, s := range sums {
		if !s.Deleted {
			rep.Clusters++
		}
	}
	if rep.Snapshot, err = a.daySnapshot(ctx, now, aggs[0], sums); err != nil {
		l.Warn("compliance snapshot of the day not written; the next pass tries again", "error", err)
	}
	rep.Pruned = a.pruneDays(ctx, l, now)
	l.Info("compliance refreshed", "clusters", rep.Clusters, "recomputed", rep.Recomputed, "aggregates", rep.Aggregates,
		"snapshot", rep.Snapshot, "pruned_day_rows", rep.Pruned)
	return rep, nil
}

// recomputeStale recomputes, from their clusters' committed state, the
// summaries older than staleSummary (at most recomputeLimit, oldest first),
// writes them and replaces them in sums. Failures leave the old summary.
func (a *App) recomputeStale(ctx context.Context, l *slog.Logger, sums []ClusterSummary, now time.Time) int {
	var idx []int
	for i, s := range sums {
		if !s.Deleted && now.Sub(s.ComputedAt) >= staleSummary {
			idx = append(idx, i)
		}
	}
	if len(idx) == 0 {
		return 0
	}
	sortByAge(sums, idx)
	if len(idx) > recomputeLimit {
		idx = idx[:recomputeLimit]
	}
	var cat patch.Catalogue
	if p := a.patchSnapshot(ctx, fleet.ClusterID{}); p != nil {
		cat = *p
	}
	var fresh []ClusterSummary
	for _, i := range idx {
		c, err := a.repo.Cluster(ctx, sums[i].Cluster)
		switch {
		case errors.Is(err, fleet.ErrNotFound):
			c = &fleet.Cluster{ID: sums[i].Cluster, Deleted: true}
		case err != nil:
			l.Warn("cluster not read for its compliance summary; the next pass tries again", "cluster", sums[i].Cluster.Key(), "error", err)
			continue
		}
		s := Summarise(c, max(sums[i].Seq, 0), cat, a.policy(c), now)
		sums[i] = s
		fresh = append(fresh, s)
	}
	if err := a.compliance.PutSummaries(ctx, fresh); err != nil {
		l.Warn("recomputed compliance summaries not written", "summaries", len(fresh), "error", err)
	}
	for _, s := range fresh {
		a.summaries.changed(s)
	}
	return len(fresh)
}

func sortByAge(sums []ClusterSummary, idx []int) {
	slices.SortStableFunc(idx, func(i, j int) int { return sums[i].ComputedAt.Compare(sums[j].ComputedAt) })
}

// daySnapshot writes today's snapshot unless this process knows it done:
// claimed (insert if absent; a lapsed claim is taken over), written with
// upserts (a takeover writes the same rows again), marked done.
func (a *App) daySnapshot(ctx context.Context, now time.Time, fleetAgg Aggregate, sums []ClusterSummary) (string, error) {
	day := now.Format(dayLayout)
	if a.cstate.dayDone == day {
		return "", nil
	}
	start := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	claim, err := a.compliance.ClaimDay(ctx, start, a.cstate.owner, now, dayLease)
	switch {
	case err != nil:
		return "", err
	case claim == ClaimDone:
		a.cstate.dayDone = day
		return string(ClaimDone), nil
	case claim != ClaimMine:
		return string(ClaimHeld), nil
	}
	var live []ClusterSummary
	for _, s := range sums {
		if !s.Deleted {
			live = append(live, s)
		}
	}
	if err := a.compliance.PutDay(ctx, start, fleetAgg, live); err != nil {
		return "", err
	}
	if err := a.compliance.FinishDay(ctx, start, a.cstate.owner); err != nil {
		return "", err
	}
	a.cstate.dayDone = day
	return "written", nil
}

// pruneDays deletes day rows past HistoryDays, a bounded number per pass,
// until none is left today.
func (a *App) pruneDays(ctx context.Context, l *slog.Logger, now time.Time) int {
	day := now.Format(dayLayout)
	if a.cstate.pruned == day {
		return 0
	}
	before := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC).AddDate(0, 0, -(HistoryDays - 1))
	n, err := a.compliance.PruneDays(ctx, before, pruneRows)
	if err != nil {
		l.Warn("old compliance days not removed; the next pass tries again", "error", err)
		return n
	}
	if n < pruneRows {
		a.cstate.pruned = day
	}
	return n
}

// Aggregates computes the aggregate rows from the current summaries: the
// fleet first, then per location, per subscription and per status. Deleted
// clusters count nowhere.
func Aggregates(sums []ClusterSummary, now time.Time) []Aggregate {
	type acc struct {
		agg   Aggregate
		lats  []LatencyPoint
		pools []PoolBrief
		total int // pools not UpToDate (of the status) in scope
	}
	scopes := map[string]*acc{ScopeFleet: {agg: Aggregate{Scope: ScopeFleet}}}
	order := []string{ScopeFleet}
	get := func(scope string) *acc {
		if x, ok := scopes[scope]; ok {
			return x
		}
		x := &acc{agg: Aggregate{Scope: scope}}
		scopes[scope] = x
		order = append(order, scope)
		return x
	}
	for _, s := range sums {
		if s.Deleted {
			continue
		}
		in := []string{ScopeFleet, ScopeSubscription + strings.ToLower(s.Cluster.SubscriptionID)}
		if s.Location != "" {
			in = append(in, ScopeLocation+s.Location)
		}
		for _, st := range statusesOf(s) {
			in = append(in, ScopeStatus+st)
		}
		for _, scope := range in {
			x := get(scope)
			x.agg.Clusters++
			x.agg.Figures = patch.Add(x.agg.Figures, s.Figures)
			x.lats = append(x.lats, s.Latencies...)
			status, isStatus := strings.CutPrefix(scope, ScopeStatus)
			for _, p := range s.Pools {
				if !isStatus || p.Status == status {
					x.pools = append(x.pools, p)
				}
			}
			if isStatus {
				x.total += statusCount(s.Figures, status)
			} else {
				x.total += s.Figures.Pools - s.Figures.UpToDate
			}
		}
	}
	out := make([]Aggregate, 0, len(order))
	for _, scope := range order {
		x := scopes[scope]
		sortBriefs(x.pools)
		x.agg.Pools, _ = bound(x.pools, MaxAggregatePools)
		x.agg.PoolsOmitted = max(x.total-len(x.agg.Pools), 0)
		x.agg.TimeToPatch = summariseLatencies(x.lats, now)
		x.agg.ComputedAt = now.Truncate(time.Second)
		out = append(out, x.agg)
	}
	v := fleetView(sums, now)
	out[0].View = &v
	return out
}

// Statuses lists the patch statuses, in the order the API shows them.
var Statuses = []string{patch.StatusUpToDate, patch.StatusAwaitingWindow, patch.StatusRolling, patch.StatusBehind,
	patch.StatusBlocked, patch.StatusFailed, patch.StatusUnmanaged, patch.StatusNotPatched, patch.StatusUnknown}

// statusesOf lists the statuses a cluster has pools in.
func statusesOf(s ClusterSummary) []string {
	var out []string
	for _, st := range Statuses {
		if statusCount(s.Figures, st) > 0 {
			out = append(out, st)
		}
	}
	return out
}

// statusCount is how many pools of the figures are in a status.
func statusCount(c patch.Compliance, status string) int {
	return map[string]int{patch.StatusUpToDate: c.UpToDate, patch.StatusAwaitingWindow: c.AwaitingWindow,
		patch.StatusRolling: c.Rolling, patch.StatusBehind: c.Behind, patch.StatusBlocked: c.Blocked, patch.StatusFailed: c.Failed,
		patch.StatusUnmanaged: c.Unmanaged, patch.StatusNotPatched: c.NotPatched, patch.StatusUnknown: c.Unknown}[status]
}

// StatusCount is how many pools of the figures are in a status.
func StatusCount(c patch.Compliance, status string) int { return statusCount(c, status) }
