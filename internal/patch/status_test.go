package patch

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
)

var nodeImage = fleet.Policy{NodeOSChannel: fleet.ChannelNodeImage, UpgradeChannel: "patch", Source: "defaults"}

type statusCase struct {
	name      string
	sigs      func(t *testing.T) []fleet.Signal
	elsewhere []Observation
	pol       fleet.Policy
	evaluate  bool // run the findings rules first
	nodes     []fleet.Node
	pool      string // default "system"

	status, blocked string
	reason          []string // substrings of the reason
	latest          string
	days            int
	compliance      string
	check           func(t *testing.T, st PoolStatus)
}

// behindRead is the cluster on NodeImage with the system pool on img0414
// while ARM offers img0422, first seen in the region on 24 April.
func behindRead(r clusterRead) func(*testing.T) []fleet.Signal {
	return func(*testing.T) []fleet.Signal {
		if r.channel == "" {
			r.channel = fleet.ChannelNodeImage
		}
		if r.pools == nil {
			r.pools = []fleet.PoolProfile{system(img0414, img0422)}
		}
		if r.windows == nil {
			r.windows = []fleet.MaintenanceWindow{sunday}
		}
		return []fleet.Signal{armRead("arm-behind", now.Add(-2*time.Hour), r)}
	}
}

var img0422Seen = []Observation{seen(img0422, "westeurope", SourceNotification, d(4, 24, 6))}

