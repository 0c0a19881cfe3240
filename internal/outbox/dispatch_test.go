package outbox_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/upgradewatch/upgradewatch/internal/azuritetest"
	"github.com/upgradewatch/upgradewatch/internal/findings"
	"github.com/upgradewatch/upgradewatch/internal/fleet"
	"github.com/upgradewatch/upgradewatch/internal/notify"
	"github.com/upgradewatch/upgradewatch/internal/outbox"
	"github.com/upgradewatch/upgradewatch/internal/state"
	"github.com/upgradewatch/upgradewatch/internal/watch"
)

// clock is the one time the store and the dispatchers see.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// sink records what it accepted. It refuses its first failFirst sends
// transiently (a 503, as a throttled webhook answers), or every send
// permanently.
type sink struct {
	name      string
	failFirst int
	permanent bool
	delay     time.Duration

	mu    sync.Mutex
	calls int
	got   []notify.Notification
}

func (s *sink) Name() string { return s.name }

func (s *sink) Send(ctx context.Context, n notify.Notification) error {
	if err := n.Validate(); err != nil {
		return fmt.Errorf("%s: %w: %v", s.name, notify.ErrPermanent, err)
	}
	time.Sleep(s.delay)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	switch {
	case s.permanent:
		return fmt.Errorf("%s: status 400 Bad Request: %w", s.name, notify.ErrPermanent)
	case s.calls <= s.failFirst:
		return fmt.Errorf("%s: status 503 Service Unavailable", s.name)
	}
	s.got = append(s.got, n)
	return nil
}

// received returns what the sink accepted, and fails the test on any id
// received twice.
func (s *sink) received(t *testing.T) []notify.Notification {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := map[string]int{}
	for _, n := range s.got {
		seen[n.ID]++
		if seen[n.ID] == 2 {
			t.Errorf("sink %s received %s (%s %s) twice", s.name, n.ID, n.Type, n.Code)
		}
	}
	return append([]notify.Notification(nil), s.got...)
}

func types(ns []notify.Notification) []string {
	var out []string
	for _, n := range ns {
		out = append(out, strings.TrimPrefix(n.Type, "io.upgradewatch.")+" "+n.Code)
	}
	return out
}

var policyNodeImage = fleet.Policy{NodeOSChannel: fleet.ChannelNodeImage, RequireNodeOSWindow: true, Source: "defaults"}.WithDefaults()

type fixture struct {
	clk    *clock
	svc    *aztables.ServiceClient
	prefix string
	cfg    outbox.Config
}

func newFixture(t *testing.T, sinks ...string) *fixture {
	t.Helper()
	svc := azuritetest.Service(t, azuritetest.Endpoint(t))
	f := &fixture{clk: &clock{t: t0}, svc: svc, prefix: azuritetest.Prefix(t),
		cfg: outbox.Config{Sinks: sinks, RemindEvery: 24 * time.Hour}}
	s := f.store(t).store
	azuritetest.DropTables(t, svc, s.Tables()...)
	if err := s.EnsureTables(context.Background()); err != nil {
		t.Fatal(err)
	}
	return f
}

// instance is one instance of the app: the application layer (which the
// dispatcher records through) over its own store on the fixture's tables.
type instance struct {
	*watch.App
	store *state.Store
	now   func() time.Time
}

func (i instance) Due(ctx context.Context, now time.Time, limit int) ([]state.DueEntry, error) {
	return i.store.Due(ctx, now, limit)
}

// store opens an instance of the app on the fixture's tables.
func (f *fixture) store(t *testing.T) instance {
	rules := findings.Evaluator(func(*fleet.Cluster) (fleet.Policy, []string) { return policyNodeImage, nil })
	s := state.New(f.svc, state.Options{TablePrefix: f.prefix, CacheSize: 100, Now: f.clk.Now})
	t.Cleanup(s.Close)
	return instance{App: watch.New(s, watch.Options{Now: f.clk.Now, Rules: outbox.Evaluator(rules, f.cfg)}), store: s, now: f.clk.Now}
}

