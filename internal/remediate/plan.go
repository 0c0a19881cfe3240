// Package remediate fixes what the findings report, when an operator opted a
// cluster in: it puts the auto-upgrade channels back where the policy wants
// them and upgrades the node image of pools left behind.
//
// Decide is the planner: a pure function of (cluster state, policy, the
// deployment's ceiling, now) that names at most one action to take now and
// says why every other remediable finding waits. This package is pure: it
// imports no Azure SDK. The executor (internal/remediate/armexec) carries one
// action out on Azure Resource Manager and returns once ARM accepted it;
// rolling events and ARM reads report how it goes.
//
// The planner's rules, and the choices made where AKS leaves them open:
//
//   - Remediation is off unless the cluster opted in. The mode is the
//     stricter of the policy's and the deployment's ceiling (off < dry-run <
//     apply); an empty or unknown mode is off. Dry-run passes the same gates
//     as apply, so what it announces is what apply would do, and when.
//   - Channels are set only to what the policy document names: a channel
//     expectation a cluster tag set (fleet.Policy.TaggedNodeOSChannel) counts
//     for findings but is skipped here (ReasonTaggedChannel), so whoever may
//     tag a cluster cannot make the app reimage its nodes.
//   - Remediable findings: ChannelDrift (set nodeOSUpgradeChannel),
//     UpgradeChannelDrift (set upgradeChannel), and on pool/<name> targets
//     ImageStale (also pool/<name>/latest), MissedMaintenanceWindow and
//     UpgradeFailed (upgrade the pool's node image). Other findings and
//     targets (UpgradeFailed on scheduled/<id>) are not remediable and are
//     not listed in Skips.
//   - A node image upgrade needs a newer image to go to: AKS always upgrades
//     to its latest image, so a pool whose latest image is unknown, or that
//     already runs it, is skipped (ReasonNoNewerImage) instead of planning an
//     upgrade that would do nothing.
//   - UpgradeFailed is retried only once the failure has cleared: the pool
//     is not rolling and ARM shows it Succeeded. A pool left Failed needs a
//     person (or a reconcile) first; upgrading it again would fail again.
//   - One operation per cluster at a time, and none while the cluster is
//     deleted, not Succeeded, rolling a pool, applying a remediation, or
//     within SettleTime of an applied one (ARM and the events need time to
//     show its effect).
//   - Node image upgrades start only inside an occurrence of the cluster's
//     aksManagedNodeOSUpgradeSchedule, unless the policy's
//     RemediateOutsideWindow allows otherwise; a cluster without that window
//     (or with one that cannot be computed) is outside it. Channel writes need
//     no window: the upgrades a node OS channel brings run in the window. The
//     transitions that reimage the nodes themselves (to Unmanaged, and
//     Unmanaged to None, per MicrosoftDocs/azure-aks-docs#109; see Reimages)
//     are disruptive, and wait for the window like an image upgrade.
//   - A finding is remediated once per opening and mode (see ID). A
//     remediation of the same action on the same pool planned for another
//     finding while this one was open covers it too: it is Done when that
//     one is final, InProgress while it is not.
//   - A retake (an Applying record whose lease expired, a Retrying one due)
//     keeps its ID, PlannedAt and Mode and counts the attempt, but takes From,
//     To and Detail from the current state and policy: a policy changed since
//     must not be overwritten by the old one.
package remediate

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
	"github.com/upgradewatch/upgradewatch/internal/maintenance"
	"github.com/upgradewatch/upgradewatch/internal/versions"
)

// SettleTime is how long after an applied remediation no other starts on the
// cluster: long enough for the operation to show up as rolling or as a
// provisioning state, so that two operations never overlap.
const SettleTime = 30 * time.Minute

