package state_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/upgradewatch/upgradewatch/internal/azuritetest"
	"github.com/upgradewatch/upgradewatch/internal/patch"
	"github.com/upgradewatch/upgradewatch/internal/state"
)

// Weekly Ubuntu 22.04 gen2 images, as AKS reports them in nodeImageVersion.
const (
	ubuntu1027 = "AKSUbuntu-2204gen2containerd-202410.27.0"
	ubuntu1112 = "AKSUbuntu-2204gen2containerd-202411.12.0"
	azl1110    = "AKSAzureLinux-V3gen2-202411.10.0"
)

// catalogueEnv is a catalogue table of its own, with a request counter on
// the client and a clock the test moves.
type catalogueEnv struct {
	svc    *aztables.ServiceClient
	prefix string
	reqs   atomic.Int64
	mu     sync.Mutex
	now    time.Time
}

func newCatalogueEnv(t *testing.T) *catalogueEnv {
	t.Helper()
	ep := azuritetest.Endpoint(t)
	e := &catalogueEnv{prefix: azuritetest.Prefix(t), now: time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)}
	svc, err := state.NewServiceClient(state.Connection{Name: "test", ConnectionString: azuritetest.ConnectionString(ep)},
		state.ClientOptions{TryTimeout: 5 * time.Second, MaxRetries: 1, Counter: &e.reqs})
	if err != nil {
		t.Fatal(err)
	}
	e.svc = svc
	azuritetest.DropTables(t, svc, e.prefix+state.TableCatalogue)
	if err := e.open().EnsureTable(context.Background()); err != nil {
		t.Fatal(err)
	}
	return e
}

// open is one process's catalogue: its own memory, the shared table.
func (e *catalogueEnv) open() *state.ImageCatalogue {
	return state.NewCatalogue(e.svc, state.CatalogueOptions{TablePrefix: e.prefix, Now: e.clock})
}

func (e *catalogueEnv) clock() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.now
}

func (e *catalogueEnv) advance(d time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.now = e.now.Add(d)
}

// rows reads the table's rows as dashboards do.
func (e *catalogueEnv) rows(t *testing.T) []map[string]any {
	t.Helper()
	pager := e.svc.NewClient(e.prefix + state.TableCatalogue).NewListEntitiesPager(nil)
	var out []map[string]any
	for pager.More() {
		page, err := pager.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range page.Entities {
			var m map[string]any
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatal(err)
			}
			out = append(out, m)
		}
	}
	return out
}

func sighting(version, region, source string, at time.Time) patch.Observation {
	return patch.Observation{Version: version, Region: region, Source: source, At: at}
}

// Instances observing one version at different times, all at once: the
// earliest sighting is what every later reader gets, whoever wrote last.
func TestCatalogueEarliestSightingWinsUnderConcurrency(t *testing.T) {
	e := newCatalogueEnv(t)
	ctx := context.Background()
	base := time.Date(2026, 11, 14, 6, 0, 0, 0, time.UTC)
	const writers = 8
	// Writer i saw the image i hours after the earliest; the earliest
	// sighting starts last, so it has to replace rows others wrote.
	start := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for i := writers - 1; i >= 0; i-- {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			<-start
			src := patch.SourceNotification
			if i == 0 {
				src = patch.SourceUpgradeProfile
			}
			errs <- e.open().Observe(ctx, []patch.Observation{sighting(ubuntu1112, "West Europe", src, base.Add(time.Duration(i)*time.Hour))})
		}(i)
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("observe: %v", err)
		}
	}
	cat, err := e.open().Catalogue(ctx, "westeurope")
	if err != nil {
		t.Fatal(err)
	}
	got, ok := cat.Lookup(ubuntu1112, "westeurope")
	if !ok || !got.FirstSeen.Equal(base) || got.Source != patch.SourceUpgradeProfile {
		t.Fatalf("stored sighting %+v (found %v), want first seen %s by %s", got, ok, base, patch.SourceUpgradeProfile)
	}
	if want := time.Date(2024, 11, 12, 0, 0, 0, 0, time.UTC); !got.ReleasedAt.Equal(want) {
		t.Errorf("released %s, want %s (from the version)", got.ReleasedAt, want)
	}
	rows := e.rows(t)
	if len(rows) != 1 {
		t.Fatalf("rows %v, want one", rows)
	}
	r := rows[0]
	if r["PartitionKey"] != "AKSUbuntu-2204gen2containerd~westeurope" || r["RowKey"] != ubuntu1112 ||
		r["Family"] != "AKSUbuntu-2204gen2containerd" || r["Region"] != "westeurope" || r["FirstSeen@odata.type"] != "Edm.DateTime" {
		t.Errorf("row %v: want PK <family>~<region>, RK the version, typed FirstSeen", r)
	}
}

