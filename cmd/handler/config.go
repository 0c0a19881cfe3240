package main

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/url"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/upgradewatch/upgradewatch/handlers"
	"github.com/upgradewatch/upgradewatch/internal/fleet"
	"github.com/upgradewatch/upgradewatch/internal/notify"
	"github.com/upgradewatch/upgradewatch/internal/outbox"
	"github.com/upgradewatch/upgradewatch/internal/state"
	"github.com/upgradewatch/upgradewatch/internal/watch"
)

// Config is every setting the handler reads, all from the environment, parsed
// once at start. Each area is a struct of its own with its own parser; they
// are embedded so that run reads cfg.Addr, cfg.TablePrefix, … directly.
type Config struct {
	ServerConfig
	StorageConfig
	LimitsConfig
	EnrichConfig
	PolicyConfig
	NodesConfig
	RemediationConfig
	ComplianceConfig

	// Notify is the sinks and what to announce; notify.NewSinks builds the
	// sinks from it. It holds secrets (URLs, a key): never log it.
	Notify notify.Config
	// Trust: how node snapshots and alerts are authenticated beyond the function key.
	Trust TrustConfig
	// Digest: when the daily digest goes to the chat sinks (digest.go).
	Digest DigestConfig
	// Runtime: the Go garbage collector's defaults (applyRuntime).
	Runtime RuntimeConfig
}

// RuntimeConfig is how the Go runtime is tuned when the operator did not
// tune it with Go's own settings (GOGC, GOMEMLIMIT, read by the runtime).
type RuntimeConfig struct {
	// GCPercent is the GC target set when GOGC is unset (0: leave the
	// runtime's). The handler's live heap is small (tens of MB) and its
	// allocation rate high: the Azure SDK's table transactions allocate a
	// 32 KiB copy buffer per entity (docs/benchmarks.md), so the runtime's
	// default of 100 spends a fifth of the CPU collecting.
	GCPercent int
	// MemoryLimit is the soft memory limit set when GOMEMLIMIT is unset (0:
	// none): the bound a larger GC target needs on a small instance.
	MemoryLimit int64
}

// Defaults of RuntimeConfig.
const (
	DefaultGCPercent   = 400
	DefaultMemoryLimit = 768 << 20
)

// parseRuntime reads whether GOGC and GOMEMLIMIT are set; the runtime parses
// their values itself.
func parseRuntime(getenv func(string) string) RuntimeConfig {
	var c RuntimeConfig
	if getenv("GOGC") == "" {
		c.GCPercent = DefaultGCPercent
	}
	if getenv("GOMEMLIMIT") == "" {
		c.MemoryLimit = DefaultMemoryLimit
	}
	return c
}

// apply sets what the operator left to the handler, and describes the
// garbage collector's settings for the start log.
func (c RuntimeConfig) apply() string {
	gc, limit := "GOGC from the environment", "GOMEMLIMIT from the environment"
	if c.GCPercent > 0 {
		debug.SetGCPercent(c.GCPercent)
		gc = fmt.Sprintf("GOGC=%d (default)", c.GCPercent)
	}
	if c.MemoryLimit > 0 {
		debug.SetMemoryLimit(c.MemoryLimit)
		limit = fmt.Sprintf("GOMEMLIMIT=%dMiB (default)", c.MemoryLimit>>20)
	}
	return gc + ", " + limit
}

// ServerConfig is where the handler listens and how much it logs.
type ServerConfig struct {
	Addr     string // 127.0.0.1:<FUNCTIONS_CUSTOMHANDLER_PORT>
	LogLevel slog.Level
}

// StorageConfig is the Table storage the state is kept in.
type StorageConfig struct {
	Storage     state.Connection
	TablePrefix string
	CacheSize   int
	Timeout     time.Duration
}

// LimitsConfig bounds what one request, and one instance, may hold.
type LimitsConfig struct {
	MaxBodyBytes      int64
	MaxInventoryBytes int64
	// MaxInflightBytes is UPGRADEWATCH_MAX_INFLIGHT_BYTES: the large request
	// bodies (node snapshots, invocation envelopes) held at once.
	MaxInflightBytes int64
}

