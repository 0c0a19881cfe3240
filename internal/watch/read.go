package watch

import (
	"context"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
)

// Cluster reads a cluster's committed state through the Reader and marks
// what inhibits its open findings (Finding.InhibitedBy): inhibition derives
// from the cluster's state and is not stored, so a cluster read for people
// (the Status API, the findings API, the dashboard) gets it here, as an
// evaluation gets it from the rules. The Reader returns a copy of its own
// (it reads storage, never a cache), so marking it changes no shared state.
// Errors as Reader.Cluster: fleet.ErrNotFound, fleet.ErrUnavailable.
func (a *App) Cluster(ctx context.Context, id fleet.ClusterID) (*fleet.Cluster, error) {
	c, err := a.Reader.Cluster(ctx, id)
	if err != nil {
		return nil, err
	}
	c.MarkInhibited()
	return c, nil
}
