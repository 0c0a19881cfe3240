package outbox_test

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
	"github.com/upgradewatch/upgradewatch/internal/notify"
	"github.com/upgradewatch/upgradewatch/internal/outbox"
	"github.com/upgradewatch/upgradewatch/internal/policy"
)

// groupSink is a chat sink: it takes a window's steps as one message and
// records each message's steps. Its per-step record (the embedded sink)
// fails the test on a step received twice, in one message or two.
type groupSink struct {
	*sink
	mu       sync.Mutex
	messages [][]string // each message's step ids
	groupIDs []string
}

func newGroupSink(name string, failFirst int) *groupSink {
	return &groupSink{sink: &sink{name: name, failFirst: failFirst, delay: 2 * time.Millisecond}}
}

func (s *groupSink) SendGroup(ctx context.Context, g notify.Group) error {
	if err := g.Validate(); err != nil {
		return fmt.Errorf("%s: %w: %v", s.name, notify.ErrPermanent, err)
	}
	time.Sleep(s.delay)
	s.sink.mu.Lock()
	defer s.sink.mu.Unlock()
	s.calls++
	s.mu.Lock()
	defer s.mu.Unlock()
	s.groupIDs = append(s.groupIDs, g.ID)
	if s.calls <= s.failFirst {
		return fmt.Errorf("%s: status 503 Service Unavailable", s.name)
	}
	var ids []string
	for _, n := range g.Items {
		ids = append(ids, n.ID)
		s.got = append(s.got, n)
	}
	s.messages = append(s.messages, ids)
	return nil
}

func (s *groupSink) sent() [][]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.messages)
}

// rollingFailed is AKS's NodePoolRollingFailed for a pool: UpgradeFailed
// (Error) opens on it.
func rollingFailed(pool string, at time.Time) fleet.Signal {
	return fleet.Signal{ID: "5b8e2f1c-0d3a-4e6b-9c7d-" + fmt.Sprintf("%012x", at.Unix()) + pool, Type: "Microsoft.ContainerService.NodePoolRollingFailed",
		Subject: aks.Name, Time: at, Schema: fleet.SchemaEventGrid, Cluster: aks, Kind: fleet.KindRollingFailed, Pool: pool}
}

var fivePools = []string{"system", "payments", "batch", "ingress", "gpu"}

// Five findings open on one cluster within one dispatch window: the webhook
// gets five CloudEvents at once, each naming the group; Teams and Slack wait
// for the window and get one message each, listing all five. The Due index
// wakes the cluster when the window ends.
func TestFiveStepsInOneWindowMakeOneMessagePerChatSink(t *testing.T) {
	const wait = 30 * time.Second
	f := newFixture(t, "webhook", "teams", "slack")
	f.cfg.Grouped, f.cfg.GroupWait = []string{"teams", "slack"}, wait
	store := f.store(t)
	hook, teams, slack := &sink{name: "webhook"}, newGroupSink("teams", 0), newGroupSink("slack", 0)
	if got := outbox.GroupedSinks([]notify.Sink{hook, teams, slack}); !slices.Equal(got, []string{"teams", "slack"}) {
		t.Fatalf("GroupedSinks = %v", got)
	}
	d := outbox.NewDispatcher(store, []notify.Sink{hook, teams, slack}, outbox.Options{Now: f.clk.Now})

	for _, pool := range fivePools {
		commit(t, store, rollingFailed(pool, f.clk.Now()))
		dispatch(t, d) // as the background lanes do after each commit
		f.clk.Add(5 * time.Second)
	}
	if got := len(hook.received(t)); got != 5 {
		t.Fatalf("webhook received %d at once, want 5", got)
	}
	if len(teams.sent())+len(slack.sent()) != 0 {
		t.Fatalf("a chat sink was sent to inside the window: teams %v, slack %v", teams.sent(), slack.sent())
	}
	due, err := store.Due(context.Background(), t0.Add(wait), 10)
	if err != nil || len(due) != 1 || !due[0].At.Equal(t0.Add(wait)) {
		t.Fatalf("due at the window's end: %+v, %v; want the cluster at %s", due, err, t0.Add(wait))
	}

	f.clk.Add(wait - 20*time.Second) // t0+35s: the oldest step waited its 30 s
	rep := dispatch(t, d)
	if rep.Sent != 10 || rep.Pending != 0 {
		t.Fatalf("dispatch after the window = %+v, want 10 deliveries sent (5 to each chat sink), nothing pending", rep)
	}
	dispatch(t, d)
	for _, s := range []*groupSink{teams, slack} {
		msgs := s.sent()
		if len(msgs) != 1 || len(msgs[0]) != 5 {
			t.Errorf("%s got messages %v, want one of 5 steps", s.name, msgs)
		}
		s.received(t) // no step twice
	}
	key := notify.GroupKey(aks, []string{"webhook", "teams", "slack"})
	for _, n := range hook.received(t) {
		if n.GroupKey != key || n.Type != notify.TypeFindingOpened || n.Code != fleet.CodeUpgradeFailed {
			t.Errorf("webhook got %s %s with group key %q, want UpgradeFailed opened in group %q", n.Type, n.Code, n.GroupKey, key)
		}
	}
	if pending, archived := f.rows(t); len(pending) != 0 || len(archived) != 5 {
		t.Errorf("rows: %d pending, %d archived; want 0 and 5", len(pending), len(archived))
	}
}

