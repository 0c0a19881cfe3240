package handlers_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/upgradewatch/upgradewatch/handlers"
	"github.com/upgradewatch/upgradewatch/internal/azuritetest"
	"github.com/upgradewatch/upgradewatch/internal/findings"
	"github.com/upgradewatch/upgradewatch/internal/fleet"
	"github.com/upgradewatch/upgradewatch/internal/host"
	"github.com/upgradewatch/upgradewatch/internal/notify"
	"github.com/upgradewatch/upgradewatch/internal/outbox"
	"github.com/upgradewatch/upgradewatch/internal/state"
	"github.com/upgradewatch/upgradewatch/internal/watch"
)

// weuProd is the cluster of eg-cluster-35-pools.json.
var weuProd = fleet.ClusterID{SubscriptionID: "7f3c2a91-5b4e-4d1f-9e8a-2c6b0d4f1a37", ResourceGroup: "rg-aks-weu-prod", Name: "aks-weu-prod-01"}

// limitsNow: an hour after the notification; the pools' April images are
// stale, so each of the 35 pools opens an ImageStale finding.
var limitsNow = time.Date(2026, 5, 3, 6, 41, 0, 0, time.UTC)

// sinkServer is one notification endpoint: it records each request's body
// and CloudEvent id header (binary mode).
type sinkServer struct {
	mu     sync.Mutex
	bodies [][]byte
	ceIDs  []string
	srv    *httptest.Server
}

func newSinkServer(t *testing.T) *sinkServer {
	s := &sinkServer{}
	// TLS: the Event Grid client sends its key over https only. httptest
	// servers share one certificate, so one client trusts them all.
	s.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.bodies = append(s.bodies, b)
		if id := r.Header.Get("Ce-Id"); id != "" {
			s.ceIDs = append(s.ceIDs, id)
		}
		s.mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *sinkServer) count() int { s.mu.Lock(); defer s.mu.Unlock(); return len(s.bodies) }

// ids lists the CloudEvent ids the sink received: binary-mode headers
// (webhook) or the events of a batch (Event Grid).
func (s *sinkServer) ids(t *testing.T) []string {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.ceIDs) > 0 {
		return append([]string(nil), s.ceIDs...)
	}
	var out []string
	for _, b := range s.bodies {
		var batch []struct{ ID string }
		if err := json.Unmarshal(b, &batch); err != nil {
			t.Fatalf("not a CloudEvents batch (%v): %.200s", err, b)
		}
		for _, e := range batch {
			out = append(out, e.ID)
		}
	}
	return out
}

// allSinksEnv is every sink cmd/handler can configure, each on its own server.
type allSinksEnv struct {
	webhook, eventGrid, teams, slack *sinkServer
	sinks                            []notify.Sink
}

func newAllSinks(t *testing.T) *allSinksEnv {
	e := &allSinksEnv{webhook: newSinkServer(t), eventGrid: newSinkServer(t), teams: newSinkServer(t), slack: newSinkServer(t)}
	cfg := notify.Config{
		WebhookURL:        e.webhook.srv.URL + "/hooks/upgradewatch",
		EventGridEndpoint: e.eventGrid.srv.URL + "/api/events",
		EventGridKey:      "dGVzdC1ldmVudGdyaWQta2V5",
		TeamsURL:          e.teams.srv.URL + "/workflows/teams",
		SlackURL:          e.slack.srv.URL + "/services/T0/B0/slack",
	}
	sinks, err := notify.NewSinks(cfg, nil, notify.Options{HTTPClient: e.webhook.srv.Client()})
	if err != nil || len(sinks) != 4 {
		t.Fatalf("sinks: %d %v", len(sinks), err)
	}
	e.sinks = sinks
	return e
}

