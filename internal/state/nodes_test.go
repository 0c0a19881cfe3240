package state_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
	"github.com/upgradewatch/upgradewatch/internal/state"
)

const (
	ubuntuOld = "AKSUbuntu-2204gen2containerd-202410.27.0"
	ubuntuNew = "AKSUbuntu-2204gen2containerd-202411.03.0"
)

// bigSnapshot is n Ubuntu nodes in 4 pools, all on version.
func bigSnapshot(id string, at time.Time, n int, version string) fleet.NodeSnapshot {
	s := fleet.NodeSnapshot{ID: id, ObservedAt: at, Complete: true, Reporter: "node-reporter/test"}
	for i := 0; i < n; i++ {
		pool := fmt.Sprintf("user%d", i%4)
		s.Nodes = append(s.Nodes, fleet.NodeObservation{
			Name: fmt.Sprintf("aks-%s-38475619-vmss%06x", pool, i), Pool: pool, NodeImageVersion: version,
			KernelVersion: "5.15.0-1074-azure", OSImage: "Ubuntu 22.04.5 LTS", KubeletVersion: "v1.31.9",
			ContainerRuntime: "containerd://1.7.25-1", OSType: "linux", Ready: "True",
		})
	}
	return s
}

// partitionTimestamps returns the service's Timestamp of every node inventory
// row: a row that was not rewritten keeps its Timestamp.
func partitionTimestamps(t *testing.T, svc *aztables.ServiceClient, table string) map[string]string {
	t.Helper()
	filter := fmt.Sprintf("PartitionKey eq '%s' and RowKey ge 'v'", aks1.Key())
	pager := svc.NewClient(table).NewListEntitiesPager(&aztables.ListEntitiesOptions{Filter: to.Ptr(filter)})
	out := map[string]string{}
	for pager.More() {
		page, err := pager.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range page.Entities {
			var e map[string]any
			if err := json.Unmarshal(b, &e); err != nil {
				t.Fatal(err)
			}
			out[e["RowKey"].(string)] = e["Timestamp"].(string)
		}
	}
	return out
}

func TestApplyNodesThousandNodes(t *testing.T) {
	s, svc, prefix := newStore(t)
	ctx := context.Background()
	first := bigSnapshot("snap-1", t0(), 1000, ubuntuOld)
	out, err := s.ApplyNodes(ctx, aks1, first)
	if err != nil {
		t.Fatal(err)
	}
	// 1000 node rows at 97 per transaction (guard delete+add and the mark take 3).
	if out.Result != state.NodesApplied || out.Changed != 1000 || out.History != 0 || out.Transactions != 11 {
		t.Fatalf("first snapshot: %+v, want applied, 1000 changed, 0 history, 11 transactions", out.Result)
	}
	before := partitionTimestamps(t, svc, prefix+state.TableFleet)

	// A week later ten nodes were reimaged and one was scaled away.
	time.Sleep(1100 * time.Millisecond) // Table timestamps have second resolution in Azurite
	second := bigSnapshot("snap-2", t0().Add(7*24*time.Hour), 1000, ubuntuOld)
	for i := 0; i < 10; i++ {
		second.Nodes[i*7].NodeImageVersion = ubuntuNew
	}
	gone := second.Nodes[999].Name
	second.Nodes = second.Nodes[:999]
	out, err = s.ApplyNodes(ctx, aks1, second)
	if err != nil {
		t.Fatal(err)
	}
	if out.Changed != 11 || out.History != 10 || out.Transactions != 1 || out.Inventory.Nodes != 999 {
		t.Fatalf("second snapshot: changed %d history %d in %d transactions, %d nodes; want 11, 10, 1, 999",
			out.Changed, out.History, out.Transactions, out.Inventory.Nodes)
	}
	after := partitionTimestamps(t, svc, prefix+state.TableFleet)
	rewritten := 0
	for rk, ts := range before {
		if len(rk) > 6 && rk[:6] == "vnode~" && after[rk] != ts {
			rewritten++
		}
	}
	if rewritten != 11 {
		t.Errorf("%d node rows rewritten in storage, want 11 (10 reimaged + 1 gone)", rewritten)
	}

	_, nodes, err := s.Nodes(ctx, aks1)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]fleet.Node{}
	for _, n := range nodes {
		byName[n.Name] = n
	}
	if n := byName[gone]; !n.Gone || !n.ChangedAt.Equal(second.ObservedAt) {
		t.Errorf("scaled-away node %+v, want kept and marked gone at the second snapshot", n)
	}
	if n := byName[second.Nodes[0].Name]; n.NodeImageVersion != ubuntuNew || !n.VersionSince.Equal(second.ObservedAt) || !n.FirstSeenAt.Equal(t0()) {
		t.Errorf("reimaged node %+v: want %s since the second snapshot, first seen at the first", n, ubuntuNew)
	}
	hist, err := s.NodeHistory(ctx, aks1, time.Time{}, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 10 || hist[0].From != ubuntuOld || hist[0].To != ubuntuNew || !hist[0].ObservedAt.Equal(second.ObservedAt) {
		t.Errorf("history %+v, want 10 changes %s → %s", hist, ubuntuOld, ubuntuNew)
	}
	one, err := s.NodeHistory(ctx, aks1, t0(), second.Nodes[7].Name, 0)
	if err != nil || len(one) != 1 || one[0].Node != second.Nodes[7].Name {
		t.Errorf("history of one node: %+v %v", one, err)
	}

	// Redelivery of the second and a late first change nothing.
	if out, err := s.ApplyNodes(ctx, aks1, second); err != nil || out.Result != state.NodesDuplicate || out.Transactions != 0 {
		t.Errorf("redelivered snapshot: %+v %v, want duplicate with no transaction", out.Result, err)
	}
	if out, err := s.ApplyNodes(ctx, aks1, first); err != nil || out.Result != state.NodesStale || out.Transactions != 0 {
		t.Errorf("older snapshot after a newer: %+v %v, want stale with no transaction", out.Result, err)
	}
}

