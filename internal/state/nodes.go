package state

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
)

// Node inventory rows live in the cluster's Fleet partition under RowKeys that
// start with "v" ("versions"), after the audit rows: loading the cluster state
// never reads them, and loading the nodes never reads the history.
//
//	vhist~<time>~<node>  Kind NodeVersion, one per observed image change (time first: recent history is a range)
//	vinv                 Kind NodeInventory, the newest snapshot applied
//	vnode~<node>         Kind Node
//	vseq~<n>             Kind Sequence, the guard of node writes (separate from seq~ so node snapshots and events never contend)
const (
	rkHistPrefix    = "vhist~"
	rkInventory     = "vinv"
	rkNodePrefix    = "vnode~"
	rkNodeSeqPrefix = "vseq~"
	nodeRowsEnd     = "vt" // after vseq~…
)

// Row kinds of the node inventory.
const (
	KindNode          = "Node"
	KindNodeVersion   = "NodeVersion"
	KindNodeInventory = "NodeInventory"
)

// nodeItems is the room left in a transaction after the guard (2 rows) and the
// inventory mark.
const nodeItems = maxBatch - 3

// ApplyNodes applies a node snapshot to the cluster's node rows exactly once.
//
// Only nodes that changed are written, in transactions of at most 100 rows,
// each carrying the move of the partition's node sequence row (vseq~n →
// vseq~n+1) so that every transaction is computed against the rows it
// replaces; a node's history row travels in the same transaction as the node.
// On a conflict the rows are reloaded and the diff recomputed, so transactions
// already committed (by this call, a crashed earlier delivery or a concurrent
// one) are not repeated. A snapshot older than the newest applied one changes
// nothing (NodesStale).
//
// The rows of nodes gone for longer than the store's node retention, counted
// back from the snapshot's time, are deleted in the same guarded transactions
// (at most fleet.MaxPrunePerSnapshot a snapshot): what a snapshot prunes is a
// function of the rows and the snapshot alone, so a redelivery or a
// concurrent delivery prunes nothing twice, and the rows every later snapshot
// reads stay bounded by the nodes of the last retention period. History rows
// stay: snapshots never read them. Errors: ErrRejected (invalid node names),
// ErrUnavailable.
func (s *Store) ApplyNodes(ctx context.Context, id fleet.ClusterID, snap fleet.NodeSnapshot) (NodesOutcome, error) {
	snap.ObservedAt = snap.ObservedAt.UTC().Truncate(storedTime)
	for _, n := range snap.Nodes {
		if !validNodeKey(n.Name) {
			return NodesOutcome{}, fmt.Errorf("%w: node name %q cannot be a row key", ErrRejected, n.Name)
		}
	}
	pk := id.Key()
	mu := s.lock(pk + "~nodes")
	mu.Lock()
	defer mu.Unlock()

	out := NodesOutcome{Result: NodesApplied}
	err := s.retry(ctx, pk+" nodes", func() error { return s.applyNodes(ctx, pk, snap, &out) })
	if err != nil {
		return NodesOutcome{}, err
	}
	return out, nil
}

// applyNodes is one attempt of ApplyNodes: it reloads the node rows and
// commits the diff in order, counting into out what it committed (which
// stands when a later transaction conflicts). errConflict asks for another.
func (s *Store) applyNodes(ctx context.Context, pk string, snap fleet.NodeSnapshot, out *NodesOutcome) error {
	inv, seq, nodes, err := s.loadNodes(ctx, pk)
	if err != nil {
		return err
	}
	if inv.SnapshotID == snap.ID && inv.Complete && out.Transactions == 0 {
		*out = NodesOutcome{Result: NodesDuplicate, Inventory: inv, Nodes: sortedNodes(nodes)}
		return nil
	}
	if inv.SnapshotID != snap.ID && !inv.Newer(snap) {
		if out.Transactions == 0 {
			out.Result = NodesStale
		}
		out.Inventory, out.Nodes = inv, sortedNodes(nodes)
		return nil
	}
	diff := fleet.DiffNodes(nodes, snap)
	for _, n := range diff.Changed {
		nodes[n.Name] = n
	}
	prune := fleet.PruneGone(nodes, snap.ObservedAt, s.nodeRetention, fleet.MaxPrunePerSnapshot)
	for _, name := range prune {
		delete(nodes, name)
	}
	chunks := chunkNodes(diff, prune)
	final := fleet.NodeInventory{SnapshotID: snap.ID, ObservedAt: snap.ObservedAt, Complete: true, Nodes: countPresent(nodes)}
	for i, chunk := range chunks {
		mark := final
		mark.Complete = i == len(chunks)-1
		acts, err := nodeActions(pk, seq, mark, snap.Reporter, s.now(), chunk)
		if err != nil {
			return err
		}
		if _, err := s.fleet.SubmitTransaction(ctx, acts, nil); err != nil {
			return storageErr(err)
		}
		seq++
		out.Transactions++
		countRows(out, chunk)
	}
	out.Inventory, out.Nodes = final, sortedNodes(nodes)
	return nil
}

