package handlers

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"time"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
	"github.com/upgradewatch/upgradewatch/internal/outbox"
	"github.com/upgradewatch/upgradewatch/internal/remediate"
	"github.com/upgradewatch/upgradewatch/internal/state"
)

// Executor carries out one remediation in ARM (implemented by
// *remediate.Executor).
type Executor interface {
	Apply(ctx context.Context, id fleet.ClusterID, r fleet.Remediation) (remediate.Result, error)
}

var _ Executor = (*remediate.Executor)(nil)

// Remediator is what the Sweep's remediation pass needs. Remediation is off
// unless a cluster opts in (tag upgradewatch.remediate or the policy), and
// Ceiling caps what any cluster may opt into.
type Remediator struct {
	// Policy resolves a cluster's policy (policy.Set.For).
	Policy func(c *fleet.Cluster) fleet.Policy
	// Ceiling is UPGRADEWATCH_REMEDIATION: off, dry-run or apply.
	Ceiling string
	// PerSweep caps the remediations one sweep records (dry runs included).
	PerSweep int
	// Executor calls ARM; nil allows dry runs only.
	Executor Executor
	// Outbox is the notification configuration the steps are recorded with.
	Outbox outbox.Config
	// Owner names this instance in remediation leases.
	Owner string
	// Timeout bounds one ARM call (DefaultRemediationTimeout when zero).
	Timeout time.Duration
}

// Remediation defaults.
const (
	DefaultRemediationsPerSweep = 5
	DefaultRemediationTimeout   = 2 * time.Minute
	// remediationLease holds a remediation while its ARM call runs.
	remediationLease = 10 * time.Minute
	// remediationRetry is the wait after a transient ARM failure, and
	// remediationAttempts how many tries a remediation gets.
	remediationRetry    = 30 * time.Minute
	remediationAttempts = 3
	// remediationsKept bounds the remediations a cluster's state keeps; the
	// older finished ones move to the archive.
	remediationsKept = 50
	// remediationCandidates bounds the clusters one sweep considers.
	remediationCandidates = 200
)

type remediationSummary struct {
	Planned int `json:"planned"`
	Applied int `json:"applied"`
	Skipped int `json:"skipped"`
	Retry   int `json:"retrying"`
	Failed  int `json:"failed"`
}

// remediationPass plans (and, where a cluster opted into apply, carries out)
// at most PerSweep remediations across the fleet, at most one per cluster.
// It returns the clusters whose outbox it added to.
func (s *Server) remediationPass(ctx context.Context, l *slog.Logger, sum *remediationSummary) ([]fleet.ClusterID, error) {
	rm := s.remediator
	if rm == nil || rm.Ceiling == fleet.RemediateOff || rm.Ceiling == "" {
		return nil, nil
	}
	open, err := s.sweeper.OpenFindings(ctx)
	if err != nil {
		return nil, err
	}
	// The clusters with a remediable finding, the longest-waiting first.
	first := map[string]time.Time{}
	ids := map[string]fleet.ClusterID{}
	for _, e := range open {
		if !remediate.Remediable(&e.Finding) {
			continue
		}
		k := e.Cluster.Key()
		if t, ok := first[k]; !ok || e.Finding.OpenedAt.Before(t) {
			first[k] = e.Finding.OpenedAt
		}
		ids[k] = e.Cluster
	}
	keys := make([]string, 0, len(ids))
	for k := range ids {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if !first[keys[i]].Equal(first[keys[j]]) {
			return first[keys[i]].Before(first[keys[j]])
		}
		return keys[i] < keys[j]
	})
	budget := rm.PerSweep
	if budget <= 0 {
		budget = DefaultRemediationsPerSweep
	}
	var touched []fleet.ClusterID
	var failed error
	for n, k := range keys {
		if budget == 0 || n >= remediationCandidates || ctx.Err() != nil {
			break
		}
		id := ids[k]
		did, err := s.remediateCluster(ctx, l.With("cluster", k), id, sum)
		if err != nil {
			failed = err
			continue
		}
		if did {
			budget--
			touched = append(touched, id)
		}
	}
	return touched, failed
}

