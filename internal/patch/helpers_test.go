package patch

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/upgradewatch/upgradewatch/internal/events"
	"github.com/upgradewatch/upgradewatch/internal/findings"
	"github.com/upgradewatch/upgradewatch/internal/fleet"
)

// The cluster of the testdata fixtures, and the fixed clock: Wednesday
// 2026-05-06 09:00 UTC, three days after a Sunday node OS window.
var (
	weu = fleet.ClusterID{SubscriptionID: "7f3c2a91-5b4e-4d1f-9e8a-2c6b0d4f1a37", ResourceGroup: "rg-aks-weu-prod", Name: "aks-weu-prod-01"}
	now = time.Date(2026, 5, 6, 9, 0, 0, 0, time.UTC)
)

// Weekly Ubuntu 22.04 gen2 node images of April-May 2026, and their
// SecurityPatch and Windows relatives.
const (
	img0407   = "AKSUbuntu-2204gen2containerd-202604.07.0"
	img0414   = "AKSUbuntu-2204gen2containerd-202604.14.0"
	img0422   = "AKSUbuntu-2204gen2containerd-202604.22.0"
	img0501   = "AKSUbuntu-2204gen2containerd-202605.01.0"
	sp0414a   = "AKSUbuntu-2204gen2containerd-202604.14.0-2026.04.20"
	sp0414b   = "AKSUbuntu-2204gen2containerd-202604.14.0-2026.04.28"
	sp0422    = "AKSUbuntu-2204gen2containerd-202604.22.0-2026.04.28"
	winImage  = "AKSWindows-2022-containerd-20348.3932.260415"
	winLatest = "AKSWindows-2022-containerd-20348.4052.260429"
)

func d(month, day, hour int) time.Time {
	return time.Date(2026, time.Month(month), day, hour, 0, 0, 0, time.UTC)
}

var sunday = fleet.MaintenanceWindow{Name: fleet.MaintenanceNodeOS, DurationHours: 4, StartTime: "01:00", UTCOffset: "+00:00",
	StartDate: "2026-01-04", Schedule: fleet.MaintenanceSchedule{Kind: fleet.ScheduleWeekly, IntervalWeeks: 1, DayOfWeek: "Sunday"}}

// monthly20 opens on the 20th of each month at 01:00 UTC.
var monthly20 = fleet.MaintenanceWindow{Name: fleet.MaintenanceNodeOS, DurationHours: 6, StartTime: "01:00", UTCOffset: "+00:00",
	StartDate: "2026-01-01", Schedule: fleet.MaintenanceSchedule{Kind: fleet.ScheduleAbsoluteMonthly, IntervalMonths: 1, DayOfMonth: 20}}

// freeze is the Sunday window with a change freeze over the next two Sundays.
var freeze = func() fleet.MaintenanceWindow {
	w := sunday
	w.NotAllowed = []fleet.DateSpan{{Start: "2026-05-08", End: "2026-05-20"}}
	return w
}()

func system(image, latest string) fleet.PoolProfile {
	return fleet.PoolProfile{Name: "system", Mode: "System", OSType: "Linux", OSSKU: "Ubuntu", VMSize: "Standard_D4ds_v5", Count: 3,
		OrchestratorVersion: "1.32.6", NodeImageVersion: image, LatestNodeImageVersion: latest, MaxSurge: "33%",
		DrainTimeoutMinutes: 30, ProvisioningState: "Succeeded"}
}

func win22(image, latest string) fleet.PoolProfile {
	return fleet.PoolProfile{Name: "win22", Mode: "User", OSType: "Windows", OSSKU: "Windows2022", VMSize: "Standard_D4s_v5", Count: 2,
		OrchestratorVersion: "1.32.6", NodeImageVersion: image, LatestNodeImageVersion: latest, ProvisioningState: "Succeeded"}
}

// clusterRead is the app's ARM read of the cluster: channels, state, pools
// with their upgrade-profile latest, and maintenance configurations.
type clusterRead struct {
	channel, state, k8s string
	pools               []fleet.PoolProfile
	windows             []fleet.MaintenanceWindow
}

