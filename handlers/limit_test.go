package handlers_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/upgradewatch/upgradewatch/handlers"
	"github.com/upgradewatch/upgradewatch/internal/state"
	"github.com/upgradewatch/upgradewatch/internal/watch"
)

// shopNodesAPI is the nodes route of the i-th shop cluster.
func shopNodesAPI(i int) string {
	return fmt.Sprintf("/api/clusters/7d3c1a52-9f0e-4b8a-a1c2-3e5f6a7b8c9d/rg-shop-prod-weu/aks-shop-%02d/nodes", i)
}

// stats reads the server's counters.
func stats(t *testing.T, srv *handlers.Server) map[string]float64 {
	t.Helper()
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/_upgradewatch/stats", nil))
	var out map[string]float64
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatalf("stats: %v: %s", err, rec.Body.String())
	}
	return out
}

func post(srv *handlers.Server, path string, body io.Reader, length int64) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, path, body)
	req.ContentLength = length
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, req)
	return rec
}

// Sixteen large node snapshots at once: the bytes in flight never exceed the
// budget, those over it wait their turn, and every one commits.
func TestParallelSnapshotsStayWithinTheBudget(t *testing.T) {
	snapshot := inventoryFixture(t, "nodes-mixed.json")
	size := int64(len(snapshot))
	budget := 3*size + size/2 // three at a time
	clk := &clock{t: time.Date(2026, 10, 5, 8, 0, 0, 0, time.UTC)}
	store := newStore(t, state.Options{})
	srv := newServer(store, watch.Options{}, handlers.Options{Now: clk.now, MaxInflightBytes: budget, InflightWait: time.Minute})

	var wg sync.WaitGroup
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if rec := post(srv, shopNodesAPI(i), bytes.NewReader(snapshot), size); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"applied"`) {
				t.Errorf("snapshot %d: %d %s", i, rec.Code, rec.Body.String())
			}
		}()
	}
	wg.Wait()
	st := stats(t, srv)
	if peak := int64(st["inflightPeakBytes"]); peak > budget || peak < size {
		t.Errorf("peak bytes in flight = %d, want at least one snapshot (%d) and at most the budget (%d)", peak, size, budget)
	}
	if st["inflightBytes"] != 0 || st["busyAnswers"] != 0 {
		t.Errorf("after the burst: %v, want nothing in flight and no busy answer (each waited its turn)", st)
	}
}

// While the budget is full, more snapshots and Event Grid deliveries are
// answered 503 (with Retry-After) instead of piling up; retried, they commit:
// nothing is lost.
func TestFullBudgetAnswersBusyAndRetriesCommit(t *testing.T) {
	snapshot := inventoryFixture(t, "nodes-mixed.json")
	size := int64(len(snapshot))
	clk := &clock{t: time.Date(2026, 10, 5, 8, 0, 0, 0, time.UTC)}
	store := newStore(t, state.Options{})
	srv := newServer(store, watch.Options{}, handlers.Options{Now: clk.now, MaxInflightBytes: 2 * size, InflightWait: 100 * time.Millisecond})

	// Two snapshots whose bodies are still arriving hold the whole budget.
	var held sync.WaitGroup
	writers := make([]*io.PipeWriter, 2)
	for i := range writers {
		pr, pw := io.Pipe()
		writers[i] = pw
		held.Add(1)
		go func() {
			defer held.Done()
			if rec := post(srv, shopNodesAPI(i), pr, size); rec.Code != http.StatusOK {
				t.Errorf("slow snapshot %d: %d %s", i, rec.Code, rec.Body.String())
			}
		}()
	}
	deadline := time.Now().Add(30 * time.Second)
	for int64(stats(t, srv)["inflightBytes"]) != 2*size {
		if time.Now().After(deadline) {
			t.Fatalf("the slow snapshots never took the budget: %v", stats(t, srv))
		}
		time.Sleep(5 * time.Millisecond)
	}

	// Everything else is turned away, to be retried.
	busy := []int{2, 3, 4, 5, 6, 7}
	for _, i := range busy {
		rec := post(srv, shopNodesAPI(i), bytes.NewReader(snapshot), size)
		if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" {
			t.Fatalf("snapshot %d with the budget full: %d (Retry-After %q), want 503 with Retry-After", i, rec.Code, rec.Header().Get("Retry-After"))
		}
	}
	event := rollingFailed(t, 1, clk.now().Add(-time.Minute))
	rec := post(srv, "/AksEvents", bytes.NewReader(event), int64(len(event)))
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), `"Logs":["busy`) {
		t.Fatalf("event with the budget full: %d %s, want 503 in the host's envelope", rec.Code, rec.Body.String())
	}
	if st := stats(t, srv); st["busyAnswers"] != float64(len(busy)+1) || int64(st["inflightPeakBytes"]) > 2*size {
		t.Errorf("stats = %v, want %d busy answers and the peak within the budget", st, len(busy)+1)
	}

	// The slow bodies arrive; then the retries commit.
	for _, pw := range writers {
		go func() { _, _ = pw.Write(snapshot); _ = pw.Close() }()
	}
	held.Wait()
	for _, i := range busy {
		if rec := post(srv, shopNodesAPI(i), bytes.NewReader(snapshot), size); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"applied"`) {
			t.Errorf("retried snapshot %d: %d %s", i, rec.Code, rec.Body.String())
		}
	}
	if code, _, sum := invokeRaw(t, srv, event); code != http.StatusOK || sum["committed"] != float64(1) {
		t.Errorf("retried event: %d %v", code, sum)
	}
	for i := range 8 {
		req := httptest.NewRequest(http.MethodGet, shopNodesAPI(i), nil)
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		var out struct {
			Nodes []any `json:"nodes"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &out); rec.Code != http.StatusOK || err != nil || len(out.Nodes) != 9 {
			t.Errorf("cluster %d after the retries: %d, %d nodes, want 9", i, rec.Code, len(out.Nodes))
		}
	}
}
