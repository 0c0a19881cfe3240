package watch

import (
	"context"
	"log/slog"
	"sort"
	"sync"
	"time"
)

// summaryBatch is how many summaries one write carries: the rows share a
// partition, so up to a transaction's 100 go in one request.
const summaryBatch = 100

// summaryQueue writes cluster summaries in the background, after the
// invocations that changed them were answered: a summary waiting for its
// write is replaced by a newer one of the same cluster, and one worker
// writes what waits in batches, so a burst of events costs a few requests,
// not one per event. Failures are logged and dropped (the memo forgets the
// cluster, so its next change writes it again, and the compliance pass
// recomputes summaries a day old).
type summaryQueue struct {
	store ComplianceStore
	log   *slog.Logger
	memo  *summaryMemo
	wake  chan struct{}
	done  chan struct{}
	stop  chan struct{} // closed by shutdown
	flush chan struct{} // cuts the linger short (idle)

	mu      sync.Mutex
	pending map[string]ClusterSummary
	writing bool
	closed  bool
}

func newSummaryQueue(store ComplianceStore, memo *summaryMemo, log *slog.Logger) *summaryQueue {
	q := &summaryQueue{store: store, log: log, memo: memo, wake: make(chan struct{}, 1), done: make(chan struct{}), stop: make(chan struct{}),
		flush:   make(chan struct{}, 1),
		pending: map[string]ClusterSummary{}}
	go q.run()
	return q
}

// put queues a summary; a newer one (by sequence) of the same cluster wins.
func (q *summaryQueue) put(s ClusterSummary) {
	key := s.Cluster.Key()
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		q.memo.forget(key)
		return
	}
	defer q.mu.Unlock()
	if old, ok := q.pending[key]; !ok || old.Seq <= s.Seq {
		q.pending[key] = s
	}
	// Under the lock: shutdown closes wake under it too.
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// summaryLinger is how long the writer waits after a first summary for
// others to share its transaction: a stream of events over many clusters
// then costs a request per hundred summaries, not one per event.
const summaryLinger = time.Second

func (q *summaryQueue) run() {
	defer close(q.done)
	for range q.wake {
		select {
		case <-time.After(summaryLinger):
		case <-q.closing():
		case <-q.flush:
		}
		q.drain(context.Background())
	}
}

// closing is closed once shutdown began, to cut the linger short.
func (q *summaryQueue) closing() <-chan struct{} {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.stop
}

// drain writes everything pending, a batch at a time.
func (q *summaryQueue) drain(ctx context.Context) {
	for {
		batch := q.take()
		if len(batch) == 0 {
			return
		}
		wctx, cancel := context.WithTimeout(ctx, time.Minute)
		err := q.store.PutSummaries(wctx, batch)
		cancel()
		if err != nil {
			q.log.Warn("compliance summaries not written; the next change or the compliance pass writes them", "summaries", len(batch), "error", err)
			for _, s := range batch {
				q.memo.forget(s.Cluster.Key())
			}
		}
		q.mu.Lock()
		q.writing = false
		q.mu.Unlock()
	}
}

// take removes up to summaryBatch pending summaries, in key order.
func (q *summaryQueue) take() []ClusterSummary {
	q.mu.Lock()
	defer q.mu.Unlock()
	keys := make([]string, 0, len(q.pending))
	for k := range q.pending {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if len(keys) > summaryBatch {
		keys = keys[:summaryBatch]
	}
	out := make([]ClusterSummary, len(keys))
	for i, k := range keys {
		out[i] = q.pending[k]
		delete(q.pending, k)
	}
	q.writing = len(out) > 0
	return out
}

// idle writes what is pending now and waits until nothing is pending or
// being written, or for ctx.
func (q *summaryQueue) idle(ctx context.Context) error {
	select {
	case q.flush <- struct{}{}:
	default:
	}
	for {
		q.mu.Lock()
		quiet := len(q.pending) == 0 && !q.writing
		q.mu.Unlock()
		if quiet {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// shutdown stops taking summaries and writes what is pending, or gives up
// at ctx's end.
func (q *summaryQueue) shutdown(ctx context.Context) error {
	q.mu.Lock()
	if !q.closed {
		q.closed = true
		close(q.wake)
		close(q.stop)
	}
	q.mu.Unlock()
	select {
	case <-q.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	q.drain(ctx)
	return nil
}
