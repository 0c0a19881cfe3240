package patch

import (
	"sort"
	"strings"
	"time"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
)

// NodeStatus is the verdict on one node, from its image label in the newest
// node snapshot.
type NodeStatus struct {
	Node        string    `json:"node"`
	Pool        string    `json:"pool"`
	Image       string    `json:"image,omitempty"`
	LatestImage string    `json:"latestImage,omitempty"`
	Compliance  string    `json:"compliance"` // Compliance*
	DaysBehind  int       `json:"daysBehind"`
	ReleasedAt  time.Time `json:"releasedAt,omitzero"` // of the oldest newer image not applied
	Missing     string    `json:"missing,omitempty"`   // Unknown: what is missing
}

// Nodes judges each node of the cluster that is not gone and belongs to a
// live pool: current or behind the newest image its pool could run, and by
// how many days. Ordered by node name.
func Nodes(c *fleet.Cluster, nodes []fleet.Node, cat Catalogue, pol fleet.Policy, now time.Time) []NodeStatus {
	if c == nil || c.Deleted {
		return nil
	}
	pol, now = pol.WithDefaults(), now.UTC()
	sorted := append([]fleet.Node(nil), nodes...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	var out []NodeStatus
	for _, n := range sorted {
		p := c.Pools[strings.ToLower(n.Pool)]
		if n.Gone || p == nil || p.Removed {
			continue
		}
		g := imageGap(c, p, n.NodeImageVersion, cat, pol, now)
		ns := NodeStatus{Node: n.Name, Pool: p.Name, Image: n.NodeImageVersion}
		ns.Compliance, ns.Missing = classify(c, p, g, n.NodeImageVersion)
		if g.known {
			ns.LatestImage, ns.DaysBehind = g.target.Version, g.days
			ns.ReleasedAt = g.releasedAt
		}
		out = append(out, ns)
	}
	return out
}
