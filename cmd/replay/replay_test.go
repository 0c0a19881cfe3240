package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/upgradewatch/upgradewatch/internal/timeline"
)

// request is one request the fake target received.
type request struct {
	method, path string
	query        url.Values
	header       http.Header
	body         []byte
	eventID      string // the delivered event's id, whatever the framing
	at           time.Time
}

// target is an httptest server that records requests and answers with respond,
// given the request and how many times this event was seen before.
type target struct {
	*httptest.Server
	mu       sync.Mutex
	reqs     []request
	attempts map[string]int
	respond  func(r request, attempt int) (status int, contentType, body string)
}

func newTarget(t *testing.T, respond func(r request, attempt int) (int, string, string)) *target {
	t.Helper()
	tg := &target{attempts: map[string]int{}, respond: respond}
	tg.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rec := request{method: r.Method, path: r.URL.Path, query: r.URL.Query(), header: r.Header.Clone(), body: body,
			eventID: eventID(body), at: time.Now()}
		tg.mu.Lock()
		tg.reqs = append(tg.reqs, rec)
		n := tg.attempts[rec.eventID]
		tg.attempts[rec.eventID]++
		tg.mu.Unlock()
		status, ct, out := tg.respond(rec, n)
		if ct != "" {
			w.Header().Set("Content-Type", ct)
		}
		w.WriteHeader(status)
		io.WriteString(w, out)
	}))
	t.Cleanup(tg.Close)
	return tg
}

func (tg *target) requests() []request {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	return append([]request(nil), tg.reqs...)
}

// eventID finds the event id in a host envelope, an Event Grid array or a CloudEvent.
func eventID(body []byte) string {
	var env struct {
		Data map[string]struct {
			ID string `json:"id"`
		}
	}
	if json.Unmarshal(body, &env) == nil && env.Data["event"].ID != "" {
		return env.Data["event"].ID
	}
	var arr []struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(body, &arr) == nil && len(arr) > 0 {
		return arr[0].ID
	}
	var one struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(body, &one)
	return one.ID
}

// invokeOK is what a well-behaved custom handler answers.
func invokeOK(request, int) (int, string, string) {
	return http.StatusOK, "application/json; charset=utf-8", `{"Outputs":{},"Logs":[],"ReturnValue":null}`
}

func runReplay(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// writeEvents writes evs as a JSON-lines file and returns its path.
func writeEvents(t *testing.T, evs []timeline.Event) string {
	t.Helper()
	var b bytes.Buffer
	for _, ev := range evs {
		b.Write(ev.Raw)
		b.WriteByte('\n')
	}
	path := filepath.Join(t.TempDir(), "events.jsonl")
	if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func jsonEqual(t *testing.T, what string, got, want []byte) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("%s: %v in %s", what, err, got)
	}
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatalf("%s: want: %v", what, err)
	}
	if diff := cmp.Diff(w, g); diff != "" {
		t.Errorf("%s (-want +got):\n%s", what, diff)
	}
}

var summaryRE = regexp.MustCompile(`delivered (\d+) events \((\d+) duplicates\) in \d+\.\d{3}s: (\d+) ok, (\d+) retried, (\d+) failed`)

func summary(t *testing.T, stdout string) string {
	t.Helper()
	m := summaryRE.FindStringSubmatch(stdout)
	if m == nil {
		t.Fatalf("no summary line in stdout:\n%s", stdout)
	}
	return strings.Join(m[1:], " ")
}

