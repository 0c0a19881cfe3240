package handlers

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/upgradewatch/upgradewatch/internal/dashboard"
	"github.com/upgradewatch/upgradewatch/internal/fleet"
	"github.com/upgradewatch/upgradewatch/internal/watch"
)

// FunctionDashboard is the httpTrigger GET /api/dashboard[/…]: the pages.
const FunctionDashboard = "Dashboard"

// dashboardReads is how many cluster partitions a page reads at once.
const dashboardReads = 8

// dashboardRoutes registers the pages and their assets.
func (s *Server) dashboardRoutes() {
	r, err := dashboard.New()
	if err != nil {
		panic(err) // the templates are embedded: a parse error is a build defect, caught by the tests
	}
	s.pages = r
	s.mux.HandleFunc("GET /api/dashboard", s.dashboard(s.dashFleet))
	s.mux.HandleFunc("GET /api/dashboard/{$}", s.dashboard(s.dashFleet))
	s.mux.HandleFunc("GET /api/dashboard/clusters", s.dashboard(s.dashClusters))
	s.mux.HandleFunc("GET /api/dashboard/clusters/{subscriptionId}/{resourceGroup}/{clusterName}", s.dashboard(s.dashCluster))
	s.mux.HandleFunc("GET /api/dashboard/findings", s.dashboard(s.dashFindings))
	s.mux.HandleFunc("GET /api/dashboard/static/{file}", s.dashboard(s.dashStatic))
	s.mux.HandleFunc("/api/dashboard/", s.dashboard(func(w http.ResponseWriter, r *http.Request) {
		s.dashError(w, http.StatusNotFound, "No such page. The dashboard has "+dashboard.Root+", "+dashboard.Root+"/clusters, "+
			dashboard.Root+"/clusters/{subscriptionId}/{resourceGroup}/{clusterName} and "+dashboard.Root+"/findings.")
	}))
}

// dashboard wraps a page handler: the security headers every answer
// carries, and the access check.
func (s *Server) dashboard(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", dashboard.CSP)
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Cross-Origin-Opener-Policy", "same-origin")
		hd.Set("Cross-Origin-Resource-Policy", "same-origin")
		if msg := access(r); msg != "" {
			s.log.Warn("dashboard request refused", "function", FunctionDashboard, "path", r.URL.Path, "reason", msg)
			s.dashError(w, http.StatusUnauthorized, msg)
			return
		}
		h(w, r)
	}
}

// access answers "" when the request may see the dashboard: it comes from
// this machine (loopback peer, loopback Host, no proxy's forwarding
// headers: the Functions host in Azure forwards the front end's request,
// which always carries them), or it carries the principal App Service
// Authentication adds after sign-in (the platform strips a client's own).
// Otherwise it says why not.
func access(r *http.Request) string {
	if local(r) {
		return ""
	}
	p := r.Header.Get("X-MS-CLIENT-PRINCIPAL")
	if p == "" {
		return "Sign-in required: outside this machine the dashboard is served only behind App Service Authentication " +
			"(Microsoft Entra ID), which signs you in and adds X-MS-CLIENT-PRINCIPAL. See docs/dashboard.md."
	}
	b, err := base64.StdEncoding.DecodeString(p)
	var v map[string]any
	if err != nil || json.Unmarshal(b, &v) != nil {
		return "The X-MS-CLIENT-PRINCIPAL header is not App Service Authentication's (base64 JSON): sign in again."
	}
	return ""
}

var forwardingHeaders = []string{"X-Forwarded-For", "X-Forwarded-Host", "Forwarded", "X-Original-URL", "X-ARR-LOG-ID", "X-Client-IP"}

func local(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil || !loopback(host) {
		return false
	}
	h := r.Host
	if hh, _, err := net.SplitHostPort(h); err == nil {
		h = hh
	}
	if !loopback(strings.Trim(h, "[]")) {
		return false
	}
	for _, f := range forwardingHeaders {
		if r.Header.Get(f) != "" {
			return false
		}
	}
	return true
}

func loopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// principalName is the signed-in user's name, as App Service Authentication says.
func principalName(r *http.Request) string {
	if local(r) {
		return ""
	}
	return r.Header.Get("X-MS-CLIENT-PRINCIPAL-NAME")
}

