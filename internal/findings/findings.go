// Package findings turns a cluster's state into findings: channel drift,
// channels AKS cannot honour, stalled and failed upgrades, stale images,
// missed maintenance windows, version skew, quarantined nodes and support
// notices.
//
// Every rule is a pure function of (cluster state, policy, now). Evaluate runs
// them all and also says when the answer can next change with nothing but time
// passing (a stall deadline, an image ageing past its limit, a window ending),
// so the Sweep re-evaluates a cluster only when it is due instead of scanning
// the fleet. docs/findings.md explains each code and what to do about it.
package findings

import (
	"cmp"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
	"github.com/upgradewatch/upgradewatch/internal/maintenance"
	"github.com/upgradewatch/upgradewatch/internal/versions"
)

// Result is one evaluation: what holds now, and when to look again.
type Result struct {
	Observations []fleet.Observation
	// Next is the earliest time at which a time-based rule may change its
	// verdict with no new signal; zero when no such time is pending.
	Next time.Time
}

// Cadences AKS publishes for node images.
const (
	linuxCadence   = 7 * 24 * time.Hour  // NodeImage and SecurityPatch: weekly
	windowsCadence = 30 * 24 * time.Hour // Windows images: monthly
	channelSettle  = 24 * time.Hour      // "allow up to 24 hours for the changes to take effect"
	refreshGrace   = 5 * time.Minute     // after a change activity, before the sweep reads the cluster itself
)

// Evaluate runs every rule on the cluster. problems are the policy's own
// complaints about this cluster (a tag that could not be used, a channel AKS
// cannot honour here); each becomes a PolicyNotApplicable observation.
func Evaluate(c *fleet.Cluster, p fleet.Policy, problems []string, now time.Time) Result {
	e := &eval{c: c, p: p.WithDefaults(), now: now.UTC()}
	if c.Deleted {
		return Result{} // a deleted cluster has nothing open
	}
	if since, ok := c.RefreshWanted(); ok {
		// The sweep asks for the ARM read the activity called for, in case
		// the one asked for when it arrived did not happen.
		e.wake(since.Add(refreshGrace))
	}
	e.channels()
	e.windows()
	e.upgrades()
	e.images()
	e.nodes()
	e.support()
	for _, msg := range problems {
		e.observe(fleet.CodePolicyNotApplicable, "cluster", fleet.SeverityWarning, msg,
			map[string]any{"problem": msg, "policy": e.p.Source})
	}
	sort.Slice(e.obs, func(i, j int) bool {
		return fleet.FindingKey(e.obs[i].Code, e.obs[i].Target) < fleet.FindingKey(e.obs[j].Code, e.obs[j].Target)
	})
	return Result{Observations: e.obs, Next: e.next}
}

type eval struct {
	c    *fleet.Cluster
	p    fleet.Policy
	now  time.Time
	obs  []fleet.Observation
	next time.Time
}

func (e *eval) observe(code, target, severity, summary string, evidence map[string]any) {
	e.obs = append(e.obs, fleet.Observation{Code: code, Target: target, Severity: severity, Summary: summary, Evidence: evidence})
}

// observeSince is observe for a condition whose start the evidence dates.
func (e *eval) observeSince(since time.Time, code, target, severity, summary string, evidence map[string]any) {
	e.observe(code, target, severity, summary, evidence)
	e.obs[len(e.obs)-1].Since = since
}

// wake records a future time at which a verdict may change.
func (e *eval) wake(t time.Time) {
	if t.After(e.now) && (e.next.IsZero() || t.Before(e.next)) {
		e.next = t
	}
}

func (e *eval) livePools() []*fleet.Pool {
	var out []*fleet.Pool
	for _, p := range e.c.SortedPools() {
		if !p.Removed {
			out = append(out, p)
		}
	}
	return out
}

func poolTarget(p *fleet.Pool) string { return "pool/" + p.Name }

func isWindows(p *fleet.Pool) bool { return strings.EqualFold(p.Spec.OSType, "Windows") }

