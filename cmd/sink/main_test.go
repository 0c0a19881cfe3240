package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/go-cmp/cmp"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
	"github.com/upgradewatch/upgradewatch/internal/notify"
)

// The notifications the tests send: one production cluster, as
// internal/notify's fixtures describe it.

var payments = fleet.ClusterID{
	SubscriptionID: "6f1c2a3b-4d5e-4f60-8a71-92b3c4d5e6f7",
	ResourceGroup:  "rg-payments-prod",
	Name:           "aks-payments-weu",
}

const (
	paymentsID     = "/subscriptions/6f1c2a3b-4d5e-4f60-8a71-92b3c4d5e6f7/resourceGroups/rg-payments-prod/providers/Microsoft.ContainerService/managedClusters/aks-payments-weu"
	paymentsStatus = "https://func-upgradewatch-prod.azurewebsites.net/api/clusters/6f1c2a3b-4d5e-4f60-8a71-92b3c4d5e6f7/rg-payments-prod/aks-payments-weu"
	appSource      = "https://func-upgradewatch-prod.azurewebsites.net"
)

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func upgradeFailedOpened() notify.Notification {
	return notify.Notification{
		ID:       "a3f1c9e27b4d5088b6e1d2c3f4a5b6c7",
		Type:     notify.TypeFindingOpened,
		Time:     at("2026-03-14T02:48:12Z"),
		Cluster:  payments,
		Subject:  paymentsID + "/agentPools/payments",
		Code:     fleet.CodeUpgradeFailed,
		Severity: fleet.SeverityError,
		Target:   "pool/payments",
		Summary: "the last upgrade of pool payments failed: Drain node aks-payments-38172645-vmss00000b failed when evicting pod " +
			"payments-api-7c9d8f6b5-x2kq4 failed with Too Many Requests error.",
		Evidence:  json.RawMessage(`{"endedAt":"2026-03-14T02:47:53Z","rollingState":"Failed","trigger":"Automatic","upgrade":"payments~2026-03-14T02:00:11Z~3f9a1c07"}`),
		OpenedAt:  at("2026-03-14T02:48:12Z"),
		StatusURL: paymentsStatus,
	}
}

func imageStalePlanned() notify.Notification {
	return notify.Notification{
		ID:       "7a6b5c4d3e2f10a9b8c7d6e5f4a3b2c1",
		Type:     notify.TypeRemediationPlanned,
		Time:     at("2026-03-15T00:05:00Z"),
		Cluster:  payments,
		Code:     fleet.CodeImageStale,
		Severity: fleet.SeverityWarning,
		Target:   "pool/payments",
		Summary:  "pool payments runs AKSUbuntu-2204gen2containerd-202602.04.0, 39 days old (limit 14)",
		OpenedAt: at("2026-03-12T06:00:00Z"),
		Remediation: &notify.RemediationStep{
			Action: "upgradeNodeImageVersion",
			DryRun: true,
			Detail: "would upgrade pool payments to AKSUbuntu-2204gen2containerd-202603.09.0 in the next aksManagedNodeOSUpgradeSchedule window",
		},
		StatusURL: paymentsStatus,
	}
}

func channelDriftResolved() notify.Notification {
	return notify.Notification{
		ID:         "5e4d3c2b1a09f8e7d6c5b4a392817065",
		Type:       notify.TypeFindingResolved,
		Time:       at("2026-03-14T15:31:40Z"),
		Cluster:    payments,
		Code:       fleet.CodeChannelDrift,
		Severity:   fleet.SeverityWarning,
		Target:     "cluster",
		Summary:    "node OS channel is Unmanaged, policy wants NodeImage",
		Evidence:   json.RawMessage(`{"desired":"NodeImage","observed":"Unmanaged","policy":"production-windows"}`),
		OpenedAt:   at("2026-03-14T10:17:20Z"),
		ResolvedAt: at("2026-03-14T15:31:40Z"),
		StatusURL:  paymentsStatus,
	}
}

// syncBuffer is a bytes.Buffer safe to read while a server writes to it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// testSink is a sink server under test and what it printed.
type testSink struct {
	*httptest.Server
	srv *server
	out *syncBuffer
}

func startSink(t *testing.T, o options) *testSink {
	t.Helper()
	out := &syncBuffer{}
	o.out = out
	if o.now == nil {
		o.now = func() time.Time { return at("2026-03-15T00:05:01Z") }
	}
	s := newServer(o)
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return &testSink{Server: ts, srv: s, out: out}
}

