package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
)

// upgradeStalledEscalated is an UpgradeStalled that became Critical.
func upgradeStalledEscalated() Notification {
	return Notification{
		ID:            "c4b3a29180f7e6d5c4b3a29180f7e6d5",
		Type:          TypeFindingReminded,
		Time:          at("2026-03-14T02:49:00Z"),
		Cluster:       payments,
		Code:          fleet.CodeUpgradeStalled,
		Severity:      fleet.SeverityCritical,
		EscalatedFrom: fleet.SeverityWarning,
		Target:        "pool/batch",
		Summary:       "pool batch has been rolling for 26 h (limit 24 h); 4 of 9 nodes on the new image",
		Evidence:      mustJSON(map[string]any{"startedAt": "2026-03-13T00:41:00Z", "limitHours": 24}),
		OpenedAt:      at("2026-03-14T00:41:00Z"),
		StatusURL:     paymentsStatus,
	}
}

// window is five steps of one cluster that one dispatch window gathered.
func window() Group {
	items := []Notification{rebootsUnmanagedOpened(), channelDriftResolved(), upgradeFailedOpened(), imageStaleReminded(), upgradeStalledEscalated()}
	ids := make([]string, len(items))
	for i, n := range items {
		ids[i] = n.ID
	}
	return Group{ID: GroupID(ids), Cluster: payments, Time: at("2026-03-14T02:49:30Z"), StatusURL: paymentsStatus, Items: items}
}

// A grouped message lists every step of the window, most severe first, with
// its hint, under a headline that counts them; both payloads pass their
// schemas.
func TestGroupedMessagesListTheWindowMostSevereFirst(t *testing.T) {
	teams := loadSchema(t, "testdata/teams-message.schema.json")
	slack := loadSchema(t, "testdata/slack-message.schema.json")
	g := window()
	tdoc, err := TeamsGroupCard(g)
	if err != nil {
		t.Fatal(err)
	}
	sdoc, err := SlackGroupMessage(g)
	if err != nil {
		t.Fatal(err)
	}
	validateTeams(t, teams, tdoc)
	validateSlack(t, slack, sdoc)

	const head = "aks-payments-weu: 2 opened, 1 escalated, 1 still open, 1 resolved"
	tv, sv := viewTeams(t, tdoc), viewSlack(t, sdoc)
	if got := unescapeCard(tv.text(0)); got != head {
		t.Errorf("teams headline: got %q, want %q", got, head)
	}
	if got := sv.header(); got != head {
		t.Errorf("slack header: got %q, want %q", got, head)
	}
	want := []string{
		"[Critical] UpgradeStalled escalated from Warning on pool batch",
		"[Error] UpgradeFailed opened on pool payments",
		"[Warning] ImageStale still open on pool batch (newest image) (reminder 2)",
		"[Warning] ChannelDrift resolved on the cluster",
		"[Info] RebootsUnmanaged opened on the cluster",
	}
	var teamsLines []string
	for i := range tv.texts {
		if tv.texts[i]["weight"] == "Bolder" && i > 0 {
			teamsLines = append(teamsLines, unescapeCard(tv.text(i)))
		}
	}
	if !slices.Equal(teamsLines, want) {
		t.Errorf("teams steps:\n got %q\nwant %q", teamsLines, want)
	}
	var slackLines []string
	for _, s := range sv.sections()[1:] {
		line, _, _ := strings.Cut(s, "\n")
		slackLines = append(slackLines, strings.Trim(line, "*"))
	}
	if !slices.Equal(slackLines, want) {
		t.Errorf("slack steps:\n got %q\nwant %q", slackLines, want)
	}
	// The same hints as one step's card; a resolution needs none.
	for _, s := range []string{"az aks nodepool upgrade -g rg-payments-prod --cluster-name aks-payments-weu -n payments --node-image-only",
		"PodDisruptionBudget blocks eviction", "run a reboot manager such as kured"} {
		if !strings.Contains(unescapeCard(string(tdoc)), s) {
			t.Errorf("teams: no hint %q", s)
		}
		if !sv.has(s) {
			t.Errorf("slack: no hint %q", s)
		}
	}
	if strings.Contains(string(sdoc), "Nothing: the condition no longer holds") {
		t.Error("a resolution's empty advice was rendered in a group")
	}
	if tv.actions == nil || tv.actions[0]["url"] != paymentsStatus || sv.block("actions") == nil {
		t.Error("no Open status button")
	}
	if !strings.Contains(tv.text(len(tv.texts)-1), g.ID) || !strings.Contains(string(sdoc), "5 steps · group "+g.ID) {
		t.Error("the footer does not name the group")
	}
}

