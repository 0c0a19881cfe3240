package state

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
)

// secondInstance opens another store (its own cache and index writer) on
// s's tables, as a second process would.
func secondInstance(t *testing.T, s *Store) *Store {
	t.Helper()
	ep := os.Getenv("AZURITE_TABLE_ENDPOINT")
	if ep == "" {
		ep = "http://127.0.0.1:10002/devstoreaccount1"
	}
	o := New(internalService(t, ep), Options{TablePrefix: strings.TrimSuffix(s.names[0], TableFleet), CacheSize: 100})
	t.Cleanup(o.Close)
	return o
}

var protoID = fleet.ClusterID{SubscriptionID: "6f1c2a3b-4d5e-4f60-8a71-92b3c4d5e6f7", ResourceGroup: "rg-payments-prod", Name: "aks-payments-weu"}

func protoSignal(id string, kind fleet.SignalKind, pool string, at time.Time) fleet.Signal {
	return fleet.Signal{ID: id, Type: "Microsoft.ContainerService.NodePool" + string(kind)[len("Rolling"):],
		Source: protoID.ResourceID(), Subject: protoID.Name, Time: at, Cluster: protoID, Kind: kind, Pool: pool}
}

// indexKeys lists the RowKeys of one FleetIndex partition (or of every due
// partition when pk is IndexDue).
func indexKeys(t *testing.T, s *Store, pk string) []string {
	t.Helper()
	filter := "PartitionKey eq " + odataString(pk)
	if pk == IndexDue {
		filter = fmt.Sprintf("PartitionKey ge %s and PartitionKey lt %s", odataString(IndexDue+"~"), odataString(IndexDue+"~~"))
	}
	ents, err := s.query(context.Background(), s.index, filter)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.str("RowKey"))
	}
	sort.Strings(out)
	return out
}

// Entries a signal's change wrote before a commit that then failed are put
// back in line with the committed state: an open finding the state does not
// have and an operation it does not run disappear, and the cluster's entries
// are rewritten. A cluster whose first change failed is left with none.
func TestUndoIndexAfterFailedCommit(t *testing.T) {
	s := internalStore(t)
	ctx := context.Background()
	ghost := &fleet.Cluster{ID: protoID, Pools: map[string]*fleet.Pool{}}
	bogus := []indexOp{
		{pk: IndexClusters, rk: protoID.Key(), r: clusterIndexRow(ghost)},
		{pk: IndexInFlight, rk: inFlightKey(protoID, "system~x"), r: row{"Kind": KindInFlight, "UpgradeKey": "system~x"}},
		{pk: IndexFindings, rk: findingIndexKey(protoID, &fleet.Finding{Code: fleet.CodeUpgradeStalled, Target: "pool/system"}), r: row{"Kind": KindOpenIndex}},
	}
	if err := s.idx.apply(ctx, bogus); err != nil {
		t.Fatal(err)
	}
	s.undoIndex(ctx, protoID, bogus)
	for _, pk := range []string{IndexClusters, IndexInFlight, IndexFindings} {
		if keys := indexKeys(t, s, pk); len(keys) != 0 {
			t.Errorf("%s after undoing a cluster's failed first change: %v, want none", pk, keys)
		}
	}

	sig := protoSignal("a", fleet.KindRollingStarted, "system", time.Date(2026, 11, 2, 2, 0, 0, 0, time.UTC))
	if _, err := s.Update(ctx, protoID, &sig, func(c *fleet.Cluster) error { return fleet.Apply(c, sig) }); err != nil {
		t.Fatal(err)
	}
	want := indexKeys(t, s, IndexInFlight)
	if len(want) != 1 {
		t.Fatalf("in flight after a Started: %v, want 1 entry", want)
	}
	if err := s.idx.apply(ctx, bogus); err != nil {
		t.Fatal(err)
	}
	s.undoIndex(ctx, protoID, bogus)
	if got := indexKeys(t, s, IndexInFlight); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("in flight after undo: %v, want %v", got, want)
	}
	if got := indexKeys(t, s, IndexFindings); len(got) != 0 {
		t.Errorf("open findings after undo: %v, want none", got)
	}
	list, err := s.Clusters(ctx)
	if err != nil || len(list) != 1 || list[0].Pools != 1 || list[0].RollingPools != 1 {
		t.Errorf("cluster entry after undo: %+v %v, want the committed one (1 pool, rolling)", list, err)
	}
}

