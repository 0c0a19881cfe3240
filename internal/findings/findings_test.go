package findings

import (
	"testing"
	"time"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
)

var (
	aks = fleet.ClusterID{SubscriptionID: "6f1c2a3b-4d5e-4f60-8a71-92b3c4d5e6f7", ResourceGroup: "rg-payments-prod", Name: "aks-payments-weu"}
	// Tuesday 2026-11-24 09:00 UTC.
	now = time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
)

const (
	ubuntuFresh = "AKSUbuntu-2204gen2containerd-202611.17.0"
	ubuntuOld   = "AKSUbuntu-2204gen2containerd-202610.20.0"
	ubuntuMid   = "AKSUbuntu-2204gen2containerd-202611.03.0"
	azlFresh    = "AKSAzureLinux-V3gen2-202611.17.0"
	winFresh    = "AKSWindows-2022-containerd-20348.4405.251111"
)

func pools(sys string) []fleet.PoolProfile {
	return []fleet.PoolProfile{
		{Name: "system", Mode: "System", OSType: "Linux", OSSKU: "Ubuntu", VMSize: "Standard_D4ds_v5", Count: 3,
			NodeImageVersion: sys, LatestNodeImageVersion: ubuntuFresh, MaxSurge: "33%", DrainTimeoutMinutes: 30},
		{Name: "payments", Mode: "User", OSType: "Linux", OSSKU: "AzureLinux", VMSize: "Standard_D8ds_v5", Count: 6,
			NodeImageVersion: azlFresh, LatestNodeImageVersion: azlFresh, MaxSurge: "2"},
	}
}

// read is an ARM read: channels, pools, maintenance windows.
func read(id string, at time.Time, nodeOS, upgrade string, ps []fleet.PoolProfile, windows ...fleet.MaintenanceWindow) fleet.Signal {
	return fleet.Signal{ID: id, Type: fleet.TypeARMRead, Time: at, Cluster: aks, Kind: fleet.KindClusterUpdated,
		Profile: &fleet.ClusterProfile{Location: "westeurope", KubernetesVersion: "1.31.9", NodeOSUpgradeChannel: nodeOS,
			UpgradeChannel: upgrade, Pools: ps, MaintenanceKnown: true, Maintenance: windows}}
}

func roll(id string, kind fleet.SignalKind, pool string, at time.Time) fleet.Signal {
	return fleet.Signal{ID: id, Time: at, Cluster: aks, Kind: kind, Pool: pool}
}

func nodesSeen(id string, at time.Time, pool string, pn fleet.PoolNodes) fleet.Signal {
	return fleet.Signal{ID: id, Time: at, Cluster: aks, Kind: fleet.KindNodesObserved, Type: fleet.TypeNodeSnapshot,
		Inventory: &fleet.InventorySummary{Pools: map[string]fleet.PoolNodes{pool: pn}}}
}

var sundayWindow = fleet.MaintenanceWindow{Name: fleet.MaintenanceNodeOS, DurationHours: 4, StartTime: "01:00", UTCOffset: "+00:00",
	StartDate: "2026-01-04", Schedule: fleet.MaintenanceSchedule{Kind: fleet.ScheduleWeekly, IntervalWeeks: 1, DayOfWeek: "Sunday"}}

// healthy is a cluster on NodeImage/patch, fresh images, a 4-hour Sunday window.
func healthy() []fleet.Signal {
	return []fleet.Signal{read("arm-0", now.Add(-2*time.Hour), "NodeImage", "patch", pools(ubuntuFresh), sundayWindow)}
}

var nodeImagePolicy = fleet.Policy{NodeOSChannel: "NodeImage", UpgradeChannel: "patch", Source: "defaults"}

func build(t *testing.T, sigs []fleet.Signal) *fleet.Cluster {
	t.Helper()
	c := fleet.NewCluster(aks)
	for _, s := range sigs {
		if err := fleet.Apply(c, s); err != nil {
			t.Fatalf("apply %s: %v", s.ID, err)
		}
	}
	return c
}

func keys(r Result) map[string]fleet.Observation {
	out := map[string]fleet.Observation{}
	for _, o := range r.Observations {
		out[fleet.FindingKey(o.Code, o.Target)] = o
	}
	return out
}