func isAzureLinux(p *fleet.Pool) bool {
	switch strings.ToLower(p.Spec.OSSKU) {
	case "azurelinux", "azurelinux3", "cblmariner", "mariner":
		return true
	}
	return false
}

func isFlatcar(p *fleet.Pool) bool { return strings.EqualFold(p.Spec.OSSKU, "Flatcar") }

// channels: drift against policy and channels AKS cannot honour.
func (e *eval) channels() {
	c, p := e.c, e.p
	nodeOS, upgrade := c.NodeOSUpgradeChannel, c.UpgradeChannel
	if p.NodeOSChannel != "" && nodeOS != "" && !strings.EqualFold(nodeOS, p.NodeOSChannel) {
		e.observe(fleet.CodeChannelDrift, "cluster", fleet.SeverityWarning,
			fmt.Sprintf("node OS channel is %s, policy wants %s", nodeOS, p.NodeOSChannel),
			withChange(map[string]any{"observed": nodeOS, "desired": p.NodeOSChannel, "policy": p.Source, "observedAt": c.ProfileAt.At},
				c.NodeOSChannelChange))
	}
	if p.UpgradeChannel != "" && upgrade != "" && !strings.EqualFold(upgrade, p.UpgradeChannel) {
		e.observe(fleet.CodeUpgradeChannelDrift, "cluster", fleet.SeverityWarning,
			fmt.Sprintf("cluster upgrade channel is %s, policy wants %s", upgrade, p.UpgradeChannel),
			withChange(map[string]any{"observed": upgrade, "desired": p.UpgradeChannel, "policy": p.Source, "observedAt": c.ProfileAt.At},
				c.UpgradeChannelChange))
	}
	if p.NodeOSChannel != "" && !strings.EqualFold(p.NodeOSChannel, fleet.ChannelNodeImage) && strings.EqualFold(upgrade, fleet.UpgradeNodeImage) {
		e.observe(fleet.CodeChannelLocked, "cluster", fleet.SeverityWarning,
			fmt.Sprintf("policy wants node OS channel %s, but the cluster upgrade channel node-image forces NodeImage", p.NodeOSChannel),
			map[string]any{"upgradeChannel": upgrade, "desired": p.NodeOSChannel, "policy": p.Source})
	}

	pools := e.livePools()
	switch {
	case strings.EqualFold(nodeOS, fleet.ChannelSecurityPatch):
		for _, pool := range pools {
			var why string
			switch {
			case isWindows(pool):
				why = "Windows pools"
			case isAzureLinux(pool) && fleet.IsGPUSize(pool.Spec.VMSize):
				why = "Azure Linux GPU pools"
			case isFlatcar(pool):
				why = "Flatcar pools"
			default:
				continue
			}
			e.observe(fleet.CodeUnsupportedChannel, poolTarget(pool), fleet.SeverityError,
				fmt.Sprintf("pool %s gets no node OS updates: SecurityPatch is not supported on %s", pool.Name, why),
				map[string]any{"channel": nodeOS, "osType": pool.Spec.OSType, "osSku": pool.Spec.OSSKU, "vmSize": pool.Spec.VMSize})
		}
	case strings.EqualFold(nodeOS, fleet.ChannelNone):
		e.observe(fleet.CodeNoSecurityUpdates, "cluster", fleet.SeverityError,
			"node OS channel is None: no pool gets security updates", map[string]any{"channel": nodeOS})
	case strings.EqualFold(nodeOS, fleet.ChannelUnmanaged):
		linux := []string{}
		for _, pool := range pools {
			if isWindows(pool) {
				e.observe(fleet.CodeNoSecurityUpdates, poolTarget(pool), fleet.SeverityError,
					fmt.Sprintf("Windows pool %s on Unmanaged behaves as None: no security updates", pool.Name),
					map[string]any{"channel": nodeOS, "osType": pool.Spec.OSType})
			} else {
				linux = append(linux, pool.Name)
			}
		}
		if len(linux) > 0 {
			e.observe(fleet.CodeRebootsUnmanaged, "cluster", fleet.SeverityInfo,
				"Unmanaged: Linux nodes patch nightly, but reboots need a reboot manager such as kured",
				map[string]any{"channel": nodeOS, "linuxPools": linux})
		}
	}

	// A node OS channel change reimages the nodes within about 24 hours.
	if at := c.NodeOSChannelChangedAt; !at.IsZero() {
		deadline := at.Add(channelSettle)
		if !e.rolledSince(at) {
			if !e.now.Before(deadline) {
				by := ""
				if ch := c.NodeOSChannelChange; ch != nil && ch.Actor != "" {
					by = " by " + ch.Actor
				}
				e.observeSince(deadline, fleet.CodeChannelChangeNotApplied, "cluster", fleet.SeverityWarning,
					fmt.Sprintf("node OS channel changed to %s%s at %s and no pool has rolled since", nodeOS, by, at.Format(time.RFC3339)),
					withChange(map[string]any{"channel": nodeOS, "changedAt": at, "expectedBy": deadline}, c.NodeOSChannelChange))
			} else {
				e.wake(deadline)
			}
		}
	}
}