// read is an ARM read of the cluster showing its node OS channel, with no
// maintenance window: ChannelDrift (unless NodeImage) and
// MaintenanceWindowMissing open.
func read(id string, at time.Time, nodeOS string) fleet.Signal {
	return fleet.Signal{ID: id, Type: fleet.TypeARMRead, Time: at, Cluster: aks, Kind: fleet.KindClusterUpdated,
		Profile: &fleet.ClusterProfile{Location: "westeurope", KubernetesVersion: "1.31.9", NodeOSUpgradeChannel: nodeOS,
			UpgradeChannel: "patch", MaintenanceKnown: true,
			Pools: []fleet.PoolProfile{{Name: "system", Mode: "System", OSType: "Linux", OSSKU: "Ubuntu", VMSize: "Standard_D4ds_v5",
				Count: 3, NodeImageVersion: "AKSUbuntu-2204gen2containerd-202611.17.0", LatestNodeImageVersion: "AKSUbuntu-2204gen2containerd-202611.17.0"}}}}
}

// commit ingests a signal as the app receives it. The application layer
// refuses a signal dated after its receipt; these fixtures' reads may be
// dated ahead of the test clock, so they are received no later than it.
func commit(t *testing.T, s instance, sig fleet.Signal) watch.Outcome {
	t.Helper()
	if now := s.now(); sig.Time.After(now) {
		sig.Time = now
	}
	out, err := s.Ingest(context.Background(), sig)
	if err != nil {
		t.Fatalf("commit %s: %v", sig.ID, err)
	}
	return out
}

func dispatch(t *testing.T, d *outbox.Dispatcher) outbox.Report {
	t.Helper()
	rep, err := d.Dispatch(context.Background(), aks)
	if err != nil {
		t.Fatalf("dispatch: %v", err)
	}
	return rep
}

// rows counts the cluster partition's pending (out~) and archived (zout~) intents.
func (f *fixture) rows(t *testing.T) (pending, archived []map[string]any) {
	t.Helper()
	c := f.svc.NewClient(f.prefix + state.TableFleet)
	filter := fmt.Sprintf("PartitionKey eq '%s' and Kind eq 'Outbox'", aks.Key())
	for _, e := range azuritetest.Rows(t, c, filter) {
		if strings.HasPrefix(e["RowKey"].(string), "zout~") {
			archived = append(archived, e)
		} else {
			pending = append(pending, e)
		}
	}
	return pending, archived
}

func TestOneNotificationPerStepUnderRedelivery(t *testing.T) {
	f := newFixture(t, "webhook", "teams")
	store := f.store(t)
	hook, teams := &sink{name: "webhook"}, &sink{name: "teams"}
	d := outbox.NewDispatcher(store, []notify.Sink{hook, teams}, outbox.Options{Now: f.clk.Now,
		PublicURL: "https://upgradewatch-prod.azurewebsites.net/"})

	sig := read("arm-1", t0, fleet.ChannelSecurityPatch)
	if out := commit(t, store, sig); out.Outbox != 2 {
		t.Fatalf("outbox after the first commit = %d, want 2 (ChannelDrift and MaintenanceWindowMissing opened)", out.Outbox)
	}
	if rep := dispatch(t, d); rep.Sent != 4 || rep.Pending != 0 {
		t.Fatalf("first dispatch = %+v, want 4 sent, nothing pending", rep)
	}
	// Event Grid delivers the same event again, twice, and the sweep runs.
	for range 2 {
		if out := commit(t, store, sig); out.Result != state.Duplicate {
			t.Fatalf("redelivery = %v", out.Result)
		}
		if rep := dispatch(t, d); rep.Sent != 0 {
			t.Fatalf("dispatch after redelivery sent %d", rep.Sent)
		}
	}
	f.clk.Add(2 * time.Hour)
	commit(t, store, read("arm-2", f.clk.Now(), fleet.ChannelNodeImage))
	dispatch(t, d)
	dispatch(t, d)

	want := []string{"finding.opened ChannelDrift", "finding.opened MaintenanceWindowMissing", "finding.resolved ChannelDrift"}
	for _, s := range []*sink{hook, teams} {
		got := types(s.received(t))
		sort.Strings(got)
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("%s received %v, want %v", s.name, got, want)
		}
	}
	n := hook.received(t)[0]
	if n.StatusURL != "https://upgradewatch-prod.azurewebsites.net/api/clusters/"+aks.SubscriptionID+"/rg-payments-prod/aks-payments-weu" {
		t.Errorf("StatusURL = %q", n.StatusURL)
	}
	if n.Cluster != aks || n.Severity == "" || len(n.Evidence) == 0 || n.OpenedAt.IsZero() {
		t.Errorf("notification lacks what a reader needs: %+v", n)
	}
	pending, archived := f.rows(t)
	if len(pending) != 0 || len(archived) != 3 {
		t.Fatalf("rows: %d pending, %d archived; want 0 and 3", len(pending), len(archived))
	}
	for _, e := range archived {
		if !strings.Contains(e["Deliveries"].(string), `"sent"`) || strings.Contains(e["Deliveries"].(string), "gaveUp") {
			t.Errorf("archived %s deliveries = %s, want both sent", e["RowKey"], e["Deliveries"])
		}
	}
}

