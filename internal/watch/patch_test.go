package watch_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/upgradewatch/upgradewatch/internal/azuritetest"
	"github.com/upgradewatch/upgradewatch/internal/fleet"
	"github.com/upgradewatch/upgradewatch/internal/patch"
	"github.com/upgradewatch/upgradewatch/internal/state"
	"github.com/upgradewatch/upgradewatch/internal/watch"
)

// Weekly Ubuntu 22.04 gen2 images of November 2026.
const (
	nov02 = "AKSUbuntu-2204gen2containerd-202611.02.0"
	nov10 = "AKSUbuntu-2204gen2containerd-202611.10.0"
)

var (
	weuCluster = fleet.ClusterID{SubscriptionID: "6f1c2a3b-4d5e-4f60-8a71-92b3c4d5e6f7", ResourceGroup: "rg-payments-prod", Name: "aks-payments-weu"}
	eusCluster = fleet.ClusterID{SubscriptionID: "0b2d4f6a-8c1e-4a3b-9d5f-7e1a3c5b7d9f", ResourceGroup: "rg-search-prod", Name: "aks-search-eus"}
)

// patchEnv is the application layer with the image catalogue, on tables of
// its own.
type patchEnv struct {
	app    *watch.App
	svc    *aztables.ServiceClient
	prefix string
}

