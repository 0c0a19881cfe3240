package notify

import (
	"slices"
	"strings"
	"testing"
)

// Named sinks come after the default-named ones, each under its own name and
// of its own kind; a bad one is refused by name, never by URL.
func TestNewSinksNamed(t *testing.T) {
	const (
		paymentsTeams = "https://prod-12.westeurope.logic.azure.com:443/workflows/5f0e1c2d3b4a/triggers/manual/paths/invoke?" + secretQuery
		secopsSlack   = "https://hooks.slack.com/services/T0AB12CDE/B0FG34HIJ/s3cr3tT0k3nXyZ0q"
		auditTopic    = "https://aks-audit.westeurope-1.eventgrid.azure.net/api/events"
	)
	cfg := Config{
		TeamsURL: "https://prod-07.westeurope.logic.azure.com/workflows/0a1b/triggers/manual/paths/invoke?" + secretQuery,
		Named: []NamedSink{
			{Name: "payments-teams", Kind: KindTeams, URL: paymentsTeams},
			{Name: "secops", Kind: KindSlack, URL: secopsSlack},
			{Name: "audit", Kind: KindEventGrid, URL: auditTopic, Key: topicKey},
			{Name: "archive", Kind: KindWebhook, URL: "https://events.contoso.com/upgradewatch"},
		},
	}
	sinks, err := NewSinks(cfg, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range sinks {
		got = append(got, s.Name())
	}
	want := []string{"teams", "payments-teams", "secops", "audit", "archive"}
	if !slices.Equal(got, want) || !slices.Equal(cfg.Names(), want) {
		t.Fatalf("sinks %v, Names %v; want %v", got, cfg.Names(), want)
	}
	if _, ok := sinks[1].(*TeamsSink); !ok {
		t.Errorf("payments-teams is a %T", sinks[1])
	}
	if _, ok := sinks[3].(*EventGridSink); !ok {
		t.Errorf("audit is a %T", sinks[3])
	}
	if cfg.NeedsCredential() {
		t.Error("a named topic with a key needs no credential")
	}
	cfg.Named[2].Key = ""
	if !cfg.NeedsCredential() {
		t.Error("a named topic without a key needs the credential")
	}

	for _, tc := range []struct {
		name string
		n    NamedSink
		want string
	}{
		{"a kind's name", NamedSink{Name: "teams", Kind: KindTeams, URL: paymentsTeams}, `"teams" is the default teams sink's`},
		{"upper case", NamedSink{Name: "Payments", Kind: KindTeams, URL: paymentsTeams}, "lower-case letters"},
		{"unknown kind", NamedSink{Name: "pager", Kind: "pagerduty", URL: paymentsTeams}, `unknown kind "pagerduty"`},
		{"key on a webhook", NamedSink{Name: "archive", Kind: KindWebhook, URL: paymentsTeams, Key: topicKey}, "only for an Event Grid topic"},
		{"http to a remote host", NamedSink{Name: "secops", Kind: KindSlack, URL: strings.Replace(secopsSlack, "https", "http", 1)}, "slack sink secops"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewSinks(Config{Named: []NamedSink{tc.n}}, nil, Options{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error with %q", err, tc.want)
			}
			checkNoSecret(t, err)
		})
	}
	if _, err := NewSinks(Config{Named: []NamedSink{{Name: "x", Kind: KindSlack, URL: secopsSlack}, {Name: "x", Kind: KindSlack, URL: secopsSlack}}}, nil, Options{}); err == nil ||
		!strings.Contains(err.Error(), "named twice") {
		t.Errorf("a name used twice: got %v", err)
	}
}