func statusCases() []statusCase {
	sigs := func(s ...fleet.Signal) func(*testing.T) []fleet.Signal {
		return func(*testing.T) []fleet.Signal { return s }
	}
	return []statusCase{
		{name: "up to date", status: StatusUpToDate, latest: img0501, compliance: ComplianceCurrent,
			sigs: sigs(armRead("arm-1", now.Add(-2*time.Hour), clusterRead{channel: "NodeImage", pools: []fleet.PoolProfile{system(img0501, img0501)},
				windows: []fleet.MaintenanceWindow{sunday}})),
			reason: []string{"newest image known"}},
		{name: "awaiting the Sunday window within the grace", status: StatusAwaitingWindow, latest: img0501, days: 5, compliance: ComplianceWithinPolicy,
			sigs: sigs(armRead("arm-1", now.Add(-2*time.Hour), clusterRead{channel: "NodeImage", pools: []fleet.PoolProfile{system(img0422, img0501)},
				windows: []fleet.MaintenanceWindow{sunday}})),
			elsewhere: []Observation{seen(img0501, "westeurope", SourceNodes, d(5, 2, 14))},
			reason:    []string{"next node OS window opens at 2026-05-10 01:00Z"},
			check: func(t *testing.T, st PoolStatus) {
				if !st.LatestSince.Equal(d(5, 2, 14)) || st.Evidence.Window == nil || !st.Evidence.Window.NextStart.Equal(d(5, 10, 1)) {
					t.Errorf("latestSince %v, window %+v", st.LatestSince, st.Evidence.Window)
				}
			}},
		{name: "awaiting a monthly window past the grace", status: StatusAwaitingWindow, latest: img0422, days: 14, compliance: ComplianceBehind,
			sigs:      behindRead(clusterRead{windows: []fleet.MaintenanceWindow{monthly20}}),
			elsewhere: img0422Seen, reason: []string{"next node OS window opens at 2026-05-20 01:00Z"}},
		{name: "awaiting AKS's cadence without a window", status: StatusAwaitingWindow, latest: img0501, days: 5, compliance: ComplianceWithinPolicy,
			sigs: sigs(armRead("arm-1", now.Add(-2*time.Hour), clusterRead{channel: "NodeImage", pools: []fleet.PoolProfile{system(img0422, img0501)},
				windows: []fleet.MaintenanceWindow{}})),
			reason: []string{"no node OS window", "own cadence"}},
		{name: "behind, ImageStale open", status: StatusBehind, latest: img0422, days: 14, compliance: ComplianceBehind, evaluate: true, pol: nodeImage,
			sigs: behindRead(clusterRead{}), elsewhere: img0422Seen,
			reason: []string{"available since 2026-04-24", "14 days behind", "window of 2026-05-03 01:00Z passed", "ImageStale"}},
		{name: "behind from the fleet catalogue alone, without ARM", status: StatusBehind, latest: img0501, days: 14, compliance: ComplianceBehind,
			sigs: sigs(notification("rn-1", d(4, 14, 10), "West Europe", "NodeImage", system(img0414, ""))),
			elsewhere: []Observation{seen(img0422, "westeurope", SourceNotification, d(4, 23, 8)), seen(img0501, "westeurope", SourceNodes, d(5, 2, 14)),
				seen("AKSUbuntu-2204gen2containerd-202605.05.0", "eastus", SourceNodes, d(5, 5, 14))},
			reason: []string{img0422 + " has been available since 2026-04-23"},
			check: func(t *testing.T, st PoolStatus) {
				if want := []string{img0422, img0501}; !cmp.Equal(st.Evidence.NewerImages, want) || !strings.HasPrefix(st.Evidence.LatestFrom, "fleet catalogue") {
					t.Errorf("newer %v from %q, want %v from the catalogue", st.Evidence.NewerImages, st.Evidence.LatestFrom, want)
				}
			}},
		{name: "rolling", status: StatusRolling, latest: img0422, days: 14,
			sigs: func(t *testing.T) []fleet.Signal {
				return append(behindRead(clusterRead{})(t), rolling("roll-1", fleet.KindRollingStarted, "system", now.Add(-time.Hour)))
			},
			elsewhere: img0422Seen, reason: []string{"rolling since 2026-05-06T08:00:00Z"}},
		{name: "failed without a message", status: StatusFailed, latest: img0422,
			sigs: func(t *testing.T) []fleet.Signal {
				return append(behindRead(clusterRead{})(t), fixture(t, "eg-nodepool-rolling-started.json"), fixture(t, "eg-nodepool-rolling-failed.json"))
			},
			elsewhere: img0422Seen, reason: []string{"the last upgrade failed at 2026-05-03T05:41:09Z", "no reason"}},
		{name: "blocked: PDB blocked the drain (activity log alert)", status: StatusBlocked, blocked: BlockedPDB, latest: img0422,
			sigs: func(t *testing.T) []fleet.Signal {
				return append(behindRead(clusterRead{})(t), fixture(t, "eg-nodepool-rolling-started.json"), fixture(t, "alert-pool-write-failed-pdb.json"))
			},
			elsewhere: img0422Seen, reason: []string{"PodDisruptionBudget", "Cannot evict pod"},
			check: func(t *testing.T, st PoolStatus) {
				if f := st.Evidence.Failure; f == nil || f.CorrelationID != "77777777-7777-7777-7777-777777777777" || st.Evidence.Upgrade == "" {
					t.Errorf("failure evidence %+v, upgrade %q", f, st.Evidence.Upgrade)
				}
			}},
		{name: "blocked: PDB named by Communication Manager", status: StatusBlocked, blocked: BlockedPDB, latest: img0422,
			sigs: func(t *testing.T) []fleet.Signal {
				return append(behindRead(clusterRead{})(t), fixture(t, "eg-scheduled-failed-nodeos-pdb.json"))
			},
			elsewhere: img0422Seen, reason: []string{"drain of node aks-userazl-31415926-vmss000004 timed out"}},
		{name: "blocked: last upgrade failed with AKS's message", status: StatusBlocked, blocked: BlockedUpgradeFailed, latest: img0422,
			sigs: func(t *testing.T) []fleet.Signal {
				return append(behindRead(clusterRead{})(t), fixture(t, "alert-upgrade-node-image-failed-subnet.json"))
			},
			elsewhere: img0422Seen, reason: []string{"SubnetIsFull"}},
		{name: "blocked: cluster not Succeeded", status: StatusBlocked, blocked: BlockedClusterState, latest: img0422,
			sigs: behindRead(clusterRead{state: "Failed"}), elsewhere: img0422Seen, reason: []string{"provisioning state is Failed"}},
		{name: "blocked: Kubernetes minor out of support", status: StatusBlocked, blocked: BlockedKubernetesUnsupported, latest: img0422,
			sigs: func(t *testing.T) []fleet.Signal {
				return append(behindRead(clusterRead{k8s: "1.31.11"})(t), fixture(t, "eg-cluster-support-ended.json"))
			},
			elsewhere: img0422Seen, reason: []string{"Kubernetes 1.31.11 is out of support"}},
		{name: "blocked: channel change pending its 24 h", status: StatusBlocked, blocked: BlockedChannelChangePending, latest: img0422,
			sigs: func(t *testing.T) []fleet.Signal {
				return []fleet.Signal{
					armRead("arm-0", now.Add(-96*time.Hour), clusterRead{channel: "Unmanaged", pools: []fleet.PoolProfile{system(img0414, img0422)}, windows: []fleet.MaintenanceWindow{sunday}}),
					armRead("arm-1", now.Add(-3*time.Hour), clusterRead{channel: "NodeImage", pools: []fleet.PoolProfile{system(img0414, img0422)}, windows: []fleet.MaintenanceWindow{sunday}}),
				}
			},
			elsewhere: img0422Seen, reason: []string{"channel changed to NodeImage at 2026-05-06T06:00:00Z", "until 2026-05-07T06:00:00Z"}},
		{name: "blocked: window shorter than AKS needs", status: StatusBlocked, blocked: BlockedWindowTooShort, latest: img0422,
			pol: fleet.Policy{MinWindowHours: 6}, sigs: behindRead(clusterRead{}), elsewhere: img0422Seen, reason: []string{"lasts 4 h", "6 h"}},
		{name: "blocked: only not-allowed dates ahead", status: StatusBlocked, blocked: BlockedNotAllowedDates, latest: img0422,
			sigs: behindRead(clusterRead{windows: []fleet.MaintenanceWindow{freeze}}), elsewhere: img0422Seen,
			reason: []string{"window of 2026-05-10 01:00Z falls on a not-allowed date", "next opens 2026-05-24 01:00Z"}},
		{name: "blocked: quarantined nodes", status: StatusBlocked, blocked: BlockedQuarantined, latest: img0422,
			sigs: func(t *testing.T) []fleet.Signal {
				return append(behindRead(clusterRead{})(t), snapshot("snap-1", now.Add(-30*time.Minute), "system", fleet.PoolNodes{
					Nodes: 3, Ready: 3, Quarantined: 1, Cordoned: 1, Versions: map[string]int{img0414: 3},
					QuarantinedNodes: []string{"aks-system-27182818-vmss000002"}}))
			},
			elsewhere: img0422Seen, reason: []string{"1 node(s) are quarantined", "aks-system-27182818-vmss000002"}},
		{name: "unmanaged Linux needs a reboot manager", status: StatusUnmanaged, compliance: ComplianceUnknown,
			sigs: behindRead(clusterRead{channel: "Unmanaged"}), elsewhere: img0422Seen, reason: []string{"kured"},
			check: func(t *testing.T, st PoolStatus) {
				if !st.Evidence.RebootManagerNeeded {
					t.Errorf("reboot manager not flagged")
				}
			}},
		{name: "not patched: channel None", status: StatusNotPatched, latest: img0422, days: 14, compliance: ComplianceBehind,
			sigs: behindRead(clusterRead{channel: "None"}), elsewhere: img0422Seen, reason: []string{"channel None"}},
		{name: "not patched: Windows on Unmanaged", status: StatusNotPatched, pool: "win22", latest: winLatest, days: 7,
			sigs:   behindRead(clusterRead{channel: "Unmanaged", pools: []fleet.PoolProfile{system(img0414, img0422), win22(winImage, winLatest)}}),
			reason: []string{"behaves as None on Windows"}},
		{name: "not patched: SecurityPatch on Windows", status: StatusNotPatched, pool: "win22", latest: winLatest,
			sigs:   behindRead(clusterRead{channel: "SecurityPatch", pools: []fleet.PoolProfile{system(sp0414a, sp0414a), win22(winImage, winLatest)}}),
			reason: []string{"not supported on Windows pools"}},
		{name: "unknown: channel not known yet", status: StatusUnknown,
			sigs: func(t *testing.T) []fleet.Signal {
				return []fleet.Signal{fixture(t, "eg-nodepool-rolling-started.json"), rolling("roll-end", fleet.KindRollingSucceeded, "system", d(5, 3, 3)),
					snapshot("snap-1", d(5, 3, 4), "system", fleet.PoolNodes{Nodes: 3, Ready: 3, Versions: map[string]int{img0422: 3}})}
			},
			reason: []string{"channel is not known yet"}},
		{name: "unknown: no newest image known (no region, no ARM)", status: StatusUnknown, compliance: ComplianceUnknown,
			sigs:   sigs(notification("rn-1", now.Add(-time.Hour), "", "NodeImage", system(img0414, ""))),
			reason: []string{"missing the cluster's region"}},
		{name: "unknown: version format", status: StatusUnknown, compliance: ComplianceUnknown,
			sigs:   behindRead(clusterRead{pools: []fleet.PoolProfile{system("AKSUbuntu:1604:2020.03.11", "")}}),
			reason: []string{`"AKSUbuntu:1604:2020.03.11" cannot be compared`}},
		{name: "unknown: SecurityPatch label did not move, may be live-patched", status: StatusUnknown, latest: sp0414b, days: 8,
			compliance: ComplianceUnknown,
			sigs: func(t *testing.T) []fleet.Signal {
				return append(behindRead(clusterRead{channel: "SecurityPatch", pools: []fleet.PoolProfile{system(img0414, "")}})(t),
					snapshot("snap-1", now.Add(-time.Hour), "system", fleet.PoolNodes{Nodes: 3, Ready: 3, Versions: map[string]int{sp0414a: 3}}))
			},
			elsewhere: []Observation{seen(sp0414b, "westeurope", SourceNodes, d(4, 28, 12))},
			nodes: []fleet.Node{
				{NodeObservation: fleet.NodeObservation{Name: "aks-system-27182818-vmss000000", Pool: "system", NodeImageVersion: sp0414a, KernelVersion: "5.15.0-1089-azure", OSImage: "Ubuntu 22.04.5 LTS"}},
				{NodeObservation: fleet.NodeObservation{Name: "aks-system-27182818-vmss000001", Pool: "system", NodeImageVersion: sp0414a, KernelVersion: "5.15.0-1089-azure", OSImage: "Ubuntu 22.04.5 LTS"}},
			},
			reason: []string{"patches nodes live", "kernel 5.15.0-1089-azure (2 nodes)"},
			check: func(t *testing.T, st PoolStatus) {
				if !st.Evidence.LivePatchPossible || st.Evidence.Family != "AKSUbuntu-2204gen2containerd+SecurityPatch" {
					t.Errorf("evidence %+v", st.Evidence)
				}
			}},
		{name: "behind on SecurityPatch: the base moved, which needs a reimage", status: StatusBehind, latest: sp0422, days: 8,
			sigs: func(t *testing.T) []fleet.Signal {
				return append(behindRead(clusterRead{channel: "SecurityPatch", pools: []fleet.PoolProfile{system(img0414, "")}})(t),
					snapshot("snap-1", now.Add(-time.Hour), "system", fleet.PoolNodes{Nodes: 3, Ready: 3, Versions: map[string]int{sp0414a: 3}}))
			},
			elsewhere: []Observation{seen(sp0422, "westeurope", SourceNodes, d(4, 28, 12)), seen(img0501, "westeurope", SourceNodes, d(5, 2, 12))},
			reason:    []string{sp0422}},
	}
}