func armRead(id string, at time.Time, r clusterRead) fleet.Signal {
	return fleet.Signal{ID: id, Type: fleet.TypeARMRead, Time: at, Cluster: weu, Kind: fleet.KindClusterUpdated, Schema: fleet.SchemaCloudEvents,
		Profile: &fleet.ClusterProfile{Location: "westeurope", KubernetesVersion: or(r.k8s, "1.32.6"), UpgradeChannel: "patch",
			NodeOSUpgradeChannel: r.channel, ProvisioningState: or(r.state, "Succeeded"), Pools: r.pools,
			MaintenanceKnown: true, Maintenance: r.windows}}
}

// notification is a Resources.CreatedOrUpdated of the cluster: no upgrade
// profile, no maintenance configurations.
func notification(id string, at time.Time, location, channel string, pools ...fleet.PoolProfile) fleet.Signal {
	for i := range pools {
		pools[i].LatestNodeImageVersion = ""
	}
	return fleet.Signal{ID: id, Type: "Microsoft.ResourceNotifications.Resources.CreatedOrUpdated", Time: at, Cluster: weu,
		Kind: fleet.KindClusterUpdated, Schema: fleet.SchemaEventGrid,
		Profile: &fleet.ClusterProfile{Location: location, KubernetesVersion: "1.32.6", UpgradeChannel: "patch",
			NodeOSUpgradeChannel: channel, ProvisioningState: "Succeeded", Pools: pools}}
}

func rolling(id string, kind fleet.SignalKind, pool string, at time.Time) fleet.Signal {
	return fleet.Signal{ID: id, Type: "Microsoft.ContainerService.NodePool" + string(kind), Time: at, Cluster: weu, Kind: kind, Pool: pool}
}

func snapshot(id string, at time.Time, pool string, pn fleet.PoolNodes) fleet.Signal {
	return fleet.Signal{ID: id, Type: fleet.TypeNodeSnapshot, Time: at, Cluster: weu, Kind: fleet.KindNodesObserved,
		Inventory: &fleet.InventorySummary{Complete: true, Pools: map[string]fleet.PoolNodes{pool: pn}}}
}

// fixture decodes a testdata event as the handlers do.
func fixture(t *testing.T, name string) fleet.Signal {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	decode := events.Decode
	if strings.HasPrefix(name, "alert-") {
		decode = events.DecodeAlert
	}
	s, err := decode(raw)
	if err != nil {
		t.Fatalf("decode %s: %v", name, err)
	}
	return s
}

// seen is a sighting elsewhere in the fleet (another cluster's resource
// notification or node snapshot) in a region.
func seen(version, region, source string, at time.Time) Observation {
	return Observation{Version: version, Region: region, Source: source, At: at}
}

// build applies the signals to a new cluster and feeds the catalogue as the
// application layer will: the sightings elsewhere plus every signal's own.
// With evaluate, the findings rules run and reconcile at now first.
func build(t *testing.T, sigs []fleet.Signal, elsewhere []Observation, pol fleet.Policy, evaluate bool) (*fleet.Cluster, Catalogue) {
	t.Helper()
	c := fleet.NewCluster(weu)
	obs := append([]Observation(nil), elsewhere...)
	for _, s := range sigs {
		if err := fleet.Apply(c, s); err != nil {
			t.Fatalf("apply %s: %v", s.ID, err)
		}
		obs = append(obs, FromSignal(s, c.Location)...)
	}
	// A signal that came before the first with a location still saw the
	// cluster's region: the application layer knows it from the state.
	for i := range obs {
		if obs[i].Region == "" {
			obs[i].Region = c.Location
		}
	}
	if evaluate {
		r := findings.Evaluate(c, pol, nil, now)
		fleet.Reconcile(c, r.Observations, now)
	}
	return c, Merge(Catalogue{}, obs...)
}

func shuffled[T any](rng *rand.Rand, in []T) []T {
	out := append([]T(nil), in...)
	rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func find(t *testing.T, sts []PoolStatus, pool string) PoolStatus {
	t.Helper()
	for _, s := range sts {
		if s.Pool == pool {
			return s
		}
	}
	t.Fatalf("no status for pool %s in %+v", pool, sts)
	return PoolStatus{}
}
