// Command handler is upgradewatch's Azure Functions custom handler: the one
// HTTP server the Functions host starts and invokes for every function.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
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
	"github.com/upgradewatch/upgradewatch/internal/policy"
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

	// Policy is UPGRADEWATCH_POLICY: the policy document inline, or a path to it.
	Policy string

	// ARM enrichment.
	Enrich        bool
	ARMClientID   string // user-assigned managed identity for ARM; "" = DefaultAzureCredential
	EnrichTimeout time.Duration
}

// parseConfig reads the environment. getenv is os.Getenv in production.
func parseConfig(getenv func(string) string) (Config, error) {
	c := Config{MaxBodyBytes: handlers.DefaultMaxBodyBytes, CacheSize: 2000, Timeout: 10 * time.Second,
		MaxInventoryBytes: handlers.DefaultMaxInventoryBytes, Enrich: true, EnrichTimeout: 2 * time.Minute}
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
	store := state.New(svc, state.Options{TablePrefix: cfg.TablePrefix, CacheSize: cfg.CacheSize, Logger: log,
		Evaluate: findings.Evaluator(resolve)})
	defer store.Close()
	opts := handlers.Options{Logger: log, MaxBodyBytes: cfg.MaxBodyBytes, MaxInventoryBytes: cfg.MaxInventoryBytes,
		StorageRequests: &requests, EnrichTimeout: cfg.EnrichTimeout, Sweeper: store}
	if cfg.Enrich {
		cred, err := armCredential(cfg.ARMClientID)
		if err != nil {
			// Enrichment is an extra: without a credential the events still flow.
			log.Error("no ARM credential; enrichment is off", "error", err)
		} else {
			opts.Enricher = arm.NewReader(cred, arm.Options{})
		}
	}
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
		"enrich", opts.Enricher != nil, "arm_identity", armIdentity(cfg), "policy_rules", policies.Len())

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

func armIdentity(cfg Config) string {
	switch {
	case !cfg.Enrich:
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
