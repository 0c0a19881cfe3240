package watch_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/upgradewatch/upgradewatch/internal/azuritetest"
	"github.com/upgradewatch/upgradewatch/internal/fleet"
	"github.com/upgradewatch/upgradewatch/internal/state"
	"github.com/upgradewatch/upgradewatch/internal/watch"
)

var aks = fleet.ClusterID{SubscriptionID: "6f1c2a3b-4d5e-4f60-8a71-92b3c4d5e6f7", ResourceGroup: "rg-payments-prod", Name: "aks-payments-weu"}

var now = time.Date(2026, 11, 23, 3, 0, 0, 0, time.UTC)

// newApp is the application layer over a store on tables of its own, with
// rules that count their runs.
func newApp(t *testing.T, runs *atomic.Int64) (*watch.App, *state.Store) {
	t.Helper()
	svc := azuritetest.Service(t, azuritetest.Endpoint(t))
	s := state.New(svc, state.Options{TablePrefix: azuritetest.Prefix(t), CacheSize: 100})
	t.Cleanup(s.Close)
	azuritetest.DropTables(t, svc, s.Tables()...)
	if err := s.EnsureTables(context.Background()); err != nil {
		t.Fatal(err)
	}
	app := watch.New(s, watch.Options{Now: func() time.Time { return now },
		Rules: func(c *fleet.Cluster, at time.Time) []fleet.Transition { runs.Add(1); return nil }})
	return app, s
}

func started(id string, at time.Time) fleet.Signal {
	return fleet.Signal{ID: id, Type: "Microsoft.ContainerService.NodePoolRollingStarted", Source: aks.ResourceID(),
		Subject: aks.Name, Time: at, Schema: fleet.SchemaEventGrid, Cluster: aks, Kind: fleet.KindRollingStarted, Pool: "system"}
}

// Ingest commits a signal once, with the rules run on the change, answers its
// redelivery Duplicate, and refuses for good a signal dated after its receipt
// without writing anything.
func TestIngest(t *testing.T) {
	var runs atomic.Int64
	app, _ := newApp(t, &runs)
	ctx := context.Background()

	if _, err := app.Ingest(ctx, started("future", now.Add(time.Hour))); !errors.Is(err, fleet.ErrRejected) {
		t.Fatalf("signal dated an hour ahead: %v, want ErrRejected", err)
	}
	if _, err := app.Cluster(ctx, aks); !errors.Is(err, fleet.ErrNotFound) {
		t.Fatalf("the refused signal wrote state: %v", err)
	}
	out, err := app.Ingest(ctx, started("e1", now.Add(-time.Minute)))
	if err != nil || out.Result != watch.Committed || out.Seq != 1 {
		t.Fatalf("first delivery: %+v %v, want committed at seq 1", out, err)
	}
	if runs.Load() == 0 {
		t.Error("the rules did not run on the commit")
	}
	out, err = app.Ingest(ctx, started("e1", now.Add(-time.Minute)))
	if err != nil || out.Result != watch.Duplicate || out.Seq != 1 {
		t.Fatalf("redelivery: %+v %v, want duplicate at seq 1", out, err)
	}
}

// Modify commits only what fn reports as a change, running the rules then;
// a change it declines writes nothing and runs no rule.
func TestModify(t *testing.T) {
	var runs atomic.Int64
	app, s := newApp(t, &runs)
	ctx := context.Background()
	if _, err := app.Modify(ctx, aks, func(*fleet.Cluster, time.Time) bool { return true }); !errors.Is(err, fleet.ErrNotFound) {
		t.Fatalf("modify of an unknown cluster: %v, want ErrNotFound", err)
	}
	if _, err := app.Ingest(ctx, started("e1", now)); err != nil {
		t.Fatal(err)
	}
	runs.Store(0)
	if _, err := app.Modify(ctx, aks, func(c *fleet.Cluster, _ time.Time) bool { c.Signals += 5; return false }); err != nil {
		t.Fatal(err)
	}
	if c, _ := s.Cluster(ctx, aks); c.Signals != 1 || runs.Load() != 0 {
		t.Errorf("declined change: Signals %d, rules ran %d times; want 1 and 0", c.Signals, runs.Load())
	}
	if _, err := app.Modify(ctx, aks, func(c *fleet.Cluster, at time.Time) bool { c.Signals++; return at.Equal(now) }); err != nil {
		t.Fatal(err)
	}
	if c, _ := s.Cluster(ctx, aks); c.Signals != 2 || runs.Load() != 1 {
		t.Errorf("change: Signals %d, rules ran %d times; want 2 and 1", c.Signals, runs.Load())
	}
}