// instance is one upgradewatch process as cmd/handler wires it (rules,
// outbox, dispatcher), on tables shared with the others of the test.
func instance(t *testing.T, prefix string, s *allSinksEnv, clk *clock) (*handlers.Server, *state.Store) {
	t.Helper()
	svc := azuritetest.Service(t, azuritetest.Endpoint(t))
	cfg := outbox.Config{RemindEvery: 24 * time.Hour}
	for _, sk := range s.sinks {
		cfg.Sinks = append(cfg.Sinks, sk.Name())
	}
	p := fleet.Policy{NodeOSChannel: fleet.ChannelNodeImage}.WithDefaults()
	store := state.New(svc, state.Options{TablePrefix: prefix, CacheSize: 100, Now: clk.now})
	t.Cleanup(store.Close)
	if err := store.EnsureTables(context.Background()); err != nil {
		t.Fatal(err)
	}
	srv := newServer(store, watch.Options{Rules: outbox.Evaluator(findings.Evaluator(func(*fleet.Cluster) (fleet.Policy, []string) { return p, nil }), cfg),
		NewDispatcher: dispatcher(s.sinks, outbox.Options{Now: clk.now, PublicURL: "https://upgradewatch-prod.azurewebsites.net"})},
		handlers.Options{Now: clk.now})
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	return srv, store
}

func aksEvent(t *testing.T, event []byte, invocation string) []byte {
	t.Helper()
	body, err := host.NewEventGridRequest("event", handlers.FunctionAksEvents, json.RawMessage(event), limitsNow, invocation)
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// A resource notification of a 35-pool cluster, with every sink configured,
// needs more rows than one transaction holds (35 pools, 35 findings and
// their intents, …). Delivered three times to each of two instances at
// once, it commits every pool once, opens each finding once, and each sink
// receives each notification once. It used to be refused, answered 200 and
// lost.
func TestResourceNotificationOf35PoolsCommitsOnce(t *testing.T) {
	sinks := newAllSinks(t)
	clk := &clock{t: limitsNow}
	prefix := strings.TrimSuffix(newStore(t, state.Options{}).Tables()[0], state.TableFleet)
	a, store := instance(t, prefix, sinks, clk)
	b, _ := instance(t, prefix, sinks, clk)
	event := readFixture(t, "eg-cluster-35-pools.json")

	var wg sync.WaitGroup
	codes := make(chan string, 6)
	for i, srv := range []*handlers.Server{a, b, a, b, a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, _, sum := (&env{srv: srv}).invoke(t, handlers.FunctionAksEvents, aksEvent(t, event, fmt.Sprintf("inv-%d", i)))
			codes <- fmt.Sprintf("%d committed=%v duplicates=%v rejected=%v", code, sum["committed"], sum["duplicates"], sum["rejected"])
		}()
	}
	wg.Wait()
	close(codes)
	committed := 0
	for c := range codes {
		if !strings.HasPrefix(c, "200 ") || strings.Contains(c, "rejected=1") {
			t.Errorf("delivery answered %s, want 200 committed or duplicate", c)
		}
		if strings.Contains(c, "committed=1") {
			committed++
		}
	}
	if committed != 1 {
		t.Errorf("%d deliveries committed, want exactly 1", committed)
	}
	waitIdle(t, a)
	waitIdle(t, b)
	// A dispatch sends a batch; the sweeps of both instances send the rest.
	for i := range 4 {
		srv := []*handlers.Server{a, b}[i%2]
		if code, _, _ := (&env{srv: srv}).invoke(t, "Sweep", timerInvocation(t, clk.now())); code != http.StatusOK {
			t.Fatalf("sweep: %d", code)
		}
		waitIdle(t, srv)
	}

	c, err := store.Cluster(context.Background(), weuProd)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Pools) != 35 || c.Signals != 1 {
		t.Fatalf("pools = %d, signals = %d; want 35 and 1", len(c.Pools), c.Signals)
	}
	stale := 0
	for _, f := range c.Findings {
		if f.Code == fleet.CodeImageStale {
			stale++
		}
		if f.Opened != 1 {
			t.Errorf("finding %s opened %d times", f.Key(), f.Opened)
		}
	}
	if stale != 35 {
		t.Errorf("%d ImageStale findings, want 35", stale)
	}
	want := len(c.Findings)
	for name, s := range map[string]*sinkServer{"webhook": sinks.webhook, "eventgrid": sinks.eventGrid} {
		if n := s.count(); n != want {
			t.Errorf("%s received %d notifications, want %d (one per finding)", name, n, want)
		}
	}
	// Teams and Slack get the cluster's steps grouped, up to 20 a message
	// (outbox.DefaultBatch): every finding once, in as few messages.
	for name, s := range map[string]*sinkServer{"teams": sinks.teams, "slack": sinks.slack} {
		s.mu.Lock()
		msgs, steps := len(s.bodies), groupedSteps(t, s.bodies)
		s.mu.Unlock()
		if steps != want || msgs != (want+outbox.DefaultBatch-1)/outbox.DefaultBatch {
			t.Errorf("%s received %d steps in %d messages, want %d (one per finding) in as few messages", name, steps, msgs, want)
		}
	}
	for name, s := range map[string]*sinkServer{"webhook": sinks.webhook, "eventgrid": sinks.eventGrid} {
		seen := map[string]bool{}
		for _, id := range s.ids(t) {
			if seen[id] {
				t.Errorf("%s received CloudEvent %s twice", name, id)
			}
			seen[id] = true
		}
	}
}

