package main

import (
	"strings"
	"testing"
	"time"

	"github.com/upgradewatch/upgradewatch/internal/notify"
)

func TestParseConfig(t *testing.T) {
	base := map[string]string{"AzureWebJobsStorage": "UseDevelopmentStorage=true"}
	env := func(extra map[string]string) func(string) string {
		return func(k string) string {
			if v, ok := extra[k]; ok {
				return v
			}
			return base[k]
		}
	}
	c, err := parseConfig(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if !c.Enrich || c.EnrichTimeout != 2*time.Minute || c.MaxInventoryBytes != 16<<20 || c.Addr != "127.0.0.1:8080" {
		t.Errorf("defaults: %+v", c)
	}
	c, err = parseConfig(env(map[string]string{"UPGRADEWATCH_ENRICH": "false", "UPGRADEWATCH_ARM_CLIENT_ID": "2f0c9b7e-1d2a-4c3b-9e8f-7a6b5c4d3e2f",
		"UPGRADEWATCH_ENRICH_TIMEOUT": "45s", "UPGRADEWATCH_MAX_INVENTORY_BYTES": "4194304", "FUNCTIONS_CUSTOMHANDLER_PORT": "41234"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Enrich || c.ARMClientID == "" || c.EnrichTimeout != 45*time.Second || c.MaxInventoryBytes != 4<<20 || c.Addr != "127.0.0.1:41234" {
		t.Errorf("overrides not applied: %+v", c)
	}
	if armIdentity(c, false) != "none" || armIdentity(c, true) != "managed identity 2f0c9b7e-1d2a-4c3b-9e8f-7a6b5c4d3e2f" {
		t.Errorf("identity = %q without a credential, %q with one", armIdentity(c, false), armIdentity(c, true))
	}

	// Notifications and remediation.
	c, err = parseConfig(env(map[string]string{}))
	if err != nil {
		t.Fatal(err)
	}
	if c.RemindEvery != 24*time.Hour || c.MinSeverity != "" || c.Remediation != "dry-run" || c.RemediatePerRun != 5 || c.PublicURL != "" ||
		c.NodeRetention != 30*24*time.Hour {
		t.Errorf("notification and remediation defaults: %+v", c)
	}
	c, err = parseConfig(env(map[string]string{"UPGRADEWATCH_NOTIFY_REMIND_EVERY": "0", "UPGRADEWATCH_NOTIFY_MIN_SEVERITY": "warning",
		"UPGRADEWATCH_REMEDIATION": "Apply", "UPGRADEWATCH_REMEDIATIONS_PER_SWEEP": "2", "UPGRADEWATCH_NODE_RETENTION": "168h", "WEBSITE_HOSTNAME": "upgradewatch-prod.azurewebsites.net"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.RemindEvery != 0 || c.MinSeverity != "Warning" || c.Remediation != "apply" || c.RemediatePerRun != 2 || c.NodeRetention != 7*24*time.Hour ||
		c.PublicURL != "https://upgradewatch-prod.azurewebsites.net" {
		t.Errorf("notification and remediation overrides: %+v", c)
	}

	for _, bad := range []map[string]string{
		{"UPGRADEWATCH_ENRICH": "sometimes"},
		{"UPGRADEWATCH_NOTIFY_REMIND_EVERY": "5m"},
		{"UPGRADEWATCH_NOTIFY_MIN_SEVERITY": "Loud"},
		{"UPGRADEWATCH_PUBLIC_URL": "upgradewatch.example"},
		{"UPGRADEWATCH_REMEDIATION": "yes"},
		{"UPGRADEWATCH_REMEDIATIONS_PER_SWEEP": "0"},
		{"UPGRADEWATCH_NODE_RETENTION": "1h"},
		{"UPGRADEWATCH_NODE_RETENTION": "30d"},
		{"UPGRADEWATCH_ENRICH_TIMEOUT": "1ms"},
		{"UPGRADEWATCH_MAX_INVENTORY_BYTES": "12"},
		{"UPGRADEWATCH_TABLE_PREFIX": "prod-1"},
		{"FUNCTIONS_CUSTOMHANDLER_PORT": "http"},
		{"AzureWebJobsStorage": ""},
	} {
		var key string
		for k := range bad {
			key = k
		}
		if _, err := parseConfig(env(bad)); err == nil || (key != "AzureWebJobsStorage" && !strings.Contains(err.Error(), key)) {
			t.Errorf("%v: error %v, want one naming %s", bad, err, key)
		}
	}
}

func TestParseMaxInflight(t *testing.T) {
	for _, tc := range []struct {
		value string
		want  int64
		bad   bool
	}{
		{"", 64 << 20, false},
		{"134217728", 128 << 20, false},
		{"1024", 0, true},
		{"2147483648", 0, true},
		{"64MiB", 0, true},
	} {
		var c Config
		err := parseMaxInflight(func(k string) string {
			if k == "UPGRADEWATCH_MAX_INFLIGHT_BYTES" {
				return tc.value
			}
			return ""
		}, &c)
		switch {
		case tc.bad && (err == nil || !strings.Contains(err.Error(), "UPGRADEWATCH_MAX_INFLIGHT_BYTES")):
			t.Errorf("%q: error %v, want one naming the setting", tc.value, err)
		case !tc.bad && (err != nil || c.MaxInflightBytes != tc.want):
			t.Errorf("%q: got %d, %v; want %d", tc.value, c.MaxInflightBytes, err, tc.want)
		}
	}
}

// The start line names each sink by scheme and host: never a webhook's path
// or query, which hold its secret.
func TestSinkDestinationsHideSecrets(t *testing.T) {
	sinks, err := notify.SinksFromEnv(func(k string) string {
		return map[string]string{
			notify.EnvWebhookURL: "https://receiver.example.com/hooks/s3cr3tT0k3nXyZ0q?code=hunter2",
			notify.EnvTeamsURL:   "https://prod-12.westeurope.logic.azure.com:443/workflows/5f0e1c2d/triggers/manual/paths/invoke?sig=hunter2",
			notify.EnvSlackURL:   "https://hooks.slack.com/services/T0AB12CDE/B0FG34HIJ/s3cr3tT0k3nXyZ0q",
		}[k]
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := sinkDestinations(sinks)
	want := "webhook https://receiver.example.com,teams https://prod-12.westeurope.logic.azure.com:443,slack https://hooks.slack.com"
	if got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