func TestHandlerEnvelope(t *testing.T) {
	tg := newTarget(t, invokeOK)
	code, stdout, stderr := runReplay(t, "-handler", tg.URL, "-timeline", "demo")
	if code != exitOK {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
	demo := timeline.Demo()
	if got, want := summary(t, stdout), "50 0 50 0 0"; got != want || len(demo) != 50 {
		t.Errorf("summary %q, want %q for %d demo events", got, want, len(demo))
	}
	reqs := tg.requests()
	if len(reqs) != len(demo) {
		t.Fatalf("handler got %d requests, want one per event (%d)", len(reqs), len(demo))
	}
	invocations := map[string]bool{}
	for i, r := range reqs {
		ev := demo[i] // concurrency 1 keeps the timeline order
		if r.method != http.MethodPost || r.path != "/AksEvents" {
			t.Errorf("request %d: %s %s, want POST /AksEvents", i, r.method, r.path)
		}
		if got := r.header.Get("Content-Type"); got != "application/json; charset=utf-8" {
			t.Errorf("request %d: Content-Type %q", i, got)
		}
		if got := r.header.Get("User-Agent"); got != "Azure-Functions-Host/4.1037.0" {
			t.Errorf("request %d: User-Agent %q", i, got)
		}
		inv := r.header.Get("X-Azure-Functions-InvocationId")
		if _, err := uuid.Parse(inv); err != nil || invocations[inv] {
			t.Errorf("request %d: invocation id %q not a fresh GUID", i, inv)
		}
		invocations[inv] = true

		var env struct {
			Data     map[string]json.RawMessage
			Metadata struct {
				Data json.RawMessage `json:"data"`
				Sys  struct{ MethodName, UtcNow, RandGuid string }
			}
		}
		if err := json.Unmarshal(r.body, &env); err != nil {
			t.Fatalf("request %d: envelope: %v", i, err)
		}
		if len(env.Data) != 1 || env.Data["event"] == nil {
			t.Fatalf("request %d: Data keys %v, want only \"event\"", i, keys(env.Data))
		}
		if !bytes.HasPrefix(bytes.TrimSpace(env.Data["event"]), []byte("{")) {
			t.Errorf("request %d: Data.event is not a JSON object: %.80s", i, env.Data["event"])
		}
		jsonEqual(t, "Data.event", env.Data["event"], ev.Raw)
		var evData struct {
			Data json.RawMessage `json:"data"`
		}
		_ = json.Unmarshal(ev.Raw, &evData)
		jsonEqual(t, "Metadata.data", env.Metadata.Data, evData.Data)
		if env.Metadata.Sys.MethodName != "AksEvents" || env.Metadata.Sys.RandGuid != inv {
			t.Errorf("request %d: Metadata.sys %+v", i, env.Metadata.Sys)
		}
		if _, err := time.Parse(time.RFC3339Nano, env.Metadata.Sys.UtcNow); err != nil {
			t.Errorf("request %d: sys.UtcNow %q: %v", i, env.Metadata.Sys.UtcNow, err)
		}
	}
}

func keys(m map[string]json.RawMessage) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestHandlerRetries(t *testing.T) {
	evs := timeline.Demo()[:3]
	file := writeEvents(t, evs)
	second := evs[1].ID
	text := func(status int) func(request, int) (int, string, string) {
		return func(request, int) (int, string, string) { return status, "text/plain", "nope" }
	}
	tests := []struct {
		name     string
		args     []string
		respond  func(request, int) (int, string, string)
		wantCode int
		summary  string         // delivered duplicates ok retried failed
		attempts map[string]int // requests per event id (others: 1)
		stderr   string
	}{{
		name:    "200 is final",
		respond: invokeOK, wantCode: exitOK, summary: "3 0 3 0 0",
	}, {
		name: "503 twice then success",
		respond: func(r request, n int) (int, string, string) {
			if r.eventID == second && n < 2 {
				return http.StatusServiceUnavailable, "text/plain", "busy"
			}
			return invokeOK(r, n)
		},
		wantCode: exitOK, summary: "3 0 3 2 0", attempts: map[string]int{second: 3}, stderr: "retrying",
	}, {
		name: "503 until retries run out",
		args: []string{"-retries", "2"},
		respond: func(r request, n int) (int, string, string) {
			if r.eventID == second {
				return http.StatusServiceUnavailable, "", ""
			}
			return invokeOK(r, n)
		},
		wantCode: exitFailed, summary: "3 0 2 2 1", attempts: map[string]int{second: 3}, stderr: "HTTP 503",
	}, {
		name: "400 is not retried",
		respond: func(r request, n int) (int, string, string) {
			if r.eventID == second {
				return text(http.StatusBadRequest)(r, n)
			}
			return invokeOK(r, n)
		},
		wantCode: exitFailed, summary: "3 0 2 0 1", stderr: "HTTP 400",
	}, {
		name:     "2xx without a JSON object",
		respond:  func(request, int) (int, string, string) { return http.StatusOK, "application/json", "null" },
		wantCode: exitFailed, summary: "3 0 0 0 3", stderr: "not a JSON object",
	}, {
		name:     "2xx with the wrong content type",
		respond:  text(http.StatusOK),
		wantCode: exitFailed, summary: "3 0 0 0 3", stderr: "requires application/json",
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tg := newTarget(t, tc.respond)
			args := append([]string{"-handler", tg.URL, "-file", file, "-backoff", "20ms"}, tc.args...)
			code, stdout, stderr := runReplay(t, args...)
			if code != tc.wantCode {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, tc.wantCode, stderr)
			}
			if got := summary(t, stdout); got != tc.summary {
				t.Errorf("summary %q, want %q", got, tc.summary)
			}
			if !strings.Contains(stderr, tc.stderr) {
				t.Errorf("stderr lacks %q:\n%s", tc.stderr, stderr)
			}
			var times []time.Time
			invocations := map[string]bool{}
			got := map[string]int{}
			for _, r := range tg.requests() {
				got[r.eventID]++
				invocations[r.header.Get("X-Azure-Functions-InvocationId")] = true
				if r.eventID == second {
					times = append(times, r.at)
				}
			}
			for _, ev := range evs {
				want := 1
				if n, ok := tc.attempts[ev.ID]; ok {
					want = n
				}
				if got[ev.ID] != want {
					t.Errorf("event %s: %d requests, want %d", ev.ID, got[ev.ID], want)
				}
			}
			if len(invocations) != len(tg.requests()) {
				t.Errorf("%d invocation ids for %d requests: each attempt is a new invocation", len(invocations), len(tg.requests()))
			}
			// Backoff: 20ms, then 40ms.
			for i := 1; i < len(times); i++ {
				if gap, min := times[i].Sub(times[i-1]), 20*time.Millisecond<<(i-1); gap < min {
					t.Errorf("retry %d after %s, want at least %s", i, gap, min)
				}
			}
		})
	}

	t.Run("connection refused", func(t *testing.T) {
		dead := httptest.NewServer(http.NotFoundHandler())
		dead.Close()
		code, stdout, stderr := runReplay(t, "-handler", dead.URL, "-file", file, "-retries", "1", "-backoff", "1ms")
		if code != exitFailed {
			t.Errorf("exit %d, want %d", code, exitFailed)
		}
		if got := summary(t, stdout); got != "3 0 0 3 3" {
			t.Errorf("summary %q, want 3 events, 3 retries, 3 failed", got)
		}
		if !strings.Contains(stderr, "connection refused") {
			t.Errorf("stderr does not say why:\n%s", stderr)
		}
	})
}

