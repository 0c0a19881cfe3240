package handlers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	azarm "github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	azfake "github.com/Azure/azure-sdk-for-go/sdk/azcore/fake"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/containerservice/armcontainerservice/v9"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/containerservice/armcontainerservice/v9/fake"

	"github.com/upgradewatch/upgradewatch/handlers"
	"github.com/upgradewatch/upgradewatch/internal/arm"
	"github.com/upgradewatch/upgradewatch/internal/azuritetest"
	"github.com/upgradewatch/upgradewatch/internal/fleet"
	"github.com/upgradewatch/upgradewatch/internal/host"
	"github.com/upgradewatch/upgradewatch/internal/state"
	"github.com/upgradewatch/upgradewatch/internal/watch"
)

const (
	prodCluster = "/subscriptions/8f1c2b3a-4d5e-4f60-9a7b-1c2d3e4f5a6b/resourceGroups/rg-platform-weu/providers/Microsoft.ContainerService/managedClusters/aks-prod-weu"
	prodAPI     = "/api/clusters/8f1c2b3a-4d5e-4f60-9a7b-1c2d3e4f5a6b/rg-platform-weu/aks-prod-weu"
	imageOld    = "AKSUbuntu-2204gen2containerd-202410.27.0"
	imageNew    = "AKSUbuntu-2204gen2containerd-202411.12.0"
)

// armWorld is what the fake ARM serves: the mixed cluster of internal/arm's
// fixtures, whose system pool image and the clock the test moves.
type armWorld struct {
	mu        sync.Mutex
	image     string
	nodeOS    string // non-empty: the node OS channel ARM reports
	now       time.Time
	status    int // non-zero: every cluster GET fails with it
	gets      int
	clusterFx armcontainerservice.ManagedCluster
}

func newARMWorld(t *testing.T) *armWorld {
	t.Helper()
	b, err := os.ReadFile("../internal/arm/testdata/cluster-mixed.json")
	if err != nil {
		t.Fatal(err)
	}
	w := &armWorld{image: imageOld}
	if err := json.Unmarshal(b, &w.clusterFx); err != nil {
		t.Fatal(err)
	}
	return w
}

func (w *armWorld) set(image string, now time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.image, w.now = image, now
}

func (w *armWorld) reader() *arm.Reader {
	srv := &fake.ServerFactory{
		ManagedClustersServer: fake.ManagedClustersServer{
			Get: func(_ context.Context, _, _ string, _ *armcontainerservice.ManagedClustersClientGetOptions) (resp azfake.Responder[armcontainerservice.ManagedClustersClientGetResponse], errResp azfake.ErrorResponder) {
				w.mu.Lock()
				defer w.mu.Unlock()
				w.gets++
				if w.status != 0 {
					errResp.SetResponseError(w.status, http.StatusText(w.status))
					return
				}
				mc := w.clusterFx
				b, _ := json.Marshal(mc)
				var cp armcontainerservice.ManagedCluster
				_ = json.Unmarshal(b, &cp)
				if w.nodeOS != "" {
					ch := armcontainerservice.NodeOSUpgradeChannel(w.nodeOS)
					cp.Properties.AutoUpgradeProfile.NodeOSUpgradeChannel = &ch
				}
				for _, p := range cp.Properties.AgentPoolProfiles {
					if *p.Name == "system" {
						img := w.image
						p.NodeImageVersion = &img
					}
				}
				resp.SetResponse(http.StatusOK, armcontainerservice.ManagedClustersClientGetResponse{ManagedCluster: cp}, nil)
				return
			},
		},
		AgentPoolsServer: fake.AgentPoolsServer{
			GetUpgradeProfile: func(_ context.Context, _, _, pool string, _ *armcontainerservice.AgentPoolsClientGetUpgradeProfileOptions) (resp azfake.Responder[armcontainerservice.AgentPoolsClientGetUpgradeProfileResponse], errResp azfake.ErrorResponder) {
				latest := imageNew
				resp.SetResponse(http.StatusOK, armcontainerservice.AgentPoolsClientGetUpgradeProfileResponse{
					AgentPoolUpgradeProfile: armcontainerservice.AgentPoolUpgradeProfile{
						Properties: &armcontainerservice.AgentPoolUpgradeProfileProperties{LatestNodeImageVersion: &latest}}}, nil)
				return
			},
		},
		MaintenanceConfigurationsServer: fake.MaintenanceConfigurationsServer{
			NewListByManagedClusterPager: func(_, _ string, _ *armcontainerservice.MaintenanceConfigurationsClientListByManagedClusterOptions) (resp azfake.PagerResponder[armcontainerservice.MaintenanceConfigurationsClientListByManagedClusterResponse]) {
				name, kind, hours, start := "aksManagedNodeOSUpgradeSchedule", armcontainerservice.WeekDaySunday, int32(4), "01:00"
				resp.AddPage(http.StatusOK, armcontainerservice.MaintenanceConfigurationsClientListByManagedClusterResponse{
					MaintenanceConfigurationListResult: armcontainerservice.MaintenanceConfigurationListResult{Value: []*armcontainerservice.MaintenanceConfiguration{{
						Name: &name,
						Properties: &armcontainerservice.MaintenanceConfigurationProperties{MaintenanceWindow: &armcontainerservice.MaintenanceWindow{
							Schedule:      &armcontainerservice.Schedule{Weekly: &armcontainerservice.WeeklySchedule{DayOfWeek: &kind, IntervalWeeks: ptr(int32(1))}},
							DurationHours: &hours, StartTime: &start,
						}},
					}}},
				}, nil)
				return
			},
		},
	}
	return arm.NewReader(&azfake.TokenCredential{}, arm.Options{
		ClientOptions: &azarm.ClientOptions{ClientOptions: azcore.ClientOptions{
			Transport: fake.NewServerFactoryTransport(srv),
			Retry:     policy.RetryOptions{MaxRetries: -1},
		}},
		Now: func() time.Time { w.mu.Lock(); defer w.mu.Unlock(); return w.now },
	})
}