// Two instances sweep the same cluster at the same time, again and again:
// every sink still receives each step once.
func TestTwoConcurrentSweepsSendEachStepOnce(t *testing.T) {
	f := newFixture(t, "webhook", "slack")
	a, b := f.store(t), f.store(t)
	hook, slack := &sink{name: "webhook", delay: 3 * time.Millisecond}, &sink{name: "slack", delay: 3 * time.Millisecond}
	da := outbox.NewDispatcher(a, []notify.Sink{hook, slack}, outbox.Options{Owner: "instance-a", Now: f.clk.Now})
	db := outbox.NewDispatcher(b, []notify.Sink{hook, slack}, outbox.Options{Owner: "instance-b", Now: f.clk.Now})

	// Steps arrive while both sweep: open, resolve, open again, reminders.
	sigs := []fleet.Signal{read("arm-1", t0, fleet.ChannelSecurityPatch), read("arm-2", t0.Add(time.Hour), fleet.ChannelNodeImage),
		read("arm-3", t0.Add(2*time.Hour), fleet.ChannelSecurityPatch)}
	for round, sig := range sigs {
		f.clk.Add(30 * time.Minute)
		commit(t, []instance{a, b}[round%2], sig)
		var wg sync.WaitGroup
		for i := range 6 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				st, d := a, da
				if i%2 == 1 {
					st, d = b, db
				}
				if _, err := st.Evaluate(context.Background(), aks); err != nil {
					t.Errorf("evaluate: %v", err)
				}
				if _, err := d.Dispatch(context.Background(), aks); err != nil {
					t.Errorf("dispatch: %v", err)
				}
			}()
		}
		wg.Wait()
	}
	f.clk.Add(25 * time.Hour) // a reminder of each open finding is due
	var wg sync.WaitGroup
	for _, p := range []struct {
		s instance
		d *outbox.Dispatcher
	}{{a, da}, {b, db}, {a, da}, {b, db}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := p.s.Evaluate(context.Background(), aks); err != nil {
				t.Errorf("evaluate: %v", err)
			}
			if _, err := p.d.Dispatch(context.Background(), aks); err != nil {
				t.Errorf("dispatch: %v", err)
			}
		}()
	}
	wg.Wait()

	// Each sink received every step the outbox recorded (all archived now),
	// once; received() fails on a duplicate.
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
		got := types(s.received(t))
		sort.Strings(got)
		if strings.Join(got, ",") != strings.Join(recorded, ",") {
			t.Errorf("%s received\n %v\nthe outbox recorded\n %v", s.name, got, recorded)
		}
	}
	if pending, _ := f.rows(t); len(pending) != 0 {
		t.Errorf("%d intents still pending", len(pending))
	}
}

