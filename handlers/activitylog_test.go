package handlers_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/upgradewatch/upgradewatch/handlers"
	"github.com/upgradewatch/upgradewatch/internal/azuritetest"
	"github.com/upgradewatch/upgradewatch/internal/fleet"
	"github.com/upgradewatch/upgradewatch/internal/host"
	"github.com/upgradewatch/upgradewatch/internal/state"
	"github.com/upgradewatch/upgradewatch/internal/watch"
)

const prodKey = "8f1c2b3a-4d5e-4f60-9a7b-1c2d3e4f5a6b~rg-platform-weu~aks-prod-weu"

// activityEventGrid is the host's envelope for the ActivityLog function.
func activityEventGrid(t *testing.T, fixture string) []byte {
	t.Helper()
	body, err := host.NewEventGridRequest("event", handlers.FunctionActivityLog, readFixture(t, "activity/"+fixture), received,
		"2d4f6a8c-0e1b-4d3f-a5c7-e9b1d3f5a7c9")
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// activityStream is the host's envelope for ActivityLogStream: one Event Hub
// message per fixture (each {"records":[…]}).
func activityStream(t *testing.T, fixtures ...string) []byte {
	t.Helper()
	var msgs [][]byte
	for _, f := range fixtures {
		var compact bytes.Buffer
		if err := json.Compact(&compact, readFixture(t, "activity/"+f)); err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, compact.Bytes())
	}
	body, err := host.NewEventHubRequest("events", handlers.FunctionActivityLogStream, msgs, received, "8e0a2c4e-6f1b-4d3f-b5c7-d9e1f3a5b7c9")
	if err != nil {
		t.Fatal(err)
	}
	return body
}

func invokeFn(t *testing.T, srv *handlers.Server, fn string, body []byte) (int, map[string]any) {
	t.Helper()
	code, _, sum := (&env{srv: srv}).invoke(t, fn, body)
	return code, sum
}

func postAlert(t *testing.T, srv *handlers.Server, body []byte) (int, map[string]any) {
	t.Helper()
	return serve(t, srv, http.MethodPost, "/api/activitylog/alert", body)
}

// rowsOfKind lists a partition's rows of one Kind, as a dashboard reads them.
func rowsOfKind(t *testing.T, store *state.Store, pk, kind string) []map[string]any {
	t.Helper()
	svc := azuritetest.Service(t, azuritetest.Endpoint(t))
	filter := "PartitionKey eq '" + pk + "' and Kind eq '" + kind + "'"
	return azuritetest.Rows(t, svc.NewClient(store.Tables()[0]), filter)
}

// The same activity through Event Grid, an alert and the export is one Signal.
func TestSameActivityOnThreePathsIsOneSignal(t *testing.T) {
	e := newEnv(t)
	code, sum := invokeFn(t, e.srv, handlers.FunctionActivityLog, activityEventGrid(t, "eventgrid-cluster-write.json"))
	if code != http.StatusOK || sum["committed"] != float64(1) {
		t.Fatalf("Event Grid: %d %v, want one committed", code, sum)
	}
	code, res := postAlert(t, e.srv, readFixture(t, "activity/alert-cluster-write.json"))
	if code != http.StatusOK || res["result"] != "duplicate" || res["cluster"] != prodKey {
		t.Fatalf("alert: %d %v, want a duplicate of the same cluster", code, res)
	}
	code, sum = invokeFn(t, e.srv, handlers.FunctionActivityLogStream, activityStream(t, "export-cluster-write.json"))
	if code != http.StatusOK || sum["duplicates"] != float64(1) || sum["ignored"] != float64(1) || sum["records"] != float64(2) {
		t.Fatalf("export: %d %v, want the AKS record a duplicate and the storage record ignored", code, sum)
	}
	if rows := rowsOfKind(t, e.store, prodKey, state.KindSignal); len(rows) != 1 || rows[0]["SignalKind"] != "Activity" {
		t.Fatalf("Signal rows = %v, want exactly one activity", rows)
	}
	c, err := storeCluster(e.store)
	if err != nil {
		t.Fatal(err)
	}
	if c.Signals != 1 || len(c.Activities) != 1 {
		t.Fatalf("cluster counted %d signals, %d activities; want 1 and 1", c.Signals, len(c.Activities))
	}
	a := c.Activities[0]
	if a.Actor != "alice@contoso.com" || a.Operation != fleet.OpClusterWrite || a.Path != fleet.PathEventGrid ||
		c.ID.ResourceGroup != "rg-platform-weu" {
		t.Errorf("activity %+v on %s, want alice's cluster write first seen through Event Grid, in the cluster's own case", a, c.ID)
	}
}