// Why a remediable finding is not acted on now.
const (
	ReasonNotOptedIn        = "NotOptedIn"        // the effective mode is off
	ReasonNoPolicyChannel   = "NoPolicyChannel"   // the policy names no channel to set
	ReasonTaggedChannel     = "TaggedChannel"     // the channel expected comes from a tag, not the policy document
	ReasonUnknownPool       = "UnknownPool"       // the pool is removed or was never seen
	ReasonNoNewerImage      = "NoNewerImage"      // no newer node image known for the pool
	ReasonDone              = "Done"              // this finding opening was already remediated (or dry-run)
	ReasonInProgress        = "InProgress"        // being applied under a live lease, or waiting to retry
	ReasonPoolRolling       = "PoolRolling"       // the pool is rolling
	ReasonFailureNotCleared = "FailureNotCleared" // the failed pool is still rolling or not Succeeded
	ReasonOutsideWindow     = "OutsideWindow"     // no node OS maintenance window is open now
	ReasonClusterBusy       = "ClusterBusy"       // another operation is running or settling on the cluster
	ReasonOneAtATime        = "OneAtATime"        // another action was chosen this sweep
)

// Decision is what to do about one cluster now.
type Decision struct {
	// Mode is the effective mode: fleet.RemediateOff, RemediateDryRun or
	// RemediateApply.
	Mode string
	// Next is the one action to record (and in apply mode carry out) now;
	// nil when none. Its Status is empty: the caller sets it.
	Next *fleet.Remediation
	// Skips lists every open remediable finding not acted on now, with why,
	// in the order they were considered.
	Skips []Skip
}

// Skip is a remediable finding left alone this time.
type Skip struct{ Code, Target, Reason string }

// Decide says what to do about cluster c now under policy p and the
// deployment's ceiling mode. It is pure and does not modify c.
func Decide(c *fleet.Cluster, p fleet.Policy, ceiling string, now time.Time) Decision {
	d := Decision{Mode: effectiveMode(p.Remediate, ceiling)}
	now = now.UTC()
	cands := candidates(c)
	if d.Mode == fleet.RemediateOff {
		for _, f := range cands {
			d.skip(f, ReasonNotOptedIn)
		}
		return d
	}
	busy := clusterBusy(c, now)
	window, inWindow := nodeOSWindow(c, now)
	for _, f := range cands {
		r, reason := plan(c, p, d.Mode, f, now)
		disruptive := r != nil && (r.Action == fleet.ActionUpgradeNodeImage ||
			(r.Action == fleet.ActionSetNodeOSChannel && Reimages(r.From, r.To)))
		if reason == "" && r.Action == fleet.ActionUpgradeNodeImage {
			reason = poolGate(c, f, r.Pool)
		}
		if reason == "" && disruptive {
			if !inWindow && !p.RemediateOutsideWindow {
				reason = ReasonOutsideWindow
			}
			if reason == "" && !inWindow {
				r.Detail += " outside the node OS maintenance window, as the policy allows"
			}
			if reason == "" && inWindow {
				r.Detail += fmt.Sprintf(" in the node OS maintenance window open until %s", window.End.Format("2006-01-02 15:04Z"))
			}
		}
		switch {
		case reason != "":
			d.skip(f, reason)
		case busy:
			d.skip(f, ReasonClusterBusy)
		case d.Next != nil:
			d.skip(f, ReasonOneAtATime)
		default:
			d.Next = r
		}
	}
	return d
}

func (d *Decision) skip(f *fleet.Finding, reason string) {
	d.Skips = append(d.Skips, Skip{Code: f.Code, Target: f.Target, Reason: reason})
}

// modeRank orders the modes by what they let happen; unknown is off.
func modeRank(m string) int {
	switch strings.ToLower(strings.TrimSpace(m)) {
	case fleet.RemediateDryRun:
		return 1
	case fleet.RemediateApply:
		return 2
	}
	return 0
}

func effectiveMode(policy, ceiling string) string {
	return []string{fleet.RemediateOff, fleet.RemediateDryRun, fleet.RemediateApply}[min(modeRank(policy), modeRank(ceiling))]
}

// candidates returns the open remediable findings in the order they are
// considered: channel actions first (a channel fixed may fix the images),
// then the most severe, the oldest opening, the finding key.
func candidates(c *fleet.Cluster) []*fleet.Finding {
	var out []*fleet.Finding
	for _, f := range c.Findings {
		if f != nil && f.Status == fleet.FindingOpen && actionFor(f) != "" {
			out = append(out, f)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if ca, cb := actionFor(a) != fleet.ActionUpgradeNodeImage, actionFor(b) != fleet.ActionUpgradeNodeImage; ca != cb {
			return ca
		}
		if ra, rb := fleet.SeverityRank(a.Severity), fleet.SeverityRank(b.Severity); ra != rb {
			return ra > rb
		}
		if !a.OpenedAt.Equal(b.OpenedAt) {
			return a.OpenedAt.Before(b.OpenedAt)
		}
		return a.Key() < b.Key()
	})
	return out
}