func TestConcurrency(t *testing.T) {
	tg := newTarget(t, invokeOK)
	code, stdout, stderr := runReplay(t, "-handler", tg.URL, "-timeline", "fleet", "-clusters", "5", "-weeks", "2",
		"-seed", "3", "-concurrency", "4", "-dup", "0.2", "-shuffle")
	if code != exitOK {
		t.Fatalf("exit %d:\n%s", code, stderr)
	}
	evs := timeline.Generate(timeline.Options{Seed: 3, Clusters: 5, Weeks: 2, Schema: timeline.SchemaMixed})
	dups := int(0.2*float64(len(evs)) + 0.5)
	want := map[string]int{}
	for _, ev := range timeline.WithDuplicates(timeline.Shuffle(evs, 3), 0.2, 3) {
		want[ev.ID]++
	}
	got := map[string]int{}
	for _, r := range tg.requests() {
		got[r.eventID]++
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("deliveries per event (-want +got):\n%s", diff)
	}
	n := len(evs) + dups
	if s, w := summary(t, stdout), fmt.Sprintf("%d %d %d 0 0", n, dups, n); s != w {
		t.Errorf("summary %q, want %q", s, w)
	}
}

const webhookKey = "aB3xs3cr3tKey/9Q=="

func TestWebhook(t *testing.T) {
	accepted := func(request, int) (int, string, string) { return http.StatusAccepted, "", "" }
	query := "functionName=AksEvents&code=" + strings.NewReplacer("/", "%2F", "=", "%3D").Replace(webhookKey)
	tests := []struct {
		name     string
		respond  func(request, int) (int, string, string)
		dead     bool
		wantCode int
	}{
		{"accepted", accepted, false, exitOK},
		{"500 then accepted", func(r request, n int) (int, string, string) {
			if n == 0 {
				return http.StatusInternalServerError, "text/plain", "Exception while executing function: Functions.AksEvents"
			}
			return accepted(r, n)
		}, false, exitOK},
		{"unreachable", accepted, true, exitFailed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tg := newTarget(t, tc.respond)
			if tc.dead {
				tg.Close()
			}
			u := tg.URL + "/runtime/webhooks/eventgrid?" + query
			code, stdout, stderr := runReplay(t, "-v", "-webhook", u, "-timeline", "demo", "-retries", "1", "-backoff", "1ms")
			if code != tc.wantCode {
				t.Errorf("exit %d, want %d:\n%s", code, tc.wantCode, stderr)
			}
			for name, out := range map[string]string{"stdout": stdout, "stderr": stderr} {
				if strings.Contains(out, "s3cr3t") {
					t.Errorf("%s shows the webhook key:\n%s", name, out)
				}
			}
			if !strings.Contains(stderr, "code=REDACTED") {
				t.Errorf("stderr does not name the (redacted) target:\n%s", stderr)
			}
			if tc.dead {
				return
			}

			demo := map[string]timeline.Event{}
			for _, ev := range timeline.Demo() {
				demo[ev.ID] = ev
			}
			var cloud, grid int
			for _, r := range tg.requests() {
				if r.method != http.MethodPost || r.path != "/runtime/webhooks/eventgrid" ||
					r.query.Get("functionName") != "AksEvents" || r.query.Get("code") != webhookKey {
					t.Errorf("request %s %s?%v", r.method, r.path, r.query)
				}
				if got := r.header.Get("aeg-event-type"); got != "Notification" {
					t.Errorf("aeg-event-type %q", got)
				}
				ev, ok := demo[r.eventID]
				if !ok {
					t.Fatalf("unknown event in body %.100s", r.body)
				}
				mt, _, _ := mime.ParseMediaType(r.header.Get("Content-Type"))
				if bytes.Contains(ev.Raw, []byte(`"specversion"`)) {
					cloud++
					if mt != "application/cloudevents+json" {
						t.Errorf("CloudEvent %s sent as %q", ev.ID, mt)
					}
					jsonEqual(t, "CloudEvents body", r.body, ev.Raw)
				} else {
					grid++
					if mt != "application/json" {
						t.Errorf("Event Grid event %s sent as %q", ev.ID, mt)
					}
					jsonEqual(t, "Event Grid body", r.body, append(append([]byte("["), ev.Raw...), ']'))
				}
			}
			if cloud == 0 || grid == 0 {
				t.Errorf("%d CloudEvents and %d Event Grid deliveries, want both", cloud, grid)
			}
		})
	}
}

