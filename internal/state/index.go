package state

import (
	"context"
	"fmt"
	"hash/fnv"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
)

// The FleetIndex table is derived data: every row can be rebuilt from the
// Fleet table. Its entries are of two sorts, written differently.
//
// Entries whose writes must land in commit order (the cluster summary, due
// entries) are written by a signal's change just before its commit
// (preIndex: a later commit has to load this one's state first, so they land
// in order with no read after; undoIndex when the commit fails), and by other
// changes after their commit (applyIndex, with a check of the sequence row).
//
// Entries whose writes commute (in-flight operations, open findings) are
// written behind a signal's commit, coalesced with other commits' entries
// into one transaction per partition (indexWriter.later). They commute because
// each is keyed by what never repeats (an operation; a finding's opening),
// added only if absent (modeAdd: a late add finds the tombstone and does
// nothing), ended by a tombstone (Ended=true) rather than a delete, and
// changed by a merge that never touches Ended. So the writes of two instances,
// or of one instance's coalesced batches, give the same entries in any order.
// Tombstones are removed an hour after they end (PruneIndex). A write behind
// the commit that never lands (the process died first, storage failed) is
// repaired by the sweep: such a change files a due entry no later than
// repairAfter from now, and the sweep that finds the cluster not due there
// rewrites its entries from its state (reconcileIndex).

// opMode is how an index entry is written.
type opMode uint8

const (
	modePut   opMode = iota // insert or replace
	modeAdd                 // insert if absent (Conflict is success)
	modeMerge               // merge columns into the entry if present (NotFound is success)
)

type indexOp struct {
	pk, rk string
	r      row // nil: delete
	mode   opMode
}

// commutes reports whether op may be written behind the commit (see above).
func (op indexOp) commutes() bool { return op.pk == IndexInFlight || op.pk == IndexFindings }

// ended marks an entry's row as a tombstone, ended at.
func ended(r row, at time.Time) row {
	r["Ended"] = true
	setTime(r, "EndedAt", at)
	return r
}

// indexOps lists the index changes between two states of one cluster,
// committed at now.
func indexOps(old, next *fleet.Cluster, now time.Time) []indexOp {
	var ops []indexOp
	if summaryOf(old) != summaryOf(next) {
		ops = append(ops, indexOp{pk: IndexClusters, rk: next.ID.Key(), r: clusterIndexRow(next)})
	}
	ops = append(ops, inFlightOps(old, next, now)...)
	ops = append(ops, findingOps(old, next, now)...)
	return append(ops, dueOps(old, next, now)...)
}

// inFlightOps adds an entry for each operation that started and ends the
// entry of each that is no longer in progress.
func inFlightOps(old, next *fleet.Cluster, now time.Time) []indexOp {
	var ops []indexOp
	before := map[string]*fleet.Upgrade{}
	for _, u := range old.InFlight() {
		before[u.Key] = u
	}
	for _, u := range next.InFlight() {
		if before[u.Key] == nil {
			ops = append(ops, indexOp{pk: IndexInFlight, rk: inFlightKey(next.ID, u.Key), r: inFlightRow(next, u), mode: modeAdd})
		}
		delete(before, u.Key)
	}
	keys := make([]string, 0, len(before))
	for key := range before {
		keys = append(keys, key)
	}
	sort.Strings(keys)
	for _, key := range keys {
		ops = append(ops, indexOp{pk: IndexInFlight, rk: inFlightKey(next.ID, key), r: ended(inFlightRow(old, before[key]), now)})
	}
	return ops
}

// findingOps adds an entry when a finding opens, merges what changed while
// it stays open, and ends the entry of its opening when it resolves.
func findingOps(old, next *fleet.Cluster, now time.Time) []indexOp {
	var ops []indexOp
	for key, f := range next.Findings {
		o := old.Findings[key]
		wasOpen := o != nil && o.Status == fleet.FindingOpen
		if wasOpen && (f.Status != fleet.FindingOpen || o.Opened != f.Opened) {
			// Resolved, or resolved and opened again within one change.
			ops = append(ops, indexOp{pk: IndexFindings, rk: findingIndexKey(next.ID, o), r: ended(findingIndexRow(old, o), now)})
			wasOpen = false
		}
		switch {
		case f.Status != fleet.FindingOpen:
		case !wasOpen:
			ops = append(ops, indexOp{pk: IndexFindings, rk: findingIndexKey(next.ID, f), r: findingIndexRow(next, f), mode: modeAdd})
		case o.Severity != f.Severity || o.Summary != f.Summary || !o.OpenedAt.Equal(f.OpenedAt):
			ops = append(ops, indexOp{pk: IndexFindings, rk: findingIndexKey(next.ID, f), r: findingIndexRow(next, f), mode: modeMerge})
		}
	}
	sort.Slice(ops, func(i, j int) bool { return ops[i].rk < ops[j].rk })
	return ops
}

