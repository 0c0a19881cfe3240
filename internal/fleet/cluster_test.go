package fleet

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var (
	testCluster = ClusterID{SubscriptionID: "6f1c2a3b-4d5e-4f60-8a71-92b3c4d5e6f7", ResourceGroup: "rg-payments-prod", Name: "aks-payments-weu"}
	base        = time.Date(2026, 11, 2, 2, 0, 0, 0, time.UTC)
)

func at(min int) time.Time { return base.Add(time.Duration(min) * time.Minute) }

func roll(id string, kind SignalKind, pool string, min int) Signal {
	return Signal{ID: id, Type: "Microsoft.ContainerService.NodePool" + string(kind), Time: at(min), Cluster: testCluster, Kind: kind, Pool: pool}
}

func profile(id string, min int, channel string, pools ...PoolProfile) Signal {
	return Signal{ID: id, Type: "Microsoft.ResourceNotifications.Resources.CreatedOrUpdated", Time: at(min), Cluster: testCluster,
		Kind: KindClusterUpdated, Profile: &ClusterProfile{NodeOSUpgradeChannel: channel, UpgradeChannel: "patch", Pools: pools,
			Tags: map[string]string{"env": "prod"}}}
}

// armRead is an ARM read: the system pool on image, offered latest, with maintenance windows
// of a duration that differs per read.
func armRead(id string, min int, image, latest string, hours int) Signal {
	return Signal{ID: id, Type: TypeARMRead, Time: at(min), Cluster: testCluster, Kind: KindClusterUpdated,
		Profile: &ClusterProfile{NodeOSUpgradeChannel: "NodeImage", UpgradeChannel: "patch",
			Pools:            []PoolProfile{{Name: "system", Count: 3, NodeImageVersion: image, LatestNodeImageVersion: latest}},
			MaintenanceKnown: true,
			Maintenance: []MaintenanceWindow{{Name: MaintenanceNodeOS, DurationHours: 4 + hours,
				Schedule: MaintenanceSchedule{Kind: ScheduleWeekly, IntervalWeeks: 1, DayOfWeek: "Sunday"}, StartTime: "01:00"}}}}
}

// nodesSeen is a node snapshot's summary: per pool, nodes per version.
func nodesSeen(id string, min int, complete bool, pools map[string]map[string]int) Signal {
	inv := InventorySummary{Complete: complete, Pools: map[string]PoolNodes{}}
	for pool, versions := range pools {
		pn := PoolNodes{Versions: map[string]int{}}
		for v, n := range versions {
			if n == 0 {
				continue
			}
			pn.Versions[v] = n
			pn.Nodes += n
			pn.Ready += n
		}
		inv.Pools[pool] = pn
	}
	return Signal{ID: id, Type: TypeNodeSnapshot, Time: at(min), Cluster: testCluster, Kind: KindNodesObserved, Inventory: &inv}
}

func applyAll(t *testing.T, sigs []Signal) *Cluster {
	t.Helper()
	c := NewCluster(testCluster)
	for _, s := range sigs {
		if err := Apply(c, s); err != nil {
			t.Fatalf("apply %s: %v", s.ID, err)
		}
	}
	return c
}

type opView struct {
	Pool, Outcome      string
	StartedAt, EndedAt time.Time
	Signals            int
}

func ops(c *Cluster) []opView {
	var out []opView
	for _, u := range c.RecentUpgrades(-1) {
		out = append(out, opView{u.Pool, u.Outcome, u.StartedAt, u.EndedAt, len(u.Signals)})
	}
	return out
}