// EnrichConfig is the ARM reads.
type EnrichConfig struct {
	Enrich        bool
	ARMClientID   string // user-assigned managed identity for ARM; "" = DefaultAzureCredential
	EnrichTimeout time.Duration
}

// PolicyConfig is the channel policy.
type PolicyConfig struct {
	// Policy is UPGRADEWATCH_POLICY: the policy document inline, or a path to it.
	Policy string
}

// NodesConfig is how node rows are kept.
type NodesConfig struct {
	// NodeRetention is UPGRADEWATCH_NODE_RETENTION: how long the row of a node
	// gone from its cluster's snapshots is kept.
	NodeRetention time.Duration
}

// RemediationConfig is the most any cluster may opt into, and how many one sweep does.
type RemediationConfig struct {
	Remediation     string // UPGRADEWATCH_REMEDIATION: off, dry-run, apply (default dry-run: ARM writes only when an operator says apply)
	RemediatePerRun int    // UPGRADEWATCH_REMEDIATIONS_PER_SWEEP
}

// ComplianceConfig is how often the Sweep refreshes the compliance figures.
type ComplianceConfig struct {
	// ComplianceEvery is UPGRADEWATCH_COMPLIANCE_EVERY: the aggregates (and,
	// once a day, the snapshot) are recomputed at most this often.
	ComplianceEvery time.Duration
}

// parseCompliance reads UPGRADEWATCH_COMPLIANCE_EVERY: 1m to 24h.
func parseCompliance(getenv func(string) string) (ComplianceConfig, error) {
	s := settings{getenv: getenv}
	c := ComplianceConfig{ComplianceEvery: s.duration("UPGRADEWATCH_COMPLIANCE_EVERY", watch.DefaultComplianceEvery, time.Minute, 24*time.Hour, "a duration from 1m to 24h")}
	return c, s.err()
}

// parseConfig reads the environment (getenv is os.Getenv in production) and
// reports every bad setting at once, each by name.
func parseConfig(getenv func(string) string) (Config, error) {
	var c Config
	var errs [10]error
	c.ServerConfig, errs[0] = parseServer(getenv)
	c.StorageConfig, errs[1] = parseStorage(getenv)
	c.LimitsConfig, errs[2] = parseLimits(getenv)
	c.EnrichConfig, errs[3] = parseEnrich(getenv)
	c.PolicyConfig = PolicyConfig{Policy: getenv("UPGRADEWATCH_POLICY")}
	c.NodesConfig, errs[4] = parseNodes(getenv)
	c.RemediationConfig, errs[5] = parseRemediation(getenv)
	c.Notify, errs[6] = parseNotify(getenv)
	c.Trust, errs[7] = parseTrust(getenv)
	c.ComplianceConfig, errs[8] = parseCompliance(getenv)
	c.Digest, errs[9] = parseDigest(getenv)
	c.Runtime = parseRuntime(getenv)
	return c, errors.Join(errs[:]...)
}

// parseServer reads FUNCTIONS_CUSTOMHANDLER_PORT and UPGRADEWATCH_LOG_LEVEL.
func parseServer(getenv func(string) string) (ServerConfig, error) {
	var c ServerConfig
	var errs []error
	port := cmp.Or(getenv("FUNCTIONS_CUSTOMHANDLER_PORT"), "8080")
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		errs = append(errs, fmt.Errorf("FUNCTIONS_CUSTOMHANDLER_PORT=%q is not a port", port))
	}
	// The host always calls 127.0.0.1; nothing else should reach the handler.
	c.Addr = net.JoinHostPort("127.0.0.1", port)
	if v := getenv("UPGRADEWATCH_LOG_LEVEL"); v != "" {
		if err := c.LogLevel.UnmarshalText([]byte(strings.ToUpper(v))); err != nil {
			errs = append(errs, fmt.Errorf("UPGRADEWATCH_LOG_LEVEL=%q: want debug, info, warn or error", v))
		}
	}
	return c, errors.Join(errs...)
}

