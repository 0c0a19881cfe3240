package handlers_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
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

var received = time.Date(2026, 11, 24, 9, 30, 0, 0, time.UTC)

type env struct {
	srv   *handlers.Server
	store *state.Store
}

// newStore returns a store on fresh tables of its own on the shared Azurite.
func newStore(t testing.TB, o state.Options) *state.Store {
	t.Helper()
	svc := azuritetest.Service(t, azuritetest.Endpoint(t))
	o.TablePrefix, o.CacheSize = azuritetest.Prefix(t), 100
	store := state.New(svc, o)
	t.Cleanup(store.Close)
	azuritetest.DropTables(t, svc, store.Tables()...)
	if err := store.EnsureTables(context.Background()); err != nil {
		t.Fatal(err)
	}
	return store
}

// newServer serves store through the application layer, as cmd/handler wires
// them: app options o, HTTP options ho (o.Now defaults to ho.Now).
func newServer(store *state.Store, o watch.Options, ho handlers.Options) *handlers.Server {
	if o.Now == nil {
		o.Now = ho.Now
	}
	return handlers.New(watch.New(store, o), ho)
}

func newEnv(t testing.TB) *env {
	t.Helper()
	store := newStore(t, state.Options{})
	srv := newServer(store, watch.Options{}, handlers.Options{Now: func() time.Time { return received }, MaxBodyBytes: 1 << 20})
	return &env{srv: srv, store: store}
}

// invoke POSTs an envelope as the host does and checks the protocol contract:
// JSON content type and a non-empty {Outputs, Logs, ReturnValue} object.
func (e *env) invoke(t *testing.T, function string, body []byte) (int, host.InvokeResponse, map[string]any) {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/"+function, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("X-Azure-Functions-InvocationId", "5c3f2a1b-0e9d-4c8b-a7f6-e5d4c3b2a190")
	rec := httptest.NewRecorder()
	e.srv.ServeHTTP(rec, req)
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("Content-Type = %q, want application/json", ct)
	}
	var resp host.InvokeResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil || resp.Outputs == nil || resp.Logs == nil {
		t.Fatalf("response is not a complete envelope (%v): %s", err, rec.Body.String())
	}
	sum, _ := resp.ReturnValue.(map[string]any)
	return rec.Code, resp, sum
}

func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestReadyAnswersAtOnce(t *testing.T) {
	srv := handlers.New(nil, handlers.Options{})
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "ready") {
		t.Fatalf("GET / = %d %s", rec.Code, rec.Body.String())
	}
}

// Every form in which the host delivers an eventGridTrigger value commits.
func TestAksEventsHostForms(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		fixture   string
		committed float64
		cluster   fleet.ClusterID
		pool      string
		state     string
	}{
		{"envelope-eventgrid-object.json", 1,
			fleet.ClusterID{SubscriptionID: "6f1c2a3b-4d5e-4f60-8a71-92b3c4d5e6f7", ResourceGroup: "rg-payments-prod", Name: "aks-payments-weu"},
			"system", fleet.RollingActive},
		{"envelope-cloudevents-string-wrapped.json", 1,
			fleet.ClusterID{SubscriptionID: "6f1c2a3b-4d5e-4f60-8a71-92b3c4d5e6f7", ResourceGroup: "rg-payments-prod", Name: "aks-payments-weu"},
			"system", fleet.RollingSucceeded},
		{"envelope-batch-string-array.json", 2,
			fleet.ClusterID{SubscriptionID: "0b2d4f6a-8c1e-4a3b-9d5f-7e1a3c5b7d9f", ResourceGroup: "rg-search-prod", Name: "aks-search-eus2"},
			"user1", fleet.RollingFailed},
	}
	for _, tc := range cases {
		t.Run(tc.fixture, func(t *testing.T) {
			code, _, sum := e.invoke(t, "AksEvents", readFixture(t, tc.fixture))
			if code != http.StatusOK {
				t.Fatalf("status %d, want 200", code)
			}
			if sum["committed"] != tc.committed {
				t.Fatalf("summary %v, want %v committed", sum, tc.committed)
			}
			c, err := e.store.Cluster(context.Background(), tc.cluster)
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Pools[tc.pool].RollingState; got != tc.state {
				t.Errorf("pool %s rolling state %q, want %q", tc.pool, got, tc.state)
			}
		})
	}
	// The CloudEvents source was lower-cased: it still lands on the same cluster,
	// whose one operation is now complete.
	c, err := e.store.Cluster(context.Background(), cases[0].cluster)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Upgrades) != 1 || c.RecentUpgrades(1)[0].Outcome != fleet.OutcomeSucceeded {
		t.Errorf("upgrades = %+v, want one Succeeded operation", c.RecentUpgrades(5))
	}
	// Redelivery of the same envelope is a duplicate: 200, nothing committed.
	code, _, sum := e.invoke(t, "AksEvents", readFixture(t, cases[0].fixture))
	if code != http.StatusOK || sum["duplicates"] != float64(1) || sum["committed"] != float64(0) {
		t.Errorf("redelivery: %d %v", code, sum)
	}
}

