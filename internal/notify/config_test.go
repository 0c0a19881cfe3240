package notify

import (
	"context"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/google/go-cmp/cmp"
)

func TestNewSinks(t *testing.T) {
	const (
		slackURL = "https://hooks.slack.com/services/T0AB12CDE/B0FG34HIJ/s3cr3tT0k3nXyZ0q"
		teamsURL = "https://prod-12.westeurope.logic.azure.com:443/workflows/5f0e1c2d3b4a/triggers/manual/paths/invoke?" + secretQuery
		topicURL = "https://aks-upgrades.westeurope-1.eventgrid.azure.net/api/events"
		hookURL  = "https://events.contoso.com/upgradewatch?code=hunter2SignatureAbCdEf"
	)
	var cred azcore.TokenCredential = &fakeCredential{}
	tests := []struct {
		name      string
		cfg       Config
		cred      azcore.TokenCredential
		want      []string // sink names
		wantErr   []string // sinks the error names
		forbidden []string // must not appear in the error
	}{
		{name: "none", want: nil},
		{
			name: "all, event grid by key",
			cfg:  Config{WebhookURL: hookURL, EventGridEndpoint: topicURL, EventGridKey: topicKey, TeamsURL: teamsURL, SlackURL: slackURL},
			want: []string{"webhook", "eventgrid", "teams", "slack"},
		},
		{name: "event grid by managed identity", cfg: Config{EventGridEndpoint: topicURL}, cred: cred, want: []string{"eventgrid"}},
		{
			name: "event grid without key or identity", cfg: Config{EventGridEndpoint: topicURL},
			wantErr: []string{"eventgrid", "key", "managed identity"}, forbidden: []string{"aks-upgrades"},
		},
		{
			name: "event grid key without endpoint", cfg: Config{EventGridKey: topicKey}, cred: cred,
			wantErr: []string{"eventgrid", "endpoint"}, forbidden: []string{topicKey},
		},
		{
			name: "event grid over http", cfg: Config{EventGridEndpoint: "http://aks-upgrades.westeurope-1.eventgrid.azure.net/api/events"}, cred: cred,
			wantErr: []string{"eventgrid"}, forbidden: []string{"aks-upgrades"},
		},
		{
			name: "local receivers over http",
			cfg:  Config{WebhookURL: "http://localhost:7071/api/sink", TeamsURL: "http://127.0.0.1:8089/teams", SlackURL: "http://[::1]:8089/slack"},
			want: []string{"webhook", "teams", "slack"},
		},
		{
			name: "http to a remote host", cfg: Config{SlackURL: "http://hooks.slack.com/services/T0AB12CDE/B0FG34HIJ/s3cr3tT0k3nXyZ0q"},
			wantErr: []string{"slack"}, forbidden: []string{"s3cr3tT0k3nXyZ0q", "hooks.slack.com"},
		},
		{
			name: "not a URL", cfg: Config{TeamsURL: "https://prod-12.westeurope.logic.azure.com/workflows/%zz?sig=hunter2SignatureAbCdEf"},
			wantErr: []string{"teams"}, forbidden: []string{"hunter2SignatureAbCdEf", "%zz", "logic.azure.com"},
		},
		{
			name: "no host", cfg: Config{WebhookURL: "https:///upgradewatch?code=hunter2SignatureAbCdEf"},
			wantErr: []string{"webhook"}, forbidden: []string{"hunter2SignatureAbCdEf"},
		},
		{
			name: "other scheme", cfg: Config{WebhookURL: "ftp://events.contoso.com/hunter2SignatureAbCdEf"},
			wantErr: []string{"webhook"}, forbidden: []string{"hunter2SignatureAbCdEf", "contoso"},
		},
		{
			name: "every bad sink is named", cfg: Config{TeamsURL: "teams.example", SlackURL: "slack.example", WebhookURL: hookURL},
			wantErr: []string{"teams sink", "slack sink"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sinks, err := NewSinks(tc.cfg, tc.cred, Options{})
			if tc.wantErr != nil {
				if err == nil {
					t.Fatalf("got %d sinks, want an error naming %v", len(sinks), tc.wantErr)
				}
				for _, name := range tc.wantErr {
					if !strings.Contains(err.Error(), name) {
						t.Errorf("got %q, want it to name %s", err, name)
					}
				}
				for _, s := range tc.forbidden {
					if strings.Contains(err.Error(), s) {
						t.Errorf("got %q, which reveals %q", err, s)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, s := range sinks {
				names = append(names, s.Name())
			}
			if diff := cmp.Diff(tc.want, names); diff != "" {
				t.Errorf("sinks (-want +got):\n%s", diff)
			}
		})
	}
}

// CheckURL is the test the sinks apply, without building one: the command
// uses it to name the bad setting at start.
func TestCheckURL(t *testing.T) {
	for _, tc := range []struct {
		url string
		ok  bool
	}{
		{"https://hooks.slack.com/services/T0AB12CDE/B0FG34HIJ/s3cr3tT0k3nXyZ0q", true},
		{"http://localhost:7071/api/sink", true},
		{"http://[::1]:8089/slack", true},
		{"http://hooks.slack.com/services/T0AB12CDE/B0FG34HIJ/s3cr3tT0k3nXyZ0q", false},
		{"https:///upgradewatch?code=hunter2SignatureAbCdEf", false},
		{"ftp://events.contoso.com/hunter2SignatureAbCdEf", false},
		{"https://prod-12.westeurope.logic.azure.com/workflows/%zz?sig=hunter2SignatureAbCdEf", false},
	} {
		err := CheckURL(tc.url)
		if (err == nil) != tc.ok {
			t.Errorf("%s: got %v, want ok=%v", tc.url, err, tc.ok)
		}
		if err != nil && (strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "s3cr3t")) {
			t.Errorf("%s: error %q reveals the secret", tc.url, err)
		}
	}
}

// Options reach the sinks NewSinks builds, and the CloudEvents source is the
// configured public URL unless Options says otherwise.
func TestNewSinksSource(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		opts Options
		want string
	}{
		{name: "public URL", cfg: Config{PublicURL: "https://upgradewatch-prod.azurewebsites.net"}, want: "https://upgradewatch-prod.azurewebsites.net"},
		{name: "options win", cfg: Config{PublicURL: "https://upgradewatch-prod.azurewebsites.net"}, opts: Options{Source: appSource}, want: appSource},
		{name: "default", want: DefaultSource},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, got := server(t, 200, "")
			tc.cfg.WebhookURL = srv.URL + "/api/sink"
			tc.opts.HTTPClient = srv.Client()
			sinks, err := NewSinks(tc.cfg, nil, tc.opts)
			if err != nil || len(sinks) != 1 {
				t.Fatalf("got %v, %d sinks", err, len(sinks))
			}
			if err := sinks[0].Send(context.Background(), upgradeFailedOpened()); err != nil {
				t.Fatal(err)
			}
			if src := (<-got).header.Get("Ce-Source"); src != tc.want {
				t.Errorf("ce-source: got %q, want %q", src, tc.want)
			}
		})
	}
}

func TestNeedsCredential(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want bool
	}{
		{Config{}, false},
		{Config{EventGridEndpoint: "https://aks-upgrades.westeurope-1.eventgrid.azure.net"}, true},
		{Config{EventGridEndpoint: "https://aks-upgrades.westeurope-1.eventgrid.azure.net", EventGridKey: topicKey}, false},
	} {
		if got := tc.cfg.NeedsCredential(); got != tc.want {
			t.Errorf("endpoint %q, key set %v: got %v, want %v", tc.cfg.EventGridEndpoint, tc.cfg.EventGridKey != "", got, tc.want)
		}
	}
}