// Many steps in one window: the most severe are listed, the rest counted by
// code, and the payloads stay inside Teams' 28 KB and Slack's 50 blocks.
func TestGroupedMessagesAreBounded(t *testing.T) {
	teams := loadSchema(t, "testdata/teams-message.schema.json")
	slack := loadSchema(t, "testdata/slack-message.schema.json")
	g := Group{ID: "7e57a11a7e57a11a7e57a11a7e57a11a", Cluster: payments, StatusURL: paymentsStatus}
	for i := range 60 {
		n := upgradeFailedOpened()
		n.ID, n.Target = fmt.Sprintf("%032x", i), fmt.Sprintf("pool/pool%02d", i)
		n.Summary = strings.Repeat(pdbMessage+" ", 5)
		if i%3 == 0 {
			n = imageStaleReminded()
			n.ID = fmt.Sprintf("%032x", i)
		}
		g.Items = append(g.Items, n)
	}
	tdoc, err := TeamsGroupCard(g)
	if err != nil {
		t.Fatal(err)
	}
	sdoc, err := SlackGroupMessage(g)
	if err != nil {
		t.Fatal(err)
	}
	validateTeams(t, teams, tdoc) // includes the 28 KB limit
	validateSlack(t, slack, sdoc) // includes the 50 blocks
	const more = "… and 50 more: ImageStale 20, UpgradeFailed 30. The Status API lists them all."
	if !strings.Contains(unescapeCard(string(tdoc)), more) {
		t.Errorf("teams: no %q", more)
	}
	if !viewSlack(t, sdoc).has(more) {
		t.Errorf("slack: no %q", more)
	}
	if got := strings.Count(string(sdoc), "[Error] UpgradeFailed opened"); got != groupMaxItems {
		t.Errorf("slack lists %d steps, want %d", got, groupMaxItems)
	}
}

// A window of one step is that step's own card, with every detail.
func TestGroupOfOneIsTheStepsCard(t *testing.T) {
	n := upgradeFailedOpened()
	g := Group{ID: GroupID([]string{n.ID}), Cluster: payments, StatusURL: paymentsStatus, Items: []Notification{n}}
	for name, pair := range map[string][2]func() ([]byte, error){
		"teams": {func() ([]byte, error) { return TeamsGroupCard(g) }, func() ([]byte, error) { return TeamsCard(n) }},
		"slack": {func() ([]byte, error) { return SlackGroupMessage(g) }, func() ([]byte, error) { return SlackMessage(n) }},
	} {
		got, err1 := pair[0]()
		want, err2 := pair[1]()
		if err1 != nil || err2 != nil || string(got) != string(want) {
			t.Errorf("%s: a group of one is not the step's card (%v, %v)", name, err1, err2)
		}
	}
}

func TestGroupValidate(t *testing.T) {
	other := upgradeFailedOpened()
	other.Cluster.Name = "aks-other"
	bad := upgradeFailedOpened()
	bad.Code = ""
	for _, tc := range []struct {
		name string
		g    Group
		want string
	}{
		{"no id", Group{Cluster: payments, Items: []Notification{upgradeFailedOpened()}}, "no id"},
		{"no steps", Group{ID: "x", Cluster: payments}, "no steps"},
		{"another cluster", Group{ID: "x", Cluster: payments, Items: []Notification{upgradeFailedOpened(), other}}, "another cluster"},
		{"invalid step", Group{ID: "x", Cluster: payments, Items: []Notification{upgradeFailedOpened(), bad}}, "without a code"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := TeamsGroupCard(tc.g)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error with %q", err, tc.want)
			}
		})
	}
}