func TestApplyRolling(t *testing.T) {
	cases := []struct {
		name  string
		sigs  []Signal
		want  []opView // latest first
		state string
	}{
		{"started", []Signal{roll("s1", KindRollingStarted, "np1", 0)},
			[]opView{{"np1", OutcomeInProgress, at(0), time.Time{}, 1}}, RollingActive},
		{"started then succeeded", []Signal{roll("s1", KindRollingStarted, "np1", 0), roll("e1", KindRollingSucceeded, "np1", 30)},
			[]opView{{"np1", OutcomeSucceeded, at(0), at(30), 2}}, RollingSucceeded},
		{"succeeded before started", []Signal{roll("e1", KindRollingSucceeded, "np1", 30), roll("s1", KindRollingStarted, "np1", 0)},
			[]opView{{"np1", OutcomeSucceeded, at(0), at(30), 2}}, RollingSucceeded},
		{"failed then retried", []Signal{
			roll("s1", KindRollingStarted, "np1", 0), roll("f1", KindRollingFailed, "np1", 45),
			roll("s2", KindRollingStarted, "np1", 1440), roll("e2", KindRollingSucceeded, "np1", 1500)},
			[]opView{{"np1", OutcomeSucceeded, at(1440), at(1500), 2}, {"np1", OutcomeFailed, at(0), at(45), 2}}, RollingSucceeded},
		{"second started joins the open operation", []Signal{roll("s1", KindRollingStarted, "np1", 0), roll("s1b", KindRollingStarted, "np1", 5)},
			[]opView{{"np1", OutcomeInProgress, at(0), time.Time{}, 2}}, RollingActive},
		{"end with no start stands alone", []Signal{roll("f1", KindRollingFailed, "np1", 10)},
			[]opView{{"np1", OutcomeFailed, time.Time{}, at(10), 1}}, RollingFailed},
		{"late start splits merged starts", []Signal{
			roll("s1", KindRollingStarted, "np1", 0), roll("s2", KindRollingStarted, "np1", 60), roll("e1", KindRollingSucceeded, "np1", 30)},
			[]opView{{"np1", OutcomeInProgress, at(60), time.Time{}, 1}, {"np1", OutcomeSucceeded, at(0), at(30), 2}}, RollingActive},
		{"pool deleted while rolling cancels", []Signal{
			roll("s1", KindRollingStarted, "np1", 0), {ID: "d1", Time: at(20), Cluster: testCluster, Kind: KindPoolDeleted, Pool: "np1"}},
			[]opView{{"np1", OutcomeCanceled, at(0), at(20), 1}}, RollingIdle},
		{"redelivered signal is ignored", []Signal{roll("s1", KindRollingStarted, "np1", 0), roll("s1", KindRollingStarted, "np1", 0)},
			[]opView{{"np1", OutcomeInProgress, at(0), time.Time{}, 1}}, RollingActive},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := applyAll(t, tc.sigs)
			if diff := cmp.Diff(tc.want, ops(c)); diff != "" {
				t.Errorf("operations (-want +got):\n%s", diff)
			}
			if got := c.Pools["np1"].RollingState; got != tc.state {
				t.Errorf("rolling state %q, want %q", got, tc.state)
			}
		})
	}
}

func TestApplyNewestObservationWins(t *testing.T) {
	sys := PoolProfile{Name: "system", OSType: "Linux", OSSKU: "Ubuntu", Count: 3, NodeImageVersion: "AKSUbuntu-2204gen2containerd-202610.13.0"}
	sysNew := sys
	sysNew.NodeImageVersion = "AKSUbuntu-2204gen2containerd-202610.20.0"
	win := PoolProfile{Name: "win22", OSType: "Windows", OSSKU: "Windows2022", Count: 2}
	older := profile("p1", 0, "NodeImage", sys, win)
	newer := profile("p2", 60, "SecurityPatch", sysNew)

	for _, order := range [][]Signal{{older, newer}, {newer, older}} {
		c := applyAll(t, order)
		if c.NodeOSUpgradeChannel != "SecurityPatch" {
			t.Errorf("channel %q, want the newer SecurityPatch", c.NodeOSUpgradeChannel)
		}
		if got := c.Pools["system"].Spec.NodeImageVersion; got != sysNew.NodeImageVersion {
			t.Errorf("system image %q, want %q", got, sysNew.NodeImageVersion)
		}
		if !c.Pools["win22"].Removed {
			t.Errorf("win22 missing from the newer payload should be removed")
		}
	}

	// Support: Ended beats an older Ending whatever the order.
	ending := Signal{ID: "se1", Time: at(0), Cluster: testCluster, Kind: KindSupportEnding, Support: &SupportNotice{KubernetesVersion: "1.31.9"}}
	ended := Signal{ID: "se2", Time: at(10), Cluster: testCluster, Kind: KindSupportEnded, Support: &SupportNotice{KubernetesVersion: "1.31.9"}}
	if c := applyAll(t, []Signal{ended, ending}); c.Support != SupportEnded {
		t.Errorf("support %q, want Ended", c.Support)
	}

	// Scheduled events: a terminal status beats Started at the same time.
	sched := func(id, status string, min int) Signal {
		return Signal{ID: id, Time: at(min), Cluster: testCluster, Kind: KindScheduledEvent,
			Scheduled: &ScheduledEvent{EventID: "ev-1", Status: status, UpgradeType: "NodeOSUpgrade"}}
	}
	c := applyAll(t, []Signal{sched("x3", ScheduledStatusCompleted, 90), sched("x1", ScheduledStatusScheduled, 0), sched("x2", ScheduledStatusStarted, 90)})
	if got := c.Scheduled["ev-1"].Status; got != ScheduledStatusCompleted {
		t.Errorf("scheduled status %q, want Completed", got)
	}
}

