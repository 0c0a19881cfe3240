package fleet

import (
	"fmt"
	"strings"
)

// Inhibitions (Finding.InhibitedBy): what makes an open finding meaningless
// for now. The pool reasons name the pool ("pool system rolling").
const (
	InhibitClusterDeleting = "cluster deletion reported"
	InhibitClusterStopping = "cluster stopping"
	inhibitPoolRolling     = "pool %s rolling"
	inhibitPoolDeleting    = "pool %s deletion reported"
)

// MarkInhibited sets InhibitedBy on the open findings that the cluster's
// state makes meaningless for now, and clears it on the others:
//
//   - a cluster whose deletion was reported (and ARM has not confirmed yet),
//     that is being deleted or is stopping: every pool finding (a deleted
//     cluster has none open at all);
//   - a pool whose deletion was reported: its own findings;
//   - a pool rolling: its ImageStale, MissedMaintenanceWindow and VersionSkew
//     findings (the roll is what changes them), and the fleet's per-family
//     VersionSkew (pools disagree while one rolls). UpgradeStalled and
//     NodeQuarantined are about the roll itself and stay.
//
// Inhibited findings stay open and visible; the outbox announces none of
// their steps until the inhibition ends. Inhibition is a pure function of
// the cluster's state, so it is not stored: every evaluation marks it (the
// finding rules end with this) and readers mark it on what they load.
func (c *Cluster) MarkInhibited() {
	clusterWide := ""
	switch {
	case c.DeletionReported != nil, strings.EqualFold(c.ProvisioningState, "Deleting"):
		clusterWide = InhibitClusterDeleting
	case strings.EqualFold(c.ProvisioningState, "Stopping"):
		clusterWide = InhibitClusterStopping
	}
	rolling := ""
	for _, p := range c.SortedPools() {
		if !p.Removed && p.RollingState == RollingActive && rolling == "" {
			rolling = p.Name
		}
	}
	for _, f := range c.Findings {
		if f.Status != FindingOpen {
			continue
		}
		f.InhibitedBy = c.inhibition(f, clusterWide, rolling)
	}
}

func (c *Cluster) inhibition(f *Finding, clusterWide, rolling string) string {
	pool, isPool := targetPool(f.Target)
	switch {
	case isPool && clusterWide != "":
		return clusterWide
	case isPool && c.Pools[pool] != nil && c.Pools[pool].DeletionReported != nil:
		return fmt.Sprintf(inhibitPoolDeleting, pool)
	case isPool && c.Pools[pool] != nil && c.Pools[pool].RollingState == RollingActive && rollMakesMeaningless(f.Code):
		return fmt.Sprintf(inhibitPoolRolling, pool)
	case f.Code == CodeVersionSkew && strings.HasPrefix(f.Target, "family/") && rolling != "":
		return fmt.Sprintf(inhibitPoolRolling, rolling)
	}
	return ""
}

func rollMakesMeaningless(code string) bool {
	switch code {
	case CodeImageStale, CodeMissedMaintenanceWindow, CodeVersionSkew:
		return true
	}
	return false
}

// targetPool returns the pool a finding's target names ("pool/<name>[/…]").
func targetPool(target string) (string, bool) {
	rest, ok := strings.CutPrefix(target, "pool/")
	if !ok {
		return "", false
	}
	name, _, _ := strings.Cut(rest, "/")
	return strings.ToLower(name), name != ""
}
