package handlers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
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
	"github.com/upgradewatch/upgradewatch/internal/watch"
)

// chatReceiver is a Teams or Slack webhook: it keeps every body it accepted.
type chatReceiver struct {
	*httptest.Server
	mu     sync.Mutex
	bodies []string
}

func newChatReceiver(t *testing.T) *chatReceiver {
	r := &chatReceiver{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.bodies = append(r.bodies, string(b))
		r.mu.Unlock()
		_, _ = io.WriteString(w, "1")
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *chatReceiver) messages() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.bodies...)
}

// groupKeys records each CloudEvent's groupkey by id.
type groupKeys struct {
	*httptest.Server
	mu   sync.Mutex
	keys map[string][]string
}

func newGroupKeys(t *testing.T) *groupKeys {
	r := &groupKeys{keys: map[string][]string{}}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		_, _ = io.Copy(io.Discard, req.Body)
		r.mu.Lock()
		r.keys[req.Header.Get("ce-id")] = append(r.keys[req.Header.Get("ce-id")], req.Header.Get("ce-groupkey"))
		r.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *groupKeys) snapshot() map[string][]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string][]string{}
	for k, v := range r.keys {
		out[k] = append([]string(nil), v...)
	}
	return out
}

// groupedSteps adds up the steps of grouped chat messages: each names its
// count in its footer ("upgradewatch · 20 steps · group …"); a message of one
// step is that step's own card.
func groupedSteps(t *testing.T, bodies [][]byte) int {
	t.Helper()
	n := 0
	for _, b := range bodies {
		m := stepsRe.FindSubmatch(b)
		if m == nil {
			n++
			continue
		}
		k, err := strconv.Atoi(string(m[1]))
		if err != nil {
			t.Fatal(err)
		}
		n += k
	}
	return n
}

var stepsRe = regexp.MustCompile(`upgradewatch · (\d+) steps · group [0-9a-f]{32}`)