// dueOps keeps the due entries a commit calls for. A due entry means
// "evaluate no later than At": the invariant is that a cluster with a
// NextEvaluation has an entry at or before it. So a deadline that moves later
// (or goes away) writes nothing: the entry already filed comes due first, and
// the sweep that finds the cluster not due then re-files it (App.Sweep's stale
// entries). Only a deadline that moves earlier, or is new, writes an entry. A
// commit made once the old deadline had come evaluated the cluster at or after
// it: its entry is spent, and is deleted after the new one is written (see
// flush), so the invariant holds at every moment.
func dueOps(old, next *fleet.Cluster, now time.Time) []indexOp {
	was, at := old.NextEvaluation, next.NextEvaluation
	if was.Equal(at) {
		return nil
	}
	spent := !was.IsZero() && !was.After(now)
	var ops []indexOp
	if !at.IsZero() && (was.IsZero() || at.Before(was) || spent) {
		ops = append(ops, indexOp{pk: duePartition(next.ID, at), rk: dueKey(next.ID, at), r: dueRow(next)})
	}
	if spent {
		ops = append(ops, indexOp{pk: duePartition(next.ID, was), rk: dueKey(next.ID, was)})
	}
	return ops
}

// needsCheck reports whether a later commit's index writes could contradict
// ops if they landed after them. Entries that commute cannot (see the top of
// this file); nor can a due entry put: an extra or older due entry only makes
// the sweep look at the cluster once more, which is what the entry means
// (evaluate no later than).
func needsCheck(ops []indexOp) bool {
	for _, op := range ops {
		if !op.commutes() && (!strings.HasPrefix(op.pk, IndexDue+"~") || op.r == nil) {
			return true
		}
	}
	return false
}

// splitOps separates the entries written behind a signal's commit from
// those written in commit order before it.
func splitOps(ops []indexOp) (ordered, behind []indexOp) {
	for _, op := range ops {
		if op.commutes() {
			behind = append(behind, op)
		} else {
			ordered = append(ordered, op)
		}
	}
	return ordered, behind
}

// findingIndexKey is <cluster key>~<code>~<target>~<opening>: one entry per
// opening, so the entry of one opening and its tombstone never stand in for
// another's.
func findingIndexKey(id fleet.ClusterID, f *fleet.Finding) string {
	return fmt.Sprintf("%s~%s~%06d", id.Key(), strings.TrimPrefix(findingKey(f.Code, f.Target), rkFindPrefix), f.Opened)
}

func findingIndexRow(c *fleet.Cluster, f *fleet.Finding) row {
	r := findingRow(f)
	r["Kind"] = KindOpenIndex
	// As of the entry's last write (its opening, or a change of severity or
	// summary): the Finding row no longer keeps an open finding's, and the
	// entry is never merged for it alone.
	setTime(r, "LastSeenAt", f.LastSeenAt)
	r["ClusterKey"], r["SubscriptionId"], r["ResourceGroup"], r["ClusterName"] = c.ID.Key(), c.ID.SubscriptionID, c.ID.ResourceGroup, c.ID.Name
	delete(r, "Evidence") // in the cluster's Finding row; the index stays small
	return r
}

// dueShards spreads the due entries of one hour over partitions: every commit
// that moves a cluster's next evaluation writes one, and a whole fleet on the
// same image comes due at the same hour. One partition would be a hot spot
// (Azure serves a partition at a bounded rate; Azurite's cost per write grows
// with the partition).
const dueShards = 64

// duePartition is Due~<hour>~<shard>: partitions sort by hour, so the sweep
// reads every shard of every hour up to now with one range query.
func duePartition(id fleet.ClusterID, at time.Time) string {
	h := fnv.New32a()
	_, _ = h.Write([]byte(id.Key()))
	return fmt.Sprintf("%s~%s~%02x", IndexDue, at.UTC().Format("2006010215"), h.Sum32()%dueShards)
}

