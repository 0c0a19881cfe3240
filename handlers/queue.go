package handlers

import (
	"context"
	"sync"
	"time"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
)

// clusterQueue runs per-cluster work in the background (ARM reads,
// notification dispatches), after the invocation that asked for it has been
// answered: it never delays or fails an event. Requests for a cluster already
// waiting merge into one; a request while that cluster's work is running
// queues another, so the last run follows the last request.
type clusterQueue struct {
	s       *Server
	what    string // "enrichment", "dispatch": for logs
	do      func(ctx context.Context, id fleet.ClusterID) error
	timeout time.Duration
	work    chan fleet.ClusterID

	mu      sync.Mutex
	pending map[string]bool
	closed  bool
	busy    sync.WaitGroup // requests accepted and not yet done
	workers sync.WaitGroup

	ok, failed int64 // guarded by mu
}

// queueBacklog bounds a queue; beyond it requests are dropped and logged (the
// next event of that cluster asks again, and the sweep catches up).
const queueBacklog = 4096

func newClusterQueue(s *Server, what string, do func(ctx context.Context, id fleet.ClusterID) error, workers int, timeout time.Duration) *clusterQueue {
	if workers <= 0 {
		workers = 2
	}
	if timeout <= 0 {
		timeout = 2 * time.Minute
	}
	q := &clusterQueue{s: s, what: what, do: do, timeout: timeout, work: make(chan fleet.ClusterID, queueBacklog), pending: map[string]bool{}}
	for i := 0; i < workers; i++ {
		q.workers.Add(1)
		go q.run()
	}
	return q
}

// request asks for the cluster's work to run; it never blocks.
func (q *clusterQueue) request(id fleet.ClusterID, reason string) {
	key := id.Key()
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed || q.pending[key] {
		return
	}
	select {
	case q.work <- id:
		q.pending[key] = true
		q.busy.Add(1)
		q.s.log.Debug(q.what+" queued", "cluster", key, "reason", reason)
	default:
		q.s.log.Warn(q.what+" queue full; request dropped", "cluster", key, "reason", reason)
	}
}

func (q *clusterQueue) run() {
	defer q.workers.Done()
	for id := range q.work {
		q.mu.Lock()
		delete(q.pending, id.Key())
		q.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), q.timeout)
		err := q.do(ctx, id)
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
		close(q.work)
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
