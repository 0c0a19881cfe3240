package watch

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
)

// batchWorkers is how many clusters of one batch commit at once.
const batchWorkers = 4

// IngestBatch commits signals delivered together (an Event Grid batch, the
// cluster records of an activity-log export batch), each
// exactly once as Ingest does, but those of one cluster in one guarded change
// (several only when they outgrow one transaction): the signals not committed
// before are applied in time order and the rules run once on the result.
// Outcomes and errors are per signal, in the order given, with Ingest's
// meanings; one signal refused (dated ahead, refused by the transition)
// leaves the others to commit. When storage refuses a cluster's combined
// rows, its signals are committed one by one, so only the one at fault is
// refused; one whose commit panics is refused (ErrRejected) the same way.
// Clusters commit in parallel. Safe for concurrent use.
func (a *App) IngestBatch(ctx context.Context, sigs []fleet.Signal) ([]Outcome, []error) {
	sigs = slices.Clone(sigs)
	outs, errs := make([]Outcome, len(sigs)), make([]error, len(sigs))
	groups := map[string][]int{}
	var order []string
	for i := range sigs {
		if err := fleet.CheckTime("event time", sigs[i].Time, a.now()); err != nil {
			errs[i] = fmt.Errorf("%w: %w", fleet.ErrRejected, err)
			continue
		}
		// As in commit: the state a signal builds must be the state that reloads.
		sigs[i].Time = sigs[i].Time.UTC().Truncate(100 * time.Nanosecond)
		k := sigs[i].Cluster.Key()
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], i)
	}
	work := make(chan []int)
	var wg sync.WaitGroup
	for range min(batchWorkers, len(order)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for idx := range work {
				a.commitGroupSafe(ctx, sigs, idx, outs, errs)
			}
		}()
	}
	for _, k := range order {
		work <- groups[k]
	}
	close(work)
	wg.Wait()
	for i := range sigs {
		if errs[i] == nil && outs[i].Result == Committed {
			a.enrichAfter(sigs[i])
		}
	}
	return outs, errs
}

// commitGroupSafe is commitGroup for a worker goroutine, where a panic (a
// bug: it fails the same way at every delivery) would end the process: the
// group's signals are then committed one by one, so only the signal that
// panics is refused (ErrRejected, kept in Rejected by the caller).
func (a *App) commitGroupSafe(ctx context.Context, sigs []fleet.Signal, idx []int, outs []Outcome, errs []error) {
	defer func() {
		if v := recover(); v != nil {
			a.log.Error("batch change panicked; committing its signals one by one", "cluster", sigs[idx[0]].Cluster.Key(),
				"panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			for _, i := range idx {
				outs[i], errs[i] = a.commitSafe(ctx, sigs[i])
			}
		}
	}()
	a.commitGroup(ctx, sigs, idx, outs, errs)
}

// commitSafe is commit with a panic turned into the signal's rejection.
func (a *App) commitSafe(ctx context.Context, sig fleet.Signal) (out Outcome, err error) {
	defer func() {
		if v := recover(); v != nil {
			a.log.Error("signal panicked", "event_id", sig.ID, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			out, err = Outcome{}, fmt.Errorf("%w: panic: %v", fleet.ErrRejected, v)
		}
	}()
	return a.commit(ctx, sig)
}

// commitGroup commits the signals at idx, all of one cluster, in one
// UpdateBatch, filling in their outcomes and errors.
func (a *App) commitGroup(ctx context.Context, sigs []fleet.Signal, idx []int, outs []Outcome, errs []error) {
	marks := make([]*fleet.Signal, len(idx))
	for j, i := range idx {
		marks[j] = &sigs[i]
	}
	refused := map[int]error{} // by mark, as the closure's last run found
	cat := a.patchSnapshot(ctx, marks[0].Cluster)
	ch, res, err := a.repo.UpdateBatch(ctx, marks[0].Cluster, marks, func(c *fleet.Cluster, pending []int) ([]int, error) {
		for _, j := range pending {
			delete(refused, j)
		}
		applied := a.applyAll(c, marks, pending, refused)
		stampTimeToPatch(c, cat)
		return applied, nil
	})
	defer a.observeBatch(ctx, marks, res, ch.Cluster)
	if errors.Is(err, fleet.ErrRejected) && !slices.Contains(res, Committed) {
		// Storage refused the rows of the whole change: find the signal at
		// fault by committing each on its own.
		a.log.Warn("batch change refused; committing its signals one by one", "cluster", marks[0].Cluster.Key(),
			"signals", len(idx), "error", err)
		for _, i := range idx {
			outs[i], errs[i] = a.commit(ctx, sigs[i])
		}
		return
	}
	for j, i := range idx {
		outs[i] = Outcome{Result: res[j], Seq: ch.Seq}
		switch res[j] {
		case Committed:
			if ch.Cluster != nil {
				outs[i].Outbox = len(ch.Cluster.Outbox)
			}
			errs[i] = err
		case Duplicate:
			errs[i] = err
		case Unchanged:
			errs[i] = cmp.Or(refused[j], error(fmt.Errorf("%w: signal not applied", fleet.ErrRejected)))
		default:
			errs[i] = cmp.Or(err, error(fmt.Errorf("%w: signal not committed", fleet.ErrUnavailable)))
		}
	}
	if slices.Contains(res, Committed) && ch.Cluster != nil {
		a.dispatchLater(marks[0].Cluster, len(ch.Cluster.Outbox), "commit")
		a.noteSummary(ch.Cluster, ch.Seq, cat)
	}
}

// applyAll applies the pending signals to c in time order, each on a copy
// first so that one the transition refuses (recorded in refused) leaves no
// trace, then runs the rules once. It returns the signals applied.
func (a *App) applyAll(c *fleet.Cluster, marks []*fleet.Signal, pending []int, refused map[int]error) []int {
	todo := slices.Clone(pending)
	slices.SortStableFunc(todo, func(x, y int) int {
		return cmp.Or(marks[x].Time.Compare(marks[y].Time), cmp.Compare(marks[x].ID, marks[y].ID))
	})
	var applied []int
	for _, j := range todo {
		next := c.Clone()
		if err := fleet.Apply(next, *marks[j]); err != nil {
			refused[j] = fmt.Errorf("%w: %v", fleet.ErrRejected, err)
			continue
		}
		*c = *next
		applied = append(applied, j)
	}
	if len(applied) > 0 {
		now := a.now()
		c.HeardAt = now // the cluster is not quiet: judged on event time (findings.JudgeTime)
		a.evaluate(c, now)
	}
	return applied
}