func TestUpgradeImages(t *testing.T) {
	const (
		v1 = "AKSUbuntu-2204gen2containerd-202610.13.0"
		v2 = "AKSUbuntu-2204gen2containerd-202610.20.0"
		v3 = "AKSUbuntu-2204gen2containerd-202610.27.0"
	)
	cases := []struct {
		name          string
		sigs          []Signal
		before, after string
	}{
		{"arm reads around the operation", []Signal{
			armRead("a1", -30, v1, v2, 0), roll("s", KindRollingStarted, "system", 0),
			roll("e", KindRollingSucceeded, "system", 60), armRead("a2", 61, v2, v2, 0)}, v1, v2},
		{"an arm read during the roll is not the after image", []Signal{
			armRead("a1", -30, v1, v2, 0), roll("s", KindRollingStarted, "system", 0), armRead("a2", 30, v2, v2, 0),
			roll("e", KindRollingSucceeded, "system", 60), armRead("a3", 90, v2, v2, 0)}, v1, v2},
		{"only a read after the start: before is unknown", []Signal{
			roll("s", KindRollingStarted, "system", 0), armRead("a2", 5, v1, v2, 0)}, "", ""},
		{"in progress has no after image", []Signal{
			armRead("a1", -30, v1, v2, 0), roll("s", KindRollingStarted, "system", 0), armRead("a2", 30, v2, v2, 0)}, v1, ""},
		{"node snapshots win over arm", []Signal{
			armRead("a1", -30, v1, v2, 0), nodesSeen("n1", -20, true, map[string]map[string]int{"system": {v1 + "-2026.10.15": 3}}),
			roll("s", KindRollingStarted, "system", 0), roll("e", KindRollingSucceeded, "system", 60),
			armRead("a2", 61, v2, v2, 0), nodesSeen("n2", 75, true, map[string]map[string]int{"system": {v2: 2, v1: 1}})},
			v1 + "-2026.10.15", v2},
		{"a later second upgrade", []Signal{
			armRead("a1", -30, v1, v2, 0), roll("s", KindRollingStarted, "system", 0), roll("e", KindRollingSucceeded, "system", 60),
			armRead("a2", 120, v2, v3, 0), roll("s2", KindRollingStarted, "system", 200), roll("e2", KindRollingSucceeded, "system", 260),
			armRead("a3", 300, v3, v3, 0)}, v2, v3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, order := range [][]Signal{tc.sigs, reversed(tc.sigs)} {
				c := applyAll(t, order)
				u := c.RecentUpgrades(1)[0]
				if u.ImageBefore != tc.before || u.ImageAfter != tc.after {
					t.Errorf("images %q → %q, want %q → %q", u.ImageBefore, u.ImageAfter, tc.before, tc.after)
				}
			}
		})
	}
}

