package watch

import (
	"context"
	"errors"
	"fmt"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
)

// Enricher reads a cluster as ARM shows it now (implemented by *arm.Reader).
// Read returns a signal to commit (ClusterUpdated, or ClusterDeleted when ARM
// no longer has the cluster). Errors: fleet.ErrUnavailable (transient),
// fleet.ErrForbidden (the app's identity lacks read access). Safe for
// concurrent use; a read changes nothing, so it may be repeated.
type Enricher interface {
	Read(ctx context.Context, id fleet.ClusterID) (fleet.Signal, error)
}

// ErrForbidden: ARM refused the read; the app's identity needs read access
// to the cluster. Retrying will not help until someone grants it. It is the
// domain's fleet.ErrForbidden, which the ARM adapter wraps.
var ErrForbidden = fleet.ErrForbidden

// ErrReadFailed: the ARM read failed for a reason that may pass (ARM
// unreachable, throttled); the cluster keeps its last known view.
var ErrReadFailed = errors.New("ARM read failed")

// Refresh reads a cluster from ARM now, commits what it saw and returns the
// cluster's state after it. Errors: ErrRefreshOff, ErrForbidden,
// ErrReadFailed (ARM's side), fleet.ErrUnavailable (storage), fleet.ErrNotFound.
func (a *App) Refresh(ctx context.Context, id fleet.ClusterID) (*fleet.Cluster, error) {
	if a.enrich == nil {
		return nil, ErrRefreshOff
	}
	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	if _, err := a.enrichNow(ctx, id); err != nil {
		return nil, err
	}
	// Read back from storage: another instance may have committed since.
	c, err := a.Cluster(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("%w: read back %s: %w", fleet.ErrUnavailable, id.Key(), err)
	}
	return c, nil
}

// enrichNow reads a cluster from ARM and commits what it saw.
func (a *App) enrichNow(ctx context.Context, id fleet.ClusterID) (Outcome, error) {
	l := a.log.With("cluster", id.Key())
	sig, err := a.enricher.Read(ctx, id)
	if err != nil {
		if errors.Is(err, ErrForbidden) {
			l.Error("ARM read refused: grant the app's identity Reader (or Azure Kubernetes Service Cluster User) on the cluster", "error", err)
			return Outcome{}, err
		}
		l.Warn("ARM read failed; the cluster keeps its last known view", "error", err)
		return Outcome{}, fmt.Errorf("%w: %w", ErrReadFailed, err)
	}
	out, err := a.commit(ctx, sig)
	if err != nil {
		l.Warn("ARM view read but not stored", "signal", sig.ID, "error", err)
		return out, err
	}
	l.Info("cluster enriched from ARM", "signal", sig.ID, "kind", string(sig.Kind), "seq", out.Seq)
	return out, nil
}
