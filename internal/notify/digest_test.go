package notify

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
)

var digestAt = time.Date(2026, 12, 14, 7, 0, 0, 0, time.UTC) // 08:00 in Berlin

// aDigest is a day with compliance figures, a silenced opening, a
// resolution, a finding open for days and a silence ending this afternoon.
func aDigest() Digest {
	shop := fleet.ClusterID{SubscriptionID: "8f1c2b3a-4d5e-4f60-9a7b-1c2d3e4f5a6b", ResourceGroup: "rg-shops-weu", Name: "aks-shop-01"}
	stale := DigestFinding{Cluster: payments, Code: fleet.CodeImageStale, Target: "pool/batch", Severity: fleet.SeverityWarning,
		OpenedAt: digestAt.Add(-2 * time.Hour), SilencedBy: "20261214T060000Z-ac6a8b26"}
	stalled := DigestFinding{Cluster: shop, Code: fleet.CodeUpgradeStalled, Target: "pool/system", Severity: fleet.SeverityWarning,
		OpenedAt: digestAt.Add(-5 * time.Hour), ResolvedAt: digestAt.Add(-time.Hour)}
	failed := DigestFinding{Cluster: payments, Code: fleet.CodeUpgradeFailed, Target: "pool/payments", Severity: fleet.SeverityError,
		OpenedAt: digestAt.Add(-76 * time.Hour)}
	return Digest{ID: "20261214-teams", Day: "2026-12-14", Zone: "Europe/Berlin", Time: digestAt,
		StatusURL: "https://func-upgradewatch-prod.azurewebsites.net/api/findings",
		Compliance: &DigestCompliance{Clusters: 42, Pools: 120, UpToDate: 101, Behind: 12, PercentPoolsCurrent: 84.2,
			MaxDaysBehind: 23, ComputedAt: digestAt.Add(-10 * time.Minute)},
		OpenNow: 2, Opened: []DigestFinding{stale, stalled}, OpenedTotal: 2, Resolved: []DigestFinding{stalled}, ResolvedTotal: 1,
		Longest: []DigestFinding{failed, stale},
		Expiring: []fleet.Silence{{ID: "20261214T060000Z-ac6a8b26", Cluster: "aks-payments-*", Code: fleet.CodeImageStale,
			Until: digestAt.Add(10 * time.Hour), Comment: "CHG0041872: node image rollout", CreatedBy: "ops-oncall@contoso.example"}},
	}
}

// The digest renders to both schemas with the day's parts in order, the
// compliance and the silence that ends today.
func TestDigestMessages(t *testing.T) {
	teams := loadSchema(t, "testdata/teams-message.schema.json")
	slack := loadSchema(t, "testdata/slack-message.schema.json")
	d := aDigest()
	tdoc, err := TeamsDigestCard(d)
	if err != nil {
		t.Fatal(err)
	}
	sdoc, err := SlackDigestMessage(d)
	if err != nil {
		t.Fatal(err)
	}
	validateTeams(t, teams, tdoc)
	validateSlack(t, slack, sdoc)
	const head = "upgradewatch daily digest 2026-12-14 (Europe/Berlin): 2 open, 2 opened and 1 resolved in 24 h"
	tv, sv := viewTeams(t, tdoc), viewSlack(t, sdoc)
	if got := unescapeCard(tv.text(0)); got != head {
		t.Errorf("teams headline %q, want %q", got, head)
	}
	if sv.header() != head || sv.text != head {
		t.Errorf("slack header %q, text %q; want %q", sv.header(), sv.text, head)
	}
	const compliance = "84.2% of pools current · 42 clusters · 120 pools, 101 up to date, 12 behind · most behind 23 days"
	if got := tv.facts["Compliance"]; got != compliance {
		t.Errorf("teams compliance %q, want %q", got, compliance)
	}
	if !sv.has(compliance) {
		t.Errorf("slack has no compliance line %q", compliance)
	}
	want := []string{
		"Opened in the last 24 h (2)",
		"[Warning] ImageStale on aks-payments-weu pool batch, opened 2026-12-14 05:00 UTC (silenced by 20261214T060000Z-ac6a8b26)",
		"[Warning] UpgradeStalled on aks-shop-01 pool system, opened 2026-12-14 02:00 UTC",
		"Resolved in the last 24 h (1)",
		"[Warning] UpgradeStalled on aks-shop-01 pool system, resolved 2026-12-14 06:00 UTC",
		"Open longest (2 open)",
		"[Error] UpgradeFailed on aks-payments-weu pool payments, open since 2026-12-11 03:00 UTC (3 d 4 h)",
		"[Warning] ImageStale on aks-payments-weu pool batch, open since 2026-12-14 05:00 UTC (2 h) (silenced by 20261214T060000Z-ac6a8b26)",
		"Silences ending in the next 24 h (1)",
		"20261214T060000Z-ac6a8b26 ends 2026-12-14 17:00 UTC: cluster aks-payments-*, code ImageStale (CHG0041872: node image rollout, by ops-oncall@contoso.example)",
		"upgradewatch · digest 20261214-teams",
	}
	var lines []string
	for i := 1; i < len(tv.texts); i++ {
		lines = append(lines, unescapeCard(tv.text(i)))
	}
	if fmt.Sprint(lines) != fmt.Sprint(want) {
		t.Errorf("teams lines:\n got %q\nwant %q", lines, want)
	}
	for _, w := range want {
		if !sv.has(w) && !strings.Contains(string(sdoc), w) {
			t.Errorf("slack lacks %q", w)
		}
	}
	if tv.actions == nil || tv.actions[0]["url"] != d.StatusURL || sv.block("actions") == nil {
		t.Error("no Open status button")
	}
}

