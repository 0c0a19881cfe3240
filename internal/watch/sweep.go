package watch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
	"github.com/upgradewatch/upgradewatch/internal/outbox"
)

// sweepLimit bounds the clusters one sweep evaluates; the rest stay due for
// the next run, so a backlog never makes a sweep overrun its schedule.
const sweepLimit = 500

// sweepWorkers is how many clusters one sweep evaluates (and dispatches) at once.
const sweepWorkers = 4

// SweepReport says what a Sweep did; it is the timer invocation's answer.
type SweepReport struct {
	Due       int `json:"due"`
	Evaluated int `json:"evaluated"`
	Changed   int `json:"changed"`
	Opened    int `json:"opened"`
	Resolved  int `json:"resolved"`
	Stale     int `json:"staleEntries"`
	Failed    int `json:"failed"`
	Refreshes int `json:"refreshesRequested"`
	// Notifications: what the outbox dispatches of this sweep did.
	Notifications outbox.Report `json:"notifications"`
	// Remediations: what the remediation pass did.
	Remediations RemediationReport `json:"remediations"`
	// Compliance: what the compliance pass did, when it ran.
	Compliance *ComplianceReport `json:"compliance,omitempty"`
	// Digest: what the daily digest pass did, when it ran.
	Digest *DigestReport `json:"digest,omitempty"`
	// Lines are the invocation's log lines (one per finding transition).
	Lines []string `json:"-"`
}

// evaluation is one due cluster's re-evaluation.
type evaluation struct {
	due   DueEntry
	out   Change
	trans []fleet.Transition
	// claims are the deliveries the evaluation's commit leased.
	claims *outbox.Claims
	err    error
}

// Sweep re-evaluates the clusters whose next evaluation has come (reading
// only the Due partition of the index, so its cost follows the clusters due,
// not the fleet), repairs index entries a failed write left behind, asks for
// ARM reads an activity left wanted, runs the remediation pass, and sends
// every notification owed by a cluster it touched. Two sweeps on one cluster
// are fenced by the repository: a finding opens once. The returned error is
// the last failure that calls for the timer's retry (fleet.ErrUnavailable); the
// report says what was done regardless.
func (a *App) Sweep(ctx context.Context, l *slog.Logger) (SweepReport, error) {
	var rep SweepReport
	if a.rules == nil {
		rep.Lines = append(rep.Lines, "no finding rules configured")
		var err error
		if rep.Compliance, err = a.compliancePass(ctx, l); err != nil {
			l.Error("compliance pass failed", "error", err)
		}
		var derr error
		if rep.Digest, derr = a.digestPass(ctx, l); derr != nil {
			l.Error("daily digest pass failed", "error", derr)
		}
		return rep, err
	}
	due, err := a.repo.Due(ctx, a.now(), sweepLimit)
	if err != nil {
		l.Error("sweep could not list due clusters", "error", err)
		rep.Lines = append(rep.Lines, "storage unavailable: "+err.Error())
		return rep, err
	}
	rep.Due = len(due)
	evals, failed := a.evaluateDue(ctx, l, due)
	for _, e := range evals {
		if err := a.sweepOne(ctx, l.With("cluster", e.due.Cluster.Key()), e, &rep); err != nil {
			failed = err
		}
	}
	// What the evaluations leased (a step recorded now, a retry that came
	// due, what an instance that stopped left behind) is sent while the
	// leases are fresh; then the remediations, and what they recorded.
	if err := a.dispatchAll(ctx, leased(evals), &rep.Notifications); err != nil {
		failed = err
	}
	touched, err := a.remediationPass(ctx, l, &rep.Remediations)
	if err != nil {
		l.Error("remediation pass failed", "error", err)
		failed = err
	}
	owed := map[string]owedDispatch{}
	for _, id := range touched {
		owed[id.Key()] = owedDispatch{id: id}
	}
	if err := a.dispatchAll(ctx, owed, &rep.Notifications); err != nil {
		failed = err
	}
	a.pruneIndex(ctx, l)
	if rep.Compliance, err = a.compliancePass(ctx, l); err != nil {
		l.Error("compliance pass failed", "error", err)
		failed = err
	}
	// After the compliance pass: the digest shows the fresh aggregate. A
	// failure leaves the sweep's answer alone (the next sweep retries it).
	if rep.Digest, err = a.digestPass(ctx, l); err != nil {
		l.Error("daily digest pass failed", "error", err)
	}
	l.Info("sweep done", "due", rep.Due, "evaluated", rep.Evaluated, "changed", rep.Changed, "opened", rep.Opened,
		"resolved", rep.Resolved, "failed", rep.Failed, "notifications_sent", rep.Notifications.Sent,
		"notifications_failed", rep.Notifications.Failed, "remediations_planned", rep.Remediations.Planned,
		"remediations_applied", rep.Remediations.Applied)
	return rep, failed
}

