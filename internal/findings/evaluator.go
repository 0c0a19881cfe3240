package findings

import (
	"time"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
)

// Resolver gives a cluster's policy and the policy's problems with it.
type Resolver func(c *fleet.Cluster) (fleet.Policy, []string)

// Evaluator returns the function the store calls on every commit and sweep:
// evaluate, reconcile the cluster's findings, and set its next evaluation.
func Evaluator(resolve Resolver) func(c *fleet.Cluster, now time.Time) []fleet.Transition {
	return func(c *fleet.Cluster, now time.Time) []fleet.Transition {
		p, problems := resolve(c)
		res := Evaluate(c, p, problems, now)
		c.NextEvaluation = res.Next
		return fleet.Reconcile(c, res.Observations, now)
	}
}