// parseStorage reads the storage connection (Functions connection
// conventions: UPGRADEWATCH_STORAGE names it), the table prefix, the state
// cache and the request timeout.
func parseStorage(getenv func(string) string) (StorageConfig, error) {
	s := settings{getenv: getenv}
	name := cmp.Or(getenv("UPGRADEWATCH_STORAGE"), "AzureWebJobsStorage")
	c := StorageConfig{Storage: state.Connection{
		Name:             name,
		ConnectionString: getenv(name),
		TableServiceURI:  getenv(name + "__tableServiceUri"),
		AccountName:      getenv(name + "__accountName"),
		ClientID:         getenv(name + "__clientId"),
	}}
	if c.Storage.ConnectionString == "" && c.Storage.TableServiceURI == "" && c.Storage.AccountName == "" {
		s.fail(fmt.Errorf("no storage connection: set %s (a connection string or UseDevelopmentStorage=true), or %s__tableServiceUri / %s__accountName for managed identity", name, name, name))
	}
	c.TablePrefix = getenv("UPGRADEWATCH_TABLE_PREFIX")
	s.fail(checkTablePrefix(c.TablePrefix))
	c.CacheSize = int(s.integer("UPGRADEWATCH_STATE_CACHE", 2000, 0, math.MaxInt, "a number of clusters (0 disables)"))
	c.Timeout = s.duration("UPGRADEWATCH_STORAGE_TIMEOUT", 10*time.Second, 100*time.Millisecond, 5*time.Minute, "a duration from 100ms to 5m")
	return c, s.err()
}

// checkTablePrefix holds UPGRADEWATCH_TABLE_PREFIX to what a table name
// allows, so that every name made from it is valid.
func checkTablePrefix(p string) error {
	for _, r := range p {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return fmt.Errorf("UPGRADEWATCH_TABLE_PREFIX=%q: table names allow letters and digits only", p)
		}
	}
	if len(p) > 0 && (p[0] >= '0' && p[0] <= '9') {
		return fmt.Errorf("UPGRADEWATCH_TABLE_PREFIX=%q: table names must start with a letter", p)
	}
	if len(p) > 50 {
		return errors.New("UPGRADEWATCH_TABLE_PREFIX is longer than 50 characters")
	}
	return nil
}

// parseLimits reads the request and instance size limits.
func parseLimits(getenv func(string) string) (LimitsConfig, error) {
	s := settings{getenv: getenv}
	c := LimitsConfig{
		MaxBodyBytes:      s.integer("UPGRADEWATCH_MAX_BODY_BYTES", handlers.DefaultMaxBodyBytes, 1024, 64<<20, "a byte count from 1024 to 67108864"),
		MaxInventoryBytes: s.integer("UPGRADEWATCH_MAX_INVENTORY_BYTES", handlers.DefaultMaxInventoryBytes, 1024, 100<<20, "a byte count from 1024 to 104857600"),
		MaxInflightBytes:  s.integer("UPGRADEWATCH_MAX_INFLIGHT_BYTES", handlers.DefaultMaxInflightBytes, 1<<20, 1<<30, "a byte count from 1048576 to 1073741824"),
	}
	return c, s.err()
}

// parseEnrich reads whether and how clusters are read from ARM.
func parseEnrich(getenv func(string) string) (EnrichConfig, error) {
	s := settings{getenv: getenv}
	c := EnrichConfig{
		Enrich:        s.boolean("UPGRADEWATCH_ENRICH", true),
		ARMClientID:   getenv("UPGRADEWATCH_ARM_CLIENT_ID"),
		EnrichTimeout: s.duration("UPGRADEWATCH_ENRICH_TIMEOUT", 2*time.Minute, time.Second, 10*time.Minute, "a duration from 1s to 10m"),
	}
	return c, s.err()
}

// parseNodes reads UPGRADEWATCH_NODE_RETENTION: a day to a year.
func parseNodes(getenv func(string) string) (NodesConfig, error) {
	s := settings{getenv: getenv}
	c := NodesConfig{NodeRetention: s.duration("UPGRADEWATCH_NODE_RETENTION", fleet.DefaultNodeRetention, 24*time.Hour, 8760*time.Hour, "a duration from 24h to 8760h")}
	return c, s.err()
}

