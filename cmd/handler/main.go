// Command handler is upgradewatch's Azure Functions custom handler: the one
// HTTP server the Functions host starts and invokes for every function.
package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/upgradewatch/upgradewatch/handlers"
	"github.com/upgradewatch/upgradewatch/internal/arm"
	"github.com/upgradewatch/upgradewatch/internal/findings"
	"github.com/upgradewatch/upgradewatch/internal/fleet"
	"github.com/upgradewatch/upgradewatch/internal/notify"
	"github.com/upgradewatch/upgradewatch/internal/outbox"
	"github.com/upgradewatch/upgradewatch/internal/policy"
	"github.com/upgradewatch/upgradewatch/internal/remediate"
	"github.com/upgradewatch/upgradewatch/internal/state"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Getenv, os.Stdout))
}

// Config is every setting the handler reads, all from the environment.
type Config struct {
	Addr         string // 127.0.0.1:<FUNCTIONS_CUSTOMHANDLER_PORT>
	Storage      state.Connection
	TablePrefix  string
	LogLevel     slog.Level
	MaxBodyBytes int64
	CacheSize    int
	Timeout      time.Duration

	MaxInventoryBytes int64
	// MaxInflightBytes is UPGRADEWATCH_MAX_INFLIGHT_BYTES: the large request
	// bodies (node snapshots, invocation envelopes) held at once.
	MaxInflightBytes int64
	// NodeRetention is UPGRADEWATCH_NODE_RETENTION: how long the row of a node
	// gone from its cluster's snapshots is kept.
	NodeRetention time.Duration

	// Policy is UPGRADEWATCH_POLICY: the policy document inline, or a path to it.
	Policy string

	// ARM enrichment.
	Enrich        bool
	ARMClientID   string // user-assigned managed identity for ARM; "" = DefaultAzureCredential
	EnrichTimeout time.Duration

	// Notifications (the sinks themselves are read by notify.SinksFromEnv).
	RemindEvery time.Duration // UPGRADEWATCH_NOTIFY_REMIND_EVERY; 0 = no reminders
	MinSeverity string        // UPGRADEWATCH_NOTIFY_MIN_SEVERITY
	PublicURL   string        // UPGRADEWATCH_PUBLIC_URL, else https://$WEBSITE_HOSTNAME

	// Remediation: the most any cluster may opt into, and how many one sweep does.
	Remediation     string // UPGRADEWATCH_REMEDIATION: off, dry-run, apply (default dry-run: ARM writes only when an operator says apply)
	RemediatePerRun int    // UPGRADEWATCH_REMEDIATIONS_PER_SWEEP

	// Trust: how node snapshots and alerts are authenticated beyond the function key.
	Trust TrustConfig
}

