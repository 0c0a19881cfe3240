package state

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
)

// Evaluated says what an Evaluate did.
type Evaluated struct {
	Changed        bool // findings (or the next evaluation time) changed and were committed
	Transitions    []fleet.Transition
	Seq            int64
	NextEvaluation time.Time // as committed
	// RefreshWanted: an activity changed the cluster after its newest ARM
	// view (fleet.Cluster.RefreshWanted); the sweep asks for a read.
	RefreshWanted bool
	// Outbox is how many notification intents the cluster still owes some
	// sink after the commit: the caller dispatches them (internal/outbox).
	Outbox int
}

// Evaluate re-runs the finding rules on a cluster's committed state at the
// store's now, and commits the result if anything changed. It is what the
// Sweep calls for clusters whose NextEvaluation has come. Two sweeps on one
// cluster are fenced by the partition's sequence row: the loser reloads, finds
// the findings already as they should be, and changes nothing, so a finding
// opens exactly once. Errors: ErrNotFound, ErrUnavailable.
func (s *Store) Evaluate(ctx context.Context, id fleet.ClusterID) (Evaluated, error) {
	out, ops, err := s.evaluateOne(ctx, id)
	if err != nil {
		return out, err
	}
	if err := s.applyIndex(ctx, id, out.Seq, ops); err != nil {
		return out, fmt.Errorf("%w: index update after evaluation: %v", ErrUnavailable, err)
	}
	return out, nil
}

// EvaluateMany evaluates several clusters, a few at a time, and writes all
// their index changes together at the end: a sweep costs one transaction per
// changed cluster plus one per index partition, not one per cluster per
// partition. Results and errors are in the order of ids. The returned error is
// the index write's (ErrUnavailable): the commits stand, and the next sweep
// repairs the entries.
func (s *Store) EvaluateMany(ctx context.Context, ids []fleet.ClusterID, workers int) ([]Evaluated, []error, error) {
	outs, errs := make([]Evaluated, len(ids)), make([]error, len(ids))
	ops := make([][]indexOp, len(ids))
	work := make(chan int)
	var wg sync.WaitGroup
	for range max(1, min(workers, len(ids))) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				outs[i], ops[i], errs[i] = s.evaluateOne(ctx, ids[i])
			}
		}()
	}
	for i := range ids {
		work <- i
	}
	close(work)
	wg.Wait()
	var all []indexOp
	for _, o := range ops {
		all = append(all, o...)
	}
	if err := s.idx.apply(ctx, all); err != nil {
		return outs, errs, fmt.Errorf("%w: index update after evaluation: %v", ErrUnavailable, err)
	}
	// As applyIndex does for one commit: entries of a cluster that moved on
	// meanwhile are rewritten from its latest state.
	for i, o := range ops {
		if len(o) > 0 {
			if err := s.verifyIndex(ctx, ids[i], outs[i].Seq); err != nil {
				return outs, errs, fmt.Errorf("%w: index check after evaluation: %v", ErrUnavailable, err)
			}
		}
	}
	return outs, errs, nil
}

// RepairIndex rewrites a cluster's index entries from its committed state.
func (s *Store) RepairIndex(ctx context.Context, id fleet.ClusterID) error {
	snap, err := s.load(ctx, id)
	if err != nil {
		return err
	}
	return s.reconcileIndex(ctx, snap.cluster)
}

// evaluateOne commits a cluster's re-evaluation and returns the index changes
// it calls for, without writing them.
func (s *Store) evaluateOne(ctx context.Context, id fleet.ClusterID) (Evaluated, []indexOp, error) {
	return s.update(ctx, id, nil)
}

// Update changes a cluster's committed state with fn and commits the result,
// with the finding rules run again, in one guarded transaction; it is how the
// outbox dispatcher and the remediation sweep record what they do. fn gets a
// copy of the state and the store's now, and returns false when it changed
// nothing. After a conflict fn runs again on the state another writer left,
// so it must decide from what it is given, not from what it saw before.
// Errors: ErrNotFound, ErrUnavailable, ErrRejected.
func (s *Store) Update(ctx context.Context, id fleet.ClusterID, fn func(c *fleet.Cluster, now time.Time) bool) (Evaluated, error) {
	if fn == nil {
		return Evaluated{}, fmt.Errorf("update %s: no change given", id.Key())
	}
	out, ops, err := s.update(ctx, id, fn)
	if err != nil {
		return out, err
	}
	if err := s.applyIndex(ctx, id, out.Seq, ops); err != nil {
		return out, fmt.Errorf("%w: index update after update: %v", ErrUnavailable, err)
	}
	return out, nil
}

