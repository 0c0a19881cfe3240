package watch

import (
	"context"
	"fmt"
	"regexp"
	"time"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
	"github.com/upgradewatch/upgradewatch/internal/patch"
	"github.com/upgradewatch/upgradewatch/internal/versions"
)

// Catalogue is the fleet's newest-image catalogue in storage (implemented
// by *state.ImageCatalogue): per image family and region, the newest
// versions seen available and when each was first seen.
//
// Observe records sightings; it is idempotent and order-independent (the
// earliest sighting of a version wins, whoever writes last), and a sighting
// that changes nothing known costs no storage request. Catalogue returns the
// catalogue of the given regions (all when none), possibly up to a short
// TTL old. Both are safe for concurrent use from any number of instances;
// errors are fleet.ErrUnavailable.
type Catalogue interface {
	Observe(ctx context.Context, obs []patch.Observation) error
	Catalogue(ctx context.Context, regions ...string) (patch.Catalogue, error)
}

// PatchView is the patch status of one cluster, as the Status API shows it.
type PatchView struct {
	// Pools is each live pool's verdict, by pool name.
	Pools map[string]patch.PoolStatus
	// TimeToPatch is, by upgrade key, the time-to-patch of each operation
	// that brought a pool to a newer image: as stored on the Upgrade when
	// it was stored, else computed from the catalogue now.
	TimeToPatch map[string]time.Duration
}

// PatchStatus judges the cluster's pools against the catalogue, its policy
// and now, and gives its operations' time-to-patch. It also merges the
// cluster's own sightings into the catalogue (the backfill of state
// written before the catalogue existed; free once known). Errors:
// fleet.ErrUnavailable when the catalogue cannot be read.
func (a *App) PatchStatus(ctx context.Context, c *fleet.Cluster) (PatchView, error) {
	own := patch.FromCluster(c)
	a.observe(ctx, own, c.ID)
	var cat patch.Catalogue
	if a.catalogue != nil {
		var err error
		if cat, err = a.catalogue.Catalogue(ctx, c.Location); err != nil {
			return PatchView{}, fmt.Errorf("%w: image catalogue: %w", fleet.ErrUnavailable, err)
		}
	}
	// The cluster's own sightings count even when the catalogue has not
	// taken them yet.
	cat = patch.Merge(cat, plausible(own)...)
	v := PatchView{Pools: map[string]patch.PoolStatus{}, TimeToPatch: map[string]time.Duration{}}
	for _, st := range patch.Status(c, cat, a.policy(c), a.now()) {
		v.Pools[st.Pool] = st
	}
	for key, u := range c.Upgrades {
		if !u.AvailableSince.IsZero() {
			v.TimeToPatch[key] = u.TimeToPatch
		} else if l, ok := patch.TimeToPatch(u, c.Location, cat); ok {
			v.TimeToPatch[key] = l.Duration.Truncate(time.Second)
		}
	}
	return v, nil
}

// policy is the cluster's policy, as the finding rules resolve it.
func (a *App) policy(c *fleet.Cluster) fleet.Policy {
	if a.policyFor == nil {
		return fleet.Policy{}
	}
	return a.policyFor(c)
}

// observeCommitted records the image sightings of a committed signal (a
// Duplicate's too: the first delivery may have failed to record them). ARM
// reads and node snapshots also give the cluster's whole state, so that
// state written before the catalogue existed gets in. A failure is logged
// and dropped: the signal committed, and the next sighting or the backfill
// repairs it.
func (a *App) observeCommitted(ctx context.Context, sig fleet.Signal, c *fleet.Cluster) {
	if a.catalogue == nil || c == nil {
		return
	}
	obs := patch.FromSignal(sig, c.Location)
	if sig.Type == fleet.TypeARMRead || sig.Kind == fleet.KindNodesObserved {
		obs = append(obs, patch.FromCluster(c)...)
	}
	a.observe(ctx, obs, sig.Cluster)
}

// observe records sightings in the catalogue, logging a failure at warn.
func (a *App) observe(ctx context.Context, obs []patch.Observation, id fleet.ClusterID) {
	obs = plausible(obs)
	if a.catalogue == nil || len(obs) == 0 {
		return
	}
	if err := a.catalogue.Observe(ctx, obs); err != nil {
		a.log.Warn("image sightings not recorded in the catalogue; the next sighting repairs it", "cluster", id.Key(),
			"sightings", len(obs), "error", err)
	}
}

