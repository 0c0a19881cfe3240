package state

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
)

// storedTime is the precision Table storage keeps times to.
const storedTime = 100 * time.Nanosecond

// errConflict: the partition moved on (another writer, or this signal's own
// earlier delivery) between load and commit. retry reloads and tries again.
var errConflict = errors.New("partition moved on")

// Update is the store's one write primitive: it loads the cluster's committed
// state (from the cache when this instance holds the latest), runs fn on a
// copy, and commits the rows fn changed as one guarded change: one
// entity-group transaction, or several in order when the change is bigger
// than one holds (chunks.go). Two writers racing on one cluster are fenced by
// the partition's sequence row: the loser reloads and fn runs again on the
// state the winner left, so fn must decide from what it is given, never from
// what an earlier run saw.
//
// mark, when set, makes the call exactly once per mark.ID: its audit row
// (signal~<id>, the dedupe marker) commits with the change, and a call whose
// mark is already committed writes nothing and answers Duplicate, repairing
// the cluster's index entries in case its first delivery failed between the
// commit and the index. Without a mark, a cluster with no state is
// ErrNotFound and a change that writes no row is Unchanged.
//
// fn returning ErrNoChange declines the change: Unchanged, nothing written.
// fn returning another error aborts the call with nothing written: the error is
// returned as is when it is one of the sentinels (ErrRejected,
// ErrUnavailable, ErrNotFound), else wrapped in ErrRejected. Other errors:
// ErrRejected (storage refused the rows), ErrUnavailable (transient, or
// contention did not settle). With a mark, the index entries are written
// before the commit (preIndex): if that fails nothing is committed
// (ErrUnavailable). Without one they are written after it; a change
// committed whose index update failed answers Committed with
// ErrUnavailable: the state is in, the next Duplicate (or the sweep) repairs
// the index. Safe for concurrent use.
func (s *Store) Update(ctx context.Context, id fleet.ClusterID, mark *fleet.Signal, fn func(*fleet.Cluster) error) (Change, error) {
	out, ops, err := s.change(ctx, id, mark, fn)
	if err != nil || out.Result != Committed {
		return out, err
	}
	if err := s.applyIndex(ctx, id, out.Seq, ops); err != nil {
		return out, fmt.Errorf("%w: index update after commit %d: %v", ErrUnavailable, out.Seq, err)
	}
	return out, nil
}

// UpdateMany runs Update without a mark on several clusters (fn gets the
// index of the cluster in ids), a few at a time,
// and writes all their index changes together at the end: a sweep costs one
// transaction per changed cluster plus one per index partition, not one per
// cluster per partition. Changes and errors are in the order of ids. The
// returned error is the index write's (ErrUnavailable): the commits stand,
// and the next sweep repairs the entries.
func (s *Store) UpdateMany(ctx context.Context, ids []fleet.ClusterID, workers int, fn func(i int, c *fleet.Cluster) error) ([]Change, []error, error) {
	outs, errs := make([]Change, len(ids)), make([]error, len(ids))
	ops := make([][]indexOp, len(ids))
	work := make(chan int)
	var wg sync.WaitGroup
	for range max(1, min(workers, len(ids))) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				outs[i], ops[i], errs[i] = s.change(ctx, ids[i], nil, func(c *fleet.Cluster) error { return fn(i, c) })
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
		return outs, errs, fmt.Errorf("%w: index update after update: %v", ErrUnavailable, err)
	}
	// As applyIndex does for one commit: entries of a cluster that moved on
	// meanwhile are rewritten from its latest state.
	for i, o := range ops {
		if needsCheck(o) {
			if err := s.verifyIndex(ctx, ids[i], outs[i].Seq); err != nil {
				return outs, errs, fmt.Errorf("%w: index check after update: %v", ErrUnavailable, err)
			}
		}
	}
	return outs, errs, nil
}

// change is Update without the index write: it returns the index changes
// the commit calls for.
func (s *Store) change(ctx context.Context, id fleet.ClusterID, mark *fleet.Signal, fn func(*fleet.Cluster) error) (Change, []indexOp, error) {
	if fn == nil {
		return Change{}, nil, fmt.Errorf("update %s: no change given", id.Key())
	}
	var ms *markSet
	if mark != nil {
		ms = newMarkSet([]*fleet.Signal{mark})
	}
	return s.changeMarked(ctx, id, ms, func(c *fleet.Cluster, pending []int) ([]int, error) { return pending, fn(c) })
}

