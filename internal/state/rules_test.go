package state_test

import (
	"context"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
	"github.com/upgradewatch/upgradewatch/internal/state"
)

// The store never calls a rule: the application layer (internal/watch)
// builds a closure from fleet.Apply and the rules and runs it through
// Update. These helpers do the same for the store's tests, with the rules and
// clock each test opens its store with.

type rulesOf struct {
	rules func(c *fleet.Cluster, now time.Time) []fleet.Transition
	now   func() time.Time
}

var storeRules sync.Map // *state.Store → rulesOf

// newWithRules opens a store whose commits (through commit and evaluate) run rules.
func newWithRules(svc *aztables.ServiceClient, o state.Options, rules func(c *fleet.Cluster, now time.Time) []fleet.Transition) *state.Store {
	s := state.New(svc, o)
	now := o.Now
	if now == nil {
		now = time.Now
	}
	storeRules.Store(s, rulesOf{rules: rules, now: now})
	return s
}

func (r rulesOf) run(c *fleet.Cluster) {
	if r.rules != nil {
		r.rules(c, r.now())
	}
}

func rulesFor(s *state.Store) rulesOf {
	if r, ok := storeRules.Load(s); ok {
		return r.(rulesOf)
	}
	return rulesOf{now: time.Now}
}

// commit applies a signal exactly once, as watch.App's ingest does.
func commit(ctx context.Context, s *state.Store, sig fleet.Signal) (state.Change, error) {
	sig.Time = sig.Time.UTC().Truncate(100 * time.Nanosecond)
	r := rulesFor(s)
	return s.Update(ctx, sig.Cluster, &sig, func(c *fleet.Cluster) error {
		if err := fleet.Apply(c, sig); err != nil {
			return err
		}
		r.run(c)
		return nil
	})
}

// evaluate re-runs the rules on a cluster's committed state, as the Sweep does.
func evaluate(ctx context.Context, s *state.Store, id fleet.ClusterID) (state.Change, error) {
	r := rulesFor(s)
	return s.Update(ctx, id, nil, func(c *fleet.Cluster) error {
		r.run(c)
		return nil
	})
}