func TestHealthyClusterHasNoFindings(t *testing.T) {
	r := Evaluate(build(t, healthy()), nodeImagePolicy, nil, now)
	if len(r.Observations) != 0 {
		t.Fatalf("healthy cluster: %+v", r.Observations)
	}
	// The next Sunday window ending is a time worth looking again.
	if r.Next.IsZero() {
		t.Errorf("no next evaluation time for a cluster with images ageing and a window ahead")
	}
}

// Every code opens from realistic inputs and resolves when the condition goes.
func TestEachCodeOpensAndResolves(t *testing.T) {
	t1 := now.Add(-26 * time.Hour)
	cases := []struct {
		name    string
		code    string
		target  string
		sev     string
		open    []fleet.Signal
		policy  fleet.Policy
		problem []string
		at      time.Time
		// resolve: more signals, a later time, or another policy.
		fix       []fleet.Signal
		fixAt     time.Time
		fixPolicy *fleet.Policy
		fixNoProb bool
	}{
		{name: "node OS channel drifted to Unmanaged", code: fleet.CodeChannelDrift, target: "cluster", sev: fleet.SeverityWarning,
			open: []fleet.Signal{read("arm-1", now.Add(-time.Hour), "Unmanaged", "patch", pools(ubuntuFresh), sundayWindow)},
			fix:  []fleet.Signal{read("arm-2", now, "NodeImage", "patch", pools(ubuntuFresh), sundayWindow)}},
		{name: "cluster channel drifted to rapid", code: fleet.CodeUpgradeChannelDrift, target: "cluster", sev: fleet.SeverityWarning,
			open: []fleet.Signal{read("arm-1", now.Add(-time.Hour), "NodeImage", "rapid", pools(ubuntuFresh), sundayWindow)},
			fix:  []fleet.Signal{read("arm-2", now, "NodeImage", "patch", pools(ubuntuFresh), sundayWindow)}},
		{name: "Windows pool on SecurityPatch", code: fleet.CodeUnsupportedChannel, target: "pool/win22", sev: fleet.SeverityError,
			policy: fleet.Policy{NodeOSChannel: "SecurityPatch"},
			open: []fleet.Signal{read("arm-1", now.Add(-time.Hour), "SecurityPatch", "patch", append(pools(ubuntuFresh),
				fleet.PoolProfile{Name: "win22", Mode: "User", OSType: "Windows", OSSKU: "Windows2022", VMSize: "Standard_D4s_v5", Count: 2, NodeImageVersion: winFresh}), sundayWindow)},
			fix: []fleet.Signal{{ID: "del", Time: now, Cluster: aks, Kind: fleet.KindPoolDeleted, Pool: "win22"}}},
		{name: "Azure Linux GPU pool on SecurityPatch", code: fleet.CodeUnsupportedChannel, target: "pool/gpu", sev: fleet.SeverityError,
			open: []fleet.Signal{read("arm-1", now.Add(-time.Hour), "SecurityPatch", "patch", append(pools(ubuntuFresh),
				fleet.PoolProfile{Name: "gpu", OSType: "Linux", OSSKU: "AzureLinux", VMSize: "Standard_NC24ads_A100_v4", Count: 1, NodeImageVersion: azlFresh}), sundayWindow)},
			fix: []fleet.Signal{read("arm-2", now, "NodeImage", "patch", pools(ubuntuFresh), sundayWindow)}},
		{name: "policy wants SecurityPatch under node-image", code: fleet.CodeChannelLocked, target: "cluster", sev: fleet.SeverityWarning,
			policy: fleet.Policy{NodeOSChannel: "SecurityPatch"},
			open:   []fleet.Signal{read("arm-1", now.Add(-time.Hour), "NodeImage", "node-image", pools(ubuntuFresh), sundayWindow)},
			fix:    []fleet.Signal{read("arm-2", now, "SecurityPatch", "patch", pools(ubuntuFresh), sundayWindow)}},
		{name: "channel None", code: fleet.CodeNoSecurityUpdates, target: "cluster", sev: fleet.SeverityError,
			open: []fleet.Signal{read("arm-1", now.Add(-time.Hour), "None", "patch", pools(ubuntuFresh), sundayWindow)},
			fix:  []fleet.Signal{read("arm-2", now, "NodeImage", "patch", pools(ubuntuFresh), sundayWindow)}},
		{name: "Windows pool on Unmanaged", code: fleet.CodeNoSecurityUpdates, target: "pool/win22", sev: fleet.SeverityError,
			open: []fleet.Signal{read("arm-1", now.Add(-time.Hour), "Unmanaged", "patch", append(pools(ubuntuFresh),
				fleet.PoolProfile{Name: "win22", OSType: "Windows", OSSKU: "Windows2022", Count: 2, NodeImageVersion: winFresh}), sundayWindow)},
			fix: []fleet.Signal{read("arm-2", now, "NodeImage", "patch", append(pools(ubuntuFresh),
				fleet.PoolProfile{Name: "win22", OSType: "Windows", OSSKU: "Windows2022", Count: 2, NodeImageVersion: winFresh}), sundayWindow)}},
		{name: "Unmanaged Linux needs a reboot manager", code: fleet.CodeRebootsUnmanaged, target: "cluster", sev: fleet.SeverityInfo,
			open: []fleet.Signal{read("arm-1", now.Add(-time.Hour), "Unmanaged", "patch", pools(ubuntuFresh), sundayWindow)},
			fix:  []fleet.Signal{read("arm-2", now, "SecurityPatch", "patch", pools(ubuntuFresh), sundayWindow)}},
		{name: "node OS window shorter than the policy's 6 h", code: fleet.CodeMaintenanceWindowTooShort,
			target: "maintenance/aksManagedNodeOSUpgradeSchedule", sev: fleet.SeverityWarning,
			policy: fleet.Policy{MinWindowHours: 6}, open: healthy(),
			fix: func() []fleet.Signal {
				w := sundayWindow
				w.DurationHours = 8
				return []fleet.Signal{read("arm-2", now, "NodeImage", "patch", pools(ubuntuFresh), w)}
			}()},
		{name: "no node OS window though policy requires one", code: fleet.CodeMaintenanceWindowMissing,
			target: "maintenance/aksManagedNodeOSUpgradeSchedule", sev: fleet.SeverityWarning,
			policy: fleet.Policy{RequireNodeOSWindow: true},
			open: []fleet.Signal{read("arm-1", now.Add(-time.Hour), "NodeImage", "patch", pools(ubuntuFresh),
				fleet.MaintenanceWindow{Name: fleet.MaintenanceDefault, TimeInWeek: []fleet.TimeInWeek{{Day: "Saturday", HourSlots: []int{1, 2, 3, 4}}}})},
			fix: []fleet.Signal{read("arm-2", now, "NodeImage", "patch", pools(ubuntuFresh), sundayWindow)}},
		{name: "channel changed 26 h ago, nothing rolled", code: fleet.CodeChannelChangeNotApplied, target: "cluster", sev: fleet.SeverityWarning,
			open: []fleet.Signal{read("arm-1", t1.Add(-time.Hour), "Unmanaged", "patch", pools(ubuntuFresh), sundayWindow),
				read("arm-2", t1, "NodeImage", "patch", pools(ubuntuFresh), sundayWindow)},
			fix: []fleet.Signal{roll("s1", fleet.KindRollingStarted, "system", now.Add(-time.Hour))}},
		{name: "system pool rolling for 3 h (2 h expected)", code: fleet.CodeUpgradeStalled, target: "pool/system", sev: fleet.SeverityError,
			open: append(healthy(), roll("s1", fleet.KindRollingStarted, "system", now.Add(-3*time.Hour))),
			fix:  []fleet.Signal{roll("e1", fleet.KindRollingSucceeded, "system", now.Add(-10*time.Minute))}},
		{name: "rolling failed", code: fleet.CodeUpgradeFailed, target: "pool/system", sev: fleet.SeverityError,
			open: append(healthy(), roll("s1", fleet.KindRollingStarted, "system", now.Add(-5*time.Hour)),
				roll("f1", fleet.KindRollingFailed, "system", now.Add(-4*time.Hour))),
			fix: []fleet.Signal{roll("s2", fleet.KindRollingStarted, "system", now.Add(-2*time.Hour)),
				roll("e2", fleet.KindRollingSucceeded, "system", now.Add(-time.Hour))}},
		{name: "Communication Manager reported a failure", code: fleet.CodeUpgradeFailed, target: "scheduled/ev-7f3a", sev: fleet.SeverityError,
			open: append(healthy(), fleet.Signal{ID: "sc1", Time: now.Add(-6 * time.Hour), Cluster: aks, Kind: fleet.KindScheduledEvent,
				Scheduled: &fleet.ScheduledEvent{EventID: "ev-7f3a", Status: fleet.ScheduledStatusFailed, UpgradeType: "NodeOSUpgrade",
					Details: "Drain of node aks-system-31415926-vmss000002 did not complete within 30 minutes"}}),
			fix: []fleet.Signal{{ID: "sc2", Time: now.Add(-time.Hour), Cluster: aks, Kind: fleet.KindScheduledEvent,
				Scheduled: &fleet.ScheduledEvent{EventID: "ev-8a01", Status: fleet.ScheduledStatusCompleted, UpgradeType: "NodeOSUpgrade"}}}},
		{name: "image 35 days old on a weekly channel", code: fleet.CodeImageStale, target: "pool/system", sev: fleet.SeverityWarning,
			open: []fleet.Signal{read("arm-1", now.Add(-time.Hour), "NodeImage", "patch", pools(ubuntuOld), sundayWindow)},
			fix:  []fleet.Signal{read("arm-2", now, "NodeImage", "patch", pools(ubuntuFresh), sundayWindow)}},
		{name: "newest image out for longer than the grace", code: fleet.CodeImageStale, target: "pool/system/latest", sev: fleet.SeverityWarning,
			open: []fleet.Signal{read("arm-1", now.Add(-time.Hour), "NodeImage", "patch", pools(ubuntuMid), sundayWindow)},
			at:   now.Add(24 * time.Hour),
			fix:  []fleet.Signal{read("arm-2", now.Add(20*time.Hour), "NodeImage", "patch", pools(ubuntuFresh), sundayWindow)}},
		{name: "Sunday window passed with a newer image available", code: fleet.CodeMissedMaintenanceWindow, target: "pool/system", sev: fleet.SeverityWarning,
			open: []fleet.Signal{read("arm-1", time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC), "NodeImage", "patch", pools(ubuntuMid), sundayWindow)},
			fix:  []fleet.Signal{roll("s1", fleet.KindRollingStarted, "system", now.Add(-30*time.Minute))}},
		{name: "pool left on two versions after its upgrade", code: fleet.CodeVersionSkew, target: "pool/system", sev: fleet.SeverityWarning,
			open: append(healthy(), roll("s1", fleet.KindRollingStarted, "system", now.Add(-5*time.Hour)),
				roll("e1", fleet.KindRollingSucceeded, "system", now.Add(-4*time.Hour)),
				nodesSeen("n1", now.Add(-time.Hour), "system", fleet.PoolNodes{Nodes: 3, Ready: 3, Versions: map[string]int{ubuntuFresh: 2, ubuntuMid: 1}})),
			fix: []fleet.Signal{nodesSeen("n2", now, "system", fleet.PoolNodes{Nodes: 3, Ready: 3, Versions: map[string]int{ubuntuFresh: 3}})}},
		{name: "Ubuntu pools on different versions", code: fleet.CodeVersionSkew, target: "family/AKSUbuntu-2204gen2containerd", sev: fleet.SeverityInfo,
			open: []fleet.Signal{read("arm-1", now.Add(-time.Hour), "NodeImage", "patch", append(pools(ubuntuFresh),
				fleet.PoolProfile{Name: "batch", OSType: "Linux", OSSKU: "Ubuntu", Count: 2, NodeImageVersion: ubuntuMid, LatestNodeImageVersion: ubuntuFresh}), sundayWindow)},
			fix: []fleet.Signal{read("arm-2", now, "NodeImage", "patch", append(pools(ubuntuFresh),
				fleet.PoolProfile{Name: "batch", OSType: "Linux", OSSKU: "Ubuntu", Count: 2, NodeImageVersion: ubuntuFresh}), sundayWindow)}},
		{name: "quarantined node", code: fleet.CodeNodeQuarantined, target: "pool/payments", sev: fleet.SeverityWarning,
			open: append(healthy(), nodesSeen("n1", now.Add(-time.Hour), "payments", fleet.PoolNodes{Nodes: 6, Ready: 6, Quarantined: 1, Cordoned: 1,
				QuarantinedNodes: []string{"aks-payments-23456789-vmss000004"}, Versions: map[string]int{azlFresh: 6}})),
			fix: []fleet.Signal{nodesSeen("n2", now, "payments", fleet.PoolNodes{Nodes: 6, Ready: 6, Versions: map[string]int{azlFresh: 6}})}},
		{name: "support ending", code: fleet.CodeClusterSupportEnding, target: "cluster", sev: fleet.SeverityWarning,
			open: append(healthy(), fleet.Signal{ID: "se", Time: now.Add(-time.Hour), Cluster: aks, Kind: fleet.KindSupportEnding,
				Support: &fleet.SupportNotice{KubernetesVersion: "1.31.9"}}),
			fix: func() []fleet.Signal {
				s := read("arm-2", now, "NodeImage", "patch", pools(ubuntuFresh), sundayWindow)
				s.Profile.KubernetesVersion = "1.32.3"
				return []fleet.Signal{s}
			}()},
		{name: "support ended", code: fleet.CodeClusterSupportEnded, target: "cluster", sev: fleet.SeverityError,
			open: append(healthy(), fleet.Signal{ID: "se", Time: now.Add(-time.Hour), Cluster: aks, Kind: fleet.KindSupportEnded,
				Support: &fleet.SupportNotice{KubernetesVersion: "1.31.9"}}),
			fix: func() []fleet.Signal {
				s := read("arm-2", now, "NodeImage", "patch", pools(ubuntuFresh), sundayWindow)
				s.Profile.KubernetesVersion = "1.32.3"
				return []fleet.Signal{s}
			}()},
		{name: "a tag AKS cannot honour", code: fleet.CodePolicyNotApplicable, target: "cluster", sev: fleet.SeverityWarning,
			open: healthy(), problem: []string{"tag upgradewatch.nodeOSChannel=SecurityPatch: AKS does not support SecurityPatch on Windows pools"},
			fixNoProb: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			policy := tc.policy
			if policy == (fleet.Policy{}) {
				policy = nodeImagePolicy
			}
			at := tc.at
			if at.IsZero() {
				at = now
			}
			c := build(t, tc.open)
			key := fleet.FindingKey(tc.code, tc.target)
			got, ok := keys(Evaluate(c, policy, tc.problem, at))[key]
			if !ok {
				t.Fatalf("%s did not open; observations: %v", key, keys(Evaluate(c, policy, tc.problem, at)))
			}
			if got.Severity != tc.sev || got.Summary == "" || len(got.Evidence) == 0 {
				t.Errorf("%s: severity %q summary %q evidence %v; want severity %s and a summary and evidence", key, got.Severity, got.Summary, got.Evidence, tc.sev)
			}
			trans := fleet.Reconcile(c, Evaluate(c, policy, tc.problem, at).Observations, at)
			if !hasTransition(trans, key, fleet.TransitionOpened) {
				t.Fatalf("reconcile did not open %s: %+v", key, trans)
			}

			for _, s := range tc.fix {
				if err := fleet.Apply(c, s); err != nil {
					t.Fatal(err)
				}
			}
			if tc.fixPolicy != nil {
				policy = *tc.fixPolicy
			}
			problems := tc.problem
			if tc.fixNoProb {
				problems = nil
			}
			fixAt := at
			if !tc.fixAt.IsZero() {
				fixAt = tc.fixAt
			}
			r := Evaluate(c, policy, problems, fixAt)
			if o, still := keys(r)[key]; still {
				t.Fatalf("%s still open after the fix: %s %v", key, o.Summary, o.Evidence)
			}
			trans = fleet.Reconcile(c, r.Observations, fixAt)
			if !hasTransition(trans, key, fleet.TransitionResolved) || c.Findings[key].Status != fleet.FindingResolved {
				t.Errorf("reconcile did not resolve %s: %+v", key, trans)
			}
		})
	}
}

