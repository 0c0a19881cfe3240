package handlers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
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

// webhookReceiver is an HTTP receiver of the webhook sink: it counts the
// CloudEvents it accepted by id.
type webhookReceiver struct {
	*httptest.Server
	mu  sync.Mutex
	ids map[string]int
}

func newWebhookReceiver(t *testing.T) *webhookReceiver {
	r := &webhookReceiver{ids: map[string]int{}}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		_, _ = io.Copy(io.Discard, req.Body)
		r.mu.Lock()
		r.ids[req.Header.Get("ce-id")]++
		r.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(r.Close)
	return r
}

// received is how many distinct notifications arrived, and how many arrived
// more than once.
func (r *webhookReceiver) received() (distinct, dup int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, n := range r.ids {
		if n > 1 {
			dup++
		}
	}
	return len(r.ids), dup
}

// rollingFailed is Event Grid's NodePoolRollingFailed for pool system of a
// cluster, as the host delivers it.
func rollingFailed(t *testing.T, i int, at time.Time) []byte {
	t.Helper()
	cluster := fmt.Sprintf("aks-shop-%02d", i)
	topic := "/subscriptions/8f1c2b3a-4d5e-4f60-9a7b-1c2d3e4f5a6b/resourceGroups/rg-shops-weu/providers/Microsoft.ContainerService/managedClusters/" + cluster
	ev := fmt.Sprintf(`{"id":"7d0c5b3e-1f2a-4b6c-9d8e-%012d","topic":%q,"subject":%q,"eventType":"Microsoft.ContainerService.NodePoolRollingFailed",
		"eventTime":%q,"data":{"nodePoolName":"system"},"dataVersion":"1","metadataVersion":"1"}`,
		i, topic, cluster, at.Format(time.RFC3339Nano))
	body, err := host.NewEventGridRequest("event", "AksEvents", json.RawMessage(ev), at, fmt.Sprintf("0b7d1f3e-2c4a-4e6b-8d9f-%012d", i))
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// Teams hangs (its endpoint answers nothing until the test ends); the webhook
// is healthy. Every notification still reaches the webhook, once, while what
// Teams owes stays owed. (Two global dispatch workers stuck on Teams let
// the webhook have only the first clusters' notifications.)
func TestHangingSinkNeverDelaysAnother(t *testing.T) {
	const clusters = 60
	now := time.Date(2026, 11, 24, 9, 30, 0, 0, time.UTC)
	clk := &clock{t: now}
	release := make(chan struct{})
	hanging := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	hook := newWebhookReceiver(t)
	teams, err := notify.NewTeamsSink(hanging.URL+"/webhookb2/0a1b2c3d/IncomingWebhook/6a7b8c9d", notify.Options{Timeout: 10 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	webhook, err := notify.NewWebhookSink(hook.URL+"/hooks/upgradewatch", notify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	sinks := []notify.Sink{webhook, teams}
	cfg := outbox.Config{Sinks: []string{"webhook", "teams"}}
	p := fleet.Policy{NodeOSChannel: fleet.ChannelNodeImage, Source: "defaults"}.WithDefaults()
	store := newStore(t, state.Options{Now: clk.now})
	srv := newServer(store, watch.Options{Rules: outbox.Evaluator(findings.Evaluator(
		func(*fleet.Cluster) (fleet.Policy, []string) { return p, nil }), cfg),
		NewDispatcher: dispatcher(sinks, outbox.Options{Now: clk.now})}, handlers.Options{Now: clk.now})
	t.Cleanup(func() {
		close(release) // the hanging sends now answer 200, and the lanes drain
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		hanging.Close()
	})

	var wg sync.WaitGroup
	for i := range clusters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if code, _, sum := invokeRaw(t, srv, rollingFailed(t, i, now.Add(-time.Minute))); code != http.StatusOK || sum["committed"] != float64(1) {
				t.Errorf("event %d: %d %v", i, code, sum)
			}
		}()
	}
	wg.Wait()

	// Each cluster opened UpgradeFailed: one notification per cluster per
	// sink. The webhook gets all of them while Teams hangs.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if n, _ := hook.received(); n >= clusters || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	n, dup := hook.received()
	if n != clusters || dup != 0 {
		t.Fatalf("the healthy webhook received %d notifications (%d twice), want %d once each while Teams hangs", n, dup, clusters)
	}
	// What Teams owes stays owed; the webhook's deliveries are done.
	for i := range clusters {
		id := fleet.ClusterID{SubscriptionID: "8f1c2b3a-4d5e-4f60-9a7b-1c2d3e4f5a6b", ResourceGroup: "rg-shops-weu", Name: fmt.Sprintf("aks-shop-%02d", i)}
		c, err := store.Cluster(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if len(c.Outbox) != 1 {
			t.Fatalf("%s owes %d intents, want 1 (Teams')", id.Name, len(c.Outbox))
		}
		for _, in := range c.Outbox {
			if d := in.Deliveries["webhook"]; d == nil || d.SentAt.IsZero() {
				t.Errorf("%s: webhook delivery %+v, want sent", id.Name, d)
			}
			if d := in.Deliveries["teams"]; d == nil || d.Done() {
				t.Errorf("%s: teams delivery %+v, want still owed", id.Name, d)
			}
		}
	}
}

// dispatcher makes the App's notification dispatcher over sinks, as
// cmd/handler wires it.
func dispatcher(sinks []notify.Sink, o outbox.Options) func(outbox.Store) watch.Dispatcher {
	return func(store outbox.Store) watch.Dispatcher { return outbox.NewDispatcher(store, sinks, o) }
}
