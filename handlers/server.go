// Package handlers serves the Functions host: one route per function
// (functions/<Name> ↔ POST /<Name> or its /api route ↔ <name>.go), the readiness
// probe, and the mapping from outcomes to status codes, which is the host's
// retry policy.
package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
	"github.com/upgradewatch/upgradewatch/internal/state"
)

// Store is what the handlers need of the state store (implemented by
// *state.Store). Commit is exactly-once per signal id and safe to call
// concurrently; errors are state.ErrRejected (permanent) or state.ErrUnavailable
// (transient). RecordRejection is idempotent and returns ErrUnavailable when it
// could not write.
type Store interface {
	Commit(ctx context.Context, sig fleet.Signal) (state.Outcome, error)
	RecordRejection(ctx context.Context, r state.Rejection) error
	Cluster(ctx context.Context, id fleet.ClusterID) (*fleet.Cluster, error)
	Clusters(ctx context.Context) ([]state.ClusterEntry, error)

	// ApplyNodes applies a node snapshot exactly once (duplicates and older
	// snapshots change nothing); Nodes and NodeHistory read what it wrote.
	ApplyNodes(ctx context.Context, id fleet.ClusterID, snap fleet.NodeSnapshot) (state.NodesOutcome, error)
	Nodes(ctx context.Context, id fleet.ClusterID) (fleet.NodeInventory, []fleet.Node, error)
	Node(ctx context.Context, id fleet.ClusterID, name string) (fleet.Node, bool, error)
	NodeHistory(ctx context.Context, id fleet.ClusterID, since time.Time, node string, limit int) ([]fleet.NodeVersionChange, error)
}

var _ Store = (*state.Store)(nil)

// Sweeper is what the Sweep and the findings API need of the store
// (implemented by *state.Store when it has finding rules). Evaluate is
// fenced per cluster, so concurrent sweeps open a finding once.
type Sweeper interface {
	Due(ctx context.Context, now time.Time, limit int) ([]state.DueEntry, error)
	EvaluateMany(ctx context.Context, ids []fleet.ClusterID, workers int) ([]state.Evaluated, []error, error)
	DropDue(ctx context.Context, e state.DueEntry) error
	RepairIndex(ctx context.Context, id fleet.ClusterID) error
	OpenFindings(ctx context.Context) ([]state.FindingEntry, error)
	// Update is a guarded read-modify-write of one cluster (the outbox
	// and remediation records).
	Update(ctx context.Context, id fleet.ClusterID, fn func(c *fleet.Cluster, now time.Time) bool) (state.Evaluated, error)
}

var _ Sweeper = (*state.Store)(nil)

// Options configure the server.
type Options struct {
	Logger       *slog.Logger
	MaxBodyBytes int64
	// MaxInventoryBytes bounds a NodeInventory request (DefaultMaxInventoryBytes).
	MaxInventoryBytes int64
	// MaxInflightBytes bounds the bytes of large bodies (node snapshots,
	// invocation envelopes) held at once (DefaultMaxInflightBytes); a request
	// that cannot get its share within InflightWait (DefaultInflightWait) is
	// answered 503 to be retried.
	MaxInflightBytes int64
	InflightWait     time.Duration
	Now              func() time.Time
	// Enricher, if set, reads clusters from ARM after their rolling events and
	// on demand (POST …/refresh). Nil switches enrichment off.
	Enricher Enricher
	// EnrichTimeout bounds one enrichment, ARM retries included (default 2m).
	EnrichTimeout time.Duration
	// EnrichWorkers is how many enrichments run at once (default 2).
	EnrichWorkers int
	// Sweeper, if set, serves the Sweep and /api/findings.
	Sweeper Sweeper
	// Dispatcher, if set, sends the notifications commits record in the
	// outbox: in the background after each commit, and in the Sweep for
	// what is due again.
	Dispatcher Dispatcher
	// Remediator, if set, lets the Sweep plan and carry out remediations.
	Remediator *Remediator
	// StorageRequests, if set, is reported by the stats endpoint (for benchmarks).
	StorageRequests *atomic.Int64
	// NodeTokens, if set, must accept a NodeInventory request's bearer token
	// for the OIDC issuer ARM reports for the route's cluster; nil trusts
	// the function key alone (UPGRADEWATCH_NODE_AUTH=key).
	NodeTokens ClusterTokenVerifier
	// AlertTokens, if set, must accept an ActivityLogAlert's secure webhook
	// token; nil trusts the function key alone.
	AlertTokens AlertTokenVerifier
}

// DefaultMaxBodyBytes bounds an invocation body: 1 MiB.
const DefaultMaxBodyBytes = 1 << 20

