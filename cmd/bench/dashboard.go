package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/upgradewatch/upgradewatch/handlers"
)

// dashboardGets is how many rounds of the two pages are timed per fleet size.
const dashboardGets = 15

// dashboardPages are the pages timed: the fleet page and the clusters page.
var dashboardPages = []string{"/api/dashboard", "/api/dashboard/clusters"}

// dashboardBench times the fleet and clusters pages on fleets of 100 and
// 10,000 clusters (the compliance bench's fill, then its refresh): server
// time, storage requests and bytes per page.
func dashboardBench(c config, out io.Writer, sum *summary) error {
	fmt.Fprintln(out, "\n## dashboard (GET /api/dashboard and /api/dashboard/clusters, from the compliance rows)")
	fmt.Fprintln(out)
	fmt.Fprintln(out, "| fleet | page | server ms (median) | storage requests (median) | bytes | fill time |")
	fmt.Fprintln(out, "|---|---|---|---|---|---|")
	base := map[string]pageResult{}
	for _, size := range []int{100, 10000} {
		res, fill, err := dashboardFleet(c, size)
		if err != nil {
			return fmt.Errorf("dashboard %d: %w", size, err)
		}
		for _, path := range dashboardPages {
			r := res[path]
			fmt.Fprintf(out, "| %d | `%s` | %.1f | %.0f | %d | %s |\n", size, path, r.ms, r.reqs, r.bytes, fill.Round(time.Second))
			if size == 100 {
				base[path] = r
				continue
			}
			sum.add(check{Name: fmt.Sprintf("GET %s ms, 10,000 ÷ 100 clusters", path), Value: r.ms / base[path].ms})
		}
		if size == 10000 {
			f, l := res[dashboardPages[0]], res[dashboardPages[1]]
			sum.add(check{Name: "fleet page server ms, 10,000 clusters", Value: f.ms, Op: opAtMost, Limit: 300})
			sum.add(check{Name: "fleet page storage requests, 10,000 clusters", Value: f.reqs, Op: opAtMost, Limit: 10})
			sum.add(check{Name: "fleet page KB, 10,000 clusters", Value: float64(f.bytes) / 1024, Op: opAtMost, Limit: 300})
			sum.add(check{Name: "clusters page storage requests, 10,000 clusters", Value: l.reqs, Op: opAtMost, Limit: 10})
			fmt.Fprintf(out, "\nratio 10,000 / 100 clusters: fleet page %.2f, clusters page %.2f (server time).\n",
				f.ms/base[dashboardPages[0]].ms, l.ms/base[dashboardPages[1]].ms)
		}
	}
	return nil
}

type pageResult struct {
	ms, reqs float64
	bytes    int
}

// dashboardFleet fills a fleet, refreshes the compliance figures and times
// the pages in process, interleaved, dashboardGets rounds.
func dashboardFleet(c config, size int) (map[string]pageResult, time.Duration, error) {
	f, err := fillCompliance(c, size, "benchdash")
	if err != nil {
		return nil, 0, err
	}
	defer f.close()
	if _, err := f.app.RefreshComplianceNow(context.Background()); err != nil {
		return nil, 0, err
	}
	srv := handlers.New(f.app, handlers.Options{Now: f.clk.now})
	ms, reqs, size1 := map[string][]float64{}, map[string][]float64{}, map[string]int{}
	for range dashboardGets {
		for _, path := range dashboardPages {
			t, n, b, err := timePage(srv, path, f.requests)
			if err != nil {
				return nil, 0, err
			}
			ms[path], reqs[path], size1[path] = append(ms[path], t), append(reqs[path], float64(n)), b
		}
	}
	out := map[string]pageResult{}
	for _, path := range dashboardPages {
		out[path] = pageResult{ms: median(ms[path]), reqs: median(reqs[path]), bytes: size1[path]}
	}
	return out, f.fill, nil
}

// timePage serves one page in process from loopback (as a browser on the
// machine) and answers its time in ms, the storage requests and the bytes.
func timePage(srv *handlers.Server, path string, requests *sweepCounter) (float64, int64, int, error) {
	before := requests.n.Load()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	req.RemoteAddr, req.Host = "127.0.0.1:53211", "127.0.0.1:7071"
	rec := httptest.NewRecorder()
	t := time.Now()
	srv.ServeHTTP(rec, req)
	ms := float64(time.Since(t).Microseconds()) / 1000
	if rec.Code != http.StatusOK {
		return 0, 0, 0, fmt.Errorf("GET %s answered %d: %.300s", path, rec.Code, rec.Body)
	}
	return ms, requests.n.Load() - before, rec.Body.Len(), nil
}