// The end to end story: a channel change arrives through the activity log, the
// read it triggers sees the new channel, later the pool rolls; the Upgrade row
// and the Status API say who changed what to what.
func TestChannelChangeThroughActivityLogThenRolling(t *testing.T) {
	world := newARMWorld(t)
	srv, store := newEnrichEnv(t, world.reader())
	change := time.Date(2026, 11, 21, 14, 2, 17, 441209300, time.UTC)

	// The day before: the cluster on NodeImage.
	world.set(imageOld, change.Add(-24*time.Hour))
	if code, body := serve(t, srv, http.MethodPost, prodAPI+"/refresh", nil); code != http.StatusOK {
		t.Fatalf("refresh: %d %v", code, body)
	}
	// Alice switches to SecurityPatch; ARM reports it from now on.
	world.mu.Lock()
	world.nodeOS, world.now = "SecurityPatch", change.Add(40*time.Second)
	world.mu.Unlock()
	if code, sum := invokeFn(t, srv, handlers.FunctionActivityLog, activityEventGrid(t, "eventgrid-cluster-write.json")); code != 200 || sum["committed"] != float64(1) {
		t.Fatalf("activity: %d %v", code, sum)
	}
	waitIdle(t, srv) // the re-enrichment the write asked for
	world.mu.Lock()
	gets := world.gets
	world.mu.Unlock()
	if gets != 2 {
		t.Fatalf("ARM reads = %d, want 2 (refresh, and the one the write triggered)", gets)
	}

	// Hours later the pool reimages.
	start := change.Add(3 * time.Hour)
	world.set(imageNew, start.Add(time.Minute))
	if code, _, _ := invokeRaw(t, srv, rollingEvent(t, "0f6e2b9c-5d41-4a8e-b3f7-2c1d0e9a8b76", "RollingStarted", "system", start)); code != 200 {
		t.Fatalf("started: %d", code)
	}
	waitIdle(t, srv)
	world.set(imageNew, start.Add(46*time.Minute))
	if code, _, _ := invokeRaw(t, srv, rollingEvent(t, "6a1d3c5e-7f9b-4b2d-8e4f-6a8c0e2b4d6f", "RollingSucceeded", "system", start.Add(45*time.Minute))); code != 200 {
		t.Fatalf("succeeded: %d", code)
	}
	waitIdle(t, srv)

	code, detail := serve(t, srv, http.MethodGet, prodAPI, nil)
	if code != http.StatusOK {
		t.Fatalf("status: %d %v", code, detail)
	}
	var sys map[string]any
	ups, _ := detail["upgrades"].([]any)
	for _, u := range ups {
		if m := u.(map[string]any); m["pool"] == "system" {
			sys = m
		}
	}
	if sys == nil {
		t.Fatalf("no upgrade of the system pool in %v", detail["upgrades"])
	}
	ch, _ := sys["channelChange"].(map[string]any)
	if ch["actor"] != "alice@contoso.com" || ch["from"] != "NodeImage" || ch["to"] != "SecurityPatch" || ch["channel"] != "nodeOS" {
		t.Errorf("upgrade channelChange = %v, want alice NodeImage → SecurityPatch", sys["channelChange"])
	}
	if at, _ := time.Parse(time.RFC3339Nano, ch["at"].(string)); !at.Equal(change) {
		t.Errorf("change at %v, want the write's time %v", ch["at"], change)
	}
	changes, _ := detail["channelChanges"].(map[string]any)
	if nodeOS, _ := changes["nodeOS"].(map[string]any); nodeOS["actor"] != "alice@contoso.com" {
		t.Errorf("channelChanges = %v", detail["channelChanges"])
	}
	acts, _ := detail["activity"].([]any)
	if len(acts) != 1 || acts[0].(map[string]any)["actor"] != "alice@contoso.com" {
		t.Errorf("activity = %v", detail["activity"])
	}
	if _, wanted := detail["refreshWantedSince"]; wanted {
		t.Error("a refresh is still wanted after the read")
	}

	// The Upgrade row, as dashboards read it.
	rows := rowsOfKind(t, store, prodKey, state.KindUpgrade)
	if len(rows) != 1 || rows[0]["ChannelFrom"] != "NodeImage" || rows[0]["ChannelTo"] != "SecurityPatch" ||
		rows[0]["ChannelChangedBy"] != "alice@contoso.com" {
		t.Errorf("Upgrade rows %v, want ChannelFrom NodeImage, ChannelTo SecurityPatch, ChannelChangedBy alice", rows)
	}
	cl := rowsOfKind(t, store, prodKey, state.KindCluster)
	if len(cl) != 1 || cl[0]["NodeOSChannelChangedBy"] != "alice@contoso.com" {
		t.Errorf("Cluster row %v, want NodeOSChannelChangedBy alice", cl)
	}
}