// poolFailed is Event Grid's NodePoolRollingFailed for one pool of
// aks-shop-01, as the host delivers it.
func poolFailed(t *testing.T, i int, pool string, at time.Time) []byte {
	t.Helper()
	topic := "/subscriptions/8f1c2b3a-4d5e-4f60-9a7b-1c2d3e4f5a6b/resourceGroups/rg-shops-weu/providers/Microsoft.ContainerService/managedClusters/aks-shop-01"
	ev := fmt.Sprintf(`{"id":"4e1f0a2b-3c4d-4e5f-8a6b-%012d","topic":%q,"subject":"aks-shop-01","eventType":"Microsoft.ContainerService.NodePoolRollingFailed",
		"eventTime":%q,"data":{"nodePoolName":%q},"dataVersion":"1","metadataVersion":"1"}`, i, topic, at.Format(time.RFC3339Nano), pool)
	body, err := host.NewEventGridRequest("event", "AksEvents", json.RawMessage(ev), at, fmt.Sprintf("9c8b7a6d-5e4f-4a3b-8c2d-%012d", i))
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// Five pools of one cluster fail within one dispatch window: the webhook
// gets five CloudEvents as they happen, each with the same groupkey; Teams
// and Slack get nothing until the window ends, then, from the Sweep, one
// message each listing all five.
func TestFiveFindingsInOneWindowOneTeamsOneSlackMessage(t *testing.T) {
	const wait = 30 * time.Second
	now := time.Date(2026, 11, 24, 9, 30, 0, 0, time.UTC)
	clk := &clock{t: now}
	teamsRx, slackRx, hookRx := newChatReceiver(t), newChatReceiver(t), newGroupKeys(t)
	teams, err := notify.NewTeamsSink(teamsRx.URL+"/workflows/5f0e1c2d/triggers/manual/paths/invoke", notify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	slack, err := notify.NewSlackSink(slackRx.URL+"/services/T0AB12CDE/B0FG34HIJ/s3cr3t", notify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	webhook, err := notify.NewWebhookSink(hookRx.URL+"/hooks/upgradewatch", notify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	sinks := []notify.Sink{webhook, teams, slack}
	cfg := outbox.Config{Sinks: []string{"webhook", "teams", "slack"}, Grouped: outbox.GroupedSinks(sinks), GroupWait: wait}
	p := fleet.Policy{NodeOSChannel: fleet.ChannelNodeImage, Source: "defaults"}.WithDefaults()
	store := newStore(t, state.Options{Now: clk.now})
	srv := newServer(store, watch.Options{Rules: outbox.Evaluator(findings.Evaluator(
		func(*fleet.Cluster) (fleet.Policy, []string) { return p, nil }), cfg),
		NewDispatcher: dispatcher(sinks, outbox.Options{Now: clk.now})}, handlers.Options{Now: clk.now})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})

	for i, pool := range []string{"system", "payments", "batch", "ingress", "gpu"} {
		if code, _, sum := invokeRaw(t, srv, poolFailed(t, i, pool, clk.now().Add(-time.Minute))); code != http.StatusOK || sum["committed"] != float64(1) {
			t.Fatalf("event %d: %d %v", i, code, sum)
		}
		clk.set(clk.now().Add(4 * time.Second))
	}
	// The background lanes send the CloudEvents as the steps come (one a
	// lane's run left behind waits for the Sweep); the chat lanes send
	// nothing inside the window.
	waitIdle(t, srv)
	if n := len(hookRx.snapshot()); n == 0 {
		t.Fatal("the webhook received nothing during the window")
	}
	if len(teamsRx.messages())+len(slackRx.messages()) != 0 {
		t.Fatalf("a chat sink was sent to inside the window: teams %d, slack %d", len(teamsRx.messages()), len(slackRx.messages()))
	}

	at := now.Add(wait + time.Second)
	clk.set(at)
	_, _, sum := (&env{srv: srv}).invoke(t, "Sweep", timerInvocation(t, at))
	if due, _ := sum["due"].(float64); due < 1 {
		t.Errorf("sweep at the window's end: %v, want the cluster due", sum)
	}
	const head = "aks-shop-01: 5 opened"
	for name, rx := range map[string]*chatReceiver{"teams": teamsRx, "slack": slackRx} {
		msgs := rx.messages()
		if len(msgs) != 1 {
			t.Errorf("%s received %d messages, want 1", name, len(msgs))
			continue
		}
		for _, want := range []string{head, "UpgradeFailed opened on pool system", "UpgradeFailed opened on pool gpu", "5 steps · group "} {
			if !strings.Contains(msgs[0], want) {
				t.Errorf("%s message lacks %q: %.300s", name, want, msgs[0])
			}
		}
	}
	_, _, _ = (&env{srv: srv}).invoke(t, "Sweep", timerInvocation(t, at.Add(5*time.Minute)))
	if len(teamsRx.messages()) != 1 || len(slackRx.messages()) != 1 {
		t.Errorf("another sweep sent again: teams %d, slack %d", len(teamsRx.messages()), len(slackRx.messages()))
	}
	var key string
	if n := len(hookRx.snapshot()); n != 5 {
		t.Errorf("the webhook received %d CloudEvents, want 5", n)
	}
	for id, keys := range hookRx.snapshot() {
		if len(keys) != 1 || keys[0] == "" || key != "" && keys[0] != key {
			t.Errorf("CloudEvent %s: groupkey %q, want one, the same for all five", id, keys)
		}
		key = keys[0]
	}
	c, err := store.Cluster(context.Background(), fleet.ClusterID{SubscriptionID: "8f1c2b3a-4d5e-4f60-9a7b-1c2d3e4f5a6b", ResourceGroup: "rg-shops-weu", Name: "aks-shop-01"})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Outbox) != 0 {
		t.Errorf("the outbox still owes %d intents", len(c.Outbox))
	}
}
