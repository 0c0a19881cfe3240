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

// indexKeys lists the RowKeys of the live entries (tombstones left out) of
// one FleetIndex partition (or of every due partition when pk is IndexDue),
// once s has written what it queued.
func indexKeys(t *testing.T, s *Store, pk string) []string {
	t.Helper()
	if err := s.idx.sync(context.Background()); err != nil {
		t.Fatal(err)
	}
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
		if !e.bool("Ended") {
			out = append(out, e.str("RowKey"))
		}
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
	// The signal filed a repair entry (its in-flight entry was written
	// behind the commit); this test is about the deadline's entries.
	dropDueEntries(t, s)
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

// dropDueEntries removes every due entry.
func dropDueEntries(t *testing.T, s *Store) {
	t.Helper()
	ctx := context.Background()
	ents, err := s.query(ctx, s.index, fmt.Sprintf("PartitionKey ge %s and PartitionKey lt %s", odataString(IndexDue+"~"), odataString(IndexDue+"~~")))
	if err != nil {
		t.Fatal(err)
	}
	var ops []indexOp
	for _, e := range ents {
		ops = append(ops, indexOp{pk: e.str("PartitionKey"), rk: e.str("RowKey")})
	}
	if err := s.idx.apply(ctx, ops); err != nil {
		t.Fatal(err)
	}
}

// In-flight and open-finding entries are written behind the commit and may
// land in any order: an entry's add, merge and tombstone give the same
// entries whichever lands first.
func TestCommutingEntriesLandInAnyOrder(t *testing.T) {
	s := internalStore(t)
	ctx := context.Background()
	at := time.Date(2026, 11, 2, 2, 0, 0, 0, time.UTC)
	c := &fleet.Cluster{ID: protoID, Pools: map[string]*fleet.Pool{}}
	f := &fleet.Finding{Code: fleet.CodeUpgradeStalled, Target: "pool/system", Severity: fleet.SeverityWarning,
		Status: fleet.FindingOpen, Summary: "pool system has been rolling for 3h", OpenedAt: at, Opened: 1}
	escalated := *f
	escalated.Severity = fleet.SeverityError
	fk := findingIndexKey(protoID, f)
	u := &fleet.Upgrade{Key: "system~20261102T020000.0000000Z~8b5cc4df", Pool: "system", StartedAt: at}
	uk := inFlightKey(protoID, u.Key)
	add := []indexOp{
		{pk: IndexInFlight, rk: uk, r: inFlightRow(c, u), mode: modeAdd},
		{pk: IndexFindings, rk: fk, r: findingIndexRow(c, f), mode: modeAdd},
	}
	change := []indexOp{{pk: IndexFindings, rk: fk, r: findingIndexRow(c, &escalated), mode: modeMerge}}
	end := []indexOp{
		{pk: IndexInFlight, rk: uk, r: ended(inFlightRow(c, u), at.Add(time.Hour))},
		{pk: IndexFindings, rk: fk, r: ended(findingIndexRow(c, &escalated), at.Add(time.Hour))},
	}
	orders := map[string][][]indexOp{
		"in order":            {add, change, end},
		"end first":           {end, change, add},
		"change, end, add":    {change, end, add},
		"add, end, change":    {add, end, change},
		"all in one flush":    {append(append(append([]indexOp{}, add...), change...), end...)},
		"add+change together": {append(append([]indexOp{}, add...), change...), end},
	}
	for name, order := range orders {
		t.Run(name, func(t *testing.T) {
			for _, pk := range []string{IndexInFlight, IndexFindings} {
				dropPartition(t, s, pk)
			}
			for _, ops := range order {
				if err := s.idx.apply(ctx, ops); err != nil {
					t.Fatal(err)
				}
			}
			if got := indexKeys(t, s, IndexInFlight); len(got) != 0 {
				t.Errorf("live in-flight entries %v, want none (the operation ended)", got)
			}
			if got := indexKeys(t, s, IndexFindings); len(got) != 0 {
				t.Errorf("live finding entries %v, want none (the finding resolved)", got)
			}
		})
	}
	// Without the end, the add and the change give the escalated entry in
	// either order.
	for name, order := range map[string][][]indexOp{"add, change": {add, change}, "change, add": {change, add}} {
		t.Run(name, func(t *testing.T) {
			dropPartition(t, s, IndexFindings)
			for _, ops := range order {
				if err := s.idx.apply(ctx, ops); err != nil {
					t.Fatal(err)
				}
			}
			list, err := s.OpenFindings(ctx)
			if err != nil || len(list) != 1 {
				t.Fatalf("open findings %+v %v, want 1", list, err)
			}
			// A change that lands before its add is lost (merge of an absent
			// entry); the add carries the state of its own commit. The
			// repair entry that commit filed rewrites it (see the next test).
			if name == "add, change" && list[0].Finding.Severity != fleet.SeverityError {
				t.Errorf("severity %s, want Error", list[0].Finding.Severity)
			}
		})
	}
}

// Entries written behind a commit that never land (the process died first)
// are repaired: the change filed a due entry no later than two hours out, once
// per burst, and the repair that entry leads to rewrites the entries.
func TestLostBehindWritesAreRepaired(t *testing.T) {
	s := internalStore(t)
	ctx := context.Background()
	base := time.Date(2026, 11, 2, 2, 0, 0, 0, time.UTC)
	s.now = func() time.Time { return base }
	s.idx.loseBehind.Store(true)
	for i, pool := range []string{"system", "user"} {
		sig := protoSignal(fmt.Sprintf("s%d", i), fleet.KindRollingStarted, pool, base.Add(-time.Duration(i)*time.Minute))
		if _, err := s.Update(ctx, protoID, &sig, func(c *fleet.Cluster) error { return fleet.Apply(c, sig) }); err != nil {
			t.Fatal(err)
		}
	}
	if got := indexKeys(t, s, IndexInFlight); len(got) != 0 {
		t.Fatalf("in-flight entries %v: the writes behind the commits were to be lost", got)
	}
	s.idx.loseBehind.Store(false)
	if due, err := s.Due(ctx, base.Add(2*time.Hour-time.Second), 10); err != nil || len(due) != 0 {
		t.Fatalf("due before the repair time: %+v %v, want none", due, err)
	}
	due, err := s.Due(ctx, base.Add(2*time.Hour), 10)
	if err != nil || len(due) != 1 || due[0].Cluster.Key() != protoID.Key() {
		t.Fatalf("due at the repair time: %+v %v, want the cluster once (two changes, one entry)", due, err)
	}
	if err := s.RepairIndex(ctx, protoID); err != nil {
		t.Fatal(err)
	}
	if got := indexKeys(t, s, IndexInFlight); len(got) != 2 {
		t.Errorf("in-flight entries after the repair: %v, want both operations", got)
	}
}

// PruneIndex removes tombstones an hour after they ended, and nothing else.
func TestPruneIndexRemovesOldTombstones(t *testing.T) {
	s := internalStore(t)
	ctx := context.Background()
	now := time.Date(2026, 11, 2, 6, 0, 0, 0, time.UTC)
	c := &fleet.Cluster{ID: protoID, Pools: map[string]*fleet.Pool{}}
	row := func(key string) row {
		return inFlightRow(c, &fleet.Upgrade{Key: key, Pool: "system", StartedAt: now.Add(-3 * time.Hour)})
	}
	ops := []indexOp{
		{pk: IndexInFlight, rk: inFlightKey(protoID, "old"), r: ended(row("old"), now.Add(-61*time.Minute))},
		{pk: IndexInFlight, rk: inFlightKey(protoID, "recent"), r: ended(row("recent"), now.Add(-59*time.Minute))},
		{pk: IndexInFlight, rk: inFlightKey(protoID, "live"), r: row("live")},
	}
	if err := s.idx.apply(ctx, ops); err != nil {
		t.Fatal(err)
	}
	n, err := s.PruneIndex(ctx, now)
	if err != nil || n != 1 {
		t.Fatalf("pruned %d %v, want 1", n, err)
	}
	ents, err := s.query(ctx, s.index, "PartitionKey eq "+odataString(IndexInFlight))
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, e := range ents {
		keys = append(keys, strings.TrimPrefix(e.str("RowKey"), protoID.Key()+"~"))
	}
	sort.Strings(keys)
	if fmt.Sprint(keys) != "[live recent]" {
		t.Errorf("entries left %v, want [live recent]", keys)
	}
}

// dropPartition removes every entry of one index partition.
func dropPartition(t *testing.T, s *Store, pk string) {
	t.Helper()
	ctx := context.Background()
	ents, err := s.query(ctx, s.index, "PartitionKey eq "+odataString(pk))
	if err != nil {
		t.Fatal(err)
	}
	var ops []indexOp
	for _, e := range ents {
		ops = append(ops, indexOp{pk: pk, rk: e.str("RowKey")})
	}
	if err := s.idx.apply(ctx, ops); err != nil {
		t.Fatal(err)
	}
}

// Finding tombstones are kept a day and an hour (the digest's "resolved in
// the last 24 h" reads them), and ResolvedFindings lists those that ended
// since a time, with their end as the resolution time.
func TestFindingTombstonesServeResolvedFindings(t *testing.T) {
	s := internalStore(t)
	ctx := context.Background()
	now := time.Date(2026, 11, 3, 8, 0, 0, 0, time.UTC)
	c := &fleet.Cluster{ID: protoID, Pools: map[string]*fleet.Pool{}}
	finding := func(target string, opened int) *fleet.Finding {
		return &fleet.Finding{Code: fleet.CodeUpgradeFailed, Target: target, Severity: fleet.SeverityError, Status: fleet.FindingOpen,
			Summary: "the last upgrade of " + target + " failed", OpenedAt: now.Add(-48 * time.Hour), Opened: opened}
	}
	old, recent, open := finding("pool/old", 1), finding("pool/recent", 1), finding("pool/open", 1)
	ops := []indexOp{
		{pk: IndexFindings, rk: findingIndexKey(protoID, old), r: ended(findingIndexRow(c, old), now.Add(-26*time.Hour))},
		{pk: IndexFindings, rk: findingIndexKey(protoID, recent), r: ended(findingIndexRow(c, recent), now.Add(-23*time.Hour))},
		{pk: IndexFindings, rk: findingIndexKey(protoID, open), r: findingIndexRow(c, open), mode: modeAdd},
	}
	if err := s.idx.apply(ctx, ops); err != nil {
		t.Fatal(err)
	}
	got, err := s.ResolvedFindings(ctx, now.Add(-24*time.Hour))
	if err != nil || len(got) != 1 || got[0].Finding.Target != "pool/recent" || !got[0].Finding.ResolvedAt.Equal(now.Add(-23*time.Hour)) {
		t.Fatalf("resolved in the last 24 h: %+v %v, want pool/recent resolved 23 h ago", got, err)
	}
	n, err := s.PruneIndex(ctx, now)
	if err != nil || n != 1 {
		t.Fatalf("pruned %d %v, want 1 (the finding tombstone past 25 h)", n, err)
	}
	if got, _ := s.ResolvedFindings(ctx, now.Add(-48*time.Hour)); len(got) != 1 {
		t.Errorf("resolved after pruning: %+v, want the recent one only", got)
	}
	if list, _ := s.OpenFindings(ctx); len(list) != 1 || list[0].Finding.Target != "pool/open" {
		t.Errorf("open findings %+v, want pool/open only", list)
	}
}