// An alert that can never be read is answered 400 with its reason and kept;
// one about something upgradewatch does not track is answered 200 and kept
// as Unsupported; storage down answers 503 so the action group retries.
func TestActivityLogAlertDispositions(t *testing.T) {
	e := newEnv(t)
	code, res := postAlert(t, e.srv, []byte(`{"schemaId":"AzureMonitorMetricAlert","data":{"status":"Activated"}}`))
	if code != http.StatusBadRequest || res["result"] != "rejected" || !strings.Contains(res["reason"].(string), "schemaId") {
		t.Fatalf("legacy schema: %d %v, want 400 naming the schema", code, res)
	}
	vm := []byte(`{"schemaId":"azureMonitorCommonAlertSchema","data":{"essentials":{"alertId":"/subscriptions/8f1c2b3a-4d5e-4f60-9a7b-1c2d3e4f5a6b/resourceGroups/rg-platform-weu/providers/microsoft.insights/activityLogAlerts/vm-restarts","alertRule":"vm-restarts","severity":"Sev4","signalType":"Activity Log","monitorCondition":"Fired","monitoringService":"Activity Log - Administrative","alertTargetIDs":["/subscriptions/8f1c2b3a-4d5e-4f60-9a7b-1c2d3e4f5a6b/resourcegroups/rg-platform-weu/providers/microsoft.compute/virtualmachines/jumpbox"],"firedDateTime":"2026-11-21T10:00:01.000Z","essentialsVersion":"1.0","alertContextVersion":"1.0"},"alertContext":{"authorization":{"action":"Microsoft.Compute/virtualMachines/restart/action","scope":"/subscriptions/8f1c2b3a-4d5e-4f60-9a7b-1c2d3e4f5a6b/resourceGroups/rg-platform-weu/providers/Microsoft.Compute/virtualMachines/jumpbox"},"channels":"Operation","claims":"{}","caller":"bob@contoso.com","correlationId":"c0ffee00-1111-2222-3333-444455556666","eventSource":"Administrative","eventTimestamp":"2026-11-21T10:00:00.5+00:00","eventDataId":"e1e2e3e4-0000-1111-2222-333344445555","level":"Informational","operationName":"Microsoft.Compute/virtualMachines/restart/action","operationId":"ab12cd34-0000-1111-2222-333344445555","status":"Succeeded","subStatus":"","submissionTimestamp":"2026-11-21T10:00:20.1+00:00"}}}`)
	code, res = postAlert(t, e.srv, vm)
	if code != http.StatusOK || res["result"] != "ignored" {
		t.Fatalf("VM restart alert: %d %v, want 200 ignored", code, res)
	}
	rej, err := e.store.Rejections(context.Background(), received)
	if err != nil {
		t.Fatal(err)
	}
	var rejected, unsupported int
	for _, r := range rej {
		if r.Function != handlers.FunctionActivityLogAlert {
			continue
		}
		switch r.Disposition {
		case state.DispositionRejected:
			rejected++
		case state.DispositionUnsupported:
			unsupported++
		}
	}
	if rejected != 1 || unsupported != 1 {
		t.Errorf("Rejected table has %d rejected and %d unsupported alerts, want 1 and 1", rejected, unsupported)
	}

	down := newServer(downStore(t), watch.Options{}, handlers.Options{Now: func() time.Time { return received }})
	if code, _ := postAlert(t, down, readFixture(t, "activity/alert-cluster-write.json")); code != http.StatusServiceUnavailable {
		t.Errorf("alert with storage down: %d, want 503", code)
	}
}