// Remediable reports whether a remediation can answer the finding (whatever
// its status): the sweep looks for these among the open findings.
func Remediable(f *fleet.Finding) bool { return actionFor(f) != "" }

// actionFor is the action that answers a finding; "" when it is not remediable.
func actionFor(f *fleet.Finding) string {
	switch f.Code {
	case fleet.CodeChannelDrift:
		if f.Target == "cluster" {
			return fleet.ActionSetNodeOSChannel
		}
	case fleet.CodeUpgradeChannelDrift:
		if f.Target == "cluster" {
			return fleet.ActionSetUpgradeChannel
		}
	case fleet.CodeImageStale, fleet.CodeMissedMaintenanceWindow, fleet.CodeUpgradeFailed:
		if targetPool(f) != "" {
			return fleet.ActionUpgradeNodeImage
		}
	}
	return ""
}

// targetPool is the pool a finding is about: pool/<name>, and for ImageStale
// also pool/<name>/latest; "" otherwise.
func targetPool(f *fleet.Finding) string {
	rest, ok := strings.CutPrefix(f.Target, "pool/")
	if !ok {
		return ""
	}
	if f.Code == fleet.CodeImageStale {
		rest = strings.TrimSuffix(rest, "/latest")
	}
	if !fleet.ValidPoolName(rest) {
		return ""
	}
	return strings.ToLower(rest)
}

// plan builds the action for one finding, or says why there is none: the
// finding's own reasons (policy, pool, an earlier record), not the gates.
func plan(c *fleet.Cluster, p fleet.Policy, mode string, f *fleet.Finding, now time.Time) (*fleet.Remediation, string) {
	action := actionFor(f)
	id := ID(c.ID, f.Code, f.Target, f.Opened, action, mode)
	r := &fleet.Remediation{
		ID: id, Action: action, Code: f.Code, Target: f.Target, Opened: f.Opened,
		Mode: mode, Attempt: 1, PlannedAt: now,
	}
	if old, ok := c.Remediations[id]; ok && old != nil {
		switch {
		case old.Terminal():
			return nil, ReasonDone
		case old.Status == fleet.RemediationApplying && old.LeaseUntil.After(now),
			old.Status == fleet.RemediationRetrying && old.RetryAt.After(now):
			return nil, ReasonInProgress
		case old.Status == fleet.RemediationApplying, old.Status == fleet.RemediationRetrying:
			retake := *old
			retake.Status = ""
			retake.Attempt = old.Attempt + 1
			r = &retake
		}
	} else if reason := covered(c, f, action, mode); reason != "" {
		return nil, reason
	}

	switch action {
	case fleet.ActionSetNodeOSChannel, fleet.ActionSetUpgradeChannel:
		field, from, to, tagged := "nodeOSUpgradeChannel", c.NodeOSUpgradeChannel, p.NodeOSChannel, p.TaggedNodeOSChannel
		if action == fleet.ActionSetUpgradeChannel {
			field, from, to, tagged = "upgradeChannel", c.UpgradeChannel, p.UpgradeChannel, p.TaggedUpgradeChannel
		}
		if to == "" {
			return nil, ReasonNoPolicyChannel
		}
		if tagged {
			return nil, ReasonTaggedChannel
		}
		r.Pool, r.From, r.To = "", from, to
		r.Detail = fmt.Sprintf("set %s from %s to %s", field, orUnknown(from), to)
		if p.Source != "" {
			r.Detail += " (policy: " + p.Source + ")"
		}
	case fleet.ActionUpgradeNodeImage:
		name := targetPool(f)
		pool := c.Pools[name]
		if pool == nil || pool.Removed {
			return nil, ReasonUnknownPool
		}
		current, latest := pool.Image(), pool.LatestImage
		if !newer(current, latest) {
			return nil, ReasonNoNewerImage
		}
		r.Pool, r.From, r.To = pool.Name, current, latest
		verb := "upgrade"
		if f.Code == fleet.CodeUpgradeFailed {
			verb = "retry the failed upgrade of"
		}
		if current == "" {
			r.Detail = fmt.Sprintf("%s the node image of pool %s to %s", verb, pool.Name, latest)
		} else {
			r.Detail = fmt.Sprintf("%s the node image of pool %s from %s to %s", verb, pool.Name, current, latest)
		}
	}
	return r, ""
}

