package outbox

import (
	"slices"
	"time"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
)

// deliveries decides, once, when a step is recorded, which sinks it must
// reach: those cfg.Route gives for the cluster, the step's code and its
// severity (every sink without a Route), among the configured ones. Deciding
// here, not at send time, keeps exactly-once per sink: a route changed later
// (a tag, a new policy) neither adds a sink to a step half sent nor takes one
// away. A step no route sends anywhere gets no delivery, and is archived as
// it is recorded. The deliveries of grouped sinks wait cfg.GroupWait.
func deliveries(c *fleet.Cluster, i *fleet.Intent, cfg Config, now time.Time) map[string]*fleet.Delivery {
	sinks := cfg.Sinks
	if cfg.Route != nil {
		routed := cfg.Route(c, i.Code, i.Severity)
		sinks = slices.DeleteFunc(slices.Clone(cfg.Sinks), func(s string) bool { return !slices.Contains(routed, s) })
	}
	out := make(map[string]*fleet.Delivery, len(sinks))
	for _, s := range sinks {
		at := now.UTC()
		if slices.Contains(cfg.Grouped, s) {
			// The group's wait: the Dispatcher sends a sink's group once its
			// oldest step's first attempt comes due, and tidy wakes the
			// cluster then, so the Sweep sends it if nothing else does.
			at = at.Add(cfg.GroupWait)
		}
		out[s] = &fleet.Delivery{NextAttempt: at}
	}
	return out
}