// changeMarked is change with any number of marks (ms nil: none; see
// UpdateBatch), recording in ms what became of each.
func (s *Store) changeMarked(ctx context.Context, id fleet.ClusterID, ms *markSet, fn markedFunc) (Change, []indexOp, error) {
	if id.IsZero() {
		return Change{}, nil, fmt.Errorf("%w: no cluster to update", ErrRejected)
	}
	pk := id.Key()
	mu := s.lock(pk)
	mu.Lock()
	defer mu.Unlock()
	var out Change
	var ops []indexOp
	err := s.retry(ctx, pk, func() error {
		var err error
		out, ops, err = s.try(ctx, id, ms, fn)
		return err
	})
	return out, ops, err
}

// try is one attempt of a change: errConflict asks retry for another.
func (s *Store) try(ctx context.Context, id fleet.ClusterID, ms *markSet, fn markedFunc) (Change, []indexOp, error) {
	snap, cached, err := s.snapshot(ctx, id)
	if err != nil {
		return Change{}, nil, err
	}
	if ms == nil && snap.seq == 0 {
		return Change{}, nil, fmt.Errorf("%w: %s", ErrNotFound, id.Key())
	}
	next := snap.cluster.Clone()
	pending := ms.pending()
	applied, err := fn(next, pending)
	// A change without marks that writes nothing was decided on snap alone:
	// if snap came from the cache, it must be the committed state still.
	confirm := ms == nil && cached
	if out, done, err := s.nothingToWrite(ctx, id, snap, ms, pending, applied, err); done {
		if confirm && err == nil {
			if err := s.confirmCurrent(ctx, id.Key(), snap); err != nil {
				return Change{}, nil, err
			}
		}
		return out, nil, err
	}
	// As storage keeps it (and a load gives it back): the cached state and
	// the Change must not tell apart what a reload would not.
	seenTogether(next, time.Time{})
	rows := rowsOf(next)
	if ms == nil && sameRows(snap.rows, rows) {
		if confirm {
			if err := s.confirmCurrent(ctx, id.Key(), snap); err != nil {
				return Change{}, nil, err
			}
		}
		return Change{Result: Unchanged, Seq: snap.seq, Cluster: next}, nil, nil
	}
	return s.commitChange(ctx, id, snap, next, rows, ms, pending, applied)
}

// confirmCurrent checks that a cached snapshot is still the committed state
// (its sequence row is there: every commit since would have deleted it),
// before a change decided on it writes nothing. A change that writes is
// checked by its commit's guard; one that writes nothing is not, and a
// stale snapshot would answer Unchanged for a state another instance has
// moved on from: a Sweep evaluating a cluster due for what another instance
// recorded would find nothing due, send nothing, and drop the due entry.
// errConflict drops the snapshot: the retry reloads and runs fn again.
func (s *Store) confirmCurrent(ctx context.Context, pk string, snap *snapshot) error {
	_, err := s.fleet.GetEntity(ctx, pk, seqKey(snap.seq), nil)
	switch {
	case err == nil:
		return nil
	case hasCode(err, aztables.ResourceNotFound):
		s.cache.drop(pk)
		return errConflict
	}
	return wrapStorage(err)
}

// nothingToWrite settles a try whose fn failed, declined (ErrNoChange) or
// applied none of its signals; done is false when there is a change to
// commit.
func (s *Store) nothingToWrite(ctx context.Context, id fleet.ClusterID, snap *snapshot, ms *markSet, pending, applied []int, fnErr error) (Change, bool, error) {
	unchanged := Change{Result: Unchanged, Seq: snap.seq, Cluster: snap.cluster.Clone()}
	switch {
	case fnErr != nil && errors.Is(fnErr, ErrNoChange):
		ms.settle(pending, nil)
		return unchanged, true, nil
	case fnErr != nil:
		return Change{}, true, aborted(fnErr)
	case ms != nil && len(applied) == 0:
		// fn applied none of the signals: nothing to write for them.
		ms.settle(pending, nil)
		if ms.redelivered() {
			out, err := s.duplicate(ctx, id)
			return out, true, err
		}
		return unchanged, true, nil
	}
	return Change{}, false, nil
}

