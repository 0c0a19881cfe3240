package patch

import (
	"math"
	"time"

	"github.com/upgradewatch/upgradewatch/internal/versions"
)

// Compliance is the patch compliance of one cluster or of the fleet, as
// flat typed fields: one table row per (day, scope).
type Compliance struct {
	Pools             int
	PoolsCurrent      int
	PoolsWithinPolicy int
	PoolsBehind       int
	PoolsUnknown      int
	Nodes             int
	NodesCurrent      int
	NodesWithinPolicy int
	NodesBehind       int
	NodesUnknown      int
	// PercentPoolsCurrent and PercentNodesCurrent are of all pools and nodes
	// (unknown ones are not current), to one decimal.
	PercentPoolsCurrent float64
	PercentNodesCurrent float64

	// OldestImage is the image in use (by a pool or a node) with the oldest
	// release date, and that date.
	OldestImage           string
	OldestImageReleasedAt time.Time
	// MaxDaysBehind is the most days any pool is behind.
	MaxDaysBehind int

	// Pools by status.
	UpToDate       int
	AwaitingWindow int
	Rolling        int
	Behind         int
	Blocked        int
	Failed         int
	Unmanaged      int
	NotPatched     int
	Unknown        int
}

// Tally computes compliance from pool statuses and node verdicts (of one
// cluster or many).
func Tally(pools []PoolStatus, nodes []NodeStatus) Compliance {
	var c Compliance
	for _, p := range pools {
		c.Pools++
		count(p.Compliance, &c.PoolsCurrent, &c.PoolsWithinPolicy, &c.PoolsBehind, &c.PoolsUnknown)
		*c.byStatus(p.Status)++
		c.MaxDaysBehind = max(c.MaxDaysBehind, p.DaysBehind)
		c.older(p.Image)
	}
	for _, n := range nodes {
		c.Nodes++
		count(n.Compliance, &c.NodesCurrent, &c.NodesWithinPolicy, &c.NodesBehind, &c.NodesUnknown)
		c.older(n.Image)
	}
	c.percent()
	return c
}

// Add combines two scopes' compliance (clusters into the fleet); it is
// associative and commutative.
func Add(a, b Compliance) Compliance {
	s := a
	s.Pools += b.Pools
	s.PoolsCurrent += b.PoolsCurrent
	s.PoolsWithinPolicy += b.PoolsWithinPolicy
	s.PoolsBehind += b.PoolsBehind
	s.PoolsUnknown += b.PoolsUnknown
	s.Nodes += b.Nodes
	s.NodesCurrent += b.NodesCurrent
	s.NodesWithinPolicy += b.NodesWithinPolicy
	s.NodesBehind += b.NodesBehind
	s.NodesUnknown += b.NodesUnknown
	s.MaxDaysBehind = max(a.MaxDaysBehind, b.MaxDaysBehind)
	s.UpToDate += b.UpToDate
	s.AwaitingWindow += b.AwaitingWindow
	s.Rolling += b.Rolling
	s.Behind += b.Behind
	s.Blocked += b.Blocked
	s.Failed += b.Failed
	s.Unmanaged += b.Unmanaged
	s.NotPatched += b.NotPatched
	s.Unknown += b.Unknown
	if b.OldestImage != "" && (s.OldestImage == "" || b.OldestImageReleasedAt.Before(s.OldestImageReleasedAt) ||
		(b.OldestImageReleasedAt.Equal(s.OldestImageReleasedAt) && b.OldestImage < s.OldestImage)) {
		s.OldestImage, s.OldestImageReleasedAt = b.OldestImage, b.OldestImageReleasedAt
	}
	s.percent()
	return s
}

func count(class string, current, within, behind, unknown *int) {
	switch class {
	case ComplianceCurrent:
		*current++
	case ComplianceWithinPolicy:
		*within++
	case ComplianceBehind:
		*behind++
	default:
		*unknown++
	}
}

func (c *Compliance) byStatus(status string) *int {
	switch status {
	case StatusUpToDate:
		return &c.UpToDate
	case StatusAwaitingWindow:
		return &c.AwaitingWindow
	case StatusRolling:
		return &c.Rolling
	case StatusBehind:
		return &c.Behind
	case StatusBlocked:
		return &c.Blocked
	case StatusFailed:
		return &c.Failed
	case StatusUnmanaged:
		return &c.Unmanaged
	case StatusNotPatched:
		return &c.NotPatched
	}
	return &c.Unknown
}

// older keeps the image with the oldest release date (ties: by name, so the
// result does not depend on order).
func (c *Compliance) older(image string) {
	rel, ok := versions.ReleaseDate(versions.Parse(image))
	if !ok {
		return
	}
	if c.OldestImage == "" || rel.Before(c.OldestImageReleasedAt) || (rel.Equal(c.OldestImageReleasedAt) && image < c.OldestImage) {
		c.OldestImage, c.OldestImageReleasedAt = image, rel
	}
}

func (c *Compliance) percent() {
	c.PercentPoolsCurrent = pct(c.PoolsCurrent, c.Pools)
	c.PercentNodesCurrent = pct(c.NodesCurrent, c.Nodes)
}

func pct(n, of int) float64 {
	if of == 0 {
		return 0
	}
	return math.Round(1000*float64(n)/float64(of)) / 10
}
