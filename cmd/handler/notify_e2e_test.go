package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/upgradewatch/upgradewatch/internal/azuritetest"
)

// receiver keeps what a sink's endpoint accepted: chat bodies, or
// CloudEvent ids.
type receiver struct {
	*httptest.Server
	mu  sync.Mutex
	got []string
}

func newReceiver(t *testing.T, cloudEvents bool) *receiver {
	r := &receiver{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		item := string(b)
		if cloudEvents {
			item = req.Header.Get("ce-id") + " " + req.Header.Get("ce-groupkey") + " " + req.Header.Get("ce-subject")
		}
		r.mu.Lock()
		r.got = append(r.got, item)
		r.mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) items() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.got...)
}

func poolFailedEvent(i int, cluster, pool string, at time.Time) json.RawMessage {
	topic := "/subscriptions/8f1c2b3a-4d5e-4f60-9a7b-1c2d3e4f5a6b/resourceGroups/rg-shops-weu/providers/Microsoft.ContainerService/managedClusters/" + cluster
	return json.RawMessage(fmt.Sprintf(`{"id":"4e1f0a2b-3c4d-4e5f-8a6b-%012d","topic":%q,"subject":%q,"eventType":"Microsoft.ContainerService.NodePoolRollingFailed",
		"eventTime":%q,"data":{"nodePoolName":%q},"dataVersion":"1","metadataVersion":"1"}`, i, topic, cluster, at.Format(time.RFC3339Nano), pool))
}

// Two handler processes on the same tables, a named Slack sink and a route:
// five pools of aks-shop-01 fail (the payments route: its Slack and the
// webhook), one of aks-ops-01 (the default route: Teams and the webhook).
// With no Sweep at all, each chat sink gets one message when the group wait
// ends, and the webhook each step once, with its groupkey.
func TestE2EGroupedAndRoutedNotifications(t *testing.T) {
	endpoint := azuritetest.Endpoint(t)
	prefix := azuritetest.Prefix(t)
	svc := azuritetest.Service(t, endpoint)
	t.Cleanup(func() {
		azuritetest.DropTables(t, svc, prefix+"Fleet", prefix+"FleetIndex", prefix+"Rejected", prefix+"ImageCatalogue",
			prefix+"Compliance", prefix+"ComplianceFleet")
	})
	teams, slack, hook := newReceiver(t, false), newReceiver(t, false), newReceiver(t, true)
	t.Setenv("UPGRADEWATCH_NOTIFY_WEBHOOK_URL", hook.URL+"/hooks/upgradewatch")
	t.Setenv("UPGRADEWATCH_NOTIFY_TEAMS_URL", teams.URL+"/workflows/5f0e/triggers/manual/paths/invoke")
	t.Setenv("UPGRADEWATCH_NOTIFY_SINKS", "payments-slack=slack")
	t.Setenv("UPGRADEWATCH_NOTIFY_SINK_PAYMENTS_SLACK_URL", slack.URL+"/services/T0AB12CDE/B0FG34HIJ/s3cr3t")
	t.Setenv("UPGRADEWATCH_NOTIFY_GROUP_WAIT", "3s")
	t.Setenv("UPGRADEWATCH_POLICY", `{"routes": [{"name": "payments", "match": {"cluster": "aks-shop-*"}, "sinks": ["payments-slack", "webhook"]}],
		"defaultRoute": {"sinks": ["teams", "webhook"]}, "grace": {"UpgradeFailed": "0s"}}`)
	a, b := startHandler(t, endpoint, prefix), startHandler(t, endpoint, prefix)

	at := time.Now().Add(-time.Minute)
	for i, pool := range []string{"system", "payments", "batch", "ingress", "gpu"} {
		if code, _ := deliver(t, []*proc{a, b}[i%2].URL, poolFailedEvent(i, "aks-shop-01", pool, at)); code != http.StatusOK {
			t.Fatalf("event %d: status %d", i, code)
		}
	}
	if code, _ := deliver(t, b.URL, poolFailedEvent(9, "aks-ops-01", "system", at)); code != http.StatusOK {
		t.Fatalf("aks-ops-01: status %d", code)
	}

	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) && (len(slack.items()) < 1 || len(teams.items()) < 1 || len(hook.items()) < 6) {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(4 * time.Second) // anything sent twice would arrive by now
	if got := slack.items(); len(got) != 1 || !strings.Contains(got[0], "aks-shop-01: 5 opened") {
		t.Errorf("payments-slack received %d messages, want one listing the 5 openings: %.200q\n%s", len(got), got, a.log)
	}
	if got := teams.items(); len(got) != 1 || !strings.Contains(got[0], "UpgradeFailed opened on aks-ops-01, pool system") || strings.Contains(got[0], "aks-shop-01") {
		t.Errorf("teams received %d messages, want aks-ops-01's opening alone: %.200q", len(got), got)
	}
	events := hook.items()
	seen := map[string]bool{}
	keys := map[string]bool{}
	for _, e := range events {
		f := strings.Fields(e)
		if len(f) != 3 || seen[f[0]] {
			t.Errorf("webhook: %q (twice, or without a groupkey)", e)
			continue
		}
		seen[f[0]] = true
		keys[f[1]] = true
	}
	if len(events) != 6 || len(keys) != 2 {
		t.Errorf("webhook received %d CloudEvents in %d groups, want 6 in 2 (one per cluster and route)", len(events), len(keys))
	}
}