// rolledSince reports whether any pool started (or ended) an operation after t.
func (e *eval) rolledSince(t time.Time) bool {
	for _, u := range e.c.Upgrades {
		if u.StartedAt.After(t) || u.EndedAt.After(t) {
			return true
		}
	}
	return false
}

// windows: maintenance configurations too short or missing.
func (e *eval) windows() {
	c := e.c
	if !c.MaintenanceKnown {
		return
	}
	hasNodeOS := false
	for _, w := range c.Maintenance {
		if w.Name == fleet.MaintenanceNodeOS {
			hasNodeOS = true
		}
		if w.Name != fleet.MaintenanceNodeOS && w.Name != fleet.MaintenanceAuto {
			continue
		}
		if maintenance.Short(w, e.p.MinWindowHours) {
			e.observe(fleet.CodeMaintenanceWindowTooShort, "maintenance/"+w.Name, fleet.SeverityWarning,
				fmt.Sprintf("maintenance window %s lasts %d h; AKS needs at least %d h to upgrade reliably", w.Name, w.DurationHours, e.p.MinWindowHours),
				map[string]any{"window": w.Name, "durationHours": w.DurationHours, "minimumHours": e.p.MinWindowHours})
		}
	}
	if e.p.RequireNodeOSWindow && !hasNodeOS {
		e.observe(fleet.CodeMaintenanceWindowMissing, "maintenance/"+fleet.MaintenanceNodeOS, fleet.SeverityWarning,
			"policy expects an aksManagedNodeOSUpgradeSchedule; without one AKS upgrades node images whenever it likes",
			map[string]any{"policy": e.p.Source})
	}
}