// parseRemediation reads the remediation ceiling and the per-sweep budget.
func parseRemediation(getenv func(string) string) (RemediationConfig, error) {
	s := settings{getenv: getenv}
	c := RemediationConfig{
		Remediation:     s.choice("UPGRADEWATCH_REMEDIATION", fleet.RemediateDryRun, "off, dry-run or apply", fleet.RemediateOff, fleet.RemediateDryRun, fleet.RemediateApply),
		RemediatePerRun: int(s.integer("UPGRADEWATCH_REMEDIATIONS_PER_SWEEP", handlers.DefaultRemediationsPerSweep, 1, 100, "a number from 1 to 100")),
	}
	return c, s.err()
}

// Notification settings: the sinks (each optional), what to announce and
// the app's own URL for links.
const (
	envWebhookURL        = "UPGRADEWATCH_NOTIFY_WEBHOOK_URL"
	envEventGridEndpoint = "UPGRADEWATCH_NOTIFY_EVENTGRID_ENDPOINT"
	envEventGridKey      = "UPGRADEWATCH_NOTIFY_EVENTGRID_KEY"
	envTeamsURL          = "UPGRADEWATCH_NOTIFY_TEAMS_URL"
	envSlackURL          = "UPGRADEWATCH_NOTIFY_SLACK_URL"
	// envSinks lists the named sinks, name=kind, comma-separated; each
	// one's URL (an Event Grid sink's endpoint) is
	// UPGRADEWATCH_NOTIFY_SINK_<NAME>_URL and an Event Grid sink's key
	// UPGRADEWATCH_NOTIFY_SINK_<NAME>_KEY (<NAME>: the name upper-cased,
	// hyphens as underscores).
	envSinks     = "UPGRADEWATCH_NOTIFY_SINKS"
	envGroupWait = "UPGRADEWATCH_NOTIFY_GROUP_WAIT"
)

// parseNotify reads the notification settings. A sink URL's errors name the
// setting, never its value: the values hold secrets.
func parseNotify(getenv func(string) string) (notify.Config, error) {
	s := settings{getenv: getenv}
	sinkURL := func(name string) string {
		v := strings.TrimSpace(getenv(name))
		if v != "" {
			if err := notify.CheckURL(v); err != nil {
				s.fail(fmt.Errorf("%s: %w", name, err))
			}
		}
		return v
	}
	c := notify.Config{
		WebhookURL: sinkURL(envWebhookURL), EventGridEndpoint: sinkURL(envEventGridEndpoint),
		EventGridKey: strings.TrimSpace(getenv(envEventGridKey)),
		TeamsURL:     sinkURL(envTeamsURL), SlackURL: sinkURL(envSlackURL),
		MinSeverity: s.choice("UPGRADEWATCH_NOTIFY_MIN_SEVERITY", "", "Info, Warning, Error or Critical",
			fleet.SeverityInfo, fleet.SeverityWarning, fleet.SeverityError, fleet.SeverityCritical),
	}
	if c.EventGridKey != "" && c.EventGridEndpoint == "" {
		s.fail(fmt.Errorf("%s is set without %s", envEventGridKey, envEventGridEndpoint))
	}
	c.RemindEvery = s.duration("UPGRADEWATCH_NOTIFY_REMIND_EVERY", outbox.DefaultRemindEvery, time.Hour, 30*24*time.Hour, "0 (no reminders) or a duration from 1h to 720h", 0)
	c.GroupWait = s.duration(envGroupWait, outbox.DefaultGroupWait, time.Second, 10*time.Minute, "0 or a duration from 1s to 10m", 0)
	c.Named = parseNamedSinks(&s, sinkURL)
	var err error
	c.PublicURL, err = parsePublicURL(getenv)
	s.fail(err)
	return c, s.err()
}