func dueKey(id fleet.ClusterID, at time.Time) string {
	return at.UTC().Format(fleet.TimeKeyLayout) + "~" + id.Key()
}

func dueRow(c *fleet.Cluster) row { return dueRowAt(c, c.NextEvaluation) }

func dueRowAt(c *fleet.Cluster, at time.Time) row {
	r := row{"Kind": KindDue, "ClusterKey": c.ID.Key(), "SubscriptionId": c.ID.SubscriptionID,
		"ResourceGroup": c.ID.ResourceGroup, "ClusterName": c.ID.Name}
	setTime(r, "At", at)
	return r
}

// applyIndex writes the index changes of the commit that made the cluster's
// sequence seq, then checks that no later commit overtook it. Index writes of
// two instances committing to one cluster can land in either order; when the
// partition has moved past seq, this write may have undone a newer one's (an
// entry the newer commit removed, re-added), so the entries are rewritten from
// the latest state. It costs one point read, and only when the index changed.
func (s *Store) applyIndex(ctx context.Context, id fleet.ClusterID, seq int64, ops []indexOp) error {
	if len(ops) == 0 {
		return nil
	}
	if err := s.idx.apply(ctx, ops); err != nil {
		return err
	}
	if !needsCheck(ops) {
		return nil
	}
	return s.verifyIndex(ctx, id, seq)
}

// preIndex writes the index changes of a signal's change before the change
// commits. Written first, they need no check after: a later commit to the
// cluster has to load this one's state, so it starts (and writes its own
// entries) only once these have landed, and entries land in commit order
// without the read verifyIndex costs. If the commit then fails, undoIndex
// puts the entries back in line with what is committed. A failed write here
// aborts the change before anything is committed (ErrUnavailable: redeliver);
// what it did write is undone the same way.
func (s *Store) preIndex(ctx context.Context, id fleet.ClusterID, ops []indexOp) error {
	if err := s.idx.apply(ctx, ops); err != nil {
		s.undoIndex(ctx, id, ops)
		return fmt.Errorf("%w: index update before commit: %v", ErrUnavailable, err)
	}
	return nil
}

// undoIndex rewrites a cluster's entries from its committed state after a
// change wrote its ordered entries (preIndex) and then did not commit, or
// could not tell whether it had. Entries written behind a commit are never
// written for a change that did not commit, so there is nothing else to
// undo. It holds the cluster's lock, so this process writes nothing else for
// the cluster meanwhile; verifyIndex covers other instances. Best effort:
// when storage fails here too, the change is answered ErrUnavailable and its
// redelivery rewrites the entries.
func (s *Store) undoIndex(ctx context.Context, id fleet.ClusterID, written []indexOp) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	err := func() error {
		snap, err := s.load(ctx, id)
		if err != nil {
			return err
		}
		if snap.seq == 0 {
			// The cluster's first change did not commit: it has no entries.
			var undo []indexOp
			for _, op := range written {
				undo = append(undo, indexOp{pk: op.pk, rk: op.rk})
			}
			return s.idx.apply(ctx, undo)
		}
		if err := s.reconcileIndex(ctx, snap.cluster); err != nil {
			return err
		}
		return s.verifyIndex(ctx, id, snap.seq)
	}()
	if err != nil {
		s.log.Warn("index entries written before a commit that failed could not be rewritten; the redelivery does",
			"cluster", id.Key(), "error", err)
	}
}

// verifyIndex rewrites a cluster's index entries from its latest state if the
// partition has moved past seq (see applyIndex).
func (s *Store) verifyIndex(ctx context.Context, id fleet.ClusterID, seq int64) error {
	pk := id.Key()
	for range 3 {
		_, err := s.fleet.GetEntity(ctx, pk, seqKey(seq), nil)
		switch {
		case err == nil:
			return nil
		case !hasCode(err, aztables.ResourceNotFound):
			return wrapStorage(err)
		}
		s.log.Debug("index write overtaken by a later commit; rewriting from the latest state", "cluster", pk, "seq", seq)
		snap, err := s.load(ctx, id)
		if err != nil {
			return err
		}
		if err := s.reconcileIndex(ctx, snap.cluster); err != nil {
			return err
		}
		seq = snap.seq
	}
	return nil
}

