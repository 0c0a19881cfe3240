package watch

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
)

// Outcome reports an ingested signal.
type Outcome struct {
	Result Result // Committed or Duplicate
	Seq    int64  // the cluster's sequence number after the call
	// Outbox is how many notification intents the cluster owes some sink
	// after a Committed signal; 0 for a Duplicate.
	Outbox int
}

// Ingest commits one decoded signal to its cluster exactly once, then asks in
// the background for what it calls for: the notifications it recorded, and
// an ARM read after a rolling event or a write the activity log reported.
//
// Errors: fleet.ErrRejected (permanent: the transition refused it, it is dated in
// the future, or storage refused its rows; record and drop), fleet.ErrUnavailable
// (transient: redeliver). An Outcome Committed with fleet.ErrUnavailable means the
// state is in but the index is not: the redelivery is a Duplicate, and
// duplicates repair the index. Safe for concurrent use.
func (a *App) Ingest(ctx context.Context, sig fleet.Signal) (Outcome, error) {
	out, err := a.commit(ctx, sig)
	if err == nil && out.Result == Committed {
		a.enrichAfter(sig)
	}
	return out, err
}

// commit is Ingest without the ARM reads it asks for (an ARM read's own
// commit asks for none).
func (a *App) commit(ctx context.Context, sig fleet.Signal) (Outcome, error) {
	// Every fact keeps its newest observation, so one signal from the future
	// would outrank everything genuine after it until that date: a forged
	// alert dated 2099 would stick. The decoders are pure; this is the one
	// place that knows the time of receipt.
	if err := fleet.CheckTime("event time", sig.Time, a.now()); err != nil {
		return Outcome{}, fmt.Errorf("%w: %w", fleet.ErrRejected, err)
	}
	// Times are stored to 100 ns: the state a signal builds must be the
	// state that reloads.
	sig.Time = sig.Time.UTC().Truncate(100 * time.Nanosecond)
	cat := a.patchSnapshot(ctx, sig.Cluster)
	ch, err := a.repo.Update(ctx, sig.Cluster, &sig, func(c *fleet.Cluster) error {
		if err := fleet.Apply(c, sig); err != nil {
			return fmt.Errorf("%w: %v", fleet.ErrRejected, err)
		}
		stampTimeToPatch(c, cat)
		now := a.now()
		c.HeardAt = now // the cluster is not quiet: judged on event time (findings.JudgeTime)
		a.evaluate(c, now)
		return nil
	})
	out := Outcome{Result: ch.Result, Seq: ch.Seq}
	if ch.Result == Committed && ch.Cluster != nil {
		out.Outbox = len(ch.Cluster.Outbox)
		a.dispatchLater(sig.Cluster, out.Outbox, "commit")
		a.noteSummary(ch.Cluster, ch.Seq, cat)
	}
	if ch.Result == Committed || ch.Result == Duplicate {
		a.observeCommitted(ctx, sig, ch.Cluster)
	}
	return out, err
}

// NodesResult reports an ingested node snapshot.
type NodesResult struct {
	// Result is applied, duplicate (this snapshot was applied before) or
	// stale (a newer one was): the node rows' answer.
	Result       string
	Changed      int // node rows written
	History      int // image changes recorded
	Pruned       int // rows of nodes gone longer than the retention, deleted
	Transactions int
	// Summary is the per-pool summary committed to the cluster state.
	Summary fleet.InventorySummary
}

// IngestNodes applies a node snapshot to the node rows, then folds its
// per-pool summary into the cluster state as a signal, so both are exactly
// once: the node rows by their inventory mark, the summary by its signal id.
// Errors: fleet.ErrRejected (record the snapshot with the reason), fleet.ErrUnavailable
// (the reporter retries; what was applied is then a duplicate).
func (a *App) IngestNodes(ctx context.Context, id fleet.ClusterID, snap fleet.NodeSnapshot) (NodesResult, error) {
	l := a.log.With("cluster", id.Key(), "snapshot", snap.ID)
	out, err := a.repo.ApplyNodes(ctx, id, snap)
	if err != nil {
		if !errors.Is(err, fleet.ErrRejected) {
			l.Error("node snapshot not stored; the reporter should retry", "error", err)
		}
		return NodesResult{}, err
	}
	// The summary of a complete snapshot is the snapshot itself, so that a
	// redelivery carries the same summary; a partial one is merged with the
	// nodes already known.
	summary := fleet.Summarise(out.Nodes, snap.Complete)
	if snap.Complete {
		own := make([]fleet.Node, len(snap.Nodes))
		for i, n := range snap.Nodes {
			own[i] = fleet.Node{NodeObservation: n}
		}
		summary = fleet.Summarise(own, true)
	}
	sig := fleet.Signal{ID: "nodes:" + snap.ID, Type: fleet.TypeNodeSnapshot, Source: id.ResourceID(),
		Subject: id.ResourceID() + "/nodes", Time: snap.ObservedAt, Cluster: id, Kind: fleet.KindNodesObserved, Inventory: &summary}
	if _, err := a.commit(ctx, sig); err != nil {
		if !errors.Is(err, fleet.ErrRejected) {
			l.Error("node rows stored but the pool summary not; the reporter should retry", "error", err)
		}
		return NodesResult{}, err
	}
	l.Info("node snapshot applied", "result", string(out.Result), "changed", out.Changed, "history", out.History,
		"transactions", out.Transactions, "nodes", len(snap.Nodes))
	return NodesResult{Result: string(out.Result), Changed: out.Changed, History: out.History, Pruned: out.Pruned,
		Transactions: out.Transactions, Summary: summary}, nil
}

// enrichAfter asks for a read after a rolling event (the pool's image before
// and after an operation comes from the reads around it), after an activity
// that changed the cluster's channels or maintenance windows, and after one
// that reported a deletion, which only ARM's answer confirms.
func (a *App) enrichAfter(sig fleet.Signal) {
	if a.enrich == nil {
		return
	}
	switch sig.Kind {
	case fleet.KindRollingStarted, fleet.KindRollingSucceeded, fleet.KindRollingFailed:
		a.enrich.request(sig.Cluster, string(sig.Kind))
	case fleet.KindActivity:
		if op := readAfter(sig.Activity); op != "" {
			a.enrich.request(sig.Cluster, op)
		}
	}
}

// readAfter names the operation of an activity that calls for an ARM read,
// or "" for none.
func readAfter(act *fleet.Activity) string {
	if act == nil {
		return ""
	}
	// A write to the cluster or its maintenance configurations: the
	// activity says who, only a read says what changed.
	if (act.Operation == fleet.OpClusterWrite || fleet.IsMaintenanceOperation(act.Operation)) &&
		(act.Status == fleet.ActivitySucceeded || act.Status == fleet.ActivityAccepted) {
		return act.Operation
	}
	// A deletion the activity log reports is evidence until ARM answers
	// (fleet.DeletionReport).
	if slices.Contains([]string{fleet.OpClusterDelete, fleet.OpPoolDelete}, act.Operation) && act.Status == fleet.ActivitySucceeded {
		return act.Operation
	}
	return ""
}

// RequestRefresh asks for a background ARM read of the cluster; false when
// enrichment is off. It never blocks.
func (a *App) RequestRefresh(id fleet.ClusterID, reason string) bool {
	if a.enrich == nil {
		return false
	}
	a.enrich.request(id, cmp.Or(reason, "requested"))
	return true
}