// count adds a committed transaction's rows to the outcome.
func countRows(o *NodesOutcome, chunk []nodeItem) {
	for _, it := range chunk {
		switch {
		case it.hist != nil:
			o.History++
		case it.node != nil:
			o.Changed++
		default:
			o.Pruned++
		}
	}
}

// nodeItem is one row of a node write: a node, a history entry, or the name
// of a node whose row goes.
type nodeItem struct {
	node  *fleet.Node
	hist  *fleet.NodeVersionChange
	prune string
}

// chunkNodes packs the diff into transactions, each node with its history
// entry, then the deletions of pruned nodes.
func chunkNodes(d fleet.NodeDiff, prune []string) [][]nodeItem {
	hist := map[string]*fleet.NodeVersionChange{}
	for i := range d.History {
		hist[d.History[i].Node] = &d.History[i]
	}
	var chunks [][]nodeItem
	var cur []nodeItem
	for i := range d.Changed {
		group := []nodeItem{{node: &d.Changed[i]}}
		if h := hist[d.Changed[i].Name]; h != nil {
			group = append(group, nodeItem{hist: h})
		}
		if len(cur)+len(group) > nodeItems {
			chunks, cur = append(chunks, cur), nil
		}
		cur = append(cur, group...)
	}
	for _, name := range prune {
		if len(cur)+1 > nodeItems {
			chunks, cur = append(chunks, cur), nil
		}
		cur = append(cur, nodeItem{prune: name})
	}
	// Even a snapshot that changes no node moves the inventory mark.
	return append(chunks, cur)
}

func nodeActions(pk string, seq int64, mark fleet.NodeInventory, reporter string, now time.Time, items []nodeItem) ([]aztables.TransactionAction, error) {
	var acts []aztables.TransactionAction
	put := func(typ aztables.TransactionType, rk string, r row) error {
		b, err := r.marshal(pk, rk)
		if err != nil {
			return fmt.Errorf("%w: encode row %s: %v", ErrRejected, rk, err)
		}
		acts = append(acts, aztables.TransactionAction{ActionType: typ, Entity: b})
		return nil
	}
	if seq > 0 {
		b, _ := row{}.marshal(pk, nodeSeqKey(seq))
		acts = append(acts, aztables.TransactionAction{ActionType: aztables.TransactionTypeDelete, Entity: b, IfMatch: to.Ptr(azcore.ETagAny)})
	} else if err := put(aztables.TransactionTypeAdd, nodeSeqKey(0), row{"Kind": KindSequence, "Seq": int64(0)}); err != nil {
		// vseq~0, never deleted: the first node write's guard (see guard in chunks.go).
		return nil, err
	}
	if err := put(aztables.TransactionTypeAdd, nodeSeqKey(seq+1), row{"Kind": KindSequence, "Seq": seq + 1}); err != nil {
		return nil, err
	}
	inv := row{"Kind": KindNodeInventory, "SnapshotId": mark.SnapshotID, "Complete": mark.Complete,
		"Nodes": int32(mark.Nodes), "Reporter": truncateUTF16(reporter, 256)}
	setTime(inv, "ObservedAt", mark.ObservedAt)
	setTime(inv, "AppliedAt", now)
	if err := put(aztables.TransactionTypeInsertReplace, rkInventory, inv); err != nil {
		return nil, err
	}
	for _, it := range items {
		var err error
		switch {
		case it.node != nil:
			err = put(aztables.TransactionTypeInsertReplace, rkNodePrefix+it.node.Name, nodeRow(*it.node))
		case it.hist != nil:
			err = put(aztables.TransactionTypeInsertReplace, histKey(*it.hist), histRow(*it.hist))
		default:
			// Gone already (a concurrent snapshot pruned it) fails the
			// transaction as a conflict: the reload no longer lists it.
			b, _ := row{}.marshal(pk, rkNodePrefix+it.prune)
			acts = append(acts, aztables.TransactionAction{ActionType: aztables.TransactionTypeDelete, Entity: b, IfMatch: to.Ptr(azcore.ETagAny)})
		}
		if err != nil {
			return nil, err
		}
	}
	return acts, nil
}

