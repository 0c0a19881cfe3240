package handlers_test

import (
	"context"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/upgradewatch/upgradewatch/handlers"
	"github.com/upgradewatch/upgradewatch/internal/state"
	"github.com/upgradewatch/upgradewatch/internal/watch"
)

const (
	shopAPI = "/api/clusters/7d3c1a52-9f0e-4b8a-a1c2-3e5f6a7b8c9d/rg-shop-prod-weu/aks-shop-prod-weu"
	imgU    = "AKSUbuntu-2204gen2containerd-202410.27.0"
	imgUSP  = "AKSUbuntu-2204gen2containerd-202410.27.0-2024.12.01"
	imgA1   = "AKSAzureLinux-V3gen2-202609.15.0"
	imgA2   = "AKSAzureLinux-V3gen2-202610.02.0"
	imgW    = "AKSWindows-2022-containerd-20348.3692.250518"
)

// clock is a settable time for the server under test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.t = t }

func newClockEnv(t *testing.T, c *clock, maxInventory int64) (*handlers.Server, *state.Store) {
	t.Helper()
	store := newStore(t, state.Options{})
	return newServer(store, watch.Options{}, handlers.Options{Now: c.now, MaxInventoryBytes: maxInventory}), store
}

func inventoryFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("../internal/inventory/testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// spread flattens the pools of a Status answer to pool → version → nodes, plus
// the Ready and quarantined counts.
type poolView struct {
	Nodes, Ready, Quarantined, Cordoned int
	Versions                            map[string]int
}

func spreads(t *testing.T, pools any) map[string]poolView {
	t.Helper()
	out := map[string]poolView{}
	list, _ := pools.([]any)
	for _, p := range list {
		m := p.(map[string]any)
		if nodes, ok := m["nodes"].(map[string]any); ok { // cluster detail: pools[].nodes
			m = nodes
		}
		v := poolView{Nodes: int(m["nodes"].(float64)), Ready: int(m["ready"].(float64)),
			Quarantined: int(m["quarantined"].(float64)), Cordoned: int(m["cordoned"].(float64)), Versions: map[string]int{}}
		for _, vc := range m["versions"].([]any) {
			e := vc.(map[string]any)
			v.Versions[e["version"].(string)] = int(e["nodes"].(float64))
		}
		out[m["pool"].(string)] = v
	}
	return out
}

// A mixed cluster's `kubectl get nodes -o json`, then the same cluster a day
// later: the Status API reports exactly the versions, the spread and the history.
func TestNodeInventoryMixedCluster(t *testing.T) {
	day1 := time.Date(2026, 10, 5, 8, 0, 0, 0, time.UTC)
	clk := &clock{t: day1}
	srv, _ := newClockEnv(t, clk, 0)

	code, res := serve(t, srv, http.MethodPost, shopAPI+"/nodes", inventoryFixture(t, "nodes-mixed.json"))
	if code != http.StatusOK || res["result"] != "applied" || res["nodes"] != float64(9) || res["skipped"] != float64(1) ||
		res["changedNodes"] != float64(9) || res["transactions"] != float64(1) {
		t.Fatalf("first snapshot: %d %v", code, res)
	}
	want1 := map[string]poolView{
		"system":  {3, 3, 0, 0, map[string]int{imgU: 2, imgUSP: 1}},
		"azlinux": {4, 3, 1, 1, map[string]int{imgA1: 2, imgA2: 2}},
		"win":     {2, 2, 0, 0, map[string]int{imgW: 2}},
	}
	if diff := cmp.Diff(want1, spreads(t, res["pools"])); diff != "" {
		t.Errorf("spread in the answer (-want +got):\n%s", diff)
	}

	code, nodes := serve(t, srv, http.MethodGet, shopAPI+"/nodes", nil)
	if code != http.StatusOK {
		t.Fatalf("GET nodes: %d %v", code, nodes)
	}
	if diff := cmp.Diff(want1, spreads(t, nodes["pools"])); diff != "" {
		t.Errorf("spread from GET …/nodes (-want +got):\n%s", diff)
	}
	got := map[string]string{}
	for _, n := range nodes["nodes"].([]any) {
		m := n.(map[string]any)
		got[m["name"].(string)] = m["nodeImageVersion"].(string)
		if m["name"] == "aks-azlinux-23456789-vmss000004" && m["quarantined"] != true {
			t.Errorf("vmss000004 not reported quarantined: %v", m)
		}
		if m["name"] == "aks-azlinux-23456789-vmss000007" && m["ready"] != "False" {
			t.Errorf("vmss000007 not reported NotReady: %v", m)
		}
		if m["versionSince"] != "2026-10-05T08:00:00Z" {
			t.Errorf("%s versionSince %v, want the snapshot time", m["name"], m["versionSince"])
		}
	}
	wantNodes := map[string]string{
		"aks-azlinux-23456789-vmss000003": imgA1, "aks-azlinux-23456789-vmss000004": imgA1,
		"aks-azlinux-23456789-vmss000006": imgA2, "aks-azlinux-23456789-vmss000007": imgA2,
		"aks-system-12345678-vmss000000": imgU, "aks-system-12345678-vmss000001": imgU, "aks-system-12345678-vmss000002": imgUSP,
		"akswin000000": imgW, "akswin000001": imgW,
	}
	if diff := cmp.Diff(wantNodes, got); diff != "" {
		t.Errorf("node versions (-want +got):\n%s", diff)
	}

	// The cluster's status carries the same spread per pool.
	code, detail := serve(t, srv, http.MethodGet, shopAPI, nil)
	if code != http.StatusOK {
		t.Fatalf("GET cluster: %d %v", code, detail)
	}
	if diff := cmp.Diff(want1, spreads(t, detail["pools"])); diff != "" {
		t.Errorf("spread in the cluster status (-want +got):\n%s", diff)
	}

	// A day later.
	day2 := day1.Add(24 * time.Hour)
	clk.set(day2)
	code, res = serve(t, srv, http.MethodPost, shopAPI+"/nodes", inventoryFixture(t, "nodes-mixed-next.json"))
	if code != http.StatusOK || res["result"] != "applied" || res["versionChanges"] != float64(2) || res["changedNodes"] != float64(5) {
		t.Fatalf("second snapshot: %d %v (want 2 version changes; 5 nodes: 2 reimaged, 1 gone, 1 new, 1 Ready again)", code, res)
	}
	code, nodes = serve(t, srv, http.MethodGet, shopAPI+"/nodes?gone=true", nil)
	if code != http.StatusOK {
		t.Fatalf("GET nodes: %d", code)
	}
	want2 := map[string]poolView{
		"system":  {3, 3, 0, 0, map[string]int{imgU: 1, imgUSP: 2}},
		"azlinux": {4, 4, 0, 0, map[string]int{imgA2: 4}},
		"win":     {2, 2, 0, 0, map[string]int{imgW: 2}},
	}
	if diff := cmp.Diff(want2, spreads(t, nodes["pools"])); diff != "" {
		t.Errorf("spread after the second snapshot (-want +got):\n%s", diff)
	}
	type change struct{ Node, From, To, At string }
	var hist []change
	for _, h := range nodes["history"].([]any) {
		m := h.(map[string]any)
		hist = append(hist, change{m["node"].(string), m["from"].(string), m["to"].(string), m["observedAt"].(string)})
	}
	wantHist := []change{
		{"aks-azlinux-23456789-vmss000003", imgA1, imgA2, "2026-10-06T08:00:00Z"},
		{"aks-system-12345678-vmss000001", imgU, imgUSP, "2026-10-06T08:00:00Z"},
	}
	if diff := cmp.Diff(wantHist, hist); diff != "" {
		t.Errorf("history (-want +got):\n%s", diff)
	}
	gone := false
	for _, n := range nodes["nodes"].([]any) {
		if m := n.(map[string]any); m["name"] == "aks-azlinux-23456789-vmss000004" {
			gone = m["gone"] == true && m["goneAt"] == "2026-10-06T08:00:00Z"
		}
	}
	if !gone {
		t.Errorf("the quarantined node deleted on day 2 is not kept as gone")
	}
	code, one := serve(t, srv, http.MethodGet, shopAPI+"/nodes/aks-system-12345678-vmss000001", nil)
	if h, _ := one["history"].([]any); code != http.StatusOK || len(h) != 1 {
		t.Errorf("one node's history: %d %v", code, one)
	}
	if n, _ := one["node"].(map[string]any); n["nodeImageVersion"] != imgUSP || n["versionSince"] != "2026-10-06T08:00:00Z" {
		t.Errorf("one node: %v, want %s since the second snapshot", one["node"], imgUSP)
	}
	if code, _ := serve(t, srv, http.MethodGet, shopAPI+"/nodes/aks-system-12345678-vmss000099", nil); code != http.StatusNotFound {
		t.Errorf("unknown node: %d, want 404", code)
	}

	// The same snapshot again (a retry) is a duplicate and writes nothing.
	code, res = serve(t, srv, http.MethodPost, shopAPI+"/nodes", inventoryFixture(t, "nodes-mixed-next.json"))
	if code != http.StatusOK || res["result"] != "duplicate" || res["transactions"] != float64(0) {
		t.Errorf("redelivered snapshot: %d %v", code, res)
	}
}

func TestNodeInventoryRejects(t *testing.T) {
	clk := &clock{t: time.Date(2026, 10, 5, 8, 0, 0, 0, time.UTC)}
	srv, store := newClockEnv(t, clk, 64<<10)
	cases := []struct {
		name, path string
		body       []byte
		status     int
		reason     string
	}{
		{"not a node list", shopAPI + "/nodes", []byte(`{"kind":"PodList","items":[]}`), 400, "PodList"},
		{"malformed JSON", shopAPI + "/nodes", []byte(`{"kind":"List","items":[`), 400, "JSON"},
		{"too large", shopAPI + "/nodes", inventoryFixture(t, "nodes-mixed.json"), 413, "larger than"},
		{"bad cluster name", "/api/clusters/7d3c1a52-9f0e-4b8a-a1c2-3e5f6a7b8c9d/rg/aks'x/nodes", []byte(`{}`), 400, "cluster name"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, res := serve(t, srv, http.MethodPost, tc.path, tc.body)
			if code != tc.status || !strings.Contains(strings.ToLower(res["error"].(string)), strings.ToLower(tc.reason)) {
				t.Errorf("got %d %v, want %d mentioning %q", code, res, tc.status, tc.reason)
			}
		})
	}
	rej, err := store.Rejections(context.Background(), clk.now())
	if err != nil {
		t.Fatal(err)
	}
	if len(rej) != 3 {
		t.Errorf("%d rejections recorded, want 3 (the bad cluster name is refused before anything is read)", len(rej))
	}
}