// upgrades: stalled and failed operations.
func (e *eval) upgrades() {
	c := e.c
	for _, u := range c.Upgrades {
		if u.Outcome != fleet.OutcomeInProgress || u.StartedAt.IsZero() {
			continue
		}
		pool := c.Pools[u.Pool]
		expected := e.expectedDuration(pool)
		deadline := u.StartedAt.Add(expected)
		if e.now.Before(deadline) {
			e.wake(deadline)
			continue
		}
		ev := map[string]any{"upgrade": u.Key, "startedAt": u.StartedAt, "expectedMinutes": int(expected.Minutes()),
			"deadline": deadline}
		if pool != nil {
			ev["nodes"], ev["maxSurge"], ev["drainTimeoutMinutes"] = pool.Spec.Count, pool.Spec.MaxSurge, pool.Spec.DrainTimeoutMinutes
			if pool.Nodes != nil && pool.Nodes.Quarantined > 0 {
				ev["quarantinedNodes"] = pool.Nodes.QuarantinedNodes
			}
		}
		// Since when, not for how long: the summary stays the same while
		// the stall lasts, and so does the finding's row.
		e.observeSince(deadline, fleet.CodeUpgradeStalled, "pool/"+u.Pool, fleet.SeverityError,
			fmt.Sprintf("pool %s has been rolling since %s, longer than the %s expected", u.Pool,
				u.StartedAt.UTC().Format("2006-01-02 15:04Z"), human(expected)), ev)
	}
	for _, pool := range e.livePools() {
		if pool.RollingState != fleet.RollingFailed {
			continue
		}
		u := c.Upgrades[pool.LatestUpgrade]
		ev := map[string]any{"rollingState": pool.RollingState}
		summary := fmt.Sprintf("the last upgrade of pool %s failed", pool.Name)
		var since time.Time
		if u != nil {
			since = u.EndedAt
			ev["upgrade"], ev["endedAt"] = u.Key, u.EndedAt
			if u.Trigger != "" {
				ev["trigger"], ev["requestedBy"], ev["correlationId"] = u.Trigger, u.RequestedBy, u.RequestCorrelationID
			}
			if len(u.Failures) > 0 {
				ev["failures"] = failureEvidence(u.Failures)
				if msg := lastMessage(u.Failures); msg != "" {
					summary += ": " + clipText(msg, 300)
				}
			}
		}
		e.observeSince(since, fleet.CodeUpgradeFailed, poolTarget(pool), fleet.SeverityError, summary, ev)
	}
	e.failedRequests()
	// Communication Manager failures stand until a later success of the same
	// kind of upgrade, or any pool rolls successfully after them.
	for id, s := range c.Scheduled {
		if s.Status != fleet.ScheduledStatusFailed {
			continue
		}
		failedAt := s.Observed.At
		if e.succeededAfter(failedAt, s.UpgradeType) {
			continue
		}
		e.observeSince(failedAt, fleet.CodeUpgradeFailed, "scheduled/"+id, fleet.SeverityError,
			fmt.Sprintf("AKS reported a failed %s: %s", s.UpgradeType, cmp.Or(s.Description, s.Details, "no details")),
			map[string]any{"eventId": id, "upgradeType": s.UpgradeType, "details": s.Details, "failedAt": failedAt})
	}
}

func (e *eval) succeededAfter(t time.Time, upgradeType string) bool {
	for _, s := range e.c.Scheduled {
		if s.Status == fleet.ScheduledStatusCompleted && s.UpgradeType == upgradeType && s.Observed.At.After(t) {
			return true
		}
	}
	for _, u := range e.c.Upgrades {
		if u.Outcome == fleet.OutcomeSucceeded && u.EndedAt.After(t) {
			return true
		}
	}
	return false
}

// expectedDuration estimates how long rolling a pool may take: batches of
// maxSurge nodes, each a surge node's provisioning plus a drain (up to the
// drain timeout) plus the soak. It is deliberately generous, floored at the
// policy's minimum and capped at its limit (AKS only schedules upgrades it
// expects to finish within 24 h).
func (e *eval) expectedDuration(pool *fleet.Pool) time.Duration {
	nodes, surge, drain, soak := 3, 1, 30, 0
	if pool != nil {
		if pool.Spec.Count > 0 {
			nodes = pool.Spec.Count
		} else if pool.Nodes != nil && pool.Nodes.Nodes > 0 {
			nodes = pool.Nodes.Nodes
		}
		surge = surgeNodes(pool.Spec.MaxSurge, nodes)
		if pool.Spec.DrainTimeoutMinutes > 0 {
			drain = pool.Spec.DrainTimeoutMinutes
		}
		soak = pool.Spec.NodeSoakMinutes
	}
	batches := (nodes + surge - 1) / surge
	d := time.Duration(batches) * (10*time.Minute + time.Duration(drain+soak)*time.Minute)
	return min(max(d, e.p.StallMinimum), e.p.StallLimit)
}

