package state_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/upgradewatch/upgradewatch/internal/azuritetest"
	"github.com/upgradewatch/upgradewatch/internal/fleet"
	"github.com/upgradewatch/upgradewatch/internal/state"
)

var aks1 = fleet.ClusterID{SubscriptionID: "6f1c2a3b-4d5e-4f60-8a71-92b3c4d5e6f7", ResourceGroup: "rg-payments-prod", Name: "aks-payments-weu"}

func t0() time.Time { return time.Date(2026, 11, 2, 2, 0, 0, 0, time.UTC) }

func rolling(id string, kind fleet.SignalKind, pool string, at time.Time) fleet.Signal {
	return fleet.Signal{
		ID: id, Type: "Microsoft.ContainerService.NodePool" + string(kind)[len("Rolling"):],
		Source: aks1.ResourceID(), Subject: aks1.Name, Time: at, Schema: fleet.SchemaEventGrid,
		Cluster: aks1, Kind: kind, Pool: pool,
	}
}

// newStore returns a store on its own tables of the shared Azurite.
func newStore(t *testing.T) (*state.Store, *aztables.ServiceClient, string) {
	t.Helper()
	ep := azuritetest.Endpoint(t)
	svc := azuritetest.Service(t, ep)
	prefix := azuritetest.Prefix(t)
	s := open(t, svc, prefix)
	azuritetest.DropTables(t, svc, s.Tables()...)
	return s, svc, prefix
}

func open(t *testing.T, svc *aztables.ServiceClient, prefix string) *state.Store {
	t.Helper()
	s := state.New(svc, state.Options{TablePrefix: prefix, CacheSize: 100})
	t.Cleanup(s.Close)
	if err := s.EnsureTables(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s
}

func mustCommit(t *testing.T, s *state.Store, sig fleet.Signal, want state.Result) {
	t.Helper()
	out, err := commit(context.Background(), s, sig)
	if err != nil {
		t.Fatalf("commit %s: %v", sig.ID, err)
	}
	if out.Result != want {
		t.Fatalf("commit %s: got %s, want %s", sig.ID, out.Result, want)
	}
}

func TestCommitRollingLifecycle(t *testing.T) {
	s, _, _ := newStore(t)
	ctx := context.Background()
	mustCommit(t, s, rolling("a1", fleet.KindRollingStarted, "nodepool1", t0()), state.Committed)

	c, err := s.Cluster(ctx, aks1)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Pools["nodepool1"].RollingState; got != fleet.RollingActive {
		t.Fatalf("after Started: rolling state %q, want %q", got, fleet.RollingActive)
	}
	inflight, err := s.InFlight(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(inflight) != 1 || inflight[0].Pool != "nodepool1" || inflight[0].Cluster != aks1 {
		t.Fatalf("in flight after Started: %+v", inflight)
	}

	mustCommit(t, s, rolling("a2", fleet.KindRollingSucceeded, "nodepool1", t0().Add(40*time.Minute)), state.Committed)
	c, err = s.Cluster(ctx, aks1)
	if err != nil {
		t.Fatal(err)
	}
	p := c.Pools["nodepool1"]
	if p.RollingState != fleet.RollingSucceeded {
		t.Errorf("after Succeeded: rolling state %q", p.RollingState)
	}
	ups := c.RecentUpgrades(10)
	if len(ups) != 1 {
		t.Fatalf("got %d upgrades, want 1", len(ups))
	}
	u := ups[0]
	if u.Outcome != fleet.OutcomeSucceeded || !u.StartedAt.Equal(t0()) || !u.EndedAt.Equal(t0().Add(40*time.Minute)) || len(u.Signals) != 2 {
		t.Errorf("upgrade = %+v", u)
	}
	if inflight, _ = s.InFlight(ctx); len(inflight) != 0 {
		t.Errorf("in flight after Succeeded: %+v", inflight)
	}
	list, err := s.Clusters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].Name != aks1.Name || list[0].RollingPools != 0 {
		t.Errorf("clusters = %+v", list)
	}
}

func TestCommitDuplicateChangesNothing(t *testing.T) {
	s, svc, prefix := newStore(t)
	ctx := context.Background()
	sig := rolling("dup-1", fleet.KindRollingStarted, "nodepool1", t0())
	mustCommit(t, s, sig, state.Committed)
	mustCommit(t, s, sig, state.Duplicate)
	// A second instance, with a cold cache, sees it as a duplicate too.
	other := open(t, svc, prefix)
	mustCommit(t, other, sig, state.Duplicate)

	c, err := s.Cluster(ctx, aks1)
	if err != nil {
		t.Fatal(err)
	}
	if c.Signals != 1 {
		t.Errorf("signals = %d after a redelivery, want 1", c.Signals)
	}
}

func TestCommitOutOfOrderCompletesOperation(t *testing.T) {
	s, _, _ := newStore(t)
	ctx := context.Background()
	// Succeeded arrives before its Started.
	mustCommit(t, s, rolling("b2", fleet.KindRollingSucceeded, "userpool", t0().Add(time.Hour)), state.Committed)
	mustCommit(t, s, rolling("b1", fleet.KindRollingStarted, "userpool", t0()), state.Committed)
	c, err := s.Cluster(ctx, aks1)
	if err != nil {
		t.Fatal(err)
	}
	ups := c.RecentUpgrades(10)
	if len(ups) != 1 || ups[0].Outcome != fleet.OutcomeSucceeded || !ups[0].StartedAt.Equal(t0()) {
		t.Fatalf("upgrades = %+v, want one completed operation", ups)
	}
	if st := c.Pools["userpool"].RollingState; st != fleet.RollingSucceeded {
		t.Errorf("rolling state = %q, want Succeeded (not stuck Rolling)", st)
	}
	if inflight, _ := s.InFlight(ctx); len(inflight) != 0 {
		t.Errorf("in flight = %+v, want none", inflight)
	}
}

// Two instances (separate stores, separate caches) commit to one cluster at
// once: every signal lands exactly once.
func TestCommitConcurrentInstancesLoseNothing(t *testing.T) {
	s1, svc, prefix := newStore(t)
	s2 := open(t, svc, prefix)
	const n = 40
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		st := s1
		if i%2 == 1 {
			st = s2
		}
		kind := fleet.KindRollingStarted
		if i%2 == 1 {
			kind = fleet.KindRollingSucceeded
		}
		sig := rolling(fmt.Sprintf("c-%03d", i), kind, fmt.Sprintf("pool%d", i%4), t0().Add(time.Duration(i)*time.Minute))
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := commit(context.Background(), st, sig); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("commit: %v", err)
	}
	c, err := s1.Cluster(context.Background(), aks1)
	if err != nil {
		t.Fatal(err)
	}
	if c.Signals != n {
		t.Errorf("signals = %d, want %d", c.Signals, n)
	}
	refs := 0
	for _, u := range c.Upgrades {
		refs += len(u.Signals)
	}
	if refs != n {
		t.Errorf("upgrades hold %d signals, want %d", refs, n)
	}
}

