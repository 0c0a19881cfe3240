package handlers_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/upgradewatch/upgradewatch/handlers"
	"github.com/upgradewatch/upgradewatch/internal/findings"
	"github.com/upgradewatch/upgradewatch/internal/fleet"
	"github.com/upgradewatch/upgradewatch/internal/host"
	"github.com/upgradewatch/upgradewatch/internal/state"
	"github.com/upgradewatch/upgradewatch/internal/watch"
)

// trustEnv is the app as deployed: findings evaluated on commit under a
// policy that wants NodeImage, the Sweep, and ARM reads from the SDK's fake
// server, all on one clock.
type trustEnv struct {
	srv   *handlers.Server
	store *state.Store
	world *armWorld
	clk   *clock
}

func newTrustEnv(t *testing.T) *trustEnv {
	t.Helper()
	clk := &clock{t: received}
	world := newARMWorld(t)
	world.nodeOS = "None" // drifted from the policy's NodeImage: a finding is open
	world.now = received.Add(-time.Hour)
	p := fleet.Policy{NodeOSChannel: "NodeImage", Source: "test policy"}
	store := newStore(t, state.Options{Now: clk.now})
	srv := newServer(store, watch.Options{Rules: findings.Evaluator(func(*fleet.Cluster) (fleet.Policy, []string) { return p, nil }),
		Enricher: world.reader(), EnrichTimeout: 10 * time.Second}, handlers.Options{Now: clk.now})
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	e := &trustEnv{srv: srv, store: store, world: world, clk: clk}

	// An hour ago ARM showed the cluster on channel None.
	if code, body := serve(t, srv, http.MethodPost, prodAPI+"/refresh", nil); code != http.StatusOK {
		t.Fatalf("refresh: %d %v", code, body)
	}
	if !e.driftOpen(t) {
		t.Fatal("setup: no ChannelDrift open on a cluster on channel None")
	}
	return e
}