// surgeNodes reads maxSurge ("33%" rounds up, "3", "" = AKS's default 10%).
func surgeNodes(maxSurge string, nodes int) int {
	s := strings.TrimSpace(maxSurge)
	n := 0
	switch {
	case s == "":
		n = int(math.Ceil(float64(nodes) * 0.10))
	case strings.HasSuffix(s, "%"):
		pct, err := strconv.ParseFloat(strings.TrimSuffix(s, "%"), 64)
		if err == nil {
			n = int(math.Ceil(float64(nodes) * pct / 100))
		}
	default:
		n, _ = strconv.Atoi(s)
	}
	return max(n, 1)
}

// images: stale images, missed windows, version skew between pools.
func (e *eval) images() {
	c, p := e.c, e.p
	nodeOS := c.NodeOSUpgradeChannel
	autoImages := strings.EqualFold(nodeOS, fleet.ChannelNodeImage) || strings.EqualFold(nodeOS, fleet.ChannelSecurityPatch)
	families := map[string]map[string][]string{} // OS SKU family → version → pools
	for _, pool := range e.livePools() {
		current := pool.Image()
		if current == "" {
			continue
		}
		v := versions.Parse(current)
		if v.Known {
			fam := v.Family()
			if families[fam] == nil {
				families[fam] = map[string][]string{}
			}
			families[fam][current] = append(families[fam][current], pool.Name)
		}

		// Age against the channel's cadence (or the policy's limit).
		limit := p.MaxImageAge
		if limit == 0 && autoImages {
			limit = linuxCadence + p.ImageGrace
			if v.IsWindows() || isWindows(pool) {
				limit = windowsCadence + p.ImageGrace
			}
		}
		oldest, oldestV := current, v
		if pool.Nodes != nil {
			for nv := range pool.Nodes.Versions {
				if pv := versions.Parse(nv); pv.Known && pv.Family() == v.Family() {
					if cmp, err := versions.Compare(pv, oldestV); err == nil && cmp < 0 {
						oldest, oldestV = nv, pv
					}
				}
			}
		}
		if limit > 0 && oldestV.Known && !contentDate(oldestV).IsZero() {
			staleAt := contentDate(oldestV).Add(limit)
			if !e.now.Before(staleAt) {
				// Dates, not an age: the finding's row is rewritten only
				// when the finding changes, not every day it stays open.
				built, days := contentDate(oldestV).Format(time.DateOnly), int(limit.Hours()/24)
				ev := map[string]any{"image": oldest, "imageDate": built, "staleSince": staleAt.UTC().Format(time.DateOnly),
					"limitDays": days, "channel": nodeOS}
				if oldest != current {
					ev["poolImage"] = current
				}
				e.observeSince(staleAt, fleet.CodeImageStale, poolTarget(pool), fleet.SeverityWarning,
					fmt.Sprintf("pool %s runs %s, built %s: past its %d-day limit since %s", pool.Name, oldest, built, days,
						staleAt.UTC().Format(time.DateOnly)), ev)
			} else {
				e.wake(staleAt)
			}
		}
		// Behind the newest available image for longer than the grace.
		if latest := versions.Parse(pool.LatestImage); latest.Known && v.Known {
			if cmp, err := versions.Compare(v, latest); err == nil && cmp < 0 && !contentDate(latest).IsZero() {
				dueAt := contentDate(latest).Add(p.ImageGrace)
				if !e.now.Before(dueAt) {
					e.observeSince(dueAt, fleet.CodeImageStale, poolTarget(pool)+"/latest", fleet.SeverityWarning,
						fmt.Sprintf("pool %s runs %s; %s has been available since %s", pool.Name, current, pool.LatestImage,
							contentDate(latest).Format("2006-01-02")),
						map[string]any{"image": current, "latest": pool.LatestImage, "graceDays": int(p.ImageGrace.Hours() / 24)})
				} else {
					e.wake(dueAt)
				}
				e.missedWindow(pool, current, latest)
			}
		}
	}
	for fam, byVersion := range families {
		if len(byVersion) < 2 {
			continue
		}
		vs := make([]string, 0, len(byVersion))
		for v := range byVersion {
			vs = append(vs, v)
		}
		sort.Strings(vs)
		e.observe(fleet.CodeVersionSkew, "family/"+fam, fleet.SeverityInfo,
			fmt.Sprintf("pools of image family %s run %d different versions", fam, len(vs)),
			map[string]any{"family": fam, "versions": byVersion})
	}
}

