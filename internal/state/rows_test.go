package state

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/upgradewatch/upgradewatch/internal/fleet"
)

// Every field of the domain state survives the trip through table rows: what
// a commit writes is what the next load reads.
func TestRowsRoundTrip(t *testing.T) {
	id := fleet.ClusterID{SubscriptionID: "6f1c2a3b-4d5e-4f60-8a71-92b3c4d5e6f7", ResourceGroup: "rg-Payments", Name: "aks-payments-weu"}
	t0 := time.Date(2026, 11, 2, 2, 0, 0, 123456700, time.UTC)
	v1, v2 := "AKSUbuntu-2204gen2containerd-202610.13.0", "AKSUbuntu-2204gen2containerd-202610.20.0"
	sigs := []fleet.Signal{
		{ID: "arm-1", Type: fleet.TypeARMRead, Time: t0, Kind: fleet.KindClusterUpdated, Profile: &fleet.ClusterProfile{
			Location: "westeurope", KubernetesVersion: "1.31.9", UpgradeChannel: "patch", NodeOSUpgradeChannel: "NodeImage",
			Tags: map[string]string{"upgradewatch.nodeOSChannel": "NodeImage"},
			Pools: []fleet.PoolProfile{
				{Name: "system", Mode: "System", OSType: "Linux", OSSKU: "Ubuntu", VMSize: "Standard_D4s_v5", Count: 3,
					NodeImageVersion: v1, LatestNodeImageVersion: v2, MaxSurge: "33%", DrainTimeoutMinutes: 30},
				{Name: "gpu", Mode: "User", OSType: "Linux", OSSKU: "AzureLinux", VMSize: "Standard_NC6s_v3", Count: 1},
			},
			MaintenanceKnown: true,
			Maintenance: []fleet.MaintenanceWindow{
				{Name: fleet.MaintenanceNodeOS, DurationHours: 4, UTCOffset: "+01:00", StartDate: "2026-01-01", StartTime: "01:00",
					Schedule:   fleet.MaintenanceSchedule{Kind: fleet.ScheduleDaily, IntervalDays: 1},
					NotAllowed: []fleet.DateSpan{{Start: "2026-12-23", End: "2027-01-02"}}},
				{Name: fleet.MaintenanceDefault, TimeInWeek: []fleet.TimeInWeek{{Day: "Sunday", HourSlots: []int{1, 2, 3}}}},
			},
			OIDCIssuerKnown: true, OIDCIssuerURL: "https://westeurope.oic.prod-aks.azure.com/72f988bf-86f1-41af-91ab-2d7cd011db47/5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9/"}},
		activity(fleet.Activity{Operation: fleet.OpClusterWrite, Status: fleet.ActivitySucceeded, Actor: "alice@contoso.com",
			ActorType: fleet.ActorUser, CorrelationID: "corr-w", Path: fleet.PathAlert, DeliveryID: "evt-1"}, t0.Add(30*time.Minute)),
		{ID: "arm-2", Type: fleet.TypeARMRead, Time: t0.Add(31 * time.Minute), Kind: fleet.KindClusterUpdated, Profile: &fleet.ClusterProfile{
			UpgradeChannel: "patch", NodeOSUpgradeChannel: "SecurityPatch"}},
		activity(fleet.Activity{Operation: fleet.OpPoolUpgradeImage, Status: fleet.ActivityStarted, Pool: "system", Actor: "bob@contoso.com",
			ActorType: fleet.ActorUser, CorrelationID: "corr-u", Path: fleet.PathExport}, t0.Add(59*time.Minute)),
		activity(fleet.Activity{Operation: fleet.OpPoolUpgradeImage, Status: fleet.ActivityFailed, Pool: "system", Actor: "bob@contoso.com",
			ActorType: fleet.ActorUser, CorrelationID: "corr-x", Message: "OperationNotAllowed: another operation is in progress",
			Path: fleet.PathExport}, t0.Add(61*time.Minute)),
		activity(fleet.Activity{Operation: fleet.OpMaintenanceWrite, Status: fleet.ActivitySucceeded, Maintenance: "aksManagedNodeOSUpgradeSchedule",
			Actor: "carol@contoso.com", CorrelationID: "corr-m", Path: fleet.PathEventGrid}, t0.Add(62*time.Minute)),
		{ID: "s1", Time: t0.Add(time.Hour), Kind: fleet.KindRollingStarted, Pool: "system"},
		{ID: "e1", Time: t0.Add(2 * time.Hour), Kind: fleet.KindRollingSucceeded, Pool: "system"},
		{ID: "nodes-1", Type: fleet.TypeNodeSnapshot, Time: t0.Add(3 * time.Hour), Kind: fleet.KindNodesObserved,
			Inventory: &fleet.InventorySummary{Complete: true, Pools: map[string]fleet.PoolNodes{
				"system": {Nodes: 3, Ready: 2, Quarantined: 1, Cordoned: 1, Versions: map[string]int{v2: 2, v1: 1}}}}},
	}
	c := fleet.NewCluster(id)
	for _, s := range sigs {
		s.Cluster = id
		if err := fleet.Apply(c, s); err != nil {
			t.Fatal(err)
		}
	}
	if u := c.RecentUpgrades(1)[0]; u.ImageBefore != v1 || u.ImageAfter != v2 {
		t.Fatalf("setup: upgrade images %q → %q", u.ImageBefore, u.ImageAfter)
	}
	if u := c.RecentUpgrades(1)[0]; u.Trigger != fleet.TriggerManual || u.ChannelChange == nil || len(u.Failures) != 1 ||
		c.MaintenanceChange == nil || len(c.Activities) != 4 {
		t.Fatalf("setup: attribution missing: %+v", u)
	}

	entities := map[string]entity{}
	for rk, r := range rowsOf(c) {
		b, err := r.marshal(id.Key(), rk)
		if err != nil {
			t.Fatal(err)
		}
		e, err := decodeEntity(b)
		if err != nil {
			t.Fatal(err)
		}
		entities[rk] = e
	}
	got, err := clusterOf(id, entities)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(c, got, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("state after the round trip (-want +got):\n%s", diff)
	}
	if gpu, _ := rowsOf(c)[rkPoolPrefix+"gpu"]["Gpu"].(bool); !gpu {
		t.Errorf("gpu pool row: Gpu column not true")
	}
}

func activity(a fleet.Activity, at time.Time) fleet.Signal {
	a.OperationName = "Microsoft.ContainerService/managedClusters/" + a.Operation
	return fleet.Signal{ID: fleet.ActivityID(a), Type: "Microsoft.Resources.ResourceWriteSuccess", Time: at,
		Kind: fleet.KindActivity, Activity: &a}
}
