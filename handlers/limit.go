package handlers

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/semaphore"

	"github.com/upgradewatch/upgradewatch/internal/host"
)

// Bounded work: the large bodies (node snapshots, Event Grid batches, the
// activity-log stream) are read whole, and decoding holds a few times their
// size, so an instance's memory is bounded by how many bytes of them are in
// flight at once, not by how many requests arrive.
const (
	// DefaultMaxInflightBytes is the bodies' share of a 512 MB instance:
	// decoding and storage requests take about twice the body again, and the
	// process itself a few tens of MB.
	DefaultMaxInflightBytes = 64 << 20
	// DefaultInflightWait is how long a request waits for its share before it
	// is answered 503: long enough to ride out a burst, short enough that the
	// host's and the reporter's timeouts are far away.
	DefaultInflightWait = 2 * time.Second
	// retryAfterBusy is the Retry-After of a busy answer, in seconds.
	retryAfterBusy = 5
)

// budget is a weighted semaphore over body bytes. Safe for concurrent use.
type budget struct {
	sem  *semaphore.Weighted
	size int64
	wait time.Duration

	held atomic.Int64 // bytes granted now
	peak atomic.Int64 // the most ever granted at once
	busy atomic.Int64 // requests turned away
}

func newBudget(size int64, wait time.Duration) *budget {
	if size <= 0 {
		size = DefaultMaxInflightBytes
	}
	if wait <= 0 {
		wait = DefaultInflightWait
	}
	return &budget{sem: semaphore.NewWeighted(size), size: size, wait: wait}
}

// grant is bytes taken from a budget, until released.
type grant struct {
	b    *budget
	mu   sync.Mutex
	n    int64
	done bool
}

// take waits (at most b.wait, or until ctx ends) for n bytes; a request
// larger than the whole budget takes all of it. It returns nil when they
// could not be had.
func (b *budget) take(ctx context.Context, n int64) *grant {
	n = max(0, min(n, b.size))
	ctx, cancel := context.WithTimeout(ctx, b.wait)
	defer cancel()
	if err := b.sem.Acquire(ctx, n); err != nil {
		b.busy.Add(1)
		return nil
	}
	// held is raised after the semaphore grants and lowered before it takes
	// back, so it never exceeds the budget: tests hold it to that.
	h := b.held.Add(n)
	for p := b.peak.Load(); h > p && !b.peak.CompareAndSwap(p, h); p = b.peak.Load() {
	}
	return &grant{b: b, n: n}
}

// shrink gives back what the grant holds beyond n (a body read with no
// declared length reserved the maximum).
func (g *grant) shrink(n int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.done || n >= g.n {
		return
	}
	extra := g.n - max(n, 0)
	g.n -= extra
	g.b.held.Add(-extra)
	g.b.sem.Release(extra)
}

// release gives the bytes back; calling it again does nothing.
func (g *grant) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.done {
		return
	}
	g.done = true
	g.b.held.Add(-g.n)
	g.b.sem.Release(g.n)
}

// bodyWeight is what a body read with a limit of limit bytes may hold: its
// declared length (the server reads no further), else the limit (and the one
// byte past it that tells an oversized body).
func bodyWeight(r *http.Request, limit int64) int64 {
	if r.ContentLength >= 0 && r.ContentLength <= limit {
		return r.ContentLength
	}
	return limit + 1
}

// bounded wraps an invocation route of the host (AksEvents, ActivityLog,
// ActivityLogStream): the envelope's bytes are taken from the budget before
// the handler reads it, and given back when it has answered, as the decoded
// batch lives that long. Without its share in time the invocation is
// answered 503, which the host reports as a failure: Event Grid and the
// stream's retry policy deliver it again.
func (s *Server) bounded(fn string, next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		g := s.budget.take(r.Context(), bodyWeight(r, s.maxBody))
		if g == nil {
			s.busyLog(r, fn)
			w.Header().Set("Retry-After", strconv.Itoa(retryAfterBusy))
			host.WriteResponse(w, http.StatusServiceUnavailable, host.InvokeResponse{
				Logs: []string{"busy: too many large invocations in flight; deliver again later"}})
			return
		}
		defer g.release()
		next(w, r)
	}
}

// readBounded reads a large request body of at most limit bytes (and the
// byte past it that tells an oversized one) under the budget. When it
// returns ok, the caller calls release once it no longer needs the body;
// otherwise it has answered: 503 with Retry-After when the budget stayed
// full (the reporter retries), 400 when the body could not be read.
func (s *Server) readBounded(w http.ResponseWriter, r *http.Request, fn string, limit int64, l *slog.Logger) (body []byte, release func(), ok bool) {
	g := s.budget.take(r.Context(), bodyWeight(r, limit))
	if g == nil {
		s.busyLog(r, fn)
		w.Header().Set("Retry-After", strconv.Itoa(retryAfterBusy))
		writeJSON(w, http.StatusServiceUnavailable, errorBody{Error: "busy: too many large requests in flight; try again"})
		return nil, nil, false
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		g.release()
		l.Warn("could not read the request body", "error", err)
		writeJSON(w, http.StatusBadRequest, errorBody{Error: "could not read the request body: " + err.Error()})
		return nil, nil, false
	}
	g.shrink(int64(len(body)))
	return body, g.release, true
}

func (s *Server) busyLog(r *http.Request, fn string) {
	s.log.Warn("busy: request answered 503 to be retried", "function", fn,
		"invocation_id", r.Header.Get("X-Azure-Functions-InvocationId"), "content_length", r.ContentLength,
		"inflight_bytes", s.budget.held.Load(), "budget_bytes", s.budget.size, "waited", s.budget.wait.String())
}

// budgetStats are the budget's counters for the stats endpoint.
func (s *Server) budgetStats(out map[string]int64) {
	out["inflightBytes"], out["inflightPeakBytes"] = s.budget.held.Load(), s.budget.peak.Load()
	out["inflightBudgetBytes"], out["busyAnswers"] = s.budget.size, s.budget.busy.Load()
}
