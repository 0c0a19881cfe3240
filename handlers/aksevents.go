package handlers

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/upgradewatch/upgradewatch/internal/events"
	"github.com/upgradewatch/upgradewatch/internal/fleet"
	"github.com/upgradewatch/upgradewatch/internal/host"
	"github.com/upgradewatch/upgradewatch/internal/state"
)

// Function and binding names, as in functions/AksEvents/function.json.
const (
	FunctionAksEvents = "AksEvents"
	bindingEvent      = "event"
)

// ingestSummary is the invocation's ReturnValue.
type ingestSummary struct {
	Events      int `json:"events"`
	Committed   int `json:"committed"`
	Duplicates  int `json:"duplicates"`
	Rejected    int `json:"rejected"`
	Unsupported int `json:"unsupported"`
	Failed      int `json:"failed"`
}

// aksEvents is the eventGridTrigger function: decode each delivered event,
// commit it, and answer 200 unless something must be redelivered.
func (s *Server) aksEvents(w http.ResponseWriter, r *http.Request) {
	inv := invocationID(r)
	log := s.log.With("function", FunctionAksEvents, "invocation_id", inv)
	ctx := r.Context()
	var sum ingestSummary
	var lines []string
	respond := func(err error) {
		status := statusFor(err)
		host.WriteResponse(w, status, host.InvokeResponse{Logs: lines, ReturnValue: sum})
	}
	reject := func(rej state.Rejection, reason error, l *slog.Logger) error {
		rej.Disposition, rej.Reason = state.DispositionRejected, reason.Error()
		rej.Function, rej.InvocationID, rej.ReceivedAt = FunctionAksEvents, inv, s.now()
		l.Warn("input rejected", "reason", rej.Reason, "event_id", rej.EventID, "event_type", rej.EventType)
		lines = append(lines, "rejected: "+rej.Reason)
		if err := s.store.RecordRejection(ctx, rej); err != nil {
			l.Error("could not record rejection; asking for redelivery", "error", err)
			return err
		}
		sum.Rejected++
		return nil
	}

	req, body, err := host.DecodeRequest(r.Body, s.maxBody)
	if err != nil {
		if !errors.Is(err, host.ErrTooLarge) && !errors.Is(err, host.ErrMalformed) {
			log.Error("could not read invocation", "error", err)
			respond(fmt.Errorf("%w: %v", state.ErrUnavailable, err))
			return
		}
		respond(reject(state.Rejection{Body: body}, err, log))
		return
	}
	if inv == "" {
		inv = req.Sys().RandGuid
		log = log.With("invocation_id", inv)
	}
	raw, err := req.Binding(bindingEvent)
	if err != nil {
		respond(reject(state.Rejection{Body: body}, err, log))
		return
	}
	items, err := events.Split(raw)
	if err != nil {
		respond(reject(state.Rejection{Body: raw}, err, log))
		return
	}
	var transient error
	for _, item := range items {
		sum.Events++
		if err := s.ingest(r, item, log, &sum, &lines, reject); err != nil {
			sum.Failed++
			transient = err
		}
	}
	respond(transient)
}

// ingest handles one event. It returns an error only when the event must be
// redelivered.
func (s *Server) ingest(r *http.Request, item []byte, log *slog.Logger, sum *ingestSummary, lines *[]string,
	reject func(state.Rejection, error, *slog.Logger) error) error {
	ctx := r.Context()
	sig, err := events.Decode(item)
	l := log.With("event_id", sig.ID, "event_type", sig.Type)
	rej := state.Rejection{EventID: sig.ID, EventType: sig.Type, Source: sig.Source, Subject: sig.Subject, Body: item}
	if err != nil {
		return reject(rej, err, l)
	}
	if sig.Cluster.IsZero() {
		// Well-formed, not ours to track, and no cluster to file it under.
		rej.Disposition, rej.Reason = state.DispositionUnsupported, "event type "+sig.Type+" is not tracked and names no managed cluster"
		rej.Function, rej.InvocationID, rej.ReceivedAt = FunctionAksEvents, invocationID(r), s.now()
		if err := s.store.RecordRejection(ctx, rej); err != nil {
			l.Error("could not record unsupported event; asking for redelivery", "error", err)
			return err
		}
		l.Info("unsupported event recorded")
		sum.Unsupported++
		*lines = append(*lines, "unsupported: "+sig.Type)
		return nil
	}
	l = l.With("cluster", sig.Cluster.Key())
	out, err := s.store.Commit(ctx, sig)
	switch {
	case err == nil && out.Result == state.Duplicate:
		l.Info("duplicate event ignored", "seq", out.Seq)
		sum.Duplicates++
		*lines = append(*lines, "duplicate: "+sig.ID)
		return nil
	case err == nil:
		l.Info("event committed", "seq", out.Seq, "kind", string(sig.Kind))
		if sig.Kind == fleet.KindUnsupported {
			sum.Unsupported++
		}
		sum.Committed++
		*lines = append(*lines, fmt.Sprintf("committed: %s %s (seq %d)", sig.Kind, sig.ID, out.Seq))
		return nil
	case errors.Is(err, state.ErrRejected):
		return reject(rej, err, l)
	default:
		l.Error("commit failed; asking for redelivery", "error", err)
		*lines = append(*lines, "failed, will be redelivered: "+sig.ID)
		return err
	}
}

// invocationID is the host's invocation id header, if any.
func invocationID(r *http.Request) string {
	return r.Header.Get("X-Azure-Functions-InvocationId")
}
