package patch

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
	"github.com/upgradewatch/upgradewatch/internal/versions"
)

// channelSettle is how long AKS takes to apply a node OS channel change:
// "allow up to 24 hours for the changes to take effect".
const channelSettle = 24 * time.Hour

// Status judges every live pool of the cluster, ordered by name: exactly one
// status each, with a plain-language reason and the evidence. It is pure: a
// function of the cluster's state, the catalogue, the policy and now. nodes,
// when given, are the cluster's node rows from snapshots; they add kernel and
// OS image evidence on the SecurityPatch channel. A deleted cluster has none.
func Status(c *fleet.Cluster, cat Catalogue, pol fleet.Policy, now time.Time, nodes ...fleet.Node) []PoolStatus {
	if c == nil || c.Deleted {
		return nil
	}
	j := judge{c: c, cat: cat, pol: pol.WithDefaults(), now: now.UTC(), nodes: nodes}
	var out []PoolStatus
	for _, p := range c.SortedPools() {
		if !p.Removed {
			out = append(out, j.pool(p))
		}
	}
	return out
}

type judge struct {
	c     *fleet.Cluster
	cat   Catalogue
	pol   fleet.Policy
	now   time.Time
	nodes []fleet.Node
}

// pool judges one pool: the first rule that applies decides.
func (j judge) pool(p *fleet.Pool) PoolStatus {
	g := poolGap(j.c, p, j.cat, j.pol, j.now)
	st := PoolStatus{Pool: p.Name, Image: p.Image()}
	st.Compliance, _ = classify(j.c, p, g, st.Image)
	st.Evidence = j.baseEvidence(p, g)
	if g.known {
		st.LatestImage, st.LatestSince, st.ReleasedAt = g.target.Version, g.target.FirstSeen, g.target.ReleasedAt
		st.DaysBehind = g.days
	}
	rules := []func(*fleet.Pool, gap, *PoolStatus) bool{
		j.channel, j.poolFailure, j.rolling, j.unknown, j.upToDate, j.blocked, j.awaiting, j.livePatch,
	}
	for _, rule := range rules {
		if rule(p, g, &st) {
			return st
		}
	}
	j.behind(p, g, &st)
	return st
}

func (j judge) baseEvidence(p *fleet.Pool, g gap) Evidence {
	ev := Evidence{Channel: j.c.NodeOSUpgradeChannel, OSType: p.Spec.OSType, Family: g.family, Region: g.region,
		GraceDays: int(j.pol.ImageGrace.Hours() / 24), Findings: j.openFindings(p)}
	ev.ImageSrc = fleet.ImageFromARM
	if p.Nodes != nil && p.NodesAt.At.After(p.SpecAt.At) && p.Nodes.Dominant() != "" {
		ev.ImageSrc = fleet.ImageFromNodes
	}
	if g.known {
		ev.LatestFrom = g.from
		for _, s := range g.newer {
			ev.NewerImages = append(ev.NewerImages, s.Version)
		}
		ev.AvailableAt = g.availableAt
	}
	return ev
}

func set(st *PoolStatus, status, reason string) bool {
	st.Status, st.Reason = status, reason
	return true
}

func windows(p *fleet.Pool) bool {
	return strings.EqualFold(p.Spec.OSType, "Windows") || versions.Parse(p.Image()).IsWindows()
}

// channel: pools nothing patches, pools that patch themselves, and pools
// whose channel is not known yet.
func (j judge) channel(p *fleet.Pool, _ gap, st *PoolStatus) bool {
	ch := j.c.NodeOSUpgradeChannel
	switch {
	case ch == "":
		st.Evidence.Missing = append(st.Evidence.Missing, "the node OS upgrade channel")
		return set(st, StatusUnknown, "the cluster's node OS upgrade channel is not known yet: no ARM read or resource notification of the cluster")
	case strings.EqualFold(ch, fleet.ChannelNone):
		return set(st, StatusNotPatched, "node OS channel None: nothing applies security updates to this pool")
	case strings.EqualFold(ch, fleet.ChannelUnmanaged) && windows(p):
		return set(st, StatusNotPatched, "Windows does not patch itself: node OS channel Unmanaged behaves as None on Windows pools")
	case strings.EqualFold(ch, fleet.ChannelUnmanaged):
		st.Evidence.RebootManagerNeeded = true
		return set(st, StatusUnmanaged, "node OS channel Unmanaged: the OS applies security updates in place (nightly, around 06:00 UTC) "+
			"and the image is not expected to move; kernel updates need a reboot manager such as kured")
	case strings.EqualFold(ch, fleet.ChannelSecurityPatch):
		if why := securityPatchUnsupported(p); why != "" {
			return set(st, StatusNotPatched, "node OS channel SecurityPatch is not supported on "+why+": this pool gets no node OS updates")
		}
	}
	return false
}