// Server holds the handlers' dependencies.
type Server struct {
	store   Store
	log     *slog.Logger
	maxBody int64
	now     func() time.Time
	reqs    *atomic.Int64
	mux     *http.ServeMux

	maxInventory int64
	budget       *budget       // large bodies in flight
	enrich       *clusterQueue // nil when enrichment is off
	enricher     Enricher
	notify       *clusterQueue // nil when no notification sink is configured
	dispatcher   Dispatcher
	remediator   *Remediator
	sweeper      Sweeper
	trust        trust
}

// New builds the server and its routes.
func New(store Store, o Options) *Server {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaxInventoryBytes <= 0 {
		o.MaxInventoryBytes = DefaultMaxInventoryBytes
	}
	s := &Server{store: store, log: o.Logger, maxBody: o.MaxBodyBytes, now: o.Now, reqs: o.StorageRequests, mux: http.NewServeMux(),
		maxInventory: o.MaxInventoryBytes, sweeper: o.Sweeper, budget: newBudget(o.MaxInflightBytes, o.InflightWait),
		trust: trust{nodes: o.NodeTokens, alerts: o.AlertTokens, asked: map[string]time.Time{}}}
	if o.Enricher != nil {
		s.enricher = o.Enricher
		s.enrich = newClusterQueue(s, "enrichment", func(ctx context.Context, id fleet.ClusterID) error {
			_, err := s.enrichNow(ctx, id)
			return err
		}, o.EnrichWorkers, o.EnrichTimeout)
	}
	if o.Dispatcher != nil {
		s.dispatcher = o.Dispatcher
		s.notify = newDispatchQueue(s, o.Dispatcher)
	}
	s.remediator = o.Remediator
	s.mux.HandleFunc("GET /{$}", s.ready)
	s.mux.HandleFunc("POST /AksEvents", s.bounded(FunctionAksEvents, s.eventGrid(FunctionAksEvents)))
	s.mux.HandleFunc("POST /ActivityLog", s.bounded(FunctionActivityLog, s.eventGrid(FunctionActivityLog)))
	s.mux.HandleFunc("POST /ActivityLogStream", s.bounded(FunctionActivityLogStream, s.activityLogStream))
	s.mux.HandleFunc("POST /api/activitylog/alert", s.activityLogAlert)
	s.mux.HandleFunc("POST /Status", s.statusEnvelope)
	s.mux.HandleFunc("POST /Sweep", s.sweep)
	s.mux.HandleFunc("GET /api/findings", s.listFindings)
	s.mux.HandleFunc("GET /api/clusters/{subscriptionId}/{resourceGroup}/{clusterName}/findings", s.clusterFindings)
	s.mux.HandleFunc("GET /api/clusters", s.listClusters)
	s.mux.HandleFunc("GET /api/clusters/{subscriptionId}/{resourceGroup}/{clusterName}", s.getCluster)
	s.mux.HandleFunc("GET /api/clusters/{subscriptionId}/{resourceGroup}/{clusterName}/nodes", s.getNodes)
	s.mux.HandleFunc("GET /api/clusters/{subscriptionId}/{resourceGroup}/{clusterName}/nodes/{node}", s.getNode)
	s.mux.HandleFunc("POST /api/clusters/{subscriptionId}/{resourceGroup}/{clusterName}/nodes", s.nodeInventory)
	s.mux.HandleFunc("POST /api/clusters/{subscriptionId}/{resourceGroup}/{clusterName}/refresh", s.refresh)
	s.mux.HandleFunc("/api/", s.apiNotFound)
	s.mux.HandleFunc("GET /_upgradewatch/stats", s.stats)
	s.mux.HandleFunc("/", s.notFound)
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// ready answers the host's readiness and health polls at once.
func (s *Server) ready(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func (s *Server) stats(w http.ResponseWriter, _ *http.Request) {
	var n int64
	if s.reqs != nil {
		n = s.reqs.Load()
	}
	out := map[string]int64{"storageRequests": n}
	s.budgetStats(out)
	if q := s.enrich; q != nil {
		q.mu.Lock()
		out["enrichmentsOk"], out["enrichmentsFailed"] = q.ok, q.failed
		q.mu.Unlock()
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	s.log.Warn("no such function route", "method", r.Method, "path", r.URL.Path)
	writeJSON(w, http.StatusNotFound, errorBody{Error: "no function is served at " + r.Method + " " + r.URL.Path})
}

func (s *Server) apiNotFound(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusNotFound, errorBody{Error: "no such resource: " + r.Method + " " + r.URL.Path +
		" (use GET /api/clusters, GET /api/clusters/{subscriptionId}/{resourceGroup}/{clusterName}[/nodes[/{node}]]," +
		" POST …/{clusterName}/nodes or POST …/{clusterName}/refresh)"})
}

type errorBody struct {
	Error string `json:"error"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"response encoding failed"}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// statusFor is the one place that turns an outcome into the host's retry
// policy: only a transient failure asks for redelivery.
func statusFor(err error) int {
	if err != nil && errors.Is(err, state.ErrUnavailable) {
		return http.StatusServiceUnavailable
	}
	return http.StatusOK
}
