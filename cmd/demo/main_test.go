package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	settle, deadline, poll = 50*time.Millisecond, 2*time.Second, 10*time.Millisecond
	// The activity fixtures are read relative to the repository root, as
	// scripts/demo.sh runs the command there.
	if err := os.Chdir(filepath.Join("..", "..")); err != nil {
		panic(err)
	}
	os.Exit(m.Run())
}

func runDemo(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errs bytes.Buffer
	code := run(context.Background(), args, &out, &errs)
	return code, out.String(), errs.String()
}

// sinkServer answers GET /events with items, as bin/sink does.
func sinkServer(t *testing.T, items ...string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/events" {
			http.NotFound(w, r)
			return
		}
		_, _ = io.WriteString(w, "["+strings.Join(items, ",")+"]")
	}))
	t.Cleanup(srv.Close)
	return srv
}

const (
	opened   = `{"kind":"cloudevent","event":{"id":"a1","type":"io.upgradewatch.finding.opened","data":{"code":"UpgradeFailed","cluster":"/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/aks-checkout-neu","target":"system"}}}`
	resolved = `{"kind":"cloudevent","event":{"id":"a2","type":"io.upgradewatch.finding.resolved","data":{"code":"UpgradeFailed","cluster":"/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/aks-checkout-neu","target":"system"}}}`
	teams    = `{"kind":"teams","message":{"type":"message"}}`
	again    = `{"kind":"cloudevent","duplicate":true,"event":{"id":"a1","type":"io.upgradewatch.finding.opened","data":{"code":"UpgradeFailed"}}}`
)

func TestReceived(t *testing.T) {
	tests := []struct {
		name     string
		items    []string
		wantCode int
		wantOut  []string
		wantErr  string
	}{
		{"every kind once", []string{opened, teams, resolved}, exitOK,
			[]string{"3 received: cloudevent 2, teams 1", "finding.opened", "finding.resolved", "duplicates: 0"}, ""},
		{"a duplicate fails the demo", []string{opened, again}, exitFailed, []string{"duplicates: 1"}, "1 duplicate item(s)"},
		{"no CloudEvent fails the demo", []string{teams}, exitFailed, []string{"1 received: teams 1"}, "no CloudEvent reached the sink"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := sinkServer(t, tc.items...)
			code, out, errs := runDemo(t, "received", srv.URL)
			if code != tc.wantCode {
				t.Fatalf("exit %d, want %d; stderr %q", code, tc.wantCode, errs)
			}
			for _, w := range tc.wantOut {
				if !strings.Contains(out, w) {
					t.Errorf("stdout lacks %q:\n%s", w, out)
				}
			}
			if !strings.Contains(errs, tc.wantErr) {
				t.Errorf("stderr %q lacks %q", errs, tc.wantErr)
			}
		})
	}
}

func TestSampleTakesEachTypeInTurnRarestFirst(t *testing.T) {
	ev := func(typ, code string) cloudEvent {
		var e cloudEvent
		e.Type, e.Data.Code = typ, code
		return e
	}
	events := []cloudEvent{
		ev("opened", "A"), ev("opened", "B"), ev("opened", "A"), ev("opened", "C"), ev("resolved", "A"), ev("planned", "X"),
	}
	got := sample(events, 3)
	var types []string
	for _, e := range got {
		types = append(types, e.Type+"/"+e.Data.Code)
	}
	// planned and resolved are rarest; then the first distinct opened; in the
	// order received.
	if want := "opened/A resolved/A planned/X"; strings.Join(types, " ") != want {
		t.Errorf("sample = %v, want %s", types, want)
	}
}

// recorder is a handler that records the bodies posted to it and answers
// with a host invocation response.
type recorder struct {
	mu     sync.Mutex
	paths  []string
	bodies [][]byte
}

func (rc *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	rc.paths, rc.bodies = append(rc.paths, r.URL.Path), append(rc.bodies, b)
	rc.mu.Unlock()
	_, _ = io.WriteString(w, `{"Outputs":{},"Logs":[],"ReturnValue":{"events":1,"committed":1,"records":2}}`)
}

func TestRollingSendsHostEnvelopes(t *testing.T) {
	rc := &recorder{}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	topic := "/subscriptions/3f2b8c1e-7d4a-4e29-9b6f-0a1c5d8e2f47/resourceGroups/rg-checkout-prod/providers/Microsoft.ContainerService/managedClusters/aks-checkout-neu"
	code, _, errs := runDemo(t, "rolling", srv.URL, topic, "system", "Started", "Failed")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if len(rc.bodies) != 2 {
		t.Fatalf("%d requests, want 2", len(rc.bodies))
	}
	ids := map[string]bool{}
	for i, kind := range []string{"Started", "Failed"} {
		if rc.paths[i] != "/AksEvents" {
			t.Errorf("request %d to %s, want /AksEvents", i, rc.paths[i])
		}
		var env struct {
			Data struct {
				Event struct {
					ID, Topic, Subject, EventType, EventTime string
					Data                                     map[string]string
				} `json:"event"`
			}
			Metadata struct{ Sys struct{ MethodName string } }
		}
		if err := json.Unmarshal(rc.bodies[i], &env); err != nil {
			t.Fatal(err)
		}
		e := env.Data.Event
		if e.EventType != "Microsoft.ContainerService.NodePoolRolling"+kind || e.Topic != topic || e.Subject != "aks-checkout-neu" ||
			e.Data["nodePoolName"] != "system" || env.Metadata.Sys.MethodName != "AksEvents" {
			t.Errorf("request %d: %+v", i, env)
		}
		if _, err := time.Parse(time.RFC3339, e.EventTime); err != nil {
			t.Errorf("eventTime %q: %v", e.EventTime, err)
		}
		ids[e.ID] = true
	}
	if len(ids) != 2 {
		t.Errorf("event ids %v: each event needs its own", ids)
	}
}

