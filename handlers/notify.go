package handlers

import (
	"context"
	"errors"
	"time"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
	"github.com/upgradewatch/upgradewatch/internal/outbox"
	"github.com/upgradewatch/upgradewatch/internal/state"
)

// Dispatcher sends what a cluster's outbox owes (implemented by
// *outbox.Dispatcher): Dispatch to every sink, DispatchSink to one, on its
// own leases, so that a slow sink delays no other. Any number may run at once
// on one cluster. Errors are the store's (state.ErrNotFound,
// state.ErrUnavailable); failed sends are retried by the outbox.
type Dispatcher interface {
	Dispatch(ctx context.Context, id fleet.ClusterID) (outbox.Report, error)
	DispatchSink(ctx context.Context, id fleet.ClusterID, sink string) (outbox.Report, error)
	// Sinks names the sinks, one background lane each.
	Sinks() []string
}

var _ Dispatcher = (*outbox.Dispatcher)(nil)

// commit commits a signal (refusing one dated in the future: checkTime) and,
// when the commit left notifications to send, dispatches them in the
// background: the invocation is answered first.
func (s *Server) commit(ctx context.Context, sig fleet.Signal) (state.Outcome, error) {
	if err := s.checkTime(sig); err != nil {
		return state.Outcome{}, err
	}
	out, err := s.store.Commit(ctx, sig)
	if out.Result == state.Committed {
		s.dispatchLater(sig.Cluster, out.Outbox, "commit")
	}
	return out, err
}

func (s *Server) dispatchLater(id fleet.ClusterID, owed int, reason string) {
	if owed > 0 && s.notify != nil {
		s.notify.request(id, reason)
	}
}

// newDispatchQueue is the background dispatch: a lane per sink, each with its
// own workers, so that a sink that hangs (until its timeout, or its breaker
// opens) holds up only its own lane.
func newDispatchQueue(s *Server, d Dispatcher) *clusterQueue {
	return newLaneQueue(s, "dispatch", d.Sinks(), s.dispatchNow, dispatchWorkers, 5*time.Minute)
}

// dispatchWorkers is how many clusters each sink's lane dispatches at once.
const dispatchWorkers = 2

// dispatchNow sends what the cluster owes one sink now. A failed send is not
// an error here: the outbox retries it, and the Sweep wakes for it.
func (s *Server) dispatchNow(ctx context.Context, id fleet.ClusterID, sink string) error {
	rep, err := s.dispatcher.DispatchSink(ctx, id, sink)
	l := s.log.With("cluster", id.Key(), "sink", sink)
	switch {
	case errors.Is(err, state.ErrNotFound):
		return nil
	case err != nil:
		l.Warn("dispatch failed; the sweep retries", "error", err)
		return err
	case rep.Sent+rep.Failed+rep.GaveUp+rep.Deferred > 0:
		l.Info("notifications dispatched", "sent", rep.Sent, "failed", rep.Failed, "gave_up", rep.GaveUp,
			"deferred", rep.Deferred, "pending", rep.Pending)
	}
	return nil
}