// Bad input gets a clear log line, a recorded rejection, 200 (no retry), no crash.
func TestAksEventsRejectsBadInput(t *testing.T) {
	e := newEnv(t)
	good := readFixture(t, "envelope-eventgrid-object.json")
	swap := func(from, to string) []byte { return bytes.Replace(good, []byte(from), []byte(to), 1) }
	huge := append([]byte(`{"Data":{"event":{"id":"x","pad":"`), bytes.Repeat([]byte("a"), 1<<20)...)
	huge = append(huge, []byte(`"}},"Metadata":{}}`)...)
	cases := []struct {
		name, reason string
		body         []byte
	}{
		{"malformed JSON", "malformed invocation envelope", []byte(`{"Data": {"event": {"id": `)},
		{"wrong envelope", "binding missing", []byte(`{"Data": {"eventGridEvent": {"id": "1"}}, "Metadata": {}}`)},
		{"not an envelope", "malformed invocation envelope", []byte(`[1,2,3]`)},
		{"body over 1 MiB", "too large", huge},
		{"unparseable resource ID", "managed cluster", swap("/resourceGroups/rg-payments-prod/", "/resourceGroupsrg-payments-prod/")},
		{"cluster name with a quote", "cluster name", swap("managedClusters/aks-payments-weu", "managedClusters/aks-pay'ments")},
		{"pool name with quotes", "pool", swap(`"data": { "nodePoolName": "system" }`, `"data": { "nodePoolName": "sys'tem\"x" }`)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, resp, sum := e.invoke(t, "AksEvents", tc.body)
			if code != http.StatusOK {
				t.Fatalf("status %d, want 200 so the host does not retry forever", code)
			}
			if sum["rejected"] != float64(1) || sum["committed"] != float64(0) {
				t.Fatalf("summary %v, want 1 rejected", sum)
			}
			if len(resp.Logs) == 0 || !strings.Contains(strings.ToLower(strings.Join(resp.Logs, " ")), strings.ToLower(tc.reason)) {
				t.Errorf("logs %q do not explain %q", resp.Logs, tc.reason)
			}
		})
	}
	rej, err := e.store.Rejections(context.Background(), received)
	if err != nil {
		t.Fatal(err)
	}
	if len(rej) != len(cases) {
		t.Fatalf("recorded %d rejections, want %d", len(rej), len(cases))
	}
	for _, r := range rej {
		if r.Reason == "" || r.Function != "AksEvents" || r.InvocationID == "" || r.BodyBytes == 0 {
			t.Errorf("incomplete rejection row: %+v", r)
		}
	}
}

// An event type upgradewatch does not track, naming no cluster, is recorded as
// unsupported and answered 200.
func TestAksEventsUnsupportedWithoutCluster(t *testing.T) {
	e := newEnv(t)
	ev := `{"id":"7d1e4c2a-9b3f-4e8d-a6c5-1f2e3d4c5b6a","topic":"/subscriptions/6f1c2a3b-4d5e-4f60-8a71-92b3c4d5e6f7/resourceGroups/rg-data/providers/Microsoft.Storage/storageAccounts/stdata01",` +
		`"subject":"/blobServices/default/containers/logs/blobs/a.json","eventType":"Microsoft.Storage.BlobCreated","eventTime":"2026-11-24T09:29:58.1234567Z",` +
		`"data":{"api":"PutBlob","contentType":"application/json","contentLength":524},"dataVersion":"","metadataVersion":"1"}`
	body, _ := host.NewEventGridRequest("event", "AksEvents", json.RawMessage(ev), received, "7c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f")
	// No invocation id header: the id comes from Metadata.sys.RandGuid.
	rec := httptest.NewRecorder()
	e.srv.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/AksEvents", bytes.NewReader(body)))
	var resp host.InvokeResponse
	_ = json.Unmarshal(rec.Body.Bytes(), &resp)
	if sum, _ := resp.ReturnValue.(map[string]any); rec.Code != http.StatusOK || sum["unsupported"] != float64(1) {
		t.Fatalf("%d %s", rec.Code, rec.Body.String())
	}
	rej, _ := e.store.Rejections(context.Background(), received)
	if len(rej) != 1 || rej[0].Disposition != state.DispositionUnsupported || rej[0].EventType != "Microsoft.Storage.BlobCreated" ||
		rej[0].InvocationID != "7c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f" {
		t.Fatalf("rejections = %+v", rej)
	}
}

