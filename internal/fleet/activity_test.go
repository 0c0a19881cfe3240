package fleet

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// act is an activity signal as the decoders make it: its id derives from the
// correlation id, operation, status and resource.
func act(op, status, pool, actor, actorType, corr string, min int) Signal {
	res := testCluster.ResourceID()
	if pool != "" {
		res += "/agentPools/" + pool
	}
	a := Activity{Operation: op, Status: status, Pool: pool, Actor: actor, ActorType: actorType, CorrelationID: corr,
		ResourceID: res, Path: PathEventGrid, OperationName: "Microsoft.ContainerService/managedClusters/" + op}
	return Signal{ID: ActivityID(a), Type: "Microsoft.Resources.Resource" + status, Time: at(min), Cluster: testCluster,
		Kind: KindActivity, Activity: &a}
}

func onlyUpgrade(t *testing.T, c *Cluster, pool string) *Upgrade {
	t.Helper()
	var found *Upgrade
	for _, u := range c.Upgrades {
		if u.Pool == pool {
			if found != nil {
				t.Fatalf("pool %s has more than one operation: %+v", pool, ops(c))
			}
			found = u
		}
	}
	if found == nil {
		t.Fatalf("pool %s has no operation", pool)
	}
	return found
}

func TestChannelChangeAttributedToTheWrite(t *testing.T) {
	c := applyAll(t, []Signal{
		profile("p1", 0, "NodeImage", PoolProfile{Name: "system"}),
		act(OpClusterWrite, ActivityStarted, "", "alice@contoso.com", ActorUser, "corr-1", 99),
		act(OpClusterWrite, ActivitySucceeded, "", "alice@contoso.com", ActorUser, "corr-1", 100),
		// The re-enrichment the write asked for sees the new channel.
		profile("p2", 102, "SecurityPatch", PoolProfile{Name: "system"}),
		roll("s1", KindRollingStarted, "system", 300),
		roll("e1", KindRollingSucceeded, "system", 340),
		roll("s2", KindRollingStarted, "system", 10080),
	})
	ch := c.NodeOSChannelChange
	if ch == nil {
		t.Fatal("no node OS channel change derived")
	}
	want := ChannelChange{Channel: ChannelNameNodeOS, From: "NodeImage", To: "SecurityPatch", At: at(99),
		Actor: "alice@contoso.com", ActorType: ActorUser, CorrelationID: "corr-1", ActivityID: ch.ActivityID}
	if diff := cmp.Diff(want, *ch); diff != "" || ch.ActivityID == "" {
		t.Fatalf("channel change (-want +got):\n%s", diff)
	}
	if !c.NodeOSChannelChangedAt.Equal(at(99)) {
		t.Errorf("the 24 h clock starts at %v, want the write's start %v", c.NodeOSChannelChangedAt, at(99))
	}
	first := c.Upgrades[upgradeKey("system", SignalRef{ID: "s1", Time: at(300)})]
	second := c.Upgrades[upgradeKey("system", SignalRef{ID: "s2", Time: at(10080)})]
	if first == nil || second == nil {
		t.Fatalf("operations missing: %+v", ops(c))
	}
	if first.ChannelChange == nil || first.ChannelChange.Actor != "alice@contoso.com" || first.ChannelChange.From != "NodeImage" {
		t.Errorf("the first operation after the change carries %+v", first.ChannelChange)
	}
	if second.ChannelChange != nil {
		t.Errorf("a later operation carries the change too: %+v", second.ChannelChange)
	}
	if _, wanted := c.RefreshWanted(); wanted {
		t.Error("refresh still wanted after a profile newer than the write")
	}
}

func TestChannelChangeWithoutActivity(t *testing.T) {
	c := applyAll(t, []Signal{
		profile("p1", 0, "NodeImage"),
		profile("p2", 102, "SecurityPatch"),
		// A write long before the change, and a failed one in between, explain nothing.
		act(OpClusterWrite, ActivitySucceeded, "", "old@contoso.com", ActorUser, "corr-0", -30),
		act(OpClusterWrite, ActivityFailed, "", "bob@contoso.com", ActorUser, "corr-2", 50),
	})
	ch := c.NodeOSChannelChange
	if ch == nil || ch.Actor != "" || !ch.At.Equal(at(102)) || ch.From != "NodeImage" {
		t.Fatalf("change = %+v, want NodeImage→SecurityPatch at the first sighting, actor unknown", ch)
	}
}

