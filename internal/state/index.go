package state

import (
	"context"
	"fmt"
	"hash/fnv"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
)

// The FleetIndex table is derived data: every row can be rebuilt from the
// Fleet table. It is written as an upsert or delete per changed entry: by a
// signal's change just before its commit (preIndex: entries land in commit
// order with no read after; undoIndex when the commit fails), by other changes
// after their commit (applyIndex), so a failure there never undoes the commit;
// the failed delivery answers 5xx and its redelivery (a duplicate) repairs the
// entries.
//
// InFlight rows are keyed per operation (<cluster>~<upgrade key>), so the end
// of one operation and the start of the next can never remove each other's
// row. Index writes made after a commit can still land out of order (a
// Started that commits before its end but writes its entry after the end
// removed it); applyIndex catches that with one read of the sequence row and
// rewrites the cluster's entries from the latest state.

type indexOp struct {
	pk, rk string
	r      row // nil: delete
}

// indexOps lists the index changes between two states of one cluster,
// committed at now.
func indexOps(old, next *fleet.Cluster, now time.Time) []indexOp {
	var ops []indexOp
	if summaryOf(old) != summaryOf(next) {
		ops = append(ops, indexOp{pk: IndexClusters, rk: next.ID.Key(), r: clusterIndexRow(next)})
	}
	before := map[string]bool{}
	for _, u := range old.InFlight() {
		before[u.Key] = true
	}
	for _, u := range next.InFlight() {
		if !before[u.Key] {
			ops = append(ops, indexOp{pk: IndexInFlight, rk: inFlightKey(next.ID, u.Key), r: inFlightRow(next, u)})
		}
		delete(before, u.Key)
	}
	for key := range before {
		ops = append(ops, indexOp{pk: IndexInFlight, rk: inFlightKey(next.ID, key)})
	}
	// Open findings: added or rewritten when they open or change, removed when
	// they resolve.
	for key, f := range next.Findings {
		o := old.Findings[key]
		if f.Status == fleet.FindingOpen {
			if o == nil || o.Status != fleet.FindingOpen || o.Severity != f.Severity || o.Summary != f.Summary || !o.OpenedAt.Equal(f.OpenedAt) {
				ops = append(ops, indexOp{pk: IndexFindings, rk: findingIndexKey(next.ID, f), r: findingIndexRow(next, f)})
			}
		} else if o != nil && o.Status == fleet.FindingOpen {
			ops = append(ops, indexOp{pk: IndexFindings, rk: findingIndexKey(next.ID, f)})
		}
	}
	return append(ops, dueOps(old, next, now)...)
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
// ops if they landed after them. A due entry put cannot be: an extra or older
// due entry only makes the sweep look at the cluster once more, which is what
// the entry means (evaluate no later than), so those need no verify read.
func needsCheck(ops []indexOp) bool {
	for _, op := range ops {
		if !strings.HasPrefix(op.pk, IndexDue+"~") || op.r == nil {
			return true
		}
	}
	return false
}

func findingIndexKey(id fleet.ClusterID, f *fleet.Finding) string {
	return id.Key() + "~" + strings.TrimPrefix(findingKey(f.Code, f.Target), rkFindPrefix)
}

func findingIndexRow(c *fleet.Cluster, f *fleet.Finding) row {
	r := findingRow(f)
	r["Kind"] = KindOpenIndex
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

func dueRow(c *fleet.Cluster) row {
	r := row{"Kind": KindDue, "ClusterKey": c.ID.Key(), "SubscriptionId": c.ID.SubscriptionID,
		"ResourceGroup": c.ID.ResourceGroup, "ClusterName": c.ID.Name}
	setTime(r, "At", c.NextEvaluation)
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
// change wrote them (preIndex) and then did not commit, or could not tell
// whether it had: every entry the state calls for, the in-flight entries it
// does not (reconcileIndex), and the open-finding entries written for
// findings the state does not have open. It holds the cluster's lock, so this
// process writes nothing else for the cluster meanwhile; verifyIndex covers
// other instances. Best effort: when storage fails here too, the change is
// answered ErrUnavailable and its redelivery rewrites the entries.
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
		open := map[string]bool{}
		for _, f := range snap.cluster.Findings {
			if f.Status == fleet.FindingOpen {
				open[findingIndexKey(id, f)] = true
			}
		}
		var stray []indexOp
		for _, op := range written {
			if op.pk == IndexFindings && op.r != nil && !open[op.rk] {
				stray = append(stray, indexOp{pk: op.pk, rk: op.rk})
			}
		}
		if err := s.idx.apply(ctx, stray); err != nil {
			return err
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
// state: in-flight entries of operations not in progress in it (ended, or
// re-keyed when a late Started re-derived them) are removed. If a newer
// commit lands meanwhile, its writer's check (verifyIndex) or ours finds the
// partition moved on and reconciles again from the newer state.
func (s *Store) reconcileIndex(ctx context.Context, c *fleet.Cluster) error {
	if c.Signals == 0 {
		return nil
	}
	ops := []indexOp{{pk: IndexClusters, rk: c.ID.Key(), r: clusterIndexRow(c)}}
	for _, f := range c.Findings {
		if f.Status == fleet.FindingOpen {
			ops = append(ops, indexOp{pk: IndexFindings, rk: findingIndexKey(c.ID, f), r: findingIndexRow(c, f)})
		} else {
			ops = append(ops, indexOp{pk: IndexFindings, rk: findingIndexKey(c.ID, f)})
		}
	}
	if !c.NextEvaluation.IsZero() {
		ops = append(ops, indexOp{pk: duePartition(c.ID, c.NextEvaluation), rk: dueKey(c.ID, c.NextEvaluation), r: dueRow(c)})
	}
	inflight := map[string]bool{}
	for _, u := range c.InFlight() {
		inflight[u.Key] = true
		ops = append(ops, indexOp{pk: IndexInFlight, rk: inFlightKey(c.ID, u.Key), r: inFlightRow(c, u)})
	}
	prefix := c.ID.Key() + "~"
	filter := fmt.Sprintf("PartitionKey eq %s and RowKey ge %s and RowKey lt %s",
		odataString(IndexInFlight), odataString(prefix), odataString(prefix+"~"))
	ents, err := s.query(ctx, s.index, filter)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if !inflight[e.str("UpgradeKey")] {
			ops = append(ops, indexOp{pk: IndexInFlight, rk: e.str("RowKey")})
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
// event.
type indexWriter struct {
	client *aztables.Client
	log    *slog.Logger
	reqs   chan *indexReq
	done   chan struct{}
	// beforeFlush, when set (tests only), runs before each write: a slow
	// network, so that writes of two instances land out of order.
	beforeFlush func()
}

type indexReq struct {
	ops []indexOp
	err chan error
}

func newIndexWriter(c *aztables.Client, log *slog.Logger) *indexWriter {
	w := &indexWriter{client: c, log: log, reqs: make(chan *indexReq, 1024), done: make(chan struct{})}
	go w.run()
	return w
}

func (w *indexWriter) apply(ctx context.Context, ops []indexOp) error {
	if len(ops) == 0 {
		return nil
	}
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

func (w *indexWriter) close() {
	close(w.reqs)
	<-w.done
}

func (w *indexWriter) run() {
	defer close(w.done)
	for req := range w.reqs {
		batch := []*indexReq{req}
		n := len(req.ops)
	drain:
		for n < maxBatch {
			select {
			case r, ok := <-w.reqs:
				if !ok {
					break drain
				}
				batch = append(batch, r)
				n += len(r.ops)
			default:
				break drain
			}
		}
		if w.beforeFlush != nil {
			w.beforeFlush()
		}
		err := w.flush(batch)
		for _, r := range batch {
			r.err <- err
		}
	}
}

// flush writes the queued changes: per partition, the last change to each row
// wins, in transactions of at most maxBatch. A transaction that fails (a delete
// of a row already gone fails the whole batch) is retried one change at a time.
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
			byPK[op.pk][op.rk] = op
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

func (w *indexWriter) one(ctx context.Context, op indexOp) error {
	if op.r == nil {
		_, err := w.client.DeleteEntity(ctx, op.pk, op.rk, &aztables.DeleteEntityOptions{IfMatch: to.Ptr(azcore.ETagAny)})
		if err != nil && !hasCode(err, aztables.ResourceNotFound) {
			return wrapStorage(err)
		}
		return nil
	}
	b, err := op.r.marshal(op.pk, op.rk)
	if err != nil {
		return err
	}
	if _, err := w.client.UpsertEntity(ctx, b, &aztables.UpsertEntityOptions{UpdateMode: aztables.UpdateModeReplace}); err != nil {
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

// InFlight lists the operations the index holds as in progress. An entry can
// lag its cluster for the moment between a commit and its index check (see
// applyIndex); a reader about to act on one confirms it against Cluster.
func (s *Store) InFlight(ctx context.Context) ([]InFlightEntry, error) {
	ents, err := s.query(ctx, s.index, "PartitionKey eq "+odataString(IndexInFlight))
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
