package findings

import (
	"encoding/json"
	"time"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
)

// Resolver gives a cluster's policy and the policy's problems with it.
type Resolver func(c *fleet.Cluster) (fleet.Policy, []string)

// Settle is how long a cluster must have been quiet (no signal committed)
// before the wall clock, rather than its events, judges it. It matches the
// Sweep's schedule: a backlog delivered faster than that is judged on its own
// times throughout.
const Settle = 5 * time.Minute

// Evaluator returns the function the store calls on every commit and sweep:
// evaluate at the cluster's judging time (JudgeTime), reconcile the cluster's
// findings with their true times, mark what is inhibited, and set its next
// evaluation.
func Evaluator(resolve Resolver) func(c *fleet.Cluster, now time.Time) []fleet.Transition {
	return func(c *fleet.Cluster, now time.Time) []fleet.Transition {
		p, problems := resolve(c)
		at := JudgeTime(c, now)
		res := Evaluate(c, p, problems, at)
		c.NextEvaluation = settleWake(c, res.Next, at, now)
		trans := fleet.ReconcileAt(c, res.Observations, at, now)
		cureTimes(c, trans)
		Inhibit(c)
		return trans
	}
}

// JudgeTime is the "now" the rules judge a cluster at, given the wall clock:
//
//   - while signals keep arriving (the newest committed less than Settle
//     ago), the cluster's event clock: the newest event time seen
//     (LastEventAt). A backlog replayed weeks late is judged as it happened:
//     an upgrade whose Succeeded is right behind its Started in the backlog
//     never looks stalled against today's date;
//   - once the cluster has been quiet for Settle (the Sweep, at a deadline no
//     later event came to meet), the wall clock: silence is evidence too, and
//     a real stall opens then;
//   - never earlier than an open finding was last seen: a verdict does not go
//     back in time because an old event arrived after a sweep; and never later
//     than the wall clock.
func JudgeTime(c *fleet.Cluster, wall time.Time) time.Time {
	wall = wall.UTC()
	if c.HeardAt.IsZero() || wall.Sub(c.HeardAt) >= Settle || c.LastEventAt.IsZero() {
		return wall
	}
	at := c.LastEventAt.UTC()
	for _, f := range c.Findings {
		if f.Status == fleet.FindingOpen && f.LastSeenAt.After(at) {
			at = f.LastSeenAt.UTC()
		}
	}
	if at.After(wall) {
		return wall
	}
	return at
}

// settleWake returns when the cluster must be judged again. A deadline the
// event clock has not reached but the wall clock has is judged by the wall
// clock once the cluster has settled: no earlier, or a backlog would be
// judged against today halfway through.
func settleWake(c *fleet.Cluster, next, at, wall time.Time) time.Time {
	if next.IsZero() || !at.Before(wall) || next.After(wall) {
		return next
	}
	if settled := c.HeardAt.Add(Settle); settled.After(next) {
		return settled.UTC()
	}
	return next
}

// cureTimes dates a resolution by the evidence when it can: a stalled
// upgrade was cured when it ended, however late that end was delivered.
func cureTimes(c *fleet.Cluster, trans []fleet.Transition) {
	for i, t := range trans {
		if t.Kind != fleet.TransitionResolved || t.Finding.Code != fleet.CodeUpgradeStalled {
			continue
		}
		f := c.Findings[t.Finding.Key()]
		var ev struct {
			Upgrade string `json:"upgrade"`
		}
		if f == nil || json.Unmarshal([]byte(f.Evidence), &ev) != nil {
			continue
		}
		u := c.Upgrades[ev.Upgrade]
		if u == nil || u.EndedAt.IsZero() || !u.EndedAt.Before(f.ResolvedAt) {
			continue
		}
		f.ResolvedAt = later(u.EndedAt.UTC(), f.OpenedAt)
		trans[i].Finding.ResolvedAt = f.ResolvedAt
	}
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// Inhibitions (Finding.InhibitedBy), as fleet names them.
const (
	InhibitClusterDeleting = fleet.InhibitClusterDeleting
	InhibitClusterStopping = fleet.InhibitClusterStopping
)

// Inhibit marks the open findings that the cluster's state makes
// meaningless for now, and clears the mark on the others
// (fleet.Cluster.MarkInhibited says which). It is the last step of every
// evaluation: inhibition is derived from the state, never stored.
func Inhibit(c *fleet.Cluster) { c.MarkInhibited() }
