package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	checkoutRef = "3f2b8c1e-7d4a-4e29-9b6f-0a1c5d8e2f47/rg-checkout-prod/aks-checkout-neu"
	checkoutARM = "/subscriptions/3f2b8c1e-7d4a-4e29-9b6f-0a1c5d8e2f47/resourceGroups/rg-checkout-prod/providers/Microsoft.ContainerService/managedClusters/aks-checkout-neu"
	silenceID   = "20261205T223445Z-e4b07563"
)

// fakeFleet is the Status and Silences API of one cluster, as the handler
// answers them, and the sink the handler sends to. Ending the silence sends
// the held opening to /events and /oncall, as the handler does at once.
type fakeFleet struct {
	mu          sync.Mutex
	findings    []map[string]any
	sinkItems   []string
	posted      map[string]any // the last POST /api/silences body
	deleted     string         // the id DELETE /api/silences/{id} ended
	sendOnEnd   bool
	handler     *httptest.Server
	sinkService *httptest.Server
}

func newFakeFleet(t *testing.T, findings ...map[string]any) *fakeFleet {
	t.Helper()
	f := &fakeFleet{findings: findings, sendOnEnd: true}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/clusters", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, `{"count":1,"clusters":[{"subscriptionId":"3f2b8c1e-7d4a-4e29-9b6f-0a1c5d8e2f47","resourceGroup":"rg-checkout-prod","name":"aks-checkout-neu","resourceId":"`+checkoutARM+`"}]}`)
	})
	mux.HandleFunc("GET /api/clusters/{sub}/{rg}/{name}/findings", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("name") != "aks-checkout-neu" || r.URL.Query().Get("status") != "all" {
			http.NotFound(w, r)
			return
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		_ = json.NewEncoder(w).Encode(map[string]any{"cluster": checkoutARM, "findings": f.findings})
	})
	mux.HandleFunc("POST /api/silences", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		_ = json.NewDecoder(r.Body).Decode(&f.posted)
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, `{"id":"`+silenceID+`"}`)
	})
	mux.HandleFunc("GET /api/silences", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, `{"count":1,"active":1,"silences":[{"id":"`+silenceID+`","match":{"cluster":"`+checkoutRef+
			`","code":"UpgradeFailed","target":"pool/system"},"until":"2026-12-06T22:34:45Z","comment":"known","createdBy":"demo@contoso.com","state":"active","active":true}]}`)
	})
	mux.HandleFunc("DELETE /api/silences/{id}", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.deleted = r.PathValue("id")
		for _, x := range f.findings {
			x["silencedBy"], x["announcement"] = "", "sent"
		}
		if f.sendOnEnd {
			f.sinkItems = append(f.sinkItems, sinkEvent("/events", "o1", "io.upgradewatch.finding.opened", "2026-12-05T22:34:45Z"),
				sinkEvent("/oncall", "o1", "io.upgradewatch.finding.opened", "2026-12-05T22:34:45Z"))
		}
		_, _ = io.WriteString(w, `{"id":"`+f.deleted+`","state":"ended","endedBy":"`+r.URL.Query().Get("endedBy")+`"}`)
	})
	f.handler = httptest.NewServer(mux)
	t.Cleanup(f.handler.Close)
	f.sinkService = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		_, _ = io.WriteString(w, "["+strings.Join(f.sinkItems, ",")+"]")
	}))
	t.Cleanup(f.sinkService.Close)
	return f
}

// sinkEvent is a CloudEvent about the checkout cluster's UpgradeFailed on
// pool/system as bin/sink lists it.
func sinkEvent(path, id, typ, openedAt string) string {
	return `{"path":"` + path + `","kind":"cloudevent","event":{"id":"` + id + `","type":"` + typ +
		`","data":{"cluster":"` + checkoutARM + `","code":"UpgradeFailed","target":"pool/system","openedAt":"` + openedAt + `"}}}`
}

func upgradeFailed(status, announcement, silencedBy, openedAt, resolvedAt string) map[string]any {
	f := map[string]any{"code": "UpgradeFailed", "target": "pool/system", "severity": "Error", "status": status,
		"openedAt": openedAt, "announcement": announcement, "silencedBy": silencedBy}
	if resolvedAt != "" {
		f["resolvedAt"] = resolvedAt
	}
	return f
}