func TestGroupIDAndKeyAreStable(t *testing.T) {
	if GroupID([]string{"b", "a"}) != GroupID([]string{"a", "b"}) || GroupID([]string{"a"}) == GroupID([]string{"a", "b"}) {
		t.Error("GroupID depends on order, or ignores a member")
	}
	k := GroupKey(payments, []string{"teams", "webhook"})
	if k != GroupKey(payments, []string{"webhook", "teams"}) || len(k) != 16 {
		t.Errorf("GroupKey %q depends on the sinks' order", k)
	}
	other := payments
	other.Name = "aks-payments-neu"
	if k == GroupKey(other, []string{"teams", "webhook"}) || k == GroupKey(payments, []string{"teams"}) {
		t.Error("GroupKey ignores the cluster or the route's sinks")
	}
}

// The chat sinks post a group as one request; a failure is classified as
// for one step.
func TestChatSinksPostAGroupOnce(t *testing.T) {
	for _, kind := range []string{"teams", "slack"} {
		t.Run(kind, func(t *testing.T) {
			srv, got := server(t, http.StatusOK, "1")
			var s GroupSender
			var err error
			if kind == "teams" {
				s, err = NewTeamsSink(srv.URL+secretPath, Options{Name: kind + "-payments"})
			} else {
				s, err = NewSlackSink(srv.URL+secretPath, Options{Name: kind + "-payments"})
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.Name() != kind+"-payments" {
				t.Errorf("Name: got %q", s.Name())
			}
			if err := s.SendGroup(context.Background(), window()); err != nil {
				t.Fatal(err)
			}
			r := <-got
			if len(got) != 0 || !strings.Contains(string(r.body), "2 opened, 1 escalated") {
				t.Errorf("got %d more requests; body %.120s", len(got), r.body)
			}
			broken := window()
			broken.Items = nil
			if err := s.SendGroup(context.Background(), broken); !isPermanent(err) {
				t.Errorf("an empty group: got %v, want a permanent error", err)
			}
			failing, _ := server(t, http.StatusTooManyRequests, "")
			if kind == "teams" {
				s, _ = NewTeamsSink(failing.URL+secretPath, Options{})
			} else {
				s, _ = NewSlackSink(failing.URL+secretPath, Options{})
			}
			if err := s.SendGroup(context.Background(), window()); err == nil || isPermanent(err) {
				t.Errorf("429: got %v, want a transient error", err)
			} else {
				checkNoSecret(t, err)
			}
		})
	}
}

func isPermanent(err error) bool { return errors.Is(err, ErrPermanent) }

// Every CloudEvent names its group: the webhook's ce-groupkey header, and
// the groupkey attribute of the event Event Grid receives.
func TestCloudEventsCarryTheGroupKey(t *testing.T) {
	n := upgradeFailedOpened()
	n.GroupKey = GroupKey(payments, []string{"webhook", "teams"})

	hookSrv, hookGot := server(t, http.StatusAccepted, "")
	hook, err := NewWebhookSink(hookSrv.URL+"/hooks/upgradewatch", Options{Source: appSource})
	if err != nil {
		t.Fatal(err)
	}
	if err := hook.Send(context.Background(), n); err != nil {
		t.Fatal(err)
	}
	if got := (<-hookGot).header.Get("Ce-Groupkey"); got != n.GroupKey {
		t.Errorf("webhook ce-groupkey: got %q, want %q", got, n.GroupKey)
	}

	topicSrv, topicGot := topic(t, 200, "")
	grid, err := NewEventGridSinkWithKey(topicSrv.URL+"/api/events", azcore.NewKeyCredential(topicKey), Options{Source: appSource, HTTPClient: topicSrv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	if err := grid.Send(context.Background(), n); err != nil {
		t.Fatal(err)
	}
	var events []map[string]any
	if err := json.Unmarshal((<-topicGot).body, &events); err != nil || len(events) != 1 {
		t.Fatalf("event grid body: %v, %d events", err, len(events))
	}
	if got := events[0]["groupkey"]; got != n.GroupKey {
		t.Errorf("event grid groupkey: got %v, want %q", got, n.GroupKey)
	}

	n.GroupKey = ""
	e, err := n.CloudEvent(appSource)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := e.Extensions()[ExtensionGroupKey]; ok {
		t.Error("a step without a group key got the extension")
	}
}
