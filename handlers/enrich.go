package handlers

import (
	"context"
	"errors"
	"net/http"

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

// Shutdown stops background work (enrichments, then the notifications they
// caused), letting queued work finish until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	var errs []error
	for _, q := range []*clusterQueue{s.enrich, s.notify} {
		if q != nil {
			errs = append(errs, q.shutdown(ctx))
		}
	}
	return errors.Join(errs...)
}

// WaitIdle waits until no enrichment or dispatch is queued or running
// (tests, benchmarks). Enrichments first: their commits queue dispatches.
func (s *Server) WaitIdle(ctx context.Context) error {
	for _, q := range []*clusterQueue{s.enrich, s.notify} {
		if q != nil {
			if err := q.idle(ctx); err != nil {
				return err
			}
		}
	}
	return nil
}

// enrichAfter asks for a read after a rolling event (the pool's image before
// and after an operation comes from the reads around it), after an activity
// that changed the cluster's channels or maintenance windows, and after one
// that reported a deletion, which only ARM's answer confirms.
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
		// A deletion the activity log reports is evidence until ARM
		// answers (fleet.DeletionReport).
		if a != nil && (a.Operation == fleet.OpClusterDelete || a.Operation == fleet.OpPoolDelete) && a.Status == fleet.ActivitySucceeded {
			s.enrich.request(sig.Cluster, a.Operation)
		}
	}
}

// enrichNow reads a cluster from ARM and commits what it saw.
func (s *Server) enrichNow(ctx context.Context, id fleet.ClusterID) (state.Outcome, error) {
	l := s.log.With("cluster", id.Key())
	sig, err := s.enricher.Read(ctx, id)
	if err != nil {
		if errors.Is(err, arm.ErrForbidden) {
			l.Error("ARM read refused: grant the app's identity Reader (or Azure Kubernetes Service Cluster User) on the cluster", "error", err)
		} else {
			l.Warn("ARM read failed; the cluster keeps its last known view", "error", err)
		}
		return state.Outcome{}, err
	}
	out, err := s.commit(ctx, sig)
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
