package state_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/upgradewatch/upgradewatch/internal/azuritetest"
	"github.com/upgradewatch/upgradewatch/internal/findings"
	"github.com/upgradewatch/upgradewatch/internal/fleet"
	"github.com/upgradewatch/upgradewatch/internal/state"
)

// clock is a settable now shared by stores of one test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.t = t }

func evalStore(t *testing.T, clk *clock, prefix string, opened *atomic.Int64) *state.Store {
	t.Helper()
	svc := azuritetest.Service(t, azuritetest.Endpoint(t))
	rules := findings.Evaluator(func(*fleet.Cluster) (fleet.Policy, []string) {
		return fleet.Policy{NodeOSChannel: fleet.ChannelNodeImage, Source: "test"}, nil
	})
	// Repair entries (filed for index entries written behind a commit) a
	// day out: these tests are about the rules' own deadlines.
	s := newWithRules(svc, state.Options{TablePrefix: prefix, CacheSize: 100, Now: clk.now, IndexRepairAfter: 24 * time.Hour},
		func(c *fleet.Cluster, now time.Time) []fleet.Transition {
			tr := rules(c, now)
			for _, x := range tr {
				if x.Kind == fleet.TransitionOpened && opened != nil {
					opened.Add(1)
				}
			}
			return tr
		})
	t.Cleanup(s.Close)
	if err := s.EnsureTables(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s
}

func profileSignal(id string, at time.Time, channel string) fleet.Signal {
	return fleet.Signal{ID: id, Type: fleet.TypeARMRead, Time: at, Cluster: aks1, Kind: fleet.KindClusterUpdated,
		Profile: &fleet.ClusterProfile{NodeOSUpgradeChannel: channel, UpgradeChannel: "patch", KubernetesVersion: "1.31.9",
			Pools: []fleet.PoolProfile{{Name: "system", OSType: "Linux", OSSKU: "Ubuntu", Count: 3, MaxSurge: "33%",
				DrainTimeoutMinutes: 30, NodeImageVersion: "AKSUbuntu-2204gen2containerd-202610.27.0"}}}}
}

// A finding commits with the signal that causes it, is indexed while open,
// and a time-based one is opened by the sweep exactly once, even by two
// instances at once.
func TestFindingsCommitAndSweep(t *testing.T) {
	svc := azuritetest.Service(t, azuritetest.Endpoint(t))
	prefix := azuritetest.Prefix(t)
	clk := &clock{t: t0()}
	var opened atomic.Int64
	s1 := evalStore(t, clk, prefix, &opened)
	azuritetest.DropTables(t, svc, s1.Tables()...)
	if err := s1.EnsureTables(context.Background()); err != nil {
		t.Fatal(err)
	}
	s2 := evalStore(t, clk, prefix, &opened)
	ctx := context.Background()

	// Drift opens in the commit of the profile that shows it.
	mustCommit(t, s1, profileSignal("p1", t0(), "Unmanaged"), state.Committed)
	list, err := s1.OpenFindings(ctx)
	if err != nil {
		t.Fatal(err)
	}
	codes := map[string]bool{}
	for _, f := range list {
		codes[f.Finding.Code] = true
	}
	if !codes[fleet.CodeChannelDrift] || !codes[fleet.CodeRebootsUnmanaged] {
		t.Fatalf("open findings in the index: %+v", list)
	}
	// Back to NodeImage: resolved and out of the index.
	mustCommit(t, s1, profileSignal("p2", t0().Add(time.Minute), "NodeImage"), state.Committed)
	if list, _ := s1.OpenFindings(ctx); len(list) != 0 {
		t.Fatalf("resolved findings still indexed: %+v", list)
	}
	c, _ := s1.Cluster(ctx, aks1)
	if f := c.Findings[fleet.FindingKey(fleet.CodeChannelDrift, "cluster")]; f == nil || f.Status != fleet.FindingResolved {
		t.Fatalf("drift finding %+v, want kept as Resolved", f)
	}

	// A roll starts; nothing is due before its 2-hour deadline.
	start := t0().Add(10 * time.Minute)
	mustCommit(t, s1, rolling("s1", fleet.KindRollingStarted, "system", start), state.Committed)
	clk.set(start.Add(time.Hour))
	if due, err := s1.Due(ctx, clk.now(), 100); err != nil || len(due) != 0 {
		t.Fatalf("due before the deadline: %+v %v", due, err)
	}
	// After it, both instances sweep at once: the stall opens once.
	clk.set(start.Add(3 * time.Hour))
	due, err := s1.Due(ctx, clk.now(), 100)
	if err != nil || len(due) != 1 || due[0].Cluster.Key() != aks1.Key() {
		t.Fatalf("due after the deadline: %+v %v", due, err)
	}
	before := opened.Load()
	var wg sync.WaitGroup
	for _, st := range []*state.Store{s1, s2, s1, s2} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := evaluate(ctx, st, aks1); err != nil {
				t.Errorf("evaluate: %v", err)
			}
		}()
	}
	wg.Wait()
	c, _ = s2.Cluster(ctx, aks1)
	stall := c.Findings[fleet.FindingKey(fleet.CodeUpgradeStalled, "pool/system")]
	if stall == nil || stall.Status != fleet.FindingOpen || stall.Opened != 1 {
		t.Fatalf("stall finding %+v", stall)
	}
	// Evaluations that lost the race computed the transition but did not
	// commit it: only committed transitions count, and one committed.
	committedOpen := 0
	for _, f := range c.Findings {
		if f.Code == fleet.CodeUpgradeStalled {
			committedOpen += f.Opened
		}
	}
	if committedOpen != 1 || opened.Load()-before < 1 {
		t.Errorf("stall opened %d times in storage", committedOpen)
	}
	if due, _ := s1.Due(ctx, clk.now(), 100); len(due) != 0 {
		t.Errorf("still due after the sweep: %+v", due)
	}
	// The roll ends: the stall resolves in that commit, and reopening later
	// keeps the resolved instance in the archive.
	mustCommit(t, s1, rolling("e1", fleet.KindRollingSucceeded, "system", start.Add(3*time.Hour)), state.Committed)
	c, _ = s1.Cluster(ctx, aks1)
	if f := c.Findings[fleet.FindingKey(fleet.CodeUpgradeStalled, "pool/system")]; f.Status != fleet.FindingResolved {
		t.Errorf("stall not resolved by the success: %+v", f)
	}
	mustCommit(t, s1, profileSignal("p3", start.Add(4*time.Hour), "Unmanaged"), state.Committed)
	n := countRows(t, svc, prefix+state.TableFleet, "RowKey ge 'zfinding~' and RowKey lt 'zfinding~~'")
	if n != 2 {
		t.Errorf("%d archived findings, want 2 (the drift and the reboot notice, both reopened)", n)
	}
}

func countRows(t *testing.T, svc *aztables.ServiceClient, table, filter string) int {
	t.Helper()
	f := "PartitionKey eq '" + aks1.Key() + "' and " + filter
	pager := svc.NewClient(table).NewListEntitiesPager(&aztables.ListEntitiesOptions{Filter: &f})
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