func TestDump(t *testing.T) {
	parse := func(t *testing.T, out string) []string {
		t.Helper()
		var ids []string
		for i, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
			ev, err := timeline.Parse(json.RawMessage(line))
			if err != nil {
				t.Fatalf("line %d: %v", i+1, err)
			}
			ids = append(ids, ev.ID)
		}
		return ids
	}
	idsOf := func(evs []timeline.Event) []string {
		var ids []string
		for _, ev := range evs {
			ids = append(ids, ev.ID)
		}
		return ids
	}
	fleet := timeline.Generate(timeline.Options{Seed: 9, Clusters: 3, Weeks: 1, Schema: timeline.SchemaCloudEvents})
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"demo", []string{"-dump"}, idsOf(timeline.Demo())},
		{"fleet", []string{"-dump", "-timeline", "fleet", "-clusters", "3", "-weeks", "1", "-seed", "9", "-schema", "cloudevents"}, idsOf(fleet)},
		{"shuffled with duplicates", []string{"-dump", "-shuffle", "-dup", "0.5", "-seed", "4"},
			idsOf(timeline.WithDuplicates(timeline.Shuffle(timeline.Demo(), 4), 0.5, 4))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runReplay(t, tc.args...)
			if code != exitOK {
				t.Fatalf("exit %d:\n%s", code, stderr)
			}
			if diff := cmp.Diff(tc.want, parse(t, stdout)); diff != "" {
				t.Errorf("dumped ids (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("file round trip", func(t *testing.T) {
		_, first, _ := runReplay(t, "-dump", "-timeline", "fleet", "-clusters", "2", "-weeks", "1")
		path := filepath.Join(t.TempDir(), "dump.jsonl")
		// A blank line is skipped.
		if err := os.WriteFile(path, []byte("\n"+first), 0o600); err != nil {
			t.Fatal(err)
		}
		code, second, stderr := runReplay(t, "-dump", "-file", path)
		if code != exitOK || second != first {
			t.Errorf("exit %d; dump of the dump differs (%d vs %d bytes):\n%s", code, len(second), len(first), stderr)
		}
	})
}

