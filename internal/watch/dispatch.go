package watch

import (
	"context"
	"errors"
	"sort"
	"sync"
	"time"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
	"github.com/upgradewatch/upgradewatch/internal/outbox"
)

// Dispatcher sends what a cluster's outbox owes (implemented by
// *outbox.Dispatcher, which records what it does through App.Modify):
// Dispatch to every sink, DispatchSink to one, on its own leases, so that a
// slow sink delays no other. Claim leases inside a commit of the caller's
// (the Sweep's evaluation) and Deliver sends and settles what it leased once
// that commit is in, so a due cluster's dispatch costs only the settle
// transaction (one per sink that had something to send). Any number may run
// at once on one cluster, in any number of instances: leases keep them off each other's deliveries, so
// each step reaches each sink once (a send whose answer was lost is repeated
// after its lease, with the same id). Errors are the repository's
// (fleet.ErrNotFound, fleet.ErrUnavailable); failed sends are the outbox's to
// retry.
type Dispatcher interface {
	Dispatch(ctx context.Context, id fleet.ClusterID) (outbox.Report, error)
	DispatchSink(ctx context.Context, id fleet.ClusterID, sink string) (outbox.Report, error)
	Claim(c *fleet.Cluster, now time.Time) (*outbox.Claims, bool)
	Deliver(ctx context.Context, id fleet.ClusterID, cl *outbox.Claims) (outbox.Report, error)
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

// owedDispatch is what a sweep has to send for one cluster: the deliveries
// its evaluation leased (claims), or, without claims, whatever is due (a
// cluster the remediation pass recorded steps on).
type owedDispatch struct {
	id     fleet.ClusterID
	claims *outbox.Claims
}

// dispatchAll sends what the clusters owe, a few clusters at a time, within
// the sweep's invocation: what their evaluation leased, or what is due.
// Sink failures are the outbox's to retry; only the repository's errors fail
// the sweep.
func (a *App) dispatchAll(ctx context.Context, owed map[string]owedDispatch, rep *outbox.Report) error {
	if a.dispatcher == nil || len(owed) == 0 {
		return nil
	}
	work := make(chan owedDispatch)
	var mu sync.Mutex
	var failed error
	var wg sync.WaitGroup
	for range min(sweepWorkers, len(owed)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for o := range work {
				r, err := a.dispatchOwed(ctx, o)
				mu.Lock()
				rep.Sent, rep.Failed, rep.GaveUp, rep.Deferred = rep.Sent+r.Sent, rep.Failed+r.Failed, rep.GaveUp+r.GaveUp, rep.Deferred+r.Deferred
				rep.Pending += r.Pending
				if err != nil && !errors.Is(err, fleet.ErrNotFound) {
					failed = err
					a.log.Error("dispatch failed", "cluster", o.id.Key(), "error", err)
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

// dispatchOwed sends one cluster's leased deliveries, or, without any,
// claims what it owes in a commit of its own first.
func (a *App) dispatchOwed(ctx context.Context, o owedDispatch) (outbox.Report, error) {
	if o.claims != nil {
		return a.dispatcher.Deliver(ctx, o.id, o.claims)
	}
	return a.dispatcher.Dispatch(ctx, o.id)
}
