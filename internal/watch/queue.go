package watch

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
)

// clusterQueue runs per-cluster work in the background (ARM reads,
// notification dispatches), after the invocation that asked for it has been
// answered: it never delays or fails an event. Requests for a cluster already
// waiting merge into one; a request while that cluster's work is running
// queues another, so the last run follows the last request.
//
// The work may be split into lanes (one per notification sink): each lane has
// its own backlog and workers, and a request runs in every lane, so that a
// lane whose work hangs never delays another's.
type clusterQueue struct {
	log     *slog.Logger
	what    string // "enrichment", "dispatch": for logs
	do      func(ctx context.Context, id fleet.ClusterID, lane string) error
	timeout time.Duration
	lanes   map[string]chan fleet.ClusterID

	mu      sync.Mutex
	pending map[laneKey]bool
	closed  bool
	busy    sync.WaitGroup // requests accepted and not yet done
	workers sync.WaitGroup

	ok, failed int64 // guarded by mu
}

type laneKey struct{ lane, cluster string }

// queueBacklog bounds a lane; beyond it requests are dropped and logged (the
// next event of that cluster asks again, and the sweep catches up).
const queueBacklog = 4096

// newClusterQueue is a queue of one lane.
func newClusterQueue(log *slog.Logger, what string, do func(ctx context.Context, id fleet.ClusterID) error, workers int, timeout time.Duration) *clusterQueue {
	return newLaneQueue(log, what, []string{""}, func(ctx context.Context, id fleet.ClusterID, _ string) error { return do(ctx, id) }, workers, timeout)
}

// newLaneQueue is a queue with a lane per name, each with its own workers.
func newLaneQueue(log *slog.Logger, what string, lanes []string, do func(ctx context.Context, id fleet.ClusterID, lane string) error, workers int, timeout time.Duration) *clusterQueue {
	if workers <= 0 {
		workers = 2
	}
	if timeout <= 0 {
		timeout = 2 * time.Minute
	}
	q := &clusterQueue{log: log, what: what, do: do, timeout: timeout, lanes: map[string]chan fleet.ClusterID{}, pending: map[laneKey]bool{}}
	for _, lane := range lanes {
		work := make(chan fleet.ClusterID, queueBacklog)
		q.lanes[lane] = work
		for range workers {
			q.workers.Add(1)
			go q.run(lane, work)
		}
	}
	return q
}

// request asks for the cluster's work to run in every lane; it never blocks.
func (q *clusterQueue) request(id fleet.ClusterID, reason string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return
	}
	for lane, work := range q.lanes {
		k := laneKey{lane, id.Key()}
		if q.pending[k] {
			continue
		}
		select {
		case work <- id:
			q.pending[k] = true
			q.busy.Add(1)
			q.log.Debug(q.what+" queued", "cluster", k.cluster, "lane", lane, "reason", reason)
		default:
			q.log.Warn(q.what+" queue full; request dropped", "cluster", k.cluster, "lane", lane, "reason", reason)
		}
	}
}

func (q *clusterQueue) run(lane string, work <-chan fleet.ClusterID) {
	defer q.workers.Done()
	for id := range work {
		q.mu.Lock()
		delete(q.pending, laneKey{lane, id.Key()})
		q.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), q.timeout)
		err := q.do(ctx, id, lane)
		cancel()
		q.mu.Lock()
		if err != nil {
			q.failed++
		} else {
			q.ok++
		}
		q.mu.Unlock()
		q.busy.Done()
	}
}

// shutdown stops taking requests and waits for the queued ones, or for ctx.
func (q *clusterQueue) shutdown(ctx context.Context) error {
	q.mu.Lock()
	if !q.closed {
		q.closed = true
		for _, work := range q.lanes {
			close(work)
		}
	}
	q.mu.Unlock()
	done := make(chan struct{})
	go func() { q.workers.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// idle waits until every accepted request is done, or for ctx.
func (q *clusterQueue) idle(ctx context.Context) error {
	done := make(chan struct{})
	go func() { q.busy.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// counts returns how many runs succeeded and failed.
func (q *clusterQueue) counts() (ok, failed int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.ok, q.failed
}