// remediateCluster records the cluster's next remediation, if any, and in
// apply mode carries it out. Two sweeps racing on one cluster record it once:
// the record is committed under the partition's guard, and only the sweep
// whose commit made it calls ARM.
func (s *Server) remediateCluster(ctx context.Context, l *slog.Logger, id fleet.ClusterID, sum *remediationSummary) (bool, error) {
	rm := s.remediator
	var rec *fleet.Remediation
	_, err := s.sweeper.Update(ctx, id, func(c *fleet.Cluster, now time.Time) bool {
		rec = nil
		d := remediate.Decide(c, rm.Policy(c), rm.Ceiling, now)
		for _, sk := range d.Skips {
			l.Debug("remediation skipped", "code", sk.Code, "target", sk.Target, "reason", sk.Reason)
		}
		if d.Next == nil || (d.Mode == fleet.RemediateApply && rm.Executor == nil) {
			return false
		}
		r := *d.Next
		r.UpdatedAt = now
		if r.Mode == fleet.RemediateDryRun {
			r.Status = fleet.RemediationDryRun
		} else {
			r.Status, r.LeaseOwner, r.LeaseUntil, r.RetryAt = fleet.RemediationApplying, rm.Owner, now.Add(remediationLease), time.Time{}
		}
		if c.Remediations == nil {
			c.Remediations = map[string]*fleet.Remediation{}
		}
		c.Remediations[r.ID] = &r
		if r.Attempt <= 1 {
			outbox.AddRemediationStep(c, &r, fleet.StepRemediationPlanned, now, rm.Outbox)
		}
		pruneRemediations(c)
		rec = &r
		return true
	})
	if err != nil || rec == nil {
		if errors.Is(err, state.ErrNotFound) {
			err = nil
		}
		return false, err
	}
	sum.Planned++
	l = l.With("remediation", rec.ID, "action", rec.Action, "code", rec.Code, "target", rec.Target, "mode", rec.Mode)
	l.Info("remediation planned", "detail", rec.Detail, "attempt", rec.Attempt)
	if rec.Mode != fleet.RemediateApply {
		return true, nil
	}

	actx, cancel := context.WithTimeout(ctx, cmp.Or(rm.Timeout, DefaultRemediationTimeout))
	res, applyErr := rm.Executor.Apply(actx, id, *rec)
	cancel()
	_, err = s.sweeper.Update(context.WithoutCancel(ctx), id, func(c *fleet.Cluster, now time.Time) bool {
		r := c.Remediations[rec.ID]
		if r == nil {
			return false
		}
		r.UpdatedAt, r.LeaseOwner, r.LeaseUntil = now, "", time.Time{}
		switch {
		case applyErr == nil && res.Status == fleet.RemediationApplied:
			r.Status, r.Error = fleet.RemediationApplied, ""
			if res.Detail != "" {
				r.Detail = res.Detail
			}
			outbox.AddRemediationStep(c, r, fleet.StepRemediationApplied, now, rm.Outbox)
		case applyErr == nil:
			r.Status, r.Error = fleet.RemediationSkipped, res.Detail
		case errors.Is(applyErr, remediate.ErrTransient) && r.Attempt < remediationAttempts:
			r.Status, r.Error, r.RetryAt = fleet.RemediationRetrying, applyErr.Error(), now.Add(remediationRetry)
		default:
			r.Status, r.Error = fleet.RemediationFailed, applyErr.Error()
			outbox.AddRemediationStep(c, r, fleet.StepRemediationFailed, now, rm.Outbox)
		}
		return true
	})
	switch {
	case applyErr == nil && res.Status == fleet.RemediationApplied:
		sum.Applied++
		l.Info("remediation applied", "detail", res.Detail)
	case applyErr == nil:
		sum.Skipped++
		l.Info("remediation not needed", "detail", res.Detail)
	case errors.Is(applyErr, remediate.ErrTransient) && rec.Attempt < remediationAttempts:
		sum.Retry++
		l.Warn("remediation failed; will retry", "error", applyErr)
	default:
		sum.Failed++
		l.Error("remediation failed", "error", applyErr)
	}
	if err != nil {
		// ARM was called; the lease runs out and a later sweep finds the
		// change made (or makes it), so nothing is done twice for good.
		return true, fmt.Errorf("record remediation result: %w", err)
	}
	return true, nil
}

// pruneRemediations keeps the newest remediations; the older finished ones
// leave the state (for the archive).
func pruneRemediations(c *fleet.Cluster) {
	if len(c.Remediations) <= remediationsKept {
		return
	}
	var done []*fleet.Remediation
	for _, r := range c.Remediations {
		if r.Terminal() {
			done = append(done, r)
		}
	}
	sort.Slice(done, func(i, j int) bool { return done[i].UpdatedAt.Before(done[j].UpdatedAt) })
	for _, r := range done[:min(len(done), len(c.Remediations)-remediationsKept)] {
		delete(c.Remediations, r.ID)
	}
}
