package handlers

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/upgradewatch/upgradewatch/internal/events"
	"github.com/upgradewatch/upgradewatch/internal/fleet"
	"github.com/upgradewatch/upgradewatch/internal/host"
	"github.com/upgradewatch/upgradewatch/internal/watch"
)

// Function and binding names, as in functions/<Name>/function.json.
const (
	FunctionAksEvents = "AksEvents"
	// FunctionActivityLog takes Microsoft.Resources.* events from a
	// subscription or resource-group system topic (binding `event` too).
	FunctionActivityLog = "ActivityLog"
	bindingEvent        = "event"
)

// ingestSummary is the invocation's ReturnValue.
type ingestSummary struct {
	Events      int `json:"events"`
	Committed   int `json:"committed"`
	Duplicates  int `json:"duplicates"`
	Rejected    int `json:"rejected"`
	Unsupported int `json:"unsupported"`
	Ignored     int `json:"ignored"` // activities upgradewatch does not track
	Failed      int `json:"failed"`
}

func (a *ingestSummary) add(b ingestSummary) {
	a.Events += b.Events
	a.Committed += b.Committed
	a.Duplicates += b.Duplicates
	a.Rejected += b.Rejected
	a.Unsupported += b.Unsupported
	a.Ignored += b.Ignored
	a.Failed += b.Failed
}

// eventGrid serves an eventGridTrigger function (AksEvents, ActivityLog):
// decode each delivered event, commit them (a batch's events of one cluster
// together, each exactly once), and answer 200 unless something must be
// redelivered. Both accept every event type Decode knows, so a
// subscription routed to the other one loses nothing.
func (s *Server) eventGrid(fn string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { s.eventGridInvocation(fn, w, r) }
}

func (s *Server) eventGridInvocation(fn string, w http.ResponseWriter, r *http.Request) {
	inv := s.newInvocation(r, fn)
	respond := func(err error) {
		host.WriteResponse(w, statusFor(err), host.InvokeResponse{Logs: inv.lines, ReturnValue: inv.sum})
	}

	raw, done, err := inv.binding(r, bindingEvent)
	if done {
		respond(err)
		return
	}
	items, err := events.Split(raw)
	if err != nil {
		respond(inv.reject(watch.Rejection{Body: raw}, err, inv.log))
		return
	}
	respond(inv.ingestBatch(items))
}

// ingestBatch handles the events of one delivery: those that cannot be
// committed are answered (rejected, ignored, unsupported) as they are
// decoded; the rest commit together, one guarded change per cluster, each
// still exactly once. It returns an error only when the batch must be
// redelivered; what committed is then a duplicate.
func (inv *invocation) ingestBatch(items []json.RawMessage) error {
	var transient error
	var sigs []fleet.Signal
	var bodies [][]byte
	for _, item := range items {
		inv.sum.Events++
		sig, err := events.Decode(item)
		if err == nil && sig.Kind != fleet.KindIgnored && !sig.Cluster.IsZero() {
			sigs, bodies = append(sigs, sig), append(bodies, item)
			continue
		}
		if err := inv.handle(sig, err, item); err != nil {
			inv.sum.Failed++
			transient = err
		}
	}
	if len(sigs) == 0 {
		return transient
	}
	outs, errs := inv.s.app.IngestBatch(inv.ctx, sigs)
	for i, sig := range sigs {
		if err := inv.answer(sig, bodies[i], outs[i], errs[i]); err != nil {
			inv.sum.Failed++
			transient = err
		}
	}
	return transient
}

// binding reads the host's envelope and returns the named binding's value.
// When done, the invocation is over: err is what to answer with (nil when the
// unreadable envelope was recorded as rejected, ErrUnavailable when it could
// not be read or recorded).
func (inv *invocation) binding(r *http.Request, name string) (raw []byte, done bool, err error) {
	req, body, err := host.DecodeRequest(r.Body, inv.s.maxBody)
	if err != nil {
		if !errors.Is(err, host.ErrTooLarge) && !errors.Is(err, host.ErrMalformed) {
			inv.log.Error("could not read invocation", "error", err)
			return nil, true, fmt.Errorf("%w: %v", fleet.ErrUnavailable, err)
		}
		return nil, true, inv.reject(watch.Rejection{Body: body}, err, inv.log)
	}
	if inv.id == "" {
		inv.id = req.Sys().RandGuid
		inv.log = inv.log.With("invocation_id", inv.id)
	}
	inv.retry = req.Retry()
	raw, err = req.Binding(name)
	if err != nil {
		return nil, true, inv.reject(watch.Rejection{Body: body}, err, inv.log)
	}
	return raw, false, nil
}

// invocation is one call of an ingesting function: what it has done so far,
// for its answer.
type invocation struct {
	s     *Server
	fn    string
	ctx   context.Context
	id    string
	log   *slog.Logger
	sum   ingestSummary
	lines []string
	// recordIgnored keeps ignored activities in the Rejected table as
	// Unsupported (alerts: someone configured a rule that sends them).
	recordIgnored bool
	// rejected is the reason of the last rejection, for answers that say it.
	rejected string
	// retry is the host's RetryContext (functions with a retry policy).
	retry host.Retry
}