func TestApplyInventoryAndLatest(t *testing.T) {
	v1, v2 := "AKSAzureLinux-V3gen2-202609.15.0", "AKSAzureLinux-V3gen2-202610.02.0"
	older := nodesSeen("n1", 0, true, map[string]map[string]int{"user1": {v1: 4}, "system": {v1: 3}})
	newer := nodesSeen("n2", 60, true, map[string]map[string]int{"user1": {v1: 1, v2: 3}})
	for _, order := range [][]Signal{{older, newer}, {newer, older}} {
		c := applyAll(t, order)
		if got := c.Pools["user1"].Nodes; got == nil || got.Nodes != 4 || got.Versions[v2] != 3 || got.Dominant() != v2 {
			t.Errorf("user1 nodes %+v, want 4 nodes, 3 on %s", got, v2)
		}
		// The newer complete snapshot listed no system node: it has none now, and still exists.
		if got := c.Pools["system"]; got.Nodes == nil || got.Nodes.Nodes != 0 || got.Removed {
			t.Errorf("system pool nodes %+v removed=%v, want 0 nodes and not removed", got.Nodes, got.Removed)
		}
	}

	// A payload without the latest image (a resource notification) keeps the one an ARM read saw.
	read := armRead("a1", 0, v1, v2, 0)
	read.Profile.Pools[0].Name = "user1"
	note := Signal{ID: "pu", Time: at(10), Cluster: testCluster, Kind: KindPoolUpdated,
		PoolSpec: &PoolProfile{Name: "user1", Count: 5, NodeImageVersion: v1}}
	for _, order := range [][]Signal{{read, note}, {note, read}} {
		c := applyAll(t, order)
		p := c.Pools["user1"]
		if p.LatestImage != v2 || p.Spec.Count != 5 {
			t.Errorf("latest %q count %d, want %q and the newer count 5", p.LatestImage, p.Spec.Count, v2)
		}
		if !c.MaintenanceKnown || len(c.Maintenance) != 1 || c.Maintenance[0].Name != MaintenanceNodeOS {
			t.Errorf("maintenance %+v, want the read's aksManagedNodeOSUpgradeSchedule", c.Maintenance)
		}
	}
}

func TestIsGPUSize(t *testing.T) {
	for size, want := range map[string]bool{
		"Standard_NC6s_v3": true, "Standard_ND96asr_v4": true, "Standard_NV36ads_A10_v5": true,
		"Standard_NC24ads_A100_v4": true, "standard_nc4as_t4_v3": true, "Standard_NG8ads_V620_v1": true,
		"Standard_D4s_v5": false, "Standard_DS2_v2": false, "Standard_E8ds_v5": false, "Standard_NP10s": false,
		"Standard_B2ms": false, "": false, "Standard_N": false,
	} {
		if got := IsGPUSize(size); got != want {
			t.Errorf("IsGPUSize(%q) = %v, want %v", size, got, want)
		}
	}
}

func reversed(s []Signal) []Signal {
	out := make([]Signal, len(s))
	for i, x := range s {
		out[len(s)-1-i] = x
	}
	return out
}

func TestApplyRejectsInvalid(t *testing.T) {
	for _, s := range []Signal{
		{ID: "", Kind: KindRollingStarted, Pool: "np1", Time: at(0)},
		{ID: "a", Kind: KindRollingStarted, Pool: "np'1", Time: at(0)},
		{ID: "b", Kind: KindClusterUpdated, Time: at(0)},
		{ID: "c", Kind: "Bogus", Time: at(0)},
	} {
		if err := Apply(NewCluster(testCluster), s); err == nil {
			t.Errorf("Apply(%+v) accepted an invalid signal", s)
		}
	}
}