func TestWriteActivityWantsRefresh(t *testing.T) {
	c := applyAll(t, []Signal{
		profile("p1", 0, "NodeImage"),
		act(OpMaintenanceWrite, ActivitySucceeded, "", "carol@contoso.com", ActorUser, "corr-m", 60),
	})
	since, wanted := c.RefreshWanted()
	if !wanted || !since.Equal(at(60)) {
		t.Fatalf("RefreshWanted = %v, %v; want true since %v", since, wanted, at(60))
	}
	if c.MaintenanceChange == nil || c.MaintenanceChange.Actor != "carol@contoso.com" {
		t.Errorf("maintenance change = %+v", c.MaintenanceChange)
	}
	if err := Apply(c, armRead("arm1", 61, "AKSUbuntu-2204gen2containerd-202611.01.0", "", 0)); err != nil {
		t.Fatal(err)
	}
	if _, wanted := c.RefreshWanted(); wanted {
		t.Error("refresh still wanted after an ARM read of the maintenance configurations")
	}
}

func TestUpgradeRequestMarksTheNextOperation(t *testing.T) {
	c := applyAll(t, []Signal{
		// An auto-upgrade runs first; a manual request comes after it ended.
		roll("s0", KindRollingStarted, "user1", 0),
		roll("e0", KindRollingSucceeded, "user1", 40),
		act(OpPoolUpgradeImage, ActivityStarted, "user1", "Microsoft.ContainerService", ActorAKS, "corr-auto", -1),
		act(OpPoolUpgradeImage, ActivityStarted, "user1", "bob@contoso.com", ActorUser, "corr-bob", 500),
		act(OpPoolUpgradeImage, ActivitySucceeded, "user1", "bob@contoso.com", ActorUser, "corr-bob", 590),
		roll("s1", KindRollingStarted, "user1", 501),
		roll("e1", KindRollingSucceeded, "user1", 588),
		roll("s2", KindRollingStarted, "user1", 10080),
	})
	byStart := map[int]*Upgrade{}
	for _, u := range c.Upgrades {
		byStart[int(u.StartedAt.Sub(base)/time.Minute)] = u
	}
	if u := byStart[0]; u == nil || u.Trigger != TriggerAutomatic || u.RequestedBy != AKSCaller {
		t.Errorf("first operation: %+v, want Automatic by AKS", u)
	}
	if u := byStart[501]; u == nil || u.Trigger != TriggerManual || u.RequestedBy != "bob@contoso.com" ||
		!u.RequestedAt.Equal(at(500)) || u.RequestCorrelationID != "corr-bob" {
		t.Errorf("second operation: %+v, want Manual by bob at %v", u, at(500))
	}
	if u := byStart[10080]; u == nil || u.Trigger != "" {
		t.Errorf("third operation: %+v, want no trigger", u)
	}
}

// Event Grid's ResourceActionSuccess is ARM accepting the request: the
// rolling that follows is the request's.
func TestAcceptedOnlyRequestMarksTheFollowingOperation(t *testing.T) {
	c := applyAll(t, []Signal{
		act(OpPoolUpgradeImage, ActivitySucceeded, "spark", "dana@contoso.com", ActorUser, "corr-eg", 100),
		roll("s1", KindRollingStarted, "spark", 101),
		roll("e1", KindRollingSucceeded, "spark", 140),
	})
	if u := onlyUpgrade(t, c, "spark"); u.Trigger != TriggerManual || u.RequestedBy != "dana@contoso.com" {
		t.Fatalf("operation trigger %q by %q, want Manual by dana", u.Trigger, u.RequestedBy)
	}
}

func TestRejectedRequestDoesNotEndTheRunningOperation(t *testing.T) {
	c := applyAll(t, []Signal{
		roll("s1", KindRollingStarted, "user1", 0),
		// ARM refused a manual request while AKS was rolling the pool.
		act(OpPoolUpgradeImage, ActivityFailed, "user1", "bob@contoso.com", ActorUser, "corr-409", 10),
	})
	u := onlyUpgrade(t, c, "user1")
	if u.Outcome != OutcomeInProgress || u.Trigger != "" {
		t.Fatalf("operation %s trigger %q, want InProgress and no trigger", u.Outcome, u.Trigger)
	}
	if len(u.Failures) != 1 || u.Failures[0].Actor != "bob@contoso.com" {
		t.Errorf("failures = %+v, want bob's refused request as evidence", u.Failures)
	}
}