// parseNodeRetention reads UPGRADEWATCH_NODE_RETENTION: a day to a year.
func parseNodeRetention(getenv func(string) string, c *Config) error {
	v := getenv("UPGRADEWATCH_NODE_RETENTION")
	if v == "" {
		return nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 24*time.Hour || d > 8760*time.Hour {
		return fmt.Errorf("UPGRADEWATCH_NODE_RETENTION=%q: want a duration from 24h to 8760h", v)
	}
	c.NodeRetention = d
	return nil
}

// parseMaxInflight reads UPGRADEWATCH_MAX_INFLIGHT_BYTES: 1 MiB to 1 GiB.
func parseMaxInflight(getenv func(string) string, c *Config) error {
	c.MaxInflightBytes = handlers.DefaultMaxInflightBytes
	v := getenv("UPGRADEWATCH_MAX_INFLIGHT_BYTES")
	if v == "" {
		return nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 1<<20 || n > 1<<30 {
		return fmt.Errorf("UPGRADEWATCH_MAX_INFLIGHT_BYTES=%q: want a byte count from 1048576 to 1073741824", v)
	}
	c.MaxInflightBytes = n
	return nil
}

// sinkDestinations names each sink with where it sends, by scheme and host
// only: the rest of a webhook URL is its secret.
func sinkDestinations(sinks []notify.Sink) string {
	out := make([]string, len(sinks))
	for i, s := range sinks {
		out[i] = s.Name() + " " + notify.Destination(s)
	}
	return strings.Join(out, ",")
}

// parseConfig reads the environment. getenv is os.Getenv in production.
func parseConfig(getenv func(string) string) (Config, error) {
	c := Config{MaxBodyBytes: handlers.DefaultMaxBodyBytes, CacheSize: 2000, Timeout: 10 * time.Second,
		MaxInventoryBytes: handlers.DefaultMaxInventoryBytes, Enrich: true, EnrichTimeout: 2 * time.Minute,
		RemindEvery: outbox.DefaultRemindEvery, Remediation: fleet.RemediateDryRun, RemediatePerRun: handlers.DefaultRemediationsPerSweep,
		NodeRetention: fleet.DefaultNodeRetention}
	if err := parseNodeRetention(getenv, &c); err != nil {
		return c, err
	}
	if err := parseMaxInflight(getenv, &c); err != nil {
		return c, err
	}
	port := getenv("FUNCTIONS_CUSTOMHANDLER_PORT")
	if port == "" {
		port = "8080"
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return c, fmt.Errorf("FUNCTIONS_CUSTOMHANDLER_PORT=%q is not a port", port)
	}
	// The host always calls 127.0.0.1; nothing else should reach the handler.
	c.Addr = net.JoinHostPort("127.0.0.1", port)

	name := getenv("UPGRADEWATCH_STORAGE")
	if name == "" {
		name = "AzureWebJobsStorage"
	}
	c.Storage = state.Connection{
		Name:             name,
		ConnectionString: getenv(name),
		TableServiceURI:  getenv(name + "__tableServiceUri"),
		AccountName:      getenv(name + "__accountName"),
		ClientID:         getenv(name + "__clientId"),
	}
	if c.Storage.ConnectionString == "" && c.Storage.TableServiceURI == "" && c.Storage.AccountName == "" {
		return c, fmt.Errorf("no storage connection: set %s (a connection string or UseDevelopmentStorage=true), or %s__tableServiceUri / %s__accountName for managed identity", name, name, name)
	}

	c.TablePrefix = getenv("UPGRADEWATCH_TABLE_PREFIX")
	for _, r := range c.TablePrefix {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return c, fmt.Errorf("UPGRADEWATCH_TABLE_PREFIX=%q: table names allow letters and digits only", c.TablePrefix)
		}
	}
	if len(c.TablePrefix) > 0 && (c.TablePrefix[0] >= '0' && c.TablePrefix[0] <= '9') {
		return c, fmt.Errorf("UPGRADEWATCH_TABLE_PREFIX=%q: table names must start with a letter", c.TablePrefix)
	}
	if len(c.TablePrefix) > 50 {
		return c, fmt.Errorf("UPGRADEWATCH_TABLE_PREFIX is longer than 50 characters")
	}

	if v := getenv("UPGRADEWATCH_LOG_LEVEL"); v != "" {
		if err := c.LogLevel.UnmarshalText([]byte(strings.ToUpper(v))); err != nil {
			return c, fmt.Errorf("UPGRADEWATCH_LOG_LEVEL=%q: want debug, info, warn or error", v)
		}
	}
	if v := getenv("UPGRADEWATCH_MAX_BODY_BYTES"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1024 || n > 64<<20 {
			return c, fmt.Errorf("UPGRADEWATCH_MAX_BODY_BYTES=%q: want a byte count from 1024 to 67108864", v)
		}
		c.MaxBodyBytes = n
	}
	if v := getenv("UPGRADEWATCH_STATE_CACHE"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return c, fmt.Errorf("UPGRADEWATCH_STATE_CACHE=%q: want a number of clusters (0 disables)", v)
		}
		c.CacheSize = n
	}
	if v := getenv("UPGRADEWATCH_STORAGE_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 100*time.Millisecond || d > 5*time.Minute {
			return c, fmt.Errorf("UPGRADEWATCH_STORAGE_TIMEOUT=%q: want a duration from 100ms to 5m", v)
		}
		c.Timeout = d
	}
	if v := getenv("UPGRADEWATCH_MAX_INVENTORY_BYTES"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1024 || n > 100<<20 {
			return c, fmt.Errorf("UPGRADEWATCH_MAX_INVENTORY_BYTES=%q: want a byte count from 1024 to 104857600", v)
		}
		c.MaxInventoryBytes = n
	}
	if v := getenv("UPGRADEWATCH_ENRICH"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return c, fmt.Errorf("UPGRADEWATCH_ENRICH=%q: want true or false", v)
		}
		c.Enrich = b
	}
	c.ARMClientID = getenv("UPGRADEWATCH_ARM_CLIENT_ID")
	c.Policy = getenv("UPGRADEWATCH_POLICY")
	if v := getenv("UPGRADEWATCH_ENRICH_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Second || d > 10*time.Minute {
			return c, fmt.Errorf("UPGRADEWATCH_ENRICH_TIMEOUT=%q: want a duration from 1s to 10m", v)
		}
		c.EnrichTimeout = d
	}
	if v := getenv("UPGRADEWATCH_NOTIFY_REMIND_EVERY"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || (d != 0 && (d < time.Hour || d > 30*24*time.Hour)) {
			return c, fmt.Errorf("UPGRADEWATCH_NOTIFY_REMIND_EVERY=%q: want 0 (no reminders) or a duration from 1h to 720h", v)
		}
		c.RemindEvery = d
	}
	if v := getenv("UPGRADEWATCH_NOTIFY_MIN_SEVERITY"); v != "" {
		for _, sev := range []string{fleet.SeverityInfo, fleet.SeverityWarning, fleet.SeverityError, fleet.SeverityCritical} {
			if strings.EqualFold(v, sev) {
				c.MinSeverity = sev
			}
		}
		if c.MinSeverity == "" {
			return c, fmt.Errorf("UPGRADEWATCH_NOTIFY_MIN_SEVERITY=%q: want Info, Warning, Error or Critical", v)
		}
	}
	c.PublicURL = getenv("UPGRADEWATCH_PUBLIC_URL")
	if c.PublicURL == "" && getenv("WEBSITE_HOSTNAME") != "" {
		c.PublicURL = "https://" + getenv("WEBSITE_HOSTNAME")
	}
	if c.PublicURL != "" {
		u, err := url.Parse(c.PublicURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.User != nil {
			return c, fmt.Errorf("UPGRADEWATCH_PUBLIC_URL=%q: want the app's base URL, https://<host>[/path]", c.PublicURL)
		}
	}
	if v := getenv("UPGRADEWATCH_REMEDIATION"); v != "" {
		switch m := strings.ToLower(v); m {
		case fleet.RemediateOff, fleet.RemediateDryRun, fleet.RemediateApply:
			c.Remediation = m
		default:
			return c, fmt.Errorf("UPGRADEWATCH_REMEDIATION=%q: want off, dry-run or apply", v)
		}
	}
	if v := getenv("UPGRADEWATCH_REMEDIATIONS_PER_SWEEP"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			return c, fmt.Errorf("UPGRADEWATCH_REMEDIATIONS_PER_SWEEP=%q: want a number from 1 to 100", v)
		}
		c.RemediatePerRun = n
	}
	var err error
	if c.Trust, err = parseTrust(getenv); err != nil {
		return c, err
	}
	return c, nil
}