// imageVersionRE is what an AKS node image version is made of.
var imageVersionRE = regexp.MustCompile(`^AKS[A-Za-z0-9._+-]{1,200}$`)

// releaseSlack allows for release dates read in UTC from a version made a
// day early somewhere.
const releaseSlack = 48 * time.Hour

// plausible keeps the sightings that can be real: a version that looks like
// an AKS image's and was not seen before its own release date. One forged
// or garbled version must not make a whole region look behind.
func plausible(obs []patch.Observation) []patch.Observation {
	out := obs[:0:0]
	for _, o := range obs {
		if !imageVersionRE.MatchString(o.Version) {
			continue
		}
		if rel, ok := versions.ReleaseDate(versions.Parse(o.Version)); ok && rel.After(o.At.Add(releaseSlack)) {
			continue
		}
		out = append(out, o)
	}
	return out
}

// patchSnapshot is the catalogue the app reads before a commit, for the
// time-to-patch of the operations the commit ends; nil when there is no
// catalogue or it cannot be read (the figures then wait for a later commit).
func (a *App) patchSnapshot(ctx context.Context, id fleet.ClusterID) *patch.Catalogue {
	if a.catalogue == nil {
		return nil
	}
	cat, err := a.catalogue.Catalogue(ctx)
	if err != nil {
		a.log.Warn("image catalogue unavailable; time-to-patch waits for a later commit", "cluster", id.Key(), "error", err)
		return nil
	}
	a.lastCat.Store(&cat)
	return &cat
}

// stampTimeToPatch sets the time-to-patch of the cluster's operations that
// brought a pool to a newer image and have none yet, from cat (read before
// the change) and the cluster's own sightings. Pure; a no-op without cat.
func stampTimeToPatch(c *fleet.Cluster, cat *patch.Catalogue) {
	if cat == nil || !needsTimeToPatch(c) {
		return
	}
	full := patch.Merge(*cat, plausible(patch.FromCluster(c))...)
	for _, u := range c.Upgrades {
		if !u.AvailableSince.IsZero() {
			continue
		}
		if l, ok := patch.TimeToPatch(u, c.Location, full); ok {
			u.AvailableSince = l.AvailableAt.UTC().Truncate(100 * time.Nanosecond)
			u.TimeToPatch = l.Duration.Truncate(time.Second)
		}
	}
}

// needsTimeToPatch reports whether an ended, successful operation that
// changed the pool's image has no time-to-patch yet: only then is the
// catalogue merged (the usual commit changes no operation).
func needsTimeToPatch(c *fleet.Cluster) bool {
	for _, u := range c.Upgrades {
		if !u.AvailableSince.IsZero() || u.Outcome != fleet.OutcomeSucceeded || u.EndedAt.IsZero() || u.ImageAfter == u.ImageBefore {
			continue
		}
		if cmp, err := versions.Compare(versions.Parse(u.ImageAfter), versions.Parse(u.ImageBefore)); err == nil && cmp > 0 {
			return true
		}
	}
	return false
}

// observeBatch records the image sightings of a batch's signals that are in
// (Committed or Duplicate), in one call.
func (a *App) observeBatch(ctx context.Context, marks []*fleet.Signal, res []Result, c *fleet.Cluster) {
	if a.catalogue == nil || c == nil {
		return
	}
	var obs []patch.Observation
	whole := false
	for j, m := range marks {
		if j < len(res) && (res[j] == Committed || res[j] == Duplicate) {
			obs = append(obs, patch.FromSignal(*m, c.Location)...)
			whole = whole || m.Type == fleet.TypeARMRead || m.Kind == fleet.KindNodesObserved
		}
	}
	if whole {
		obs = append(obs, patch.FromCluster(c)...)
	}
	a.observe(ctx, obs, marks[0].Cluster)
}

// Pool is the verdict on a pool; false when there is none (a removed pool,
// or no view).
func (v *PatchView) Pool(name string) (patch.PoolStatus, bool) {
	if v == nil {
		return patch.PoolStatus{}, false
	}
	st, ok := v.Pools[name]
	return st, ok
}

// Latency is an operation's time-to-patch; false when unknown (or no view).
func (v *PatchView) Latency(upgrade string) (time.Duration, bool) {
	if v == nil {
		return 0, false
	}
	d, ok := v.TimeToPatch[upgrade]
	return d, ok
}
