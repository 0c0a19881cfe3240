package handlers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/upgradewatch/upgradewatch/handlers"
	"github.com/upgradewatch/upgradewatch/internal/azuritetest"
	"github.com/upgradewatch/upgradewatch/internal/host"
	"github.com/upgradewatch/upgradewatch/internal/state"
	"github.com/upgradewatch/upgradewatch/internal/watch"
)

// newPatchServer is the handler over a store and an image catalogue on
// tables of their own, at the clock given.
func newPatchServer(t *testing.T, now time.Time) *handlers.Server {
	t.Helper()
	svc := azuritetest.Service(t, azuritetest.Endpoint(t))
	prefix := azuritetest.Prefix(t)
	store := state.New(svc, state.Options{TablePrefix: prefix, CacheSize: 100})
	t.Cleanup(store.Close)
	clock := func() time.Time { return now }
	cat := state.NewCatalogue(svc, state.CatalogueOptions{TablePrefix: prefix, Now: clock})
	azuritetest.DropTables(t, svc, append(store.Tables(), cat.Table())...)
	ctx := context.Background()
	if err := store.EnsureTables(ctx); err != nil {
		t.Fatal(err)
	}
	if err := cat.EnsureTable(ctx); err != nil {
		t.Fatal(err)
	}
	return newServer(store, watch.Options{Catalogue: cat}, handlers.Options{Now: clock})
}