func TestFailedRequestEndsItsOperation(t *testing.T) {
	c := applyAll(t, []Signal{
		act(OpPoolUpgradeImage, ActivityStarted, "user1", "bob@contoso.com", ActorUser, "corr-lro", 0),
		roll("s1", KindRollingStarted, "user1", 1),
		act(OpPoolUpgradeImage, ActivityFailed, "user1", "bob@contoso.com", ActorUser, "corr-lro", 90),
		// AKS's rolling failure arrives later and joins the same operation.
		roll("f1", KindRollingFailed, "user1", 95),
	})
	u := onlyUpgrade(t, c, "user1")
	if u.Outcome != OutcomeFailed || !u.EndedAt.Equal(at(90)) || u.ClosedBy == "" || len(u.Signals) != 2 {
		t.Fatalf("operation %+v, want Failed at %v closed by the activity, with both rolling signals", u, at(90))
	}
	if len(u.Failures) != 1 || u.Trigger != TriggerManual {
		t.Errorf("failures %d trigger %q", len(u.Failures), u.Trigger)
	}
	if c.Pools["user1"].RollingState != RollingFailed {
		t.Errorf("pool rolling state %s", c.Pools["user1"].RollingState)
	}
}

func TestAbortCancelsTheOpenOperation(t *testing.T) {
	c := applyAll(t, []Signal{
		roll("s1", KindRollingStarted, "system", 0),
		act(OpPoolAbort, ActivitySucceeded, "system", "dave@contoso.com", ActorUser, "corr-abort", 30),
		roll("f1", KindRollingFailed, "system", 32),
		roll("s2", KindRollingStarted, "system", 300),
	})
	var first *Upgrade
	for _, u := range c.Upgrades {
		if u.StartedAt.Equal(at(0)) {
			first = u
		}
	}
	if first == nil || first.Outcome != OutcomeCanceled || !first.EndedAt.Equal(at(30)) || len(first.Signals) != 2 {
		t.Fatalf("aborted operation = %+v, want Canceled at %v with its rolling failure joined", first, at(30))
	}
	if len(c.Upgrades) != 2 || c.Pools["system"].RollingState != RollingActive {
		t.Errorf("operations %+v, pool %s", ops(c), c.Pools["system"].RollingState)
	}
}

// A deletion the activity log reports is evidence, not state: the pool and
// the cluster stay, carry the report and want an ARM read; ARM's answer
// decides.
func TestDeletionActivities(t *testing.T) {
	sigs := []Signal{
		profile("p1", 0, "NodeImage", PoolProfile{Name: "system"}, PoolProfile{Name: "user1"}),
		act(OpPoolDelete, ActivityStarted, "user1", "erin@contoso.com", ActorUser, "corr-pd", 10),
		act(OpPoolDelete, ActivitySucceeded, "user1", "erin@contoso.com", ActorUser, "corr-pd", 12),
	}
	c := applyAll(t, sigs)
	user1 := c.Pools["user1"]
	if user1.Removed || c.Deleted || c.DeletionReported != nil {
		t.Fatalf("after the pool delete: user1 removed %v, cluster deleted %v, cluster report %+v; want nothing applied",
			user1.Removed, c.Deleted, c.DeletionReported)
	}
	want := &DeletionReport{At: at(12), Actor: "erin@contoso.com", ActorType: ActorUser, CorrelationID: "corr-pd",
		Source: PathEventGrid, ActivityID: sigs[2].ID}
	if diff := cmp.Diff(want, user1.DeletionReported); diff != "" {
		t.Errorf("user1's report (-want +got):\n%s", diff)
	}
	if since, ok := c.RefreshWanted(); !ok || !since.Equal(at(12)) {
		t.Errorf("RefreshWanted = %v, %v; want since the report", since, ok)
	}

	del := act(OpClusterDelete, ActivitySucceeded, "", "erin@contoso.com", ActorUser, "corr-cd", 20)
	sigs = append(sigs, del)
	c = applyAll(t, sigs)
	if c.Deleted || c.DeletionReported == nil || c.DeletionReported.ActivityID != del.ID {
		t.Fatalf("after the cluster delete: deleted %v, report %+v; want the report only", c.Deleted, c.DeletionReported)
	}
	if since, _ := c.RefreshWanted(); !since.Equal(at(20)) {
		t.Errorf("refresh wanted since %v, want the newest report %v", since, at(20))
	}
	// An older payload neither confirms nor clears it.
	if err := Apply(c, profile("p0", 11, "NodeImage", PoolProfile{Name: "system"}, PoolProfile{Name: "user1"})); err != nil {
		t.Fatal(err)
	}
	if c.DeletionReported == nil || c.Pools["user1"].DeletionReported == nil {
		t.Error("an older profile cleared the reports")
	}

	for _, tc := range []struct {
		name          string
		then          Signal
		deleted       bool
		user1Removed  bool
		clusterReport bool
		user1Report   bool
	}{
		{"ARM answers 404", Signal{ID: "arm-404", Type: TypeARMRead, Time: at(25), Cluster: testCluster, Kind: KindClusterDeleted},
			true, false, false, false},
		{"ARM lists the cluster without user1", profile("arm-200", 25, "NodeImage", PoolProfile{Name: "system"}),
			false, true, false, false},
		{"ARM lists both pools", profile("arm-200", 25, "NodeImage", PoolProfile{Name: "system"}, PoolProfile{Name: "user1"}),
			false, false, false, false},
		{"a later rolling event of the system pool", roll("s1", KindRollingStarted, "system", 22),
			false, false, false, true},
		{"a later write", act(OpClusterWrite, ActivitySucceeded, "", "frank@contoso.com", ActorUser, "corr-cw", 30),
			false, false, false, true},
		{"a rolling event between the reports", roll("s0", KindRollingStarted, "user1", 18),
			false, false, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := applyAll(t, append(append([]Signal(nil), sigs...), tc.then))
			u := c.Pools["user1"]
			if c.Deleted != tc.deleted || u.Removed != tc.user1Removed ||
				(c.DeletionReported != nil) != tc.clusterReport || (u.DeletionReported != nil) != tc.user1Report {
				t.Errorf("deleted %v, user1 removed %v, cluster report %v, user1 report %v; want %v %v %v %v",
					c.Deleted, u.Removed, c.DeletionReported != nil, u.DeletionReported != nil,
					tc.deleted, tc.user1Removed, tc.clusterReport, tc.user1Report)
			}
			if _, ok := c.RefreshWanted(); ok != (tc.clusterReport || tc.user1Report || tc.then.Kind == KindActivity) {
				t.Errorf("RefreshWanted = %v", ok)
			}
		})
	}
}

