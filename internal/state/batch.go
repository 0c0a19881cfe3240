package state

import (
	"context"
	"fmt"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
)

// maxMarks bounds the marks of one guarded change. The audit rows commit
// with the cluster row in the change's last transaction (chunks.go), which
// holds maxBatch-2 actions besides the guard: more marks would spread the
// dedupe markers over several transactions.
const maxMarks = 90

// markFilterIDs is how many audit rows one query asks about, which keeps the
// filter (and the request line) short.
const markFilterIDs = 40

// markedFunc is the closure of a change with marks: it gets the indexes of
// the marks not yet committed (in the order given) and answers those whose
// signals it applied.
type markedFunc func(c *fleet.Cluster, pending []int) (applied []int, err error)

// UpdateBatch is Update with several marks, for signals of one cluster that
// arrive together (an Event Grid batch): their changes commit as one guarded
// change, each signal still exactly once by its own mark. fn gets the state
// and the indexes (into marks) of the marks not yet committed, and answers
// the indexes of those whose signals it applied; only their audit rows are
// written. Marks committed before, or repeated in marks, are never passed to
// fn. Like Update's fn, it may run again on a conflict, with fewer pending
// marks when some turned out to be in already.
//
// results has one entry per mark: Committed, Duplicate (in before, or an id
// repeated in marks), Unchanged (fn left it out: nothing written for it), or
// "" when the call failed before deciding it. Change is the state after the
// call, its Result Committed when any mark committed. More marks than one
// transaction holds commit as several changes, maxMarks each, in order.
// Errors are Update's; a change committed whose index update failed answers
// ErrUnavailable with its marks Committed. Safe for concurrent use.
func (s *Store) UpdateBatch(ctx context.Context, id fleet.ClusterID, marks []*fleet.Signal, fn func(c *fleet.Cluster, pending []int) ([]int, error)) (Change, []Result, error) {
	results := make([]Result, len(marks))
	if fn == nil || len(marks) == 0 {
		return Change{}, results, fmt.Errorf("%w: update %s: no change or no mark given", ErrRejected, id.Key())
	}
	for i, m := range marks {
		if m == nil {
			return Change{}, results, fmt.Errorf("%w: update %s: mark %d is nil", ErrRejected, id.Key(), i)
		}
	}
	var out Change
	result := Unchanged
	for from := 0; from < len(marks); from += maxMarks {
		to := min(from+maxMarks, len(marks))
		ms := newMarkSet(marks[from:to])
		ch, ops, err := s.changeMarked(ctx, id, ms, func(c *fleet.Cluster, pending []int) ([]int, error) {
			applied, err := fn(c, shift(pending, from))
			return shift(applied, -from), err
		})
		copy(results[from:], ms.res)
		out = ch
		if err == nil && ch.Result == Committed {
			if ierr := s.applyIndex(ctx, id, ch.Seq, ops); ierr != nil {
				err = fmt.Errorf("%w: index update after commit %d: %v", ErrUnavailable, ch.Seq, ierr)
			}
		}
		if ch.Result == Committed || (ch.Result == Duplicate && result == Unchanged) {
			result = ch.Result
		}
		if err != nil {
			out.Result = result
			return out, results, err
		}
	}
	out.Result = result
	return out, results, nil
}

// shift adds d to each index.
func shift(idx []int, d int) []int {
	if d == 0 {
		return idx
	}
	out := make([]int, len(idx))
	for i, v := range idx {
		out[i] = v + d
	}
	return out
}

// markSet is the marks of one change and what is known of each.
type markSet struct {
	sigs []*fleet.Signal // the caller's marks, times at stored precision
	res  []Result        // "" while undecided
	// found: some mark turned out committed by an earlier delivery, which
	// may have failed between its commit and the index.
	found bool
}

func newMarkSet(marks []*fleet.Signal) *markSet {
	ms := &markSet{sigs: make([]*fleet.Signal, len(marks)), res: make([]Result, len(marks))}
	seen := make(map[string]bool, len(marks))
	for i, m := range marks {
		c := *m
		c.Time = c.Time.UTC().Truncate(storedTime)
		ms.sigs[i] = &c
		// The same event twice in one delivery: the first stands (two audit
		// rows with one key would fail the whole transaction).
		if k := signalKey(m.ID); seen[k] {
			ms.res[i] = Duplicate
		} else {
			seen[k] = true
		}
	}
	return ms
}

// pending is the indexes of the marks not decided yet.
func (ms *markSet) pending() []int {
	if ms == nil {
		return nil
	}
	var out []int
	for i, r := range ms.res {
		if r == "" {
			out = append(out, i)
		}
	}
	return out
}

// signals returns the marks at idx.
func (ms *markSet) signals(idx []int) []*fleet.Signal {
	if ms == nil {
		return nil
	}
	out := make([]*fleet.Signal, 0, len(idx))
	for _, i := range idx {
		out = append(out, ms.sigs[i])
	}
	return out
}

// settle records a commit of applied; the other pending marks were left out.
func (ms *markSet) settle(pending, applied []int) {
	if ms == nil {
		return
	}
	for _, i := range pending {
		ms.res[i] = Unchanged
	}
	for _, i := range applied {
		ms.res[i] = Committed
	}
}

// redelivered reports whether some mark was found committed before.
func (ms *markSet) redelivered() bool { return ms != nil && ms.found }

// findCommitted reads which of the marks at idx have their audit row, and
// decides those as Duplicate: one point read for a single mark (Update's
// case), else queries of a few dozen rows each.
func (s *Store) findCommitted(ctx context.Context, pk string, ms *markSet, idx []int) error {
	if len(idx) == 1 {
		dup, err := s.hasSignal(ctx, pk, ms.sigs[idx[0]].ID)
		if err != nil || !dup {
			return err
		}
		ms.res[idx[0]], ms.found = Duplicate, true
		return nil
	}
	byKey := make(map[string][]int, len(idx))
	keys := make([]string, 0, len(idx))
	for _, i := range idx {
		k := signalKey(ms.sigs[i].ID)
		if _, ok := byKey[k]; !ok {
			keys = append(keys, k)
		}
		byKey[k] = append(byKey[k], i)
	}
	for len(keys) > 0 {
		n := min(markFilterIDs, len(keys))
		in, err := s.signalRows(ctx, pk, keys[:n])
		if err != nil {
			return err
		}
		for _, k := range in {
			for _, i := range byKey[k] {
				ms.res[i], ms.found = Duplicate, true
			}
		}
		keys = keys[n:]
	}
	return nil
}

// signalRows returns which of the audit row keys exist in the partition.
func (s *Store) signalRows(ctx context.Context, pk string, keys []string) ([]string, error) {
	terms := make([]string, len(keys))
	for i, k := range keys {
		terms[i] = "RowKey eq " + odataString(k)
	}
	filter := fmt.Sprintf("PartitionKey eq %s and (%s)", odataString(pk), strings.Join(terms, " or "))
	sel := "RowKey"
	pager := s.fleet.NewListEntitiesPager(&aztables.ListEntitiesOptions{Filter: &filter, Select: &sel})
	var out []string
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, wrapStorage(err)
		}
		for _, b := range page.Entities {
			e, err := decodeEntity(b)
			if err != nil {
				return nil, err
			}
			out = append(out, e.str("RowKey"))
		}
	}
	return out, nil
}
