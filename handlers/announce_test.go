package handlers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/upgradewatch/upgradewatch/handlers"
	"github.com/upgradewatch/upgradewatch/internal/findings"
	"github.com/upgradewatch/upgradewatch/internal/fleet"
	"github.com/upgradewatch/upgradewatch/internal/host"
	"github.com/upgradewatch/upgradewatch/internal/notify"
	"github.com/upgradewatch/upgradewatch/internal/outbox"
	"github.com/upgradewatch/upgradewatch/internal/state"
	"github.com/upgradewatch/upgradewatch/internal/timeline"
	"github.com/upgradewatch/upgradewatch/internal/watch"
)

// stepReceiver is the webhook sink's receiver: it keeps every finding step
// it accepted as "<type> <cluster> <code> <target>", with a count.
type stepReceiver struct {
	*httptest.Server
	mu    sync.Mutex
	steps map[string]int
}

func newStepReceiver(t *testing.T) *stepReceiver {
	r := &stepReceiver{steps: map[string]int{}}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		var d struct{ Cluster, Code, Target string }
		_ = json.Unmarshal(b, &d)
		r.mu.Lock()
		r.steps[stepKey(req.Header.Get("ce-type"), d.Cluster, d.Code, d.Target)]++
		r.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(r.Close)
	return r
}

func stepKey(typ, cluster, code, target string) string {
	return strings.Join([]string{typ, strings.ToLower(cluster), code, target}, " ")
}

func (r *stepReceiver) count(typ, cluster, code, target string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.steps[stepKey(typ, cluster, code, target)]
}

func (r *stepReceiver) all() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]int, len(r.steps))
	for k, v := range r.steps {
		out[k] = v
	}
	return out
}

// announceEnv is a handler with the default graces and a webhook sink.
type announceEnv struct {
	srv   *handlers.Server
	store *state.Store
	clk   *clock
	hook  *stepReceiver
}

