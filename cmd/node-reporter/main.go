// Command node-reporter runs in an AKS cluster as a CronJob: it lists the
// cluster's nodes and posts them to upgradewatch's NodeInventory function in
// the compact form (internal/inventory), so upgradewatch sees which node runs
// which image even when no event says so.
//
// It posts with the function key and, as Authorization: Bearer, a projected
// token of its service account for the audience upgradewatch
// (UPGRADEWATCH_TOKEN_FILE, read afresh for every attempt). That token is
// signed by the cluster's own OIDC issuer, which upgradewatch knows from ARM,
// so a credential held in one cluster cannot write another's nodes.
//
// It reads the API with plain net/http instead of client-go: one paged GET of
// /api/v1/nodes does not justify client-go's dependency tree, and the
// in-cluster configuration it would read (service host and port, token, CA)
// takes a few lines here. It needs only `list` on nodes (infra/k8s).
//
// A run lists once, then posts one body. The snapshot id is drawn once per run,
// so a retried post is an exact duplicate the server recognises. Network
// errors, 429 and 5xx are retried with capped, jittered exponential backoff
// (Retry-After honoured) until UPGRADEWATCH_TIMEOUT; any other refusal ends the
// run at once. Exit status: 0 posted, 1 failed, 2 misconfigured; the CronJob
// tries again at the next schedule.
package main

import (
	"cmp"
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
	"github.com/upgradewatch/upgradewatch/internal/inventory"
)

// version is overridden at build time: -ldflags "-X main.version=…".
var version = "0.1.0"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Getenv, os.Stdout))
}

// run lists the nodes and posts them. It returns the exit code.
func run(ctx context.Context, getenv func(string) string, stdout io.Writer) int {
	cfg, err := parseConfig(getenv)
	level := new(slog.LevelVar)
	level.Set(cfg.LogLevel)
	log := slog.New(slog.NewJSONHandler(stdout, &slog.HandlerOptions{Level: level}))
	if err != nil {
		log.Error("invalid configuration", "error", err)
		return 2
	}
	kube, err := newKubeClient(cfg)
	if err != nil {
		log.Error("invalid configuration", "error", err)
		return 2
	}
	// A missing token is a mounting mistake: say so before listing anything.
	if _, err := readToken(cfg.TokenFile); err != nil {
		log.Error("invalid configuration", "error", err)
		return 2
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()

	reporter := "node-reporter/" + version
	id := "nr-" + rand.Text()
	log = log.With("snapshot_id", id)
	log.Info("node-reporter starting", "version", version, "api_server", cfg.APIServer,
		"nodes_url", cfg.NodesURL.String(), "token_file", cmp.Or(cfg.TokenFile, NoToken), "timeout", cfg.Timeout.String())

	snap, skipped, err := kube.listNodes(ctx, log)
	if err != nil {
		log.Error("listing nodes failed", "error", err)
		return 1
	}
	snap.ID, snap.Reporter, snap.Complete = id, reporter, true
	log.Info("nodes listed", "nodes", len(snap.Nodes), "skipped", skipped, "pools", poolCounts(snap.Nodes),
		"observed_at", snap.ObservedAt.Format(time.RFC3339Nano))
	body, err := inventory.Encode(snap)
	if err != nil {
		log.Error("snapshot refused before posting", "error", err)
		return 1
	}

	up := &poster{
		client:   newHTTPClient(nil, 60*time.Second),
		url:      cfg.NodesURL.String(),
		key:      cfg.FunctionKey,
		token:    func() (string, error) { return readToken(cfg.TokenFile) },
		agent:    reporter,
		backoff:  cfg.Backoff,
		deadline: deadline(ctx),
	}
	status, reply, err := up.post(ctx, body, log)
	if err != nil {
		log.Error("posting snapshot failed", "error", err)
		return 1
	}
	log.Info("snapshot posted", "status", status, "response", reply, "bytes", len(body))
	return 0
}

// newHTTPClient never follows redirects: a redirect would carry the function
// key or the token to wherever it points.
func newHTTPClient(transport http.RoundTripper, timeout time.Duration) *http.Client {
	return &http.Client{
		Transport:     transport,
		Timeout:       timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

func poolCounts(nodes []fleet.NodeObservation) map[string]int {
	out := map[string]int{}
	for _, n := range nodes {
		out[n.Pool]++
	}
	return out
}

func deadline(ctx context.Context) time.Time {
	d, _ := ctx.Deadline()
	return d
}