// armCredential is the identity ARM reads use: a user-assigned managed
// identity when its client id is configured, else DefaultAzureCredential
// (the app's managed identity in Azure, the developer's login locally).
func armCredential(clientID string) (azcore.TokenCredential, error) {
	if clientID != "" {
		return azidentity.NewManagedIdentityCredential(&azidentity.ManagedIdentityCredentialOptions{ID: azidentity.ClientID(clientID)})
	}
	return azidentity.NewDefaultAzureCredential(nil)
}

// run starts the server and blocks until ctx ends. It returns the exit code.
func run(ctx context.Context, getenv func(string) string, stdout io.Writer) int {
	cfg, err := parseConfig(getenv)
	level := new(slog.LevelVar)
	level.Set(cfg.LogLevel)
	log := slog.New(slog.NewJSONHandler(stdout, &slog.HandlerOptions{Level: level}))
	if err != nil {
		log.Error("invalid configuration", "error", err)
		return 2
	}

	// Listen first: the host polls GET / from the moment it starts us.
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		log.Error("listen failed", "addr", cfg.Addr, "error", err)
		return 1
	}
	var requests atomic.Int64
	svc, err := state.NewServiceClient(cfg.Storage, state.ClientOptions{TryTimeout: cfg.Timeout, MaxRetries: 2, Counter: &requests})
	if err != nil {
		log.Error("storage client", "error", err)
		return 2
	}
	// A policy AKS cannot honour, or one that does not parse, stops the start:
	// running on a policy other than the one intended would report the wrong findings.
	policies, err := policy.Load(cfg.Policy)
	if err != nil {
		log.Error("invalid policy (UPGRADEWATCH_POLICY)", "error", err)
		return 2
	}
	resolve := func(c *fleet.Cluster) (fleet.Policy, []string) {
		p, problems := policies.For(c)
		out := make([]string, len(problems))
		for i, pr := range problems {
			out[i] = pr.String()
		}
		return p, out
	}
	// One credential for ARM and for Event Grid without a key, made when
	// first needed: without one, events still flow.
	var cred azcore.TokenCredential
	credential := func() azcore.TokenCredential {
		if cred == nil {
			c, err := armCredential(cfg.ARMClientID)
			if err != nil {
				log.Error("no Azure credential", "error", err)
				return nil
			}
			cred = c
		}
		return cred
	}
	var needCred azcore.TokenCredential
	if getenv(notify.EnvEventGridEndpoint) != "" && getenv(notify.EnvEventGridKey) == "" {
		needCred = credential()
	}
	sinks, err := notify.SinksFromEnv(getenv, needCred, notify.Options{Source: cmp.Or(cfg.PublicURL, notify.DefaultSource)})
	if err != nil {
		log.Error("invalid notification settings", "error", err)
		return 2
	}
	notifyCfg := outbox.Config{RemindEvery: cfg.RemindEvery, MinSeverity: cfg.MinSeverity}
	for _, sk := range sinks {
		notifyCfg.Sinks = append(notifyCfg.Sinks, sk.Name())
	}
	store := state.New(svc, state.Options{TablePrefix: cfg.TablePrefix, CacheSize: cfg.CacheSize, Logger: log,
		Evaluate: outbox.Evaluator(findings.Evaluator(resolve), notifyCfg), NodeRetention: cfg.NodeRetention})
	defer store.Close()
	opts := handlers.Options{Logger: log, MaxBodyBytes: cfg.MaxBodyBytes, MaxInventoryBytes: cfg.MaxInventoryBytes, MaxInflightBytes: cfg.MaxInflightBytes,
		StorageRequests: &requests, EnrichTimeout: cfg.EnrichTimeout, Sweeper: store}
	if len(sinks) > 0 {
		opts.Dispatcher = outbox.NewDispatcher(store, sinks, outbox.Options{PublicURL: cfg.PublicURL, Logger: log})
	}
	if cfg.Enrich {
		if c := credential(); c != nil {
			opts.Enricher = arm.NewReader(c, arm.Options{})
		} else {
			log.Error("enrichment is off: no ARM credential")
		}
	}
	if cfg.Remediation != fleet.RemediateOff {
		rm := &handlers.Remediator{Ceiling: cfg.Remediation, PerSweep: cfg.RemediatePerRun, Outbox: notifyCfg,
			Policy: func(c *fleet.Cluster) fleet.Policy { p, _ := policies.For(c); return p }}
		if cfg.Remediation == fleet.RemediateApply {
			// Only clusters that opt in are ever touched; the credential is
			// made now so that a missing one shows at start.
			if c := credential(); c != nil {
				rm.Executor = remediate.NewExecutor(c, remediate.Options{})
			} else {
				log.Error("remediation limited to dry runs: no ARM credential")
			}
		}
		opts.Remediator = rm
	}
	trustOptions(&opts, cfg.Trust, log)
	h := handlers.New(store, opts)
	srv := &http.Server{
		Handler: h,
		// The host's own timeout is functionTimeout + 1 min; these only guard
		// against a stuck peer.
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		IdleTimeout:       5 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	log.Info("upgradewatch handler starting", "addr", ln.Addr().String(), "storage", cfg.Storage.Describe(),
		"tables", strings.Join(store.Tables(), ","), "max_body_bytes", cfg.MaxBodyBytes, "state_cache", cfg.CacheSize,
		"enrich", opts.Enricher != nil, "azure_identity", armIdentity(cfg, cred != nil), "policy_rules", policies.Len(),
		"notify_sinks", sinkDestinations(sinks), "remind_every", cfg.RemindEvery.String(), "max_inflight_bytes", cfg.MaxInflightBytes,
		"remediation", cfg.Remediation)
	log.Info("authentication beyond the Functions host's keys", cfg.Trust.describe()...)

	go ensureTables(ctx, store, log)
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	select {
	case err := <-serveErr:
		log.Error("server stopped", "error", err)
		return 1
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Warn("shutdown incomplete", "error", err)
	}
	if err := h.Shutdown(shutdown); err != nil {
		log.Warn("enrichments still queued at shutdown were dropped", "error", err)
	}
	log.Info("upgradewatch handler stopped")
	return 0
}

func armIdentity(cfg Config, made bool) string {
	switch {
	case !made:
		return "none"
	case cfg.ARMClientID != "":
		return "managed identity " + cfg.ARMClientID
	}
	return "default credential chain"
}

// ensureTables creates missing tables, retrying while storage is unreachable.
// Until it succeeds, events are answered 503 and redelivered.
func ensureTables(ctx context.Context, store *state.Store, log *slog.Logger) {
	delay := 250 * time.Millisecond
	for {
		err := store.EnsureTables(ctx)
		if err == nil {
			log.Info("tables ready")
			return
		}
		log.Warn("tables not ready, retrying", "error", err, "retry_in", delay.String())
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(delay*2, 30*time.Second)
	}
}