func securityPatchUnsupported(p *fleet.Pool) string {
	sku := strings.ToLower(p.Spec.OSSKU)
	switch {
	case windows(p):
		return "Windows pools"
	case (sku == "azurelinux" || sku == "azurelinux3" || sku == "cblmariner" || sku == "mariner") && fleet.IsGPUSize(p.Spec.VMSize):
		return "Azure Linux GPU pools"
	case sku == "flatcar":
		return "Flatcar pools"
	}
	return ""
}

// poolFailure: the pool's latest operation failed. It stays so until an
// operation succeeds, whether or not the image is behind.
func (j judge) poolFailure(p *fleet.Pool, _ gap, st *PoolStatus) bool {
	if p.RollingState != fleet.RollingFailed {
		return false
	}
	u := j.c.Upgrades[p.LatestUpgrade]
	f := &FailureEvidence{Source: "rolling"}
	if u != nil {
		st.Evidence.Upgrade, f.At = u.Key, u.EndedAt
		if a, ok := lastWithMessage(u.Failures); ok {
			f.Message, f.CorrelationID, f.At, f.Source = a.Message, a.CorrelationID, a.At, "activity"
		}
	}
	return j.failed(f, st)
}

// failed words a failure: a PDB named in AKS's message, another message, or
// none at all.
func (j judge) failed(f *FailureEvidence, st *PoolStatus) bool {
	st.Evidence.Failure = f
	when := ""
	if !f.At.IsZero() {
		when = " at " + f.At.Format(time.RFC3339)
	}
	switch {
	case pdbBlocked(f.Message):
		st.Blocked = BlockedPDB
		return set(st, StatusBlocked, "a PodDisruptionBudget blocked the drain: the last upgrade failed"+when+": "+clip(f.Message, 300))
	case f.Message != "":
		st.Blocked = BlockedUpgradeFailed
		return set(st, StatusBlocked, "the last upgrade failed"+when+" and AKS said why: "+clip(f.Message, 300))
	}
	return set(st, StatusFailed, "the last upgrade failed"+when+"; AKS gave no reason upgradewatch received")
}

func (j judge) rolling(p *fleet.Pool, _ gap, st *PoolStatus) bool {
	if p.RollingState != fleet.RollingActive {
		return false
	}
	st.Evidence.Upgrade = p.LatestUpgrade
	return set(st, StatusRolling, fmt.Sprintf("the pool has been rolling since %s", p.RollingSince.Format(time.RFC3339)))
}

func (j judge) unknown(_ *fleet.Pool, g gap, st *PoolStatus) bool {
	if g.known {
		return false
	}
	st.Evidence.Missing = append(st.Evidence.Missing, g.missing)
	return set(st, StatusUnknown, "cannot tell: missing "+g.missing)
}

func (j judge) upToDate(_ *fleet.Pool, g gap, st *PoolStatus) bool {
	if g.behind {
		return false
	}
	return set(st, StatusUpToDate, fmt.Sprintf("the pool runs %s, the newest image known for %s in %s", st.Image, g.family, g.region))
}

