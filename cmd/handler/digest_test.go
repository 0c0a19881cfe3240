package main

import (
	"strings"
	"testing"

	"github.com/upgradewatch/upgradewatch/internal/notify"
	"github.com/upgradewatch/upgradewatch/internal/policy"
)

// UPGRADEWATCH_NOTIFY_DIGEST and _TZ: daily@HH:MM in an IANA zone (UTC by
// default), off when unset; anything else refused with the setting named.
func TestParseDigest(t *testing.T) {
	tests := []struct {
		name, digest, tz string
		want             string // describe(), or the error's text
		bad              bool
	}{
		{"unset", "", "", "off", false},
		{"off", "off", "", "off", false},
		{"UTC by default", "daily@08:00", "", "daily@08:00 UTC", false},
		{"a zone", "daily@07:30", "Europe/Berlin", "daily@07:30 Europe/Berlin", false},
		{"upper case", "DAILY@23:59", "America/New_York", "daily@23:59 America/New_York", false},
		{"no daily", "08:00", "", "UPGRADEWATCH_NOTIFY_DIGEST=\"08:00\": want daily@HH:MM", true},
		{"hour out of range", "daily@24:00", "", "want daily@HH:MM", true},
		{"one digit", "daily@8:00", "", "want daily@HH:MM", true},
		{"unknown zone", "daily@08:00", "Europe/Atlantis", "UPGRADEWATCH_NOTIFY_DIGEST_TZ=\"Europe/Atlantis\": not an IANA time zone", true},
		{"Local refused", "daily@08:00", "Local", "not an IANA time zone", true},
		{"zone without digest", "", "Europe/Berlin", "UPGRADEWATCH_NOTIFY_DIGEST_TZ is set without UPGRADEWATCH_NOTIFY_DIGEST", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{envDigest: tc.digest, envDigestTZ: tc.tz}
			c, err := parseDigest(func(k string) string { return env[k] })
			switch {
			case tc.bad && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("got %v, want an error containing %q", err, tc.want)
			case !tc.bad && (err != nil || c.describe() != tc.want):
				t.Errorf("got %q %v, want %q", c.describe(), err, tc.want)
			}
		})
	}
	base := map[string]string{"AzureWebJobsStorage": "UseDevelopmentStorage=true", envDigest: "daily@25:00"}
	if _, err := parseConfig(func(k string) string { return base[k] }); err == nil || !strings.Contains(err.Error(), envDigest) {
		t.Errorf("parseConfig: %v, want the digest's error", err)
	}
}

// The digest goes to the chat sinks a route reaches: every one without
// routes (or without a defaultRoute), else those the routes name.
func TestDigestSinks(t *testing.T) {
	var sinks []notify.Sink
	for _, n := range []struct{ kind, name string }{{"teams", ""}, {"slack", ""}, {"teams", "payments-teams"}} {
		var s notify.Sink
		var err error
		if n.kind == "teams" {
			s, err = notify.NewTeamsSink("https://contoso.webhook.office.com/webhookb2/x", notify.Options{Name: n.name})
		} else {
			s, err = notify.NewSlackSink("https://hooks.slack.com/services/T0/B0/x", notify.Options{Name: n.name})
		}
		if err != nil {
			t.Fatal(err)
		}
		sinks = append(sinks, s)
	}
	hook, err := notify.NewWebhookSink("https://hooks.contoso.example/upgradewatch", notify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	sinks = append(sinks, hook)
	names := func(p *policy.Set) string {
		var out []string
		for _, s := range digestSinks(sinks, p) {
			out = append(out, s.Name())
		}
		return strings.Join(out, ",")
	}
	if got := names(nil); got != "teams,slack,payments-teams" {
		t.Errorf("no policy: %q, want every chat sink", got)
	}
	routed, err := policy.Parse([]byte(`{"routes": [{"name": "payments", "match": {"cluster": "aks-payments-*"}, "sinks": ["payments-teams", "webhook"]}],
		"defaultRoute": {"sinks": ["slack"]}}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := names(routed); got != "slack,payments-teams" {
		t.Errorf("routes: %q, want the chat sinks they name", got)
	}
}