// The state after any permutation of a signal set equals the in-order state.
func TestApplyOrderIndependent(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	for trial := 0; trial < 200; trial++ {
		var sigs []Signal
		n := 0
		for _, pool := range []string{"system", "user1", "win22"} {
			t0 := rng.IntN(60)
			for week := 0; week < 3; week++ {
				start := t0 + week*10080 + rng.IntN(30)
				sigs = append(sigs, roll(fmt.Sprintf("s%d", n), KindRollingStarted, pool, start))
				n++
				switch rng.IntN(10) {
				case 0: // never ends
				case 1:
					sigs = append(sigs, roll(fmt.Sprintf("f%d", n), KindRollingFailed, pool, start+40+rng.IntN(60)))
				default:
					sigs = append(sigs, roll(fmt.Sprintf("e%d", n), KindRollingSucceeded, pool, start+20+rng.IntN(60)))
				}
				n++
			}
		}
		sigs = append(sigs,
			profile("p1", 5, "NodeImage", PoolProfile{Name: "system", Count: 3}, PoolProfile{Name: "user1", Count: 5}),
			profile("p2", 20000, "SecurityPatch", PoolProfile{Name: "system", Count: 4}),
			Signal{ID: "v1", Time: at(100), Cluster: testCluster, Kind: KindVersionsAvailable, Versions: &KubernetesVersions{LatestSupported: "1.34.2"}},
			Signal{ID: "v2", Time: at(200), Cluster: testCluster, Kind: KindVersionsAvailable, Versions: &KubernetesVersions{LatestSupported: "1.34.3"}},
			Signal{ID: "pu", Time: at(rng.IntN(30000)), Cluster: testCluster, Kind: KindPoolUpdated,
				PoolSpec: &PoolProfile{Name: "user1", Count: 7, NodeImageVersion: "AKSAzureLinux-V3gen2-202611.03.0"}},
			Signal{ID: "pd", Time: at(rng.IntN(30000)), Cluster: testCluster, Kind: KindPoolDeleted, Pool: "win22"},
			Signal{ID: "cd", Time: at(rng.IntN(40000)), Cluster: testCluster, Kind: KindClusterDeleted},
			Signal{ID: "sc1", Time: at(rng.IntN(500)), Cluster: testCluster, Kind: KindScheduledEvent,
				Scheduled: &ScheduledEvent{EventID: "ev", Status: ScheduledStatusStarted}},
			Signal{ID: "sc2", Time: at(rng.IntN(500)), Cluster: testCluster, Kind: KindScheduledEvent,
				Scheduled: &ScheduledEvent{EventID: "ev", Status: ScheduledStatusCompleted}},
		)
		for i := 0; i < 4; i++ {
			day := i * 1440
			sigs = append(sigs,
				armRead(fmt.Sprintf("arm%d", i), day+rng.IntN(1440), fmt.Sprintf("AKSUbuntu-2204gen2containerd-2026%02d.01.0", 6+i),
					fmt.Sprintf("AKSUbuntu-2204gen2containerd-2026%02d.01.0", 7+i), i),
				nodesSeen(fmt.Sprintf("inv%d", i), day+rng.IntN(1440), i%2 == 0, map[string]map[string]int{
					"system": {fmt.Sprintf("AKSUbuntu-2204gen2containerd-2026%02d.01.0", 6+i): 2 + rng.IntN(2), "AKSUbuntu-2204gen2containerd-202605.01.0": rng.IntN(2)},
					"user1":  {"AKSAzureLinux-V3gen2-202611.03.0": 1 + rng.IntN(5)},
				}))
		}
		want := applyAll(t, sigs)
		shuffled := append([]Signal(nil), sigs...)
		rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		got := applyAll(t, shuffled)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("trial %d: shuffled delivery differs (-in order +shuffled):\n%s", trial, diff)
		}
	}
}

func TestParseResourceID(t *testing.T) {
	cases := []struct {
		in    string
		want  ClusterID
		child string
		ok    bool
	}{
		{"/subscriptions/6f1c2a3b-4d5e-4f60-8a71-92b3c4d5e6f7/resourceGroups/rg-payments-prod/providers/Microsoft.ContainerService/managedClusters/aks-payments-weu",
			testCluster, "", true},
		{"/subscriptions/6f1c2a3b-4d5e-4f60-8a71-92b3c4d5e6f7/resourcegroups/rg-payments-prod/providers/microsoft.containerservice/managedclusters/aks-payments-weu/agentPools/np1",
			testCluster, "agentPools/np1", true},
		{"/subscriptions/<id>/resourceGroups<rg>/providers/Microsoft.ContainerService/managedClusters/<cluster>", ClusterID{}, "", false},
		{"/subscriptions/6f1c2a3b-4d5e-4f60-8a71-92b3c4d5e6f7/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/st1", ClusterID{}, "", false},
		{"/subscriptions/6f1c2a3b-4d5e-4f60-8a71-92b3c4d5e6f7/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/aks'1", ClusterID{}, "", false},
		{"/subscriptions/6f1c2a3b-4d5e-4f60-8a71-92b3c4d5e6f7/resourceGroups/rg~x/providers/Microsoft.ContainerService/managedClusters/aks1", ClusterID{}, "", false},
		{"", ClusterID{}, "", false},
	}
	for _, tc := range cases {
		got, child, err := ParseResourceID(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("ParseResourceID(%q) error = %v, want ok=%v", tc.in, err, tc.ok)
			continue
		}
		if got != tc.want || child != tc.child {
			t.Errorf("ParseResourceID(%q) = %+v %q, want %+v %q", tc.in, got, child, tc.want, tc.child)
		}
	}
	if k := testCluster.Key(); k != "6f1c2a3b-4d5e-4f60-8a71-92b3c4d5e6f7~rg-payments-prod~aks-payments-weu" {
		t.Errorf("Key() = %q", k)
	}
}

