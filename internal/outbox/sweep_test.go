package outbox_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/upgradewatch/upgradewatch/internal/azuritetest"
	"github.com/upgradewatch/upgradewatch/internal/findings"
	"github.com/upgradewatch/upgradewatch/internal/fleet"
	"github.com/upgradewatch/upgradewatch/internal/notify"
	"github.com/upgradewatch/upgradewatch/internal/outbox"
	"github.com/upgradewatch/upgradewatch/internal/state"
	"github.com/upgradewatch/upgradewatch/internal/watch"
)

var discard = slog.New(slog.DiscardHandler)

// rules are the app's: the finding rules with the outbox's steps.
func (f *fixture) rules() func(c *fleet.Cluster, now time.Time) []fleet.Transition {
	return outbox.Evaluator(findings.Evaluator(func(*fleet.Cluster) (fleet.Policy, []string) { return policyNodeImage, nil }), f.cfg)
}

// sweeper opens an instance of the app that dispatches to sinks itself, as
// cmd/handler wires it: its Sweep leases in its evaluation commit.
func (f *fixture) sweeper(t *testing.T, owner string, sinks ...notify.Sink) instance {
	s := state.New(f.svc, state.Options{TablePrefix: f.prefix, CacheSize: 100, Now: f.clk.Now})
	t.Cleanup(s.Close)
	app := watch.New(s, watch.Options{Now: f.clk.Now, Rules: f.rules(), NewDispatcher: func(st outbox.Store) watch.Dispatcher {
		return outbox.NewDispatcher(st, sinks, outbox.Options{Owner: owner, Now: f.clk.Now})
	}})
	t.Cleanup(func() { _ = app.Shutdown(context.Background()) })
	return instance{App: app, store: s, now: f.clk.Now}
}

// seq reads the cluster partition's sequence guard from storage: each guarded
// transaction moves it by one.
func (f *fixture) seq(t *testing.T) int64 {
	t.Helper()
	c := f.svc.NewClient(f.prefix + state.TableFleet)
	filter := fmt.Sprintf("PartitionKey eq '%s' and RowKey ge 'seq~' and RowKey lt 'seq~~'", aks.Key())
	var top int64 = -1
	for _, e := range azuritetest.Rows(t, c, filter) {
		n, err := strconv.ParseInt(strings.TrimPrefix(e["RowKey"].(string), "seq~"), 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		top = max(top, n)
	}
	if top < 0 {
		t.Fatal("no sequence row")
	}
	return top
}

func sweep(t *testing.T, s instance) watch.SweepReport {
	t.Helper()
	rep, err := s.Sweep(context.Background(), discard)
	if err != nil {
		t.Fatalf("sweep: %v", err)
	}
	return rep
}

// A Sweep of a due cluster that owes notifications leases them in the commit
// of its evaluation: with one sink, two guarded transactions in all (the
// evaluation with the leases, and the commit of what the sink answered).
func TestSweepOfADueClusterOwingNotificationsCommitsTwice(t *testing.T) {
	f := newFixture(t, "webhook")
	hook := &sink{name: "webhook"}
	writer, sw := f.store(t), f.sweeper(t, "sweeper", hook)

	commit(t, writer, read("arm-1", t0, fleet.ChannelSecurityPatch)) // two openings owed: nobody dispatched them
	f.clk.Add(time.Minute)
	before := f.seq(t)
	rep := sweep(t, sw)
	if rep.Due != 1 || rep.Notifications.Sent != 2 || rep.Notifications.Pending != 0 {
		t.Fatalf("sweep = due %d, notifications %+v; want 1 due, 2 sent, nothing pending", rep.Due, rep.Notifications)
	}
	if n := f.seq(t) - before; n != 2 {
		t.Errorf("the sweep ran %d guarded transactions, want 2 (evaluate+lease, settle)", n)
	}
	if got := types(hook.received(t)); len(got) != 2 {
		t.Errorf("webhook received %v, want the two openings", got)
	}
	if pending, archived := f.rows(t); len(pending) != 0 || len(archived) != 2 {
		t.Errorf("rows: %d pending, %d archived; want 0 and 2", len(pending), len(archived))
	}
}

// Two instances sweep at once, round after round, with steps recorded by a
// third that dispatches nothing: the loser of each evaluation commit reloads
// and finds the winner's leases, so each sink receives each step once.
func TestTwoConcurrentSweepsLeasingInTheirEvaluationSendOnce(t *testing.T) {
	f := newFixture(t, "webhook", "slack")
	hook, slack := &sink{name: "webhook", delay: 3 * time.Millisecond}, &sink{name: "slack", delay: 3 * time.Millisecond}
	writer := f.store(t)
	a, b := f.sweeper(t, "instance-a", hook, slack), f.sweeper(t, "instance-b", hook, slack)

	sigs := []fleet.Signal{read("arm-1", t0, fleet.ChannelSecurityPatch), read("arm-2", t0.Add(time.Hour), fleet.ChannelNodeImage),
		read("arm-3", t0.Add(2*time.Hour), fleet.ChannelSecurityPatch)}
	rounds := func() {
		var wg sync.WaitGroup
		for i := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := []instance{a, b}[i%2].Sweep(context.Background(), discard); err != nil {
					t.Errorf("sweep: %v", err)
				}
			}()
		}
		wg.Wait()
	}
	for _, sig := range sigs {
		f.clk.Add(30 * time.Minute)
		commit(t, writer, sig)
		rounds()
	}
	f.clk.Add(25 * time.Hour) // a reminder of each open finding is due
	rounds()

	_, archived := f.rows(t)
	var recorded []string
	for _, e := range archived {
		recorded = append(recorded, e["Step"].(string)+" "+e["Code"].(string))
	}
	sort.Strings(recorded)
	for _, want := range []string{"finding.opened ChannelDrift", "finding.opened MaintenanceWindowMissing",
		"finding.resolved ChannelDrift", "finding.reminded ChannelDrift", "finding.reminded MaintenanceWindowMissing"} {
		if !slices.Contains(recorded, want) {
			t.Errorf("no %s among the recorded steps %v", want, recorded)
		}
	}
	for _, s := range []*sink{hook, slack} {
		got := types(s.received(t)) // fails on a step received twice
		sort.Strings(got)
		if strings.Join(got, ",") != strings.Join(recorded, ",") {
			t.Errorf("%s received\n %v\nthe outbox recorded\n %v", s.name, got, recorded)
		}
	}
	if pending, _ := f.rows(t); len(pending) != 0 {
		t.Errorf("%d intents still pending", len(pending))
	}
}

