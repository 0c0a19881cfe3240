package main

import (
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"

	"github.com/upgradewatch/upgradewatch/internal/notify"
	"github.com/upgradewatch/upgradewatch/internal/state"
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
	if c.Notify.RemindEvery != 24*time.Hour || c.Notify.MinSeverity != "" || c.Remediation != "dry-run" || c.RemediatePerRun != 5 || c.Notify.PublicURL != "" ||
		c.NodeRetention != 30*24*time.Hour {
		t.Errorf("notification and remediation defaults: %+v", c)
	}
	c, err = parseConfig(env(map[string]string{"UPGRADEWATCH_NOTIFY_REMIND_EVERY": "0", "UPGRADEWATCH_NOTIFY_MIN_SEVERITY": "warning",
		"UPGRADEWATCH_REMEDIATION": "Apply", "UPGRADEWATCH_REMEDIATIONS_PER_SWEEP": "2", "UPGRADEWATCH_NODE_RETENTION": "168h", "WEBSITE_HOSTNAME": "upgradewatch-prod.azurewebsites.net"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Notify.RemindEvery != 0 || c.Notify.MinSeverity != "Warning" || c.Remediation != "apply" || c.RemediatePerRun != 2 || c.NodeRetention != 7*24*time.Hour ||
		c.Notify.PublicURL != "https://upgradewatch-prod.azurewebsites.net" {
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

func TestParseLimitsMaxInflight(t *testing.T) {
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
		c, err := parseLimits(func(k string) string {
			if k == "UPGRADEWATCH_MAX_INFLIGHT_BYTES" {
				return tc.value
			}
			return ""
		})
		switch {
		case tc.bad && (err == nil || !strings.Contains(err.Error(), "UPGRADEWATCH_MAX_INFLIGHT_BYTES")):
			t.Errorf("%q: error %v, want one naming the setting", tc.value, err)
		case !tc.bad && (err != nil || c.MaxInflightBytes != tc.want || c.MaxBodyBytes != 1<<20):
			t.Errorf("%q: got %d, %v; want %d", tc.value, c.MaxInflightBytes, err, tc.want)
		}
	}
}

// The start line names each sink by scheme and host: never a webhook's path
// or query, which hold its secret.
func TestSinkDestinationsHideSecrets(t *testing.T) {
	cfg, err := parseNotify(func(k string) string {
		return map[string]string{
			"UPGRADEWATCH_NOTIFY_WEBHOOK_URL": "https://receiver.example.com/hooks/s3cr3tT0k3nXyZ0q?code=hunter2",
			"UPGRADEWATCH_NOTIFY_TEAMS_URL":   "https://prod-12.westeurope.logic.azure.com:443/workflows/5f0e1c2d/triggers/manual/paths/invoke?sig=hunter2",
			"UPGRADEWATCH_NOTIFY_SLACK_URL":   "https://hooks.slack.com/services/T0AB12CDE/B0FG34HIJ/s3cr3tT0k3nXyZ0q",
		}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	sinks, err := notify.NewSinks(cfg, nil, notify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	got := sinkDestinations(sinks)
	want := "webhook https://receiver.example.com,teams https://prod-12.westeurope.logic.azure.com:443,slack https://hooks.slack.com"
	if got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// Every bad setting is reported at once, each by name, so one failed start
// shows all there is to fix.
func TestParseConfigReportsEveryBadSetting(t *testing.T) {
	env := map[string]string{
		"AzureWebJobsStorage":                 "UseDevelopmentStorage=true",
		"UPGRADEWATCH_LOG_LEVEL":              "loud",
		"UPGRADEWATCH_STATE_CACHE":            "-1",
		"UPGRADEWATCH_MAX_BODY_BYTES":         "1",
		"UPGRADEWATCH_ENRICH_TIMEOUT":         "1h",
		"UPGRADEWATCH_NODE_RETENTION":         "1h",
		"UPGRADEWATCH_REMEDIATIONS_PER_SWEEP": "500",
		"UPGRADEWATCH_NOTIFY_MIN_SEVERITY":    "Loud",
		"UPGRADEWATCH_NODE_AUTH":              "none",
	}
	_, err := parseConfig(func(k string) string { return env[k] })
	if err == nil {
		t.Fatal("no error")
	}
	for k := range env {
		if k != "AzureWebJobsStorage" && !strings.Contains(err.Error(), k) {
			t.Errorf("error does not name %s:\n%v", k, err)
		}
	}
}

func TestParseServer(t *testing.T) {
	for _, tc := range []struct {
		name     string
		env      map[string]string
		addr     string
		level    slog.Level
		errNames string
	}{
		{name: "defaults", addr: "127.0.0.1:8080", level: slog.LevelInfo},
		{name: "set", env: map[string]string{"FUNCTIONS_CUSTOMHANDLER_PORT": "0", "UPGRADEWATCH_LOG_LEVEL": "debug"}, addr: "127.0.0.1:0", level: slog.LevelDebug},
		{name: "bad port", env: map[string]string{"FUNCTIONS_CUSTOMHANDLER_PORT": "70000"}, errNames: "FUNCTIONS_CUSTOMHANDLER_PORT"},
		{name: "bad level", env: map[string]string{"UPGRADEWATCH_LOG_LEVEL": "verbose"}, errNames: "UPGRADEWATCH_LOG_LEVEL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseServer(func(k string) string { return tc.env[k] })
			if tc.errNames != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errNames) {
					t.Fatalf("got error %v, want one naming %s", err, tc.errNames)
				}
				return
			}
			if err != nil || c.Addr != tc.addr || c.LogLevel != tc.level {
				t.Errorf("got %+v, %v; want addr %s, level %s", c, err, tc.addr, tc.level)
			}
		})
	}
}

func TestParseStorage(t *testing.T) {
	c, err := parseStorage(func(k string) string {
		return map[string]string{"AzureWebJobsStorage": "UseDevelopmentStorage=true"}[k]
	})
	want := StorageConfig{Storage: state.Connection{Name: "AzureWebJobsStorage", ConnectionString: "UseDevelopmentStorage=true"},
		CacheSize: 2000, Timeout: 10 * time.Second}
	if diff := gocmp.Diff(want, c); err != nil || diff != "" {
		t.Errorf("defaults: %v (-want +got):\n%s", err, diff)
	}

	// A connection of another name, by managed identity.
	c, err = parseStorage(func(k string) string {
		return map[string]string{"UPGRADEWATCH_STORAGE": "UpgradewatchStorage",
			"UpgradewatchStorage__tableServiceUri": "https://stuwprod.table.core.windows.net",
			"UpgradewatchStorage__clientId":        "2f0c9b7e-1d2a-4c3b-9e8f-7a6b5c4d3e2f",
			"UPGRADEWATCH_TABLE_PREFIX":            "uw1", "UPGRADEWATCH_STATE_CACHE": "0", "UPGRADEWATCH_STORAGE_TIMEOUT": "100ms"}[k]
	})
	want = StorageConfig{Storage: state.Connection{Name: "UpgradewatchStorage", TableServiceURI: "https://stuwprod.table.core.windows.net",
		ClientID: "2f0c9b7e-1d2a-4c3b-9e8f-7a6b5c4d3e2f"}, TablePrefix: "uw1", CacheSize: 0, Timeout: 100 * time.Millisecond}
	if diff := gocmp.Diff(want, c); err != nil || diff != "" {
		t.Errorf("overrides: %v (-want +got):\n%s", err, diff)
	}

	for _, tc := range []struct {
		env  map[string]string
		want string // in the error
	}{
		{map[string]string{}, "no storage connection: set AzureWebJobsStorage"},
		{map[string]string{"UPGRADEWATCH_STORAGE": "UpgradewatchStorage"}, "UpgradewatchStorage__tableServiceUri"},
		{map[string]string{"UPGRADEWATCH_TABLE_PREFIX": "1uw"}, "must start with a letter"},
		{map[string]string{"UPGRADEWATCH_TABLE_PREFIX": "uw_prod"}, "letters and digits only"},
		{map[string]string{"UPGRADEWATCH_TABLE_PREFIX": strings.Repeat("u", 51)}, "longer than 50"},
		{map[string]string{"UPGRADEWATCH_STATE_CACHE": "-1"}, "UPGRADEWATCH_STATE_CACHE"},
		{map[string]string{"UPGRADEWATCH_STORAGE_TIMEOUT": "6m"}, "UPGRADEWATCH_STORAGE_TIMEOUT"},
	} {
		_, err := parseStorage(func(k string) string {
			if v, ok := tc.env[k]; ok {
				return v
			}
			if _, named := tc.env["UPGRADEWATCH_STORAGE"]; !named && len(tc.env) > 0 && k == "AzureWebJobsStorage" {
				return "UseDevelopmentStorage=true"
			}
			return ""
		})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: got error %v, want one saying %q", tc.env, err, tc.want)
		}
	}
}

func TestParseEnrichAndRemediation(t *testing.T) {
	e, err := parseEnrich(func(string) string { return "" })
	if want := (EnrichConfig{Enrich: true, EnrichTimeout: 2 * time.Minute}); err != nil || e != want {
		t.Errorf("enrich defaults: got %+v, %v; want %+v", e, err, want)
	}
	if _, err := parseEnrich(func(k string) string { return map[string]string{"UPGRADEWATCH_ENRICH_TIMEOUT": "11m"}[k] }); err == nil ||
		!strings.Contains(err.Error(), "UPGRADEWATCH_ENRICH_TIMEOUT") {
		t.Errorf("11m enrichment timeout: error %v", err)
	}
	r, err := parseRemediation(func(k string) string { return map[string]string{"UPGRADEWATCH_REMEDIATION": "OFF"}[k] })
	if want := (RemediationConfig{Remediation: "off", RemediatePerRun: 5}); err != nil || r != want {
		t.Errorf("remediation off: got %+v, %v; want %+v", r, err, want)
	}
	if _, err := parseRemediation(func(k string) string { return map[string]string{"UPGRADEWATCH_REMEDIATIONS_PER_SWEEP": "101"}[k] }); err == nil ||
		!strings.Contains(err.Error(), "UPGRADEWATCH_REMEDIATIONS_PER_SWEEP") {
		t.Errorf("101 per sweep: error %v", err)
	}
}

func TestParseNotify(t *testing.T) {
	const hook = "https://events.contoso.com/upgradewatch?code=hunter2SignatureAbCdEf"
	const topic = "https://aks-upgrades.westeurope-1.eventgrid.azure.net/api/events"
	const key = "bXlUb3BpY0FjY2Vzc0tleVRoYXRJc1NlY3JldDEyMzQ1Njc4OTA="
	c, err := parseNotify(func(k string) string {
		return map[string]string{"UPGRADEWATCH_NOTIFY_WEBHOOK_URL": " " + hook + " ", "UPGRADEWATCH_NOTIFY_EVENTGRID_ENDPOINT": topic,
			"UPGRADEWATCH_NOTIFY_SLACK_URL": "  ", "UPGRADEWATCH_NOTIFY_MIN_SEVERITY": "CRITICAL", "UPGRADEWATCH_NOTIFY_REMIND_EVERY": "720h",
			"UPGRADEWATCH_PUBLIC_URL": "https://upgradewatch.contoso.com/uw", "WEBSITE_HOSTNAME": "upgradewatch-prod.azurewebsites.net"}[k]
	})
	want := notify.Config{WebhookURL: hook, EventGridEndpoint: topic, MinSeverity: "Critical", RemindEvery: 720 * time.Hour,
		PublicURL: "https://upgradewatch.contoso.com/uw", GroupWait: 30 * time.Second}
	if diff := gocmp.Diff(want, c); err != nil || diff != "" {
		t.Errorf("%v (-want +got):\n%s", err, diff)
	}
	if !c.NeedsCredential() {
		t.Error("an Event Grid topic without a key needs the managed identity")
	}

	for _, tc := range []struct {
		name      string
		env       map[string]string
		wantErr   []string
		forbidden []string
	}{
		{name: "key without endpoint", env: map[string]string{"UPGRADEWATCH_NOTIFY_EVENTGRID_KEY": key},
			wantErr: []string{"UPGRADEWATCH_NOTIFY_EVENTGRID_KEY", "UPGRADEWATCH_NOTIFY_EVENTGRID_ENDPOINT"}, forbidden: []string{key}},
		{name: "http to a remote host", env: map[string]string{"UPGRADEWATCH_NOTIFY_SLACK_URL": "http://hooks.slack.com/services/T0AB12CDE/B0FG34HIJ/s3cr3tT0k3nXyZ0q"},
			wantErr: []string{"UPGRADEWATCH_NOTIFY_SLACK_URL"}, forbidden: []string{"s3cr3tT0k3nXyZ0q", "hooks.slack.com"}},
		{name: "every bad URL", env: map[string]string{"UPGRADEWATCH_NOTIFY_TEAMS_URL": "ftp://prod-12.westeurope.logic.azure.com/hunter2", "UPGRADEWATCH_NOTIFY_WEBHOOK_URL": "https:///hooks?code=hunter2",
			"UPGRADEWATCH_NOTIFY_EVENTGRID_ENDPOINT": "events"},
			wantErr:   []string{"UPGRADEWATCH_NOTIFY_TEAMS_URL", "UPGRADEWATCH_NOTIFY_WEBHOOK_URL", "UPGRADEWATCH_NOTIFY_EVENTGRID_ENDPOINT"},
			forbidden: []string{"hunter2", "logic.azure.com"}},
		{name: "reminders too often", env: map[string]string{"UPGRADEWATCH_NOTIFY_REMIND_EVERY": "30m"}, wantErr: []string{"UPGRADEWATCH_NOTIFY_REMIND_EVERY"}},
		{name: "bad host name", env: map[string]string{"WEBSITE_HOSTNAME": "upgradewatch prod"}, wantErr: []string{"UPGRADEWATCH_PUBLIC_URL"}},
		{name: "public URL with a query", env: map[string]string{"UPGRADEWATCH_PUBLIC_URL": "https://upgradewatch.contoso.com/?code=x"}, wantErr: []string{"UPGRADEWATCH_PUBLIC_URL"}},
		{name: "public URL with a password", env: map[string]string{"UPGRADEWATCH_PUBLIC_URL": "https://ops:hunter2@upgradewatch.contoso.com"},
			wantErr: []string{"UPGRADEWATCH_PUBLIC_URL"}, forbidden: []string{"hunter2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseNotify(func(k string) string { return tc.env[k] })
			if err == nil {
				t.Fatalf("no error, want one naming %v", tc.wantErr)
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
		})
	}
}

// README's configuration table and local.settings.sample.json list exactly
// the settings the handler reads: the names are those parseConfig asks
// getenv for. The sample may also hold settings the Functions host reads for
// a binding (named in a function.json).
func TestSettingsDocumented(t *testing.T) {
	read := map[string]bool{}
	_, _ = parseConfig(func(k string) string { read[k] = true; return "" })
	parsed := map[string]bool{}
	for k := range read {
		if strings.HasPrefix(k, "UPGRADEWATCH_") || k == "FUNCTIONS_CUSTOMHANDLER_PORT" {
			parsed[k] = true
		}
	}
	if len(parsed) < 25 { // a sanity check that the recording works
		t.Fatalf("parseConfig read only %d settings: %v", len(parsed), parsed)
	}

	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, _ := strings.Cut(string(readme), "\n## Configuration\n")
	section, _, _ = strings.Cut(section, "\n## ")
	table := map[string]bool{}
	for _, m := range regexp.MustCompile("(?m)^\\| `([A-Za-z_]+)` \\|").FindAllStringSubmatch(section, -1) {
		table[m[1]] = true
	}

	raw, err := os.ReadFile("../../local.settings.sample.json")
	if err != nil {
		t.Fatal(err)
	}
	var sample struct{ Values map[string]string }
	if err := json.Unmarshal(raw, &sample); err != nil {
		t.Fatal(err)
	}
	bindings, err := filepath.Glob("../../functions/*/function.json")
	if err != nil || len(bindings) == 0 {
		t.Fatalf("no function.json: %v", err)
	}
	var hostRead strings.Builder
	for _, f := range bindings {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		hostRead.Write(b)
	}

	for k := range parsed {
		if !table[k] {
			t.Errorf("%s is parsed but not in README's configuration table", k)
		}
		if _, ok := sample.Values[k]; !ok && k != "FUNCTIONS_CUSTOMHANDLER_PORT" { // the host sets it
			t.Errorf("%s is parsed but not in local.settings.sample.json", k)
		}
	}
	for k := range table {
		if strings.HasPrefix(k, "UPGRADEWATCH_") && !parsed[k] {
			t.Errorf("README's configuration table lists %s, which the handler does not read", k)
		}
	}
	for k := range sample.Values {
		if strings.HasPrefix(k, "UPGRADEWATCH_") && !parsed[k] && !strings.Contains(hostRead.String(), k) {
			t.Errorf("local.settings.sample.json lists %s, which neither the handler nor a binding reads", k)
		}
	}
}

// The handler raises the GC target and bounds the heap only where the
// operator left Go's own settings unset, and applying it changes the
// runtime's settings.
func TestRuntimeDefaults(t *testing.T) {
	for _, tc := range []struct {
		env       map[string]string
		gc, limit int64
	}{
		{env: nil, gc: DefaultGCPercent, limit: DefaultMemoryLimit},
		{env: map[string]string{"GOGC": "150"}, gc: 0, limit: DefaultMemoryLimit},
		{env: map[string]string{"GOMEMLIMIT": "2GiB"}, gc: DefaultGCPercent, limit: 0},
		{env: map[string]string{"GOGC": "off", "GOMEMLIMIT": "1GiB"}, gc: 0, limit: 0},
	} {
		c := parseRuntime(func(k string) string { return tc.env[k] })
		if int64(c.GCPercent) != tc.gc || c.MemoryLimit != tc.limit {
			t.Errorf("env %v: %+v, want GC percent %d and memory limit %d", tc.env, c, tc.gc, tc.limit)
		}
	}
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	desc := parseRuntime(func(string) string { return "" }).apply()
	if got := debug.SetGCPercent(DefaultGCPercent); got != DefaultGCPercent {
		t.Errorf("GC percent after apply: %d, want %d", got, DefaultGCPercent)
	}
	if got := debug.SetMemoryLimit(-1); got != DefaultMemoryLimit {
		t.Errorf("memory limit after apply: %d, want %d", got, DefaultMemoryLimit)
	}
	if desc != "GOGC=400 (default), GOMEMLIMIT=768MiB (default)" {
		t.Errorf("described as %q", desc)
	}
}