func TestBacklog(t *testing.T) {
	neverResolved := upgradeFailed("Resolved", "never", "", "2026-11-11T02:41:27Z", "2026-11-12T09:31:44Z")
	sentOpen := map[string]any{"code": "ImageStale", "target": "pool/system", "severity": "Warning", "status": "Open",
		"openedAt": "2026-11-20T00:00:00Z", "announcement": "sent"}
	tests := []struct {
		name     string
		findings []map[string]any
		sink     []string
		wantCode int
		wantOut  []string
		wantErr  string
	}{
		{"never announced, nothing sent", []map[string]any{neverResolved, sentOpen},
			[]string{sinkEvent("/events", "x", "io.upgradewatch.finding.opened", "2026-11-20T00:00:00Z")}, exitOK,
			[]string{"2 findings on record, by announcement: never 1, sent 1", "1 opened and resolved before their grace ended",
				"the sink got 0 CloudEvent(s) about them", "UpgradeFailed", "opened 2026-11-11T02:41:27Z, resolved 30h50m17s later"}, ""},
		{"a backlog finding the sink got fails", []map[string]any{neverResolved},
			[]string{sinkEvent("/events", "x", "io.upgradewatch.finding.resolved", "2026-11-11T02:41:27Z")}, exitFailed,
			[]string{"the sink got 1 CloudEvent(s) about them"}, "the sink got 1 CloudEvent(s) about findings never announced"},
		{"nothing never announced fails", []map[string]any{sentOpen}, []string{sinkEvent("/events", "x", "t", "2026-11-20T00:00:00Z")},
			exitFailed, []string{"0 opened and resolved"}, "no finding opened and resolved within the replay"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeFleet(t, tc.findings...)
			f.sinkItems = tc.sink
			code, out, errs := runDemo(t, "backlog", f.handler.URL, f.sinkService.URL)
			if code != tc.wantCode {
				t.Fatalf("exit %d, want %d; stderr %q; stdout:\n%s", code, tc.wantCode, errs, out)
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

// silence posts the match the silences API wants, until a day from now, and
// lists the silences.
func TestSilencePostsAndLists(t *testing.T) {
	f := newFakeFleet(t)
	code, out, errs := runDemo(t, "silence", f.handler.URL, checkoutRef, "UpgradeFailed", "pool/system")
	if code != exitOK {
		t.Fatalf("exit %d; stderr %q", code, errs)
	}
	match, _ := f.posted["match"].(map[string]any)
	if match["cluster"] != checkoutRef || match["code"] != "UpgradeFailed" || match["target"] != "pool/system" {
		t.Errorf("posted match %v, want the checkout cluster's UpgradeFailed on pool/system", match)
	}
	until, err := time.Parse(time.RFC3339, f.posted["until"].(string))
	if err != nil || until.Before(time.Now().Add(23*time.Hour)) {
		t.Errorf("posted until %v (%v), want about a day from now", f.posted["until"], err)
	}
	for _, w := range []string{"201, id " + silenceID, "1, 1 active", silenceID + "  active  aks-checkout-neu UpgradeFailed pool/system"} {
		if !strings.Contains(out, w) {
			t.Errorf("stdout lacks %q:\n%s", w, out)
		}
	}
	if code, _, errs := runDemo(t, "silence", f.handler.URL, "aks-checkout-neu", "UpgradeFailed", "pool/system"); code != exitUsage ||
		!strings.Contains(errs, "subscriptionId/resourceGroup/clusterName") {
		t.Errorf("a bare cluster name: exit %d, stderr %q; want usage", code, errs)
	}
}

func TestSilenced(t *testing.T) {
	const opened = "2026-12-05T22:34:45Z"
	tests := []struct {
		name     string
		finding  map[string]any
		sink     []string
		wantCode int
		wantErr  string
	}{
		// An earlier opening of the same finding, announced, is not this one.
		{"held and not sent", upgradeFailed("Open", "pending", silenceID, opened, ""),
			[]string{sinkEvent("/events", "old", "io.upgradewatch.finding.opened", "2026-11-11T02:41:27Z")}, exitOK, ""},
		{"not silenced", upgradeFailed("Open", "pending", "", opened, ""), nil, exitFailed, "is not silenced"},
		{"sent all the same", upgradeFailed("Open", "sent", silenceID, opened, ""),
			[]string{sinkEvent("/oncall", "o1", "io.upgradewatch.finding.opened", opened)}, exitFailed, "the sink got 1 CloudEvent(s) about the silenced"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeFleet(t, tc.finding)
			f.sinkItems = tc.sink
			code, out, errs := runDemo(t, "silenced", f.handler.URL, f.sinkService.URL, checkoutRef, "UpgradeFailed", "pool/system")
			if code != tc.wantCode {
				t.Fatalf("exit %d, want %d; stderr %q; stdout:\n%s", code, tc.wantCode, errs, out)
			}
			if !strings.Contains(errs, tc.wantErr) {
				t.Errorf("stderr %q lacks %q", errs, tc.wantErr)
			}
			if tc.wantCode == exitOK && !strings.Contains(out, "silencedBy "+silenceID+"; the sink got 0 CloudEvent(s)") {
				t.Errorf("stdout lacks the silence and the sink's count:\n%s", out)
			}
		})
	}
}

func TestUnsilence(t *testing.T) {
	t.Run("the opening arrives", func(t *testing.T) {
		f := newFakeFleet(t, upgradeFailed("Open", "pending", silenceID, "2026-12-05T22:34:45Z", ""))
		code, out, errs := runDemo(t, "unsilence", f.handler.URL, f.sinkService.URL, checkoutRef, "UpgradeFailed", "pool/system")
		if code != exitOK {
			t.Fatalf("exit %d; stderr %q", code, errs)
		}
		if f.deleted != silenceID {
			t.Errorf("DELETE ended %q, want the finding's silence %s", f.deleted, silenceID)
		}
		for _, w := range []string{"200, ended by demo@contoso.com", "id o1, at /events 1, /oncall 1", "now: announcement sent, silencedBy (none)"} {
			if !strings.Contains(out, w) {
				t.Errorf("stdout lacks %q:\n%s", w, out)
			}
		}
	})
	t.Run("no opening fails", func(t *testing.T) {
		f := newFakeFleet(t, upgradeFailed("Open", "pending", silenceID, "2026-12-05T22:34:45Z", ""))
		f.sendOnEnd = false
		code, _, errs := runDemo(t, "unsilence", f.handler.URL, f.sinkService.URL, checkoutRef, "UpgradeFailed", "pool/system")
		if code != exitFailed || !strings.Contains(errs, "reached the sink") {
			t.Errorf("exit %d, stderr %q; want a failure saying no opening reached the sink", code, errs)
		}
	})
}

func TestReceivedTalliesChatPerCluster(t *testing.T) {
	chat := func(kind, cluster string, steps int) string {
		b, _ := json.Marshal(map[string]any{"path": "/" + kind, "kind": kind, "cluster": cluster, "steps": steps, "message": map[string]any{}})
		return string(b)
	}
	srv := sinkServer(t, sinkEvent("/events", "a", "io.upgradewatch.finding.opened", "2026-12-05T22:34:45Z"),
		sinkEvent("/oncall", "a", "io.upgradewatch.finding.opened", "2026-12-05T22:34:45Z"),
		chat("teams", "aks-checkout-neu", 5), chat("slack", "aks-checkout-neu", 5), chat("teams", "aks-payments-weu", 1))
	code, out, errs := runDemo(t, "received", srv.URL)
	if code != exitOK {
		t.Fatalf("exit %d; stderr %q", code, errs)
	}
	for _, w := range []string{
		"by receiver: /events 1, /oncall 1, /slack 1, /teams 2",
		"aks-checkout-neu     teams  1  slack  1  steps   5",
		"aks-payments-weu     teams  1  slack  0  steps   1",
	} {
		if !strings.Contains(out, w) {
			t.Errorf("stdout lacks %q:\n%s", w, out)
		}
	}
}

func TestWaitGrace(t *testing.T) {
	findingsServer := func(t *testing.T, body string) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/api/findings" {
				http.NotFound(w, r)
				return
			}
			_, _ = io.WriteString(w, body)
		}))
		t.Cleanup(srv.Close)
		return srv.URL
	}
	t.Run("waits past the last grace", func(t *testing.T) {
		until := time.Now().Add(300 * time.Millisecond).UTC().Format(time.RFC3339Nano)
		base := findingsServer(t, `{"count":3,"findings":[`+
			`{"code":"UpgradeStalled","announcement":"pending","graceUntil":"`+until+`"},`+
			`{"code":"ImageStale","announcement":"sent","graceUntil":"2099-01-01T00:00:00Z"},`+
			`{"code":"VersionSkew","announcement":"pending","graceUntil":"2026-01-01T00:00:00Z"}]}`)
		start := time.Now()
		code, out, errs := runDemo(t, "wait-grace", base)
		if code != exitOK {
			t.Fatalf("exit %d; stderr %q", code, errs)
		}
		if waited := time.Since(start); waited < 1300*time.Millisecond {
			t.Errorf("returned after %s, want past the grace's end and a second more", waited)
		}
		if !strings.Contains(out, "2 open findings wait for their grace") {
			t.Errorf("stdout lacks the count of findings waiting (a sent one does not wait):\n%s", out)
		}
	})
	t.Run("nothing waits", func(t *testing.T) {
		code, out, _ := runDemo(t, "wait-grace", findingsServer(t, `{"count":0,"findings":[]}`))
		if code != exitOK || !strings.Contains(out, "0 open findings wait for their grace, the last until -: waiting 0s") {
			t.Errorf("exit %d, stdout %q; want no wait", code, out)
		}
	})
	t.Run("a grace of hours fails", func(t *testing.T) {
		until := time.Now().Add(3 * time.Hour).UTC().Format(time.RFC3339)
		code, _, errs := runDemo(t, "wait-grace", findingsServer(t, `{"findings":[{"announcement":"pending","graceUntil":"`+until+`"}]}`))
		if code != exitFailed || !strings.Contains(errs, "more than 2m0s away") {
			t.Errorf("exit %d, stderr %q; want a failure naming the bound", code, errs)
		}
	})
}
