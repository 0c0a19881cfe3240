package handlers

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/upgradewatch/upgradewatch/internal/arm"
	"github.com/upgradewatch/upgradewatch/internal/fleet"
	"github.com/upgradewatch/upgradewatch/internal/state"
)

// FunctionRefresh is the httpTrigger that enriches one cluster on demand:
// POST /api/clusters/{subscriptionId}/{resourceGroup}/{clusterName}/refresh.
const FunctionRefresh = "Refresh"

// Enricher reads a cluster as ARM shows it now (implemented by *arm.Reader).
// Read returns a signal to commit (ClusterUpdated, or ClusterDeleted when ARM
// no longer has the cluster). Errors: arm.ErrUnavailable (transient),
// arm.ErrForbidden (the app's identity lacks read access). Safe for concurrent use.
type Enricher interface {
	Read(ctx context.Context, id fleet.ClusterID) (fleet.Signal, error)
}

var _ Enricher = (*arm.Reader)(nil)

// enrichQueue runs enrichments in the background, after the event that asked
// for one has been answered: enrichment never delays or fails an event.
// Requests for a cluster already waiting merge into one read; a request while
// a read is running queues another, so the last read follows the last event.
type enrichQueue struct {
	s       *Server
	e       Enricher
	timeout time.Duration
	work    chan fleet.ClusterID

	mu      sync.Mutex
	pending map[string]bool
	closed  bool
	busy    sync.WaitGroup // requests accepted and not yet done
	workers sync.WaitGroup

	ok, failed int64 // guarded by mu
}

// enrichBacklog bounds the queue; beyond it requests are dropped and logged
// (the next event of that cluster asks again).
const enrichBacklog = 4096

func newEnrichQueue(s *Server, e Enricher, workers int, timeout time.Duration) *enrichQueue {
	if workers <= 0 {
		workers = 2
	}
	if timeout <= 0 {
		timeout = 2 * time.Minute
	}
	q := &enrichQueue{s: s, e: e, timeout: timeout, work: make(chan fleet.ClusterID, enrichBacklog), pending: map[string]bool{}}
	for i := 0; i < workers; i++ {
		q.workers.Add(1)
		go q.run()
	}
	return q
}

// request asks for the cluster to be read; it never blocks.
func (q *enrichQueue) request(id fleet.ClusterID, reason string) {
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
		q.s.log.Debug("enrichment queued", "cluster", key, "reason", reason)
	default:
		q.s.log.Warn("enrichment queue full; request dropped", "cluster", key, "reason", reason)
	}
}

func (q *enrichQueue) run() {
	defer q.workers.Done()
	for id := range q.work {
		q.mu.Lock()
		delete(q.pending, id.Key())
		q.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), q.timeout)
		_, err := q.s.enrichNow(ctx, id)
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
func (q *enrichQueue) shutdown(ctx context.Context) error {
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
func (q *enrichQueue) idle(ctx context.Context) error {
	done := make(chan struct{})
	go func() { q.busy.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Shutdown stops background work (enrichments), letting queued work finish
// until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	if s.enrich == nil {
		return nil
	}
	return s.enrich.shutdown(ctx)
}

// WaitIdle waits until no enrichment is queued or running (tests, benchmarks).
func (s *Server) WaitIdle(ctx context.Context) error {
	if s.enrich == nil {
		return nil
	}
	return s.enrich.idle(ctx)
}

// enrichAfter asks for a read after a rolling event (the pool's image before
// and after an operation comes from the reads around it) and after an
// activity that changed the cluster's channels or maintenance windows.
func (s *Server) enrichAfter(sig fleet.Signal) {
	if s.enrich == nil {
		return
	}
	switch sig.Kind {
	case fleet.KindRollingStarted, fleet.KindRollingSucceeded, fleet.KindRollingFailed:
		s.enrich.request(sig.Cluster, string(sig.Kind))
	case fleet.KindActivity:
		// A write to the cluster or its maintenance configurations: the
		// activity says who, only a read says what changed.
		a := sig.Activity
		if a != nil && (a.Operation == fleet.OpClusterWrite || fleet.IsMaintenanceOperation(a.Operation)) &&
			(a.Status == fleet.ActivitySucceeded || a.Status == fleet.ActivityAccepted) {
			s.enrich.request(sig.Cluster, a.Operation)
		}
	}
}

// enrichNow reads a cluster from ARM and commits what it saw.
func (s *Server) enrichNow(ctx context.Context, id fleet.ClusterID) (state.Outcome, error) {
	l := s.log.With("cluster", id.Key())
	sig, err := s.enrich.e.Read(ctx, id)
	if err != nil {
		if errors.Is(err, arm.ErrForbidden) {
			l.Error("ARM read refused: grant the app's identity Reader (or Azure Kubernetes Service Cluster User) on the cluster", "error", err)
		} else {
			l.Warn("ARM read failed; the cluster keeps its last known view", "error", err)
		}
		return state.Outcome{}, err
	}
	out, err := s.store.Commit(ctx, sig)
	if err != nil {
		l.Warn("ARM view read but not stored", "signal", sig.ID, "error", err)
		return out, err
	}
	l.Info("cluster enriched from ARM", "signal", sig.ID, "kind", string(sig.Kind), "seq", out.Seq)
	return out, nil
}

// refresh is the on-demand enrichment: read now, answer with the new state.
func (s *Server) refresh(w http.ResponseWriter, r *http.Request) {
	id, err := fleet.NewClusterID(r.PathValue("subscriptionId"), r.PathValue("resourceGroup"), r.PathValue("clusterName"))
	if err != nil {
		writeJSON(w, http.StatusBadRequest, errorBody{Error: err.Error()})
		return
	}
	if s.enrich == nil {
		writeJSON(w, http.StatusNotImplemented, errorBody{Error: "ARM enrichment is switched off (UPGRADEWATCH_ENRICH=false)"})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.enrich.timeout)
	defer cancel()
	if _, err := s.enrichNow(ctx, id); err != nil {
		switch {
		case errors.Is(err, arm.ErrForbidden):
			writeJSON(w, http.StatusBadGateway, errorBody{Error: "ARM refused the read: the app's identity needs read access to " + id.ResourceID()})
		case errors.Is(err, state.ErrUnavailable):
			unavailable(w)
		default:
			w.Header().Set("Retry-After", "60")
			writeJSON(w, http.StatusServiceUnavailable, errorBody{Error: "ARM read failed: " + err.Error()})
		}
		return
	}
	c, err := s.store.Cluster(ctx, id)
	if err != nil {
		unavailable(w)
		return
	}
	writeJSON(w, http.StatusOK, clusterDetail(c))
}