// eventEnvelope wraps an Event Grid fixture as the host delivers it.
func eventEnvelope(t *testing.T, fixture string, at time.Time) []byte {
	t.Helper()
	body, err := host.NewEventGridRequest("event", "AksEvents", json.RawMessage(readFixture(t, fixture)), at,
		"3a9c5e71-2b4d-4f6a-8c0e-1d2f3a4b5c6d")
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// A resource notification shows 202604.22.0 on another cluster of West
// Europe; the cluster whose system pool still runs 202604.07.0 is Behind,
// fourteen days after the newer image's release, and its Azure Linux pool,
// with no newer image of its family in the fleet, is UpToDate.
func TestStatusShowsPatchStatus(t *testing.T) {
	now := time.Date(2026, 5, 6, 9, 0, 0, 0, time.UTC)
	srv := newPatchServer(t, now)
	for _, fx := range []string{"patch/eg-cluster-weu-shop-02-newer-image.json", "patch/eg-cluster-weu-prod-01.json"} {
		if code, _, sum := invokeRaw(t, srv, eventEnvelope(t, fx, now)); code != http.StatusOK || sum["committed"] != float64(1) {
			t.Fatalf("%s: %d %v", fx, code, sum)
		}
	}
	code, detail := serve(t, srv, http.MethodGet, "/api/clusters/7f3c2a91-5b4e-4d1f-9e8a-2c6b0d4f1a37/rg-aks-weu-prod/aks-weu-prod-01", nil)
	if code != http.StatusOK {
		t.Fatalf("status: %d %v", code, detail)
	}
	sys, _ := findPool(t, detail, "system")["patch"].(map[string]any)
	if sys == nil {
		t.Fatalf("system pool has no patch object: %v", findPool(t, detail, "system"))
	}
	firstSeen := "2026-04-24T03:12:44.512Z"
	if sys["status"] != "Behind" || sys["latestImage"] != "AKSUbuntu-2204gen2containerd-202604.22.0" ||
		sys["daysBehind"] != float64(14) || sys["latestSince"] != firstSeen || sys["releasedAt"] != "2026-04-22T00:00:00Z" {
		t.Errorf("system pool patch %v: want Behind on 202604.22.0, first seen %s, released 2026-04-22, 14 days behind", sys, firstSeen)
	}
	if r, _ := sys["reason"].(string); !strings.Contains(r, "202604.22.0") {
		t.Errorf("reason %q does not name the newer image", r)
	}
	ev, _ := sys["evidence"].(map[string]any)
	if ev["region"] != "westeurope" || ev["family"] != "AKSUbuntu-2204gen2containerd" || !strings.Contains(ev["latestFrom"].(string), "notification") {
		t.Errorf("evidence %v: want westeurope, the Ubuntu family, from the fleet catalogue (a notification)", ev)
	}
	azl, _ := findPool(t, detail, "userazl")["patch"].(map[string]any)
	if azl["status"] != "UpToDate" || azl["daysBehind"] != float64(0) {
		t.Errorf("Azure Linux pool patch %v, want UpToDate, 0 days behind", azl)
	}
	if _, ok := detail["patchUnavailable"]; ok {
		t.Errorf("patchUnavailable set with the catalogue up: %v", detail["patchUnavailable"])
	}
}

// rollingWEU is a NodePoolRolling* event of aks-weu-prod-01's system pool.
func rollingWEU(t *testing.T, id, kind string, at time.Time) []byte {
	t.Helper()
	ev := fmt.Sprintf(`{"id":%q,"topic":"/subscriptions/7f3c2a91-5b4e-4d1f-9e8a-2c6b0d4f1a37/resourceGroups/rg-aks-weu-prod/providers/Microsoft.ContainerService/managedClusters/aks-weu-prod-01",
		"subject":"aks-weu-prod-01","eventType":"Microsoft.ContainerService.NodePool%s","eventTime":%q,
		"data":{"nodePoolName":"system"},"dataVersion":"1","metadataVersion":"1"}`, id, kind, at.Format(time.RFC3339Nano))
	body, err := host.NewEventGridRequest("event", "AksEvents", json.RawMessage(ev), at, "3a9c5e71-2b4d-4f6a-8c0e-1d2f3a4b5c6d")
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// The operation that brings the pool to 202604.22.0 gets its time-to-patch
// in the Status JSON: from the image's first sighting in West Europe to the
// end of the operation.
func TestStatusShowsTimeToPatch(t *testing.T) {
	now := time.Date(2026, 5, 6, 9, 0, 0, 0, time.UTC)
	srv := newPatchServer(t, now)
	started, ended := time.Date(2026, 5, 5, 1, 0, 0, 0, time.UTC), time.Date(2026, 5, 5, 1, 45, 0, 0, time.UTC)
	bodies := [][]byte{
		eventEnvelope(t, "patch/eg-cluster-weu-shop-02-newer-image.json", now),
		eventEnvelope(t, "patch/eg-cluster-weu-prod-01.json", now),
		rollingWEU(t, "0e6f4c1a-9b2d-4e8f-a3c5-7d9e1f2a4b6c", "RollingStarted", started),
		rollingWEU(t, "5b7d9f1e-3a2c-4d6e-8f0a-1c3e5a7b9d2f", "RollingSucceeded", ended),
		eventEnvelope(t, "patch/eg-cluster-weu-prod-01-upgraded.json", now),
	}
	for i, b := range bodies {
		if code, _, sum := invokeRaw(t, srv, b); code != http.StatusOK {
			t.Fatalf("event %d: %d %v", i, code, sum)
		}
	}
	code, detail := serve(t, srv, http.MethodGet, "/api/clusters/7f3c2a91-5b4e-4d1f-9e8a-2c6b0d4f1a37/rg-aks-weu-prod/aks-weu-prod-01", nil)
	if code != http.StatusOK {
		t.Fatalf("status: %d %v", code, detail)
	}
	ups, _ := detail["upgrades"].([]any)
	if len(ups) != 1 {
		t.Fatalf("upgrades %v, want 1", detail["upgrades"])
	}
	u := ups[0].(map[string]any)
	firstSeen := time.Date(2026, 4, 24, 3, 12, 44, 512_000_000, time.UTC)
	want := float64(int64(ended.Sub(firstSeen) / time.Second))
	if u["imageAfter"] != "AKSUbuntu-2204gen2containerd-202604.22.0" || u["timeToPatch"] != want {
		t.Errorf("upgrade %v: want imageAfter 202604.22.0 and timeToPatch %v s", u, want)
	}
	if sys := findPool(t, detail, "system")["patch"].(map[string]any); sys["status"] != "UpToDate" {
		t.Errorf("system pool after the upgrade: %v, want UpToDate", sys)
	}
}
