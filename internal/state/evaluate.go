package state

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
)

// Evaluated says what an Evaluate did.
type Evaluated struct {
	Changed        bool // findings (or the next evaluation time) changed and were committed
	Transitions    []fleet.Transition
	Seq            int64
	NextEvaluation time.Time // as committed
}

// Evaluate re-runs the finding rules on a cluster's committed state at the
// store's now, and commits the result if anything changed. It is what the
// Sweep calls for clusters whose NextEvaluation has come. Two sweeps on one
// cluster are fenced by the partition's sequence row: the loser reloads, finds
// the findings already as they should be, and changes nothing, so a finding
// opens exactly once. Errors: ErrNotFound, ErrUnavailable.
func (s *Store) Evaluate(ctx context.Context, id fleet.ClusterID) (Evaluated, error) {
	if s.evaluate == nil {
		return Evaluated{}, fmt.Errorf("evaluate %s: no rules configured", id.Key())
	}
	pk := id.Key()
	mu := s.lock(pk)
	mu.Lock()
	defer mu.Unlock()
	for attempt := 1; ; attempt++ {
		snap, err := s.snapshot(ctx, id)
		if err != nil {
			return Evaluated{}, err
		}
		if snap.seq == 0 {
			return Evaluated{}, fmt.Errorf("%w: %s", ErrNotFound, pk)
		}
		next := snap.cluster.Clone()
		trans := s.evaluate(next, s.now())
		rows := rowsOf(next)
		if sameRows(snap.rows, rows) {
			return Evaluated{Seq: snap.seq, NextEvaluation: next.NextEvaluation}, nil
		}
		actions, err := s.actions(pk, snap, rows, nil)
		if err != nil {
			return Evaluated{}, err
		}
		_, err = s.fleet.SubmitTransaction(ctx, actions, nil)
		if err == nil {
			seq := snap.seq + 1
			s.cache.put(pk, &snapshot{cluster: next, rows: rows, seq: seq})
			out := Evaluated{Changed: true, Transitions: trans, Seq: seq, NextEvaluation: next.NextEvaluation}
			if err := s.idx.apply(ctx, indexOps(snap.cluster, next)); err != nil {
				return out, fmt.Errorf("%w: index update after evaluation: %v", ErrUnavailable, err)
			}
			return out, nil
		}
		s.cache.drop(pk)
		switch classify(err) {
		case classTransient:
			return Evaluated{}, wrapStorage(err)
		case classInvalid:
			return Evaluated{}, fmt.Errorf("%w: storage refused the rows: %v", ErrRejected, firstLine(err))
		}
		if attempt >= commitAttempts {
			return Evaluated{}, fmt.Errorf("%w: cluster %s still contended after %d attempts", ErrUnavailable, pk, attempt)
		}
		select {
		case <-time.After(time.Duration(rand.Int64N(int64(attempt) * int64(5*time.Millisecond)))):
		case <-ctx.Done():
			return Evaluated{}, wrapStorage(ctx.Err())
		}
	}
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
	filter := fmt.Sprintf("PartitionKey eq %s and RowKey lt %s", odataString(IndexDue),
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
	return s.idx.apply(ctx, []indexOp{{pk: IndexDue, rk: dueKey(e.Cluster, e.At)}})
}