func TestShow(t *testing.T) {
	list := `{"count":2,"clusters":[
	 {"key":"b71d04a9-52e3-4c8f-a6d2-9e13f07c4b58~rg-analytics-dev~aks-analytics-eus","subscriptionId":"b71d04a9-52e3-4c8f-a6d2-9e13f07c4b58","resourceGroup":"rg-analytics-dev","name":"aks-analytics-eus","resourceId":"/subscriptions/b71d04a9-52e3-4c8f-a6d2-9e13f07c4b58/resourceGroups/rg-analytics-dev/providers/Microsoft.ContainerService/managedClusters/aks-analytics-eus","upgradeChannel":"none","nodeOSUpgradeChannel":"None","kubernetesVersion":"1.31.13","pools":3,"rollingPools":0,"lastEventAt":"2026-11-19T09:00:08Z"},
	 {"key":"3f2b8c1e-7d4a-4e29-9b6f-0a1c5d8e2f47~rg-payments-prod~aks-payments-weu","subscriptionId":"3f2b8c1e-7d4a-4e29-9b6f-0a1c5d8e2f47","resourceGroup":"rg-payments-prod","name":"aks-payments-weu","resourceId":"/subscriptions/3f2b8c1e-7d4a-4e29-9b6f-0a1c5d8e2f47/resourceGroups/rg-payments-prod/providers/Microsoft.ContainerService/managedClusters/aks-payments-weu","upgradeChannel":"patch","nodeOSUpgradeChannel":"NodeImage","kubernetesVersion":"1.33.5","pools":2,"rollingPools":1,"lastEventAt":"2026-11-20T07:45:16Z"}]}`
	payments := `{"cluster":{"key":"3f2b8c1e-7d4a-4e29-9b6f-0a1c5d8e2f47~rg-payments-prod~aks-payments-weu","subscriptionId":"3f2b8c1e-7d4a-4e29-9b6f-0a1c5d8e2f47","resourceGroup":"rg-payments-prod","name":"aks-payments-weu","upgradeChannel":"patch","nodeOSUpgradeChannel":"NodeImage","kubernetesVersion":"1.33.5","pools":2,"rollingPools":1,"lastEventAt":"2026-11-20T07:45:16Z","tags":{"env":"prod"},"support":"","supportVersion":"","signals":21},
	 "pools":[
	  {"name":"system","mode":"System","osType":"Linux","osSku":"Ubuntu","vmSize":"Standard_D4ds_v5","count":3,"nodeImageVersion":"AKSUbuntu-2204gen2containerd-202610.13.0","rollingState":"Succeeded","rollingSince":"2026-11-17T01:02:05Z","latestUpgrade":"system~20261117T010205.9930218Z~aa","removed":false},
	  {"name":"payments","mode":"User","osType":"Linux","osSku":"AzureLinux","vmSize":"Standard_D8ds_v5","count":6,"nodeImageVersion":"AKSAzureLinux-V3gen2-202610.20.0","rollingState":"Rolling","rollingSince":"2026-11-17T01:36:50Z","latestUpgrade":"payments~20261117T013650.2284607Z~bb","removed":false}],
	 "upgrades":[
	  {"key":"payments~20261103T014002.7765018Z~cc","pool":"payments","outcome":"Succeeded","startedAt":"2026-11-03T01:40:02Z","endedAt":"2026-11-03T02:31:55Z","signals":[]},
	  {"key":"system~20261117T010205.9930218Z~aa","pool":"system","outcome":"Succeeded","startedAt":"2026-11-17T01:02:05Z","endedAt":"2026-11-17T01:35:29Z","signals":[{"id":"x","kind":"RollingStarted","time":"2026-11-17T01:02:05Z"}]},
	  {"key":"payments~20261117T013650.2284607Z~bb","pool":"payments","outcome":"InProgress","startedAt":"2026-11-17T01:36:50Z","signals":[]},
	  {"key":"payments~20261110T013740.0938127Z~dd","pool":"payments","outcome":"Succeeded","startedAt":"2026-11-10T01:37:40Z","endedAt":"2026-11-10T02:29:03Z","signals":[]}],
	 "scheduledEvents":[{"eventId":"e3a1f6b2-8c47-4d09-a5e1-6b2c9d4f7a10","status":"Completed","upgradeType":"NodeOSUpgrade","source":"AutoUpgrader","details":"Node image upgrade completed","scheduledTime":"2026-11-10T01:00:00Z","startTime":"2026-11-10T01:00:04Z","lastUpdateTime":"2026-11-10T02:31:20Z"}]}`
	analytics := `{"cluster":{"key":"b71d04a9-52e3-4c8f-a6d2-9e13f07c4b58~rg-analytics-dev~aks-analytics-eus","subscriptionId":"b71d04a9-52e3-4c8f-a6d2-9e13f07c4b58","resourceGroup":"rg-analytics-dev","name":"aks-analytics-eus","upgradeChannel":"none","nodeOSUpgradeChannel":"None","kubernetesVersion":"1.31.13","support":"Ending","supportVersion":"1.31.13","signals":6},
	 "pools":[{"name":"batch","osType":"Linux","osSku":"Ubuntu","nodeImageVersion":"AKSUbuntu-2204gen2containerd-202608.25.0","rollingState":"Idle","removed":true}],
	 "upgrades":[],"scheduledEvents":[]}`

	var paths []string
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths = append(paths, r.Method+" "+r.URL.Path)
		mu.Unlock()
		body, ok := map[string]string{
			"/api/clusters": list,
			"/api/clusters/3f2b8c1e-7d4a-4e29-9b6f-0a1c5d8e2f47/rg-payments-prod/aks-payments-weu":  payments,
			"/api/clusters/b71d04a9-52e3-4c8f-a6d2-9e13f07c4b58/rg-analytics-dev/aks-analytics-eus": analytics,
		}[r.URL.Path]
		if !ok || r.Method != http.MethodGet {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, body)
	}))
	defer srv.Close()

	code, stdout, stderr := runReplay(t, "-handler", srv.URL, "-timeline", "none", "-show")
	if code != exitOK {
		t.Fatalf("exit %d:\n%s", code, stderr)
	}
	if strings.Contains(stdout, "delivered") {
		t.Errorf("-timeline none delivered something:\n%s", stdout)
	}
	for _, want := range []string{
		"upgradewatch holds 2 clusters",
		"aks-payments-weu  (rg-payments-prod, subscription 3f2b8c1e-7d4a-4e29-9b6f-0a1c5d8e2f47)",
		"upgrade=patch  node-os=NodeImage",
		"kubernetes  1.33.5",
		"payments     Linux/AzureLinux     Rolling    2026-11-17 01:36Z AKSAzureLinux-V3gen2-202610.20.0",
		"system       Linux/Ubuntu         Succeeded  2026-11-17 01:02Z AKSUbuntu-2204gen2containerd-202610.13.0",
		"payments     InProgress 2026-11-17 01:36Z → -",
		"system       Succeeded  2026-11-17 01:02Z → 2026-11-17 01:35Z",
		"payments     Succeeded  2026-11-10 01:37Z → 2026-11-10 02:29Z",
		"scheduled   Completed NodeOSUpgrade",
		"kubernetes  1.31.13  (support Ending for 1.31.13)",
		"batch        Linux/Ubuntu         removed",
		"no upgrades seen",
		"signals     6, last event 2026-11-19 09:00Z", // from the list when the detail lacks it
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("summary lacks %q:\n%s", want, stdout)
		}
	}
	if strings.Contains(stdout, "2026-11-03 01:40Z") {
		t.Errorf("summary shows a fourth, older upgrade:\n%s", stdout)
	}
	if strings.Index(stdout, "aks-payments-weu") > strings.Index(stdout, "aks-analytics-eus") {
		t.Errorf("clusters not in key order (3f2b… before b71d…):\n%s", stdout)
	}
	if len(paths) != 3 {
		t.Errorf("requests %v, want the list and two clusters", paths)
	}

	t.Run("status API error", func(t *testing.T) {
		broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "storage unavailable", http.StatusServiceUnavailable)
		}))
		defer broken.Close()
		code, _, stderr := runReplay(t, "-handler", broken.URL, "-timeline", "none", "-show")
		if code != exitFailed || !strings.Contains(stderr, "HTTP 503") {
			t.Errorf("exit %d, stderr:\n%s", code, stderr)
		}
	})

	t.Run("after delivery", func(t *testing.T) {
		var delivered atomic.Int64
		both := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/AksEvents" {
				delivered.Add(1)
				invokeOKHandler(w)
				return
			}
			srv.Config.Handler.ServeHTTP(w, r)
		}))
		defer both.Close()
		code, stdout, _ := runReplay(t, "-handler", both.URL, "-show")
		if code != exitOK || delivered.Load() != int64(len(timeline.Demo())) || !strings.Contains(stdout, "upgradewatch holds 2 clusters") ||
			strings.Index(stdout, "delivered") > strings.Index(stdout, "upgradewatch holds") {
			t.Errorf("exit %d, %d delivered; want the delivery summary then the state:\n%s", code, delivered.Load(), stdout)
		}
	})
}

