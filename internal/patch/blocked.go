package patch

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
	"github.com/upgradewatch/upgradewatch/internal/maintenance"
)

// blocked: a pool behind a newer image, held back by a named reason. The
// first that applies is named; the order goes from the cluster to the pool
// to the window.
func (j judge) blocked(p *fleet.Pool, g gap, st *PoolStatus) bool {
	c := j.c
	block := func(reason, text string) bool {
		st.Blocked = reason
		return set(st, StatusBlocked, text)
	}
	if s := c.ProvisioningState; s != "" && !strings.EqualFold(s, "Succeeded") {
		st.Evidence.ProvisioningState = s
		return block(BlockedClusterState, fmt.Sprintf("the cluster's provisioning state is %s, not Succeeded: AKS starts no node OS upgrade until it is", s))
	}
	if j.unsupported() {
		st.Evidence.KubernetesVersion, st.Evidence.Support = c.KubernetesVersion, c.Support
		return block(BlockedKubernetesUnsupported, fmt.Sprintf("Kubernetes %s is out of support (notice of %s): node OS auto-upgrade only runs on a supported minor",
			firstNonEmpty(c.SupportVersion, c.KubernetesVersion), day(c.SupportAt.At)))
	}
	if f := j.attemptFailure(p); f != nil {
		return j.failed(f, st)
	}
	if n := p.Nodes; n != nil && n.Quarantined > 0 {
		st.Evidence.QuarantinedNodes = n.QuarantinedNodes
		return block(BlockedQuarantined, fmt.Sprintf("%d node(s) are quarantined (AKS could not drain them): %s", n.Quarantined, strings.Join(n.QuarantinedNodes, ", ")))
	}
	if at := c.NodeOSChannelChangedAt; !at.IsZero() && j.now.Before(at.Add(channelSettle)) {
		st.Evidence.ChannelChangedAt = at
		return block(BlockedChannelChangePending, fmt.Sprintf("the node OS channel changed to %s at %s; AKS takes up to 24 h to apply it (until %s)",
			c.NodeOSUpgradeChannel, at.Format(time.RFC3339), at.Add(channelSettle).Format(time.RFC3339)))
	}
	w := j.window()
	if w == nil {
		return false
	}
	st.Evidence.Window = j.windowEvidence(*w)
	if maintenance.Short(*w, j.pol.MinWindowHours) {
		return block(BlockedWindowTooShort, fmt.Sprintf("the node OS window lasts %d h, shorter than the %d h AKS needs to upgrade reliably",
			st.Evidence.Window.DurationHours, j.pol.MinWindowHours))
	}
	if we := st.Evidence.Window; !we.SkippedStart.IsZero() && (we.NextStart.IsZero() || !we.NextStart.Before(j.now.Add(j.pol.ImageGrace))) {
		next := "none ahead"
		if !we.NextStart.IsZero() {
			next = "the next opens " + we.NextStart.Format("2006-01-02 15:04Z")
		}
		return block(BlockedNotAllowedDates, fmt.Sprintf("only not-allowed dates ahead: the window of %s falls on a not-allowed date, and %s",
			we.SkippedStart.Format("2006-01-02 15:04Z"), next))
	}
	return false
}

// unsupported reports whether the cluster holds a support-ended notice for
// the minor it runs.
func (j judge) unsupported() bool {
	c := j.c
	if c.Support != fleet.SupportEnded {
		return false
	}
	return c.KubernetesVersion == "" || c.SupportVersion == "" || minor(c.KubernetesVersion) == minor(c.SupportVersion)
}