func hasTransition(ts []fleet.Transition, key, kind string) bool {
	for _, t := range ts {
		if t.Finding.Key() == key && t.Kind == kind {
			return true
		}
	}
	return false
}

// Time-based rules say when they may change, so the sweep can wait for it.
func TestNextEvaluation(t *testing.T) {
	start := now.Add(-time.Hour)
	c := build(t, append(healthy(), roll("s1", fleet.KindRollingStarted, "system", start)))
	r := Evaluate(c, nodeImagePolicy, nil, now)
	if _, stalled := keys(r)[fleet.FindingKey(fleet.CodeUpgradeStalled, "pool/system")]; stalled {
		t.Fatalf("stalled after 1 h of an expected 2 h")
	}
	// 3 nodes, maxSurge 33% → 1 surge node → 3 batches × (10 min + 30 min drain).
	if want := start.Add(2 * time.Hour); !r.Next.Equal(want) {
		t.Errorf("next evaluation %s, want the stall deadline %s", r.Next, want)
	}
	if _, stalled := keys(Evaluate(c, nodeImagePolicy, nil, r.Next))[fleet.FindingKey(fleet.CodeUpgradeStalled, "pool/system")]; !stalled {
		t.Errorf("not stalled at its deadline")
	}
}

func TestExpectedDuration(t *testing.T) {
	e := &eval{p: fleet.Policy{}.WithDefaults()}
	for _, tc := range []struct {
		count       int
		surge       string
		drain, soak int
		want        time.Duration
	}{
		{3, "33%", 30, 0, 2 * time.Hour},
		{10, "", 30, 0, 400 * time.Minute},   // default 10% → 1 → 10 batches of 40 min
		{10, "50%", 30, 5, 90 * time.Minute}, // 5 → 2 batches × 45 min
		{100, "1", 60, 0, 24 * time.Hour},    // capped
		{1, "1", 5, 0, time.Hour},            // floored
	} {
		p := &fleet.Pool{Spec: fleet.PoolProfile{Count: tc.count, MaxSurge: tc.surge, DrainTimeoutMinutes: tc.drain, NodeSoakMinutes: tc.soak}}
		if got := e.expectedDuration(p); got != tc.want {
			t.Errorf("%d nodes surge %q drain %d soak %d: %s, want %s", tc.count, tc.surge, tc.drain, tc.soak, got, tc.want)
		}
	}
}

