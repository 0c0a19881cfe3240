package state_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
	"github.com/upgradewatch/upgradewatch/internal/state"
)

// nodeRows counts the partition's Node rows in storage.
func nodeRows(t *testing.T, svc *aztables.ServiceClient, table string) int {
	t.Helper()
	filter := fmt.Sprintf("PartitionKey eq '%s' and RowKey ge 'vnode~' and RowKey lt 'vnode~~'", aks1.Key())
	pager := svc.NewClient(table).NewListEntitiesPager(&aztables.ListEntitiesOptions{Filter: to.Ptr(filter), Select: to.Ptr("RowKey")})
	n := 0
	for pager.More() {
		page, err := pager.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		n += len(page.Entities)
	}
	return n
}

// TestApplyNodesPrunesGoneNodes reproduces issue 12 finding 6: the rows of
// nodes that left were kept forever and every snapshot read them all (after
// 15,004 node rows a 3-node snapshot took 40.7 s). The state is built through
// ApplyNodes as snapshots arrive: 2,003 nodes of a scale-out, then the 3 that
// stay. Thirty days after the others left, snapshots prune their rows, at most
// fleet.MaxPrunePerSnapshot each; after that a snapshot is one transaction
// over the live nodes again, and the image history stays.
func TestApplyNodesPrunesGoneNodes(t *testing.T) {
	s, svc, prefix := newStore(t)
	table := prefix + state.TableFleet
	ctx := context.Background()
	apply := func(snap fleet.NodeSnapshot) state.NodesOutcome {
		t.Helper()
		out, err := s.ApplyNodes(ctx, aks1, snap)
		if err != nil {
			t.Fatalf("%s: %v", snap.ID, err)
		}
		return out
	}
	at := func(id string, when time.Time, n int) fleet.NodeSnapshot {
		snap := bigSnapshot(id, when, 2003, ubuntuOld)
		snap.Nodes = snap.Nodes[:n]
		return snap
	}

	apply(at("scale-out", t0(), 2003))
	reimaged := at("reimage", t0().Add(time.Hour), 2003)
	reimaged.Nodes[10].NodeImageVersion = ubuntuNew // a history row of a node about to leave
	apply(reimaged)
	left := t0().Add(2 * time.Hour)
	if out := apply(at("scale-in", left, 3)); out.Changed != 2000 || out.Pruned != 0 || out.Inventory.Nodes != 3 {
		t.Fatalf("scale-in: %+v, want 2000 nodes marked gone, none pruned", out)
	}

	// Within the retention they stay.
	if out := apply(at("day-29", left.Add(29*24*time.Hour), 3)); out.Pruned != 0 || out.Transactions != 1 {
		t.Fatalf("29 days after: pruned %d in %d transactions, want none in 1", out.Pruned, out.Transactions)
	}

	// Past it, each snapshot prunes a bounded share.
	due := left.Add(fleet.DefaultNodeRetention)
	pruning := at("day-30", due, 3)
	first := apply(pruning)
	if first.Pruned != fleet.MaxPrunePerSnapshot || first.Transactions > fleet.MaxPrunePerSnapshot/97+1 {
		t.Fatalf("first pruning snapshot: pruned %d in %d transactions, want %d in at most %d",
			first.Pruned, first.Transactions, fleet.MaxPrunePerSnapshot, fleet.MaxPrunePerSnapshot/97+1)
	}
	if out := apply(pruning); out.Result != state.NodesDuplicate || out.Transactions != 0 {
		t.Errorf("redelivered pruning snapshot: %+v, want a duplicate writing nothing", out)
	}
	if out := apply(at("day-30-late", due.Add(-time.Minute), 3)); out.Result != state.NodesStale || out.Pruned != 0 {
		t.Errorf("late older snapshot: %+v, want stale, nothing pruned", out)
	}
	if out := apply(at("day-30b", due.Add(15*time.Minute), 3)); out.Pruned != 1000 {
		t.Fatalf("second pruning snapshot: pruned %d, want the other 1000", out.Pruned)
	}
	steady := apply(at("day-30c", due.Add(30*time.Minute), 3))
	if steady.Pruned != 0 || steady.Transactions != 1 || len(steady.Nodes) != 3 {
		t.Errorf("steady snapshot: pruned %d in %d transactions over %d node rows, want 0 in 1 over 3",
			steady.Pruned, steady.Transactions, len(steady.Nodes))
	}
	if n := nodeRows(t, svc, table); n != 3 {
		t.Errorf("%d Node rows in storage, want the 3 live nodes", n)
	}
	hist, err := s.NodeHistory(ctx, aks1, time.Time{}, "", 0)
	if err != nil || len(hist) != 1 || hist[0].To != ubuntuNew {
		t.Errorf("history %+v %v, want the pruned node's image change kept", hist, err)
	}
}

// Two instances apply pruning snapshots at once: every gone row goes exactly
// once, neither fails, and the live nodes stay.
func TestApplyNodesPruneConcurrent(t *testing.T) {
	s1, svc, prefix := newStore(t)
	s2 := open(t, svc, prefix)
	ctx := context.Background()
	all := bigSnapshot("scale-out", t0(), 500, ubuntuOld)
	if _, err := s1.ApplyNodes(ctx, aks1, all); err != nil {
		t.Fatal(err)
	}
	in := all
	in.ID, in.ObservedAt, in.Nodes = "scale-in", t0().Add(time.Hour), all.Nodes[:5]
	if _, err := s1.ApplyNodes(ctx, aks1, in); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	outs := make([]state.NodesOutcome, 4)
	errs := make([]error, 4)
	for i := range outs {
		snap := in
		snap.ID = fmt.Sprintf("day-31-%d", i%2)
		snap.ObservedAt = t0().Add(31*24*time.Hour + time.Duration(i%2)*time.Minute)
		store := []*state.Store{s1, s2}[i/2]
		wg.Go(func() { outs[i], errs[i] = store.ApplyNodes(ctx, aks1, snap) })
	}
	wg.Wait()
	pruned := 0
	for i := range outs {
		if errs[i] != nil {
			t.Fatalf("apply %d: %v", i, errs[i])
		}
		pruned += outs[i].Pruned
	}
	if pruned != 495 {
		t.Errorf("pruned %d rows in all, want each of the 495 gone rows once", pruned)
	}
	_, nodes, err := s1.Nodes(ctx, aks1)
	if err != nil || len(nodes) != 5 {
		t.Errorf("nodes after pruning: %d %v, want the 5 live ones", len(nodes), err)
	}
	for _, n := range nodes {
		if n.Gone || !strings.HasPrefix(n.Name, "aks-user") {
			t.Errorf("node %+v left, want only live ones", n)
		}
	}
}