// A day without figures or findings says so; a busy day lists at most
// DigestMaxItems of each part and counts the rest, within Teams' 28 KB and
// Slack's 50 blocks.
func TestDigestMessagesAreBounded(t *testing.T) {
	teams := loadSchema(t, "testdata/teams-message.schema.json")
	slack := loadSchema(t, "testdata/slack-message.schema.json")
	quiet := Digest{ID: "20261214-slack", Day: "2026-12-14", Zone: "UTC", Time: digestAt}
	sdoc, err := SlackDigestMessage(quiet)
	if err != nil {
		t.Fatal(err)
	}
	validateSlack(t, slack, sdoc)
	for _, w := range []string{"not kept", "Nothing opened.", "Nothing resolved.", "Nothing is open.", "None."} {
		if !strings.Contains(string(sdoc), w) {
			t.Errorf("quiet digest lacks %q", w)
		}
	}
	busy := aDigest()
	long := strings.Repeat("very-long-cluster-name-", 12)
	busy.Opened, busy.Resolved, busy.Longest, busy.Expiring = nil, nil, nil, nil
	for i := range 300 {
		f := DigestFinding{Cluster: fleet.ClusterID{SubscriptionID: payments.SubscriptionID, ResourceGroup: "rg", Name: fmt.Sprintf("%s%03d", long, i)},
			Code: fleet.CodeUpgradeFailed, Target: "pool/" + long, Severity: fleet.SeverityError, OpenedAt: digestAt.Add(-time.Hour),
			ResolvedAt: digestAt.Add(-time.Minute)}
		busy.Opened, busy.Resolved, busy.Longest = append(busy.Opened, f), append(busy.Resolved, f), append(busy.Longest, f)
		busy.Expiring = append(busy.Expiring, fleet.Silence{ID: fmt.Sprintf("20261214T060000Z-%08x", i), Cluster: long,
			Until: digestAt.Add(time.Hour), Comment: strings.Repeat("why ", 250), CreatedBy: long})
	}
	busy.OpenNow, busy.OpenedTotal, busy.ResolvedTotal = 300, 300, 300
	tdoc, err := TeamsDigestCard(busy)
	if err != nil {
		t.Fatal(err)
	}
	if sdoc, err = SlackDigestMessage(busy); err != nil {
		t.Fatal(err)
	}
	validateTeams(t, teams, tdoc)
	validateSlack(t, slack, sdoc)
	more := fmt.Sprintf("… and %d more. The Status API lists them all.", 300-DigestMaxItems)
	if got := strings.Count(string(tdoc), more); got != 4 {
		t.Errorf("teams: %q %d times, want once per part", more, got)
	}
	if got := strings.Count(string(sdoc), more); got != 4 {
		t.Errorf("slack: %q %d times, want once per part", more, got)
	}
	if _, err := TeamsDigestCard(Digest{}); err == nil {
		t.Error("an empty digest rendered")
	}
}

// SendDigest posts the kind's rendering once; a 503 is transient, a 400
// permanent.
func TestChatSinksSendDigest(t *testing.T) {
	var bodies []string
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		bodies = append(bodies, string(b))
		w.WriteHeader(status)
	}))
	defer srv.Close()
	teams, _ := NewTeamsSink(srv.URL, Options{})
	slack, _ := NewSlackSink(srv.URL, Options{})
	ctx := context.Background()
	for _, s := range []DigestSender{teams, slack} {
		if err := s.SendDigest(ctx, aDigest()); err != nil {
			t.Fatalf("%s: %v", s.Name(), err)
		}
	}
	if len(bodies) != 2 || !strings.Contains(bodies[0], "AdaptiveCard") || !strings.Contains(bodies[1], `"blocks"`) {
		t.Fatalf("posted %d bodies, want a card then Block Kit", len(bodies))
	}
	status = http.StatusServiceUnavailable
	if err := teams.SendDigest(ctx, aDigest()); err == nil || isPermanent(err) {
		t.Errorf("503: %v, want a transient error", err)
	}
	status = http.StatusBadRequest
	if err := slack.SendDigest(ctx, aDigest()); !isPermanent(err) {
		t.Errorf("400: %v, want a permanent error", err)
	}
}
