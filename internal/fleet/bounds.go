package fleet

import "strings"

// MaxPools is the most agent pools AKS allows in one cluster.
const MaxPools = 100

// MaxSecondHandPools bounds the pools a cluster holds that only second-hand
// signals told of: the activity log (Event Grid, alerts, the export), which
// anyone holding the function key can forge. ARM reads, resource
// notifications, AKS's rolling events and node snapshots confirm a pool; a
// pool write in the activity log of a pool none of them showed yet creates it
// only while fewer than MaxSecondHandPools such pools exist (and fewer than
// MaxPools in all). Beyond that the activity stays as evidence (an activity
// row) and creates nothing, so forged writes cannot grow a cluster without
// bound. A genuine new pool is created by the ARM read or resource
// notification that follows its creation.
const MaxSecondHandPools = 10

// secondHandPool returns the named pool for a second-hand signal: the existing
// one, or a new one within the bounds above; nil when the bounds are reached.
func (c *Cluster) secondHandPool(name string) *Pool {
	if p, ok := c.Pools[strings.ToLower(name)]; ok {
		return p
	}
	if len(c.Pools) >= MaxPools {
		return nil
	}
	unconfirmed := 0
	for _, p := range c.Pools {
		if !p.confirmed() {
			unconfirmed++
		}
	}
	if unconfirmed >= MaxSecondHandPools {
		return nil
	}
	return c.pool(name)
}

// confirmed reports whether a first-hand source showed the pool: a spec from
// ARM or a resource notification, a rolling event, or nodes in a snapshot.
// secondHandPool counts unconfirmed pools whether removed or not, so forged
// pools a listing marked removed make no room for more.
func (p *Pool) confirmed() bool {
	return !p.SpecAt.IsZero() || p.LatestUpgrade != "" || (p.Nodes != nil && p.Nodes.Nodes > 0)
}
