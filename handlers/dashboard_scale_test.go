package handlers_test

import (
	"strings"
	"testing"
	"time"
)

// With the compliance figures kept, the fleet page is drawn from the
// fleet's aggregate row and the clusters page from the summary rows: their
// storage requests stay the same from 2 clusters to 32 (no cluster
// partition is read), and their figures match what was fed in.
func TestDashboardAnswersFromComplianceRows(t *testing.T) {
	now := time.Date(2026, 5, 6, 9, 0, 0, 0, time.UTC)
	clk := &clock{t: now}
	e := newComplianceEnv(t, clk, "")
	e.ingestFixtures(t, now)
	e.sweep(t, now)
	fleetSmall, clustersSmall := e.dashRequests(t, "/api/dashboard"), e.dashRequests(t, "/api/dashboard/clusters")

	e.ingestGenerated(t, 0, 30, now)
	clk.set(now.Add(16 * time.Minute))
	e.sweep(t, clk.now())
	before := e.requests.Load()
	_, body, _ := page(t, e.srv, "/api/dashboard")
	fleetBig := e.requests.Load() - before
	for _, want := range []string{
		"<dt>Pools current</dt><dd>33 of 34<", // aks-weu-prod-01's 3 pools, its system pool Behind; 31 of one pool
		"<dt>Days behind, median</dt><dd>14 d<",
		"Figures as of the compliance refresh at 2026-05-06 09:16 UTC",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("fleet page lacks %q", want)
		}
	}
	if rows := rowsOf(t, body, "buckets"); len(rows) != 2 || !strings.HasPrefix(rows[0], "Behind|1|") || !strings.HasPrefix(rows[1], "UpToDate|31|") {
		t.Errorf("buckets rows %q: want Behind 1, UpToDate 31", rows)
	}
	if grid := rowsOf(t, body, "grid"); len(grid) != 32 || !strings.HasPrefix(grid[0], "aks-weu-prod-01|Behind|14") {
		t.Errorf("grid: %d rows, first %q; want 32, aks-weu-prod-01 Behind 14 days first", len(grid), grid[:min(1, len(grid))])
	}

	before = e.requests.Load()
	_, body, _ = page(t, e.srv, "/api/dashboard/clusters?status=Behind")
	clustersBig := e.requests.Load() - before
	rows := rowsOf(t, body, "clusters")
	if len(rows) != 1 || !strings.HasPrefix(rows[0], "aks-weu-prod-01|7f3c2a91-5b4e-4d1f-9e8a-2c6b0d4f1a37|rg-aks-weu-prod|westeurope|patch|NodeImage|") ||
		!strings.HasSuffix(rows[0], "|never seen|1|3|3 (worst: Warning)|Behind") {
		t.Errorf("clusters filtered Behind: %q; want aks-weu-prod-01 with its channels, 1 of 3 pools behind, 3 findings, Behind", rows)
	}
	// The counter also sees the app's background writes (index entries
	// behind a commit), hence bounds, not exact figures. The fleet page
	// reads the fleet's aggregate, the history and the open findings.
	if fleetSmall > 4 || fleetBig > 4 {
		t.Errorf("fleet page storage requests: %d at 2 clusters, %d at 32; want at most 4 each", fleetSmall, fleetBig)
	}
	if clustersSmall > 2 || clustersBig > 2 {
		t.Errorf("clusters page storage requests: %d at 2 clusters, %d at 32; want one page of summary rows each", clustersSmall, clustersBig)
	}
}

// dashRequests GETs a page and answers the storage requests it cost.
func (e *complianceEnv) dashRequests(t *testing.T, path string) int64 {
	t.Helper()
	before := e.requests.Load()
	if code, body, _ := page(t, e.srv, path); code != 200 {
		t.Fatalf("GET %s: %d\n%s", path, code, body)
	}
	return e.requests.Load() - before
}