// parseNamedSinks reads UPGRADEWATCH_NOTIFY_SINKS and each named sink's
// URL (and key). Errors name the setting, never a URL or key.
func parseNamedSinks(s *settings, sinkURL func(name string) string) []notify.NamedSink {
	list := strings.TrimSpace(s.getenv(envSinks))
	if list == "" {
		return nil
	}
	var out []notify.NamedSink
	seen := map[string]bool{}
	for _, entry := range strings.Split(list, ",") {
		name, kind, ok := strings.Cut(strings.TrimSpace(entry), "=")
		name, kind = strings.TrimSpace(name), strings.ToLower(strings.TrimSpace(kind))
		switch {
		case !ok:
			s.fail(fmt.Errorf("%s: %q: want name=kind (kind: %s)", envSinks, entry, strings.Join(notify.Kinds, ", ")))
			continue
		case !slices.Contains(notify.Kinds, kind):
			s.fail(fmt.Errorf("%s: sink %s: kind %q: want one of %s", envSinks, name, kind, strings.Join(notify.Kinds, ", ")))
			continue
		}
		if err := notify.CheckSinkName(name); err != nil {
			s.fail(fmt.Errorf("%s: %w", envSinks, err))
			continue
		}
		if seen[name] {
			s.fail(fmt.Errorf("%s: sink %s is listed twice", envSinks, name))
			continue
		}
		seen[name] = true
		env := "UPGRADEWATCH_NOTIFY_SINK_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
		n := notify.NamedSink{Name: name, Kind: kind, URL: sinkURL(env + "_URL"), Key: strings.TrimSpace(s.getenv(env + "_KEY"))}
		if n.URL == "" {
			s.fail(fmt.Errorf("%s lists sink %s but %s_URL is not set", envSinks, name, env))
		}
		if n.Key != "" && kind != notify.KindEventGrid {
			s.fail(fmt.Errorf("%s_KEY is set for sink %s, which is not an Event Grid topic", env, name))
		}
		out = append(out, n)
	}
	return out
}

// parsePublicURL reads UPGRADEWATCH_PUBLIC_URL, else https://$WEBSITE_HOSTNAME
// (set by App Service).
func parsePublicURL(getenv func(string) string) (string, error) {
	v := getenv("UPGRADEWATCH_PUBLIC_URL")
	if v == "" && getenv("WEBSITE_HOSTNAME") != "" {
		v = "https://" + getenv("WEBSITE_HOSTNAME")
	}
	if v == "" {
		return "", nil
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.User != nil {
		if err == nil && u.User != nil {
			v = u.Redacted() // a password does not belong in the log either
		}
		return "", fmt.Errorf("UPGRADEWATCH_PUBLIC_URL=%q: want the app's base URL, https://<host>[/path]", v)
	}
	return v, nil
}

// settings reads typed settings, keeping the default and collecting an error
// naming the setting for every value out of range.
type settings struct {
	getenv func(string) string
	errs   []error
}

func (s *settings) fail(err error) {
	if err != nil {
		s.errs = append(s.errs, err)
	}
}

func (s *settings) invalid(name, v, want string) {
	s.fail(fmt.Errorf("%s=%q: want %s", name, v, want))
}

func (s *settings) err() error { return errors.Join(s.errs...) }

// integer is a decimal from lo to hi; def when unset.
func (s *settings) integer(name string, def, lo, hi int64, want string) int64 {
	v := s.getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < lo || n > hi {
		s.invalid(name, v, want)
		return def
	}
	return n
}

// duration is a Go duration from lo to hi, or one of also; def when unset.
func (s *settings) duration(name string, def, lo, hi time.Duration, want string, also ...time.Duration) time.Duration {
	v := s.getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err == nil && (d >= lo && d <= hi || slices.Contains(also, d)) {
		return d
	}
	s.invalid(name, v, want)
	return def
}

// boolean is true or false (strconv.ParseBool's spellings); def when unset.
func (s *settings) boolean(name string, def bool) bool {
	v := s.getenv(name)
	if v == "" {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		s.invalid(name, v, "true or false")
		return def
	}
	return b
}

// choice is one of allowed, in any case, returned as spelled in allowed; def
// when unset.
func (s *settings) choice(name, def, want string, allowed ...string) string {
	v := s.getenv(name)
	if v == "" {
		return def
	}
	for _, a := range allowed {
		if strings.EqualFold(v, a) {
			return a
		}
	}
	s.invalid(name, v, want)
	return def
}