func ptr[T any](v T) *T { return &v }

func newEnrichEnv(t *testing.T, e watch.Enricher) (*handlers.Server, *state.Store) {
	t.Helper()
	store := newStore(t, state.Options{})
	srv := newServer(store, watch.Options{Enricher: e, EnrichTimeout: 10 * time.Second}, handlers.Options{Now: func() time.Time { return received }})
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	return srv, store
}

func rollingEvent(t *testing.T, id, kind, pool string, at time.Time) []byte {
	t.Helper()
	ev := fmt.Sprintf(`{"id":%q,"topic":%q,"subject":"aks-prod-weu","eventType":"Microsoft.ContainerService.NodePool%s",
		"eventTime":%q,"data":{"nodePoolName":%q},"dataVersion":"1","metadataVersion":"1"}`,
		id, prodCluster, kind, at.Format(time.RFC3339Nano), pool)
	body, err := host.NewEventGridRequest("event", "AksEvents", json.RawMessage(ev), at, "0b7d1f3e-2c4a-4e6b-8d9f-1a2b3c4d5e6f")
	if err != nil {
		t.Fatal(err)
	}
	return body
}

func serve(t *testing.T, srv *handlers.Server, method, path string, body []byte) (int, map[string]any) {
	t.Helper()
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, httptest.NewRequest(method, path, strings.NewReader(string(body))))
	var out map[string]any
	_ = json.Unmarshal(rec.Body.Bytes(), &out)
	return rec.Code, out
}

func waitIdle(t *testing.T, srv *handlers.Server) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.WaitIdle(ctx); err != nil {
		t.Fatalf("enrichment did not finish: %v", err)
	}
}

// The rolling events say only that a pool rolled; the ARM reads around the
// operation record which image it moved from and to.
func TestEnrichmentGivesUpgradeImages(t *testing.T) {
	world := newARMWorld(t)
	srv, store := newEnrichEnv(t, world.reader())
	t0 := time.Date(2026, 11, 22, 1, 0, 0, 0, time.UTC)

	// On demand, the evening before: the pool runs the old image; a newer one is offered.
	world.set(imageOld, t0.Add(-6*time.Hour))
	code, detail := serve(t, srv, http.MethodPost, prodAPI+"/refresh", nil)
	if code != http.StatusOK {
		t.Fatalf("refresh: %d %v", code, detail)
	}
	pool := findPool(t, detail, "system")
	if pool["latestNodeImageVersion"] != imageNew || pool["nodeImageVersion"] != imageOld {
		t.Errorf("after refresh: system pool %v, want %s offered while on %s", pool, imageNew, imageOld)
	}
	if mw, _ := detail["maintenanceWindows"].([]any); len(mw) != 1 {
		t.Errorf("maintenance windows %v, want the node OS schedule", detail["maintenanceWindows"])
	}
	if c := findPool(t, detail, "gpu"); c["gpu"] != true {
		t.Errorf("gpu pool (Standard_NC6s_v3) not flagged as GPU: %v", c)
	}

	// The roll: ARM already reports the new image while it runs.
	world.set(imageNew, t0.Add(2*time.Minute))
	if code, _, sum := invokeRaw(t, srv, rollingEvent(t, "5d6a0f52-7a7e-4f0e-9d40-0b6b1f0c2a11", "RollingStarted", "system", t0)); code != 200 || sum["committed"] != float64(1) {
		t.Fatalf("started: %d %v", code, sum)
	}
	waitIdle(t, srv)
	world.set(imageNew, t0.Add(41*time.Minute))
	if code, _, _ := invokeRaw(t, srv, rollingEvent(t, "a4c1e9b3-1f0d-4c55-b2d8-6e7f8a9b0c12", "RollingSucceeded", "system", t0.Add(40*time.Minute))); code != 200 {
		t.Fatalf("succeeded: %d", code)
	}
	waitIdle(t, srv)

	code, detail = serve(t, srv, http.MethodGet, prodAPI, nil)
	if code != http.StatusOK {
		t.Fatalf("status: %d %v", code, detail)
	}
	ups, _ := detail["upgrades"].([]any)
	if len(ups) != 1 {
		t.Fatalf("upgrades %v, want 1", detail["upgrades"])
	}
	u := ups[0].(map[string]any)
	if u["outcome"] != "Succeeded" || u["imageBefore"] != imageOld || u["imageAfter"] != imageNew {
		t.Errorf("upgrade %v, want Succeeded %s → %s", u, imageOld, imageNew)
	}
	// The Upgrade row itself, as dashboards read it.
	svc := azuritetest.Service(t, azuritetest.Endpoint(t))
	filter := "PartitionKey eq '8f1c2b3a-4d5e-4f60-9a7b-1c2d3e4f5a6b~rg-platform-weu~aks-prod-weu' and Kind eq 'Upgrade'"
	rows := azuritetest.Rows(t, svc.NewClient(store.Tables()[0]), filter)
	if len(rows) != 1 || rows[0]["ImageBefore"] != imageOld || rows[0]["ImageAfter"] != imageNew {
		t.Errorf("Upgrade rows %v, want one with ImageBefore %s and ImageAfter %s", rows, imageOld, imageNew)
	}
	world.mu.Lock()
	gets := world.gets
	world.mu.Unlock()
	if gets != 3 {
		t.Errorf("ARM cluster reads = %d, want 3 (refresh, after start, after end)", gets)
	}
}

