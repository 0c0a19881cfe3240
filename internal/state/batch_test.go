package state_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
	"github.com/upgradewatch/upgradewatch/internal/state"
)

// UpdateBatch's contract on one cluster: fn sees only the marks not yet
// committed; a mark fn leaves out is Unchanged and not written; an id
// repeated in marks is a Duplicate; marks committed before are Duplicate and
// the rest commit in one guarded change; all of them in already writes
// nothing.
func TestUpdateBatchContract(t *testing.T) {
	s, _, _ := newStore(t)
	ctx := context.Background()
	if _, _, err := s.UpdateBatch(ctx, aks1, nil, func(*fleet.Cluster, []int) ([]int, error) { return nil, nil }); !errors.Is(err, fleet.ErrRejected) {
		t.Fatalf("no marks: %v, want ErrRejected", err)
	}
	sigs := []fleet.Signal{
		rolling("b1", fleet.KindRollingStarted, "system", t0()),
		rolling("b2", fleet.KindRollingSucceeded, "system", t0().Add(time.Minute)),
		rolling("b3", fleet.KindRollingStarted, "user1", t0().Add(2*time.Minute)),
		rolling("b1", fleet.KindRollingStarted, "system", t0()),
	}
	marks := func(idx ...int) []*fleet.Signal {
		out := make([]*fleet.Signal, len(idx))
		for i, j := range idx {
			out[i] = &sigs[j]
		}
		return out
	}
	apply := func(skip int) func(c *fleet.Cluster, pending []int) ([]int, error) {
		return func(c *fleet.Cluster, pending []int) ([]int, error) {
			var applied []int
			for _, j := range pending {
				if j != skip {
					c.Signals++
					applied = append(applied, j)
				}
			}
			return applied, nil
		}
	}

	// b1 twice and b2, b2 left out by fn.
	ch, res, err := s.UpdateBatch(ctx, aks1, marks(0, 1, 3), apply(1))
	if err != nil || ch.Result != state.Committed || ch.Seq != 1 ||
		!slices.Equal(res, []state.Result{state.Committed, state.Unchanged, state.Duplicate}) {
		t.Fatalf("first: %+v %v %v, want b1 committed at seq 1, b2 unchanged, the repeat duplicate", ch, res, err)
	}

	// b1 in already: fn must see only b2 and b3.
	var seen []int
	ch, res, err = s.UpdateBatch(ctx, aks1, marks(0, 1, 2), func(c *fleet.Cluster, pending []int) ([]int, error) {
		seen = pending
		return apply(-1)(c, pending)
	})
	if err != nil || ch.Seq != 2 || !slices.Equal(res, []state.Result{state.Duplicate, state.Committed, state.Committed}) {
		t.Fatalf("overlap: %+v %v %v, want b1 duplicate, b2 and b3 committed at seq 2", ch, res, err)
	}
	if !slices.Equal(seen, []int{1, 2}) {
		t.Errorf("fn's last run saw pending %v, want [1 2]", seen)
	}
	if c, _ := s.Cluster(ctx, aks1); c.Signals != 3 {
		t.Errorf("Signals = %d, want 3", c.Signals)
	}

	ch, res, err = s.UpdateBatch(ctx, aks1, marks(2, 1, 0), apply(-1))
	if err != nil || ch.Result != state.Duplicate || ch.Seq != 2 || slices.ContainsFunc(res, func(r state.Result) bool { return r != state.Duplicate }) {
		t.Fatalf("redelivery: %+v %v %v, want all duplicates at seq 2", ch, res, err)
	}
	if c, _ := s.Cluster(ctx, aks1); c.Signals != 3 {
		t.Errorf("redelivery wrote: Signals = %d, want 3", c.Signals)
	}
}
