package watch

import (
	"context"
	"errors"
	"sort"
	"sync"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
	"github.com/upgradewatch/upgradewatch/internal/outbox"
)

// Dispatcher sends what a cluster's outbox owes (implemented by
// *outbox.Dispatcher, which records what it does through App.Modify):
// Dispatch to every sink, DispatchSink to one, on its own leases, so that a
// slow sink delays no other. Any number may run at once on one cluster, in
// any number of instances: leases keep them off each other's deliveries, so
// each step reaches each sink once (a send whose answer was lost is repeated
// after its lease, with the same id). Errors are the repository's
// (fleet.ErrNotFound, fleet.ErrUnavailable); failed sends are the outbox's to
// retry.
type Dispatcher interface {
	Dispatch(ctx context.Context, id fleet.ClusterID) (outbox.Report, error)
	DispatchSink(ctx context.Context, id fleet.ClusterID, sink string) (outbox.Report, error)
	// Sinks names the sinks, one background lane each.
	Sinks() []string
}

var _ Dispatcher = (*outbox.Dispatcher)(nil)

// dispatchWorkers is how many clusters each sink's lane dispatches at once.
const dispatchWorkers = 2

// dispatchLater asks the background lanes to send what a commit left owed;
// the invocation is answered first.
func (a *App) dispatchLater(id fleet.ClusterID, owed int, reason string) {
	if owed > 0 && a.notify != nil {
		a.notify.request(id, reason)
	}
}

// dispatchNow sends what the cluster owes one sink now (one background
// lane's work). A failed send is not an error here: the outbox retries it,
// and the Sweep wakes for it.
func (a *App) dispatchNow(ctx context.Context, id fleet.ClusterID, sink string) error {
	rep, err := a.dispatcher.DispatchSink(ctx, id, sink)
	l := a.log.With("cluster", id.Key(), "sink", sink)
	switch {
	case errors.Is(err, fleet.ErrNotFound):
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

// dispatchAll sends what the clusters owe, a few clusters at a time, within
// the sweep's invocation. Sink failures are the outbox's to retry; only the
// repository's errors fail the sweep.
func (a *App) dispatchAll(ctx context.Context, owed map[string]fleet.ClusterID, rep *outbox.Report) error {
	if a.dispatcher == nil || len(owed) == 0 {
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
				r, err := a.dispatcher.Dispatch(ctx, id)
				mu.Lock()
				rep.Sent, rep.Failed, rep.GaveUp, rep.Pending = rep.Sent+r.Sent, rep.Failed+r.Failed, rep.GaveUp+r.GaveUp, rep.Pending+r.Pending
				if err != nil && !errors.Is(err, fleet.ErrNotFound) {
					failed = err
					a.log.Error("dispatch failed", "cluster", id.Key(), "error", err)
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
