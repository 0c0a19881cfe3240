package watch_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/upgradewatch/upgradewatch/internal/azuritetest"
	"github.com/upgradewatch/upgradewatch/internal/fleet"
	"github.com/upgradewatch/upgradewatch/internal/notify"
	"github.com/upgradewatch/upgradewatch/internal/state"
	"github.com/upgradewatch/upgradewatch/internal/watch"
)

// chatServer is a Teams or Slack incoming webhook that records what it
// accepted and answers 503 while down.
type chatServer struct {
	*httptest.Server
	mu       sync.Mutex
	accepted []string
	refused  atomic.Int64
	down     atomic.Bool
}

func newChatServer(t *testing.T) *chatServer {
	cs := &chatServer{}
	cs.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if cs.down.Load() {
			cs.refused.Add(1)
			http.Error(w, "service unavailable", http.StatusServiceUnavailable)
			return
		}
		cs.mu.Lock()
		cs.accepted = append(cs.accepted, string(b))
		cs.mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(cs.Close)
	return cs
}

func (cs *chatServer) got() []string {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return append([]string(nil), cs.accepted...)
}

var (
	berlin, _ = time.LoadLocation("Europe/Berlin")
	digestDay = time.Date(2026, 12, 14, 0, 0, 0, 0, berlin)
	payments  = fleet.ClusterID{SubscriptionID: "6f1c2a3b-4d5e-4f60-8a71-92b3c4d5e6f7", ResourceGroup: "rg-payments-prod", Name: "aks-payments-weu"}
	shop      = fleet.ClusterID{SubscriptionID: "8f1c2b3a-4d5e-4f60-9a7b-1c2d3e4f5a6b", ResourceGroup: "rg-shops-weu", Name: "aks-shop-01"}
	at0800    = digestDay.Add(8 * time.Hour)
)

// unescape undoes the Adaptive Card escapes the digest's texts need.
func unescape(s string) string {
	return strings.NewReplacer("\\*", "*", "\u2060", "").Replace(s)
}

// digestEnv is two instances (each its own store, as two processes) over
// one set of tables, with Teams and Slack sinks and the digest at 08:00
// Europe/Berlin.
type digestEnv struct {
	clk          *silenceClock
	apps         [2]*watch.App
	table        *state.DigestTable
	teams, slack *chatServer
}

