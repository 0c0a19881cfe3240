package state

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
)

// internalService is a client of the Azurite at ep.
func internalService(t *testing.T, ep string) *aztables.ServiceClient {
	t.Helper()
	svc, err := NewServiceClient(Connection{Name: "test", ConnectionString: strings.Replace(AzuriteConnectionString,
		"http://127.0.0.1:10002/devstoreaccount1", ep, 1)}, ClientOptions{TryTimeout: 5 * time.Second, MaxRetries: 1})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// internalStore opens a store on tables of its own on the shared Azurite
// (internal/azuritetest imports this package, so it cannot be used here).
func internalStore(t *testing.T) *Store {
	t.Helper()
	ep := os.Getenv("AZURITE_TABLE_ENDPOINT")
	if ep == "" {
		ep = "http://127.0.0.1:10002/devstoreaccount1"
	}
	u, err := url.Parse(ep)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.DialTimeout("tcp", u.Host, 2*time.Second)
	if err != nil {
		if os.Getenv("CI") == "true" || os.Getenv("REQUIRE_AZURITE") == "1" {
			t.Fatalf("Azurite is required but %s is unreachable: %v", u.Host, err)
		}
		t.Skipf("Azurite not reachable at %s: %v", u.Host, err)
	}
	_ = conn.Close()
	svc := internalService(t, ep)
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	s := New(svc, Options{TablePrefix: "t" + hex.EncodeToString(b)})
	t.Cleanup(func() {
		s.Close()
		for _, n := range s.Tables() {
			_, _ = svc.DeleteTable(context.Background(), n, nil)
		}
	})
	if err := s.EnsureTables(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s
}

// A writer that saw a cluster's partition empty, and commits after another
// writer created it and moved it past seq~2 (seq~1 is gone by then), fails
// its guard on seq~0 instead of committing on its empty view: without it,
// "add seq~1" would pass and the stale commit would overwrite the state.
func TestFirstCommitGuardHoldsAfterPartitionMovedOn(t *testing.T) {
	s := internalStore(t)
	ctx := context.Background()
	id := fleet.ClusterID{SubscriptionID: "6f1c2a3b-4d5e-4f60-8a71-92b3c4d5e6f7", ResourceGroup: "rg-payments-prod", Name: "aks-payments-weu"}
	at := time.Date(2026, 11, 2, 2, 0, 0, 0, time.UTC)
	signal := func(n string, kind fleet.SignalKind) fleet.Signal {
		return fleet.Signal{ID: n, Type: "Microsoft.ContainerService.NodePool" + string(kind)[len("Rolling"):], Source: id.ResourceID(),
			Time: at, Cluster: id, Kind: kind, Pool: "system"}
	}
	stale, err := s.load(ctx, id) // the view of a writer that is about to create the partition
	if err != nil || stale.seq != 0 {
		t.Fatalf("empty partition: seq %d, %v", stale.seq, err)
	}
	for _, sig := range []fleet.Signal{signal("a", fleet.KindRollingStarted), signal("b", fleet.KindRollingSucceeded)} {
		if _, err := s.Update(ctx, id, &sig, func(c *fleet.Cluster) error { return fleet.Apply(c, sig) }); err != nil {
			t.Fatal(err)
		}
	}
	late := signal("c", fleet.KindRollingStarted)
	next := stale.cluster.Clone()
	if err := fleet.Apply(next, late); err != nil {
		t.Fatal(err)
	}
	chunks, _, err := s.plan(id.Key(), stale, rowsOf(next), nil, &late)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.submit(ctx, id.Key(), 0, chunks); err == nil || classify(err) != classConflict {
		t.Fatalf("commit on the stale empty view: %v, want a conflict", err)
	}
	c, err := s.Cluster(ctx, id)
	if err != nil || c.Signals != 2 {
		t.Fatalf("state after the stale commit: Signals %v (%v), want the 2 committed", c, err)
	}
}
