package state_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
	"github.com/upgradewatch/upgradewatch/internal/state"
)

// Update's contract, step by step on one cluster: an unknown cluster without
// a mark, a change that writes nothing, fn's errors, and a mark committed
// before.
func TestUpdateContract(t *testing.T) {
	s, _, _ := newStore(t)
	ctx := context.Background()
	touch := func(c *fleet.Cluster) error { c.Signals++; return nil }

	if _, err := s.Update(ctx, aks1, nil, touch); !errors.Is(err, fleet.ErrNotFound) {
		t.Fatalf("update of an unknown cluster: %v, want ErrNotFound", err)
	}
	if _, err := s.Cluster(ctx, aks1); !errors.Is(err, fleet.ErrNotFound) {
		t.Fatalf("the failed update wrote state: %v", err)
	}
	mustCommit(t, s, rolling("u1", fleet.KindRollingStarted, "system", t0()), state.Committed)

	out, err := s.Update(ctx, aks1, nil, func(*fleet.Cluster) error { return nil })
	if err != nil || out.Result != state.Unchanged || out.Seq != 1 || out.Cluster == nil || out.Cluster.Signals != 1 {
		t.Fatalf("no-op update: %+v %v, want unchanged at seq 1 with the state", out, err)
	}
	out, err = s.Update(ctx, aks1, nil, touch)
	if err != nil || out.Result != state.Committed || out.Seq != 2 || out.Cluster.Signals != 2 {
		t.Fatalf("update: %+v %v, want committed at seq 2", out, err)
	}

	errs := []struct {
		name string
		fn   error
		want error
	}{
		{"plain error is a rejection", errors.New("refused"), fleet.ErrRejected},
		{"sentinel kept", fmt.Errorf("%w: try later", fleet.ErrUnavailable), fleet.ErrUnavailable},
	}
	for _, tc := range errs {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Update(ctx, aks1, nil, func(c *fleet.Cluster) error { c.Signals += 100; return tc.fn })
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if c, _ := s.Cluster(ctx, aks1); c.Signals != 2 {
				t.Errorf("aborted update wrote Signals = %d, want 2", c.Signals)
			}
		})
	}

	out, err = s.Update(ctx, aks1, nil, func(c *fleet.Cluster) error {
		c.Signals += 100
		return fmt.Errorf("nothing due: %w", state.ErrNoChange)
	})
	if err != nil || out.Result != state.Unchanged || out.Seq != 2 || out.Cluster.Signals != 2 {
		t.Fatalf("declined update: %+v %v, want unchanged at seq 2 with the state as it was", out, err)
	}

	mark := rolling("u1", fleet.KindRollingStarted, "system", t0())
	out, err = s.Update(ctx, aks1, &mark, func(c *fleet.Cluster) error { c.Signals += 100; return nil })
	if err != nil || out.Result != state.Duplicate || out.Seq != 2 {
		t.Fatalf("update with a committed mark: %+v %v, want duplicate at seq 2", out, err)
	}
	if c, _ := s.Cluster(ctx, aks1); c.Signals != 2 {
		t.Errorf("duplicate wrote Signals = %d, want 2", c.Signals)
	}
}