// livePatch: on SecurityPatch a label that did not move is not evidence on
// its own. When every newer image only adds a patch date to the pool's own
// base, AKS may have applied it live; say what the nodes show.
func (j judge) livePatch(p *fleet.Pool, g gap, st *PoolStatus) bool {
	if !strings.EqualFold(j.c.NodeOSUpgradeChannel, fleet.ChannelSecurityPatch) || !g.sameBase(st.Image) {
		return false
	}
	st.Evidence.LivePatchPossible = true
	st.Evidence.Kernels, st.Evidence.OSImages = nodeFacts(j.nodes, p.Name)
	_, missing := classify(j.c, p, g, st.Image)
	st.Evidence.Missing = append(st.Evidence.Missing, missing)
	reason := fmt.Sprintf("the label still says %s although %s has been available since %s, but SecurityPatch patches nodes live "+
		"when no reimage is needed, so the label alone does not show the pool is behind", st.Image, g.target.Version, day(g.availableAt))
	if len(st.Evidence.Kernels) > 0 {
		reason += "; node snapshots show kernel " + joinCounts(st.Evidence.Kernels)
	} else {
		reason += "; no node snapshot shows the nodes' kernels"
	}
	return set(st, StatusUnknown, reason)
}

func (j judge) behind(p *fleet.Pool, g gap, st *PoolStatus) {
	reason := fmt.Sprintf("%s has been available since %s (%d days behind, past the %d-day grace) and no window or rule explains why the pool still runs %s",
		g.newer[0].Version, day(g.availableAt), g.days, st.Evidence.GraceDays, st.Image)
	if w := j.window(); w != nil {
		st.Evidence.Window = j.windowEvidence(*w)
		if !st.Evidence.Window.LastStart.IsZero() {
			reason += "; the node OS window of " + st.Evidence.Window.LastStart.Format("2006-01-02 15:04Z") + " passed without it"
		}
	}
	if len(st.Evidence.Findings) > 0 {
		reason += "; open findings: " + strings.Join(st.Evidence.Findings, ", ")
	}
	set(st, StatusBehind, reason)
}

// openFindings names the open findings about the pool (pool/<name> and
// targets beneath it).
func (j judge) openFindings(p *fleet.Pool) []string {
	seen := map[string]bool{}
	target := "pool/" + p.Name
	for _, f := range j.c.Findings {
		if f.Status == fleet.FindingOpen && (f.Target == target || strings.HasPrefix(f.Target, target+"/")) {
			seen[f.Code] = true
		}
	}
	out := make([]string, 0, len(seen))
	for code := range seen {
		out = append(out, code)
	}
	sort.Strings(out)
	if len(out) == 0 {
		return nil
	}
	return out
}

func lastWithMessage(as []fleet.ActivityRecord) (fleet.ActivityRecord, bool) {
	for i := len(as) - 1; i >= 0; i-- {
		if as[i].Message != "" {
			return as[i], true
		}
	}
	return fleet.ActivityRecord{}, false
}

// pdbBlocked reports whether AKS's message says a PodDisruptionBudget kept a
// pod from being evicted ("Cannot evict pod as it would violate the pod's
// disruption budget", code PodDrainFailure / UpgradeFailed).
func pdbBlocked(msg string) bool {
	m := strings.ToLower(msg)
	return strings.Contains(m, "disruption budget") || strings.Contains(m, "poddisruptionbudget") ||
		strings.Contains(m, "cannot evict pod")
}

func day(t time.Time) string {
	if t.IsZero() {
		return "an unknown date"
	}
	return t.UTC().Format("2006-01-02")
}

func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}

// nodeFacts counts the pool's live nodes by kernel and by OS image.
func nodeFacts(nodes []fleet.Node, pool string) (map[string]int, map[string]int) {
	var kernels, images map[string]int
	for _, n := range nodes {
		if n.Gone || !strings.EqualFold(n.Pool, pool) {
			continue
		}
		if n.KernelVersion != "" {
			if kernels == nil {
				kernels = map[string]int{}
			}
			kernels[n.KernelVersion]++
		}
		if n.OSImage != "" {
			if images == nil {
				images = map[string]int{}
			}
			images[n.OSImage]++
		}
	}
	return kernels, images
}

func joinCounts(m map[string]int) string {
	keys := sortedKeys(m)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s (%d nodes)", k, m[k])
	}
	return strings.Join(parts, ", ")
}