// missedWindow: the last node OS window ended while a newer image was
// available and the pool did not start an upgrade in it.
func (e *eval) missedWindow(pool *fleet.Pool, current string, latest versions.Version) {
	c := e.c
	nodeOS := c.NodeOSUpgradeChannel
	if !strings.EqualFold(nodeOS, fleet.ChannelNodeImage) && !strings.EqualFold(nodeOS, fleet.ChannelSecurityPatch) {
		return
	}
	for _, w := range c.Maintenance {
		if w.Name != fleet.MaintenanceNodeOS {
			continue
		}
		if next, ok, err := maintenance.Next(w, e.now); err == nil && ok {
			e.wake(next.End)
		}
		last, ok, err := maintenance.Last(w, e.now)
		if err != nil || !ok {
			return
		}
		// The image must have been offered before the window opened, and
		// known to us (an ARM read) by the time it closed.
		if !contentDate(latest).Before(last.Start) || pool.LatestImageAt.At.After(last.End) {
			return
		}
		for _, u := range c.Upgrades {
			if u.Pool != pool.Name {
				continue
			}
			t := u.StartedAt
			if t.IsZero() {
				t = u.EndedAt
			}
			if !t.Before(last.Start) {
				return // an upgrade started in or after the window
			}
		}
		e.observeSince(last.End, fleet.CodeMissedMaintenanceWindow, poolTarget(pool), fleet.SeverityWarning,
			fmt.Sprintf("the node OS window %s–%s passed with %s available and pool %s still on %s",
				last.Start.Format("2006-01-02 15:04Z"), last.End.Format("15:04Z"), pool.LatestImage, pool.Name, current),
			map[string]any{"windowStart": last.Start, "windowEnd": last.End, "image": current, "latest": pool.LatestImage})
	}
}

// nodes: quarantined nodes and pools left on mixed versions.
func (e *eval) nodes() {
	for _, pool := range e.livePools() {
		n := pool.Nodes
		if n == nil {
			continue
		}
		if n.Quarantined > 0 {
			e.observe(fleet.CodeNodeQuarantined, poolTarget(pool), fleet.SeverityWarning,
				fmt.Sprintf("%d node(s) of pool %s are quarantined: AKS could not drain them during an upgrade", n.Quarantined, pool.Name),
				map[string]any{"quarantined": n.Quarantined, "nodes": n.QuarantinedNodes, "observedAt": pool.NodesAt.At})
		}
		if len(n.Versions) > 1 && pool.RollingState != fleet.RollingActive {
			u := e.c.Upgrades[pool.LatestUpgrade]
			if u == nil || u.EndedAt.IsZero() || pool.NodesAt.At.After(u.EndedAt) {
				e.observe(fleet.CodeVersionSkew, poolTarget(pool), fleet.SeverityWarning,
					fmt.Sprintf("pool %s runs %d node image versions and is not upgrading", pool.Name, len(n.Versions)),
					map[string]any{"versions": n.Versions, "observedAt": pool.NodesAt.At})
			}
		}
	}
}

func (e *eval) support() {
	c := e.c
	if c.Support == "" || (c.KubernetesVersion != "" && c.SupportVersion != "" && c.KubernetesVersion != c.SupportVersion) {
		return // never told, or upgraded past the version the notice named
	}
	code, sev := fleet.CodeClusterSupportEnding, fleet.SeverityWarning
	if c.Support == fleet.SupportEnded {
		code, sev = fleet.CodeClusterSupportEnded, fleet.SeverityError
	}
	e.observe(code, "cluster", sev,
		fmt.Sprintf("Kubernetes %s support %s: node OS auto-upgrade needs a supported minor", c.SupportVersion, strings.ToLower(c.Support)),
		map[string]any{"kubernetesVersion": c.SupportVersion, "noticeAt": c.SupportAt.At})
}