// A due entry means "evaluate no later than At": a deadline that moves
// later writes nothing (the entry filed comes due first), one that moves
// earlier writes a new entry, and a change committed once the deadline has
// come files the next one and removes the spent entry.
func TestDueEntryMeansNoLaterThan(t *testing.T) {
	s := internalStore(t)
	ctx := context.Background()
	base := time.Date(2026, 11, 2, 2, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	now := base
	s.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	sig := protoSignal("a", fleet.KindRollingStarted, "system", base)
	if _, err := s.Update(ctx, protoID, &sig, func(c *fleet.Cluster) error { return fleet.Apply(c, sig) }); err != nil {
		t.Fatal(err)
	}
	setNext := func(at time.Time) {
		t.Helper()
		if _, err := s.Update(ctx, protoID, nil, func(c *fleet.Cluster) error { c.NextEvaluation = at; return nil }); err != nil {
			t.Fatal(err)
		}
	}
	due := func() []string {
		t.Helper()
		var out []string
		for _, k := range indexKeys(t, s, IndexDue) {
			out = append(out, k[:len(fleet.TimeKeyLayout)])
		}
		return out
	}
	stamp := func(at time.Time) string { return at.UTC().Format(fleet.TimeKeyLayout) }
	t1, t2, t0 := base.Add(2*time.Hour), base.Add(5*time.Hour), base.Add(time.Hour)

	setNext(t1)
	if got := due(); fmt.Sprint(got) != fmt.Sprint([]string{stamp(t1)}) {
		t.Fatalf("due after a first deadline: %v, want [%s]", got, stamp(t1))
	}
	setNext(t2) // later: the entry at t1 stays, none is written
	if got := due(); fmt.Sprint(got) != fmt.Sprint([]string{stamp(t1)}) {
		t.Errorf("due after the deadline moved later: %v, want the entry at t1 only", got)
	}
	setNext(t0) // earlier: a new entry
	if got := due(); fmt.Sprint(got) != fmt.Sprint([]string{stamp(t0), stamp(t1)}) {
		t.Errorf("due after the deadline moved earlier: %v, want t0 and t1", got)
	}
	// The deadline comes; the evaluation then files the next one and the
	// spent entry goes. The entry at t1 stays for the sweep to find stale.
	mu.Lock()
	now = t0.Add(time.Minute)
	mu.Unlock()
	t3 := base.Add(3 * time.Hour)
	setNext(t3)
	if got := due(); fmt.Sprint(got) != fmt.Sprint([]string{stamp(t1), stamp(t3)}) {
		t.Errorf("due after the evaluation at the deadline: %v, want t1 (stale) and t3", got)
	}
	entries, err := s.Due(ctx, t1, 10)
	if err != nil || len(entries) != 1 || !entries[0].At.Equal(t1) {
		t.Errorf("Due at t1: %+v %v, want the stale entry at t1 (the sweep re-files it)", entries, err)
	}
}

// Two instances commit starts and ends of operations on one cluster at once,
// one of them with slow index writes, and no check read after a signal's
// index writes: the in-flight entries end exactly as the committed state has
// them.
func TestIndexConvergesTwoInstancesAtOnce(t *testing.T) {
	s1 := internalStore(t)
	s1.cache = newLRU(100)
	s2 := secondInstance(t, s1)
	// One instance's index writes are slow: they would land after the
	// other's if they were made after the commit and not checked.
	s1.idx.beforeFlush = func() { time.Sleep(time.Duration(50+rand.IntN(50)) * time.Millisecond) }
	ctx := context.Background()
	base := time.Date(2026, 11, 2, 2, 0, 0, 0, time.UTC)
	const n = 40
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		st, kind := s1, fleet.KindRollingStarted
		if i%2 == 1 {
			st, kind = s2, fleet.KindRollingSucceeded
		}
		// Pools 0–4 each start then succeed; pool 5 only starts: it stays in flight.
		pool := fmt.Sprintf("pool%d", (i/2)%5)
		if i == n-2 {
			pool = "pool5"
		}
		sig := protoSignal(fmt.Sprintf("c-%03d", i), kind, pool, base.Add(time.Duration(i)*time.Minute))
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := st.Update(ctx, protoID, &sig, func(c *fleet.Cluster) error { return fleet.Apply(c, sig) }); err != nil {
				t.Errorf("commit %s: %v", sig.ID, err)
			}
		}()
	}
	wg.Wait()
	c, err := s1.Cluster(ctx, protoID)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, u := range c.InFlight() {
		want = append(want, inFlightKey(protoID, u.Key))
	}
	sort.Strings(want)
	if got := indexKeys(t, s1, IndexInFlight); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("in-flight entries %v, want the state's %v", got, want)
	}
	if len(want) == 0 {
		t.Errorf("the state has no operation in flight; the test meant pool5 to be")
	}
}