// Two instances apply the same and different snapshots at once: every node
// ends as the newest snapshot says, and no history entry is doubled.
func TestApplyNodesConcurrent(t *testing.T) {
	s1, svc, prefix := newStore(t)
	s2 := open(t, svc, prefix)
	ctx := context.Background()
	if _, err := s1.ApplyNodes(ctx, aks1, bigSnapshot("base", t0(), 300, ubuntuOld)); err != nil {
		t.Fatal(err)
	}
	older := bigSnapshot("older", t0().Add(time.Hour), 300, ubuntuOld)
	for i := 0; i < 300; i += 2 {
		older.Nodes[i].NodeImageVersion = ubuntuNew
	}
	newer := bigSnapshot("newer", t0().Add(2*time.Hour), 300, ubuntuNew)

	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for i, job := range []struct {
		s    *state.Store
		snap fleet.NodeSnapshot
	}{{s1, newer}, {s2, older}, {s2, newer}, {s1, older}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(i) * 3 * time.Millisecond)
			if _, err := job.s.ApplyNodes(ctx, aks1, job.snap); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("apply: %v", err)
	}
	inv, nodes, err := s1.Nodes(ctx, aks1)
	if err != nil {
		t.Fatal(err)
	}
	if inv.SnapshotID != "newer" || !inv.Complete || inv.Nodes != 300 {
		t.Errorf("inventory mark %+v, want the newer snapshot, complete, 300 nodes", inv)
	}
	for _, n := range nodes {
		if n.NodeImageVersion != ubuntuNew {
			t.Fatalf("node %s on %s, want %s", n.Name, n.NodeImageVersion, ubuntuNew)
		}
	}
	hist, err := s1.NodeHistory(ctx, aks1, time.Time{}, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	perNode := map[string]int{}
	for _, h := range hist {
		perNode[h.Node]++
		if h.From == h.To {
			t.Errorf("history entry %+v changes nothing", h)
		}
	}
	if len(perNode) != 300 {
		t.Errorf("history covers %d nodes, want all 300", len(perNode))
	}
	for name, n := range perNode {
		if n != 1 {
			t.Errorf("node %s has %d history entries, want exactly 1 (old → new, whichever snapshot showed it first)", name, n)
		}
	}
}