// newNotifySink builds the upgradewatch sink that posts to path.
func newNotifySink(t *testing.T, kind, url string) notify.Sink {
	t.Helper()
	o := notify.Options{Source: appSource, Timeout: 5 * time.Second}
	var (
		s   notify.Sink
		err error
	)
	switch kind {
	case kindCloudEvent:
		s, err = notify.NewWebhookSink(url, o)
	case kindTeams:
		s, err = notify.NewTeamsSink(url, o)
	case kindSlack:
		s, err = notify.NewSlackSink(url, o)
	default:
		t.Fatalf("unknown sink kind %q", kind)
	}
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// view is what a test checks of one item of GET /events.
type view struct {
	Path, Kind, Mode      string
	Duplicate             bool
	Type, ID, Subject     string // CloudEvents
	Code, Action          string // CloudEvent data
	DryRun                bool
	MessageType, CardType string // Teams
	Blocks                int    // Slack
}

// listed is the JSON of one item of GET /events, as a script would read it.
type listed struct {
	ReceivedAt time.Time `json:"receivedAt"`
	Path       string    `json:"path"`
	Kind       string    `json:"kind"`
	Mode       string    `json:"mode"`
	Duplicate  bool      `json:"duplicate"`
	Event      *struct {
		SpecVersion string `json:"specversion"`
		Type        string `json:"type"`
		ID          string `json:"id"`
		Source      string `json:"source"`
		Subject     string `json:"subject"`
		Data        struct {
			Code        string `json:"code"`
			Remediation *struct {
				Action string `json:"action"`
				DryRun bool   `json:"dryRun"`
			} `json:"remediation"`
		} `json:"data"`
	} `json:"event"`
	Message *struct {
		Type        string `json:"type"`
		Attachments []struct {
			Content struct {
				Type string `json:"type"`
			} `json:"content"`
		} `json:"attachments"`
		Text   string            `json:"text"`
		Blocks []json.RawMessage `json:"blocks"`
	} `json:"message"`
}

func (l listed) view() view {
	v := view{Path: l.Path, Kind: l.Kind, Mode: l.Mode, Duplicate: l.Duplicate}
	if e := l.Event; e != nil {
		v.Type, v.ID, v.Subject, v.Code = e.Type, e.ID, e.Subject, e.Data.Code
		if r := e.Data.Remediation; r != nil {
			v.Action, v.DryRun = r.Action, r.DryRun
		}
	}
	if m := l.Message; m != nil {
		v.MessageType, v.Blocks = m.Type, len(m.Blocks)
		if len(m.Attachments) > 0 {
			v.CardType = m.Attachments[0].Content.Type
		}
	}
	return v
}

// events fetches GET /events.
func (ts *testSink) events(t *testing.T) []listed {
	t.Helper()
	resp, err := http.Get(ts.URL + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /events: got status %d, want 200", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("GET /events: got Content-Type %q, want application/json", ct)
	}
	var got []listed
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatalf("GET /events: %v", err)
	}
	if got == nil {
		t.Fatal("GET /events: got null, want an array")
	}
	return got
}

func (ts *testSink) views(t *testing.T) []view {
	t.Helper()
	var vs []view
	for _, l := range ts.events(t) {
		vs = append(vs, l.view())
	}
	return vs
}