// Every status and every named Blocked reason, from realistic signals, at a
// fixed clock.
func TestStatus(t *testing.T) {
	for _, tc := range statusCases() {
		t.Run(tc.name, func(t *testing.T) {
			c, cat := build(t, tc.sigs(t), tc.elsewhere, tc.pol, tc.evaluate)
			st := find(t, Status(c, cat, tc.pol, now, tc.nodes...), or(tc.pool, "system"))
			if st.Status != tc.status || st.Blocked != tc.blocked {
				t.Fatalf("status %s/%s, want %s/%s: %s", st.Status, st.Blocked, tc.status, tc.blocked, st.Reason)
			}
			for _, want := range tc.reason {
				if !strings.Contains(st.Reason, want) {
					t.Errorf("reason %q does not say %q", st.Reason, want)
				}
			}
			if tc.latest != "" && st.LatestImage != tc.latest {
				t.Errorf("latestImage %q, want %q", st.LatestImage, tc.latest)
			}
			if tc.days != 0 && st.DaysBehind != tc.days {
				t.Errorf("daysBehind %d, want %d", st.DaysBehind, tc.days)
			}
			if tc.compliance != "" && st.Compliance != tc.compliance {
				t.Errorf("compliance %s, want %s", st.Compliance, tc.compliance)
			}
			if tc.check != nil {
				tc.check(t, st)
			}
		})
	}
}

