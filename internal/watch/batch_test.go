package watch_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/upgradewatch/upgradewatch/internal/azuritetest"
	"github.com/upgradewatch/upgradewatch/internal/fleet"
	"github.com/upgradewatch/upgradewatch/internal/state"
	"github.com/upgradewatch/upgradewatch/internal/watch"
)

// batchFleet is three clusters of one subscription, as an Event Grid system
// topic on it delivers them.
var batchFleet = []fleet.ClusterID{
	{SubscriptionID: "6f1c2a3b-4d5e-4f60-8a71-92b3c4d5e6f7", ResourceGroup: "rg-payments-prod", Name: "aks-payments-weu"},
	{SubscriptionID: "6f1c2a3b-4d5e-4f60-8a71-92b3c4d5e6f7", ResourceGroup: "rg-search-prod", Name: "aks-search-eus2"},
	{SubscriptionID: "6f1c2a3b-4d5e-4f60-8a71-92b3c4d5e6f7", ResourceGroup: "rg-fleet-west", Name: "aks-fleet-wus3"},
}

// batchEvents is n rolling events spread over the clusters round robin: each
// pool starts, then succeeds, ten seconds apart, ids as Event Grid sets them.
func batchEvents(n int) []fleet.Signal {
	kinds := []fleet.SignalKind{fleet.KindRollingStarted, fleet.KindRollingSucceeded}
	types := []string{"Microsoft.ContainerService.NodePoolRollingStarted", "Microsoft.ContainerService.NodePoolRollingSucceeded"}
	out := make([]fleet.Signal, n)
	for i := range out {
		id := batchFleet[i%len(batchFleet)]
		step := i / len(batchFleet)
		out[i] = fleet.Signal{ID: fmt.Sprintf("4d2e9f1a-7b3c-4e5d-8f6a-%012d", i), Type: types[step%2], Source: id.ResourceID(),
			Subject: id.Name, Time: now.Add(-2*time.Hour + time.Duration(i)*10*time.Second), Schema: fleet.SchemaEventGrid,
			Cluster: id, Kind: kinds[step%2], Pool: fmt.Sprintf("pool%d", step/2%4)}
	}
	return out
}

// batchApp is an App over a store on tables of its own whose storage
// requests are counted; other instances share its tables through open.
type batchApp struct {
	app   *watch.App
	store *state.Store
	reqs  *atomic.Int64
	runs  *atomic.Int64
	open  func() *watch.App
	// panicFor names a cluster whose rules panic (a bug), when set.
	panicFor *atomic.Pointer[string]
}

func newBatchApp(t *testing.T) batchApp {
	t.Helper()
	prefix := azuritetest.Prefix(t)
	b := batchApp{reqs: new(atomic.Int64), runs: new(atomic.Int64), panicFor: new(atomic.Pointer[string])}
	mk := func(counter *atomic.Int64) (*watch.App, *state.Store) {
		svc, err := state.NewServiceClient(state.Connection{Name: "test", ConnectionString: azuritetest.ConnectionString(azuritetest.Endpoint(t))},
			state.ClientOptions{TryTimeout: 5 * time.Second, MaxRetries: 1, Counter: counter})
		if err != nil {
			t.Fatal(err)
		}
		s := state.New(svc, state.Options{TablePrefix: prefix, CacheSize: 100})
		t.Cleanup(s.Close)
		app := watch.New(s, watch.Options{Now: func() time.Time { return now },
			Rules: func(c *fleet.Cluster, at time.Time) []fleet.Transition {
				b.runs.Add(1)
				if name := b.panicFor.Load(); name != nil && c.ID.Name == *name {
					panic("rule bug on " + c.ID.Name)
				}
				return nil
			}})
		return app, s
	}
	b.app, b.store = mk(b.reqs)
	azuritetest.DropTables(t, azuritetest.Service(t, azuritetest.Endpoint(t)), b.store.Tables()...)
	if err := b.store.EnsureTables(context.Background()); err != nil {
		t.Fatal(err)
	}
	b.open = func() *watch.App { app, _ := mk(nil); return app }
	return b
}

// tally counts the results of a batch, failing on any error.
func tally(t *testing.T, outs []watch.Outcome, errs []error) map[watch.Result]int {
	t.Helper()
	n := map[watch.Result]int{}
	for i, o := range outs {
		if errs[i] != nil {
			t.Fatalf("event %d: %v", i, errs[i])
		}
		n[o.Result]++
	}
	return n
}