// A stale cache (another instance committed since) costs a reload, not a lost update.
func TestCommitStaleCacheReloads(t *testing.T) {
	s1, svc, prefix := newStore(t)
	s2 := open(t, svc, prefix)
	mustCommit(t, s1, rolling("d1", fleet.KindRollingStarted, "nodepool1", t0()), state.Committed)
	mustCommit(t, s2, rolling("d2", fleet.KindRollingSucceeded, "nodepool1", t0().Add(time.Hour)), state.Committed)
	mustCommit(t, s1, rolling("d3", fleet.KindRollingStarted, "nodepool1", t0().Add(2*time.Hour)), state.Committed)
	c, err := s2.Cluster(context.Background(), aks1)
	if err != nil {
		t.Fatal(err)
	}
	if c.Signals != 3 || len(c.Upgrades) != 2 || c.Pools["nodepool1"].RollingState != fleet.RollingActive {
		t.Errorf("signals=%d upgrades=%d state=%s, want 3, 2, Rolling", c.Signals, len(c.Upgrades), c.Pools["nodepool1"].RollingState)
	}
}

// The index is repaired by the redelivery of an event whose first delivery
// committed but could not update the index.
func TestDuplicateRepairsIndex(t *testing.T) {
	s, svc, prefix := newStore(t)
	ctx := context.Background()
	sig := rolling("e1", fleet.KindRollingStarted, "nodepool1", t0())
	mustCommit(t, s, sig, state.Committed)
	if err := s.FlushIndex(ctx); err != nil {
		t.Fatal(err)
	}
	idx := svc.NewClient(prefix + state.TableIndex)
	if _, err := idx.DeleteEntity(ctx, state.IndexInFlight, aks1.Key()+"~"+firstUpgradeKey(t, s), nil); err != nil {
		t.Fatalf("simulate lost index write: %v", err)
	}
	if _, err := idx.DeleteEntity(ctx, state.IndexClusters, aks1.Key(), nil); err != nil {
		t.Fatalf("simulate lost index write: %v", err)
	}
	mustCommit(t, s, sig, state.Duplicate)
	inflight, err := s.InFlight(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(inflight) != 1 {
		t.Errorf("in flight after repair = %+v, want 1 entry", inflight)
	}
	if list, _ := s.Clusters(ctx); len(list) != 1 {
		t.Errorf("clusters after repair = %+v, want 1", list)
	}
}

func firstUpgradeKey(t *testing.T, s *state.Store) string {
	c, err := s.Cluster(context.Background(), aks1)
	if err != nil {
		t.Fatal(err)
	}
	for k := range c.Upgrades {
		return k
	}
	t.Fatal("no upgrade")
	return ""
}

func TestCommitRejectsInvalidSignal(t *testing.T) {
	s, _, _ := newStore(t)
	sig := rolling("f1", fleet.KindRollingStarted, "bad'pool", t0())
	_, err := commit(context.Background(), s, sig)
	if !errors.Is(err, state.ErrRejected) {
		t.Fatalf("got %v, want ErrRejected", err)
	}
	if _, err := s.Cluster(context.Background(), aks1); !errors.Is(err, state.ErrNotFound) {
		t.Errorf("cluster after rejected signal: %v, want ErrNotFound", err)
	}
}

func TestRecordRejectionIdempotent(t *testing.T) {
	s, _, _ := newStore(t)
	ctx := context.Background()
	at := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	r := state.Rejection{Disposition: state.DispositionRejected, Reason: "malformed JSON", Function: "AksEvents",
		InvocationID: "inv-1", Body: []byte(`{"id": "x", "eventType": `), ReceivedAt: at}
	for i := 0; i < 2; i++ {
		if err := s.RecordRejection(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Rejections(ctx, at)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Reason != "malformed JSON" || got[0].Body != string(r.Body) || !got[0].ReceivedAt.Equal(at) {
		t.Fatalf("rejections = %+v", got)
	}
}

func TestStorageDownIsUnavailable(t *testing.T) {
	svc := azuritetest.Service(t, "http://127.0.0.1:1/devstoreaccount1")
	s := state.New(svc, state.Options{TablePrefix: "down"})
	defer s.Close()
	_, err := commit(context.Background(), s, rolling("g1", fleet.KindRollingStarted, "nodepool1", t0()))
	if !errors.Is(err, state.ErrUnavailable) {
		t.Fatalf("got %v, want ErrUnavailable", err)
	}
}