// A sighting that changes nothing known costs no storage request; the read
// is served from memory within the TTL.
func TestCatalogueRepeatedSightingCostsNoRequest(t *testing.T) {
	e := newCatalogueEnv(t)
	ctx := context.Background()
	cat := e.open()
	at := time.Date(2026, 11, 14, 6, 0, 0, 0, time.UTC)
	obs := []patch.Observation{
		sighting(ubuntu1027, "westeurope", patch.SourceARMRead, at),
		sighting(ubuntu1112, "westeurope", patch.SourceUpgradeProfile, at),
	}
	before := e.reqs.Load()
	if err := cat.Observe(ctx, obs); err != nil {
		t.Fatal(err)
	}
	if n := e.reqs.Load() - before; n == 0 {
		t.Fatal("first sightings made no request: nothing was stored")
	}
	steps := []struct {
		name string
		obs  []patch.Observation
		want int64 // requests
	}{
		{"the same sightings again", obs, 0},
		{"a later sighting of a known version", []patch.Observation{sighting(ubuntu1112, "West Europe", patch.SourceNodes, at.Add(48*time.Hour))}, 0},
		{"an unknown version format", []patch.Observation{sighting("custom-image-7", "westeurope", patch.SourceNodes, at)}, 0},
		{"no region", []patch.Observation{sighting(azl1110, "", patch.SourceNodes, at)}, 0},
	}
	for _, s := range steps {
		before := e.reqs.Load()
		if err := cat.Observe(ctx, s.obs); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if n := e.reqs.Load() - before; n != s.want {
			t.Errorf("%s: %d storage requests, want %d", s.name, n, s.want)
		}
	}
	// An earlier sighting does write, and replaces.
	before = e.reqs.Load()
	if err := cat.Observe(ctx, []patch.Observation{sighting(ubuntu1112, "westeurope", patch.SourceNotification, at.Add(-24*time.Hour))}); err != nil {
		t.Fatal(err)
	}
	if n := e.reqs.Load() - before; n == 0 {
		t.Error("an earlier sighting made no request")
	}

	// Reads: one query, then memory until the TTL passes.
	reader := e.open()
	for i, want := range []int64{1, 0} {
		before := e.reqs.Load()
		got, err := reader.Catalogue(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n := e.reqs.Load() - before; n != want {
			t.Errorf("read %d: %d requests, want %d", i, n, want)
		}
		if s, _ := got.Lookup(ubuntu1112, "westeurope"); !s.FirstSeen.Equal(at.Add(-24 * time.Hour)) {
			t.Errorf("read %d: first seen %s, want the earlier sighting %s", i, s.FirstSeen, at.Add(-24*time.Hour))
		}
	}
	e.advance(state.DefaultCatalogueTTL + time.Second)
	before = e.reqs.Load()
	if _, err := reader.Catalogue(ctx); err != nil {
		t.Fatal(err)
	}
	if n := e.reqs.Load() - before; n != 1 {
		t.Errorf("read after the TTL: %d requests, want 1", n)
	}
}

// Only the newest patch.MaxVersions per family and region are kept: the
// writer of a newer version deletes the oldest, and sightings of versions
// older than those kept cost nothing.
func TestCataloguePrunesToNewestVersions(t *testing.T) {
	e := newCatalogueEnv(t)
	ctx := context.Background()
	cat := e.open()
	start := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	var all []string
	for w := range patch.MaxVersions + 4 {
		day := start.AddDate(0, 0, 7*w)
		v := fmt.Sprintf("AKSUbuntu-2204gen2containerd-%s.0", day.Format("200601.02"))
		all = append(all, v)
		if err := cat.Observe(ctx, []patch.Observation{sighting(v, "eastus", patch.SourceUpgradeProfile, day.Add(30*time.Hour))}); err != nil {
			t.Fatal(err)
		}
	}
	// Another region keeps its own line.
	if err := cat.Observe(ctx, []patch.Observation{sighting(all[0], "westeurope", patch.SourceARMRead, start.Add(24*time.Hour))}); err != nil {
		t.Fatal(err)
	}
	byRegion := map[string][]string{}
	for _, r := range e.rows(t) {
		byRegion[r["Region"].(string)] = append(byRegion[r["Region"].(string)], r["Version"].(string))
	}
	if got := len(byRegion["eastus"]); got != patch.MaxVersions {
		t.Fatalf("eastus rows %d, want %d: %v", got, patch.MaxVersions, byRegion["eastus"])
	}
	kept := map[string]bool{}
	for _, v := range byRegion["eastus"] {
		kept[v] = true
	}
	for i, v := range all {
		if want := i >= 4; kept[v] != want {
			t.Errorf("%s kept = %v, want %v (the newest %d stay)", v, kept[v], want, patch.MaxVersions)
		}
	}
	if len(byRegion["westeurope"]) != 1 {
		t.Errorf("westeurope rows %v, want its one version", byRegion["westeurope"])
	}
	before := e.reqs.Load()
	if err := cat.Observe(ctx, []patch.Observation{sighting(all[1], "eastus", patch.SourceNodes, start)}); err != nil {
		t.Fatal(err)
	}
	if n := e.reqs.Load() - before; n != 0 {
		t.Errorf("a pool still on a pruned image: %d requests, want 0", n)
	}
	got, err := e.open().Catalogue(ctx, "East US")
	if err != nil {
		t.Fatal(err)
	}
	if n, ok := got.Newest("AKSUbuntu-2204gen2containerd", "eastus"); !ok || n.Version != all[len(all)-1] {
		t.Errorf("newest in eastus %+v, want %s", n, all[len(all)-1])
	}
	if vs := got.Versions("AKSUbuntu-2204gen2containerd", "westeurope"); len(vs) != 0 {
		t.Errorf("a read of eastus returned westeurope's %v", vs)
	}
}

// Whatever a family holds (a forged SKU with characters keys may not hold),
// it is stored under valid keys and read back as seen.
func TestCatalogueEscapesKeys(t *testing.T) {
	e := newCatalogueEnv(t)
	ctx := context.Background()
	odd := "AKSUbuntu-22/04#gen2?~ü-202411.12.0"
	at := time.Date(2026, 11, 14, 6, 0, 0, 0, time.UTC)
	if err := e.open().Observe(ctx, []patch.Observation{sighting(odd, "westeurope", patch.SourceNotification, at),
		sighting(ubuntu1112, "westeurope", patch.SourceNotification, at)}); err != nil {
		t.Fatal(err)
	}
	got, err := e.open().Catalogue(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s, ok := got.Lookup(odd, "westeurope"); !ok || !s.FirstSeen.Equal(at) {
		t.Fatalf("odd version read back %+v (%v)", s, ok)
	}
	for _, r := range e.rows(t) {
		if r["Version"] == odd && (r["RowKey"] == odd || r["Family"] != "AKSUbuntu-22/04#gen2?~ü") {
			t.Errorf("row %v: want an escaped RowKey and the family as seen", r)
		}
	}
}
