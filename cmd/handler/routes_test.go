package main

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
	"github.com/upgradewatch/upgradewatch/internal/notify"
	"github.com/upgradewatch/upgradewatch/internal/outbox"
	"github.com/upgradewatch/upgradewatch/internal/policy"
)

// Named sinks: UPGRADEWATCH_NOTIFY_SINKS lists name=kind, and each one's
// URL (and an Event Grid topic's key) has a setting of its own.
func TestParseNotifyNamedSinksAndGroupWait(t *testing.T) {
	const teams = "https://prod-12.westeurope.logic.azure.com:443/workflows/5f0e/triggers/manual/paths/invoke?sig=hunter2SignatureAbCdEf"
	const topic = "https://aks-audit.westeurope-1.eventgrid.azure.net/api/events"
	env := map[string]string{
		"UPGRADEWATCH_NOTIFY_SINKS":                   " payments-teams=teams, audit=EventGrid ",
		"UPGRADEWATCH_NOTIFY_SINK_PAYMENTS_TEAMS_URL": teams,
		"UPGRADEWATCH_NOTIFY_SINK_AUDIT_URL":          topic,
		"UPGRADEWATCH_NOTIFY_SINK_AUDIT_KEY":          "bXlUb3BpY0FjY2Vzc0tleQ==",
		"UPGRADEWATCH_NOTIFY_GROUP_WAIT":              "2m",
	}
	c, err := parseNotify(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	want := []notify.NamedSink{{Name: "payments-teams", Kind: "teams", URL: teams}, {Name: "audit", Kind: "eventgrid", URL: topic, Key: "bXlUb3BpY0FjY2Vzc0tleQ=="}}
	if diff := gocmp.Diff(want, c.Named); diff != "" || c.GroupWait != 2*time.Minute {
		t.Errorf("group wait %s; named sinks (-want +got):\n%s", c.GroupWait, diff)
	}
	if c, err := parseNotify(func(k string) string { return map[string]string{"UPGRADEWATCH_NOTIFY_GROUP_WAIT": "0"}[k] }); err != nil || c.GroupWait != 0 {
		t.Errorf("group wait 0: %s, %v", c.GroupWait, err)
	}

	for _, tc := range []struct {
		name    string
		env     map[string]string
		wantErr []string
	}{
		{"no URL", map[string]string{"UPGRADEWATCH_NOTIFY_SINKS": "secops=slack"}, []string{"UPGRADEWATCH_NOTIFY_SINK_SECOPS_URL is not set"}},
		{"no kind", map[string]string{"UPGRADEWATCH_NOTIFY_SINKS": "secops"}, []string{`"secops": want name=kind`}},
		{"unknown kind", map[string]string{"UPGRADEWATCH_NOTIFY_SINKS": "pager=pagerduty"}, []string{`sink pager: kind "pagerduty"`}},
		{"a default sink's name", map[string]string{"UPGRADEWATCH_NOTIFY_SINKS": "teams=teams", "UPGRADEWATCH_NOTIFY_SINK_TEAMS_URL": teams},
			[]string{"UPGRADEWATCH_NOTIFY_SINKS", `"teams" is the default teams sink's`}},
		{"listed twice", map[string]string{"UPGRADEWATCH_NOTIFY_SINKS": "a=teams,a=slack", "UPGRADEWATCH_NOTIFY_SINK_A_URL": teams}, []string{"sink a is listed twice"}},
		{"bad URL names its setting", map[string]string{"UPGRADEWATCH_NOTIFY_SINKS": "secops=slack",
			"UPGRADEWATCH_NOTIFY_SINK_SECOPS_URL": "http://hooks.slack.com/services/T0AB12CDE/B0FG34HIJ/s3cr3tT0k3nXyZ0q"},
			[]string{"UPGRADEWATCH_NOTIFY_SINK_SECOPS_URL"}},
		{"key for a chat sink", map[string]string{"UPGRADEWATCH_NOTIFY_SINKS": "secops=teams", "UPGRADEWATCH_NOTIFY_SINK_SECOPS_URL": teams,
			"UPGRADEWATCH_NOTIFY_SINK_SECOPS_KEY": "x"}, []string{"UPGRADEWATCH_NOTIFY_SINK_SECOPS_KEY is set for sink secops"}},
		{"group wait too long", map[string]string{"UPGRADEWATCH_NOTIFY_GROUP_WAIT": "1h"}, []string{"UPGRADEWATCH_NOTIFY_GROUP_WAIT"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseNotify(func(k string) string { return tc.env[k] })
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("got %q, want %q", err, w)
				}
			}
			for _, s := range []string{"hunter2", "s3cr3tT0k3nXyZ0q"} {
				if strings.Contains(err.Error(), s) {
					t.Errorf("got %q, which reveals %q", err, s)
				}
			}
		})
	}
}