// Many writers on two instances increment one counter through Update: each
// loser of a race reloads and runs its fn again, so no increment is lost.
func TestUpdateConcurrentWritersLoseNothing(t *testing.T) {
	s, svc, prefix := newStore(t)
	other := open(t, svc, prefix)
	ctx := context.Background()
	mustCommit(t, s, rolling("c0", fleet.KindRollingStarted, "system", t0()), state.Committed)
	const writers = 12
	var wg sync.WaitGroup
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st := []*state.Store{s, other}[i%2]
			if _, err := st.Update(ctx, aks1, nil, func(c *fleet.Cluster) error { c.Signals++; return nil }); err != nil {
				t.Errorf("writer %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	c, err := s.Cluster(ctx, aks1)
	if err != nil || c.Signals != 1+writers {
		t.Fatalf("Signals = %v (%v), want %d", c.Signals, err, 1+writers)
	}
}

// UpdateMany runs fn on each cluster with its index, and answers a cluster
// with no state with ErrNotFound without failing the others.
func TestUpdateManyPerClusterResults(t *testing.T) {
	s, _, _ := newStore(t)
	ctx := context.Background()
	mustCommit(t, s, rolling("m1", fleet.KindRollingStarted, "system", t0()), state.Committed)
	unknown := fleet.ClusterID{SubscriptionID: aks1.SubscriptionID, ResourceGroup: aks1.ResourceGroup, Name: "aks-never-seen"}
	at := t0().Add(time.Hour)
	outs, errs, err := s.UpdateMany(ctx, []fleet.ClusterID{unknown, aks1}, 2, func(i int, c *fleet.Cluster) error {
		c.NextEvaluation = at.Add(time.Duration(i) * time.Minute)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(errs[0], fleet.ErrNotFound) {
		t.Errorf("unknown cluster: %v, want ErrNotFound", errs[0])
	}
	if errs[1] != nil || outs[1].Result != state.Committed || !outs[1].Cluster.NextEvaluation.Equal(at.Add(time.Minute)) {
		t.Errorf("aks1: %+v %v, want committed with its own NextEvaluation", outs[1], errs[1])
	}
	due, err := s.Due(ctx, at.Add(time.Hour), 10)
	if err != nil || len(due) != 1 || due[0].Cluster != aks1 {
		t.Errorf("due after UpdateMany: %v %v, want aks1's entry written", due, err)
	}
}

// A change decided on a cached snapshot that writes nothing (fn declines, or
// changes no row) is not fenced by a commit's guard: the store confirms the
// snapshot is still the committed state first, so an instance whose cache
// another instance has moved on from decides on the latest state, never
// answers Unchanged for one that no longer holds.
func TestUpdateThatWritesNothingDecidesOnTheLatestState(t *testing.T) {
	s1, svc, prefix := newStore(t)
	s2 := open(t, svc, prefix)
	ctx := context.Background()
	mustCommit(t, s1, rolling("c1", fleet.KindRollingStarted, "system", t0()), state.Committed) // s1 caches seq 1
	if _, err := s2.Update(ctx, aks1, nil, func(c *fleet.Cluster) error { c.Signals += 10; return nil }); err != nil {
		t.Fatal(err)
	}

	// What the other instance committed is what this one has to act on.
	out, err := s1.Update(ctx, aks1, nil, func(c *fleet.Cluster) error {
		if c.Signals < 10 {
			return state.ErrNoChange
		}
		c.Signals++
		return nil
	})
	if err != nil || out.Result != state.Committed || out.Seq != 3 || out.Cluster.Signals != 12 {
		t.Fatalf("update on a stale cache: %+v %v, want committed at seq 3 with Signals 12", out, err)
	}

	// A change of no row answers the latest state.
	if _, err := s2.Update(ctx, aks1, nil, func(c *fleet.Cluster) error { c.Signals += 10; return nil }); err != nil {
		t.Fatal(err)
	}
	out, err = s1.Update(ctx, aks1, nil, func(*fleet.Cluster) error { return nil })
	if err != nil || out.Result != state.Unchanged || out.Seq != 4 || out.Cluster.Signals != 22 {
		t.Fatalf("no-op update on a stale cache: %+v %v, want unchanged at seq 4 with Signals 22", out, err)
	}
	// Now current, the cache answers again without a reload.
	out, err = s1.Update(ctx, aks1, nil, func(*fleet.Cluster) error { return state.ErrNoChange })
	if err != nil || out.Result != state.Unchanged || out.Seq != 4 || out.Cluster.Signals != 22 {
		t.Fatalf("declined update on a current cache: %+v %v, want unchanged at seq 4", out, err)
	}
}
