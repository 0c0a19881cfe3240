package patch

import (
	"time"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
)

// NextChange is the earliest time after now at which the clock alone may
// change a verdict of the cluster's pools: a newer image's grace ending
// (WithinPolicy → Behind, AwaitingWindow → Behind), the end of the first node
// OS window since the image came, a channel change's 24 h passing, the next
// allowed window coming within the grace (NotAllowedDates lifts). Zero
// when nothing would change by time alone. The days behind grow every day
// too; that is not a change of verdict and is left to a daily recomputation.
//
// It may name a time at which nothing changes after all (a window ending
// with the grace still running): an evaluation then finds the same verdicts,
// which costs one evaluation, never a wrong answer. Pure, like Status.
func NextChange(c *fleet.Cluster, cat Catalogue, pol fleet.Policy, now time.Time) time.Time {
	if c == nil || c.Deleted {
		return time.Time{}
	}
	j := judge{c: c, cat: cat, pol: pol.WithDefaults(), now: now.UTC()}
	var next time.Time
	consider := func(t time.Time) {
		if t.After(j.now) && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	if at := c.NodeOSChannelChangedAt; !at.IsZero() {
		consider(at.Add(channelSettle))
	}
	w := j.window()
	for _, p := range c.SortedPools() {
		if p.Removed {
			continue
		}
		g := poolGap(c, p, cat, j.pol, j.now)
		if !g.known || !g.behind {
			continue
		}
		if !g.availableAt.IsZero() {
			consider(g.availableAt.Add(j.pol.ImageGrace))
		}
		if w != nil {
			we := j.windowEvidence(*w)
			if we.LastStart.IsZero() || we.LastStart.Before(g.availableAt) {
				// No window has passed since the image came: the end of the
				// next one may turn AwaitingWindow into Behind. Once one has
				// passed, later windows change no verdict.
				consider(we.NextEnd)
			}
			if !we.SkippedStart.IsZero() && !we.NextStart.IsZero() {
				// NotAllowedDates lifts once the next allowed start comes within the grace.
				consider(we.NextStart.Add(-j.pol.ImageGrace))
			}
		}
	}
	return next
}
