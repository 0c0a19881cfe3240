package watch

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
)

// Executor carries out one remediation in ARM (implemented by
// *armexec.Executor, internal/remediate/armexec). Errors wrapping
// remediate.ErrTransient may pass and are retried (up to
// remediationAttempts); any other error is final. Apply
// is called only by the sweep whose commit took the remediation's lease, so
// it is not called twice for one attempt while the lease holds. Safe for
// concurrent use.
type Executor interface {
	Apply(ctx context.Context, id fleet.ClusterID, r fleet.Remediation) (remediate.Result, error)
}

// Remediation configures the Sweep's remediation pass. Remediation is off
// unless a cluster opts in (tag upgradewatch.remediate or the policy), and
// Ceiling caps what any cluster may opt into.
type Remediation struct {
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

// RemediationReport says what a remediation pass did.
type RemediationReport struct {
	Planned int `json:"planned"`
	Applied int `json:"applied"`
	Skipped int `json:"skipped"`
	Retry   int `json:"retrying"`
	Failed  int `json:"failed"`
}

// remediationPass plans (and, where a cluster opted into apply, carries out)
// at most PerSweep remediations across the fleet, at most one per cluster,
// the longest-waiting clusters first. It returns the clusters whose outbox
// it added to.
func (a *App) remediationPass(ctx context.Context, l *slog.Logger, rep *RemediationReport) ([]fleet.ClusterID, error) {
	rm := a.remediate
	if rm == nil || rm.Ceiling == fleet.RemediateOff || rm.Ceiling == "" {
		return nil, nil
	}
	ids, err := a.remediable(ctx)
	if err != nil {
		return nil, err
	}
	budget := rm.PerSweep
	if budget <= 0 {
		budget = DefaultRemediationsPerSweep
	}
	var touched []fleet.ClusterID
	var failed error
	for n, id := range ids {
		if budget <= 0 || n >= remediationCandidates || ctx.Err() != nil {
			break
		}
		did, err := a.remediateCluster(ctx, l.With("cluster", id.Key()), id, rep)
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

// remediable lists the clusters with a remediable open finding, the one
// whose finding has waited longest first.
func (a *App) remediable(ctx context.Context) ([]fleet.ClusterID, error) {
	open, err := a.repo.OpenFindings(ctx)
	if err != nil {
		return nil, err
	}
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
	out := make([]fleet.ClusterID, len(keys))
	for i, k := range keys {
		out[i] = ids[k]
	}
	return out, nil
}

// remediateCluster records the cluster's next remediation, if any, and in
// apply mode carries it out. Two sweeps racing on one cluster record it once:
// the record (with its lease) is committed under the partition's guard, and
// only the sweep whose commit made it calls ARM.
func (a *App) remediateCluster(ctx context.Context, l *slog.Logger, id fleet.ClusterID, rep *RemediationReport) (bool, error) {
	rec, err := a.planRemediation(ctx, l, id)
	if err != nil || rec == nil {
		if errors.Is(err, fleet.ErrNotFound) {
			err = nil
		}
		return false, err
	}
	rep.Planned++
	l = l.With("remediation", rec.ID, "action", rec.Action, "code", rec.Code, "target", rec.Target, "mode", rec.Mode)
	l.Info("remediation planned", "detail", rec.Detail, "attempt", rec.Attempt)
	if rec.Mode != fleet.RemediateApply {
		return true, nil
	}
	rm := a.remediate
	actx, cancel := context.WithTimeout(ctx, cmp.Or(rm.Timeout, DefaultRemediationTimeout))
	res, applyErr := rm.Executor.Apply(actx, id, *rec)
	cancel()
	o := outcomeOf(res, applyErr, rec.Attempt)
	_, err = a.modify(context.WithoutCancel(ctx), id, func(c *fleet.Cluster, now time.Time) bool {
		return o.record(c, rec.ID, now, rm.Outbox)
	})
	o.report(l, rep)
	if err != nil {
		// ARM was called; the lease runs out and a later sweep finds the
		// change made (or makes it), so nothing is done twice for good.
		return true, fmt.Errorf("record remediation result: %w", err)
	}
	return true, nil
}

// planRemediation commits the cluster's next remediation as remediate.Decide
// plans it: a dry run recorded as such, or an apply under this instance's
// lease. nil when there is nothing to do.
func (a *App) planRemediation(ctx context.Context, l *slog.Logger, id fleet.ClusterID) (*fleet.Remediation, error) {
	rm := a.remediate
	var rec *fleet.Remediation
	_, err := a.modify(ctx, id, func(c *fleet.Cluster, now time.Time) bool {
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
	return rec, err
}

// outcome is how an ARM call for a remediation ended: the one place its
// status is decided, for the record and for the report alike.
type outcome struct {
	status string // fleet.Remediation… status
	res    remediate.Result
	err    error
}

func outcomeOf(res remediate.Result, err error, attempt int) outcome {
	switch {
	case err == nil && res.Status == fleet.RemediationApplied:
		return outcome{status: fleet.RemediationApplied, res: res}
	case err == nil:
		return outcome{status: fleet.RemediationSkipped, res: res}
	case errors.Is(err, remediate.ErrTransient) && attempt < remediationAttempts:
		return outcome{status: fleet.RemediationRetrying, err: err}
	}
	return outcome{status: fleet.RemediationFailed, err: err}
}

// record folds the outcome into the remediation and releases its lease;
// false when the remediation left the state meanwhile.
func (o outcome) record(c *fleet.Cluster, id string, now time.Time, cfg outbox.Config) bool {
	r := c.Remediations[id]
	if r == nil {
		return false
	}
	r.UpdatedAt, r.LeaseOwner, r.LeaseUntil, r.Status = now, "", time.Time{}, o.status
	switch o.status {
	case fleet.RemediationApplied:
		r.Error = ""
		if o.res.Detail != "" {
			r.Detail = o.res.Detail
		}
		outbox.AddRemediationStep(c, r, fleet.StepRemediationApplied, now, cfg)
	case fleet.RemediationSkipped:
		r.Error = o.res.Detail
	case fleet.RemediationRetrying:
		r.Error, r.RetryAt = o.err.Error(), now.Add(remediationRetry)
	default:
		r.Error = o.err.Error()
		outbox.AddRemediationStep(c, r, fleet.StepRemediationFailed, now, cfg)
	}
	return true
}

// report counts and logs the outcome.
func (o outcome) report(l *slog.Logger, rep *RemediationReport) {
	switch o.status {
	case fleet.RemediationApplied:
		rep.Applied++
		l.Info("remediation applied", "detail", o.res.Detail)
	case fleet.RemediationSkipped:
		rep.Skipped++
		l.Info("remediation not needed", "detail", o.res.Detail)
	case fleet.RemediationRetrying:
		rep.Retry++
		l.Warn("remediation failed; will retry", "error", o.err)
	default:
		rep.Failed++
		l.Error("remediation failed", "error", o.err)
	}
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