// A grouped message that fails is retried whole: the same set of steps, the
// same group id, each delivery attempted twice; the other chat sink is not
// held up. Steps recorded while a group is leased wait for the next message.
func TestAFailedGroupIsRetriedTogether(t *testing.T) {
	f := newFixture(t, "teams", "slack")
	f.cfg.Grouped, f.cfg.GroupWait = []string{"teams", "slack"}, 10*time.Second
	store := f.store(t)
	teams, slack := newGroupSink("teams", 1), newGroupSink("slack", 0)
	d := outbox.NewDispatcher(store, []notify.Sink{teams, slack}, outbox.Options{Now: f.clk.Now})
	for _, pool := range fivePools[:3] {
		commit(t, store, rollingFailed(pool, f.clk.Now()))
	}
	f.clk.Add(10 * time.Second)
	if rep := dispatch(t, d); rep.Failed != 3 || rep.Sent != 3 {
		t.Fatalf("first dispatch = %+v, want teams' 3 failed together, slack's 3 sent", rep)
	}
	f.clk.Add(outbox.RetryCap)
	if rep := dispatch(t, d); rep.Sent != 3 || rep.Pending != 0 {
		t.Fatalf("retry = %+v, want 3 sent", rep)
	}
	if ids := teams.groupIDs; len(ids) != 2 || ids[0] != ids[1] {
		t.Errorf("teams group ids %v, want the same set twice", ids)
	}
	if msgs := teams.sent(); len(msgs) != 1 || len(msgs[0]) != 3 {
		t.Errorf("teams messages %v, want one of 3", msgs)
	}
	_, archived := f.rows(t)
	for _, e := range archived {
		if dl := e["Deliveries"].(string); !strings.Contains(dl, `"teams":{"attempts":2`) {
			t.Errorf("teams delivery %s, want 2 attempts", dl)
		}
	}
}

// routed is a policy with two routes: failures to the payments channel and
// the webhook; everything else (the default route) to the ops channel.
const routed = `{"routes": [
  {"name": "payments failures", "match": {"codes": ["UpgradeFailed"], "cluster": "aks-payments-*"}, "sinks": ["payments-teams", "webhook"]}
], "defaultRoute": {"sinks": ["ops-slack"]}}`

// Two instances sweep at once, round after round, while steps of both
// routes are recorded: each sink receives exactly the steps its route
// matches, each once.
func TestRoutesSendEachStepToItsSinksOnceUnderConcurrentSweeps(t *testing.T) {
	set, err := policy.Parse([]byte(routed))
	if err != nil {
		t.Fatal(err)
	}
	names := []string{"webhook", "payments-teams", "ops-slack"}
	if err := set.CheckSinks(names); err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, names...)
	f.cfg.Grouped, f.cfg.GroupWait = []string{"payments-teams", "ops-slack"}, 30*time.Second
	f.cfg.Route = func(c *fleet.Cluster, code, severity string) []string {
		sinks, _, all := set.Route(c, code, severity)
		if all {
			return names
		}
		return sinks
	}
	hook, teams, slack := &sink{name: "webhook", delay: 2 * time.Millisecond}, newGroupSink("payments-teams", 0), newGroupSink("ops-slack", 0)
	writer := f.store(t)
	a := f.sweeper(t, "instance-a", hook, teams, slack)
	b := f.sweeper(t, "instance-b", hook, teams, slack)
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
	// ChannelDrift and MaintenanceWindowMissing open and ChannelDrift
	// resolves (the default route), then five pools fail (the payments
	// route), a few at a time, sweeping as the windows pass.
	commit(t, writer, read("arm-1", t0, fleet.ChannelSecurityPatch))
	f.clk.Add(20 * time.Second)
	rounds()
	f.clk.Add(time.Hour)
	commit(t, writer, read("arm-2", f.clk.Now(), fleet.ChannelNodeImage))
	for i, pool := range fivePools {
		f.clk.Add(20 * time.Second)
		commit(t, writer, rollingFailed(pool, f.clk.Now()))
		if i%2 == 1 {
			rounds()
		}
	}
	for range 3 {
		f.clk.Add(time.Minute)
		rounds()
	}

	steps := func(ns []notify.Notification) []string {
		out := types(ns)
		sort.Strings(out)
		return out
	}
	failures := slices.Repeat([]string{"finding.opened UpgradeFailed"}, 5)
	others := []string{"finding.opened ChannelDrift", "finding.opened MaintenanceWindowMissing", "finding.resolved ChannelDrift"}
	if got := steps(hook.received(t)); !slices.Equal(got, failures) {
		t.Errorf("webhook received %v, want the 5 failures", got)
	}
	if got := steps(teams.received(t)); !slices.Equal(got, failures) {
		t.Errorf("payments-teams received %v, want the 5 failures", got)
	}
	if got := steps(slack.received(t)); !slices.Equal(got, others) {
		t.Errorf("ops-slack received %v, want %v", got, others)
	}
	if n := len(teams.sent()); n < 1 || n > 3 {
		t.Errorf("payments-teams got %d messages for 5 steps in three windows, want 1 to 3", n)
	}
	pending, archived := f.rows(t)
	if len(pending) != 0 || len(archived) != 8 {
		t.Errorf("rows: %d pending, %d archived; want 0 and 8", len(pending), len(archived))
	}
	for _, e := range archived {
		dl := e["Deliveries"].(string)
		failure := e["Code"] == fleet.CodeUpgradeFailed
		if failure != strings.Contains(dl, `"payments-teams"`) || failure != strings.Contains(dl, `"webhook"`) || failure == strings.Contains(dl, `"ops-slack"`) {
			t.Errorf("%s %s recorded deliveries %s, not its route's", e["Step"], e["Code"], dl)
		}
	}
}