func newPatchEnv(t *testing.T, ensureCatalogue bool) *patchEnv {
	t.Helper()
	svc := azuritetest.Service(t, azuritetest.Endpoint(t))
	prefix := azuritetest.Prefix(t)
	s := state.New(svc, state.Options{TablePrefix: prefix, CacheSize: 100})
	t.Cleanup(s.Close)
	cat := state.NewCatalogue(svc, state.CatalogueOptions{TablePrefix: prefix, Now: func() time.Time { return now }})
	azuritetest.DropTables(t, svc, append(s.Tables(), cat.Table())...)
	if err := s.EnsureTables(context.Background()); err != nil {
		t.Fatal(err)
	}
	if ensureCatalogue {
		if err := cat.EnsureTable(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	app := watch.New(s, watch.Options{Now: func() time.Time { return now }, Catalogue: cat})
	return &patchEnv{app: app, svc: svc, prefix: prefix}
}

// armRead is the app's own ARM read of a cluster: the system pool on image,
// AKS offering latest (its upgrade profile).
func armRead(id fleet.ClusterID, location, image, latest string, at time.Time) fleet.Signal {
	return fleet.Signal{ID: fmt.Sprintf("arm:%s:%d", id.Name, at.Unix()), Type: fleet.TypeARMRead, Source: id.ResourceID(),
		Subject: id.ResourceID(), Time: at, Cluster: id, Kind: fleet.KindClusterUpdated,
		Profile: &fleet.ClusterProfile{Location: location, KubernetesVersion: "1.32.6", UpgradeChannel: "patch",
			NodeOSUpgradeChannel: "NodeImage", ProvisioningState: "Succeeded",
			Pools: []fleet.PoolProfile{{Name: "system", Mode: "System", OSType: "Linux", OSSKU: "Ubuntu", VMSize: "Standard_D4ds_v5",
				Count: 3, OrchestratorVersion: "1.32.6", NodeImageVersion: image, LatestNodeImageVersion: latest,
				ProvisioningState: "Succeeded"}}}}
}

func rollingOf(id fleet.ClusterID, kind fleet.SignalKind, at time.Time) fleet.Signal {
	return fleet.Signal{ID: fmt.Sprintf("%s-%s-%d", id.Name, kind, at.Unix()), Type: "Microsoft.ContainerService.NodePool" + string(kind)[len("Rolling"):],
		Source: id.ResourceID(), Subject: id.Name, Time: at, Schema: fleet.SchemaEventGrid, Cluster: id, Kind: kind, Pool: "system"}
}

func (e *patchEnv) ingest(t *testing.T, sigs ...fleet.Signal) {
	t.Helper()
	for _, s := range sigs {
		if _, err := e.app.Ingest(context.Background(), s); err != nil {
			t.Fatalf("ingest %s: %v", s.ID, err)
		}
	}
}

// upgradeRows reads a cluster's Upgrade rows as dashboards do.
func (e *patchEnv) upgradeRows(t *testing.T, id fleet.ClusterID) []map[string]any {
	t.Helper()
	filter := fmt.Sprintf("PartitionKey eq '%s' and Kind eq 'Upgrade'", id.Key())
	return azuritetest.Rows(t, e.svc.NewClient(e.prefix+state.TableFleet), filter)
}

// The same image reaches West Europe five days before East US: each
// region's cluster gets its own time-to-patch, from the image's first
// sighting in its own region, on the Upgrade row and in the patch view.
func TestTimeToPatchAcrossRegionalRollout(t *testing.T) {
	e := newPatchEnv(t, true)
	ctx := context.Background()
	weuSeen := time.Date(2026, 11, 12, 6, 0, 0, 0, time.UTC)
	eusSeen := time.Date(2026, 11, 17, 6, 0, 0, 0, time.UTC)
	weuEnd := time.Date(2026, 11, 13, 2, 40, 0, 0, time.UTC)
	eusEnd := time.Date(2026, 11, 18, 1, 30, 0, 0, time.UTC)
	e.ingest(t,
		armRead(weuCluster, "westeurope", nov02, nov10, weuSeen),
		armRead(eusCluster, "eastus", nov02, nov02, weuSeen), // not offered in East US yet
		rollingOf(weuCluster, fleet.KindRollingStarted, weuEnd.Add(-40*time.Minute)),
		rollingOf(weuCluster, fleet.KindRollingSucceeded, weuEnd),
		armRead(weuCluster, "westeurope", nov10, nov10, weuEnd.Add(5*time.Minute)),
		armRead(eusCluster, "eastus", nov02, nov10, eusSeen),
		rollingOf(eusCluster, fleet.KindRollingStarted, eusEnd.Add(-30*time.Minute)),
		rollingOf(eusCluster, fleet.KindRollingSucceeded, eusEnd),
		armRead(eusCluster, "eastus", nov10, nov10, eusEnd.Add(5*time.Minute)),
	)
	cases := []struct {
		id    fleet.ClusterID
		since time.Time
		want  time.Duration
	}{
		{weuCluster, weuSeen, weuEnd.Sub(weuSeen)}, // 20h40m
		{eusCluster, eusSeen, eusEnd.Sub(eusSeen)}, // 19h30m, not 5 days more
	}
	for _, tc := range cases {
		t.Run(tc.id.Name, func(t *testing.T) {
			rows := e.upgradeRows(t, tc.id)
			if len(rows) != 1 {
				t.Fatalf("Upgrade rows %v, want 1", rows)
			}
			r := rows[0]
			if r["TimeToPatchSeconds"] != fmt.Sprint(int64(tc.want/time.Second)) || r["TimeToPatchSeconds@odata.type"] != "Edm.Int64" {
				t.Errorf("TimeToPatchSeconds %v (%v), want %d as Edm.Int64", r["TimeToPatchSeconds"], r["TimeToPatchSeconds@odata.type"], int64(tc.want/time.Second))
			}
			if r["AvailableSince"] != tc.since.Format("2006-01-02T15:04:05.0000000Z") && r["AvailableSince"] != tc.since.Format(time.RFC3339) {
				t.Errorf("AvailableSince %v, want %s", r["AvailableSince"], tc.since)
			}
			c, err := e.app.Cluster(ctx, tc.id)
			if err != nil {
				t.Fatal(err)
			}
			v, err := e.app.PatchStatus(ctx, c)
			if err != nil {
				t.Fatal(err)
			}
			if len(v.TimeToPatch) != 1 {
				t.Fatalf("time-to-patch %v, want one operation", v.TimeToPatch)
			}
			for key, d := range v.TimeToPatch {
				if d != tc.want {
					t.Errorf("view: %s time-to-patch %s, want %s", key, d, tc.want)
				}
				u := c.Upgrades[key]
				if u.ImageBefore != nov02 || u.ImageAfter != nov10 || !u.AvailableSince.Equal(tc.since) || u.TimeToPatch != tc.want {
					t.Errorf("upgrade %+v, want %s → %s available since %s, %s", u, nov02, nov10, tc.since, tc.want)
				}
				// A later signal re-derives the operation: the figure stays.
				later := c.Clone()
				if err := fleet.Apply(later, armRead(tc.id, c.Location, nov10, nov10, now.Add(-time.Hour))); err != nil {
					t.Fatal(err)
				}
				if got := later.Upgrades[key]; got == nil || got.TimeToPatch != tc.want || !got.AvailableSince.Equal(tc.since) {
					t.Errorf("after a later ARM read: %+v, want the figure kept", got)
				}
			}
			if st := v.Pools["system"]; st.Status != patch.StatusUpToDate || st.LatestImage != nov10 {
				t.Errorf("system pool after the upgrade: %s (%s) latest %q, want UpToDate on %s", st.Status, st.Reason, st.LatestImage, nov10)
			}
		})
	}
}

// A catalogue that cannot be written does not fail the signal: it commits,
// and the patch status says the catalogue is unavailable.
func TestCatalogueFailureDoesNotFailTheSignal(t *testing.T) {
	e := newPatchEnv(t, false) // the catalogue's table is missing
	ctx := context.Background()
	out, err := e.app.Ingest(ctx, armRead(weuCluster, "westeurope", nov02, nov10, time.Date(2026, 11, 12, 6, 0, 0, 0, time.UTC)))
	if err != nil || out.Result != watch.Committed {
		t.Fatalf("ingest with the catalogue down: %+v %v, want committed", out, err)
	}
	c, err := e.app.Cluster(ctx, weuCluster)
	if err != nil || c.Pools["system"].LatestImage != nov10 {
		t.Fatalf("state not committed: %v", err)
	}
	if _, err := e.app.PatchStatus(ctx, c); err == nil {
		t.Error("patch status with the catalogue down: no error")
	}
}