func nodeRow(n fleet.Node) row {
	r := row{
		"Kind":             KindNode,
		"Node":             n.Name,
		"Pool":             n.Pool,
		"NodeImageVersion": n.NodeImageVersion,
		"KernelVersion":    n.KernelVersion,
		"OsImage":          n.OSImage,
		"KubeletVersion":   n.KubeletVersion,
		"ContainerRuntime": n.ContainerRuntime,
		"OsType":           n.OSType,
		"Quarantined":      n.Quarantined,
		"Unschedulable":    n.Unschedulable,
		"Ready":            n.Ready,
		"Gone":             n.Gone,
		"SnapshotId":       n.SnapshotID,
	}
	setTime(r, "FirstSeenAt", n.FirstSeenAt)
	setTime(r, "VersionSince", n.VersionSince)
	setTime(r, "ChangedAt", n.ChangedAt)
	if n.Gone {
		setTime(r, "GoneAt", n.ChangedAt)
	}
	return r
}

func nodeOf(e entity) fleet.Node {
	return fleet.Node{
		NodeObservation: fleet.NodeObservation{
			Name: e.str("Node"), Pool: e.str("Pool"), NodeImageVersion: e.str("NodeImageVersion"),
			KernelVersion: e.str("KernelVersion"), OSImage: e.str("OsImage"), KubeletVersion: e.str("KubeletVersion"),
			ContainerRuntime: e.str("ContainerRuntime"), OSType: e.str("OsType"), Quarantined: e.bool("Quarantined"),
			Unschedulable: e.bool("Unschedulable"),
			Ready:         e.str("Ready"),
		},
		FirstSeenAt:  e.time("FirstSeenAt"),
		VersionSince: e.time("VersionSince"),
		ChangedAt:    e.time("ChangedAt"),
		SnapshotID:   e.str("SnapshotId"),
		Gone:         e.bool("Gone"),
	}
}

func histKey(h fleet.NodeVersionChange) string {
	return rkHistPrefix + h.ObservedAt.UTC().Format(fleet.TimeKeyLayout) + "~" + h.Node
}

func histRow(h fleet.NodeVersionChange) row {
	r := row{"Kind": KindNodeVersion, "Node": h.Node, "Pool": h.Pool, "FromVersion": h.From, "ToVersion": h.To, "SnapshotId": h.SnapshotID}
	setTime(r, "ObservedAt", h.ObservedAt)
	return r
}

func nodeSeqKey(n int64) string { return fmt.Sprintf("%s%012d", rkNodeSeqPrefix, n) }

// validNodeKey: node names are DNS subdomains; this only guards the row key
// against what Table storage forbids in keys.
func validNodeKey(name string) bool {
	if name == "" || len(name) > 253 {
		return false
	}
	for _, c := range name {
		if c < 0x20 || c == 0x7f || c == '/' || c == '\\' || c == '#' || c == '?' || c == '\'' {
			return false
		}
	}
	return true
}

