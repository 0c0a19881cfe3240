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
}

var _ Store = (*state.Store)(nil)

// Options configure the server.
type Options struct {
	Logger       *slog.Logger
	MaxBodyBytes int64
	Now          func() time.Time
	// StorageRequests, if set, is reported by the stats endpoint (for benchmarks).
	StorageRequests *atomic.Int64
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
	s := &Server{store: store, log: o.Logger, maxBody: o.MaxBodyBytes, now: o.Now, reqs: o.StorageRequests, mux: http.NewServeMux()}
	s.mux.HandleFunc("GET /{$}", s.ready)
	s.mux.HandleFunc("POST /AksEvents", s.aksEvents)
	s.mux.HandleFunc("POST /Status", s.statusEnvelope)
	s.mux.HandleFunc("GET /api/clusters", s.listClusters)
	s.mux.HandleFunc("GET /api/clusters/{subscriptionId}/{resourceGroup}/{clusterName}", s.getCluster)
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
	writeJSON(w, http.StatusOK, map[string]int64{"storageRequests": n})
}

func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	s.log.Warn("no such function route", "method", r.Method, "path", r.URL.Path)
	writeJSON(w, http.StatusNotFound, errorBody{Error: "no function is served at " + r.Method + " " + r.URL.Path})
}

func (s *Server) apiNotFound(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusNotFound, errorBody{Error: "no such resource: " + r.URL.Path +
		" (use /api/clusters or /api/clusters/{subscriptionId}/{resourceGroup}/{clusterName})"})
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