// pruneEvery is how often a process's sweeps remove index tombstones.
const pruneEvery = time.Hour

// pruneIndex removes the index's tombstones, at most once per pruneEvery in
// this process. A failure waits for the next sweep: tombstones only cost
// the index readers a little.
func (a *App) pruneIndex(ctx context.Context, l *slog.Logger) {
	now := a.now()
	last := a.pruned.Load()
	if last != 0 && now.Sub(time.Unix(0, last)) < pruneEvery {
		return
	}
	if !a.pruned.CompareAndSwap(last, now.UnixNano()) {
		return
	}
	n, err := a.repo.PruneIndex(ctx, now)
	if err != nil {
		l.Warn("could not remove ended index entries; the next sweep tries again", "error", err)
		a.pruned.Store(last)
		return
	}
	if n > 0 {
		l.Info("removed ended index entries", "entries", n)
	}
}

// evaluateDue re-runs the rules on the due clusters, a few at a time, each
// fenced by its partition's guard; their index changes are written together
// at the end. The error is the index write's: the commits stand, and the
// next sweep repairs the entries.
func (a *App) evaluateDue(ctx context.Context, l *slog.Logger, due []DueEntry) ([]evaluation, error) {
	ids := make([]fleet.ClusterID, len(due))
	evals := make([]evaluation, len(due))
	for i, d := range due {
		ids[i], evals[i].due = d.Cluster, d
	}
	outs, errs, idxErr := a.repo.UpdateMany(ctx, ids, sweepWorkers, func(i int, c *fleet.Cluster) error {
		// Each cluster is one worker's at a time: evals[i] is its own.
		evals[i].trans, evals[i].claims = a.evaluateAndClaim(c, a.now())
		return nil
	})
	for i := range evals {
		evals[i].out, evals[i].err = outs[i], errs[i]
		if evals[i].out.Result != Committed {
			// Computed on a state that did not commit: no leases are held.
			evals[i].trans, evals[i].claims = nil, nil
		}
	}
	if idxErr != nil {
		l.Error("findings committed but the index not updated; the next sweep repairs it", "error", idxErr)
	}
	return evals, idxErr
}

// evaluateAndClaim runs the rules on c at now and, in the same commit,
// leases the notifications c owes that are due: the dispatch then needs only
// the transaction that settles each sink's answers. Another sweep's commit
// winning the race makes the repository run this again on the winner's state,
// where its leases are: nothing is claimed twice. After a claim the rules run
// again, so that the cluster's next evaluation includes the lease ends (an
// instance that stops before sending leaves them to expire, and the Due index
// finds the cluster then).
func (a *App) evaluateAndClaim(c *fleet.Cluster, now time.Time) ([]fleet.Transition, *outbox.Claims) {
	trans := a.evaluate(c, now)
	if a.dispatcher == nil || len(c.Outbox) == 0 {
		return trans, nil
	}
	cl, changed := a.dispatcher.Claim(c, now)
	if !changed {
		return trans, nil
	}
	a.evaluate(c, now)
	return trans, cl
}