// perCluster counts signals by cluster.
func perCluster(sigs []fleet.Signal) map[fleet.ClusterID]int64 {
	n := map[fleet.ClusterID]int64{}
	for _, s := range sigs {
		n[s.Cluster]++
	}
	return n
}

// checkSignals asserts each cluster's state counts exactly the signals
// given: each event once.
func checkSignals(t *testing.T, b batchApp, sigs []fleet.Signal) {
	t.Helper()
	for id, want := range perCluster(sigs) {
		c, err := b.store.Cluster(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if c.Signals != want {
			t.Errorf("%s: Signals = %d, want %d (each event once)", id.Name, c.Signals, want)
		}
	}
}

// A batch of 10 events over 3 clusters commits in 3 guarded transactions,
// one per cluster, with the rules run once per cluster and fewer storage
// requests than its events one by one; its redelivery is all duplicates and writes nothing.
func TestIngestBatchOneChangePerCluster(t *testing.T) {
	b := newBatchApp(t)
	ctx := context.Background()
	sigs := batchEvents(10)

	before := b.reqs.Load()
	outs, errs := b.app.IngestBatch(ctx, sigs)
	reqs := b.reqs.Load() - before
	if n := tally(t, outs, errs); n[watch.Committed] != 10 {
		t.Fatalf("results %v, want 10 committed", n)
	}
	for i, o := range outs {
		if o.Seq != 1 {
			t.Errorf("event %d committed at seq %d, want 1: one guarded transaction per cluster", i, o.Seq)
		}
	}
	if b.runs.Load() != 3 {
		t.Errorf("rules ran %d times, want 3 (once per cluster)", b.runs.Load())
	}
	// The same events delivered one by one, to tables of their own.
	single := newBatchApp(t)
	for _, sig := range sigs {
		if _, err := single.app.Ingest(ctx, sig); err != nil {
			t.Fatal(err)
		}
	}
	if one := single.reqs.Load(); reqs >= one {
		t.Errorf("%d storage requests for the batch, %d for its events one by one: want fewer", reqs, one)
	}
	t.Logf("10 events over 3 clusters: %d storage requests as a batch, %d one by one", reqs, single.reqs.Load())
	checkSignals(t, b, sigs)

	outs, errs = b.app.IngestBatch(ctx, sigs)
	if n := tally(t, outs, errs); n[watch.Duplicate] != 10 {
		t.Fatalf("redelivery: %v, want 10 duplicates", n)
	}
	for i, o := range outs {
		if o.Seq != 1 {
			t.Errorf("redelivered event %d: seq %d, want 1 (nothing written)", i, o.Seq)
		}
	}
	checkSignals(t, b, sigs)
}

// A batch overlapping one committed before (its first half) commits the
// rest once, in one more guarded transaction per cluster it touches; the
// same event twice in one batch counts once.
func TestIngestBatchOverlap(t *testing.T) {
	b := newBatchApp(t)
	ctx := context.Background()
	sigs := batchEvents(10)
	if outs, errs := b.app.IngestBatch(ctx, sigs[:5]); tally(t, outs, errs)[watch.Committed] != 5 {
		t.Fatal("first half not committed")
	}
	again := append(append([]fleet.Signal{}, sigs...), sigs[7])
	outs, errs := b.app.IngestBatch(ctx, again)
	n := tally(t, outs, errs)
	if n[watch.Committed] != 5 || n[watch.Duplicate] != 6 {
		t.Fatalf("overlapping batch: %v, want 5 committed and 6 duplicates", n)
	}
	for i, o := range outs[:10] {
		want := watch.Committed
		if i < 5 {
			want = watch.Duplicate
		}
		if o.Result != want || o.Seq != 2 {
			t.Errorf("event %d: %s at seq %d, want %s at seq 2", i, o.Result, o.Seq, want)
		}
	}
	if outs[10].Result != watch.Duplicate {
		t.Errorf("the repeated event: %s, want duplicate", outs[10].Result)
	}
	checkSignals(t, b, sigs)
}

// A signal the transition refuses and one dated ahead of its receipt are
// rejected on their own; the others of their cluster commit, and the refused
// one's mark is not written (its redelivery is refused again, not a
// duplicate).
func TestIngestBatchRejectsOnlyTheBadSignal(t *testing.T) {
	b := newBatchApp(t)
	ctx := context.Background()
	sigs := batchEvents(6)
	sigs[1].Pool = "pool with spaces"
	sigs[4].Time = now.Add(time.Hour)
	outs, errs := b.app.IngestBatch(ctx, sigs)
	for i := range sigs {
		bad := i == 1 || i == 4
		switch {
		case bad && !errors.Is(errs[i], fleet.ErrRejected):
			t.Errorf("event %d: %v, want ErrRejected", i, errs[i])
		case !bad && (errs[i] != nil || outs[i].Result != watch.Committed):
			t.Errorf("event %d: %s %v, want committed", i, outs[i].Result, errs[i])
		}
	}
	checkSignals(t, b, []fleet.Signal{sigs[0], sigs[2], sigs[3], sigs[5]})
	outs, errs = b.app.IngestBatch(ctx, sigs[1:2])
	if !errors.Is(errs[0], fleet.ErrRejected) || outs[0].Result == watch.Duplicate {
		t.Errorf("redelivered refused event: %s %v, want rejected again", outs[0].Result, errs[0])
	}
}

// A panic while committing a cluster's signals (a bug, the same at every
// delivery) would end the process from IngestBatch's worker goroutine: it
// refuses that cluster's signals instead, each tried on its own, writes
// nothing for them, and the other clusters commit.
func TestIngestBatchPanicRefusesOnlyItsCluster(t *testing.T) {
	b := newBatchApp(t)
	bad := batchFleet[1].Name
	b.panicFor.Store(&bad)
	sigs := batchEvents(6)
	outs, errs := b.app.IngestBatch(context.Background(), sigs)
	var good []fleet.Signal
	for i, sig := range sigs {
		switch {
		case sig.Cluster.Name == bad && (!errors.Is(errs[i], fleet.ErrRejected) || !strings.Contains(errs[i].Error(), "panic: rule bug")):
			t.Errorf("event %d on the panicking cluster: %s %v, want ErrRejected naming the panic", i, outs[i].Result, errs[i])
		case sig.Cluster.Name != bad && (errs[i] != nil || outs[i].Result != watch.Committed || outs[i].Seq != 1):
			t.Errorf("event %d: %s at seq %d %v, want committed at seq 1", i, outs[i].Result, outs[i].Seq, errs[i])
		case sig.Cluster.Name != bad:
			good = append(good, sig)
		}
	}
	checkSignals(t, b, good)
	if _, err := b.store.Cluster(context.Background(), batchFleet[1]); !errors.Is(err, fleet.ErrNotFound) {
		t.Errorf("panicking cluster: %v, want nothing written (ErrNotFound)", err)
	}
}

// More signals of one cluster than one transaction's audit rows hold commit
// in a few guarded changes, each still once.
func TestIngestBatchBeyondOneTransaction(t *testing.T) {
	b := newBatchApp(t)
	ctx := context.Background()
	sigs := batchEvents(300)[:0]
	for _, s := range batchEvents(300) {
		if s.Cluster == batchFleet[0] {
			sigs = append(sigs, s)
		}
	}
	outs, errs := b.app.IngestBatch(ctx, sigs)
	if n := tally(t, outs, errs); n[watch.Committed] != len(sigs) {
		t.Fatalf("%v, want %d committed", n, len(sigs))
	}
	if seq := outs[len(outs)-1].Seq; seq < 2 || seq > 6 {
		t.Errorf("%d signals took %d guarded transactions, want 2 to 6", len(sigs), seq)
	}
	checkSignals(t, b, sigs)
	if outs, errs := b.app.IngestBatch(ctx, sigs); tally(t, outs, errs)[watch.Duplicate] != len(sigs) {
		t.Fatal("redelivery: not all duplicates")
	}
}

// Two instances delivering overlapping batches at the same time (Event Grid
// retries to another instance while the first is still committing) commit
// every event exactly once.
func TestIngestBatchConcurrentInstances(t *testing.T) {
	b := newBatchApp(t)
	ctx := context.Background()
	sigs := batchEvents(24)
	deliveries := [][]fleet.Signal{sigs[:14], sigs[8:], sigs[4:20], sigs}
	apps := []*watch.App{b.app, b.open()}
	var committed atomic.Int64
	var wg sync.WaitGroup
	for round := range 2 {
		for i, d := range deliveries {
			wg.Add(1)
			go func() {
				defer wg.Done()
				outs, errs := apps[(i+round)%2].IngestBatch(ctx, d)
				for j, o := range outs {
					if errs[j] != nil {
						t.Errorf("delivery %d event %d: %v", i, j, errs[j])
					}
					if o.Result == watch.Committed {
						committed.Add(1)
					}
				}
			}()
		}
	}
	wg.Wait()
	if committed.Load() != int64(len(sigs)) {
		t.Errorf("%d commits for %d events, want each once", committed.Load(), len(sigs))
	}
	checkSignals(t, b, sigs)
}