func (s *Server) dashStatic(w http.ResponseWriter, r *http.Request) {
	b, ct, ok := dashboard.Static(r.PathValue("file"))
	if !ok {
		s.dashError(w, http.StatusNotFound, "No such asset.")
		return
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(b)
}

// dashWrite answers a page, or one of its tables as CSV (?format=csv&table=).
func (s *Server) dashWrite(w http.ResponseWriter, r *http.Request, p *dashboard.Page, main string) {
	p.User = principalName(r)
	w.Header().Set("Cache-Control", "no-store")
	switch r.URL.Query().Get("format") {
	case "", "html":
	case "csv":
		id := r.URL.Query().Get("table")
		if id == "" {
			id = main
		}
		t, ok := p.FindTable(id)
		if !ok {
			s.dashError(w, http.StatusBadRequest, fmt.Sprintf("This page has no table %q.", id))
			return
		}
		var b bytes.Buffer
		if err := t.WriteCSV(&b); err != nil {
			s.dashError(w, http.StatusInternalServerError, "The CSV could not be written.")
			return
		}
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", `attachment; filename="`+t.ID+`.csv"`)
		_, _ = w.Write(b.Bytes())
		return
	default:
		s.dashError(w, http.StatusBadRequest, "format must be html or csv.")
		return
	}
	var b bytes.Buffer
	if err := s.pages.Render(&b, p); err != nil {
		s.log.Error("render dashboard page failed", "function", FunctionDashboard, "error", err)
		s.dashError(w, http.StatusInternalServerError, "The page could not be rendered.")
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(b.Bytes())
}

// dashError answers a plain page saying what went wrong.
func (s *Server) dashError(w http.ResponseWriter, status int, msg string) {
	p := &dashboard.Page{Title: http.StatusText(status), Base: dashboard.Root, AsOf: s.now(), Self: dashboard.Root, Notes: []string{msg}}
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "30")
	}
	var b bytes.Buffer
	w.Header().Set("Cache-Control", "no-store")
	if err := s.pages.Render(&b, p); err != nil {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(msg + "\n"))
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
}

func (s *Server) dashUnavailable(w http.ResponseWriter, what string, err error) {
	s.log.Error("dashboard read failed", "function", FunctionDashboard, "what", what, "error", err)
	s.dashError(w, http.StatusServiceUnavailable, "State storage could not be read ("+what+"); reload in a moment.")
}

// dashRows lists every cluster as a row. With the compliance figures kept
// they come from the summary rows (one paged query: a request per 1,000
// clusters, no cluster partition read); without, every cluster of the index
// is read and summarised.
func (s *Server) dashRows(ctx context.Context) ([]dashboard.ClusterRow, error) {
	if s.app.HasCompliance() {
		sums, err := s.app.ComplianceSummaries(ctx)
		if err != nil {
			return nil, err
		}
		now := s.now()
		rows := make([]dashboard.ClusterRow, len(sums))
		for i, sum := range sums {
			rows[i] = dashboard.FromSummary(sum, now)
		}
		return rows, nil
	}
	return s.dashRowsLoaded(ctx)
}

