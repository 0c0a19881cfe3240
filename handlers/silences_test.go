package handlers_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/upgradewatch/upgradewatch/handlers"
	"github.com/upgradewatch/upgradewatch/internal/azuritetest"
	"github.com/upgradewatch/upgradewatch/internal/findings"
	"github.com/upgradewatch/upgradewatch/internal/fleet"
	"github.com/upgradewatch/upgradewatch/internal/notify"
	"github.com/upgradewatch/upgradewatch/internal/outbox"
	"github.com/upgradewatch/upgradewatch/internal/state"
	"github.com/upgradewatch/upgradewatch/internal/watch"
)

const (
	shopSub   = "8f1c2b3a-4d5e-4f60-9a7b-1c2d3e4f5a6b"
	shop01API = "/api/clusters/" + shopSub + "/rg-shops-weu/aks-shop-01"
)

// silenceEnv is a handler wired as cmd/handler wires it: the store, the
// silences table and the instance's view of it feeding the evaluation, a
// webhook sink, UpgradeFailed without grace (so that an opening not held
// is sent at once).
type silenceEnv struct {
	announceEnv
}

// newSilenceEnv builds the env; ensure false leaves the silences table
// uncreated (storage failing the API).
func newSilenceEnv(t *testing.T, clk *clock, ensure bool) *silenceEnv {
	t.Helper()
	svc := azuritetest.Service(t, azuritetest.Endpoint(t))
	prefix := azuritetest.Prefix(t)
	store := state.New(svc, state.Options{TablePrefix: prefix, CacheSize: 100, Now: clk.now})
	t.Cleanup(store.Close)
	table := state.NewSilences(svc, state.SilenceOptions{TablePrefix: prefix})
	azuritetest.DropTables(t, svc, append(store.Tables(), table.Table())...)
	if err := store.EnsureTables(context.Background()); err != nil {
		t.Fatal(err)
	}
	if ensure {
		if err := table.EnsureTable(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	hook := newStepReceiver(t)
	webhook, err := notify.NewWebhookSink(hook.URL+"/hooks/upgradewatch", notify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	view := watch.NewSilences(table, watch.SilencesOptions{Now: clk.now})
	cfg := outbox.Config{Sinks: []string{"webhook"}, Silences: view.Active,
		Grace: outbox.DefaultGrace().With(map[string]time.Duration{fleet.CodeUpgradeFailed: 0})}
	pol := fleet.Policy{Source: "defaults"}.WithDefaults()
	srv := newServer(store, watch.Options{Silences: view,
		Rules:         outbox.Evaluator(findings.Evaluator(func(*fleet.Cluster) (fleet.Policy, []string) { return pol, nil }), cfg),
		NewDispatcher: dispatcher([]notify.Sink{webhook}, outbox.Options{Now: clk.now})}, handlers.Options{Now: clk.now})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return &silenceEnv{announceEnv{srv: srv, store: store, clk: clk, hook: hook}}
}

// call sends an API request with optional headers (name, value pairs).
func (e *silenceEnv) call(t *testing.T, method, path, body string, headers ...string) (*httptest.ResponseRecorder, map[string]any) {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	rec := httptest.NewRecorder()
	e.srv.ServeHTTP(rec, req)
	var out map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatalf("%s %s answered no JSON object: %d %s", method, path, rec.Code, rec.Body.String())
	}
	return rec, out
}

func (e *silenceEnv) create(t *testing.T, body string, headers ...string) string {
	t.Helper()
	rec, out := e.call(t, http.MethodPost, "/api/silences", body, headers...)
	id, _ := out["id"].(string)
	if rec.Code != http.StatusCreated || id == "" || rec.Header().Get("Location") != "/api/silences/"+id {
		t.Fatalf("create: %d %v (Location %q)", rec.Code, out, rec.Header().Get("Location"))
	}
	return id
}

// finding reads one finding of a cluster through the Status API.
func (e *silenceEnv) finding(t *testing.T, api, code string) map[string]any {
	t.Helper()
	code2, body := serve(t, e.srv, http.MethodGet, api+"/findings?code="+code, nil)
	fs, _ := body["findings"].([]any)
	if code2 != http.StatusOK || len(fs) != 1 {
		t.Fatalf("findings of %s: %d %v", api, code2, body)
	}
	return fs[0].(map[string]any)
}

// listed finds a silence in GET /api/silences.
func (e *silenceEnv) listed(t *testing.T, id string) map[string]any {
	t.Helper()
	rec, out := e.call(t, http.MethodGet, "/api/silences", "")
	list, _ := out["silences"].([]any)
	for _, s := range list {
		if m := s.(map[string]any); m["id"] == id {
			return m
		}
	}
	t.Fatalf("silence %s not listed: %d %v", id, rec.Code, out)
	return nil
}

func silenceBody(cluster, code, target string, until time.Time) string {
	b, _ := json.Marshal(map[string]any{"match": map[string]string{"cluster": cluster, "code": code, "target": target},
		"until": until.Format(time.RFC3339), "comment": "CHG0041872: system pool moves to Azure Linux; failures expected until the change closes",
		"createdBy": "ops-oncall@contoso.example"})
	return string(b)
}

// A silence holds a matching finding's opening through every Sweep while
// another cluster's failure goes out at once; its expiry announces the held
// finding exactly once, and the list shows it expired.
func TestSilenceHoldsAndItsExpiryAnnouncesOnce(t *testing.T) {
	t0 := time.Date(2026, 12, 14, 9, 0, 0, 0, time.UTC)
	clk := &clock{t: t0}
	e := newSilenceEnv(t, clk, true)
	until := t0.Add(2 * time.Hour)
	id := e.create(t, silenceBody(shopSub+"/rg-shops-weu/aks-shop-01", "UpgradeFailed", "", until))

	e.event(t, rollingRaw("7a1e0c52-0001-4b7e-9c10-5d2f8e6a4b01", "aks-shop-01", "RollingFailed", "system", t0.Add(-time.Minute)), t0)
	e.event(t, rollingRaw("7a1e0c52-0002-4b7e-9c10-5d2f8e6a4b02", "aks-shop-02", "RollingFailed", "system", t0.Add(-time.Minute)), t0)
	waitIdle(t, e.srv)
	opened01 := func() int {
		return e.hook.count(notify.TypeFindingOpened, shopCluster("aks-shop-01"), fleet.CodeUpgradeFailed, "pool/system")
	}
	if got := e.hook.count(notify.TypeFindingOpened, shopCluster("aks-shop-02"), fleet.CodeUpgradeFailed, "pool/system"); got != 1 {
		t.Fatalf("the unsilenced aks-shop-02 failure was sent %d times, want 1 (the sink must work for the test to mean anything)", got)
	}
	f := e.finding(t, shop01API, "UpgradeFailed")
	if f["status"] != fleet.FindingOpen || f["silencedBy"] != id || f["announcement"] != fleet.AnnouncementPending {
		t.Fatalf("aks-shop-01's failure: %v, want open, silencedBy %s, pending", f, id)
	}
	for _, d := range []time.Duration{5 * time.Minute, time.Hour, 2*time.Hour - time.Second} {
		e.sweep(t, t0.Add(d))
	}
	if n := opened01(); n != 0 {
		t.Fatalf("during the silence aks-shop-01's failure was sent %d times", n)
	}
	if s := e.listed(t, id); s["active"] != true || s["state"] != "active" {
		t.Errorf("listed during: %v", s)
	}

	e.sweep(t, until)
	e.sweep(t, until.Add(5*time.Minute))
	e.sweep(t, until.Add(2*time.Hour))
	if n := opened01(); n != 1 {
		t.Errorf("after the silence expired aks-shop-01's failure was sent %d times, want exactly 1", n)
	}
	if f := e.finding(t, shop01API, "UpgradeFailed"); f["silencedBy"] != nil || f["announcement"] != "sent" {
		t.Errorf("after expiry: %v, want no silencedBy and sent", f)
	}
	s := e.listed(t, id)
	if s["active"] != false || s["state"] != "expired" || s["endedAt"] != nil || s["createdBy"] != "ops-oncall@contoso.example" {
		t.Errorf("listed after expiry: %v, want inactive, expired, never ended, its creator kept", s)
	}
}

// Ending a silence announces what it held at once (no Sweep), exactly once
// per finding, records who ended it and when; ending it again changes and
// sends nothing.
func TestEndingASilenceAnnouncesAtOnce(t *testing.T) {
	t0 := time.Date(2026, 12, 14, 9, 0, 0, 0, time.UTC)
	clk := &clock{t: t0}
	e := newSilenceEnv(t, clk, true)
	id := e.create(t, silenceBody("*/RG-SHOPS-*/aks-shop-0?", "", "pool/*", t0.Add(24*time.Hour)))
	for i, c := range []string{"aks-shop-01", "aks-shop-02"} {
		e.event(t, rollingRaw("7a1e0c52-001"+string(rune('a'+i))+"-4b7e-9c10-5d2f8e6a4b01", c, "RollingFailed", "system", t0), t0)
	}
	e.sweep(t, t0.Add(30*time.Minute))
	if got := e.hook.all(); len(got) != 0 {
		t.Fatalf("while silenced the webhook got %v", got)
	}

	endAt := t0.Add(40 * time.Minute)
	clk.set(endAt)
	rec, out := e.call(t, http.MethodDelete, "/api/silences/"+id, "", "X-MS-CLIENT-PRINCIPAL-NAME", "jane.doe@contoso.example")
	if rec.Code != http.StatusOK || out["state"] != "ended" || out["endedBy"] != "jane.doe@contoso.example" ||
		out["endedAt"] != endAt.Format(time.RFC3339) || out["active"] != false {
		t.Fatalf("DELETE: %d %v", rec.Code, out)
	}
	waitIdle(t, e.srv) // the background dispatch only: no Sweep ran
	for _, c := range []string{"aks-shop-01", "aks-shop-02"} {
		if n := e.hook.count(notify.TypeFindingOpened, shopCluster(c), fleet.CodeUpgradeFailed, "pool/system"); n != 1 {
			t.Errorf("%s: sent %d times right after the silence ended, want 1", c, n)
		}
	}

	clk.set(endAt.Add(time.Minute))
	rec, out = e.call(t, http.MethodDelete, "/api/silences/"+id+"?endedBy=someone-else", "")
	if rec.Code != http.StatusOK || out["endedBy"] != "jane.doe@contoso.example" || out["endedAt"] != endAt.Format(time.RFC3339) {
		t.Errorf("second DELETE: %d %v, want 200 with the first end kept", rec.Code, out)
	}
	e.sweep(t, endAt.Add(time.Hour))
	if got := e.hook.all(); len(got) != 2 {
		t.Errorf("after a second DELETE and a sweep the webhook holds %v, want the two openings only", got)
	}
	s := e.listed(t, id)
	if s["state"] != "ended" || s["endedBy"] != "jane.doe@contoso.example" || s["comment"] == "" ||
		s["createdAt"] != t0.Format(time.RFC3339) {
		t.Errorf("audit in the list: %v", s)
	}
	if rec, out := e.call(t, http.MethodGet, "/api/silences/"+id, ""); rec.Code != http.StatusOK || out["id"] != id {
		t.Errorf("GET one: %d %v", rec.Code, out)
	}
}

// Who ended it without a signed-in principal: endedBy of the body, else "unknown".
func TestEndSilenceCaller(t *testing.T) {
	t0 := time.Date(2026, 12, 14, 9, 0, 0, 0, time.UTC)
	clk := &clock{t: t0}
	e := newSilenceEnv(t, clk, true)
	a := e.create(t, silenceBody("aks-shop-01", "", "", t0.Add(time.Hour)))
	b := e.create(t, silenceBody("aks-shop-02", "", "", t0.Add(time.Hour)))
	if rec, out := e.call(t, http.MethodDelete, "/api/silences/"+a, `{"endedBy": "release-bot"}`); rec.Code != 200 || out["endedBy"] != "release-bot" {
		t.Errorf("body endedBy: %d %v", rec.Code, out)
	}
	if rec, out := e.call(t, http.MethodDelete, "/api/silences/"+b, ""); rec.Code != 200 || out["endedBy"] != "unknown" {
		t.Errorf("nobody: %d %v", rec.Code, out)
	}
}

// Bad requests get 400 with a message naming the problem, unknown ids 404,
// and nothing is stored; the principal header wins over createdBy; the list
// is newest first and takes only days.
func TestSilencesAPIRejectsBadInput(t *testing.T) {
	t0 := time.Date(2026, 12, 14, 9, 0, 0, 0, time.UTC)
	clk := &clock{t: t0}
	e := newSilenceEnv(t, clk, true)
	valid := silenceBody(shopSub+"/rg-shops-weu/aks-shop-01", "UpgradeFailed", "pool/system", t0.Add(time.Hour))
	for _, tc := range []struct{ name, body, want string }{
		{"not JSON", `{"match": {"code": "UpgradeFailed"}, until: "tomorrow"}`, "invalid JSON at byte"},
		{"truncated", `{"match": {"code": "UpgradeFailed"},`, "empty or truncated"},
		{"empty", ``, "empty or truncated"},
		{"unknown field", strings.Replace(valid, `"comment"`, `"reason":"x","comment"`, 1), `unknown field "reason"`},
		{"unknown match field", strings.Replace(valid, `"code"`, `"pool":"system","code"`, 1), `unknown field "pool"`},
		{"wrong type", `{"match": {"code": "UpgradeFailed"}, "until": "2026-12-14T10:00:00Z", "comment": 7, "createdBy": "me"}`, "comment must be a string"},
		{"two values", valid + valid, "more than one JSON value"},
		{"no match", `{"until": "2026-12-14T10:00:00Z", "comment": "c", "createdBy": "me"}`, "match is required"},
		{"empty match", `{"match": {}, "until": "2026-12-14T10:00:00Z", "comment": "c", "createdBy": "me"}`, "at least one of cluster, code or target"},
		{"until not RFC 3339", strings.Replace(valid, t0.Add(time.Hour).Format(time.RFC3339), "14/12/2026 10:00", 1), "not an RFC 3339 time"},
		{"until past", silenceBody("aks-shop-01", "", "", t0.Add(-time.Minute)), "until must be in the future"},
		{"until too far", silenceBody("aks-shop-01", "", "", t0.Add(100*24*time.Hour)), "at most 90 days"},
		{"bad glob", silenceBody("*/rg-[shops/*", "", "", t0.Add(time.Hour)), "not a valid glob"},
		{"unknown code", silenceBody("", "UpgradeFailure", "", t0.Add(time.Hour)), "not a finding code"},
		{"comment too long", strings.Replace(valid, "CHG0041872", strings.Repeat("x", 1001), 1), "comment is longer than 1000"},
		{"body too large", strings.Replace(valid, "CHG0041872", strings.Repeat("x", 20000), 1), "larger than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec, out := e.call(t, http.MethodPost, "/api/silences", tc.body)
			msg, _ := out["error"].(string)
			if rec.Code != http.StatusBadRequest || !strings.Contains(msg, tc.want) {
				t.Errorf("got %d %q, want 400 saying %q", rec.Code, msg, tc.want)
			}
		})
	}
	if _, out := e.call(t, http.MethodGet, "/api/silences?days=400", ""); out["count"] != float64(0) {
		t.Fatalf("bad requests stored silences: %v", out)
	}

	first := e.create(t, valid, "X-MS-CLIENT-PRINCIPAL-NAME", "jane.doe@contoso.example")
	clk.set(t0.Add(time.Second))
	second := e.create(t, silenceBody("aks-shop-02", "", "", t0.Add(time.Hour)))
	rec, out := e.call(t, http.MethodGet, "/api/silences", "")
	list, _ := out["silences"].([]any)
	if rec.Code != 200 || len(list) != 2 || list[0].(map[string]any)["id"] != second || list[1].(map[string]any)["id"] != first {
		t.Fatalf("list: %d %v, want %s then %s", rec.Code, out, second, first)
	}
	if got := list[1].(map[string]any)["createdBy"]; got != "jane.doe@contoso.example" {
		t.Errorf("createdBy %v, want the signed-in principal over the body's", got)
	}
	for _, tc := range []struct{ method, path string }{
		{http.MethodDelete, "/api/silences/20261214T090000Z-deadbeef"},
		{http.MethodDelete, "/api/silences/not-a-silence"},
		{http.MethodGet, "/api/silences/20261214T090000Z-deadbeef"},
	} {
		if rec, out := e.call(t, tc.method, tc.path, ""); rec.Code != http.StatusNotFound {
			t.Errorf("%s %s: %d %v, want 404", tc.method, tc.path, rec.Code, out)
		}
	}
	for _, q := range []string{"?days=0", "?days=401", "?days=x", "?state=active", "?days=1&days=2"} {
		if rec, out := e.call(t, http.MethodGet, "/api/silences"+q, ""); rec.Code != http.StatusBadRequest {
			t.Errorf("GET %s: %d %v, want 400", q, rec.Code, out)
		}
	}
	if rec, out := e.call(t, http.MethodDelete, "/api/silences/"+first, `{"endedBy": `); rec.Code != http.StatusBadRequest {
		t.Errorf("DELETE with a broken body: %d %v, want 400", rec.Code, out)
	}
}

// The request bodies of testdata/silences (the fuzz seeds) are accepted as
// they are, their match kept as given and the code in its canonical case.
func TestSilenceFixturesAreAccepted(t *testing.T) {
	t0 := time.Date(2026, 12, 14, 9, 0, 0, 0, time.UTC)
	e := newSilenceEnv(t, &clock{t: t0}, true)
	for _, tc := range []struct{ file, cluster, code, target string }{
		{"create-cluster.json", shopSub + "/rg-shops-weu/aks-shop-01", "UpgradeFailed", "pool/system"},
		{"create-glob.json", "*/rg-shops-*/*", "", "pool/*"},
		{"create-name-only.json", "aks-batch-*", "ImageStale", ""},
	} {
		t.Run(tc.file, func(t *testing.T) {
			id := e.create(t, string(readFixture(t, "silences/"+tc.file)))
			rec, out := e.call(t, http.MethodGet, "/api/silences/"+id, "")
			m, _ := out["match"].(map[string]any)
			if rec.Code != http.StatusOK || m["cluster"] != nilIfEmpty(tc.cluster) || m["code"] != nilIfEmpty(tc.code) ||
				m["target"] != nilIfEmpty(tc.target) || out["active"] != true {
				t.Errorf("stored: %d %v", rec.Code, out)
			}
		})
	}
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// Storage that cannot be reached is 503, to be retried.
func TestSilencesStorageDownIs503(t *testing.T) {
	t0 := time.Date(2026, 12, 14, 9, 0, 0, 0, time.UTC)
	e := newSilenceEnv(t, &clock{t: t0}, false) // the silences table does not exist
	for _, tc := range []struct{ method, path, body string }{
		{http.MethodPost, "/api/silences", silenceBody("aks-shop-01", "", "", t0.Add(time.Hour))},
		{http.MethodGet, "/api/silences", ""},
		{http.MethodDelete, "/api/silences/20261214T090000Z-deadbeef", ""},
	} {
		rec, out := e.call(t, tc.method, tc.path, tc.body)
		if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" {
			t.Errorf("%s %s: %d %v, want 503 with Retry-After", tc.method, tc.path, rec.Code, out)
		}
	}
}

// Without a silence store the API says it is not configured.
func TestSilencesOffIs501(t *testing.T) {
	e := newEnv(t)
	rec := httptest.NewRecorder()
	e.srv.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/silences", bytes.NewReader(nil)))
	if rec.Code != http.StatusNotImplemented {
		t.Errorf("GET /api/silences without silences: %d %s", rec.Code, rec.Body.String())
	}
}