// Every status and Blocked reason the package names is reached by a case.
func TestStatusCasesCoverEveryVerdict(t *testing.T) {
	got := map[string]bool{}
	for _, tc := range statusCases() {
		got[tc.status], got[tc.blocked] = true, true
	}
	for _, want := range []string{StatusUpToDate, StatusAwaitingWindow, StatusRolling, StatusBehind, StatusBlocked, StatusFailed,
		StatusUnmanaged, StatusNotPatched, StatusUnknown, BlockedClusterState, BlockedKubernetesUnsupported, BlockedChannelChangePending,
		BlockedWindowTooShort, BlockedNotAllowedDates, BlockedQuarantined, BlockedUpgradeFailed, BlockedPDB} {
		if !got[want] {
			t.Errorf("no case reaches %s", want)
		}
	}
}

// The verdict is a function of the set of signals and sightings, not of the
// order they arrived in.
func TestStatusOrderIndependent(t *testing.T) {
	rng := rand.New(rand.NewPCG(14, 2026))
	for _, tc := range statusCases() {
		t.Run(tc.name, func(t *testing.T) {
			sigs := tc.sigs(t)
			c, cat := build(t, sigs, tc.elsewhere, tc.pol, tc.evaluate)
			want := Status(c, cat, tc.pol, now, tc.nodes...)
			for i := range 12 {
				c2, cat2 := build(t, shuffled(rng, sigs), shuffled(rng, tc.elsewhere), tc.pol, tc.evaluate)
				got := Status(c2, cat2, tc.pol, now, shuffled(rng, tc.nodes)...)
				if diff := cmp.Diff(want, got); diff != "" {
					t.Fatalf("permutation %d changed the status (-first +permuted):\n%s", i, diff)
				}
			}
		})
	}
}

