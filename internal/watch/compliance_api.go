package watch

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrComplianceOff: the compliance figures are not kept (no ComplianceStore).
var ErrComplianceOff = errors.New("compliance figures are not kept")

// ComplianceQuery filters GET /api/compliance. Values are checked by the
// caller; empty means no filter.
type ComplianceQuery struct {
	Status         string // one of Statuses
	SubscriptionID string
	Location       string // normalised region
}

// ComplianceView answers GET /api/compliance: the figures of the most
// selective aggregate the filters name, and its bounded pool list filtered
// by the other filters.
type ComplianceView struct {
	Aggregate
	// Found is false when no aggregate row matches (no cluster in that
	// location, subscription or status): the figures are zero.
	Found bool
	// Filtered: the pool list was filtered by the filters other than the
	// scope's; it is a part of a bounded list, so it may miss pools.
	Filtered bool
}

// Compliance answers from at most one aggregate row per filter (point
// reads), never from the summaries or the Fleet table. With no aggregate yet
// (a new installation), it runs the refresh first. Errors: ErrComplianceOff,
// fleet.ErrUnavailable.
func (a *App) Compliance(ctx context.Context, q ComplianceQuery) (ComplianceView, error) {
	if a.compliance == nil {
		return ComplianceView{}, ErrComplianceOff
	}
	scopes := queryScopes(q)
	var best Aggregate
	found := false
	for i, scope := range scopes {
		agg, ok, err := a.compliance.Aggregate(ctx, scope)
		if err != nil {
			return ComplianceView{}, fmt.Errorf("read compliance %s: %w", scope, err)
		}
		if !ok && scope == ScopeFleet {
			if agg, ok, err = a.firstRefresh(ctx); err != nil {
				return ComplianceView{}, err
			}
		}
		if !ok {
			// A filter no cluster matches: nothing else need be read.
			return ComplianceView{Aggregate: Aggregate{Scope: scope}}, nil
		}
		if i == 0 || scopeSize(agg) < scopeSize(best) {
			best = agg
		}
		found = true
	}
	v := ComplianceView{Aggregate: best, Found: found}
	if len(scopes) > 1 {
		v.Filtered = true
		kept := v.Pools[:0:0]
		for _, p := range v.Pools {
			if q.keep(p) {
				kept = append(kept, p)
			}
		}
		v.Pools = kept
	}
	return v, nil
}

// firstRefresh computes the aggregates when none exist yet.
func (a *App) firstRefresh(ctx context.Context) (Aggregate, bool, error) {
	if _, err := a.RefreshCompliance(ctx, a.log.With("reason", "first request")); err != nil {
		return Aggregate{}, false, err
	}
	return a.compliance.Aggregate(ctx, ScopeFleet)
}

// queryScopes are the aggregate rows the filters name (the fleet without any).
func queryScopes(q ComplianceQuery) []string {
	var out []string
	if q.Status != "" {
		out = append(out, ScopeStatus+q.Status)
	}
	if q.Location != "" {
		out = append(out, ScopeLocation+q.Location)
	}
	if q.SubscriptionID != "" {
		out = append(out, ScopeSubscription+strings.ToLower(q.SubscriptionID))
	}
	if len(out) == 0 {
		out = []string{ScopeFleet}
	}
	return out
}

// scopeSize is how many pools a scope's list is drawn from: the smaller,
// the more complete its bounded list is for the other filters.
func scopeSize(agg Aggregate) int {
	if st, ok := strings.CutPrefix(agg.Scope, ScopeStatus); ok {
		return statusCount(agg.Figures, st)
	}
	return agg.Figures.Pools - agg.Figures.UpToDate
}

func (q ComplianceQuery) keep(p PoolBrief) bool {
	return (q.Status == "" || p.Status == q.Status) && (q.Location == "" || p.Location == q.Location) &&
		(q.SubscriptionID == "" || strings.EqualFold(p.SubscriptionID, q.SubscriptionID))
}

// ComplianceHistory is the fleet's day rows of the last days UTC days
// (today included), oldest first: one query of a partition range.
// Errors: ErrComplianceOff, fleet.ErrUnavailable.
func (a *App) ComplianceHistory(ctx context.Context, days int) ([]Aggregate, error) {
	if a.compliance == nil {
		return nil, ErrComplianceOff
	}
	now := a.now().UTC()
	to := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	from := to.AddDate(0, 0, -(days - 1))
	out, err := a.compliance.History(ctx, from, to)
	if err != nil {
		return nil, fmt.Errorf("read compliance history: %w", err)
	}
	return out, nil
}

// RefreshComplianceNow is RefreshCompliance with the App's logger (tools,
// tests, benchmarks).
func (a *App) RefreshComplianceNow(ctx context.Context) (ComplianceReport, error) {
	return a.RefreshCompliance(ctx, a.log)
}

// ComplianceSummaries reads every cluster's current summary (one paged
// query of one partition: a request per 1,000 clusters), for pages that
// list the fleet without loading a cluster. Errors: ErrComplianceOff,
// fleet.ErrUnavailable.
func (a *App) ComplianceSummaries(ctx context.Context) ([]ClusterSummary, error) {
	if a.compliance == nil {
		return nil, ErrComplianceOff
	}
	out, err := a.compliance.Summaries(ctx)
	if err != nil {
		return nil, fmt.Errorf("read compliance summaries: %w", err)
	}
	return out, nil
}