// Reconcile opens once, refreshes without new transitions, resolves, reopens.
func TestReconcileLifecycle(t *testing.T) {
	c := fleet.NewCluster(aks)
	obs := []fleet.Observation{{Code: fleet.CodeChannelDrift, Target: "cluster", Severity: fleet.SeverityWarning, Summary: "x",
		Evidence: map[string]any{"observed": "Unmanaged"}}}
	if tr := fleet.Reconcile(c, obs, now); len(tr) != 1 || tr[0].Kind != fleet.TransitionOpened {
		t.Fatalf("first: %+v", tr)
	}
	if tr := fleet.Reconcile(c, obs, now.Add(10*time.Minute)); len(tr) != 0 {
		t.Fatalf("unchanged condition made transitions: %+v", tr)
	}
	f := c.Findings[fleet.FindingKey(fleet.CodeChannelDrift, "cluster")]
	if !f.LastSeenAt.Equal(now) {
		t.Errorf("LastSeenAt moved within the hour: %s", f.LastSeenAt)
	}
	fleet.Reconcile(c, obs, now.Add(2*time.Hour))
	if !f.LastSeenAt.Equal(now.Add(2 * time.Hour)) {
		t.Errorf("LastSeenAt not refreshed after an hour: %s", f.LastSeenAt)
	}
	if tr := fleet.Reconcile(c, nil, now.Add(3*time.Hour)); len(tr) != 1 || tr[0].Kind != fleet.TransitionResolved || f.Status != fleet.FindingResolved {
		t.Fatalf("resolve: %+v", tr)
	}
	if tr := fleet.Reconcile(c, obs, now.Add(4*time.Hour)); len(tr) != 1 || f.Opened != 2 || !f.OpenedAt.Equal(now.Add(4*time.Hour)) || !f.ResolvedAt.IsZero() {
		t.Fatalf("reopen: %+v, finding %+v", tr, f)
	}
}

func TestSurgeNodes(t *testing.T) {
	for in, want := range map[string]int{"": 1, "33%": 4, "100%": 10, "3": 3, "0": 1, "bogus": 1} {
		if got := surgeNodes(in, 10); got != want {
			t.Errorf("surgeNodes(%q, 10) = %d, want %d", in, got, want)
		}
	}
}
