package handlers

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
	"github.com/upgradewatch/upgradewatch/internal/host"
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
	l.Info("sweep done", "due", sum.Due, "evaluated", sum.Evaluated, "changed", sum.Changed, "opened", sum.Opened,
		"resolved", sum.Resolved, "failed", sum.Failed)
	respond(statusFor(failed))
}