func (s *Server) newInvocation(r *http.Request, fn string) *invocation {
	inv := &invocation{s: s, fn: fn, ctx: r.Context(), id: r.Header.Get("X-Azure-Functions-InvocationId")}
	inv.log = s.log.With("function", fn, "invocation_id", inv.id)
	return inv
}

// handle commits one decoded input, or records why it cannot be. It returns
// an error only when the input must be redelivered.
func (inv *invocation) handle(sig fleet.Signal, err error, body []byte) error {
	l := inv.log.With("event_id", sig.ID, "event_type", sig.Type)
	rej := watch.Rejection{EventID: sig.ID, EventType: sig.Type, Source: sig.Source, Subject: sig.Subject, Body: body}
	if err != nil {
		return inv.reject(rej, err, l)
	}
	if sig.Kind == fleet.KindIgnored {
		op := ""
		if sig.Activity != nil {
			op = sig.Activity.OperationName
		}
		inv.sum.Ignored++
		if !inv.recordIgnored {
			l.Debug("activity not tracked; ignored", "operation", op)
			return nil
		}
		rej.Disposition = watch.DispositionUnsupported
		rej.Reason = "not an activity upgradewatch tracks: " + cmp.Or(op, sig.Type)
		if err := inv.record(rej, l); err != nil {
			inv.sum.Ignored--
			return err
		}
		l.Info("untracked activity recorded", "operation", op)
		inv.lines = append(inv.lines, "ignored: "+cmp.Or(op, sig.Type))
		return nil
	}
	if sig.Cluster.IsZero() {
		// Well-formed, not ours to track, and no cluster to file it under.
		rej.Disposition = watch.DispositionUnsupported
		rej.Reason = "event type " + sig.Type + " is not tracked and names no managed cluster"
		if err := inv.record(rej, l); err != nil {
			return err
		}
		l.Info("unsupported event recorded")
		inv.sum.Unsupported++
		inv.lines = append(inv.lines, "unsupported: "+sig.Type)
		return nil
	}
	out, err := inv.s.app.Ingest(inv.ctx, sig)
	return inv.answer(sig, body, out, err)
}

// answer reports what became of a signal given to the App to commit, and
// records it when it was rejected. It returns an error only when the signal
// must be redelivered.
func (inv *invocation) answer(sig fleet.Signal, body []byte, out watch.Outcome, err error) error {
	l := inv.log.With("event_id", sig.ID, "event_type", sig.Type, "cluster", sig.Cluster.Key())
	rej := watch.Rejection{EventID: sig.ID, EventType: sig.Type, Source: sig.Source, Subject: sig.Subject, Body: body}
	switch {
	case err == nil && out.Result == watch.Duplicate:
		l.Info("duplicate event ignored", "seq", out.Seq)
		inv.sum.Duplicates++
		inv.lines = append(inv.lines, "duplicate: "+sig.ID)
		return nil
	case err == nil:
		l.Info("event committed", "seq", out.Seq, "kind", string(sig.Kind))
		if sig.Kind == fleet.KindUnsupported {
			inv.sum.Unsupported++
		}
		inv.sum.Committed++
		inv.lines = append(inv.lines, fmt.Sprintf("committed: %s %s (seq %d)", sig.Kind, sig.ID, out.Seq))
		return nil
	case errors.Is(err, fleet.ErrRejected):
		return inv.reject(rej, err, l)
	case out.Result == watch.Committed:
		// The state is in; the index is not. The redelivery will be a
		// duplicate, and duplicates repair the index.
		l.Error("event committed but index not updated; asking for redelivery", "seq", out.Seq, "error", err)
	default:
		l.Error("commit failed; asking for redelivery", "error", err)
	}
	inv.lines = append(inv.lines, "failed, will be redelivered: "+sig.ID)
	return err
}

// reject records an input that can never be accepted.
func (inv *invocation) reject(rej watch.Rejection, reason error, l *slog.Logger) error {
	rej.Disposition, rej.Reason = watch.DispositionRejected, reason.Error()
	inv.rejected = rej.Reason
	l.Warn("input rejected", "reason", rej.Reason, "event_id", rej.EventID, "event_type", rej.EventType)
	inv.lines = append(inv.lines, "rejected: "+rej.Reason)
	if err := inv.record(rej, l); err != nil {
		return err
	}
	inv.sum.Rejected++
	return nil
}

// record writes a rejection; failing that, the input must be redelivered.
func (inv *invocation) record(rej watch.Rejection, l *slog.Logger) error {
	rej.Function, rej.InvocationID, rej.ReceivedAt = inv.fn, inv.id, inv.s.now()
	if err := inv.s.app.Reject(inv.ctx, rej); err != nil {
		l.Error("could not record the input; asking for redelivery", "error", err, "disposition", rej.Disposition)
		return err
	}
	return nil
}