// forgedPoolWrite is an activity-log alert of a write to a pool nothing else
// ever showed, as anyone holding the function key could post.
func forgedPoolWrite(t *testing.T, i int) []byte {
	t.Helper()
	b := readFixture(t, "activity/alert-pool-write-forged.json")
	b = bytes.ReplaceAll(b, []byte("forged000"), []byte(fmt.Sprintf("forged%03d", i)))
	return bytes.ReplaceAll(b, []byte("c0ffee00-0000-4000-8000-000000000000"), []byte(fmt.Sprintf("c0ffee00-0000-4000-8000-%012d", i)))
}

// 110 forged pool writes create at most fleet.MaxSecondHandPools pools and
// block nothing: the genuine resource notification and a node snapshot that
// follow commit. They used to create 110 pools, after which every change of
// the cluster needed more rows than a transaction holds and was refused.
func TestForgedPoolWritesAreBoundedAndBlockNothing(t *testing.T) {
	clk := &clock{t: limitsNow}
	store := newStore(t, state.Options{})
	srv := newServer(store, watch.Options{}, handlers.Options{Now: clk.now})
	for i := range 110 {
		if code, res := postAlert(t, srv, forgedPoolWrite(t, i)); code != http.StatusOK {
			t.Fatalf("forged write %d: %d %v", i, code, res)
		}
	}
	c, err := store.Cluster(context.Background(), weuProd)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Pools) != fleet.MaxSecondHandPools || len(c.Activities) < 100 {
		t.Fatalf("after 110 forged writes: %d pools, %d activities kept as evidence; want %d pools",
			len(c.Pools), len(c.Activities), fleet.MaxSecondHandPools)
	}

	code, _, sum := (&env{srv: srv}).invoke(t, handlers.FunctionAksEvents, aksEvent(t, readFixture(t, "eg-cluster-35-pools.json"), "inv-rn"))
	if code != http.StatusOK || sum["committed"] != float64(1) {
		t.Fatalf("the genuine notification after the forged writes: %d %v", code, sum)
	}
	clk.set(time.Date(2026, 10, 5, 8, 1, 0, 0, time.UTC)) // the snapshot's time
	path := "/api/clusters/" + weuProd.SubscriptionID + "/" + weuProd.ResourceGroup + "/" + weuProd.Name + "/nodes"
	if code, res := serve(t, srv, http.MethodPost, path, inventoryFixture(t, "compact.json")); code != http.StatusOK {
		t.Fatalf("a node snapshot after the forged writes: %d %v", code, res)
	}
	c, err = store.Cluster(context.Background(), weuProd)
	if err != nil {
		t.Fatal(err)
	}
	// The notification lists every pool: the forged ones are gone, the 35
	// real ones present, and the snapshot's nodes counted.
	for name, p := range c.Pools {
		if strings.HasPrefix(name, "forged") != p.Removed {
			t.Errorf("pool %s removed = %v", name, p.Removed)
		}
	}
	if c.Pools["user34"] == nil || c.Pools["system"].Nodes == nil || c.Pools["system"].Nodes.Nodes == 0 {
		t.Errorf("pools after the notification and the snapshot: user34 %v, system nodes %+v", c.Pools["user34"], c.Pools["system"].Nodes)
	}
}