// reconcileIndex brings a cluster's index entries in line with a committed
// state: every entry the state calls for is put, and the in-flight and
// open-finding entries it does not call for (operations ended or re-keyed,
// findings resolved, entries of a change whose writes behind the commit were
// lost) are ended. If a newer commit lands meanwhile, its writer's check
// (verifyIndex) or ours finds the partition moved on and reconciles again
// from the newer state.
func (s *Store) reconcileIndex(ctx context.Context, c *fleet.Cluster) error {
	if c.Signals == 0 {
		return nil
	}
	now := s.now()
	ops := []indexOp{{pk: IndexClusters, rk: c.ID.Key(), r: clusterIndexRow(c)}}
	want := map[string]bool{}
	for _, f := range c.Findings {
		if f.Status == fleet.FindingOpen {
			rk := findingIndexKey(c.ID, f)
			want[IndexFindings+"/"+rk] = true
			ops = append(ops, indexOp{pk: IndexFindings, rk: rk, r: findingIndexRow(c, f)})
		}
	}
	if !c.NextEvaluation.IsZero() {
		ops = append(ops, indexOp{pk: duePartition(c.ID, c.NextEvaluation), rk: dueKey(c.ID, c.NextEvaluation), r: dueRow(c)})
	}
	for _, u := range c.InFlight() {
		rk := inFlightKey(c.ID, u.Key)
		want[IndexInFlight+"/"+rk] = true
		ops = append(ops, indexOp{pk: IndexInFlight, rk: rk, r: inFlightRow(c, u)})
	}
	prefix := c.ID.Key() + "~"
	for _, pk := range []string{IndexInFlight, IndexFindings} {
		filter := fmt.Sprintf("PartitionKey eq %s and RowKey ge %s and RowKey lt %s",
			odataString(pk), odataString(prefix), odataString(prefix+"~"))
		ents, err := s.query(ctx, s.index, filter)
		if err != nil {
			return err
		}
		for _, e := range ents {
			if rk := e.str("RowKey"); !want[pk+"/"+rk] && !e.bool("Ended") {
				ops = append(ops, indexOp{pk: pk, rk: rk, r: ended(row{}, now), mode: modeMerge})
			}
		}
	}
	return s.idx.apply(ctx, ops)
}

type clusterSummary struct {
	name, upgrade, nodeOS, k8s, location, support string
	deleted                                       bool
	pools                                         int
}

func summaryOf(c *fleet.Cluster) clusterSummary {
	n := 0
	for _, p := range c.Pools {
		if !p.Removed {
			n++
		}
	}
	return clusterSummary{
		name: c.ID.ResourceID(), upgrade: c.UpgradeChannel, nodeOS: c.NodeOSUpgradeChannel,
		k8s: c.KubernetesVersion, location: c.Location, support: c.Support, deleted: c.Deleted, pools: n,
	}
}

func clusterIndexRow(c *fleet.Cluster) row {
	s := summaryOf(c)
	return row{
		"Kind":                 KindIndexed,
		"ClusterKey":           c.ID.Key(),
		"SubscriptionId":       c.ID.SubscriptionID,
		"ResourceGroup":        c.ID.ResourceGroup,
		"ClusterName":          c.ID.Name,
		"ResourceId":           c.ID.ResourceID(),
		"UpgradeChannel":       s.upgrade,
		"NodeOSUpgradeChannel": s.nodeOS,
		"KubernetesVersion":    s.k8s,
		"Location":             s.location,
		"Support":              s.support,
		"Deleted":              s.deleted,
		"Pools":                int32(s.pools),
	}
}

func inFlightKey(id fleet.ClusterID, upgradeKey string) string { return id.Key() + "~" + upgradeKey }

func inFlightRow(c *fleet.Cluster, u *fleet.Upgrade) row {
	r := row{
		"Kind":           KindInFlight,
		"ClusterKey":     c.ID.Key(),
		"SubscriptionId": c.ID.SubscriptionID,
		"ResourceGroup":  c.ID.ResourceGroup,
		"ClusterName":    c.ID.Name,
		"Pool":           u.Pool,
		"UpgradeKey":     u.Key,
	}
	setTime(r, "StartedAt", u.StartedAt)
	return r
}

// indexWriter applies index changes with group commit: while one transaction
// is in flight, changes from concurrent commits queue up and go together in
// the next one, so under load the index costs a fraction of a round trip per
// event. Changes written behind a commit (later) wait up to linger for
// others to join them, so that even a sequential stream shares transactions.
type indexWriter struct {
	client *aztables.Client
	log    *slog.Logger
	reqs   chan *indexReq
	done   chan struct{}
	linger time.Duration
	// beforeFlush, when set (tests only), runs before each write: a slow
	// network, so that writes of two instances land out of order.
	beforeFlush func()
	// loseBehind, when set (tests only), drops entries queued behind
	// commits instead of writing them, as a process dying first would.
	loseBehind atomic.Bool
}