func newAnnounceEnv(t *testing.T, clk *clock, p fleet.Policy, silences func(time.Time) []fleet.Silence) *announceEnv {
	t.Helper()
	hook := newStepReceiver(t)
	webhook, err := notify.NewWebhookSink(hook.URL+"/hooks/upgradewatch", notify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := outbox.Config{Sinks: []string{"webhook"}, Grace: outbox.DefaultGrace(), Silences: silences}
	store := newStore(t, state.Options{Now: clk.now})
	srv := newServer(store, watch.Options{Rules: outbox.Evaluator(findings.Evaluator(
		func(*fleet.Cluster) (fleet.Policy, []string) { return p, nil }), cfg),
		NewDispatcher: dispatcher([]notify.Sink{webhook}, outbox.Options{Now: clk.now})}, handlers.Options{Now: clk.now})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return &announceEnv{srv: srv, store: store, clk: clk, hook: hook}
}

// sweep runs the Sweep at at, as the timer does, and waits for what it queued.
func (e *announceEnv) sweep(t *testing.T, at time.Time) map[string]any {
	t.Helper()
	e.clk.set(at)
	_, _, sum := (&env{srv: e.srv}).invoke(t, "Sweep", timerInvocation(t, at))
	waitIdle(t, e.srv)
	return sum
}

func (e *announceEnv) event(t *testing.T, raw string, at time.Time) {
	t.Helper()
	body, err := host.NewEventGridRequest("event", "AksEvents", json.RawMessage(raw), at, "5e4d3c2b-1a09-4f8e-9d7c-6b5a4f3e2d1c")
	if err != nil {
		t.Fatal(err)
	}
	if code, _, sum := invokeRaw(t, e.srv, body); code != http.StatusOK {
		t.Fatalf("event: %d %v", code, sum)
	}
}

func rollingRaw(id, cluster, kind, pool string, at time.Time) string {
	topic := "/subscriptions/8f1c2b3a-4d5e-4f60-9a7b-1c2d3e4f5a6b/resourceGroups/rg-shops-weu/providers/Microsoft.ContainerService/managedClusters/" + cluster
	return fmt.Sprintf(`{"id":%q,"topic":%q,"subject":%q,"eventType":"Microsoft.ContainerService.NodePool%s",
		"eventTime":%q,"data":{"nodePoolName":%q},"dataVersion":"1","metadataVersion":"1"}`,
		id, topic, cluster, kind, at.Format(time.RFC3339Nano), pool)
}

func shopCluster(name string) string {
	return "/subscriptions/8f1c2b3a-4d5e-4f60-9a7b-1c2d3e4f5a6b/resourceGroups/rg-shops-weu/providers/Microsoft.ContainerService/managedClusters/" + name
}

// A failure that outlives its grace (UpgradeFailed: 5 minutes) is announced
// once, by the Sweep at the grace's end; one that its retry cures inside the
// grace sends nothing at all, not even later.
func TestGraceAnnouncesThroughTheSweep(t *testing.T) {
	t0 := time.Date(2026, 11, 24, 9, 30, 0, 0, time.UTC)
	clk := &clock{t: t0}
	e := newAnnounceEnv(t, clk, fleet.Policy{Source: "defaults"}.WithDefaults(), nil)

	e.event(t, rollingRaw("3c1b9a2e-0001-4f00-8000-000000000001", "aks-shop-01", "RollingFailed", "system", t0.Add(-time.Minute)), t0)
	e.event(t, rollingRaw("3c1b9a2e-0002-4f00-8000-000000000002", "aks-shop-02", "RollingFailed", "system", t0.Add(-time.Minute)), t0)
	waitIdle(t, e.srv)
	if got := e.hook.all(); len(got) != 0 {
		t.Fatalf("inside the grace the webhook got %v, want nothing", got)
	}
	// The retry of shop-02 succeeds two minutes later.
	clk.set(t0.Add(2 * time.Minute))
	e.event(t, rollingRaw("3c1b9a2e-0003-4f00-8000-000000000003", "aks-shop-02", "RollingSucceeded", "system", t0.Add(2*time.Minute)), t0.Add(2*time.Minute))

	if sum := e.sweep(t, t0.Add(4*time.Minute)); sum["due"] != float64(0) {
		t.Errorf("sweep before the grace's end: %v, want nothing due", sum)
	}
	if got := e.hook.all(); len(got) != 0 {
		t.Fatalf("before the grace's end the webhook got %v", got)
	}
	e.sweep(t, t0.Add(5*time.Minute))
	e.sweep(t, t0.Add(10*time.Minute))
	e.sweep(t, t0.Add(time.Hour))
	opened := e.hook.count(notify.TypeFindingOpened, shopCluster("aks-shop-01"), fleet.CodeUpgradeFailed, "pool/system")
	if got := e.hook.all(); opened != 1 || len(got) != 1 {
		t.Errorf("after the grace: %v, want exactly one UpgradeFailed opening of aks-shop-01", got)
	}
	c, err := e.store.Cluster(context.Background(), fleet.ClusterID{SubscriptionID: "8f1c2b3a-4d5e-4f60-9a7b-1c2d3e4f5a6b", ResourceGroup: "rg-shops-weu", Name: "aks-shop-02"})
	if err != nil {
		t.Fatal(err)
	}
	f := c.Findings[fleet.FindingKey(fleet.CodeUpgradeFailed, "pool/system")]
	if f == nil || f.Status != fleet.FindingResolved || f.Announcement() != fleet.AnnouncementNever {
		t.Errorf("aks-shop-02's failure: %+v, want resolved and never announced", f)
	}
}

// Three weeks of events arrive late, all at once, shuffled and 30 %
// duplicated: nothing is sent for what opened and resolved inside the
// backlog, and each finding still open (and not held) at the end is
// announced exactly once, when its grace has passed.
func TestBacklogReplayAnnouncesOnlyWhatStaysOpen(t *testing.T) {
	evs := timeline.Generate(timeline.Options{Seed: 16, Clusters: 4, Weeks: 3, Schema: timeline.SchemaMixed,
		Start: time.Date(2026, 10, 5, 0, 0, 0, 0, time.UTC)})
	var last time.Time
	for _, ev := range evs {
		if ev.Time.After(last) {
			last = ev.Time
		}
	}
	arrive := last.Add(10 * 24 * time.Hour) // the backlog is delivered ten days late
	clk := &clock{t: arrive}
	p := fleet.Policy{NodeOSChannel: fleet.ChannelNodeImage, UpgradeChannel: fleet.UpgradePatch, Source: "defaults"}.WithDefaults()
	e := newAnnounceEnv(t, clk, p, nil)

	messy := timeline.Shuffle(timeline.WithDuplicates(evs, 0.3, 5), 11)
	for i, ev := range messy {
		clk.set(arrive.Add(time.Duration(i) * 50 * time.Millisecond))
		body, err := host.NewEventGridRequest("event", "AksEvents", ev.Raw, clk.now(), fmt.Sprintf("backlog-%d", i))
		if err != nil {
			t.Fatal(err)
		}
		if code, _, sum := invokeRaw(t, e.srv, body); code != http.StatusOK {
			t.Fatalf("event %s: %d %v", ev.ID, code, sum)
		}
	}
	waitIdle(t, e.srv)
	done := clk.now()
	for _, d := range []time.Duration{findings.Settle, time.Hour, 3 * time.Hour, 7 * time.Hour, 7*time.Hour + 5*time.Minute} {
		e.sweep(t, done.Add(d))
	}

	// What each cluster holds open at the end, against what was sent.
	want := map[string]bool{}
	for _, id := range clusterIDs(evs) {
		c, err := e.store.Cluster(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range c.Findings {
			if f.Status == fleet.FindingOpen && !f.Held() {
				want[stepKey(notify.TypeFindingOpened, id.ResourceID(), f.Code, f.Target)] = true
			}
		}
	}
	got := e.hook.all()
	var pairs, extra, missing []string
	for k, n := range got {
		typ, rest, _ := strings.Cut(k, " ")
		switch {
		case typ == notify.TypeFindingResolved && got[notify.TypeFindingOpened+" "+rest] > 0:
			pairs = append(pairs, rest)
		case typ == notify.TypeFindingOpened && (!want[k] || n != 1):
			extra = append(extra, fmt.Sprintf("%s ×%d", k, n))
		case typ != notify.TypeFindingOpened:
			extra = append(extra, k)
		}
	}
	for k := range want {
		if got[k] != 1 {
			missing = append(missing, k)
		}
	}
	sort.Strings(pairs)
	sort.Strings(extra)
	sort.Strings(missing)
	if len(want) == 0 {
		t.Fatal("no finding is open at the end of the backlog: the test proves nothing")
	}
	if len(pairs)+len(extra)+len(missing) > 0 {
		t.Errorf("open-then-resolve pairs %v\nunexpected steps %v\nopen findings not announced once %v", pairs, extra, missing)
	}
	t.Logf("%d findings open at the end, each announced once; %d steps sent in all", len(want), len(got))
}

func clusterIDs(evs []timeline.Event) []fleet.ClusterID {
	seen := map[string]fleet.ClusterID{}
	for _, ev := range evs {
		if parts := strings.Split(ev.Cluster, "~"); len(parts) == 3 {
			seen[ev.Cluster] = fleet.ClusterID{SubscriptionID: parts[0], ResourceGroup: parts[1], Name: parts[2]}
		}
	}
	out := make([]fleet.ClusterID, 0, len(seen))
	for _, id := range seen {
		out = append(out, id)
	}
	return out
}

// A rolling pool inhibits its ImageStale: it opens, shows inhibited, and
// sends nothing while the pool rolls, however long past its grace.
func TestInhibitedFindingsSendNothing(t *testing.T) {
	t0 := time.Date(2026, 11, 22, 1, 0, 0, 0, time.UTC)
	clk := &clock{t: t0}
	e := newAnnounceEnv(t, clk, fleet.Policy{NodeOSChannel: fleet.ChannelNodeImage, Source: "defaults"}.WithDefaults(), nil)
	e.event(t, staleProfile, t0)
	if code, _, sum := invokeRaw(t, e.srv, rollingEvent(t, "3c1b9a2e-0004-4f00-8000-000000000004", "RollingStarted", "system", t0)); code != http.StatusOK {
		t.Fatalf("started: %d %v", code, sum)
	}
	// A pool of 30 nodes one at a time: no stall for a day (StallLimit).
	for _, d := range []time.Duration{time.Hour, 7 * time.Hour, 12 * time.Hour} {
		e.sweep(t, t0.Add(d))
	}
	if got := e.hook.all(); len(got) != 0 {
		t.Errorf("the webhook got %v, want nothing while the pool rolls", got)
	}
	c, err := e.store.Cluster(context.Background(), fleet.ClusterID{SubscriptionID: "8f1c2b3a-4d5e-4f60-9a7b-1c2d3e4f5a6b", ResourceGroup: "rg-platform-weu", Name: "aks-prod-weu"})
	if err != nil {
		t.Fatal(err)
	}
	// The inhibition is derived from the pool's state, not stored: the
	// store's copy has none, and the API (App.Cluster) marks it.
	f := c.Findings[fleet.FindingKey(fleet.CodeImageStale, "pool/system")]
	if f == nil || f.Status != fleet.FindingOpen || f.InhibitedBy != "" {
		t.Fatalf("ImageStale as stored: %+v, want open with no InhibitedBy kept", f)
	}
	if c.MarkInhibited(); f.InhibitedBy != "pool system rolling" {
		t.Fatalf("ImageStale: %+v, want inhibited by the roll", f)
	}
	code, body := serve(t, e.srv, http.MethodGet, prodAPI+"/findings?code=ImageStale", nil)
	fs, _ := body["findings"].([]any)
	if code != 200 || len(fs) != 1 || fs[0].(map[string]any)["inhibitedBy"] != "pool system rolling" {
		t.Errorf("findings API: %d %v, want inhibitedBy shown", code, body)
	}
}

// staleProfile is a resource notification of aks-prod-weu on NodeImage whose
// one pool of 30 nodes runs a September image.
const staleProfile = `{"id":"c0d1e2f3-a4b5-4c6d-8e7f-9a0b1c2d3e40","topic":"/subscriptions/8f1c2b3a-4d5e-4f60-9a7b-1c2d3e4f5a6b/resourceGroups/rg-platform-weu/providers/Microsoft.ContainerService/managedClusters/aks-prod-weu",
	  "subject":"/subscriptions/8f1c2b3a-4d5e-4f60-9a7b-1c2d3e4f5a6b/resourceGroups/rg-platform-weu/providers/Microsoft.ContainerService/managedClusters/aks-prod-weu",
	  "eventType":"Microsoft.ResourceNotifications.Resources.CreatedOrUpdated","eventTime":"2026-11-21T18:00:00Z","dataVersion":"1","metadataVersion":"1",
	  "data":{"resourceInfo":{"id":"/subscriptions/8f1c2b3a-4d5e-4f60-9a7b-1c2d3e4f5a6b/resourceGroups/rg-platform-weu/providers/Microsoft.ContainerService/managedClusters/aks-prod-weu",
	    "name":"aks-prod-weu","type":"Microsoft.ContainerService/managedClusters","location":"westeurope",
	    "properties":{"kubernetesVersion":"1.31.9","provisioningState":"Succeeded","autoUpgradeProfile":{"upgradeChannel":"patch","nodeOSUpgradeChannel":"NodeImage"},
	      "agentPoolProfiles":[{"name":"system","count":30,"vmSize":"Standard_D4ds_v5","osType":"Linux","osSKU":"Ubuntu","mode":"System",
	        "nodeImageVersion":"AKSUbuntu-2204gen2containerd-202609.10.0","upgradeSettings":{"maxSurge":"1","drainTimeoutInMinutes":30}}]}},
	    "operationalInfo":{"resourceEventTime":"2026-11-21T18:00:00Z"},"apiVersion":"2025-10-01"}}`