// dashRowsLoaded reads every cluster of the index and summarises it.
func (s *Server) dashRowsLoaded(ctx context.Context) ([]dashboard.ClusterRow, error) {
	list, err := s.app.Clusters(ctx)
	if err != nil {
		return nil, err
	}
	now := s.now()
	rows := make([]dashboard.ClusterRow, len(list))
	ok := make([]bool, len(list))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(dashboardReads)
	for i, e := range list {
		g.Go(func() error {
			id, err := fleet.NewClusterID(e.SubscriptionID, e.ResourceGroup, e.Name)
			if err != nil {
				return nil // the index holds only valid names; a bad entry is skipped, not fatal
			}
			c, err := s.app.Cluster(gctx, id)
			if errors.Is(err, fleet.ErrNotFound) {
				return nil // indexed, then removed: the Sweep repairs the index
			} else if err != nil {
				return fmt.Errorf("read %s: %w", id.Key(), err)
			}
			rows[i], ok[i] = dashboard.Summarise(c, s.patchView(gctx, c), now), true
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	out := rows[:0]
	for i := range rows {
		if ok[i] {
			out = append(out, rows[i])
		}
	}
	return out, nil
}

func (s *Server) dashClusters(w http.ResponseWriter, r *http.Request) {
	q, err := dashboard.ParseClustersQuery(r.URL.Query())
	if err != nil {
		s.dashError(w, http.StatusBadRequest, err.Error())
		return
	}
	rows, err := s.dashRows(r.Context())
	if err != nil {
		s.dashUnavailable(w, "clusters", err)
		return
	}
	p, err := dashboard.ClustersPage(rows, q, s.now())
	if err != nil {
		s.dashError(w, http.StatusBadRequest, err.Error())
		return
	}
	s.dashWrite(w, r, p, "clusters")
}

func (s *Server) dashCluster(w http.ResponseWriter, r *http.Request) {
	id, err := fleet.NewClusterID(r.PathValue("subscriptionId"), r.PathValue("resourceGroup"), r.PathValue("clusterName"))
	if err != nil {
		s.dashError(w, http.StatusBadRequest, err.Error())
		return
	}
	c, err := s.app.Cluster(r.Context(), id)
	switch {
	case errors.Is(err, fleet.ErrNotFound):
		s.dashError(w, http.StatusNotFound, "upgradewatch has no state for "+id.ResourceID()+".")
		return
	case err != nil:
		s.dashUnavailable(w, "cluster", err)
		return
	}
	d := dashboard.ClusterData{Cluster: c, Patch: s.patchView(r.Context(), c)}
	if _, nodes, err := s.app.Nodes(r.Context(), id); err != nil {
		s.log.Warn("dashboard nodes unavailable", "function", FunctionDashboard, "cluster", id.Key(), "error", err)
		d.NodesErr = true
	} else {
		d.Nodes = nodes
	}
	p, err := dashboard.ClusterPage(d, r.URL.Query(), s.now())
	if err != nil {
		s.dashError(w, http.StatusBadRequest, err.Error())
		return
	}
	s.dashWrite(w, r, p, "pools")
}

func (s *Server) dashFindings(w http.ResponseWriter, r *http.Request) {
	q, err := dashboard.ParseFindingsQuery(r.URL.Query())
	if err != nil {
		s.dashError(w, http.StatusBadRequest, err.Error())
		return
	}
	var list []watch.FindingEntry
	if s.app.HasRules() {
		if list, err = s.app.OpenFindings(r.Context()); err != nil {
			s.dashUnavailable(w, "findings", err)
			return
		}
	}
	p, err := dashboard.FindingsPage(list, q, s.app.HasRules(), s.now())
	if err != nil {
		s.dashError(w, http.StatusBadRequest, err.Error())
		return
	}
	s.dashWrite(w, r, p, "findings")
}

// dashFleet is the fleet page: from the fleet's compliance aggregate and
// its view when kept (a few rows whatever the fleet's size), else from
// every cluster.
func (s *Server) dashFleet(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	var (
		in      = dashboard.FleetData{Rules: s.app.HasRules()}
		rowsErr error
		findErr error
		wg      sync.WaitGroup
	)
	if in.Rules {
		wg.Go(func() { in.Findings, findErr = s.app.OpenFindings(ctx) })
	}
	s.fleetCompliance(ctx, &in)
	if in.View == nil {
		in.Rows, rowsErr = s.dashRows(ctx)
	}
	wg.Wait()
	if err := errors.Join(rowsErr, findErr); err != nil {
		s.dashUnavailable(w, "fleet", err)
		return
	}
	p, err := dashboard.FleetPage(in, r.URL.Query(), s.now())
	if err != nil {
		s.dashError(w, http.StatusBadRequest, err.Error())
		return
	}
	s.dashWrite(w, r, p, "grid")
}

// fleetCompliance adds the compliance figures and their daily trend when
// the app keeps them (#14); a failure leaves the page's own figures.
func (s *Server) fleetCompliance(ctx context.Context, in *dashboard.FleetData) {
	if !s.app.HasCompliance() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	v, err := s.app.Compliance(ctx, watch.ComplianceQuery{})
	if err != nil {
		s.log.Warn("dashboard compliance unavailable", "function", FunctionDashboard, "error", err)
		return
	}
	in.Compliance, in.View = &v.Aggregate, v.View
	if hist, err := s.app.ComplianceHistory(ctx, 30); err == nil {
		in.History = hist
	}
}