func minor(v string) string {
	parts := strings.SplitN(strings.TrimPrefix(v, "v"), ".", 3)
	if len(parts) < 2 {
		return v
	}
	return parts[0] + "." + parts[1]
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

// attemptFailure is the latest failed attempt to upgrade the pool that no
// successful operation of the pool followed: a node image request or a pool
// write that failed with an upgrade message (the activity log), or a node OS
// upgrade Communication Manager reported Failed.
func (j judge) attemptFailure(p *fleet.Pool) *FailureEvidence {
	c := j.c
	var lastOK time.Time
	for _, u := range c.Upgrades {
		if u.Pool == p.Name && u.Outcome == fleet.OutcomeSucceeded && u.EndedAt.After(lastOK) {
			lastOK = u.EndedAt
		}
	}
	var best *FailureEvidence
	consider := func(f FailureEvidence) {
		if f.At.After(lastOK) && (best == nil || f.At.After(best.At)) {
			best = &f
		}
	}
	for _, a := range c.Activities {
		if a.Status != fleet.ActivityFailed || !strings.EqualFold(a.Pool, p.Name) {
			continue
		}
		upgrade := a.Operation == fleet.OpPoolUpgradeImage ||
			(a.Operation == fleet.OpPoolWrite && (pdbBlocked(a.Message) || strings.Contains(strings.ToLower(a.Message), "upgrade")))
		if upgrade {
			consider(FailureEvidence{At: a.At, Source: "activity", Message: a.Message, CorrelationID: a.CorrelationID})
		}
	}
	for _, s := range c.Scheduled {
		if s.Status == fleet.ScheduledStatusFailed && s.UpgradeType == "NodeOSUpgrade" && !j.completedAfter(s.Observed.At) {
			consider(FailureEvidence{At: s.Observed.At, Source: "scheduled", Message: scheduledMessage(s.Details)})
		}
	}
	return best
}

func (j judge) completedAfter(t time.Time) bool {
	for _, s := range j.c.Scheduled {
		if s.Status == fleet.ScheduledStatusCompleted && s.UpgradeType == "NodeOSUpgrade" && s.Observed.At.After(t) {
			return true
		}
	}
	return false
}

// scheduledMessage reads the message out of Communication Manager's
// eventDetails, which may be text or JSON carrying a "message".
func scheduledMessage(details string) string {
	var d struct {
		Message string `json:"message"`
	}
	if err := json.Unmarshal([]byte(details), &d); err == nil {
		return d.Message
	}
	return details
}

// window is the cluster's node OS maintenance configuration, if known.
func (j judge) window() *fleet.MaintenanceWindow {
	if !j.c.MaintenanceKnown {
		return nil
	}
	for i := range j.c.Maintenance {
		if j.c.Maintenance[i].Name == fleet.MaintenanceNodeOS {
			return &j.c.Maintenance[i]
		}
	}
	return nil
}

// windowEvidence places now in the window: the next allowed occurrence (or
// the one open now), the last one that ended, and the first occurrence that
// not-allowed dates drop before the next allowed one.
func (j judge) windowEvidence(w fleet.MaintenanceWindow) *WindowEvidence {
	we := &WindowEvidence{Name: w.Name, DurationHours: w.DurationHours}
	if we.DurationHours == 0 {
		we.DurationHours = maintenance.DefaultDurationHours
	}
	if next, ok, err := maintenance.Next(w, j.now); err == nil && ok {
		we.NextStart, we.NextEnd, we.Open = next.Start, next.End, !next.Start.After(j.now)
	}
	if last, ok, err := maintenance.Last(w, j.now); err == nil && ok {
		we.LastStart = last.Start
	}
	if len(w.NotAllowed) > 0 {
		free := w
		free.NotAllowed = nil
		if raw, ok, err := maintenance.Next(free, j.now); err == nil && ok && (we.NextStart.IsZero() || raw.Start.Before(we.NextStart)) {
			we.SkippedStart = raw.Start
		}
	}
	return we
}

// awaiting: the newer image is younger than the grace, or no node OS window
// has opened since it became available; the next window (or AKS's own
// cadence, without one) will bring it.
func (j judge) awaiting(_ *fleet.Pool, g gap, st *PoolStatus) bool {
	w := j.window()
	if w == nil {
		if !g.within {
			return false
		}
		return set(st, StatusAwaitingWindow, fmt.Sprintf("%s is available since %s; with no node OS window AKS applies it on its own cadence (within the %d-day grace until %s)",
			g.newer[0].Version, day(g.availableAt), st.Evidence.GraceDays, day(g.availableAt.Add(j.pol.ImageGrace))))
	}
	we := st.Evidence.Window
	if we == nil {
		we = j.windowEvidence(*w)
		st.Evidence.Window = we
	}
	since := g.availableAt
	passed := !we.LastStart.IsZero() && !we.LastStart.Before(since)
	if !g.within && passed {
		return false
	}
	switch {
	case we.Open:
		return set(st, StatusAwaitingWindow, fmt.Sprintf("%s is available; the node OS window is open until %s", g.target.Version, we.NextEnd.Format("2006-01-02 15:04Z")))
	case we.NextStart.IsZero():
		return set(st, StatusAwaitingWindow, fmt.Sprintf("%s is available since %s; the node OS window has no occurrence ahead", g.target.Version, day(since)))
	}
	return set(st, StatusAwaitingWindow, fmt.Sprintf("%s is available since %s; the next node OS window opens at %s",
		g.target.Version, day(since), we.NextStart.Format("2006-01-02 15:04Z")))
}
