package handlers

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"sync"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
	"github.com/upgradewatch/upgradewatch/internal/host"
	"github.com/upgradewatch/upgradewatch/internal/outbox"
	"github.com/upgradewatch/upgradewatch/internal/state"
)

// FunctionSweep is the timerTrigger that re-evaluates clusters whose
// time-based findings are due: POST /Sweep, binding `timer`.
const FunctionSweep = "Sweep"

// sweepLimit bounds the clusters one sweep evaluates; the rest stay due for
// the next run, so a backlog never makes a sweep overrun its schedule.
const sweepLimit = 500

// sweepWorkers is how many clusters one sweep evaluates at once.
const sweepWorkers = 4

type sweepSummary struct {
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
	Remediations remediationSummary `json:"remediations"`
}

// sweep reads only the Due partition of FleetIndex, so its cost follows the
// number of clusters due, not the size of the fleet.
func (s *Server) sweep(w http.ResponseWriter, r *http.Request) {
	l := s.log.With("function", FunctionSweep, "invocation_id", r.Header.Get("X-Azure-Functions-InvocationId"))
	var sum sweepSummary
	var logs []string
	respond := func(status int) {
		host.WriteResponse(w, status, host.InvokeResponse{Logs: logs, ReturnValue: sum})
	}
	if _, _, err := host.DecodeRequest(r.Body, s.maxBody); err != nil && !errors.Is(err, host.ErrMalformed) {
		l.Warn("could not read the timer invocation", "error", err)
	}
	if s.sweeper == nil {
		logs = append(logs, "no finding rules configured")
		respond(http.StatusOK)
		return
	}
	due, err := s.sweeper.Due(r.Context(), s.now(), sweepLimit)
	if err != nil {
		l.Error("sweep could not list due clusters", "error", err)
		logs = append(logs, "storage unavailable: "+err.Error())
		respond(statusFor(err))
		return
	}
	sum.Due = len(due)
	// Clusters are evaluated a few at a time, each fenced by its partition's
	// guard; their index changes are written together at the end.
	ids := make([]fleet.ClusterID, len(due))
	for i, d := range due {
		ids[i] = d.Cluster
	}
	outs, errs, idxErr := s.sweeper.EvaluateMany(r.Context(), ids, sweepWorkers)
	type result struct {
		d   state.DueEntry
		out state.Evaluated
		err error
	}
	results := make([]result, len(due))
	for i := range due {
		results[i] = result{due[i], outs[i], errs[i]}
	}

	var failed error
	for _, res := range results {
		d, out, err := res.d, res.out, res.err
		cl := l.With("cluster", d.Cluster.Key())
		switch {
		case errors.Is(err, state.ErrNotFound):
			sum.Stale++
			_ = s.sweeper.DropDue(r.Context(), d)
			continue
		case err != nil:
			sum.Failed++
			failed = err
			cl.Error("evaluation failed", "error", err)
			continue
		}
		sum.Evaluated++
		if out.RefreshWanted && s.enrich != nil {
			// An activity changed the cluster and no ARM read followed (the
			// instance that took it stopped, or the read failed): read now.
			s.enrich.request(d.Cluster, "activity")
			sum.Refreshes++
		}
		if out.Changed {
			sum.Changed++
		}
		if !out.Changed && !out.NextEvaluation.Equal(d.At) {
			// Nothing to commit, yet the cluster is not due at this entry's
			// time: the entry outlived an index write that failed after a
			// commit. Drop it and rewrite the cluster's entries from its state.
			if err := s.sweeper.DropDue(r.Context(), d); err == nil {
				sum.Stale++
			}
			if err := s.sweeper.RepairIndex(r.Context(), d.Cluster); err != nil {
				cl.Warn("index repair failed", "error", err)
			}
		}
		for _, t := range out.Transitions {
			switch t.Kind {
			case fleet.TransitionOpened:
				sum.Opened++
				cl.Info("finding opened", "code", t.Finding.Code, "target", t.Finding.Target, "severity", t.Finding.Severity)
			case fleet.TransitionEscalated:
				cl.Info("finding escalated", "code", t.Finding.Code, "target", t.Finding.Target, "from", t.From, "severity", t.Finding.Severity)
			case fleet.TransitionResolved:
				sum.Resolved++
				cl.Info("finding resolved", "code", t.Finding.Code, "target", t.Finding.Target)
			}
			logs = append(logs, fmt.Sprintf("%s %s %s %s", d.Cluster.Key(), t.Kind, t.Finding.Code, t.Finding.Target))
		}
	}
	if idxErr != nil {
		l.Error("findings committed but the index not updated; the next sweep repairs it", "error", idxErr)
		failed = idxErr
	}

	// Remediations, then every notification owed by a cluster this sweep
	// evaluated or remediated: a step recorded now, a retry that came due, or
	// what an instance that stopped left behind.
	owed := map[string]fleet.ClusterID{}
	for _, res := range results {
		if res.err == nil && res.out.Outbox > 0 {
			owed[res.d.Cluster.Key()] = res.d.Cluster
		}
	}
	touched, err := s.remediationPass(r.Context(), l, &sum.Remediations)
	if err != nil {
		l.Error("remediation pass failed", "error", err)
		failed = err
	}
	for _, id := range touched {
		owed[id.Key()] = id
	}
	if err := s.dispatchAll(r.Context(), owed, &sum.Notifications); err != nil {
		failed = err
	}
	l.Info("sweep done", "due", sum.Due, "evaluated", sum.Evaluated, "changed", sum.Changed, "opened", sum.Opened,
		"resolved", sum.Resolved, "failed", sum.Failed, "notifications_sent", sum.Notifications.Sent,
		"notifications_failed", sum.Notifications.Failed, "remediations_planned", sum.Remediations.Planned,
		"remediations_applied", sum.Remediations.Applied)
	respond(statusFor(failed))
}

// dispatchAll sends what the clusters owe, a few clusters at a time, within
// the sweep's invocation. Sink failures are the outbox's to retry; only the
// store's errors fail the sweep.
func (s *Server) dispatchAll(ctx context.Context, owed map[string]fleet.ClusterID, rep *outbox.Report) error {
	if s.dispatcher == nil || len(owed) == 0 {
		return nil
	}
	work := make(chan fleet.ClusterID)
	var mu sync.Mutex
	var failed error
	var wg sync.WaitGroup
	for range min(sweepWorkers, len(owed)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range work {
				r, err := s.dispatcher.Dispatch(ctx, id)
				mu.Lock()
				rep.Sent, rep.Failed, rep.GaveUp, rep.Pending = rep.Sent+r.Sent, rep.Failed+r.Failed, rep.GaveUp+r.GaveUp, rep.Pending+r.Pending
				if err != nil && !errors.Is(err, state.ErrNotFound) {
					failed = err
					s.log.Error("dispatch failed", "cluster", id.Key(), "error", err)
				}
				mu.Unlock()
			}
		}()
	}
	keys := make([]string, 0, len(owed))
	for k := range owed {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		work <- owed[k]
	}
	close(work)
	wg.Wait()
	return failed
}