// An instance that stops right after its evaluation committed the leases
// sends nothing: the leases hold off every other dispatch until they end, the
// cluster's next evaluation is their end, and the Sweep that finds it then
// sends each step once.
func TestLeasesOfASweepThatStoppedExpireAndTheDueIndexFindsThem(t *testing.T) {
	f := newFixture(t, "webhook")
	hook := &sink{name: "webhook"}
	writer := f.store(t)
	commit(t, writer, read("arm-1", t0, fleet.ChannelSecurityPatch))

	// The stopped instance: its evaluation commit leases (as the Sweep's
	// does: the rules, the claim, the rules again), and it never sends.
	rules := f.rules()
	crashed := outbox.NewDispatcher(writer, []notify.Sink{&sink{name: "webhook"}}, outbox.Options{Owner: "stopped", Now: f.clk.Now})
	var claimed *outbox.Claims
	ch, err := writer.store.Update(context.Background(), aks, nil, func(c *fleet.Cluster) error {
		now := f.clk.Now()
		rules(c, now)
		var changed bool
		if claimed, changed = crashed.Claim(c, now); !changed {
			return state.ErrNoChange
		}
		rules(c, now)
		return nil
	})
	if err != nil || ch.Result != state.Committed || claimed.Empty() {
		t.Fatalf("evaluate+lease: %+v %v, claimed %v", ch.Result, err, claimed)
	}
	leaseEnd := t0.Add(outbox.DefaultLease)
	if c, err := writer.Cluster(context.Background(), aks); err != nil || !c.NextEvaluation.Equal(leaseEnd) {
		t.Fatalf("next evaluation after the lease commit = %v (%v), want the lease end %v", c.NextEvaluation, err, leaseEnd)
	}

	other := f.sweeper(t, "other", hook)
	f.clk.Add(outbox.DefaultLease - time.Second)
	if rep := sweep(t, other); rep.Notifications.Sent != 0 || len(hook.received(t)) != 0 {
		t.Fatalf("a sweep while the leases hold sent %+v", rep.Notifications)
	}
	f.clk.Add(2 * time.Second)
	due, err := other.Due(context.Background(), f.clk.Now(), 10)
	if err != nil || len(due) != 1 || due[0].Cluster != aks {
		t.Fatalf("due after the leases ended = %+v %v, want the cluster", due, err)
	}
	if rep := sweep(t, other); rep.Notifications.Sent != 2 {
		t.Fatalf("the sweep after the leases ended sent %+v, want 2", rep.Notifications)
	}
	sweep(t, other)
	if got := hook.received(t); len(got) != 2 { // received() fails on a duplicate
		t.Errorf("webhook received %v, want the two openings once", types(got))
	}
}