// indexReq is one change's entries; err is nil for entries written behind a
// commit, which nobody waits for.
type indexReq struct {
	ops []indexOp
	err chan error
}

// maxFlush bounds the entries one flush takes from the queue.
const maxFlush = 4 * maxBatch

func newIndexWriter(c *aztables.Client, log *slog.Logger, linger time.Duration) *indexWriter {
	w := &indexWriter{client: c, log: log, reqs: make(chan *indexReq, 1024), done: make(chan struct{}), linger: linger}
	go w.run()
	return w
}

// apply writes ops (and whatever is queued) now and waits for them.
func (w *indexWriter) apply(ctx context.Context, ops []indexOp) error {
	if len(ops) == 0 {
		return nil
	}
	return w.wait(ctx, ops)
}

// sync writes whatever is queued now and waits for it: a reader of the index
// sees every change this process committed before it asked.
func (w *indexWriter) sync(ctx context.Context) error { return w.wait(ctx, nil) }

func (w *indexWriter) wait(ctx context.Context, ops []indexOp) error {
	req := &indexReq{ops: ops, err: make(chan error, 1)}
	select {
	case w.reqs <- req:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-req.err:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// later queues ops to be written behind the commit that called for them.
// Only entries that commute may be written this way (indexOp.commutes).
func (w *indexWriter) later(ops []indexOp) {
	if len(ops) > 0 {
		w.reqs <- &indexReq{ops: ops}
	}
}

// close writes what is queued and stops the writer.
func (w *indexWriter) close() {
	close(w.reqs)
	<-w.done
}

func (w *indexWriter) run() {
	defer close(w.done)
	for req := range w.reqs {
		batch := w.collect(req)
		if w.loseBehind.Load() {
			batch = slices.DeleteFunc(batch, func(r *indexReq) bool { return r.err == nil })
		}
		if w.beforeFlush != nil {
			w.beforeFlush()
		}
		err := w.flush(batch)
		behind := 0
		for _, r := range batch {
			if r.err != nil {
				r.err <- err
			} else {
				behind += len(r.ops)
			}
		}
		if err != nil && behind > 0 {
			w.log.Warn("index entries written behind their commits failed; the sweep repairs them",
				"entries", behind, "error", err)
		}
	}
}

// collect gathers the queued requests that go with req: whatever is queued
// when someone waits, else what arrives within linger.
func (w *indexWriter) collect(req *indexReq) []*indexReq {
	batch := []*indexReq{req}
	n := len(req.ops)
	waiting := req.err != nil
	var timer <-chan time.Time
	if !waiting && w.linger > 0 {
		t := time.NewTimer(w.linger)
		defer t.Stop()
		timer = t.C
	}
	for n < maxFlush {
		var r *indexReq
		var ok bool
		if waiting || timer == nil {
			select {
			case r, ok = <-w.reqs:
			default:
				return batch
			}
		} else {
			select {
			case r, ok = <-w.reqs:
			case <-timer:
				return batch
			}
		}
		if !ok {
			return batch
		}
		batch = append(batch, r)
		n += len(r.ops)
		waiting = waiting || r.err != nil
	}
	return batch
}

// flush writes the queued changes: per partition, the changes to each row
// combined in queue order (merge), in transactions of at most maxBatch. A
// transaction that fails (a delete of a row already gone, an add of a row
// already there fails the whole batch) is retried one change at a time.
// Partitions are independent, so they are written at once (a few at a time):
// a change that touches two costs one round trip of time, not two. Partitions
// with something to write go first, partitions with only deletes after them: a
// due entry that moves is written in its new partition before it is removed
// from the old, so a failure between the two leaves an extra entry
// (harmless), never none.
func (w *indexWriter) flush(batch []*indexReq) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	byPK := map[string]map[string]indexOp{}
	for _, r := range batch {
		for _, op := range r.ops {
			if byPK[op.pk] == nil {
				byPK[op.pk] = map[string]indexOp{}
			}
			byPK[op.pk][op.rk] = merge(byPK[op.pk][op.rk], op)
		}
	}
	var writes, deletes [][]indexOp
	for _, rows := range byPK {
		ops := make([]indexOp, 0, len(rows))
		put := false
		for _, op := range rows {
			ops = append(ops, op)
			put = put || op.r != nil
		}
		sort.Slice(ops, func(i, j int) bool { return ops[i].rk < ops[j].rk })
		for len(ops) > 0 {
			chunk := ops[:min(len(ops), maxBatch)]
			ops = ops[len(chunk):]
			if put {
				writes = append(writes, chunk)
			} else {
				deletes = append(deletes, chunk)
			}
		}
	}
	if err := w.submitAll(ctx, writes); err != nil {
		return err
	}
	return w.submitAll(ctx, deletes)
}

// merge combines two changes to one row, next queued after prev, into the
// one change that leaves the row as both in order would: a merge after an
// add or put is that add or put with the newer columns; anything else
// replaces what came before.
func merge(prev, next indexOp) indexOp {
	if next.mode == modeMerge && prev.r != nil && prev.mode != modeMerge {
		r := maps.Clone(prev.r)
		maps.Copy(r, next.r)
		return indexOp{pk: next.pk, rk: next.rk, r: r, mode: prev.mode}
	}
	return next
}

// flushWorkers bounds the transactions one flush has in flight.
const flushWorkers = 8

// submitAll submits transactions of distinct partitions (or distinct rows of
// one) at once; the error is the first failure.
func (w *indexWriter) submitAll(ctx context.Context, chunks [][]indexOp) error {
	if len(chunks) == 1 {
		return w.submit(ctx, chunks[0])
	}
	errs := make([]error, len(chunks))
	sem := make(chan struct{}, flushWorkers)
	var wg sync.WaitGroup
	for i, chunk := range chunks {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			errs[i] = w.submit(ctx, chunk)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func (w *indexWriter) submit(ctx context.Context, ops []indexOp) error {
	if len(ops) == 1 {
		return w.one(ctx, ops[0])
	}
	acts := make([]aztables.TransactionAction, 0, len(ops))
	for _, op := range ops {
		act, err := op.action()
		if err != nil {
			return err
		}
		acts = append(acts, act)
	}
	_, err := w.client.SubmitTransaction(ctx, acts, nil)
	if err == nil {
		return nil
	}
	if classify(err) == classTransient {
		return wrapStorage(err)
	}
	w.log.Debug("index transaction failed, applying one by one", "error", firstLine(err))
	for _, op := range ops {
		if err := w.one(ctx, op); err != nil {
			return err
		}
	}
	return nil
}

// one writes a single change; a delete or merge of a row that is gone and an
// add of a row already there have done what they are for.
func (w *indexWriter) one(ctx context.Context, op indexOp) error {
	var err error
	if op.r == nil {
		_, err = w.client.DeleteEntity(ctx, op.pk, op.rk, &aztables.DeleteEntityOptions{IfMatch: to.Ptr(azcore.ETagAny)})
		if hasCode(err, aztables.ResourceNotFound) {
			return nil
		}
		return wrapIf(err)
	}
	b, err := op.r.marshal(op.pk, op.rk)
	if err != nil {
		return err
	}
	switch op.mode {
	case modeAdd:
		_, err = w.client.AddEntity(ctx, b, nil)
		if hasCode(err, aztables.EntityAlreadyExists) {
			return nil
		}
	case modeMerge:
		_, err = w.client.UpdateEntity(ctx, b, &aztables.UpdateEntityOptions{UpdateMode: aztables.UpdateModeMerge, IfMatch: to.Ptr(azcore.ETagAny)})
		if hasCode(err, aztables.ResourceNotFound) {
			return nil
		}
	default:
		_, err = w.client.UpsertEntity(ctx, b, &aztables.UpsertEntityOptions{UpdateMode: aztables.UpdateModeReplace})
	}
	return wrapIf(err)
}

func wrapIf(err error) error {
	if err != nil {
		return wrapStorage(err)
	}
	return nil
}

func (op indexOp) action() (aztables.TransactionAction, error) {
	if op.r == nil {
		b, _ := row{}.marshal(op.pk, op.rk)
		return aztables.TransactionAction{ActionType: aztables.TransactionTypeDelete, Entity: b, IfMatch: to.Ptr(azcore.ETagAny)}, nil
	}
	b, err := op.r.marshal(op.pk, op.rk)
	if err != nil {
		return aztables.TransactionAction{}, err
	}
	switch op.mode {
	case modeAdd:
		return aztables.TransactionAction{ActionType: aztables.TransactionTypeAdd, Entity: b}, nil
	case modeMerge:
		return aztables.TransactionAction{ActionType: aztables.TransactionTypeUpdateMerge, Entity: b, IfMatch: to.Ptr(azcore.ETagAny)}, nil
	}
	return aztables.TransactionAction{ActionType: aztables.TransactionTypeInsertReplace, Entity: b}, nil
}

// InFlightEntry is one operation the index lists as in progress.
type InFlightEntry struct {
	ClusterKey string
	Cluster    fleet.ClusterID
	Pool       string
	UpgradeKey string
	StartedAt  time.Time
}

// Clusters lists every known cluster with its number of rolling pools, from
// the index: two queries whatever the size of the Fleet table.
func (s *Store) Clusters(ctx context.Context) ([]ClusterEntry, error) {
	ents, err := s.query(ctx, s.index, "PartitionKey eq "+odataString(IndexClusters))
	if err != nil {
		return nil, fmt.Errorf("list clusters: %w", err)
	}
	inflight, err := s.InFlight(ctx)
	if err != nil {
		return nil, err
	}
	rolling := map[string]map[string]bool{}
	for _, f := range inflight {
		if rolling[f.ClusterKey] == nil {
			rolling[f.ClusterKey] = map[string]bool{}
		}
		rolling[f.ClusterKey][f.Pool] = true
	}
	out := make([]ClusterEntry, 0, len(ents))
	for _, e := range ents {
		key := e.str("RowKey")
		out = append(out, ClusterEntry{
			Key: key, SubscriptionID: e.str("SubscriptionId"), ResourceGroup: e.str("ResourceGroup"),
			Name: e.str("ClusterName"), ResourceID: e.str("ResourceId"),
			UpgradeChannel: e.str("UpgradeChannel"), NodeOSUpgradeChannel: e.str("NodeOSUpgradeChannel"),
			KubernetesVersion: e.str("KubernetesVersion"), Location: e.str("Location"),
			Support: e.str("Support"), Deleted: e.bool("Deleted"), Pools: int(e.int("Pools")),
			RollingPools: len(rolling[key]),
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// InFlight lists the operations the index holds as in progress. Every change
// this process committed before the call is in it; another instance's lag
// behind its commits by up to its linger (see indexWriter), and a reader
// about to act on an entry confirms it against Cluster.
func (s *Store) InFlight(ctx context.Context) ([]InFlightEntry, error) {
	ents, err := s.queryIndex(ctx, IndexInFlight)
	if err != nil {
		return nil, fmt.Errorf("list in-flight: %w", err)
	}
	out := make([]InFlightEntry, 0, len(ents))
	for _, e := range ents {
		out = append(out, InFlightEntry{
			ClusterKey: e.str("ClusterKey"),
			Cluster: fleet.ClusterID{SubscriptionID: e.str("SubscriptionId"), ResourceGroup: e.str("ResourceGroup"),
				Name: e.str("ClusterName")},
			Pool: e.str("Pool"), UpgradeKey: e.str("UpgradeKey"), StartedAt: e.time("StartedAt"),
		})
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].ClusterKey+"~"+out[i].UpgradeKey < out[j].ClusterKey+"~"+out[j].UpgradeKey
	})
	return out, nil
}

// FlushIndex writes the index entries this process queued behind its
// commits and waits for them.
func (s *Store) FlushIndex(ctx context.Context) error { return s.idx.sync(ctx) }

// queryIndex lists the live entries of one index partition (tombstones left
// out), after writing what this process has queued, so a reader sees every
// change this process committed before it asked.
func (s *Store) queryIndex(ctx context.Context, pk string) ([]entity, error) {
	if err := s.idx.sync(ctx); err != nil {
		return nil, err
	}
	ents, err := s.query(ctx, s.index, "PartitionKey eq "+odataString(pk))
	if err != nil {
		return nil, err
	}
	live := ents[:0]
	for _, e := range ents {
		if !e.bool("Ended") {
			live = append(live, e)
		}
	}
	return live, nil
}

// tombstoneAge is how long an ended in-flight or open-finding entry is kept
// before PruneIndex removes it: far longer than any write behind a commit
// takes to land (the writer gives up after 30 s), so no late add finds its
// tombstone gone.
const tombstoneAge = time.Hour

// findingTombstoneAge is how long an ended open-finding entry is kept: a
// day and an hour, so that the daily digest reads what resolved in the last
// 24 hours from the index (ResolvedFindings) rather than from every cluster.
const findingTombstoneAge = 25 * time.Hour

// PruneIndex removes the tombstones of in-flight and open-finding entries
// that ended more than tombstoneAge (findingTombstoneAge) before now: one query per partition and
// a transaction per hundred removed. It returns how many it removed.
func (s *Store) PruneIndex(ctx context.Context, now time.Time) (int, error) {
	n := 0
	for _, pk := range []string{IndexInFlight, IndexFindings} {
		age := tombstoneAge
		if pk == IndexFindings {
			age = findingTombstoneAge
		}
		cut := now.Add(-age).UTC().Format("2006-01-02T15:04:05.0000000Z")
		filter := fmt.Sprintf("PartitionKey eq %s and Ended eq true and EndedAt lt datetime'%s'", odataString(pk), cut)
		ents, err := s.query(ctx, s.index, filter)
		if err != nil {
			return n, fmt.Errorf("list ended index entries: %w", err)
		}
		ops := make([]indexOp, 0, len(ents))
		for _, e := range ents {
			ops = append(ops, indexOp{pk: pk, rk: e.str("RowKey")})
		}
		if err := s.idx.apply(ctx, ops); err != nil {
			return n, fmt.Errorf("remove ended index entries: %w", err)
		}
		n += len(ops)
	}
	return n, nil
}

// dueMemo remembers, per cluster, the earliest due entry this process filed
// that has not come due yet. An entry whose time is still ahead is never
// removed (the sweep reads only entries that are due; a commit removes only
// spent ones), so while it stands, a deadline at or after it needs no entry
// of its own: "evaluate no later than" holds already. That spares a write
// for each of a burst's deadlines (a pool that starts rolling again minutes
// after its last operation ended files nothing new).
type dueMemo struct {
	mu sync.Mutex
	at map[string]time.Time
}

// covers reports whether an entry filed for pk still stands at or before at.
func (m *dueMemo) covers(pk string, at, now time.Time) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.at[pk]
	return ok && t.After(now) && !t.After(at)
}

// note records that the entries in ops were written.
func (m *dueMemo) note(ops []indexOp, now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, op := range ops {
		if op.r == nil || !strings.HasPrefix(op.pk, IndexDue+"~") {
			continue
		}
		at, _ := op.r["At"].(time.Time)
		pk, _ := op.r["ClusterKey"].(string)
		if t, ok := m.at[pk]; ok && t.After(now) && !t.After(at) {
			continue
		}
		if m.at == nil || len(m.at) >= 4096 {
			// Forget the spent ones; at worst a cluster files one more entry.
			fresh := map[string]time.Time{}
			for k, t := range m.at {
				if t.After(now) && len(fresh) < 2048 {
					fresh[k] = t
				}
			}
			m.at = fresh
		}
		m.at[pk] = at
	}
}

// coveredDue drops from a signal's ordered entries the due entries an entry
// this process filed already covers (see dueMemo).
func (s *Store) coveredDue(id fleet.ClusterID, ops []indexOp, now time.Time) []indexOp {
	out := ops[:0:0]
	for _, op := range ops {
		if op.r != nil && strings.HasPrefix(op.pk, IndexDue+"~") {
			if at, _ := op.r["At"].(time.Time); s.filed.covers(id.Key(), at, now) {
				continue
			}
		}
		out = append(out, op)
	}
	return out
}

// repairDue is the due entry a signal's change files when it writes entries
// behind its commit (behind): if that write is lost, the sweep finds the
// cluster no later than repairAfter from now and rewrites its entries. None
// is filed when the cluster's own deadline comes first (its entry is there)
// or an entry this process filed does.
func (s *Store) repairDue(next *fleet.Cluster, now time.Time, behind []indexOp) []indexOp {
	if len(behind) == 0 {
		return nil
	}
	at := now.Add(s.repairAfter).UTC().Truncate(storedTime)
	if ne := next.NextEvaluation; !ne.IsZero() && !ne.After(at) {
		return nil
	}
	if s.filed.covers(next.ID.Key(), at, now) {
		return nil
	}
	return []indexOp{{pk: duePartition(next.ID, at), rk: dueKey(next.ID, at), r: dueRowAt(next, at)}}
}
