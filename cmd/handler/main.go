// Command handler is upgradewatch's Azure Functions custom handler: the one
// HTTP server the Functions host starts and invokes for every function.
package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
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
	"github.com/upgradewatch/upgradewatch/internal/remediate/armexec"
	"github.com/upgradewatch/upgradewatch/internal/state"
	"github.com/upgradewatch/upgradewatch/internal/watch"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Getenv, os.Stdout))
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
	gc := cfg.Runtime.apply()

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
	if cfg.Notify.NeedsCredential() {
		needCred = credential()
	}
	sinks, err := notify.NewSinks(cfg.Notify, needCred, notify.Options{})
	if err != nil {
		log.Error("invalid notification settings", "error", err)
		return 2
	}
	// A route to a sink that is not configured is a typo: refuse it now.
	if err := policies.CheckSinks(sinkNames(sinks)); err != nil {
		log.Error("invalid policy routes (UPGRADEWATCH_POLICY)", "error", err)
		return 2
	}
	store := state.New(svc, state.Options{TablePrefix: cfg.TablePrefix, CacheSize: cfg.CacheSize, Logger: log,
		NodeRetention: cfg.NodeRetention})
	defer store.Close()
	catalogue := state.NewCatalogue(svc, state.CatalogueOptions{TablePrefix: cfg.TablePrefix, Logger: log})
	compliance := state.NewCompliance(svc, state.ComplianceOptions{TablePrefix: cfg.TablePrefix, Logger: log})
	silenceTable := state.NewSilences(svc, state.SilenceOptions{TablePrefix: cfg.TablePrefix, Logger: log})
	silences := watch.NewSilences(silenceTable, watch.SilencesOptions{Logger: log})
	digests := state.NewDigests(svc, state.DigestOptions{TablePrefix: cfg.TablePrefix, Logger: log})
	app := newApp(cfg, store, catalogue, compliance, silences, sinks, policies, credential, log,
		digestOptions(cfg, store, digests, sinks, policies))
	opts := handlers.Options{Logger: log, MaxBodyBytes: cfg.MaxBodyBytes, MaxInventoryBytes: cfg.MaxInventoryBytes, MaxInflightBytes: cfg.MaxInflightBytes,
		StorageRequests: &requests}
	trustOptions(&opts, cfg.Trust, app.Enriching(), log)
	h := handlers.New(app, opts)
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
		"tables", strings.Join(store.Tables(), ",")+","+catalogue.Table()+","+strings.Join(compliance.Tables(), ",")+","+silenceTable.Table()+","+digests.Table(), "max_body_bytes", cfg.MaxBodyBytes, "state_cache", cfg.CacheSize,
		"enrich", app.Enriching(), "azure_identity", armIdentity(cfg, cred != nil), "policy_rules", policies.Len(),
		"notify_sinks", sinkDestinations(sinks), "remind_every", cfg.Notify.RemindEvery.String(), "max_inflight_bytes", cfg.MaxInflightBytes,
		"remediation", cfg.Remediation, "compliance_every", cfg.ComplianceEvery.String(), "digest", cfg.Digest.describe(), "gc", gc)
	log.Info("authentication beyond the Functions host's keys", cfg.Trust.describe()...)

	go ensureTables(ctx, log, store.EnsureTables, catalogue.EnsureTable, compliance.EnsureTable, silenceTable.EnsureTable, digests.EnsureTable)
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

// newApp wires the application layer: the finding rules with the outbox's
// steps run on every change, ARM reads when enrichment is on (and a
// credential exists), the sinks, and the remediation pass within the
// configured ceiling.
func newApp(cfg Config, store *state.Store, catalogue *state.ImageCatalogue, compliance *state.ComplianceTable, silences *watch.Silences, sinks []notify.Sink, policies *policy.Set, credential func() azcore.TokenCredential, log *slog.Logger, digest *watch.Digest) *watch.App {
	resolve := func(c *fleet.Cluster) (fleet.Policy, []string) {
		p, problems := policies.For(c)
		out := make([]string, len(problems))
		for i, pr := range problems {
			out[i] = pr.String()
		}
		return p, out
	}
	notifyCfg := outbox.Config{RemindEvery: cfg.Notify.RemindEvery, MinSeverity: cfg.Notify.MinSeverity,
		Grace: outbox.DefaultGrace().With(policies.Grace()), Silences: silences.Active}
	for _, sk := range sinks {
		notifyCfg.Sinks = append(notifyCfg.Sinks, sk.Name())
	}
	routeAndGroup(&notifyCfg, cfg.Notify, sinks, policies)
	o := watch.Options{Logger: log, Rules: outbox.Evaluator(findings.Evaluator(resolve), notifyCfg),
		EnrichTimeout: cfg.EnrichTimeout, Catalogue: catalogue, Compliance: compliance, ComplianceEvery: cfg.ComplianceEvery,
		Policy: func(c *fleet.Cluster) fleet.Policy { p, _ := policies.For(c); return p }, Silences: silences,
		Digest: digest}
	if len(sinks) > 0 {
		o.NewDispatcher = func(store outbox.Store) watch.Dispatcher {
			return outbox.NewDispatcher(store, sinks, outbox.Options{PublicURL: cfg.Notify.PublicURL, Logger: log, WakeGroups: true})
		}
	}
	if cfg.Enrich {
		if c := credential(); c != nil {
			o.Enricher = arm.NewReader(c, arm.Options{})
		} else {
			log.Error("enrichment is off: no ARM credential")
		}
	}
	if cfg.Remediation != fleet.RemediateOff {
		rm := &watch.Remediation{Ceiling: cfg.Remediation, PerSweep: cfg.RemediatePerRun, Outbox: notifyCfg,
			Policy: func(c *fleet.Cluster) fleet.Policy { p, _ := policies.For(c); return p }}
		if cfg.Remediation == fleet.RemediateApply {
			// Only clusters that opt in are ever touched; the credential is
			// made now so that a missing one shows at start.
			if c := credential(); c != nil {
				rm.Executor = armexec.NewExecutor(c, armexec.Options{})
			} else {
				log.Error("remediation limited to dry runs: no ARM credential")
			}
		}
		o.Remediation = rm
	}
	return watch.New(store, o)
}

// ensureTables creates missing tables, retrying while storage is unreachable.
// Until it succeeds, events are answered 503 and redelivered.
func ensureTables(ctx context.Context, log *slog.Logger, ensure ...func(context.Context) error) {
	delay := 250 * time.Millisecond
	for {
		var err error
		for _, f := range ensure {
			if err = f(ctx); err != nil {
				break
			}
		}
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