func TestAKSFailureIsOneExportMessageOfTwoRecords(t *testing.T) {
	rc := &recorder{}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	if code, _, errs := runDemo(t, "activity", srv.URL, "aks-failure"); code != exitOK {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var env struct {
		Data struct{ Events string }
	}
	if err := json.Unmarshal(rc.bodies[0], &env); err != nil {
		t.Fatal(err)
	}
	// eventHubTrigger with dataType string: a JSON string holding an array of
	// message strings.
	var messages []string
	if err := json.Unmarshal([]byte(env.Data.Events), &messages); err != nil || len(messages) != 1 {
		t.Fatalf("events %q: %v, %d messages", env.Data.Events, err, len(messages))
	}
	var msg struct {
		Records []struct {
			ResourceID, ResultType string
			Properties             map[string]any
		}
	}
	if err := json.Unmarshal([]byte(messages[0]), &msg); err != nil {
		t.Fatal(err)
	}
	if len(msg.Records) != 2 || msg.Records[0].ResultType != "Start" || msg.Records[1].ResultType != "Failure" {
		t.Fatalf("records %+v", msg.Records)
	}
	if !strings.HasSuffix(msg.Records[1].ResourceID, "/AGENTPOOLS/SYSTEM") ||
		!strings.Contains(msg.Records[1].Properties["statusMessage"].(string), "disruption budget") {
		t.Errorf("failure record %+v", msg.Records[1])
	}
}

func TestThreePathsRenamesTheFixturesToTheDemoFleet(t *testing.T) {
	rc := &recorder{}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	if code, _, errs := runDemo(t, "activity", srv.URL, "three-paths"); code != exitOK {
		t.Fatalf("exit %d: %s", code, errs)
	}
	want := []string{"/ActivityLog", "/api/activitylog/alert", "/ActivityLogStream"}
	if strings.Join(rc.paths, " ") != strings.Join(want, " ") {
		t.Fatalf("paths %v, want %v", rc.paths, want)
	}
	for i, b := range rc.bodies {
		s := strings.ToLower(string(b))
		if strings.Contains(s, "aks-prod-weu") || !strings.Contains(s, "aks-platform-wus2") {
			t.Errorf("request %d to %s still names the fixture's cluster", i, rc.paths[i])
		}
	}
}

func TestUsage(t *testing.T) {
	for _, args := range [][]string{nil, {"nope"}, {"nodes", "http://x"}, {"activity", "http://x", "nope"}} {
		if code, _, _ := runDemo(t, args...); code != exitUsage {
			t.Errorf("%v: exit %d, want %d", args, code, exitUsage)
		}
	}
}

// The compliance step prints the fleet's figures and one line per pool not
// current, with its status (and Blocked reason) and its reason; a fleet with
// no cluster fails the demo.
func TestComplianceOneLinePerPool(t *testing.T) {
	body, err := os.ReadFile("cmd/demo/testdata/compliance.json")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/compliance" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write(body)
	}))
	defer srv.Close()
	code, out, errs := runDemo(t, "compliance", srv.URL)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errs)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	for _, want := range []string{"4 clusters, 9 pools: 33.3% current", "NotPatched 4", "median 120h0m0s",
		"NotPatched", "aks-analytics-eus/system", "Blocked/UpgradeFailed", "aks-checkout-neu/system", "and 3 more pools"} {
		if !strings.Contains(out, want) {
			t.Errorf("output does not say %q:\n%s", want, out)
		}
	}
	perPool := 0
	for _, l := range lines {
		if strings.Contains(l, "/system") {
			perPool++
			if !strings.Contains(l, "node OS channel None") && !strings.Contains(l, "AKS said why") {
				t.Errorf("pool line %q does not carry its reason", l)
			}
		}
	}
	if perPool != 2 {
		t.Errorf("%d pool lines, want one per pool listed (2):\n%s", perPool, out)
	}

	empty := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(`{"clusters":0,"poolsNotUpToDate":[]}`))
	}))
	defer empty.Close()
	if code, _, errs := runDemo(t, "compliance", empty.URL); code != exitFailed || !strings.Contains(errs, "no cluster") {
		t.Errorf("empty fleet: exit %d (%s), want a failure naming no cluster", code, errs)
	}
}