// With storage down, the handler answers 5xx so that Event Grid redelivers.
func TestAksEventsStorageDownIs5xx(t *testing.T) {
	svc := azuritetest.Service(t, "http://127.0.0.1:1/devstoreaccount1")
	store := state.New(svc, state.Options{TablePrefix: "down"})
	defer store.Close()
	srv := newServer(store, watch.Options{}, handlers.Options{})
	for _, body := range [][]byte{readFixture(t, "envelope-eventgrid-object.json"), []byte(`{"Data":`)} {
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/AksEvents", bytes.NewReader(body)))
		if rec.Code < 500 {
			t.Errorf("status %d, want 5xx when nothing could be stored", rec.Code)
		}
		if !json.Valid(rec.Body.Bytes()) || rec.Body.Len() == 0 {
			t.Errorf("5xx body must still be a JSON envelope: %q", rec.Body.String())
		}
	}
}

func TestStatusAPI(t *testing.T) {
	e := newEnv(t)
	for _, f := range []string{"envelope-eventgrid-object.json", "envelope-batch-string-array.json"} {
		if code, _, _ := e.invoke(t, "AksEvents", readFixture(t, f)); code != 200 {
			t.Fatalf("%s: %d", f, code)
		}
	}
	get := func(path string) (int, map[string]any) {
		rec := httptest.NewRecorder()
		e.srv.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		var m map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
			t.Fatalf("GET %s: not JSON: %s", path, rec.Body.String())
		}
		return rec.Code, m
	}
	code, list := get("/api/clusters")
	if code != 200 || list["count"] != float64(2) {
		t.Fatalf("list: %d %v", code, list)
	}
	var rolling float64
	for _, c := range list["clusters"].([]any) {
		rolling += c.(map[string]any)["rollingPools"].(float64)
	}
	if rolling != 1 {
		t.Errorf("rolling pools across the fleet = %v, want 1 (system on aks-payments-weu)", rolling)
	}

	code, detail := get("/api/clusters/6F1C2A3B-4D5E-4F60-8A71-92B3C4D5E6F7/RG-PAYMENTS-PROD/AKS-PAYMENTS-WEU")
	if code != 200 {
		t.Fatalf("detail (upper case path): %d %v", code, detail)
	}
	pools := detail["pools"].([]any)
	if len(pools) != 1 || pools[0].(map[string]any)["rollingState"] != "Rolling" {
		t.Errorf("pools = %v", pools)
	}
	ups := detail["upgrades"].([]any)
	if len(ups) != 1 || ups[0].(map[string]any)["outcome"] != "InProgress" {
		t.Errorf("upgrades = %v", ups)
	}

	for path, want := range map[string]int{
		"/api/clusters/6f1c2a3b-4d5e-4f60-8a71-92b3c4d5e6f7/rg/aks'1":                400,
		"/api/clusters/not-a-guid/rg/aks1":                                           400,
		"/api/clusters/6f1c2a3b-4d5e-4f60-8a71-92b3c4d5e6f7/rg-payments-prod/absent": 404,
		"/api/clusters/a/b": 404,
	} {
		code, body := get(path)
		if code != want || body["error"] == "" {
			t.Errorf("GET %s: %d %v, want %d with an error", path, code, body, want)
		}
	}
}

// With forwarding off, the Status function arrives as an envelope.
func TestStatusEnvelopeMode(t *testing.T) {
	e := newEnv(t)
	if code, _, _ := e.invoke(t, "AksEvents", readFixture(t, "envelope-eventgrid-object.json")); code != 200 {
		t.Fatal(code)
	}
	body := []byte(`{"Data":{"req":{"Url":"http://localhost:7071/api/clusters","Method":"GET","Query":{},"Headers":{"Host":["localhost:7071"]},"Params":{}}},"Metadata":{"sys":{"MethodName":"Status","UtcNow":"2026-11-24T09:30:00.1Z","RandGuid":"r"}}}`)
	code, resp, _ := e.invoke(t, "Status", body)
	res, _ := resp.Outputs["res"].(map[string]any)
	if code != 200 || res["statusCode"] != "200" {
		t.Fatalf("%d %v", code, resp.Outputs)
	}
	if b, _ := res["body"].(map[string]any); b["count"] != float64(1) {
		t.Errorf("res.body = %v", res["body"])
	}
}