// leased lists the evaluations that leased deliveries, for dispatchAll. A
// cluster listed twice by the Due index is evaluated twice: each evaluation
// delivers its own leases (the second finds the first's and leases no more
// of those sinks).
func leased(evals []evaluation) map[string]owedDispatch {
	owed := map[string]owedDispatch{}
	for i, e := range evals {
		if e.claims != nil { // leased, or held back for an open breaker
			owed[fmt.Sprintf("%s#%d", e.due.Cluster.Key(), i)] = owedDispatch{id: e.due.Cluster, claims: e.claims}
		}
	}
	return owed
}

// sweepOne accounts for one due cluster's evaluation: a stale entry dropped
// and repaired, an ARM read asked for, its finding transitions logged.
func (a *App) sweepOne(ctx context.Context, l *slog.Logger, e evaluation, rep *SweepReport) error {
	switch {
	case errors.Is(e.err, fleet.ErrNotFound):
		rep.Stale++
		_ = a.repo.DropDue(ctx, e.due)
		return nil
	case e.err != nil:
		rep.Failed++
		l.Error("evaluation failed", "error", e.err)
		return e.err
	}
	rep.Evaluated++
	c := e.out.Cluster
	a.noteSummary(c, e.out.Seq, nil)
	if _, wanted := c.RefreshWanted(); wanted && a.RequestRefresh(e.due.Cluster, "activity") {
		// An activity changed the cluster and no ARM read followed (the
		// instance that took it stopped, or the read failed): read now.
		rep.Refreshes++
	}
	changed := e.out.Result == Committed
	if changed {
		rep.Changed++
	}
	if !changed && !c.NextEvaluation.Equal(e.due.At) {
		// Nothing to commit, yet the cluster is not due at this entry's
		// time: its deadline moved later or went away (a due entry means
		// "evaluate no later than" and is never moved by the commit that
		// postpones it), or the entry outlived an index write that failed
		// after a commit. Rewrite the cluster's entries from its state (which
		// re-files its deadline), then drop this one: in that order, a
		// failure between the two leaves an extra entry, never none.
		if err := a.repo.RepairIndex(ctx, e.due.Cluster); err != nil {
			l.Warn("index repair failed; the entry stays for the next sweep", "error", err)
			return nil
		}
		if err := a.repo.DropDue(ctx, e.due); err == nil {
			rep.Stale++
		}
	}
	for _, t := range e.trans {
		switch t.Kind {
		case fleet.TransitionOpened:
			rep.Opened++
			l.Info("finding opened", "code", t.Finding.Code, "target", t.Finding.Target, "severity", t.Finding.Severity)
		case fleet.TransitionEscalated:
			l.Info("finding escalated", "code", t.Finding.Code, "target", t.Finding.Target, "from", t.From, "severity", t.Finding.Severity)
		case fleet.TransitionResolved:
			rep.Resolved++
			l.Info("finding resolved", "code", t.Finding.Code, "target", t.Finding.Target)
		}
		rep.Lines = append(rep.Lines, fmt.Sprintf("%s %s %s %s", e.due.Cluster.Key(), t.Kind, t.Finding.Code, t.Finding.Target))
	}
	return nil
}

// Evaluate re-runs the rules on one cluster's committed state at now and
// commits what changed: the Sweep's work for one cluster. Two evaluations of
// one cluster are fenced by the repository, so a finding opens once.
// Errors: fleet.ErrNotFound, fleet.ErrUnavailable.
func (a *App) Evaluate(ctx context.Context, id fleet.ClusterID) (Change, error) {
	return a.repo.Update(ctx, id, nil, func(c *fleet.Cluster) error {
		a.evaluate(c, a.now())
		return nil
	})
}
