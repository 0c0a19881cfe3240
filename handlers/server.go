// Package handlers serves the Functions host: one route per function
// (functions/<Name> ↔ POST /<Name> or its /api route ↔ <name>.go), the readiness
// probe, and the mapping from outcomes to status codes, which is the host's
// retry policy. A handler decodes the envelope or request, calls one use case
// of the application layer (package watch) and writes the answer; the use
// cases, their storage and their background work are watch's.
package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/upgradewatch/upgradewatch/internal/dashboard"
	"github.com/upgradewatch/upgradewatch/internal/fleet"
	"github.com/upgradewatch/upgradewatch/internal/watch"
)

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

// DefaultRemediationsPerSweep is watch.DefaultRemediationsPerSweep, for the
// configuration's default.
const DefaultRemediationsPerSweep = watch.DefaultRemediationsPerSweep

// Server holds the handlers' dependencies: the application layer and what
// HTTP itself needs.
type Server struct {
	app     *watch.App
	log     *slog.Logger
	maxBody int64
	now     func() time.Time
	reqs    *atomic.Int64
	mux     *http.ServeMux

	maxInventory int64
	budget       *budget // large bodies in flight
	trust        trust
	pages        *dashboard.Renderer
}

// New builds the server and its routes over the application layer app.
func New(app *watch.App, o Options) *Server {
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
	s := &Server{app: app, log: o.Logger, maxBody: o.MaxBodyBytes, now: o.Now, reqs: o.StorageRequests, mux: http.NewServeMux(),
		maxInventory: o.MaxInventoryBytes, budget: newBudget(o.MaxInflightBytes, o.InflightWait),
		trust: trust{nodes: o.NodeTokens, alerts: o.AlertTokens, asked: map[string]time.Time{}}}
	s.mux.HandleFunc("GET /{$}", s.ready)
	s.mux.HandleFunc("POST /AksEvents", s.bounded(FunctionAksEvents, s.eventGrid(FunctionAksEvents)))
	s.mux.HandleFunc("POST /ActivityLog", s.bounded(FunctionActivityLog, s.eventGrid(FunctionActivityLog)))
	s.mux.HandleFunc("POST /ActivityLogStream", s.bounded(FunctionActivityLogStream, s.activityLogStream))
	s.mux.HandleFunc("POST /api/activitylog/alert", s.activityLogAlert)
	s.mux.HandleFunc("POST /Status", s.statusEnvelope)
	s.mux.HandleFunc("POST /Sweep", s.sweep)
	s.mux.HandleFunc("GET /api/findings", s.listFindings)
	s.mux.HandleFunc("GET /api/compliance", s.compliance)
	s.mux.HandleFunc("GET /api/compliance/history", s.complianceHistory)
	s.mux.HandleFunc("POST /api/silences", s.createSilence)
	s.mux.HandleFunc("GET /api/silences", s.listSilences)
	s.mux.HandleFunc("GET /api/silences/{id}", s.getSilence)
	s.mux.HandleFunc("DELETE /api/silences/{id}", s.endSilence)
	s.mux.HandleFunc("GET /api/clusters/{subscriptionId}/{resourceGroup}/{clusterName}/findings", s.clusterFindings)
	s.mux.HandleFunc("GET /api/clusters", s.listClusters)
	s.mux.HandleFunc("GET /api/clusters/{subscriptionId}/{resourceGroup}/{clusterName}", s.getCluster)
	s.mux.HandleFunc("GET /api/clusters/{subscriptionId}/{resourceGroup}/{clusterName}/nodes", s.getNodes)
	s.mux.HandleFunc("GET /api/clusters/{subscriptionId}/{resourceGroup}/{clusterName}/nodes/{node}", s.getNode)
	s.mux.HandleFunc("POST /api/clusters/{subscriptionId}/{resourceGroup}/{clusterName}/nodes", s.nodeInventory)
	s.mux.HandleFunc("POST /api/clusters/{subscriptionId}/{resourceGroup}/{clusterName}/refresh", s.refresh)
	s.dashboardRoutes()
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
	if s.app != nil && s.app.Enriching() {
		out["enrichmentsOk"], out["enrichmentsFailed"] = s.app.EnrichStats()
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
	if err != nil && errors.Is(err, fleet.ErrUnavailable) {
		return http.StatusServiceUnavailable
	}
	return http.StatusOK
}

// apiError answers an HTTP API route's failure: the one mapping of the
// application layer's errors to HTTP status codes, as the API's callers read
// them (statusFor is the host invocations'). id names the route's cluster.
// Anything it does not know is taken as transient: the caller may retry.
func apiError(w http.ResponseWriter, err error, id fleet.ClusterID) {
	switch {
	case errors.Is(err, fleet.ErrNotFound):
		writeJSON(w, http.StatusNotFound, errorBody{Error: "no state for cluster " + id.ResourceID()})
	case errors.Is(err, fleet.ErrRejected):
		writeJSON(w, http.StatusBadRequest, errorBody{Error: err.Error()})
	case errors.Is(err, watch.ErrRefreshOff):
		writeJSON(w, http.StatusNotImplemented, errorBody{Error: "ARM enrichment is switched off (UPGRADEWATCH_ENRICH=false)"})
	case errors.Is(err, watch.ErrForbidden):
		writeJSON(w, http.StatusBadGateway, errorBody{Error: "ARM refused the read: the app's identity needs read access to " + id.ResourceID()})
	case errors.Is(err, watch.ErrReadFailed):
		w.Header().Set("Retry-After", "60")
		writeJSON(w, http.StatusServiceUnavailable, errorBody{Error: err.Error()})
	default:
		unavailable(w)
	}
}

// Shutdown stops the application layer's background work (enrichments, then
// the notifications they caused), letting queued work finish until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	if s.app == nil {
		return nil
	}
	return s.app.Shutdown(ctx)
}

// WaitIdle waits until no background enrichment or dispatch is queued or
// running (tests, benchmarks).
func (s *Server) WaitIdle(ctx context.Context) error {
	if s.app == nil {
		return nil
	}
	return s.app.WaitIdle(ctx)
}
