package handlers_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
	"github.com/google/go-cmp/cmp"

	"github.com/upgradewatch/upgradewatch/handlers"
	"github.com/upgradewatch/upgradewatch/internal/azuritetest"
	"github.com/upgradewatch/upgradewatch/internal/fleet"
	"github.com/upgradewatch/upgradewatch/internal/host"
	"github.com/upgradewatch/upgradewatch/internal/state"
)

// Inputs that Azure and real clusters send and that were once refused (issue 11).

const (
	legacyAPI    = "/api/clusters/2e4f6a8c-0b1d-4e3f-a5c7-9e1b3d5f7a9c/rg-legacy-apps-eus/aks-legacy-eus"
	legacyUbuntu = "AKSUbuntu-1804gen2containerd-2021.05.19"
	legacyWin    = "AKSWindows-2019-17763.1577.201111"
	namesSub     = "5a8e2c71-3d4b-4f6a-9c0e-1b2d3f4a5c6e"
)

func eventFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("../internal/events/testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// deliver wraps one event as the host delivers an eventGridTrigger value and
// returns the invocation's summary.
func (e *env) deliver(t *testing.T, event []byte) map[string]any {
	t.Helper()
	body, err := host.NewEventGridRequest("event", "AksEvents", json.RawMessage(event), received, "2f4e6a8c-1b3d-4f5e-a7c9-0e2f4a6c8e1b")
	if err != nil {
		t.Fatal(err)
	}
	code, _, sum := e.invoke(t, "AksEvents", body)
	if code != http.StatusOK {
		t.Fatalf("status %d, want 200", code)
	}
	return sum
}

// partitions lists the distinct partition keys of the store's Fleet table.
func partitions(t *testing.T, store *state.Store) []string {
	t.Helper()
	svc := azuritetest.Service(t, azuritetest.Endpoint(t))
	pager := svc.NewClient(store.Tables()[0]).NewListEntitiesPager(&aztables.ListEntitiesOptions{Select: to.Ptr("PartitionKey")})
	seen := map[string]bool{}
	for pager.More() {
		page, err := pager.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range page.Entities {
			var e struct{ PartitionKey string }
			if err := json.Unmarshal(b, &e); err != nil {
				t.Fatal(err)
			}
			seen[e.PartitionKey] = true
		}
	}
	out := make([]string, 0, len(seen))
	for k := range seen {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// The same AKS event about a cluster whose resource group name uses what Azure
// allows (Unicode letters, periods, parentheses, underscores), delivered in the
// Event Grid schema to one app and in the CloudEvents schema to another, gives
// the same partition and the same state; delivered to one app in both schemas,
// the second is a duplicate of the first.
func TestAksEventsResourceGroupNamesBothSchemas(t *testing.T) {
	cases := []struct {
		eg, ce  string
		cluster fleet.ClusterID
		pool    string
	}{
		{"eg-nodepool-rolling-started-rg-munich.json", "ce-nodepool-rolling-started-rg-munich.json",
			fleet.ClusterID{SubscriptionID: namesSub, ResourceGroup: "rg-münchen-prod", Name: "aks-muc-prod-01"}, "system"},
		{"eg-nodepool-rolling-started-rg-munich.json", "ce-nodepool-rolling-started-rg-munich-escaped.json",
			fleet.ClusterID{SubscriptionID: namesSub, ResourceGroup: "rg-münchen-prod", Name: "aks-muc-prod-01"}, "system"},
		{"eg-nodepool-rolling-started-rg-fleet-west.json", "ce-nodepool-rolling-started-rg-fleet-west.json",
			fleet.ClusterID{SubscriptionID: namesSub, ResourceGroup: "RG.Fleet_(west)-2", Name: "aks-fleet-w2"}, "spot01"},
	}
	for _, tc := range cases {
		t.Run(tc.ce, func(t *testing.T) {
			eg, ce := newEnv(t), newEnv(t)
			if sum := eg.deliver(t, eventFixture(t, tc.eg)); sum["committed"] != float64(1) {
				t.Fatalf("Event Grid schema: summary %v, want 1 committed", sum)
			}
			if sum := ce.deliver(t, eventFixture(t, tc.ce)); sum["committed"] != float64(1) {
				t.Fatalf("CloudEvents schema: summary %v, want 1 committed", sum)
			}
			want := []string{tc.cluster.Key()}
			for name, e := range map[string]*env{"Event Grid": eg, "CloudEvents": ce} {
				if got := partitions(t, e.store); !cmp.Equal(got, want) {
					t.Errorf("%s: Fleet partitions %q, want %q", name, got, want)
				}
			}
			a, err := eg.store.Cluster(context.Background(), tc.cluster)
			if err != nil {
				t.Fatal(err)
			}
			b, err := ce.store.Cluster(context.Background(), tc.cluster)
			if err != nil {
				t.Fatal(err)
			}
			if a.ID != tc.cluster || a.Pools[tc.pool].RollingState != fleet.RollingActive {
				t.Errorf("cluster %+v pool %s rolling %q, want %+v %q", a.ID, tc.pool, a.Pools[tc.pool].RollingState, tc.cluster, fleet.RollingActive)
			}
			if diff := cmp.Diff(a, b, cmp.Exporter(func(reflect.Type) bool { return true })); diff != "" {
				t.Errorf("state from the Event Grid schema (-) and from CloudEvents (+) differ:\n%s", diff)
			}
			if sum := eg.deliver(t, eventFixture(t, tc.ce)); sum["duplicates"] != float64(1) || sum["committed"] != float64(0) {
				t.Errorf("the CloudEvents form after the Event Grid one: summary %v, want a duplicate", sum)
			}
			// The Status API finds the cluster by the name in its (escaped) path.
			path := "/api/clusters/" + tc.cluster.SubscriptionID + "/" + url.PathEscape(tc.cluster.ResourceGroup) + "/" + tc.cluster.Name
			code, res := serve(t, eg.srv, http.MethodGet, path, nil)
			if c, _ := res["cluster"].(map[string]any); code != http.StatusOK || c["key"] != tc.cluster.Key() || c["resourceGroup"] != tc.cluster.ResourceGroup {
				t.Errorf("GET %s: %d %v, want cluster %s", path, code, res, tc.cluster.Key())
			}
		})
	}
}

// A CloudEvent whose attribute names are not all lower case (Azure's own
// sample spells specVersion) is committed.
func TestAksEventsSpecVersionCamelCase(t *testing.T) {
	e := newEnv(t)
	if sum := e.deliver(t, eventFixture(t, "ce-new-kubernetes-version-available-specVersion.json")); sum["committed"] != float64(1) {
		t.Fatalf("summary %v, want 1 committed", sum)
	}
	c, err := e.store.Cluster(context.Background(), fleet.ClusterID{SubscriptionID: "c2e8f4a6-91d3-4b7e-a5f0-6d3b9e1c8f24", ResourceGroup: "Platform-Shared-NEU", Name: "aks-neu-shared"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Versions.LatestSupported != "1.34.2" || c.Versions.LatestPreview != "1.35.0" {
		t.Errorf("versions %+v, want latest supported 1.34.2 and preview 1.35.0", c.Versions)
	}
}

// Maintenance of a virtual machine or a scale set arrives with the historic AKS
// type: it is recorded as unsupported (no cluster: in Rejected with that
// disposition) and answered 200, never rejected as malformed.
func TestAksEventsMaintenanceOfOtherResources(t *testing.T) {
	e := newEnv(t)
	files := []string{
		"eg-maintenance-vm-freeze-completed.json", "ce-maintenance-vm-reboot-scheduled.json",
		"eg-maintenance-vmss-freeze-started.json", "ce-maintenance-vmss-freeze-started.json",
	}
	for _, f := range files {
		if sum := e.deliver(t, eventFixture(t, f)); sum["unsupported"] != float64(1) || sum["rejected"] != float64(0) {
			t.Errorf("%s: summary %v, want 1 unsupported", f, sum)
		}
	}
	rej, err := e.store.Rejections(context.Background(), received)
	if err != nil {
		t.Fatal(err)
	}
	if len(rej) != len(files) {
		t.Fatalf("%d records in Rejected, want %d", len(rej), len(files))
	}
	for _, r := range rej {
		if r.Disposition != state.DispositionUnsupported || !strings.HasSuffix(r.EventType, "MaintenanceResources.ScheduledEventEmitted") {
			t.Errorf("record %+v, want disposition Unsupported for a maintenance event", r)
		}
	}
	// One about a managed cluster keeps working as before.
	if sum := e.deliver(t, eventFixture(t, "eg-maintenance-scheduled-historic.json")); sum["committed"] != float64(1) {
		t.Errorf("historic AKS scheduled event: summary %v, want 1 committed", sum)
	}
}

// A cluster created before kubernetes.azure.com/agentpool existed: its nodes
// carry only agentpool=<pool> and legacy image versions; every node gets its
// row with the right pool and version, and the virtual node is named.
func TestNodeInventoryOlderLabels(t *testing.T) {
	clk := &clock{t: time.Date(2026, 10, 5, 8, 0, 0, 0, time.UTC)}
	srv, _ := newClockEnv(t, clk, 0)
	code, res := serve(t, srv, http.MethodPost, legacyAPI+"/nodes", inventoryFixture(t, "nodes-older-labels.json"))
	if code != http.StatusOK || res["result"] != "applied" || res["nodes"] != float64(4) || res["skipped"] != float64(1) {
		t.Fatalf("older labels: %d %v", code, res)
	}
	wantSkipped := []any{map[string]any{"name": "virtual-node-aci-linux", "reason": "virtual node (type=virtual-kubelet), not an AKS agent node"}}
	if diff := cmp.Diff(wantSkipped, res["skippedNodes"]); diff != "" {
		t.Errorf("skippedNodes (-want +got):\n%s", diff)
	}
	wantSpread := map[string]poolView{
		"agentpool": {3, 3, 0, 0, map[string]int{legacyUbuntu: 3}},
		"npwin":     {1, 1, 0, 0, map[string]int{legacyWin: 1}},
	}
	if diff := cmp.Diff(wantSpread, spreads(t, res["pools"])); diff != "" {
		t.Errorf("spread (-want +got):\n%s", diff)
	}
	wantNodes := map[string][2]string{
		"aks-agentpool-20474252-vmss000000": {"agentpool", legacyUbuntu},
		"aks-agentpool-20474252-vmss000001": {"agentpool", legacyUbuntu},
		"aks-agentpool-20474252-vmss000002": {"agentpool", legacyUbuntu},
		"aksnpwin000000":                    {"npwin", legacyWin},
	}
	if diff := cmp.Diff(wantNodes, nodeRows(t, srv, legacyAPI)); diff != "" {
		t.Errorf("node rows (-want +got):\n%s", diff)
	}
}

// A list mixing label generations, a virtual node, a machine with no AKS
// labels and a pool label AKS could not have set: every listed node is either
// kept or named with its reason.
func TestNodeInventoryMixedGenerations(t *testing.T) {
	clk := &clock{t: time.Date(2026, 10, 5, 8, 0, 0, 0, time.UTC)}
	srv, _ := newClockEnv(t, clk, 0)
	body := inventoryFixture(t, "nodes-mixed-generations.json")
	code, res := serve(t, srv, http.MethodPost, legacyAPI+"/nodes", body)
	if code != http.StatusOK || res["nodes"] != float64(6) || res["skipped"] != float64(3) {
		t.Fatalf("mixed generations: %d %v", code, res)
	}
	var list struct {
		Items []struct {
			Metadata struct{ Name string }
		}
	}
	if err := json.Unmarshal(body, &list); err != nil {
		t.Fatal(err)
	}
	rows := nodeRows(t, srv, legacyAPI)
	named := map[string]string{}
	for _, s := range res["skippedNodes"].([]any) {
		m := s.(map[string]any)
		named[m["name"].(string)] = m["reason"].(string)
	}
	for _, it := range list.Items {
		_, kept := rows[it.Metadata.Name]
		reason, skipped := named[it.Metadata.Name]
		if kept == skipped || (skipped && reason == "") {
			t.Errorf("node %s: kept %v, skipped %v (%q); want exactly one, with a reason when skipped", it.Metadata.Name, kept, skipped, reason)
		}
	}
	if rows["aks-apps2022-41526374-vmss000000"] != [2]string{"apps2022", "AKSUbuntu-1804gen2containerd-2022.08.29"} {
		t.Errorf("newer-label node row %v", rows["aks-apps2022-41526374-vmss000000"])
	}
}

// A complete list with no usable node is refused with 400 and recorded; the
// refusal names every node and why.
func TestNodeInventoryOnlyUnusableNodes(t *testing.T) {
	clk := &clock{t: time.Date(2026, 10, 5, 8, 0, 0, 0, time.UTC)}
	srv, store := newClockEnv(t, clk, 0)
	code, res := serve(t, srv, http.MethodPost, legacyAPI+"/nodes", inventoryFixture(t, "malformed/only-unusable-nodes.json"))
	msg, _ := res["error"].(string)
	if code != http.StatusBadRequest || !strings.Contains(msg, `"gpu-selfhosted-01": neither the kubernetes.azure.com/agentpool nor the agentpool label`) ||
		!strings.Contains(msg, `"virtual-node-aci-linux": virtual node`) {
		t.Fatalf("got %d %v, want 400 naming both nodes", code, res)
	}
	rej, err := store.Rejections(context.Background(), clk.now())
	if err != nil {
		t.Fatal(err)
	}
	if len(rej) != 1 || rej[0].Reason != msg {
		t.Errorf("rejections %+v, want one with the answer's reason", rej)
	}
}

// nodeRows reads GET …/nodes into node name → {pool, nodeImageVersion}.
func nodeRows(t *testing.T, srv *handlers.Server, api string) map[string][2]string {
	t.Helper()
	code, res := serve(t, srv, http.MethodGet, api+"/nodes", nil)
	list, ok := res["nodes"].([]any)
	if code != http.StatusOK || !ok {
		t.Fatalf("GET nodes: %d %v", code, res)
	}
	rows := map[string][2]string{}
	for _, n := range list {
		m := n.(map[string]any)
		pool, _ := m["pool"].(string)
		img, _ := m["nodeImageVersion"].(string)
		rows[m["name"].(string)] = [2]string{pool, img}
	}
	return rows
}