func invokeOKHandler(w http.ResponseWriter) {
	status, ct, body := invokeOK(request{}, 0)
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(status)
	io.WriteString(w, body)
}

func TestFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no target", nil, "exactly one of -handler and -webhook"},
		{"two targets", []string{"-handler", "http://127.0.0.1:1", "-webhook", "http://127.0.0.1:2"}, "exactly one"},
		{"show needs handler", []string{"-webhook", "http://127.0.0.1:2", "-show"}, "-show reads"},
		{"bad timeline", []string{"-handler", "http://127.0.0.1:1", "-timeline", "year"}, "want demo, fleet or none"},
		{"bad schema", []string{"-handler", "http://127.0.0.1:1", "-timeline", "fleet", "-schema", "xml"}, "want eventgrid"},
		{"fleet flags on demo", []string{"-handler", "http://127.0.0.1:1", "-clusters", "5"}, "only apply to -timeline fleet"},
		{"file and timeline", []string{"-handler", "http://127.0.0.1:1", "-file", "x.jsonl", "-timeline", "fleet"}, "-file replaces -timeline"},
		{"dump with target", []string{"-dump", "-handler", "http://127.0.0.1:1"}, "-dump writes"},
		{"dup out of range", []string{"-handler", "http://127.0.0.1:1", "-dup", "1.5"}, "-dup 1.5"},
		{"no workers", []string{"-handler", "http://127.0.0.1:1", "-concurrency", "0"}, "-concurrency"},
		{"nothing to do", []string{"-handler", "http://127.0.0.1:1", "-timeline", "none"}, "nothing to do"},
		{"relative URL", []string{"-handler", "127.0.0.1:8089"}, "absolute http(s) URL"},
		{"bad webhook hides key", []string{"-webhook", "ftp://host/x?code=s3cr3t"}, "-webhook: want"},
		{"unknown flag", []string{"-bogus"}, "flag provided but not defined"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runReplay(t, tc.args...)
			if code != exitUsage {
				t.Errorf("exit %d, want %d", code, exitUsage)
			}
			if !strings.Contains(stderr, tc.want) {
				t.Errorf("stderr lacks %q:\n%s", tc.want, stderr)
			}
			if strings.Contains(stdout+stderr, "s3cr3t") {
				t.Errorf("output shows the key:\n%s%s", stdout, stderr)
			}
		})
	}
}

func TestReadJSONL(t *testing.T) {
	evs := timeline.Demo()[:2]
	batch, _ := json.Marshal([]json.RawMessage{evs[0].Raw, evs[1].Raw})
	tests := []struct {
		name    string
		in      string
		want    []string
		wantErr string
	}{
		{"lines", string(evs[0].Raw) + "\n\n" + string(evs[1].Raw) + "\n", []string{evs[0].ID, evs[1].ID}, ""},
		{"batch line", string(batch), []string{evs[0].ID, evs[1].ID}, ""},
		{"garbage", string(evs[0].Raw) + "\nnot json\n", nil, "line 2"},
		{"no id", `{"type":"x"}`, nil, "line 1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readJSONL(strings.NewReader(tc.in))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got error %v, want one about %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, ev := range got {
				ids = append(ids, ev.ID)
			}
			if diff := cmp.Diff(tc.want, ids); diff != "" {
				t.Errorf("ids (-want +got):\n%s", diff)
			}
		})
	}
}