func TestActivitiesAreBounded(t *testing.T) {
	var sigs []Signal
	for i := 0; i < maxActivities+50; i++ {
		sigs = append(sigs, act(OpClusterWrite, ActivitySucceeded, "", "ci@contoso.com", ActorUser, fmt.Sprintf("corr-%03d", i), i))
	}
	// And one far older than the retention.
	sigs = append(sigs, act(OpClusterWrite, ActivitySucceeded, "", "ci@contoso.com", ActorUser, "ancient", -90*1440))
	c := applyAll(t, sigs)
	if len(c.Activities) != maxActivities {
		t.Fatalf("kept %d activities, want %d", len(c.Activities), maxActivities)
	}
	if c.Activities[0].CorrelationID != "corr-050" || c.Activities[len(c.Activities)-1].CorrelationID != "corr-149" {
		t.Errorf("kept %s…%s, want the newest", c.Activities[0].CorrelationID, c.Activities[len(c.Activities)-1].CorrelationID)
	}
}

func TestApplyRejectsBadActivity(t *testing.T) {
	c := NewCluster(testCluster)
	if err := Apply(c, Signal{ID: "x", Time: at(0), Cluster: testCluster, Kind: KindActivity}); err == nil {
		t.Error("an activity signal without an activity was applied")
	}
	bad := act(OpPoolUpgradeImage, ActivitySucceeded, "not-a-pool!", "x", "", "c", 0)
	if err := Apply(c, bad); err == nil {
		t.Error("a pool activity with an invalid pool name was applied")
	}
}

func TestActivityIDIgnoresPathAndCase(t *testing.T) {
	a := Activity{Operation: OpClusterWrite, Status: ActivitySucceeded, CorrelationID: "0C6B3F1E-2A47", ResourceID: "/SUBSCRIPTIONS/X/RESOURCEGROUPS/RG/PROVIDERS/MICROSOFT.CONTAINERSERVICE/MANAGEDCLUSTERS/AKS1", Path: PathExport, DeliveryID: "a"}
	b := Activity{Operation: OpClusterWrite, Status: ActivitySucceeded, CorrelationID: "0c6b3f1e-2a47", ResourceID: "/subscriptions/x/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/aks1/", Path: PathEventGrid, DeliveryID: "b"}
	if ActivityID(a) != ActivityID(b) {
		t.Error("the same activity on two paths has two ids")
	}
	b.Status = ActivityStarted
	if ActivityID(a) == ActivityID(b) {
		t.Error("two phases of one request share an id")
	}
	a.CorrelationID, b.CorrelationID, b.Status = "", "", a.Status
	if ActivityID(a) == ActivityID(b) {
		t.Error("without a correlation id, two deliveries on different paths collapsed")
	}
}

