package handlers

import (
	"context"
	"errors"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
	"github.com/upgradewatch/upgradewatch/internal/outbox"
	"github.com/upgradewatch/upgradewatch/internal/state"
)

// Dispatcher sends what a cluster's outbox owes (implemented by
// *outbox.Dispatcher). Any number may run at once on one cluster.
type Dispatcher interface {
	Dispatch(ctx context.Context, id fleet.ClusterID) (outbox.Report, error)
}

var _ Dispatcher = (*outbox.Dispatcher)(nil)

// commit commits a signal and, when the commit left notifications to send,
// dispatches them in the background: the invocation is answered first.
func (s *Server) commit(ctx context.Context, sig fleet.Signal) (state.Outcome, error) {
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

// dispatchNow sends what the cluster owes now. A failed send is not an
// error here: the outbox retries it, and the Sweep wakes for it.
func (s *Server) dispatchNow(ctx context.Context, id fleet.ClusterID) error {
	rep, err := s.dispatcher.Dispatch(ctx, id)
	l := s.log.With("cluster", id.Key())
	switch {
	case errors.Is(err, state.ErrNotFound):
		return nil
	case err != nil:
		l.Warn("dispatch failed; the sweep retries", "error", err)
		return err
	case rep.Sent+rep.Failed+rep.GaveUp > 0:
		l.Info("notifications dispatched", "sent", rep.Sent, "failed", rep.Failed, "gave_up", rep.GaveUp, "pending", rep.Pending)
	}
	return nil
}