// covered says whether the remediation of another finding, planned while f
// was open, does what f's would: two findings about one pool (ImageStale on
// pool/x and pool/x/latest, a missed window) need one upgrade, not three.
func covered(c *fleet.Cluster, f *fleet.Finding, action, mode string) string {
	pool := ""
	if action == fleet.ActionUpgradeNodeImage {
		pool = targetPool(f)
	}
	reason := ""
	for _, r := range c.Remediations {
		if r == nil || r.Action != action || r.Pool != pool || r.Mode != mode || r.PlannedAt.Before(f.OpenedAt) {
			continue
		}
		if !r.Terminal() {
			return ReasonInProgress
		}
		reason = ReasonDone
	}
	return reason
}

// poolGate says why a pool's node image cannot be upgraded now, or "".
func poolGate(c *fleet.Cluster, f *fleet.Finding, name string) string {
	pool := c.Pools[name]
	if f.Code == fleet.CodeUpgradeFailed &&
		(pool.RollingState == fleet.RollingActive || !strings.EqualFold(pool.Spec.ProvisioningState, "Succeeded")) {
		return ReasonFailureNotCleared
	}
	if pool.RollingState == fleet.RollingActive {
		return ReasonPoolRolling
	}
	return ""
}

// clusterBusy reports whether an operation runs or just ran on the cluster.
func clusterBusy(c *fleet.Cluster, now time.Time) bool {
	if c.Deleted {
		return true
	}
	if c.ProvisioningState != "" && !strings.EqualFold(c.ProvisioningState, "Succeeded") {
		return true
	}
	for _, pool := range c.Pools {
		if pool != nil && !pool.Removed && pool.RollingState == fleet.RollingActive {
			return true
		}
	}
	for _, r := range c.Remediations {
		switch {
		case r == nil:
		case r.Status == fleet.RemediationApplying && r.LeaseUntil.After(now):
			return true
		case r.Status == fleet.RemediationApplied && now.Sub(r.UpdatedAt) < SettleTime:
			return true
		}
	}
	return false
}

// Reimages reports whether changing the node OS channel from one value to
// another reimages the nodes at once: a change to Unmanaged, and from
// Unmanaged to None.
func Reimages(from, to string) bool {
	return strings.EqualFold(to, fleet.ChannelUnmanaged) ||
		(strings.EqualFold(from, fleet.ChannelUnmanaged) && strings.EqualFold(to, fleet.ChannelNone))
}

// nodeOSWindow returns the occurrence of the cluster's node OS maintenance
// window open at now, if any. A window that cannot be computed is closed.
func nodeOSWindow(c *fleet.Cluster, now time.Time) (maintenance.Interval, bool) {
	if !c.MaintenanceKnown {
		return maintenance.Interval{}, false
	}
	for _, w := range c.Maintenance {
		if w.Name != fleet.MaintenanceNodeOS {
			continue
		}
		if in, ok, err := maintenance.Active(w, now); err == nil && ok {
			return in, true
		}
	}
	return maintenance.Interval{}, false
}

// newer reports whether latest is a known image the pool does not run yet.
// Versions that do not compare (another family, an unknown format) count as
// newer when they differ: AKS knows what its latest image for the pool is.
func newer(current, latest string) bool {
	if latest == "" || strings.EqualFold(current, latest) {
		return false
	}
	if current == "" {
		return true
	}
	cmp, err := versions.Compare(versions.Parse(current), versions.Parse(latest))
	return err != nil || cmp < 0
}

func orUnknown(s string) string {
	if s == "" {
		return "(unknown)"
	}
	return s
}

// ID identifies the remediation of one finding opening by one action in one
// mode: the same inputs give the same ID, so a sweep that runs again finds
// its own record instead of planning the fix twice.
func ID(cluster fleet.ClusterID, code, target string, opened int, action, mode string) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00%d\x00%s\x00%s", cluster.Key(), code, target, opened, action, mode)
	return hex.EncodeToString(h.Sum(nil)[:8])
}
