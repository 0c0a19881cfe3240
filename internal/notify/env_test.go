package notify

import (
	"context"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/google/go-cmp/cmp"
)

func TestSinksFromEnv(t *testing.T) {
	const (
		slackURL = "https://hooks.slack.com/services/T0AB12CDE/B0FG34HIJ/s3cr3tT0k3nXyZ0q"
		teamsURL = "https://prod-12.westeurope.logic.azure.com:443/workflows/5f0e1c2d3b4a/triggers/manual/paths/invoke?" + secretQuery
		topicURL = "https://aks-upgrades.westeurope-1.eventgrid.azure.net/api/events"
		hookURL  = "https://events.contoso.com/upgradewatch?code=hunter2SignatureAbCdEf"
	)
	var cred azcore.TokenCredential = &fakeCredential{}
	tests := []struct {
		name      string
		env       map[string]string
		cred      azcore.TokenCredential
		want      []string // sink names
		wantErr   []string // settings the error names
		forbidden []string // must not appear in the error
	}{
		{name: "none", env: map[string]string{}, want: nil},
		{name: "blank values are unset", env: map[string]string{EnvSlackURL: "  ", EnvWebhookURL: ""}, want: nil},
		{
			name: "all, event grid by key",
			env: map[string]string{EnvWebhookURL: hookURL, EnvEventGridEndpoint: topicURL, EnvEventGridKey: topicKey,
				EnvTeamsURL: teamsURL, EnvSlackURL: slackURL},
			want: []string{"webhook", "eventgrid", "teams", "slack"},
		},
		{name: "event grid by managed identity", env: map[string]string{EnvEventGridEndpoint: topicURL}, cred: cred, want: []string{"eventgrid"}},
		{
			name: "event grid without key or identity", env: map[string]string{EnvEventGridEndpoint: topicURL},
			wantErr: []string{EnvEventGridEndpoint, EnvEventGridKey},
		},
		{
			name: "event grid key without endpoint", env: map[string]string{EnvEventGridKey: topicKey}, cred: cred,
			wantErr: []string{EnvEventGridKey, EnvEventGridEndpoint}, forbidden: []string{topicKey},
		},
		{
			name: "event grid over http", env: map[string]string{EnvEventGridEndpoint: "http://aks-upgrades.westeurope-1.eventgrid.azure.net/api/events"}, cred: cred,
			wantErr: []string{EnvEventGridEndpoint}, forbidden: []string{"aks-upgrades"},
		},
		{
			name: "local receivers over http", env: map[string]string{
				EnvWebhookURL: "http://localhost:7071/api/sink", EnvTeamsURL: "http://127.0.0.1:8089/teams", EnvSlackURL: "http://[::1]:8089/slack"},
			want: []string{"webhook", "teams", "slack"},
		},
		{
			name: "http to a remote host", env: map[string]string{EnvSlackURL: "http://hooks.slack.com/services/T0AB12CDE/B0FG34HIJ/s3cr3tT0k3nXyZ0q"},
			wantErr: []string{EnvSlackURL}, forbidden: []string{"s3cr3tT0k3nXyZ0q", "hooks.slack.com"},
		},
		{
			name: "not a URL", env: map[string]string{EnvTeamsURL: "https://prod-12.westeurope.logic.azure.com/workflows/%zz?sig=hunter2SignatureAbCdEf"},
			wantErr: []string{EnvTeamsURL}, forbidden: []string{"hunter2SignatureAbCdEf", "%zz", "logic.azure.com"},
		},
		{
			name: "no host", env: map[string]string{EnvWebhookURL: "https:///upgradewatch?code=hunter2SignatureAbCdEf"},
			wantErr: []string{EnvWebhookURL}, forbidden: []string{"hunter2SignatureAbCdEf"},
		},
		{
			name: "other scheme", env: map[string]string{EnvWebhookURL: "ftp://events.contoso.com/hunter2SignatureAbCdEf"},
			wantErr: []string{EnvWebhookURL}, forbidden: []string{"hunter2SignatureAbCdEf", "contoso"},
		},
		{
			name: "every bad setting is named", env: map[string]string{EnvTeamsURL: "teams", EnvSlackURL: "slack", EnvWebhookURL: hookURL},
			wantErr: []string{EnvTeamsURL, EnvSlackURL},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sinks, err := SinksFromEnv(func(k string) string { return tc.env[k] }, tc.cred)
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

// Options reach the sinks SinksFromEnv builds.
func TestSinksFromEnvOptions(t *testing.T) {
	srv, got := server(t, 200, "")
	env := map[string]string{EnvWebhookURL: srv.URL + "/api/sink"}
	sinks, err := SinksFromEnv(func(k string) string { return env[k] }, nil, Options{Source: appSource})
	if err != nil || len(sinks) != 1 {
		t.Fatalf("got %v, %d sinks", err, len(sinks))
	}
	if err := sinks[0].Send(context.Background(), upgradeFailedOpened()); err != nil {
		t.Fatal(err)
	}
	if src := (<-got).header.Get("Ce-Source"); src != appSource {
		t.Errorf("ce-source: got %q, want %q", src, appSource)
	}
}
