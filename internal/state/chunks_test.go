package state_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/upgradewatch/upgradewatch/internal/findings"
	"github.com/upgradewatch/upgradewatch/internal/fleet"
	"github.com/upgradewatch/upgradewatch/internal/outbox"
	"github.com/upgradewatch/upgradewatch/internal/state"
)

// evalNow is when the stores of these tests evaluate: the pools' April image
// is stale by then, so every pool opens an ImageStale finding.
var evalNow = time.Date(2026, 11, 24, 9, 30, 0, 0, time.UTC)

// allSinks are the four sinks cmd/handler can configure, by name.
var allSinks = []string{"webhook", "eventgrid", "teams", "slack"}

// openWithRules opens a store on prefix's tables with the finding rules and
// the outbox, as cmd/handler wires them.
func openWithRules(t *testing.T, svc *aztables.ServiceClient, prefix string) *state.Store {
	t.Helper()
	p := fleet.Policy{NodeOSChannel: fleet.ChannelNodeImage}.WithDefaults()
	rules := findings.Evaluator(func(*fleet.Cluster) (fleet.Policy, []string) { return p, nil })
	s := newWithRules(svc, state.Options{TablePrefix: prefix, CacheSize: 100, Now: func() time.Time { return evalNow }},
		outbox.Evaluator(rules, outbox.Config{Sinks: allSinks}))
	t.Cleanup(s.Close)
	if err := s.EnsureTables(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s
}

// notificationOf is a resource notification of aks1 listing n pools.
func notificationOf(id string, at time.Time, n int) fleet.Signal {
	pr := &fleet.ClusterProfile{Location: "westeurope", KubernetesVersion: "1.33.5", UpgradeChannel: "patch",
		NodeOSUpgradeChannel: fleet.ChannelNodeImage, ProvisioningState: "Succeeded", Tags: map[string]string{"env": "prod"}}
	for i := range n {
		pr.Pools = append(pr.Pools, fleet.PoolProfile{Name: fmt.Sprintf("np%03d", i), Mode: "User", OSType: "Linux",
			OSSKU: "Ubuntu", VMSize: "Standard_D4ds_v5", Count: 3, OrchestratorVersion: "1.33.5",
			NodeImageVersion: "AKSUbuntu-2204gen2containerd-202604.07.0", ProvisioningState: "Succeeded",
			MaxSurge: "33%", MaxUnavailable: "0"})
	}
	return fleet.Signal{ID: id, Type: "Microsoft.ResourceNotifications.Resources.CreatedOrUpdated",
		Source: "/subscriptions/" + aks1.SubscriptionID, Subject: aks1.ResourceID(), Time: at, Schema: fleet.SchemaEventGrid,
		Cluster: aks1, Kind: fleet.KindClusterUpdated, Profile: pr}
}

// checkOnce asserts that the cluster holds n pools, that signals were
// counted once each, and that every finding opened once with exactly one
// intent announcing it.
func checkOnce(t *testing.T, s *state.Store, pools int, signals int64) *fleet.Cluster {
	t.Helper()
	c, err := s.Cluster(context.Background(), aks1)
	if err != nil {
		t.Fatal(err)
	}
	// Inhibitions are derived, not stored: readers mark them (watch.App.Cluster).
	c.MarkInhibited()
	if got := len(c.Pools); got != pools {
		t.Errorf("pools = %d, want %d", got, pools)
	}
	if c.Signals != signals {
		t.Errorf("Signals = %d, want %d (a signal counted twice or lost)", c.Signals, signals)
	}
	opened := map[string]int{}
	for _, i := range c.Outbox {
		if i.Step == fleet.StepOpened {
			opened[fleet.FindingKey(i.Code, i.Target)]++
		}
		if len(i.Deliveries) != len(allSinks) {
			t.Errorf("intent %s owes %d sinks, want %d", i.ID, len(i.Deliveries), len(allSinks))
		}
	}
	stale := 0
	for key, f := range c.Findings {
		if f.Code == fleet.CodeImageStale {
			stale++
		}
		// Announced at once (no grace) unless a pool rolling inhibited it
		// first: recorded, not announced.
		want := 1
		if f.AnnouncedAt.IsZero() {
			want = 0
			if f.InhibitedBy == "" {
				t.Errorf("finding %s neither announced nor inhibited", key)
			}
		}
		if f.Opened != 1 || opened[key] != want {
			t.Errorf("finding %s opened %d times with %d opening intents, want 1 and %d", key, f.Opened, opened[key], want)
		}
	}
	if stale != pools {
		t.Errorf("%d ImageStale findings, want one per pool (%d)", stale, pools)
	}
	return c
}

// A resource notification whose effect needs several transactions (150
// pools, each with a finding and its intent: about 450 rows) commits whole,
// once. It used to be refused (more than one transaction holds) and lost.
func TestCommitChangeLargerThanOneTransaction(t *testing.T) {
	_, svc, prefix := newStore(t)
	s := openWithRules(t, svc, prefix)
	ctx := context.Background()
	sig := notificationOf("rn-150", evalNow.Add(-time.Hour), 150)
	out, err := commit(ctx, s, sig)
	if err != nil || out.Result != state.Committed {
		t.Fatalf("commit: %+v %v", out, err)
	}
	if len(out.Cluster.Outbox) < 150 {
		t.Errorf("outbox = %d, want an intent per pool's finding", len(out.Cluster.Outbox))
	}
	checkOnce(t, s, 150, 1)
	mustCommit(t, s, sig, state.Duplicate)
	checkOnce(t, s, 150, 1)
	if n := len(rawRows(t, svc, prefix, movingSeq)); n != 1 {
		t.Errorf("%d sequence rows, want 1", n)
	}
	list, err := s.Clusters(ctx)
	if err != nil || len(list) != 1 || list[0].Pools != 150 {
		t.Errorf("index clusters = %+v %v, want one with 150 pools", list, err)
	}
	open, err := s.OpenFindings(ctx)
	if err != nil || len(open) != 150 {
		t.Errorf("index lists %d open findings (%v), want 150", len(open), err)
	}
}

// A process that dies between two transactions of a change leaves a partly
// applied state; the redelivery (here to another instance) commits the rest,
// without counting the signal twice or announcing a finding twice, and
// repairs the index. Dying at each boundary in turn covers the facts, the
// findings and the last transaction.
func TestCommitResumesAfterDyingBetweenTransactions(t *testing.T) {
	for _, die := range []int{0, 2, 3} {
		t.Run(fmt.Sprintf("after part %d", die+1), func(t *testing.T) {
			_, svc, prefix := newStore(t)
			dying := openWithRules(t, svc, prefix)
			died := errors.New("instance stopped")
			state.SetChunkHook(dying, func(part int) error {
				if part == die {
					return died
				}
				return nil
			})
			ctx := context.Background()
			sig := notificationOf("rn-150", evalNow.Add(-time.Hour), 150)
			if _, err := commit(ctx, dying, sig); !errors.Is(err, state.ErrUnavailable) {
				t.Fatalf("commit that died: %v, want ErrUnavailable so the event is redelivered", err)
			}
			seq := rawRows(t, svc, prefix, movingSeq)
			if len(seq) != 1 || seq[0]["Partial"] != true {
				t.Fatalf("sequence rows after dying = %v, want one marked Partial", seq)
			}
			if sigRows := rawRows(t, svc, prefix, "RowKey ge 'signal~' and RowKey lt 'signal~~'"); len(sigRows) != 0 {
				t.Fatalf("the dedupe marker committed before the rest: %v", sigRows)
			}

			other := openWithRules(t, svc, prefix)
			mustCommit(t, other, sig, state.Committed)
			checkOnce(t, other, 150, 1)
			mustCommit(t, other, sig, state.Duplicate)
			mustCommit(t, dying, sig, state.Duplicate)
			if seq := rawRows(t, svc, prefix, movingSeq); len(seq) != 1 || seq[0]["Partial"] == true {
				t.Errorf("sequence rows after the redelivery = %v, want one, not Partial", seq)
			}
			open, err := other.OpenFindings(ctx)
			if err != nil || len(open) != 150 {
				t.Errorf("index lists %d open findings (%v), want 150", len(open), err)
			}
			if list, _ := other.Clusters(ctx); len(list) != 1 || list[0].Pools != 150 {
				t.Errorf("index clusters = %+v, want one with 150 pools", list)
			}
		})
	}
}

// Two instances on the same tables, each receiving every delivery of a big
// resource notification (three times: redelivery) and of rolling events of
// its pools, commit each signal once.
func TestConcurrentInstancesCommitLargeChangeOnce(t *testing.T) {
	_, svc, prefix := newStore(t)
	a, b := openWithRules(t, svc, prefix), openWithRules(t, svc, prefix)
	big := notificationOf("rn-120", evalNow.Add(-time.Hour), 120)
	sigs := []fleet.Signal{big, big, big}
	for i := range 6 {
		sigs = append(sigs, rolling(fmt.Sprintf("roll-%d", i), fleet.KindRollingStarted, fmt.Sprintf("np%03d", i*7),
			evalNow.Add(-30*time.Minute+time.Duration(i)*time.Second)))
	}
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 2*len(sigs))
	for _, s := range []*state.Store{a, b} {
		for _, sig := range sigs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := commit(ctx, s, sig); err != nil {
					errs <- fmt.Errorf("%s: %w", sig.ID, err)
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	c := checkOnce(t, a, 120, 7)
	if len(c.InFlight()) != 6 {
		t.Errorf("%d operations in flight, want 6", len(c.InFlight()))
	}
	if seq := rawRows(t, svc, prefix, movingSeq); len(seq) != 1 || seq[0]["Partial"] == true {
		t.Errorf("sequence rows = %v, want one, not Partial", seq)
	}
}

// rawRows reads the Fleet rows of aks1 matching a RowKey filter, as a
// dashboard would.
func rawRows(t *testing.T, svc *aztables.ServiceClient, prefix, filter string) []map[string]any {
	t.Helper()
	f := "PartitionKey eq '" + aks1.Key() + "' and " + filter
	pager := svc.NewClient(prefix + state.TableFleet).NewListEntitiesPager(&aztables.ListEntitiesOptions{Filter: &f})
	var out []map[string]any
	for pager.More() {
		page, err := pager.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range page.Entities {
			var m map[string]any
			if err := json.Unmarshal(e, &m); err != nil {
				t.Fatal(err)
			}
			out = append(out, m)
		}
	}
	return out
}

func hasMark(s string) bool { return strings.Contains(s, "[clipped by upgradewatch") }

// movingSeq selects a partition's moving sequence rows: all but seq~0, the
// first commit's permanent marker (see guard).
const movingSeq = "RowKey gt 'seq~000000000000' and RowKey lt 'seq~~'"