func (e *trustEnv) cluster(t *testing.T) *fleet.Cluster {
	t.Helper()
	c, err := storeCluster(e.store)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (e *trustEnv) driftOpen(t *testing.T) bool {
	t.Helper()
	f := e.cluster(t).Findings[fleet.FindingKey(fleet.CodeChannelDrift, "cluster")]
	return f != nil && f.Status == fleet.FindingOpen
}

// armAnswers sets what the fake ARM answers the cluster GET from now on:
// 200 with the cluster, or the error status.
func (e *trustEnv) armAnswers(status int, now time.Time) {
	e.world.mu.Lock()
	defer e.world.mu.Unlock()
	if status == http.StatusOK {
		status = 0
	}
	e.world.status, e.world.now = status, now
}

func (e *trustEnv) armGets() int {
	e.world.mu.Lock()
	defer e.world.mu.Unlock()
	return e.world.gets
}

// Finding 3 of issue 12: one forged activity-log alert dated 2099 marked the
// cluster deleted and resolved its findings, and nothing genuine could undo
// it. A time beyond the clock skew is now rejected (400, recorded), and the
// cluster is unchanged.
func TestForgedAlertFromTheFutureIsRejected(t *testing.T) {
	e := newTrustEnv(t)
	before := e.cluster(t)

	code, res := postAlert(t, e.srv, readFixture(t, "activity/alert-cluster-delete-2099.json"))
	reason, _ := res["reason"].(string)
	if code != http.StatusBadRequest || res["result"] != "rejected" || !strings.Contains(reason, "2099-01-01T00:00:00Z") {
		t.Fatalf("forged alert: %d %v, want 400 rejected quoting the time sent", code, res)
	}
	c := e.cluster(t)
	if c.Deleted || c.DeletionReported != nil || len(c.Activities) != 0 || c.Signals != before.Signals || !c.LastEventAt.Equal(before.LastEventAt) {
		t.Fatalf("cluster changed: deleted %v, reported %+v, %d activities, %d signals (was %d), last event %v",
			c.Deleted, c.DeletionReported, len(c.Activities), c.Signals, before.Signals, c.LastEventAt)
	}
	if !e.driftOpen(t) {
		t.Error("the forged alert resolved ChannelDrift")
	}
	rej, err := e.store.Rejections(context.Background(), received)
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, r := range rej {
		if r.Function == handlers.FunctionActivityLogAlert && r.Disposition == state.DispositionRejected &&
			strings.Contains(r.Reason, "2099-01-01T00:00:00Z") && strings.Contains(r.Reason, "future") {
			found = true
		}
	}
	if !found {
		t.Errorf("no Rejected row naming the future time; rows: %+v", rej)
	}
	// A genuine later event is applied as usual.
	e.clk.set(received.Add(time.Hour))
	if code, _, sum := invokeRaw(t, e.srv, rollingEvent(t, "5e1c3a7f-9b2d-4e6f-8a0c-2d4f6a8c0e1b", "RollingStarted", "system", received.Add(50*time.Minute))); code != 200 || sum["committed"] != float64(1) {
		t.Fatalf("genuine rolling event: %d %v", code, sum)
	}
	waitIdle(t, e.srv)
}

// A delete learned only from an alert is evidence: the findings stay open,
// the cluster is not deleted, an ARM read is asked for at once and by the
// Sweep; ARM's answer decides. 200 clears the evidence, 404 deletes the
// cluster and resolves its findings.
func TestAlertDeleteWaitsForARM(t *testing.T) {
	for _, tc := range []struct {
		name    string
		arm     int
		deleted bool
	}{
		{"ARM still has the cluster", http.StatusOK, false},
		{"ARM answers 404", http.StatusNotFound, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newTrustEnv(t)
			// ARM is down when the alert arrives: the read it asks for fails.
			e.armAnswers(http.StatusServiceUnavailable, received)
			gets := e.armGets()
			code, res := postAlert(t, e.srv, readFixture(t, "activity/alert-cluster-delete.json"))
			if code != http.StatusOK || res["result"] != "committed" {
				t.Fatalf("alert: %d %v, want 200 committed", code, res)
			}
			waitIdle(t, e.srv)
			if e.armGets() != gets+1 {
				t.Errorf("ARM reads after the alert: %d, want one asked for at once", e.armGets()-gets)
			}
			c := e.cluster(t)
			reportedAt := time.Date(2026, 11, 24, 9, 27, 41, 228057100, time.UTC)
			if c.Deleted || c.DeletionReported == nil || c.DeletionReported.Actor != "erin@contoso.com" ||
				!c.DeletionReported.At.Equal(reportedAt) || c.DeletionReported.Source != fleet.PathAlert ||
				c.DeletionReported.CorrelationID != "3c8e1a5f-7b2d-4f90-a6e4-0d9c2b7f1e35" {
				t.Fatalf("after the alert: deleted %v, reported %+v; want evidence, not state", c.Deleted, c.DeletionReported)
			}
			if !e.driftOpen(t) {
				t.Error("ChannelDrift resolved on an unconfirmed deletion")
			}
			_, detail := serve(t, e.srv, http.MethodGet, prodAPI, nil)
			cj, _ := detail["cluster"].(map[string]any)
			dr, _ := cj["deletionReported"].(map[string]any)
			if dr["actor"] != "erin@contoso.com" || dr["source"] != fleet.PathAlert || cj["deleted"] == true || detail["refreshWantedSince"] == nil {
				t.Errorf("Status: cluster %v, refreshWantedSince %v; want the report shown and a refresh wanted", cj, detail["refreshWantedSince"])
			}
			if rows := rowsOfKind(t, e.store, prodKey, state.KindCluster); len(rows) != 1 || rows[0]["DeletionReportedBy"] != "erin@contoso.com" {
				t.Errorf("Cluster row %v, want DeletionReportedBy", rows)
			}

			// The Sweep asks again once the grace is over, and ARM answers.
			e.clk.set(received.Add(10 * time.Minute))
			e.armAnswers(tc.arm, received.Add(10*time.Minute))
			if code, _, _ := (&env{srv: e.srv}).invoke(t, "Sweep", timerInvocation(t, received.Add(10*time.Minute))); code != http.StatusOK {
				t.Fatalf("sweep: %d", code)
			}
			waitIdle(t, e.srv)
			if e.armGets() != gets+2 {
				t.Errorf("ARM reads: %d, want the sweep's too", e.armGets()-gets)
			}
			c = e.cluster(t)
			if c.Deleted != tc.deleted || c.DeletionReported != nil {
				t.Fatalf("after ARM answered %d: deleted %v, reported %+v; want deleted %v and no report", tc.arm, c.Deleted, c.DeletionReported, tc.deleted)
			}
			if e.driftOpen(t) == tc.deleted {
				t.Errorf("after ARM answered %d: ChannelDrift open %v", tc.arm, !tc.deleted)
			}
			if _, wanted := c.RefreshWanted(); wanted {
				t.Error("a refresh is still wanted after ARM answered")
			}
			if rows := rowsOfKind(t, e.store, prodKey, state.KindCluster); len(rows) != 1 || rows[0]["DeletionReportedBy"] != nil ||
				rows[0]["Deleted"] != tc.deleted {
				t.Errorf("Cluster row %v, want no DeletionReported columns and Deleted %v", rows, tc.deleted)
			}
		})
	}
}

