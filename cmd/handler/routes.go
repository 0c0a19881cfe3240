package main

import (
	"github.com/upgradewatch/upgradewatch/internal/fleet"
	"github.com/upgradewatch/upgradewatch/internal/notify"
	"github.com/upgradewatch/upgradewatch/internal/outbox"
	"github.com/upgradewatch/upgradewatch/internal/policy"
)

// sinkNames names the sinks, in configuration order.
func sinkNames(sinks []notify.Sink) []string {
	out := make([]string, len(sinks))
	for i, s := range sinks {
		out[i] = s.Name()
	}
	return out
}

// routeAndGroup sets how the outbox records each step: to the sinks the
// policy document's routes choose (every sink when it has none), and, for
// the chat sinks, after the group wait.
func routeAndGroup(o *outbox.Config, n notify.Config, sinks []notify.Sink, policies *policy.Set) {
	o.Grouped, o.GroupWait = outbox.GroupedSinks(sinks), n.GroupWait
	if !policies.HasRoutes() {
		return
	}
	all := sinkNames(sinks)
	o.Route = func(c *fleet.Cluster, code, severity string) []string {
		routed, _, toAll := policies.Route(c, code, severity)
		if toAll {
			return all
		}
		return routed
	}
}
