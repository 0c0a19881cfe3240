package main

import (
	"strings"
	"testing"
	"time"
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
	if c.RemindEvery != 24*time.Hour || c.MinSeverity != "" || c.Remediation != "apply" || c.RemediatePerRun != 5 || c.PublicURL != "" {
		t.Errorf("notification and remediation defaults: %+v", c)
	}
	c, err = parseConfig(env(map[string]string{"UPGRADEWATCH_NOTIFY_REMIND_EVERY": "0", "UPGRADEWATCH_NOTIFY_MIN_SEVERITY": "warning",
		"UPGRADEWATCH_REMEDIATION": "Dry-Run", "UPGRADEWATCH_REMEDIATIONS_PER_SWEEP": "2", "WEBSITE_HOSTNAME": "upgradewatch-prod.azurewebsites.net"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.RemindEvery != 0 || c.MinSeverity != "Warning" || c.Remediation != "dry-run" || c.RemediatePerRun != 2 ||
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