// ARM down or refusing: the event is still committed and answered 200; the
// on-demand refresh says what is wrong.
func TestEnrichmentFailureLosesNothing(t *testing.T) {
	world := newARMWorld(t)
	world.status = http.StatusServiceUnavailable
	srv, store := newEnrichEnv(t, world.reader())
	at := time.Date(2026, 11, 22, 1, 0, 0, 0, time.UTC)
	world.set(imageOld, at)
	if code, _, sum := invokeRaw(t, srv, rollingEvent(t, "e7b1c0d2-3f4a-4b5c-8d6e-7f8091a2b3c4", "RollingStarted", "userazl", at)); code != 200 || sum["committed"] != float64(1) {
		t.Fatalf("started with ARM down: %d %v", code, sum)
	}
	waitIdle(t, srv)
	if _, stats := serve(t, srv, http.MethodGet, "/_upgradewatch/stats", nil); stats["enrichmentsFailed"] != float64(1) {
		t.Errorf("stats %v, want one failed enrichment", stats)
	}
	c, err := storeCluster(store)
	if err != nil || c.Pools["userazl"] == nil || c.Pools["userazl"].RollingState != "Rolling" {
		t.Fatalf("the event's state is missing: %v %+v", err, c)
	}
	if code, body := serve(t, srv, http.MethodPost, prodAPI+"/refresh", nil); code != http.StatusServiceUnavailable {
		t.Errorf("refresh with ARM down: %d %v, want 503", code, body)
	}
	world.mu.Lock()
	world.status = http.StatusForbidden
	world.mu.Unlock()
	if code, body := serve(t, srv, http.MethodPost, prodAPI+"/refresh", nil); code != http.StatusBadGateway || !strings.Contains(fmt.Sprint(body["error"]), "read access") {
		t.Errorf("refresh with no role: %d %v, want 502 naming the missing access", code, body)
	}

	off, _ := newEnrichEnv(t, nil)
	if code, body := serve(t, off, http.MethodPost, prodAPI+"/refresh", nil); code != http.StatusNotImplemented {
		t.Errorf("refresh with enrichment off: %d %v, want 501", code, body)
	}
}

func findPool(t *testing.T, detail map[string]any, name string) map[string]any {
	t.Helper()
	pools, _ := detail["pools"].([]any)
	for _, p := range pools {
		if m := p.(map[string]any); m["name"] == name {
			return m
		}
	}
	t.Fatalf("pool %s not in %v", name, detail["pools"])
	return nil
}

func invokeRaw(t *testing.T, srv *handlers.Server, body []byte) (int, host.InvokeResponse, map[string]any) {
	t.Helper()
	return (&env{srv: srv}).invoke(t, "AksEvents", body)
}

func storeCluster(store *state.Store) (*fleet.Cluster, error) {
	return store.Cluster(context.Background(), fleet.ClusterID{SubscriptionID: "8f1c2b3a-4d5e-4f60-9a7b-1c2d3e4f5a6b",
		ResourceGroup: "rg-platform-weu", Name: "aks-prod-weu"})
}