// post sends body to path and returns the status and the answer.
func (ts *testSink) post(t *testing.T, path string, header map[string]string, body []byte) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, ts.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func cloudEvent(t *testing.T, n notify.Notification) event.Event {
	t.Helper()
	e, err := n.CloudEvent(appSource)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func mustMarshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestNotifySinksDeliver(t *testing.T) {
	poolSubject := paymentsID + "/agentPools/payments"
	tests := []struct {
		name string
		kind string
		path string
		n    notify.Notification
		want view
	}{
		{"webhook finding opened", kindCloudEvent, "/events", upgradeFailedOpened(), view{
			Path: "/events", Kind: kindCloudEvent, Mode: modeBinary,
			Type: notify.TypeFindingOpened, ID: "a3f1c9e27b4d5088b6e1d2c3f4a5b6c7", Subject: poolSubject, Code: fleet.CodeUpgradeFailed,
		}},
		{"webhook remediation planned, to /", kindCloudEvent, "/", imageStalePlanned(), view{
			Path: "/", Kind: kindCloudEvent, Mode: modeBinary,
			Type: notify.TypeRemediationPlanned, ID: "7a6b5c4d3e2f10a9b8c7d6e5f4a3b2c1", Subject: poolSubject, Code: fleet.CodeImageStale,
			Action: "upgradeNodeImageVersion", DryRun: true,
		}},
		{"webhook finding resolved on the cluster", kindCloudEvent, "/events", channelDriftResolved(), view{
			Path: "/events", Kind: kindCloudEvent, Mode: modeBinary,
			Type: notify.TypeFindingResolved, ID: "5e4d3c2b1a09f8e7d6c5b4a392817065", Subject: paymentsID, Code: fleet.CodeChannelDrift,
		}},
		{"teams", kindTeams, "/teams", upgradeFailedOpened(), view{
			Path: "/teams", Kind: kindTeams, MessageType: "message", CardType: "AdaptiveCard",
		}},
		{"teams remediation", kindTeams, "/teams", imageStalePlanned(), view{
			Path: "/teams", Kind: kindTeams, MessageType: "message", CardType: "AdaptiveCard",
		}},
		{"slack", kindSlack, "/slack", channelDriftResolved(), view{
			Path: "/slack", Kind: kindSlack, Blocks: -1, // checked below: any number
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ts := startSink(t, options{})
			if err := newNotifySink(t, tc.kind, ts.URL+tc.path).Send(context.Background(), tc.n); err != nil {
				t.Fatalf("Send: got %v, want success", err)
			}
			got := ts.views(t)
			if len(got) != 1 {
				t.Fatalf("GET /events: got %d items, want 1: %+v", len(got), got)
			}
			if tc.want.Blocks == -1 {
				if got[0].Blocks == 0 {
					t.Error("slack message: got no blocks")
				}
				tc.want.Blocks = got[0].Blocks
			}
			if diff := cmp.Diff(tc.want, got[0]); diff != "" {
				t.Errorf("GET /events (-want +got):\n%s", diff)
			}
			if lines := strings.Count(ts.out.String(), "\n"); lines != 1 {
				t.Errorf("got %d lines printed, want 1:\n%s", lines, ts.out)
			}
		})
	}
}

func TestCloudEventModes(t *testing.T) {
	opened, planned := cloudEvent(t, upgradeFailedOpened()), cloudEvent(t, imageStalePlanned())
	v03 := func(e event.Event) event.Event { e.SetSpecVersion(event.CloudEventsVersionV03); return e }
	tests := []struct {
		name   string
		header map[string]string
		body   []byte
		want   []view
	}{
		{
			name:   "structured",
			header: map[string]string{"Content-Type": "application/cloudevents+json; charset=utf-8"},
			body:   mustMarshal(t, opened),
			want: []view{{Path: "/events", Kind: kindCloudEvent, Mode: modeStructured, Type: notify.TypeFindingOpened,
				ID: opened.ID(), Subject: opened.Subject(), Code: fleet.CodeUpgradeFailed}},
		},
		{
			name:   "structured 0.3",
			header: map[string]string{"Content-Type": "application/cloudevents+json"},
			body:   mustMarshal(t, v03(planned)),
			want: []view{{Path: "/events", Kind: kindCloudEvent, Mode: modeStructured, Type: notify.TypeRemediationPlanned,
				ID: planned.ID(), Subject: planned.Subject(), Code: fleet.CodeImageStale, Action: "upgradeNodeImageVersion", DryRun: true}},
		},
		{
			name:   "batch",
			header: map[string]string{"Content-Type": "application/cloudevents-batch+json"},
			body:   mustMarshal(t, []event.Event{opened, planned}),
			want: []view{
				{Path: "/events", Kind: kindCloudEvent, Mode: modeBatch, Type: notify.TypeFindingOpened,
					ID: opened.ID(), Subject: opened.Subject(), Code: fleet.CodeUpgradeFailed},
				{Path: "/events", Kind: kindCloudEvent, Mode: modeBatch, Type: notify.TypeRemediationPlanned,
					ID: planned.ID(), Subject: planned.Subject(), Code: fleet.CodeImageStale, Action: "upgradeNodeImageVersion", DryRun: true},
			},
		},
		{
			name: "binary by hand, with an extension and no data",
			header: map[string]string{
				"ce-specversion": "1.0", "ce-id": "manual-1", "ce-source": "/curl", "ce-type": "io.example.ping",
				"ce-subject": paymentsID, "ce-time": "2026-03-15T00:00:00Z", "ce-traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
			},
			want: []view{{Path: "/events", Kind: kindCloudEvent, Mode: modeBinary, Type: "io.example.ping", ID: "manual-1", Subject: paymentsID}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ts := startSink(t, options{})
			status, answer := ts.post(t, "/events", tc.header, tc.body)
			if status != http.StatusAccepted {
				t.Fatalf("got status %d (%s), want 202", status, answer)
			}
			if diff := cmp.Diff(tc.want, ts.views(t)); diff != "" {
				t.Errorf("GET /events (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRejects(t *testing.T) {
	binary := func(extra map[string]string) map[string]string {
		h := map[string]string{"ce-specversion": "1.0", "ce-id": "x1", "ce-source": "/test", "ce-type": "io.example.test", "Content-Type": "application/json"}
		for k, v := range extra {
			if v == "" {
				delete(h, k)
			} else {
				h[k] = v
			}
		}
		return h
	}
	structured := map[string]string{"Content-Type": "application/cloudevents+json"}
	jsonCT := map[string]string{"Content-Type": "application/json"}
	teams := func(contentType, content string) []byte {
		return []byte(`{"type":"message","attachments":[{"contentType":"` + contentType + `","content":` + content + `}]}`)
	}
	tests := []struct {
		name   string
		path   string
		header map[string]string
		body   string
		want   string // in the answer
	}{
		{"binary without ce-specversion", "/events", binary(map[string]string{"ce-specversion": ""}), `{"code":"X"}`, "needs a ce-specversion header"},
		{"plain JSON", "/", jsonCT, `{"code":"X"}`, "not a CloudEvent"},
		{"binary with an unknown specversion", "/events", binary(map[string]string{"ce-specversion": "2.0"}), `{}`, `unsupported ce-specversion "2.0"`},
		{"binary without ce-id", "/events", binary(map[string]string{"ce-id": ""}), `{}`, "invalid: id: MUST be a non-empty string"},
		{"binary with a bad ce-time", "/events", binary(map[string]string{"ce-time": "yesterday"}), `{}`, "Ce-Time"},
		{"binary with a bad extension name", "/events", binary(map[string]string{"ce-trace-parent": "x"}), `{}`, "Ce-Trace-Parent"},
		{"binary JSON data that is not JSON", "/events", binary(nil), `{"code":`, "data is not valid UTF-8 JSON"},
		{"structured, bad JSON", "/events", structured, `{"specversion":"1.0","id":`, "structured-mode CloudEvent"},
		{"structured, not an object", "/events", structured, `[1,2]`, "structured-mode CloudEvent"},
		{"structured without source and type", "/events", structured, `{"specversion":"1.0","id":"x1"}`, "invalid: source: REQUIRED; type: MUST be a non-empty string"},
		{"structured XML", "/events", map[string]string{"Content-Type": "application/cloudevents+xml"}, `<event/>`, "unsupported event format"},
		{"batch, not an array", "/events", map[string]string{"Content-Type": "application/cloudevents-batch+json"}, `{}`, "CloudEvents batch"},
		{"batch with an invalid event", "/events", map[string]string{"Content-Type": "application/cloudevents-batch+json"},
			`[{"specversion":"1.0","id":"a","source":"/s","type":"t"},{"specversion":"1.0","id":"b","source":"/s"}]`, "event 1: invalid: type: MUST be a non-empty string"},
		{"teams: a Slack message", "/teams", jsonCT, `{"text":"hello"}`, `type "", want "message"`},
		{"teams: no attachments", "/teams", jsonCT, `{"type":"message","attachments":[]}`, "no attachments"},
		{"teams: a hero card", "/teams", jsonCT, string(teams("application/vnd.microsoft.card.hero", `{"title":"x"}`)), "contentType"},
		{"teams: not an Adaptive Card", "/teams", jsonCT, string(teams(adaptiveCardType, `{"type":"HeroCard"}`)), "not an Adaptive Card"},
		{"teams: not JSON", "/teams", jsonCT, `type=message`, "want a JSON object"},
		{"teams: trailing data", "/teams", jsonCT, string(teams(adaptiveCardType, `{"type":"AdaptiveCard","body":[{"type":"TextBlock","text":"hi"}]}`)) + `{}`, "trailing data"},
		{"slack: empty object", "/slack", jsonCT, `{}`, "neither text nor blocks"},
		{"slack: null", "/slack", jsonCT, `null`, "want a JSON object"},
		{"slack: untyped block", "/slack", jsonCT, `{"text":"hi","blocks":[{"text":"x"}]}`, "block 0 has no type"},
		{"slack: text not a string", "/slack", jsonCT, `{"text":42}`, "not a Slack message"},
		{"slack: not UTF-8", "/slack", jsonCT, "{\"text\":\"caf\xe9\"}", "not valid UTF-8"},
		{"binary JSON data that is not UTF-8", "/events", binary(nil), "{\"summary\":\"caf\xe9\"}", "data is not valid UTF-8 JSON"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ts := startSink(t, options{})
			status, answer := ts.post(t, tc.path, tc.header, []byte(tc.body))
			if status != http.StatusBadRequest {
				t.Fatalf("got status %d (%s), want 400", status, answer)
			}
			if !strings.Contains(answer, tc.want) {
				t.Errorf("got answer %q, want it to say %q", answer, tc.want)
			}
			if got := ts.events(t); len(got) != 0 {
				t.Errorf("GET /events: got %d items, want none", len(got))
			}
			if out := ts.out.String(); !strings.Contains(out, "rejected POST "+tc.path+": 400 ") || strings.Count(out, "\n") != 1 {
				t.Errorf("got printed %q, want one line saying it was rejected", out)
			}
			if s := ts.srv.summary(); !strings.Contains(s, "0 received") || !strings.Contains(s, "1 rejected") {
				t.Errorf("got summary %q, want 0 received and 1 rejected", s)
			}
		})
	}
}

func TestDuplicates(t *testing.T) {
	ts := startSink(t, options{})
	webhook := newNotifySink(t, kindCloudEvent, ts.URL+"/events")
	n := upgradeFailedOpened()
	for range 2 {
		if err := webhook.Send(context.Background(), n); err != nil {
			t.Fatalf("Send: got %v, want success (a duplicate is acknowledged)", err)
		}
	}
	// The same event in structured mode is the same event.
	if status, answer := ts.post(t, "/", map[string]string{"Content-Type": "application/cloudevents+json"},
		mustMarshal(t, cloudEvent(t, n))); status != http.StatusAccepted {
		t.Fatalf("structured resend: got status %d (%s), want 202", status, answer)
	}
	// The same id from another source is another event.
	other := cloudEvent(t, n)
	other.SetSource("/another-producer")
	if status, answer := ts.post(t, "/events", map[string]string{"Content-Type": "application/cloudevents+json"},
		mustMarshal(t, other)); status != http.StatusAccepted {
		t.Fatalf("other source: got status %d (%s), want 202", status, answer)
	}

	var dups []bool
	for _, l := range ts.events(t) {
		dups = append(dups, l.Duplicate)
	}
	if diff := cmp.Diff([]bool{false, true, true, false}, dups); diff != "" {
		t.Errorf("duplicate flags (-want +got):\n%s", diff)
	}
	if got := strings.Count(ts.out.String(), " DUPLICATE id="+n.ID+" cloudevent "+notify.TypeFindingOpened); got != 2 {
		t.Errorf("got %d DUPLICATE lines, want 2:\n%s", got, ts.out)
	}
	if s := ts.srv.summary(); !strings.Contains(s, "; 2 duplicates;") || !strings.Contains(s, notify.TypeFindingOpened+" 4") {
		t.Errorf("got summary %q, want 2 duplicates among 4 events", s)
	}
}

func TestFailFirst(t *testing.T) {
	ts := startSink(t, options{failFirst: 2})
	n := upgradeFailedOpened()
	// Each path fails its own first two requests.
	for _, tc := range []struct{ kind, path string }{{kindCloudEvent, "/events"}, {kindTeams, "/teams"}, {kindSlack, "/slack"}} {
		t.Run(tc.kind, func(t *testing.T) {
			s := newNotifySink(t, tc.kind, ts.URL+tc.path)
			for attempt := 1; attempt <= 3; attempt++ {
				err := s.Send(context.Background(), n)
				switch {
				case attempt <= 2 && err == nil:
					t.Fatalf("attempt %d: got success, want a transient error", attempt)
				case attempt <= 2 && errors.Is(err, notify.ErrPermanent):
					t.Fatalf("attempt %d: got %v, want a transient error (not ErrPermanent)", attempt, err)
				case attempt <= 2 && !strings.Contains(err.Error(), "503"):
					t.Errorf("attempt %d: got %v, want it to name status 503", attempt, err)
				case attempt == 3 && err != nil:
					t.Fatalf("attempt 3: got %v, want success", err)
				}
			}
		})
	}
	req, _ := http.NewRequest(http.MethodPost, ts.URL+"/", strings.NewReader(`{}`))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "1" {
		t.Errorf("POST /: got %d with Retry-After %q, want 503 with Retry-After 1", resp.StatusCode, resp.Header.Get("Retry-After"))
	}

	if got := len(ts.events(t)); got != 3 {
		t.Errorf("GET /events: got %d items, want 3", got)
	}
	if got := strings.Count(ts.out.String(), " 503 POST "); got != 7 {
		t.Errorf("got %d lines about 503s, want 7:\n%s", got, ts.out)
	}
	if s := ts.srv.summary(); !strings.Contains(s, "3 received (/events 1, /slack 1, /teams 1)") || !strings.Contains(s, "7 failed on purpose") {
		t.Errorf("got summary %q, want 3 received and 7 failed on purpose", s)
	}
}

func TestBodyLimit(t *testing.T) {
	big := bytes.Repeat([]byte("x"), 2<<20)
	ce := map[string]string{"ce-specversion": "1.0", "ce-id": "big", "ce-source": "/test", "ce-type": "io.example.big", "Content-Type": "text/plain"}
	for _, path := range []string{"/", "/events", "/teams", "/slack"} {
		t.Run(path, func(t *testing.T) {
			t.Parallel() // the server lingers 0.5s before closing a connection with a body left unread
			ts := startSink(t, options{})
			status, answer := ts.post(t, path, ce, big)
			if status != http.StatusRequestEntityTooLarge {
				t.Fatalf("got status %d (%.100s), want 413", status, answer)
			}
			if got := len(ts.events(t)); got != 0 {
				t.Errorf("GET /events: got %d items, want none", got)
			}
		})
	}
	t.Run("just under the limit", func(t *testing.T) {
		ts := startSink(t, options{})
		if status, answer := ts.post(t, "/events", ce, big[:maxBody]); status != http.StatusAccepted {
			t.Fatalf("got status %d (%.100s), want 202", status, answer)
		}
	})
}

func TestRouting(t *testing.T) {
	ts := startSink(t, options{})
	tests := []struct {
		method, path string
		want         int
	}{
		{http.MethodGet, "/healthz", http.StatusOK},
		{http.MethodGet, "/events", http.StatusOK},
		{http.MethodHead, "/events", http.StatusOK},
		{http.MethodGet, "/", http.StatusMethodNotAllowed},
		{http.MethodGet, "/teams", http.StatusMethodNotAllowed},
		{http.MethodGet, "/slack", http.StatusMethodNotAllowed},
		{http.MethodPut, "/events", http.StatusMethodNotAllowed},
		{http.MethodDelete, "/events", http.StatusMethodNotAllowed},
		{http.MethodPost, "/healthz", http.StatusMethodNotAllowed},
		{http.MethodPost, "/nope", http.StatusNotFound},
		{http.MethodPost, "/events/extra", http.StatusNotFound},
		{http.MethodPost, "/teams/", http.StatusNotFound},
		{http.MethodGet, "/AksEvents", http.StatusNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, ts.URL+tc.path, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("got status %d, want %d", resp.StatusCode, tc.want)
			}
		})
	}
	if got := len(ts.events(t)); got != 0 {
		t.Errorf("GET /events: got %d items, want none", got)
	}
}

func TestLines(t *testing.T) {
	const when = "2026-03-15T00:05:01Z "
	tests := []struct {
		name string
		kind string
		path string
		n    notify.Notification
		want string // the line, or its start for chat messages (rendered by internal/notify)
	}{
		{"finding", kindCloudEvent, "/events", channelDriftResolved(),
			when + "cloudevent io.upgradewatch.finding.resolved ChannelDrift Warning /subscriptions/…/managedClusters/aks-payments-weu" +
				" — node OS channel is Unmanaged, policy wants NodeImage\n"},
		{"remediation", kindCloudEvent, "/events", imageStalePlanned(),
			when + "cloudevent io.upgradewatch.remediation.planned ImageStale Warning action=upgradeNodeImageVersion dryRun=true " +
				"/subscriptions/…/managedClusters/aks-payments-weu/agentPools/payments" +
				" — pool payments runs AKSUbuntu-2204gen2containerd-202602.04.0, 39 days old (limit 14)\n"},
		{"teams", kindTeams, "/teams", upgradeFailedOpened(), when + `teams "[Error] UpgradeFailed opened on aks-payments-weu`},
		{"slack", kindSlack, "/slack", upgradeFailedOpened(), when + `slack "[Error] UpgradeFailed opened on aks-payments-weu`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ts := startSink(t, options{})
			if err := newNotifySink(t, tc.kind, ts.URL+tc.path).Send(context.Background(), tc.n); err != nil {
				t.Fatal(err)
			}
			got := ts.out.String()
			if tc.kind == kindCloudEvent && got != tc.want || !strings.HasPrefix(got, tc.want) || strings.Count(got, "\n") != 1 {
				t.Errorf("got line\n%q\nwant\n%q", got, tc.want)
			}
		})
	}
	t.Run("outside text stays on one line", func(t *testing.T) {
		ts := startSink(t, options{})
		status, _ := ts.post(t, "/slack", map[string]string{"Content-Type": "application/json"},
			[]byte(`{"text":"two\nlines \u001b[31mred"}`))
		if want := when + `slack "two\nlines \x1b[31mred"` + "\n"; status != http.StatusOK || ts.out.String() != want {
			t.Errorf("got %d and line %q, want 200 and %q", status, ts.out, want)
		}
	})
	t.Run("quiet", func(t *testing.T) {
		ts := startSink(t, options{quiet: true})
		if err := newNotifySink(t, kindSlack, ts.URL+"/slack").Send(context.Background(), upgradeFailedOpened()); err != nil {
			t.Fatal(err)
		}
		if got := ts.out.String(); got != "" {
			t.Errorf("got %q printed, want nothing", got)
		}
	})
}

func TestShortID(t *testing.T) {
	tests := []struct{ in, want string }{
		{paymentsID, "/subscriptions/…/managedClusters/aks-payments-weu"},
		{paymentsID + "/agentPools/system", "/subscriptions/…/managedClusters/aks-payments-weu/agentPools/system"},
		{"/subscriptions/6f1c2a3b-4d5e-4f60-8a71-92b3c4d5e6f7/resourceGroups/rg", "/subscriptions/6f1c2a3b-4d5e-4f60-8a71-92b3c4d5e6f7/resourceGroups/rg"},
		{"/upgradewatch", "/upgradewatch"},
	}
	for _, tc := range tests {
		if got := shortID(tc.in); got != tc.want {
			t.Errorf("shortID(%q): got %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestRun runs the command as main does, on a free port, with -out and -fail.
func TestRun(t *testing.T) {
	out := filepath.Join(t.TempDir(), "sink.jsonl")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-out", out, "-fail", "1"}, stdout, stderr) }()

	var base string
	for deadline := time.Now().Add(5 * time.Second); base == ""; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no listening line; stdout %q, stderr %q", stdout, stderr)
		}
		if _, rest, ok := strings.Cut(stdout.String(), "sink: listening on "); ok {
			base, _, _ = strings.Cut(rest, " ")
		}
	}

	n := upgradeFailedOpened()
	for _, kind := range []string{kindCloudEvent, kindTeams} {
		s := newNotifySink(t, kind, base+map[string]string{kindCloudEvent: "/events", kindTeams: "/teams"}[kind])
		if err := s.Send(context.Background(), n); err == nil || errors.Is(err, notify.ErrPermanent) {
			t.Fatalf("%s first send: got %v, want a transient error (-fail 1)", kind, err)
		}
		if err := s.Send(context.Background(), n); err != nil {
			t.Fatalf("%s retry: got %v, want success", kind, err)
		}
	}

	cancel()
	select {
	case code := <-done:
		if code != exitOK {
			t.Fatalf("run: got exit %d, want 0; stderr %q", code, stderr)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return after cancel")
	}

	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if want := "sink: 2 received (/events 1, /teams 1); cloudevents by type: io.upgradewatch.finding.opened 1; 0 duplicates; 0 rejected; 2 failed on purpose; teams messages by cluster: aks-payments-weu 1"; lines[len(lines)-1] != want {
		t.Errorf("got summary\n%q\nwant\n%q", lines[len(lines)-1], want)
	}
	if len(lines) != 6 { // listening, 503, cloudevent, 503, teams, summary
		t.Errorf("got %d lines, want 6:\n%s", len(lines), stdout)
	}

	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var got []view
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, maxBody*2)
	for sc.Scan() {
		var l listed
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("-out line %q: %v", sc.Text(), err)
		}
		got = append(got, l.view())
	}
	want := []view{
		{Path: "/events", Kind: kindCloudEvent, Mode: modeBinary, Type: n.Type, ID: n.ID, Subject: n.Subject, Code: n.Code},
		{Path: "/teams", Kind: kindTeams, MessageType: "message", CardType: "AdaptiveCard"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("-out file (-want +got):\n%s", diff)
	}
}

func TestRunBadStart(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		args []string
		want int
	}{
		{"unknown flag", []string{"-nope"}, exitUsage},
		{"negative -fail", []string{"-fail", "-1"}, exitUsage},
		{"empty -addr", []string{"-addr", ""}, exitUsage},
		{"arguments", []string{"extra"}, exitUsage},
		{"-out is a directory", []string{"-addr", "127.0.0.1:0", "-out", dir}, exitFailed},
		{"bad -addr", []string{"-addr", "127.0.0.1:99999"}, exitFailed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr syncBuffer
			if got := run(context.Background(), tc.args, &stdout, &stderr); got != tc.want {
				t.Errorf("got exit %d, want %d; stderr %q", got, tc.want, &stderr)
			}
			if stderr.String() == "" {
				t.Error("got nothing on stderr, want the reason")
			}
		})
	}
}

// FuzzReceive posts arbitrary bodies to every receiving route: the answer is
// 2xx or 400, and what was accepted is listed as valid JSON.
func FuzzReceive(f *testing.F) {
	for _, n := range []notify.Notification{upgradeFailedOpened(), imageStalePlanned(), channelDriftResolved()} {
		e, err := n.CloudEvent(appSource)
		if err != nil {
			f.Fatal(err)
		}
		structured, _ := json.Marshal(e)
		f.Add(uint8(0), "application/cloudevents+json", "", structured)
		f.Add(uint8(1), "application/json", "1.0", e.Data())
		batch, _ := json.Marshal([]event.Event{e, e})
		f.Add(uint8(1), "application/cloudevents-batch+json", "", batch)
		teams, _ := notify.TeamsCard(n)
		f.Add(uint8(2), "application/json", "", teams)
		slack, _ := notify.SlackMessage(n)
		f.Add(uint8(3), "application/json", "", slack)
	}
	f.Add(uint8(1), "", "0.3", []byte("plain"))
	f.Add(uint8(1), "application/cloudevents+json", "", []byte(`{"specversion":"1.0","id":"x","source":"/s","type":"t","data_base64":"AAE="}`))
	f.Fuzz(func(t *testing.T, route uint8, contentType, specVersion string, body []byte) {
		path := []string{"/", "/events", "/teams", "/slack"}[route%4]
		s := newServer(options{})
		req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
		req.Header.Set("Content-Type", contentType)
		if specVersion != "" {
			req.Header.Set("Ce-Specversion", specVersion)
			req.Header.Set("Ce-Id", "fuzz")
			req.Header.Set("Ce-Source", "/fuzz")
			req.Header.Set("Ce-Type", "io.example.fuzz")
		}
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusOK, http.StatusAccepted, http.StatusBadRequest, http.StatusRequestEntityTooLarge:
		default:
			t.Fatalf("got status %d (%s)", rec.Code, rec.Body)
		}
		list := httptest.NewRecorder()
		s.ServeHTTP(list, httptest.NewRequest(http.MethodGet, "/events", nil))
		var items []json.RawMessage
		if err := json.Unmarshal(list.Body.Bytes(), &items); err != nil {
			t.Fatalf("GET /events is not a JSON array: %v: %s", err, list.Body)
		}
		if rec.Code/100 != 2 && len(items) > 0 { // an empty batch is accepted with none
			t.Fatalf("status %d but %d items listed", rec.Code, len(items))
		}
	})
}