// A batch with records that cannot be read commits the others and keeps the
// unreadable ones with their reason; storage down fails the whole batch for
// the host's retry, and the retry loses nothing and duplicates nothing.
func TestActivityLogStreamBatch(t *testing.T) {
	down := newServer(downStore(t), watch.Options{}, handlers.Options{Now: func() time.Time { return received }})
	batch := activityStream(t, "export-cluster-write.json")
	if code, sum := invokeFn(t, down, handlers.FunctionActivityLogStream, batch); code != http.StatusServiceUnavailable || sum["failed"] != float64(1) {
		t.Fatalf("storage down: %d %v, want 503 with one failed record", code, sum)
	}

	e := newEnv(t)
	bad := []byte(`{"records":[{"time":"2026-11-21T15:00:00Z","resourceId":"/SUBSCRIPTIONS/8F1C2B3A-4D5E-4F60-9A7B-1C2D3E4F5A6B/RESOURCEGROUPS/RG-PLATFORM-WEU/PROVIDERS/MICROSOFT.CONTAINERSERVICE/MANAGEDCLUSTERS/AKS-PROD-WEU/AGENTPOOLS/NOT_A_POOL!","operationName":"Microsoft.ContainerService/managedClusters/agentPools/upgradeNodeImageVersion/action","category":"Action","resultType":"Start","correlationId":"99999999-aaaa-bbbb-cccc-dddddddddddd","identity":{"claims":{}},"level":"Information"}]}`)
	msgs := [][]byte{[]byte(`not json at all`), bad}
	var compact bytes.Buffer
	_ = json.Compact(&compact, readFixture(t, "activity/export-cluster-write.json"))
	msgs = append(msgs, compact.Bytes())
	body, err := host.NewEventHubRequest("events", handlers.FunctionActivityLogStream, msgs, received, "8e0a2c4e-6f1b-4d3f-b5c7-d9e1f3a5b7c9")
	if err != nil {
		t.Fatal(err)
	}
	code, sum := invokeFn(t, e.srv, handlers.FunctionActivityLogStream, body)
	if code != http.StatusOK || sum["messages"] != float64(3) || sum["committed"] != float64(1) || sum["rejected"] != float64(2) || sum["ignored"] != float64(1) {
		t.Fatalf("mixed batch: %d %v, want 3 messages: 1 committed, 2 rejected, 1 ignored", code, sum)
	}
	rej, err := e.store.Rejections(context.Background(), received)
	if err != nil {
		t.Fatal(err)
	}
	var reasons []string
	for _, r := range rej {
		if r.Function == handlers.FunctionActivityLogStream && r.Disposition == state.DispositionRejected {
			reasons = append(reasons, r.Reason)
		}
	}
	if len(reasons) != 2 || !strings.Contains(strings.Join(reasons, "|"), "pool") {
		t.Errorf("rejections %q, want the unreadable message and the record with a bad pool name", reasons)
	}
	// The host retries the same batch: nothing new.
	code, sum = invokeFn(t, e.srv, handlers.FunctionActivityLogStream, body)
	if code != http.StatusOK || sum["committed"] != float64(0) || sum["duplicates"] != float64(1) {
		t.Errorf("redelivered batch: %d %v, want the record a duplicate", code, sum)
	}
}

// downStore is a store whose storage does not answer.
func downStore(t *testing.T) *state.Store {
	t.Helper()
	s := state.New(azuritetest.Service(t, "http://127.0.0.1:1/devstoreaccount1"), state.Options{TablePrefix: "down"})
	t.Cleanup(s.Close)
	return s
}