func (s *Store) loadNodes(ctx context.Context, pk string) (fleet.NodeInventory, int64, map[string]fleet.Node, error) {
	filter := fmt.Sprintf("PartitionKey eq %s and RowKey ge %s and RowKey lt %s",
		odataString(pk), odataString(rkInventory), odataString(nodeRowsEnd))
	ents, err := s.query(ctx, s.fleet, filter)
	if err != nil {
		return fleet.NodeInventory{}, 0, nil, fmt.Errorf("load nodes of %s: %w", pk, err)
	}
	var inv fleet.NodeInventory
	var seq int64
	nodes := map[string]fleet.Node{}
	for _, e := range ents {
		rk := e.str("RowKey")
		switch {
		case rk == rkInventory:
			inv = fleet.NodeInventory{SnapshotID: e.str("SnapshotId"), ObservedAt: e.time("ObservedAt"),
				Complete: e.bool("Complete"), Nodes: int(e.int("Nodes"))}
		case strings.HasPrefix(rk, rkNodeSeqPrefix):
			if n := e.int("Seq"); n > seq {
				seq = n
			}
		case strings.HasPrefix(rk, rkNodePrefix):
			n := nodeOf(e)
			nodes[n.Name] = n
		}
	}
	return inv, seq, nodes, nil
}

// Nodes returns the cluster's inventory mark and its nodes (gone ones
// included), by name. A cluster that never reported nodes has a zero mark and
// no nodes.
func (s *Store) Nodes(ctx context.Context, id fleet.ClusterID) (fleet.NodeInventory, []fleet.Node, error) {
	inv, _, nodes, err := s.loadNodes(ctx, id.Key())
	if err != nil {
		return fleet.NodeInventory{}, nil, err
	}
	return inv, sortedNodes(nodes), nil
}

// Node reads one node's row (a point read). ok is false when the cluster
// never reported a node of that name.
func (s *Store) Node(ctx context.Context, id fleet.ClusterID, name string) (fleet.Node, bool, error) {
	if !validNodeKey(name) {
		return fleet.Node{}, false, nil
	}
	resp, err := s.fleet.GetEntity(ctx, id.Key(), rkNodePrefix+name, nil)
	switch {
	case hasCode(err, aztables.ResourceNotFound):
		return fleet.Node{}, false, nil
	case err != nil:
		return fleet.Node{}, false, wrapStorage(err)
	}
	e, err := decodeEntity(resp.Value)
	if err != nil {
		return fleet.Node{}, false, fmt.Errorf("%w: node %s: %v", ErrUnavailable, name, err)
	}
	return nodeOf(e), true, nil
}

// NodeHistory returns the image changes observed since the given time, oldest
// first; node, if not empty, keeps only that node's. At most limit entries (the
// newest) are returned when limit > 0.
func (s *Store) NodeHistory(ctx context.Context, id fleet.ClusterID, since time.Time, node string, limit int) ([]fleet.NodeVersionChange, error) {
	pk := id.Key()
	from := rkHistPrefix
	if !since.IsZero() {
		from += since.UTC().Format(fleet.TimeKeyLayout)
	}
	filter := fmt.Sprintf("PartitionKey eq %s and RowKey ge %s and RowKey lt %s",
		odataString(pk), odataString(from), odataString(rkHistPrefix+"~"))
	if node != "" {
		filter += " and Node eq " + odataString(node)
	}
	ents, err := s.query(ctx, s.fleet, filter)
	if err != nil {
		return nil, fmt.Errorf("node history of %s: %w", pk, err)
	}
	out := make([]fleet.NodeVersionChange, 0, len(ents))
	for _, e := range ents {
		out = append(out, fleet.NodeVersionChange{Node: e.str("Node"), Pool: e.str("Pool"), From: e.str("FromVersion"),
			To: e.str("ToVersion"), ObservedAt: e.time("ObservedAt"), SnapshotID: e.str("SnapshotId")})
	}
	if limit > 0 && len(out) > limit {
		out = out[len(out)-limit:]
	}
	return out, nil
}

func sortedNodes(m map[string]fleet.Node) []fleet.Node {
	out := make([]fleet.Node, 0, len(m))
	for _, n := range m {
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func countPresent(m map[string]fleet.Node) int {
	n := 0
	for _, x := range m {
		if !x.Gone {
			n++
		}
	}
	return n
}