func TestNormaliseActivityStatus(t *testing.T) {
	for in, want := range map[string]string{"Start": ActivityStarted, "Started.": ActivityStarted, "Success": ActivitySucceeded,
		"Succeeded.OK": ActivitySucceeded, "Failure": ActivityFailed, "failed": ActivityFailed, "Cancelled": ActivityCanceled,
		"Accept": ActivityAccepted, "Active": "Active"} {
		if got := NormaliseActivityStatus(in); got != want {
			t.Errorf("NormaliseActivityStatus(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{
		"MICROSOFT.CONTAINERSERVICE/MANAGEDCLUSTERS/AGENTPOOLS/UPGRADENODEIMAGEVERSION/ACTION": OpPoolUpgradeImage,
		"Microsoft.ContainerService/managedClusters/agentpools/write":                          OpPoolWrite,
		"Microsoft.ContainerService/managedClusters/maintenanceConfigurations/delete":          OpMaintenanceDelete,
		"Microsoft.ContainerService/managedClusters/listClusterUserCredential/action":          "",
		"Microsoft.Storage/storageAccounts/write":                                              "",
	} {
		if got := ClassifyOperation(in); got != want {
			t.Errorf("ClassifyOperation(%q) = %q, want %q", in, got, want)
		}
	}
}

// Activities join the order-independence guarantee: attribution, closing and
// pruning are functions of the set of signals.
func TestActivityOrderIndependent(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 5))
	for trial := 0; trial < 200; trial++ {
		sigs := []Signal{
			profile("p1", 0, "NodeImage", PoolProfile{Name: "system"}, PoolProfile{Name: "user1"}),
			profile("p2", 200+rng.IntN(20), "SecurityPatch", PoolProfile{Name: "system"}, PoolProfile{Name: "user1"}),
			act(OpClusterWrite, ActivityStarted, "", "alice@contoso.com", ActorUser, "c-w", 190),
			act(OpClusterWrite, ActivitySucceeded, "", "alice@contoso.com", ActorUser, "c-w", 195+rng.IntN(10)),
			act(OpMaintenanceWrite, ActivitySucceeded, "", "carol@contoso.com", ActorUser, "c-m", rng.IntN(400)),
		}
		n := 0
		for _, pool := range []string{"system", "user1"} {
			for k := 0; k < 4; k++ {
				start := k*600 + rng.IntN(100)
				if rng.IntN(2) == 0 {
					corr := fmt.Sprintf("c-r%d", n)
					sigs = append(sigs, act(OpPoolUpgradeImage, ActivityStarted, pool, "bob@contoso.com", ActorUser, corr, start-1))
					if rng.IntN(3) == 0 {
						sigs = append(sigs, act(OpPoolUpgradeImage, ActivityFailed, pool, "bob@contoso.com", ActorUser, corr, start+30))
					}
				}
				sigs = append(sigs, roll(fmt.Sprintf("s%d", n), KindRollingStarted, pool, start))
				switch rng.IntN(4) {
				case 0:
					sigs = append(sigs, act(OpPoolAbort, ActivitySucceeded, pool, "dave@contoso.com", ActorUser, fmt.Sprintf("c-a%d", n), start+20))
				case 1:
					sigs = append(sigs, roll(fmt.Sprintf("f%d", n), KindRollingFailed, pool, start+40))
				default:
					sigs = append(sigs, roll(fmt.Sprintf("e%d", n), KindRollingSucceeded, pool, start+50))
				}
				n++
			}
		}
		if rng.IntN(3) == 0 {
			sigs = append(sigs, act(OpPoolDelete, ActivitySucceeded, "user1", "erin@contoso.com", ActorUser, "c-d", rng.IntN(3000)))
		}
		// Reported deletions and ARM's answers, in any order.
		if rng.IntN(2) == 0 {
			sigs = append(sigs, act(OpClusterDelete, ActivitySucceeded, "", "erin@contoso.com", ActorUser, "c-cd", rng.IntN(3000)))
		}
		switch rng.IntN(3) {
		case 0:
			sigs = append(sigs, Signal{ID: "arm-404", Type: TypeARMRead, Time: at(rng.IntN(3000)), Cluster: testCluster, Kind: KindClusterDeleted})
		case 1:
			sigs = append(sigs, profile("arm-200", rng.IntN(3000), "SecurityPatch", PoolProfile{Name: "system"}))
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
