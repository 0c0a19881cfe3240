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