// routeAndGroup records steps to the sinks the routes choose, to every sink
// without routes, and holds the chat sinks' deliveries for the group wait.
func TestRouteAndGroup(t *testing.T) {
	cfg := notify.Config{TeamsURL: "https://prod-12.westeurope.logic.azure.com/workflows/x", WebhookURL: "https://events.contoso.com/hook",
		GroupWait: 45 * time.Second, Named: []notify.NamedSink{{Name: "pager", Kind: "webhook", URL: "https://pager.contoso.com/hook"}}}
	sinks, err := notify.NewSinks(cfg, nil, notify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	set, err := policy.Parse([]byte(`{"routes": [{"name": "failures", "match": {"codes": ["UpgradeFailed"]}, "sinks": ["pager"]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	var o outbox.Config
	routeAndGroup(&o, cfg, sinks, set)
	if !slices.Equal(o.Grouped, []string{"teams"}) || o.GroupWait != 45*time.Second {
		t.Errorf("grouped %v after %s, want teams after 45s", o.Grouped, o.GroupWait)
	}
	c := &fleet.Cluster{ID: fleet.ClusterID{SubscriptionID: "6f1c2a3b-4d5e-4f60-8a71-92b3c4d5e6f7", ResourceGroup: "rg", Name: "aks"}}
	if got := o.Route(c, fleet.CodeUpgradeFailed, fleet.SeverityError); !slices.Equal(got, []string{"pager"}) {
		t.Errorf("a failure goes to %v, want the pager", got)
	}
	if got := o.Route(c, fleet.CodeImageStale, fleet.SeverityWarning); !slices.Equal(got, []string{"webhook", "teams", "pager"}) {
		t.Errorf("the default route goes to %v, want every sink", got)
	}
	if err := set.CheckSinks(sinkNames(sinks)); err != nil {
		t.Errorf("CheckSinks: %v", err)
	}
	var none outbox.Config
	routeAndGroup(&none, cfg, sinks, nil)
	if none.Route != nil {
		t.Error("no policy routes, yet a Route")
	}
}

// A policy routing to a sink that is not configured stops the start with an
// error naming the route.
func TestStartRefusesARouteToAnUnknownSink(t *testing.T) {
	env := map[string]string{
		"AzureWebJobsStorage":             "UseDevelopmentStorage=true",
		"FUNCTIONS_CUSTOMHANDLER_PORT":    "0",
		"UPGRADEWATCH_ENRICH":             "false",
		"UPGRADEWATCH_NOTIFY_WEBHOOK_URL": "http://127.0.0.1:1/hook",
		"UPGRADEWATCH_POLICY":             `{"routes": [{"name": "payments", "sinks": ["payments-teams"]}]}`,
	}
	var out strings.Builder
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if code := run(ctx, func(k string) string { return env[k] }, &out); code != 2 {
		t.Fatalf("exit code %d, want 2\n%s", code, out.String())
	}
	if !strings.Contains(out.String(), `route \"payments\": sinks: unknown sink \"payments-teams\" (configured: webhook)`) {
		t.Errorf("the log does not name the route and sink:\n%s", out.String())
	}
}