// A rolling event after the reported deletion says the cluster exists: the
// report is cleared even without ARM.
func TestRollingEventClearsReportedDeletion(t *testing.T) {
	e := newTrustEnv(t)
	e.armAnswers(http.StatusServiceUnavailable, received)
	if code, res := postAlert(t, e.srv, readFixture(t, "activity/alert-cluster-delete.json")); code != http.StatusOK {
		t.Fatalf("alert: %d %v", code, res)
	}
	waitIdle(t, e.srv)
	if e.cluster(t).DeletionReported == nil {
		t.Fatal("no deletion reported")
	}
	if code, _, sum := invokeRaw(t, e.srv, rollingEvent(t, "5e1c3a7f-9b2d-4e6f-8a0c-2d4f6a8c0e1b", "RollingStarted", "system", received.Add(-time.Minute))); code != 200 || sum["committed"] != float64(1) {
		t.Fatalf("rolling event: %d %v", code, sum)
	}
	waitIdle(t, e.srv)
	if c := e.cluster(t); c.DeletionReported != nil || c.Deleted {
		t.Errorf("after a later rolling event: reported %+v, deleted %v", c.DeletionReported, c.Deleted)
	}
}

// Every signal path rejects a time beyond the clock skew, records it, and
// answers so the host does not retry: Event Grid 200, HTTP routes 400.
func TestFutureTimesRejectedOnEveryPath(t *testing.T) {
	future := received.Add(fleet.MaxClockSkew + time.Minute)
	stamp := future.Format(time.RFC3339Nano)
	egEvent := func(typ, data string) []byte {
		return []byte(fmt.Sprintf(`{"id":"9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d","topic":%q,"subject":"aks-prod-weu","eventType":%q,"eventTime":%q,"data":%s,"dataVersion":"1","metadataVersion":"1"}`,
			prodCluster, typ, stamp, data))
	}
	ceEvent := fmt.Sprintf(`{"specversion":"1.0","id":"1b2c3d4e-5f6a-4b7c-8d9e-0f1a2b3c4d5e","source":%q,"subject":"aks-prod-weu","type":"Microsoft.ContainerService.NodePoolRollingSucceeded","time":%q,"datacontenttype":"application/json","data":{"nodePoolName":"system"}}`,
		prodCluster, stamp)
	arn := fmt.Sprintf(`{"id":"2c3d4e5f-6a7b-4c8d-9e0f-1a2b3c4d5e6f","topic":"/subscriptions/8f1c2b3a-4d5e-4f60-9a7b-1c2d3e4f5a6b","subject":%q,"eventType":"Microsoft.ResourceNotifications.Resources.Deleted","eventTime":%q,"data":{"resourceInfo":{"id":%q,"name":"aks-prod-weu","type":"Microsoft.ContainerService/managedClusters"},"operationalInfo":{"resourceEventTime":%q}},"dataVersion":"1","metadataVersion":"1"}`,
		prodCluster, stamp, prodCluster, stamp)
	egActivity := bytes.ReplaceAll(readFixture(t, "activity/eventgrid-cluster-write.json"), []byte("2026-11-21T14:02:17.4412093Z"), []byte(stamp))
	eventGrid := []struct {
		name, fn string
		ev       []byte
	}{
		{"AKS Event Grid event", handlers.FunctionAksEvents, egEvent("Microsoft.ContainerService.NodePoolRollingStarted", `{"nodePoolName":"system"}`)},
		{"AKS CloudEvent", handlers.FunctionAksEvents, []byte(ceEvent)},
		{"resource notification", handlers.FunctionAksEvents, []byte(arn)},
		{"activity-log Event Grid event", handlers.FunctionActivityLog, egActivity},
	}
	e := newEnv(t)
	for _, tc := range eventGrid {
		t.Run(tc.name, func(t *testing.T) {
			body, err := host.NewEventGridRequest("event", tc.fn, json.RawMessage(tc.ev), received, "4d5e6f7a-8b9c-4d0e-9f1a-2b3c4d5e6f7a")
			if err != nil {
				t.Fatal(err)
			}
			code, resp, sum := e.invoke(t, tc.fn, body)
			if code != http.StatusOK || sum["rejected"] != float64(1) || sum["committed"] != float64(0) {
				t.Fatalf("%d %v, want 200 with one rejected", code, sum)
			}
			if logs := strings.Join(resp.Logs, " "); !strings.Contains(logs, stamp) || !strings.Contains(logs, "future") {
				t.Errorf("logs %q do not say the time is in the future", logs)
			}
		})
	}
	t.Run("diagnostic export", func(t *testing.T) {
		var compact bytes.Buffer
		_ = json.Compact(&compact, readFixture(t, "activity/export-cluster-write.json"))
		msg := bytes.ReplaceAll(compact.Bytes(), []byte("2026-11-21T14:02:17.4412093Z"), []byte(stamp))
		body, err := host.NewEventHubRequest("events", handlers.FunctionActivityLogStream, [][]byte{msg}, received, "8e0a2c4e-6f1b-4d3f-b5c7-d9e1f3a5b7c9")
		if err != nil {
			t.Fatal(err)
		}
		code, sum := invokeFn(t, e.srv, handlers.FunctionActivityLogStream, body)
		if code != http.StatusOK || sum["rejected"] != float64(1) || sum["committed"] != float64(0) {
			t.Fatalf("%d %v, want 200 with the AKS record rejected", code, sum)
		}
	})
	t.Run("activity-log alert", func(t *testing.T) {
		alert := bytes.ReplaceAll(readFixture(t, "activity/alert-cluster-write.json"), []byte("2026-11-21T14:02:17.4412093+00:00"), []byte(stamp))
		code, res := postAlert(t, e.srv, alert)
		if code != http.StatusBadRequest || res["result"] != "rejected" || !strings.Contains(fmt.Sprint(res["reason"]), stamp) {
			t.Fatalf("%d %v, want 400 quoting the time", code, res)
		}
	})
	t.Run("node snapshot", func(t *testing.T) {
		snap := fmt.Sprintf(`{"schema":"upgradewatch.nodes/v1","snapshotId":"0c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f","observedAt":%q,"nodes":[{"name":"aks-system-12345678-vmss000000","pool":"system","nodeImageVersion":%q,"ready":"True"}]}`,
			stamp, imageOld)
		code, res := serve(t, e.srv, http.MethodPost, prodAPI+"/nodes", []byte(snap))
		if code != http.StatusBadRequest || !strings.Contains(fmt.Sprint(res["error"]), stamp) {
			t.Fatalf("%d %v, want 400 quoting observedAt", code, res)
		}
	})
	if _, err := storeCluster(e.store); err == nil {
		t.Error("a future-dated signal created the cluster")
	}
	// Within the skew is accepted: clocks differ a little.
	body, _ := host.NewEventGridRequest("event", handlers.FunctionAksEvents, json.RawMessage(bytes.ReplaceAll(
		egEvent("Microsoft.ContainerService.NodePoolRollingStarted", `{"nodePoolName":"system"}`), []byte(stamp),
		[]byte(received.Add(fleet.MaxClockSkew-time.Second).Format(time.RFC3339Nano)))), received, "4d5e6f7a-8b9c-4d0e-9f1a-2b3c4d5e6f7a")
	if code, _, sum := e.invoke(t, handlers.FunctionAksEvents, body); code != http.StatusOK || sum["committed"] != float64(1) {
		t.Errorf("an event %s ahead: %d %v, want it committed", fleet.MaxClockSkew-time.Second, code, sum)
	}
}