// The patch object serialises to the API shape.
func TestPoolStatusJSON(t *testing.T) {
	tc := statusCases()[1]
	c, cat := build(t, tc.sigs(t), tc.elsewhere, tc.pol, false)
	b, err := json.Marshal(find(t, Status(c, cat, tc.pol, now), "system"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"status", "reason", "latestImage", "latestSince", "releasedAt", "daysBehind", "evidence"} {
		if _, ok := m[k]; !ok {
			t.Errorf("JSON %s lacks %q", b, k)
		}
	}
	if m["latestSince"] != "2026-05-02T14:00:00Z" || m["releasedAt"] != "2026-05-01T00:00:00Z" || m["daysBehind"] != float64(5) {
		t.Errorf("JSON %s", b)
	}
}

func TestStatusSkipsRemovedPoolsAndDeletedClusters(t *testing.T) {
	sigs := behindRead(clusterRead{pools: []fleet.PoolProfile{system(img0414, img0422), win22(winImage, winLatest)}})(t)
	sigs = append(sigs, fleet.Signal{ID: "del-win", Time: now.Add(-time.Hour), Cluster: weu, Kind: fleet.KindPoolDeleted, Pool: "win22"})
	c, cat := build(t, sigs, img0422Seen, fleet.Policy{}, false)
	got := Status(c, cat, fleet.Policy{}, now)
	if len(got) != 1 || got[0].Pool != "system" {
		t.Errorf("statuses %+v, want only the system pool", got)
	}
	c.Deleted = true
	if got := Status(c, cat, fleet.Policy{}, now); got != nil {
		t.Errorf("deleted cluster: %+v", got)
	}
}

func Example() {
	c := fleet.NewCluster(weu)
	_ = fleet.Apply(c, armRead("arm-1", now.Add(-2*time.Hour), clusterRead{channel: "NodeImage",
		pools: []fleet.PoolProfile{system(img0414, img0422)}, windows: []fleet.MaintenanceWindow{sunday}}))
	cat := Merge(Catalogue{}, seen(img0422, "westeurope", SourceNotification, d(4, 24, 6)))
	for _, st := range Status(c, cat, fleet.Policy{}, now) {
		fmt.Printf("%s %s %d days behind %s\n", st.Pool, st.Status, st.DaysBehind, st.LatestImage)
	}
	// Output: system Behind 14 days behind AKSUbuntu-2204gen2containerd-202604.22.0
}