// A sink fails N times then recovers: it receives every pending step once,
// in order, while the healthy sink was never held up. The sweep finds the
// cluster through the Due index when each retry comes due.
func TestSinkFailingNTimesThenRecoveringGetsEverythingOnce(t *testing.T) {
	const n = 5
	f := newFixture(t, "teams", "eventgrid")
	store := f.store(t)
	teams, grid := &sink{name: "teams", failFirst: n}, &sink{name: "eventgrid"}
	d := outbox.NewDispatcher(store, []notify.Sink{teams, grid}, outbox.Options{Now: f.clk.Now})

	commit(t, store, read("arm-1", t0, fleet.ChannelSecurityPatch))
	dispatch(t, d)
	if got := len(grid.received(t)); got != 2 {
		t.Fatalf("the healthy sink received %d, want 2 at once", got)
	}
	f.clk.Add(time.Hour)
	commit(t, store, read("arm-2", f.clk.Now(), fleet.ChannelNodeImage)) // resolves ChannelDrift while teams is down
	dispatch(t, d)
	if got := len(grid.received(t)); got != 3 {
		t.Fatalf("the healthy sink received %d, want 3: a failing sink must not hold it up", got)
	}

	sweeps := 0
	for len(teams.received(t)) < 3 && sweeps < 50 {
		due, err := store.Due(context.Background(), f.clk.Now(), 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(due) > 0 {
			for _, e := range due {
				if e.Cluster != aks {
					t.Fatalf("due = %+v", due)
				}
			}
			ev, err := store.Evaluate(context.Background(), aks)
			if err != nil {
				t.Fatal(err)
			}
			// As the Sweep does: a due entry means "evaluate no later than",
			// so one the cluster is no longer due at is re-filed and dropped.
			for _, e := range due {
				if !e.At.Equal(ev.Cluster.NextEvaluation) {
					if err := store.store.RepairIndex(context.Background(), aks); err != nil {
						t.Fatal(err)
					}
					if err := store.store.DropDue(context.Background(), e); err != nil {
						t.Fatal(err)
					}
				}
			}
			dispatch(t, d)
			sweeps++
		}
		f.clk.Add(5 * time.Minute) // the Sweep's schedule
	}
	// In order: the two openings (same time, by id), then the resolution.
	got := types(teams.received(t))
	if len(got) != 3 || got[2] != "finding.resolved ChannelDrift" || !slices.Contains(got[:2], "finding.opened ChannelDrift") ||
		!slices.Contains(got[:2], "finding.opened MaintenanceWindowMissing") {
		t.Fatalf("teams received %v, want both openings then the resolution", got)
	}
	if teams.calls != n+3 {
		t.Errorf("teams was called %d times, want %d failures + 3 (one in flight per sweep, the rest waiting their turn)", teams.calls, n)
	}
	if len(grid.received(t)) != 3 {
		t.Errorf("eventgrid received %d, want 3", len(grid.received(t)))
	}
	if sweeps > n+1 {
		t.Errorf("%d sweeps found the cluster due; want one per retry (%d)", sweeps, n+1)
	}
	_, archived := f.rows(t)
	attempts := 0
	for _, e := range archived {
		if strings.Contains(e["Deliveries"].(string), fmt.Sprintf(`"attempts":%d`, n+1)) {
			attempts++
		}
	}
	if len(archived) != 3 || attempts != 1 {
		t.Errorf("archive: %d rows, %d with %d attempts; want 3 and 1", len(archived), attempts, n+1)
	}
}

func TestPermanentRefusalGivesUpThatSinkOnly(t *testing.T) {
	f := newFixture(t, "slack", "webhook")
	store := f.store(t)
	slack, hook := &sink{name: "slack", permanent: true}, &sink{name: "webhook"}
	d := outbox.NewDispatcher(store, []notify.Sink{slack, hook}, outbox.Options{Now: f.clk.Now})
	commit(t, store, read("arm-1", t0, fleet.ChannelSecurityPatch))
	if rep := dispatch(t, d); rep.GaveUp != 2 || rep.Sent != 2 || rep.Pending != 0 {
		t.Fatalf("dispatch = %+v, want 2 given up, 2 sent, nothing pending", rep)
	}
	if slack.calls != 2 {
		t.Errorf("slack called %d times, want once per step", slack.calls)
	}
	_, archived := f.rows(t)
	for _, e := range archived {
		if !strings.Contains(e["Deliveries"].(string), `"gaveUp":true`) || !strings.Contains(e["Deliveries"].(string), "status 400") {
			t.Errorf("archived deliveries = %s", e["Deliveries"])
		}
	}
}

// The webhook sink end to end: the CloudEvent that reaches an HTTP receiver
// carries the intent's id, so a resend after a lost answer is recognisable.
func TestWebhookReceivesCloudEventsWithStableIDs(t *testing.T) {
	var mu sync.Mutex
	ids := map[string]string{}
	fail := 1
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		mu.Lock()
		defer mu.Unlock()
		if fail > 0 {
			fail--
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		ids[r.Header.Get("ce-id")] = r.Header.Get("ce-type") + " " + r.Header.Get("ce-subject")
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()
	hook, err := notify.NewWebhookSink(srv.URL+"/hooks/upgradewatch", notify.Options{HTTPClient: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, hook.Name())
	store := f.store(t)
	d := outbox.NewDispatcher(store, []notify.Sink{hook}, outbox.Options{Now: f.clk.Now})
	commit(t, store, read("arm-1", t0, fleet.ChannelSecurityPatch))
	if rep := dispatch(t, d); rep.Failed != 1 || rep.Sent != 0 || rep.Pending != 2 {
		t.Fatalf("first dispatch = %+v, want 1 failed (the second waits its turn), 2 pending", rep)
	}
	f.clk.Add(outbox.RetryCap)
	if rep := dispatch(t, d); rep.Sent != 2 {
		t.Fatalf("retry = %+v, want 2 sent", rep)
	}
	c, err := store.Cluster(context.Background(), aks)
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 2 || len(c.Outbox) != 0 {
		t.Fatalf("receiver has %v; outbox %d", ids, len(c.Outbox))
	}
	for id, what := range ids {
		if len(id) != 32 || !strings.HasPrefix(what, "io.upgradewatch.finding.opened "+aks.ResourceID()) {
			t.Errorf("received %s: %s", id, what)
		}
	}
}

func TestDispatchReportsStorageDown(t *testing.T) {
	svc := azuritetest.Service(t, "http://127.0.0.1:1/devstoreaccount1")
	st := state.New(svc, state.Options{})
	defer st.Close()
	s := watch.New(st, watch.Options{Rules: outbox.Evaluator(findings.Evaluator(nil), outbox.Config{Sinks: []string{"webhook"}})})
	d := outbox.NewDispatcher(s, []notify.Sink{&sink{name: "webhook"}}, outbox.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := d.Dispatch(ctx, aks); !errors.Is(err, state.ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
}

// cluster is the i-th of a fleet of payments clusters.
func cluster(i int) fleet.ClusterID {
	c := aks
	c.Name = fmt.Sprintf("aks-payments-%02d", i)
	return c
}

// A sink that keeps failing trips its breaker: it is not called for the
// cool-off, what it owes stays owed with its retry time set to when the
// breaker lets a probe through (so the Sweep's Due index finds the clusters
// then), the healthy sink carries on, and once the probe succeeds everything
// is delivered once. A failed probe doubles the cool-off.
func TestBreakerHoldsBackAFailingSink(t *testing.T) {
	const coolOff = 10 * time.Minute
	f := newFixture(t, "teams", "webhook")
	store := f.store(t)
	teams, hook := &sink{name: "teams", failFirst: 4}, &sink{name: "webhook"}
	d := outbox.NewDispatcher(store, []notify.Sink{teams, hook}, outbox.Options{Now: f.clk.Now, BreakerFailures: 3, BreakerCoolOff: coolOff})
	for i := range 5 {
		sig := read(fmt.Sprintf("arm-%d", i), t0, fleet.ChannelSecurityPatch)
		sig.Cluster = cluster(i)
		commit(t, store, sig) // ChannelDrift and MaintenanceWindowMissing open
	}
	dispatchTo := func(i int) outbox.Report {
		t.Helper()
		rep, err := d.Dispatch(context.Background(), cluster(i))
		if err != nil {
			t.Fatalf("dispatch %s: %v", cluster(i).Name, err)
		}
		return rep
	}
	teamsOwed := func(i int) []*fleet.Delivery {
		t.Helper()
		c, err := store.Cluster(context.Background(), cluster(i))
		if err != nil {
			t.Fatal(err)
		}
		var out []*fleet.Delivery
		for _, in := range c.Outbox {
			if dl := in.Deliveries["teams"]; dl != nil && !dl.Done() {
				out = append(out, dl)
			}
		}
		return out
	}

	// Three clusters: Teams fails once each (a failure ends its turn), and
	// the third failure opens the breaker until t0+coolOff.
	for i := range 3 {
		if rep := dispatchTo(i); rep.Failed != 1 || rep.Sent != 2 {
			t.Fatalf("dispatch %d = %+v, want teams failed once, webhook sent 2", i, rep)
		}
	}
	// The next clusters: Teams is not called; its deliveries are held back.
	for i := 3; i < 5; i++ {
		if rep := dispatchTo(i); rep.Deferred != 2 || rep.Sent != 2 || rep.Failed != 0 {
			t.Fatalf("dispatch %d with the breaker open = %+v, want 2 deferred, webhook sent 2", i, rep)
		}
	}
	if teams.calls != 3 {
		t.Fatalf("teams was called %d times, want 3 (none while its breaker is open)", teams.calls)
	}
	for i := range 5 {
		owed := teamsOwed(i)
		if len(owed) != 2 {
			t.Fatalf("%s owes teams %d, want 2", cluster(i).Name, len(owed))
		}
		// The clusters whose failure tripped the breaker, or that came after.
		for _, dl := range owed {
			if i >= 2 && !dl.NextAttempt.Equal(t0.Add(coolOff)) || dl.Leased(f.clk.Now()) {
				t.Errorf("%s: teams delivery %+v, want its retry when the breaker half-opens (%s), unleased", cluster(i).Name, dl, t0.Add(coolOff))
			}
		}
	}
	due := func(at time.Time) map[string]bool {
		t.Helper()
		ds, err := store.Due(context.Background(), at, 100)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]bool{}
		for _, e := range ds {
			out[e.Cluster.Name] = true
		}
		return out
	}
	if got := due(t0.Add(coolOff)); len(got) != 5 {
		t.Fatalf("due when the breaker half-opens: %v, want all 5 clusters", got)
	}

	// Half-open: one probe, which fails (the 4th failure): open twice as long.
	f.clk.Add(coolOff)
	if rep := dispatchTo(0); rep.Failed != 1 {
		t.Fatalf("probe = %+v, want one failed send", rep)
	}
	if rep := dispatchTo(1); rep.Deferred != 2 || teams.calls != 4 {
		t.Fatalf("after the failed probe: %+v, %d calls; want 2 deferred and no call", rep, teams.calls)
	}
	for _, dl := range teamsOwed(1) {
		if want := t0.Add(coolOff + 2*coolOff); !dl.NextAttempt.Equal(want) {
			t.Errorf("after the failed probe: next attempt %s, want %s", dl.NextAttempt, want)
		}
	}

	// The probe then succeeds: the breaker closes and everything is sent once.
	f.clk.Add(2 * coolOff)
	for i := range 5 {
		dispatchTo(i)
	}
	for i := range 5 {
		if owed := teamsOwed(i); len(owed) != 0 {
			t.Errorf("%s still owes teams %d", cluster(i).Name, len(owed))
		}
	}
	if got, want := len(teams.received(t)), 10; got != want {
		t.Errorf("teams received %d, want %d", got, want)
	}
	if got, want := len(hook.received(t)), 10; got != want {
		t.Errorf("webhook received %d, want %d", got, want)
	}
}

// A sink that hangs never delays another's sends or commits: its dispatch
// holds its own leases, the healthy sink's dispatch of the same clusters
// commits meanwhile, and what the hanging sink owes stays owed.
func TestHangingSinkHoldsOnlyItsOwnLeases(t *testing.T) {
	const clusters = 30 // two notifications each
	release := make(chan struct{})
	hanging := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer hanging.Close()
	defer close(release)
	teams, err := notify.NewTeamsSink(hanging.URL+"/workflows/5f0e1c2d/triggers/manual/paths/invoke", notify.Options{Timeout: 10 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, "teams", "webhook")
	store := f.store(t)
	hook := &sink{name: "webhook"}
	d := outbox.NewDispatcher(store, []notify.Sink{teams, hook}, outbox.Options{Now: f.clk.Now})
	for i := range clusters {
		sig := read(fmt.Sprintf("arm-%d", i), t0, fleet.ChannelSecurityPatch)
		sig.Cluster = cluster(i)
		commit(t, store, sig)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var hung sync.WaitGroup
	for i := range clusters {
		hung.Add(1)
		go func() {
			defer hung.Done()
			_, _ = d.DispatchSink(ctx, cluster(i), "teams") // blocks until cancelled
		}()
	}
	var wg sync.WaitGroup
	for i := range clusters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if rep, err := d.DispatchSink(context.Background(), cluster(i), "webhook"); err != nil || rep.Sent != 2 {
				t.Errorf("webhook dispatch %d: %+v %v, want 2 sent", i, rep, err)
			}
		}()
	}
	wg.Wait()
	if got := len(hook.received(t)); got != 2*clusters {
		t.Errorf("webhook received %d while teams hangs, want %d", got, 2*clusters)
	}
	cancel() // the hanging sends fail now: a transient failure, retried later
	hung.Wait()
	for i := range clusters {
		c, err := store.Cluster(context.Background(), cluster(i))
		if err != nil {
			t.Fatal(err)
		}
		if len(c.Outbox) != 2 {
			t.Errorf("%s owes %d intents, want 2 (to teams)", cluster(i).Name, len(c.Outbox))
		}
		for _, in := range c.Outbox {
			if dl := in.Deliveries["teams"]; dl == nil || dl.Done() {
				t.Errorf("%s: teams delivery %+v, want owed", cluster(i).Name, dl)
			}
			if dl := in.Deliveries["webhook"]; dl == nil || dl.SentAt.IsZero() {
				t.Errorf("%s: webhook delivery %+v, want sent", cluster(i).Name, dl)
			}
		}
	}
}