// commitChange commits the change from snap to next (rows) as guarded
// transactions, with the marks fn applied. A signal's change writes its
// ordered index entries before it commits (see preIndex) and undoes them if
// the commit fails, and queues the entries that commute behind the commit
// (see the top of index.go); other changes return their index ops for the
// caller to write after, with a check (applyIndex).
func (s *Store) commitChange(ctx context.Context, id fleet.ClusterID, snap *snapshot, next *fleet.Cluster, rows map[string]row,
	ms *markSet, pending, applied []int) (Change, []indexOp, error) {
	pk := id.Key()
	chunks, seq, err := s.plan(pk, snap, rows, leaving(next), ms.signals(applied)...)
	if err != nil {
		return Change{}, nil, err
	}
	now := s.now()
	ops := indexOps(snap.cluster, next, now)
	var written, behind []indexOp
	if ms != nil {
		written, behind = splitOps(ops)
		written = append(s.coveredDue(id, written, now), s.repairDue(next, now, behind)...)
		if len(written) > 0 {
			if err := s.preIndex(ctx, id, written); err != nil {
				return Change{}, nil, err
			}
			s.filed.note(written, now)
		}
		ops = nil
	}
	reached, err := s.submit(ctx, pk, snap.seq, chunks)
	if err != nil {
		if written != nil {
			s.undoIndex(ctx, id, written)
		}
		return s.notCommitted(ctx, id, snap, ms, applied, reached, len(chunks), err)
	}
	s.cache.put(pk, &snapshot{cluster: settled(next), rows: rows, seq: seq})
	s.idx.later(behind)
	// The caller gets the state as it reloads, in a copy of its own.
	out := Change{Result: Committed, Seq: seq, Cluster: settled(next)}
	ms.settle(pending, applied)
	if snap.partial || ms.redelivered() {
		// What the committed parts of an unfinished change did to the
		// index was never written, or a signal found in already had its
		// first delivery fail before its index: rewrite the cluster's
		// entries.
		if err := s.reconcileIndex(ctx, next); err != nil {
			return out, nil, fmt.Errorf("%w: index repair after commit %d: %v", ErrUnavailable, seq, err)
		}
	}
	return out, ops, nil
}

// notCommitted sorts a failed commit: transient and refused errors end the
// try; a conflict is a duplicate when every signal is in already, else
// errConflict for the retry loop (which then leaves out the ones in).
func (s *Store) notCommitted(ctx context.Context, id fleet.ClusterID, snap *snapshot, ms *markSet, applied []int,
	reached int64, parts int, err error) (Change, []indexOp, error) {
	pk := id.Key()
	s.cache.drop(pk)
	if reached > snap.seq {
		s.log.Info("change partly committed; the rest follows on retry or redelivery", "cluster", pk,
			"parts_committed", reached-snap.seq, "parts", parts)
	}
	if err := storageErr(err); !errors.Is(err, errConflict) || ms == nil {
		return Change{}, nil, err
	}
	// Either some of these signals are in already, or another writer moved
	// the partition on. The audit rows tell which.
	if err := s.findCommitted(ctx, pk, ms, applied); err != nil {
		return Change{}, nil, err
	}
	if len(ms.pending()) == 0 {
		out, err := s.duplicate(ctx, id)
		return out, nil, err
	}
	return Change{}, nil, errConflict
}

// retry is the store's one reload-and-retry loop, for cluster changes and
// node snapshots alike: it runs attempt until that returns anything but
// errConflict, backing off between attempts, at most commitAttempts times.
func (s *Store) retry(ctx context.Context, pk string, attempt func() error) error {
	for n := 1; ; n++ {
		err := attempt()
		if !errors.Is(err, errConflict) {
			return err
		}
		if n >= commitAttempts {
			return fmt.Errorf("%w: %s still contended after %d attempts", ErrUnavailable, pk, n)
		}
		s.log.Debug("commit conflict, reloading", "cluster", pk, "attempt", n)
		if err := backoff(ctx, n); err != nil {
			return err
		}
	}
}

// storageErr sorts a failed transaction: transient (ErrUnavailable), rows
// storage can never hold (ErrRejected), or a conflict (errConflict).
func storageErr(err error) error {
	switch classify(err) {
	case classTransient:
		return wrapStorage(err)
	case classInvalid:
		return fmt.Errorf("%w: storage refused the rows: %v", ErrRejected, firstLine(err))
	}
	return errConflict
}

// aborted is the error of an Update whose fn refused the change.
func aborted(err error) error {
	if errors.Is(err, ErrRejected) || errors.Is(err, ErrUnavailable) || errors.Is(err, ErrNotFound) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrRejected, err)
}

// sameRows reports whether two encodings of a state are equal.
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
