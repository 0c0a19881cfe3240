package state

import (
	"context"
	"fmt"
	"hash/fnv"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
)

// The FleetIndex table is derived data: every row can be rebuilt from the
// Fleet table. It is written after the cluster's commit, as an upsert or delete
// per changed entry, so a failure there never undoes the commit; the failed
// delivery answers 5xx and its redelivery (a duplicate) repairs the entries.
//
// InFlight rows are keyed per operation (<cluster>~<upgrade key>), so the end
// of one operation and the start of the next can never remove each other's
// row. Index writes of two instances can still land out of order (a Started
// that commits before its end but writes its entry after the end removed it);
// applyIndex catches that with one read of the sequence row and rewrites the
// cluster's entries from the latest state.

type indexOp struct {
	pk, rk string
	r      row // nil: delete
}

// indexOps lists the index changes between two states of one cluster.
func indexOps(old, next *fleet.Cluster) []indexOp {
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
	if !old.NextEvaluation.Equal(next.NextEvaluation) {
		if !old.NextEvaluation.IsZero() {
			ops = append(ops, indexOp{pk: duePartition(next.ID, old.NextEvaluation), rk: dueKey(next.ID, old.NextEvaluation)})
		}
		if !next.NextEvaluation.IsZero() {
			ops = append(ops, indexOp{pk: duePartition(next.ID, next.NextEvaluation), rk: dueKey(next.ID, next.NextEvaluation), r: dueRow(next)})
		}
	}
	return ops
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
	return s.verifyIndex(ctx, id, seq)
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
		err := w.flush(batch)
		for _, r := range batch {
			r.err <- err
		}
	}
}

// flush writes the queued changes: per partition, the last change to each row
// wins, in transactions of at most maxBatch. A transaction that fails (a delete
// of a row already gone fails the whole batch) is retried one change at a time.
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
	pks := make([]string, 0, len(byPK))
	for pk := range byPK {
		pks = append(pks, pk)
	}
	sort.Strings(pks)
	for _, pk := range pks {
		ops := make([]indexOp, 0, len(byPK[pk]))
		for _, op := range byPK[pk] {
			ops = append(ops, op)
		}
		sort.Slice(ops, func(i, j int) bool { return ops[i].rk < ops[j].rk })
		for len(ops) > 0 {
			chunk := ops
			if len(chunk) > maxBatch {
				chunk = chunk[:maxBatch]
			}
			ops = ops[len(chunk):]
			if err := w.submit(ctx, chunk); err != nil {
				return err
			}
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

// ClusterEntry is one cluster as the index lists it.
type ClusterEntry struct {
	Key                  string
	SubscriptionID       string
	ResourceGroup        string
	Name                 string
	ResourceID           string
	UpgradeChannel       string
	NodeOSUpgradeChannel string
	KubernetesVersion    string
	Location             string
	Support              string
	Deleted              bool
	Pools                int
	RollingPools         int
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