// A Sweep on an instance whose cached state another instance has moved on
// from (here: recorded a resolution) evaluates the committed state: it sends
// the step the other recorded in its first sweep after the step comes due,
// and leaves nothing owed, rather than find nothing due on its stale copy
// and drop the cluster's due entry.
func TestSweepOnAnInstanceWithAStaleCacheSendsWhatAnotherRecorded(t *testing.T) {
	f := newFixture(t, "webhook")
	hook := &sink{name: "webhook"}
	writer, a := f.store(t), f.sweeper(t, "instance-a", hook)
	commit(t, writer, read("arm-1", t0, fleet.ChannelSecurityPatch))
	f.clk.Add(time.Minute)
	if rep := sweep(t, a); rep.Notifications.Sent != 2 { // a now holds the cluster's state
		t.Fatalf("first sweep sent %+v, want the two openings", rep.Notifications)
	}
	f.clk.Add(outbox.DefaultLease)
	sweep(t, a) // at the leases' end: a's copy is settled, nothing else due

	// Within the hour (past it, the open findings' LastSeenAt moves, and
	// the evaluation writes that): evaluating a's copy would change nothing.
	f.clk.Add(time.Minute)
	commit(t, writer, read("arm-2", f.clk.Now(), fleet.ChannelNodeImage)) // ChannelDrift resolves, on the other instance
	f.clk.Add(time.Minute)
	if rep := sweep(t, a); rep.Due == 0 || rep.Notifications.Sent != 1 || rep.Notifications.Pending != 0 {
		t.Fatalf("sweep after the other instance's commit = due %d, notifications %+v; want the cluster due, 1 sent, nothing pending",
			rep.Due, rep.Notifications)
	}
	got := types(hook.received(t))
	sort.Strings(got)
	if want := []string{"finding.opened ChannelDrift", "finding.opened MaintenanceWindowMissing", "finding.resolved ChannelDrift"}; !slices.Equal(got, want) {
		t.Errorf("webhook received %v, want %v", got, want)
	}
	if pending, archived := f.rows(t); len(pending) != 0 || len(archived) != 3 {
		t.Errorf("rows: %d pending, %d archived; want 0 and 3", len(pending), len(archived))
	}
}

// gated is a sink whose sends wait until the test opens the gate.
type gated struct {
	sink
	called chan struct{}
	gate   chan struct{}
}

func (g *gated) Send(ctx context.Context, n notify.Notification) error {
	select {
	case g.called <- struct{}{}:
	default:
	}
	<-g.gate
	return g.sink.Send(ctx, n)
}

// While a Sweep sends what its evaluation leased, the committed state holds
// the leases and wakes the cluster at their end, and a sweep on another
// instance sends none of it.
func TestSweepHoldsWhatItsEvaluationLeased(t *testing.T) {
	f := newFixture(t, "webhook")
	slow := &gated{sink: sink{name: "webhook"}, called: make(chan struct{}, 1), gate: make(chan struct{})}
	hook := &sink{name: "webhook"}
	writer := f.store(t)
	a, b := f.sweeper(t, "instance-a", slow), f.sweeper(t, "instance-b", hook)
	commit(t, writer, read("arm-1", t0, fleet.ChannelSecurityPatch))

	done := make(chan watch.SweepReport)
	go func() { done <- sweep(t, a) }()
	<-slow.called
	c, err := writer.Cluster(context.Background(), aks)
	if err != nil {
		t.Fatal(err)
	}
	leaseEnd := t0.Add(outbox.DefaultLease)
	for _, i := range c.Outbox {
		if dl := i.Deliveries["webhook"]; dl == nil || !dl.Leased(t0) || !strings.HasPrefix(dl.LeaseOwner, "instance-a/") {
			t.Errorf("intent %s %s: delivery %+v, want leased by instance-a", i.Step, i.Code, dl)
		}
	}
	if !c.NextEvaluation.Equal(leaseEnd) {
		t.Errorf("next evaluation while leased = %v, want the lease end %v", c.NextEvaluation, leaseEnd)
	}
	if rep := sweep(t, b); rep.Notifications.Sent != 0 || len(hook.received(t)) != 0 {
		t.Errorf("the other instance's sweep sent %+v while the leases held", rep.Notifications)
	}
	close(slow.gate)
	if rep := <-done; rep.Notifications.Sent != 2 {
		t.Errorf("the leasing sweep sent %+v, want 2", rep.Notifications)
	}
	sweep(t, b)
	if got, other := slow.received(t), hook.received(t); len(got) != 2 || len(other) != 0 {
		t.Errorf("received %v by the leasing instance and %v by the other; want the two openings once", types(got), types(other))
	}
}