// update is Evaluate's and Update's transaction: fn (when set) and the rules
// on the committed state, committed when the rows changed.
func (s *Store) update(ctx context.Context, id fleet.ClusterID, fn func(c *fleet.Cluster, now time.Time) bool) (Evaluated, []indexOp, error) {
	if s.evaluate == nil && fn == nil {
		return Evaluated{}, nil, fmt.Errorf("evaluate %s: no rules configured", id.Key())
	}
	pk := id.Key()
	mu := s.lock(pk)
	mu.Lock()
	defer mu.Unlock()
	for attempt := 1; ; attempt++ {
		snap, err := s.snapshot(ctx, id)
		if err != nil {
			return Evaluated{}, nil, err
		}
		if snap.seq == 0 {
			return Evaluated{}, nil, fmt.Errorf("%w: %s", ErrNotFound, pk)
		}
		next := snap.cluster.Clone()
		now := s.now()
		if fn != nil && !fn(next, now) {
			return s.evaluated(snap.cluster, snap.seq, false, nil), nil, nil
		}
		var trans []fleet.Transition
		if s.evaluate != nil {
			trans = s.evaluate(next, now)
		}
		rows := rowsOf(next)
		if sameRows(snap.rows, rows) {
			return s.evaluated(next, snap.seq, false, nil), nil, nil
		}
		chunks, seq, err := s.plan(pk, snap, rows, leaving(next), nil)
		if err != nil {
			return Evaluated{}, nil, err
		}
		if _, err = s.submit(ctx, pk, snap.seq, chunks); err == nil {
			s.cache.put(pk, &snapshot{cluster: next, rows: rows, seq: seq})
			if snap.partial {
				// What the committed parts of an unfinished change did to the
				// index was never written: rewrite the cluster's entries.
				if err := s.reconcileIndex(ctx, next); err != nil {
					return s.evaluated(next, seq, true, trans), nil, fmt.Errorf("%w: index repair: %v", ErrUnavailable, err)
				}
			}
			return s.evaluated(next, seq, true, trans), indexOps(snap.cluster, next), nil
		}
		s.cache.drop(pk)
		switch classify(err) {
		case classTransient:
			return Evaluated{}, nil, wrapStorage(err)
		case classInvalid:
			return Evaluated{}, nil, fmt.Errorf("%w: storage refused the rows: %v", ErrRejected, firstLine(err))
		}
		if attempt >= commitAttempts {
			return Evaluated{}, nil, fmt.Errorf("%w: cluster %s still contended after %d attempts", ErrUnavailable, pk, attempt)
		}
		if err := backoff(ctx, attempt); err != nil {
			return Evaluated{}, nil, err
		}
	}
}

func (s *Store) evaluated(c *fleet.Cluster, seq int64, changed bool, trans []fleet.Transition) Evaluated {
	_, refresh := c.RefreshWanted()
	return Evaluated{Changed: changed, Transitions: trans, Seq: seq, NextEvaluation: c.NextEvaluation,
		RefreshWanted: refresh, Outbox: len(c.Outbox)}
}

func sameRows(a, b map[string]row) bool {
	if len(a) != len(b) {
		return false
	}
	for k, r := range a {
		if o, ok := b[k]; !ok || !o.equal(r) {
			return false
		}
	}
	return true
}

// DueEntry is a cluster the sweep must re-evaluate.
type DueEntry struct {
	Cluster fleet.ClusterID
	At      time.Time
}

// Due lists clusters whose next evaluation is at or before now, oldest first,
// at most limit. One range query on the index: its cost depends on how many
// are due, not on the size of the fleet.
func (s *Store) Due(ctx context.Context, now time.Time, limit int) ([]DueEntry, error) {
	// Every shard of every hour up to now's; the RowKey bound drops what is
	// due later in the current hour.
	filter := fmt.Sprintf("PartitionKey ge %s and PartitionKey lt %s and RowKey lt %s",
		odataString(IndexDue+"~"), odataString(IndexDue+"~"+now.UTC().Format("2006010215")+"~~"),
		odataString(now.UTC().Format(fleet.TimeKeyLayout)+"~~"))
	ents, err := s.queryLimit(ctx, s.index, filter, limit)
	if err != nil {
		return nil, fmt.Errorf("list due clusters: %w", err)
	}
	out := make([]DueEntry, 0, len(ents))
	for _, e := range ents {
		out = append(out, DueEntry{At: e.time("At"), Cluster: fleet.ClusterID{SubscriptionID: e.str("SubscriptionId"),
			ResourceGroup: e.str("ResourceGroup"), Name: e.str("ClusterName")}})
	}
	return out, nil
}

// FindingEntry is one open finding as the index lists it.
type FindingEntry struct {
	Cluster  fleet.ClusterID
	Finding  fleet.Finding
	Resource string // ARM ID of the cluster
}

// OpenFindings lists the open findings of the whole fleet from the index: one
// partition query.
func (s *Store) OpenFindings(ctx context.Context) ([]FindingEntry, error) {
	ents, err := s.query(ctx, s.index, "PartitionKey eq "+odataString(IndexFindings))
	if err != nil {
		return nil, fmt.Errorf("list findings: %w", err)
	}
	out := make([]FindingEntry, 0, len(ents))
	for _, e := range ents {
		id := fleet.ClusterID{SubscriptionID: e.str("SubscriptionId"), ResourceGroup: e.str("ResourceGroup"), Name: e.str("ClusterName")}
		f := findingOf(e)
		out = append(out, FindingEntry{Cluster: id, Finding: *f, Resource: id.ResourceID()})
	}
	return out, nil
}

// DropDue removes a due entry that no longer matches its cluster (an index
// write that failed after a commit left it behind).
func (s *Store) DropDue(ctx context.Context, e DueEntry) error {
	return s.idx.apply(ctx, []indexOp{{pk: duePartition(e.Cluster, e.At), rk: dueKey(e.Cluster, e.At)}})
}