func TestDiffNodes(t *testing.T) {
	v1, v2 := "AKSUbuntu-2204gen2containerd-202410.27.0", "AKSUbuntu-2204gen2containerd-202410.27.0-2024.12.01"
	obs := func(name, version, ready string) NodeObservation {
		return NodeObservation{Name: name, Pool: "system", NodeImageVersion: version, OSType: "linux", Ready: ready}
	}
	first := NodeSnapshot{ID: "n1", ObservedAt: at(0), Complete: true, Nodes: []NodeObservation{
		obs("aks-system-1-vmss000000", v1, "True"), obs("aks-system-1-vmss000001", v1, "True"), obs("aks-system-1-vmss000002", v1, "True")}}
	d := DiffNodes(nil, first)
	if len(d.Changed) != 3 || len(d.History) != 0 {
		t.Fatalf("first snapshot: %d changed %d history, want 3 and 0", len(d.Changed), len(d.History))
	}
	current := map[string]Node{}
	for _, n := range d.Changed {
		current[n.Name] = n
	}
	if d := DiffNodes(current, NodeSnapshot{ID: "n1b", ObservedAt: at(10), Complete: true, Nodes: first.Nodes}); len(d.Changed) != 0 {
		t.Errorf("unchanged snapshot rewrote %d nodes", len(d.Changed))
	}

	second := NodeSnapshot{ID: "n2", ObservedAt: at(60), Complete: true, Nodes: []NodeObservation{
		obs("aks-system-1-vmss000000", v2, "True"),  // patched
		obs("aks-system-1-vmss000001", v1, "False"), // NotReady now
		obs("aks-system-1-vmss000003", v2, "True"),  // new
	}}
	d = DiffNodes(current, second)
	got := map[string]Node{}
	for _, n := range d.Changed {
		got[n.Name] = n
	}
	if len(got) != 4 {
		t.Fatalf("changed %d nodes, want 4 (patched, not ready, new, gone)", len(got))
	}
	if n := got["aks-system-1-vmss000000"]; n.VersionSince != at(60) || n.FirstSeenAt != at(0) || n.NodeImageVersion != v2 {
		t.Errorf("patched node %+v: want version since +60m, first seen +0", n)
	}
	if n := got["aks-system-1-vmss000001"]; n.VersionSince != at(0) || n.Ready != "False" {
		t.Errorf("not-ready node %+v: version since must not move", n)
	}
	if n := got["aks-system-1-vmss000002"]; !n.Gone || n.ChangedAt != at(60) {
		t.Errorf("missing node %+v: want gone at +60m", n)
	}
	want := []NodeVersionChange{{Node: "aks-system-1-vmss000000", Pool: "system", From: v1, To: v2, ObservedAt: at(60), SnapshotID: "n2"}}
	if diff := cmp.Diff(want, d.History); diff != "" {
		t.Errorf("history (-want +got):\n%s", diff)
	}
	// A partial snapshot marks nothing gone.
	if d := DiffNodes(current, NodeSnapshot{ID: "p", ObservedAt: at(90), Nodes: first.Nodes[:1]}); len(d.Changed) != 0 {
		t.Errorf("partial snapshot changed %d nodes, want 0", len(d.Changed))
	}
}