func newDigestEnv(t *testing.T) *digestEnv {
	t.Helper()
	ep := azuritetest.Endpoint(t)
	svc := azuritetest.Service(t, ep)
	prefix := azuritetest.Prefix(t)
	e := &digestEnv{clk: &silenceClock{t: at0800.Add(-3 * 24 * time.Hour)}, teams: newChatServer(t), slack: newChatServer(t)}
	silenceTable := state.NewSilences(svc, state.SilenceOptions{TablePrefix: prefix})
	e.table = state.NewDigests(svc, state.DigestOptions{TablePrefix: prefix})
	teams, err := notify.NewTeamsSink(e.teams.URL, notify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	slack, err := notify.NewSlackSink(e.slack.URL, notify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range e.apps {
		store := state.New(svc, state.Options{TablePrefix: prefix, CacheSize: 100, Now: e.clk.now})
		t.Cleanup(store.Close)
		if i == 0 {
			azuritetest.DropTables(t, svc, append(store.Tables(), silenceTable.Table(), e.table.Table())...)
			for _, ensure := range []func(context.Context) error{store.EnsureTables, silenceTable.EnsureTable, e.table.EnsureTable} {
				if err := ensure(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
		}
		e.apps[i] = watch.New(store, watch.Options{Now: e.clk.now,
			Rules:    func(*fleet.Cluster, time.Time) []fleet.Transition { return nil },
			Silences: watch.NewSilences(silenceTable, watch.SilencesOptions{Now: e.clk.now}),
			Digest: &watch.Digest{Schedule: watch.DigestSchedule{Hour: 8, Zone: berlin}, Store: e.table, Resolved: store,
				Sinks: []watch.DigestSender{teams, slack}, PublicURL: "https://upgradewatch-prod.azurewebsites.net"}})
	}
	return e
}

// open commits an open finding of id at the clock's time, creating the
// cluster with a signal first if needed.
func (e *digestEnv) open(t *testing.T, id fleet.ClusterID, code, target, severity string) {
	t.Helper()
	ctx := context.Background()
	now := e.clk.now()
	sig := fleet.Signal{ID: "created-" + id.Name + "-" + code, Type: "Microsoft.ContainerService.NodePoolRollingStarted",
		Source: id.ResourceID(), Subject: id.Name, Time: now, Schema: fleet.SchemaEventGrid, Cluster: id,
		Kind: fleet.KindRollingStarted, Pool: "system"}
	if _, err := e.apps[0].Ingest(ctx, sig); err != nil {
		t.Fatal(err)
	}
	f := &fleet.Finding{Code: code, Target: target, Severity: severity, Status: fleet.FindingOpen, Opened: 1,
		Summary: code + " on " + target, OpenedAt: now, LastSeenAt: now}
	if _, err := e.apps[0].Modify(ctx, id, func(c *fleet.Cluster, _ time.Time) bool {
		if c.Findings == nil {
			c.Findings = map[string]*fleet.Finding{}
		}
		c.Findings[f.Key()] = f
		return true
	}); err != nil {
		t.Fatal(err)
	}
}

func (e *digestEnv) resolve(t *testing.T, id fleet.ClusterID, code, target string) {
	t.Helper()
	if _, err := e.apps[0].Modify(context.Background(), id, func(c *fleet.Cluster, now time.Time) bool {
		f := c.Findings[fleet.FindingKey(code, target)]
		f.Status, f.ResolvedAt = fleet.FindingResolved, now
		return true
	}); err != nil {
		t.Fatal(err)
	}
}

// sweepBoth runs one Sweep on each instance at once.
func (e *digestEnv) sweepBoth(t *testing.T) [2]watch.SweepReport {
	t.Helper()
	var reps [2]watch.SweepReport
	var wg sync.WaitGroup
	for i, a := range e.apps {
		wg.Go(func() { reps[i], _ = a.Sweep(context.Background(), slog.New(slog.DiscardHandler)) })
	}
	wg.Wait()
	return reps
}

// The daily digest: nothing before 08:00 local time; at 08:00 two
// instances sweeping at once send exactly one per chat sink; a sink that
// failed gets it from a later sweep once it recovers, and then no more that
// day; the next day brings one more each. The content is the day's.
func TestDigestOncePerDayPerSink(t *testing.T) {
	e := newDigestEnv(t)
	ctx := context.Background()
	e.open(t, payments, fleet.CodeUpgradeFailed, "pool/payments", fleet.SeverityError) // 3 days before 08:00
	e.clk.set(at0800.Add(-5 * time.Hour))
	e.open(t, shop, fleet.CodeUpgradeStalled, "pool/system", fleet.SeverityWarning)
	e.clk.set(at0800.Add(-2 * time.Hour))
	e.open(t, payments, fleet.CodeImageStale, "pool/batch", fleet.SeverityWarning)
	e.clk.set(at0800.Add(-time.Hour))
	e.resolve(t, shop, fleet.CodeUpgradeStalled, "pool/system")
	ending, err := e.apps[0].CreateSilence(ctx, watch.SilenceRequest{Cluster: "aks-payments-*", Code: fleet.CodeImageStale,
		Until: at0800.Add(10 * time.Hour), Comment: "CHG0041872: node image rollout", CreatedBy: "ops-oncall@contoso.example"})
	if err != nil {
		t.Fatal(err)
	}
	later, err := e.apps[0].CreateSilence(ctx, watch.SilenceRequest{Cluster: "aks-shop-01", Until: at0800.Add(72 * time.Hour),
		Comment: "shop freeze", CreatedBy: "ops-oncall@contoso.example"})
	if err != nil {
		t.Fatal(err)
	}

	e.clk.set(at0800.Add(-time.Minute)) // 07:59 in Berlin, 06:59 UTC
	e.sweepBoth(t)
	if n := len(e.teams.got()) + len(e.slack.got()); n != 0 {
		t.Fatalf("before 08:00: %d digests sent, want none", n)
	}

	e.clk.set(at0800)
	e.slack.down.Store(true)
	e.sweepBoth(t)
	if got := len(e.teams.got()); got != 1 {
		t.Fatalf("08:00, two sweeps: teams got %d digests, want 1", got)
	}
	if e.slack.refused.Load() == 0 || len(e.slack.got()) != 0 {
		t.Fatalf("slack down: %d refused, %d accepted; want its attempt refused", e.slack.refused.Load(), len(e.slack.got()))
	}
	if outcome, attempts, lastErr, err := e.table.DigestOutcome(ctx, "20261214", "slack"); err != nil || outcome != "failed" ||
		attempts < 1 || !strings.Contains(lastErr, "503") {
		t.Errorf("slack's claim: %q after %d attempts (%q) %v; want failed with the 503", outcome, attempts, lastErr, err)
	}

	e.clk.set(at0800.Add(5 * time.Minute))
	e.slack.down.Store(false)
	e.sweepBoth(t)
	e.clk.set(at0800.Add(10 * time.Minute))
	e.sweepBoth(t)
	if t1, s1 := len(e.teams.got()), len(e.slack.got()); t1 != 1 || s1 != 1 {
		t.Fatalf("after slack recovered: teams %d, slack %d digests; want 1 each", t1, s1)
	}
	if outcome, _, _, err := e.table.DigestOutcome(ctx, "20261214", "slack"); err != nil || outcome != "sent" {
		t.Errorf("slack's claim: %q %v, want sent", outcome, err)
	}
	checkDigestContent(t, e.teams.got()[0], e.slack.got()[0], ending, later)

	e.clk.set(at0800.Add(24*time.Hour - time.Minute))
	e.sweepBoth(t)
	if t1, s1 := len(e.teams.got()), len(e.slack.got()); t1 != 1 || s1 != 1 {
		t.Fatalf("next day 07:59: teams %d, slack %d; want still 1 each", t1, s1)
	}
	e.clk.set(at0800.Add(24 * time.Hour))
	e.sweepBoth(t)
	e.sweepBoth(t)
	if t1, s1 := len(e.teams.got()), len(e.slack.got()); t1 != 2 || s1 != 2 {
		t.Fatalf("next day 08:00: teams %d, slack %d; want 2 each", t1, s1)
	}
	if next := e.teams.got()[1]; !strings.Contains(next, "2026-12-15 (Europe/Berlin)") || !strings.Contains(next, "Nothing resolved.") {
		t.Errorf("the next day's digest is not the next day's:\n%s", next)
	}
}

// checkDigestContent reads the first day's digest as Teams and Slack got it.
func checkDigestContent(t *testing.T, teams, slack string, ending, later fleet.Silence) {
	t.Helper()
	var card struct {
		Attachments []struct {
			Content struct {
				Body []struct {
					Text string `json:"text"`
				} `json:"body"`
				Actions []struct {
					URL string `json:"url"`
				} `json:"actions"`
			} `json:"content"`
		} `json:"attachments"`
	}
	if err := json.Unmarshal([]byte(teams), &card); err != nil || len(card.Attachments) != 1 {
		t.Fatalf("teams digest: %v\n%s", err, teams)
	}
	var texts []string
	for _, b := range card.Attachments[0].Content.Body {
		texts = append(texts, b.Text)
	}
	all := strings.Join(texts, "\n")
	const head = "upgradewatch daily digest 2026-12-14 (Europe/Berlin): 2 open, 2 opened and 1 resolved in 24 h"
	if texts[0] != head {
		t.Errorf("teams headline %q, want %q", texts[0], head)
	}
	var slackMsg struct {
		Text string `json:"text"`
	}
	if err := json.Unmarshal([]byte(slack), &slackMsg); err != nil || slackMsg.Text != head {
		t.Errorf("slack fallback text %q (%v), want %q", slackMsg.Text, err, head)
	}
	for _, want := range []string{
		"Opened in the last 24 h (2)",
		"[Warning] ImageStale on aks-payments-weu pool batch, opened 2026-12-14 05:00 UTC",
		"[Warning] UpgradeStalled on aks-shop-01 pool system, opened 2026-12-14 02:00 UTC",
		"Resolved in the last 24 h (1)",
		"[Warning] UpgradeStalled on aks-shop-01 pool system, resolved 2026-12-14 06:00 UTC",
		"Open longest (2 open)",
		"[Error] UpgradeFailed on aks-payments-weu pool payments, open since 2026-12-11 07:00 UTC (3 d 0 h)",
		"Silences ending in the next 24 h (1)",
		ending.ID + " ends 2026-12-14 17:00 UTC: cluster aks-payments-*, code ImageStale",
	} {
		if !strings.Contains(unescape(all), want) {
			t.Errorf("teams digest lacks %q:\n%s", want, all)
		}
		if !strings.Contains(slack, strings.ReplaceAll(want, ">", "&gt;")) {
			t.Errorf("slack digest lacks %q:\n%s", want, slack)
		}
	}
	// Without compliance figures the digest says so rather than show zeros.
	if !strings.Contains(teams, "Compliance") || !strings.Contains(teams, "not kept") || !strings.Contains(slack, "not kept") {
		t.Error("the digest does not say the compliance figures are not kept")
	}
	if strings.Contains(teams, later.ID) || strings.Contains(slack, later.ID) {
		t.Error("a silence ending in 3 days is listed as ending soon")
	}
	if a := card.Attachments[0].Content.Actions; len(a) != 1 || a[0].URL != "https://upgradewatch-prod.azurewebsites.net/api/findings" {
		t.Errorf("teams actions %+v, want the findings link", a)
	}
	// The open-longest list shows the finding open 3 days first.
	if i, j := strings.Index(all, "UpgradeFailed"), strings.Index(all, "Open longest"); i < j {
		t.Errorf("UpgradeFailed listed before the open-longest section")
	}
}