// contentDate is when an image's newest content was built: its patch date
// when it has one.
func contentDate(v versions.Version) time.Time {
	if v.PatchDate.After(v.BuildDate) {
		return v.PatchDate
	}
	return v.BuildDate
}

// human writes a duration for people: 45m, 2h10m, 7d14h.
func human(d time.Duration) string {
	d = d.Round(time.Minute)
	switch {
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		if m := int(d.Minutes()) % 60; m != 0 {
			return fmt.Sprintf("%dh%dm", int(d.Hours()), m)
		}
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	days, hours := int(d.Hours())/24, int(d.Hours())%24
	if hours == 0 {
		return fmt.Sprintf("%dd", days)
	}
	return fmt.Sprintf("%dd%dh", days, hours)
}

// failedRequests: a request to upgrade a pool's node image that failed and
// started nothing stands as a failed upgrade of the pool until an operation
// of the pool succeeds after it.
func (e *eval) failedRequests() {
	c := e.c
	claimed := map[string]bool{}
	for _, u := range c.Upgrades {
		if u.RequestCorrelationID != "" {
			claimed[strings.ToLower(u.RequestCorrelationID)] = true
		}
	}
	latest := map[string]fleet.ActivityRecord{}
	for _, a := range c.Activities {
		if a.Operation != fleet.OpPoolUpgradeImage || a.Status != fleet.ActivityFailed || claimed[strings.ToLower(a.CorrelationID)] {
			continue
		}
		latest[strings.ToLower(a.Pool)] = a // in time order: the last wins
	}
	for _, pool := range e.livePools() {
		a, ok := latest[pool.Name]
		if !ok || pool.RollingState == fleet.RollingFailed {
			continue
		}
		succeeded := false
		for _, u := range c.Upgrades {
			if u.Pool == pool.Name && u.Outcome == fleet.OutcomeSucceeded && u.EndedAt.After(a.At) {
				succeeded = true
			}
		}
		if succeeded {
			continue
		}
		summary := fmt.Sprintf("a request to upgrade the node image of pool %s failed", pool.Name)
		if a.Actor != "" {
			summary += " (asked by " + a.Actor + ")"
		}
		if a.Message != "" {
			summary += ": " + clipText(a.Message, 300)
		}
		e.observeSince(a.At, fleet.CodeUpgradeFailed, poolTarget(pool), fleet.SeverityError, summary,
			map[string]any{"failures": failureEvidence([]fleet.ActivityRecord{a}), "requestedBy": a.Actor, "correlationId": a.CorrelationID})
	}
}

// withChange adds who changed a channel, from what and when, to evidence.
func withChange(ev map[string]any, ch *fleet.ChannelChange) map[string]any {
	if ch == nil {
		return ev
	}
	ev["changedFrom"], ev["changedAt"] = ch.From, ch.At
	if ch.Actor != "" {
		ev["changedBy"], ev["changeCorrelationId"] = ch.Actor, ch.CorrelationID
	}
	return ev
}

func failureEvidence(as []fleet.ActivityRecord) []map[string]any {
	if len(as) > 5 {
		as = as[len(as)-5:]
	}
	out := make([]map[string]any, 0, len(as))
	for _, a := range as {
		m := map[string]any{"at": a.At, "operation": a.Operation, "status": a.Status, "path": a.Path}
		for k, v := range map[string]string{"actor": a.Actor, "correlationId": a.CorrelationID, "message": clipText(a.Message, 1000)} {
			if v != "" {
				m[k] = v
			}
		}
		out = append(out, m)
	}
	return out
}

func lastMessage(as []fleet.ActivityRecord) string {
	for i := len(as) - 1; i >= 0; i-- {
		if as[i].Message != "" {
			return as[i].Message
		}
	}
	return ""
}

// clipText cuts s to at most n bytes on a rune boundary.
func clipText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
