package patch

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
)

func node(name, pool, image string) fleet.Node {
	return fleet.Node{NodeObservation: fleet.NodeObservation{Name: name, Pool: pool, NodeImageVersion: image, Ready: "True"}}
}

func TestNodes(t *testing.T) {
	sigs := behindRead(clusterRead{pools: []fleet.PoolProfile{system(img0422, img0501), win22(winLatest, winLatest)}})(t)
	c, cat := build(t, sigs, []Observation{seen(img0501, "westeurope", SourceNodes, d(5, 2, 14)),
		seen(img0422, "westeurope", SourceNotification, d(4, 23, 8)), seen(img0414, "westeurope", SourceNodes, d(4, 16, 0))}, fleet.Policy{}, false)
	gone := node("aks-system-27182818-vmss000009", "system", img0407)
	gone.Gone = true
	nodes := []fleet.Node{
		node("aks-system-27182818-vmss000002", "system", img0414),
		node("aks-system-27182818-vmss000000", "system", img0501),
		node("aks-system-27182818-vmss000001", "system", img0422),
		node("akswin22000000", "win22", winLatest),
		node("aks-system-27182818-vmss000003", "system", ""),
		gone,
		node("aks-removed-1234-vmss000000", "removed", img0414),
	}
	got := Nodes(c, nodes, cat, fleet.Policy{}, now)
	want := []NodeStatus{
		{Node: "aks-system-27182818-vmss000000", Pool: "system", Image: img0501, LatestImage: img0501, Compliance: ComplianceCurrent},
		{Node: "aks-system-27182818-vmss000001", Pool: "system", Image: img0422, LatestImage: img0501, Compliance: ComplianceWithinPolicy,
			DaysBehind: 5, ReleasedAt: d(5, 1, 0)},
		// Behind 0422 (released 22 April) and 0501: measured from the oldest newer image.
		{Node: "aks-system-27182818-vmss000002", Pool: "system", Image: img0414, LatestImage: img0501, Compliance: ComplianceBehind,
			DaysBehind: 14, ReleasedAt: d(4, 22, 0)},
		{Node: "aks-system-27182818-vmss000003", Pool: "system", Compliance: ComplianceUnknown,
			Missing: "the pool's image: no ARM read, resource notification or node snapshot named it"},
		{Node: "akswin22000000", Pool: "win22", Image: winLatest, LatestImage: winLatest, Compliance: ComplianceCurrent},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("nodes (-want +got):\n%s", diff)
	}
}

// upgradedCluster is a cluster in region that ran img0414 and rolled to
// img0422, ending at end; an ARM read after the end shows the new image.
func upgradedCluster(t *testing.T, id fleet.ClusterID, region string, start, end time.Time) *fleet.Cluster {
	t.Helper()
	c := fleet.NewCluster(id)
	read := func(sid string, at time.Time, image string) fleet.Signal {
		s := armRead(sid, at, clusterRead{channel: "NodeImage", pools: []fleet.PoolProfile{system(image, image)}})
		s.Cluster, s.Profile.Location = id, region
		return s
	}
	for _, s := range []fleet.Signal{
		read(id.Name+"-arm-0", d(4, 10, 6), img0414),
		{ID: id.Name + "-s", Time: start, Cluster: id, Kind: fleet.KindRollingStarted, Pool: "system"},
		{ID: id.Name + "-e", Time: end, Cluster: id, Kind: fleet.KindRollingSucceeded, Pool: "system"},
		read(id.Name+"-arm-1", end.Add(10*time.Minute), img0422),
	} {
		if err := fleet.Apply(c, s); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// The same image reaches West Europe on 23 April and East US on 28 April:
// each region's clusters are measured from their own region's first sighting.
func TestTimeToPatchRegionalRollout(t *testing.T) {
	mk := func(name string) fleet.ClusterID {
		id, err := fleet.NewClusterID("7f3c2a91-5b4e-4d1f-9e8a-2c6b0d4f1a37", "rg-aks-fleet", name)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	weu1 := upgradedCluster(t, mk("aks-weu-01"), "westeurope", d(4, 26, 1), d(4, 26, 3))
	weu2 := upgradedCluster(t, mk("aks-weu-02"), "westeurope", d(5, 3, 1), d(5, 3, 2))
	eus1 := upgradedCluster(t, mk("aks-eus-01"), "eastus", d(4, 30, 5), d(4, 30, 8))
	cat := Merge(Catalogue{},
		seen(img0422, "westeurope", SourceNotification, d(4, 23, 8)),
		seen(img0422, "eastus", SourceUpgradeProfile, d(4, 28, 12)))
	for _, c := range []*fleet.Cluster{weu1, weu2, eus1} {
		cat = Merge(cat, FromCluster(c)...)
	}
	cases := []struct {
		c     *fleet.Cluster
		want  time.Duration
		basis string
	}{
		{weu1, 2*24*time.Hour + 19*time.Hour, BasisFirstSeen}, // 23 Apr 08:00 → 26 Apr 03:00
		{weu2, 9*24*time.Hour + 18*time.Hour, BasisFirstSeen}, // 23 Apr 08:00 → 3 May 02:00
		{eus1, 1*24*time.Hour + 20*time.Hour, BasisFirstSeen}, // 28 Apr 12:00 → 30 Apr 08:00
	}
	var all []Latency
	for _, tc := range cases {
		ls := Latencies(tc.c, cat)
		if len(ls) != 1 {
			t.Fatalf("%s: %d latencies: %+v", tc.c.ID.Name, len(ls), ls)
		}
		l := ls[0]
		if l.Duration != tc.want || l.Basis != tc.basis || l.Image != img0422 || l.Cluster != tc.c.ID.Key() {
			t.Errorf("%s: %+v, want %v from %s", tc.c.ID.Name, l, tc.want, tc.basis)
		}
		all = append(all, l)
	}
	// Without a sighting, the release date (22 April) is the start.
	l, ok := TimeToPatch(weu1.Upgrades[weu1.Pools["system"].LatestUpgrade], "westeurope", Catalogue{})
	if !ok || l.Basis != BasisReleaseDate || l.Duration != 4*24*time.Hour+3*time.Hour {
		t.Errorf("without the catalogue: %+v, %v", l, ok)
	}
	fig := Summarise(all, now)
	want := TimeToPatchFigures{
		Last30: Stats{Count: 3, Median: 2*24*time.Hour + 19*time.Hour, P90: 9*24*time.Hour + 18*time.Hour},
		Last90: Stats{Count: 3, Median: 2*24*time.Hour + 19*time.Hour, P90: 9*24*time.Hour + 18*time.Hour},
	}
	if diff := cmp.Diff(want, fig); diff != "" {
		t.Errorf("figures (-want +got):\n%s", diff)
	}
}

func TestTimeToPatchSkipsWhatIsNotAPatch(t *testing.T) {
	ok := &fleet.Upgrade{Key: "k", Pool: "system", Outcome: fleet.OutcomeSucceeded, EndedAt: d(5, 3, 3), ImageBefore: img0414, ImageAfter: img0422}
	for name, u := range map[string]*fleet.Upgrade{
		"failed":          {Outcome: fleet.OutcomeFailed, EndedAt: d(5, 3, 3), ImageBefore: img0414, ImageAfter: img0422},
		"in progress":     {Outcome: fleet.OutcomeInProgress, ImageBefore: img0414, ImageAfter: img0422},
		"same image":      {Outcome: fleet.OutcomeSucceeded, EndedAt: d(5, 3, 3), ImageBefore: img0422, ImageAfter: img0422},
		"family change":   {Outcome: fleet.OutcomeSucceeded, EndedAt: d(5, 3, 3), ImageBefore: img0414, ImageAfter: "AKSUbuntu-2404gen2containerd-202604.22.0"},
		"image not known": {Outcome: fleet.OutcomeSucceeded, EndedAt: d(5, 3, 3), ImageBefore: img0414},
	} {
		if l, got := TimeToPatch(u, "westeurope", Catalogue{}); got {
			t.Errorf("%s: %+v", name, l)
		}
	}
	// A first sighting after the operation ended only says upgradewatch looked late.
	late := Merge(Catalogue{}, seen(img0422, "westeurope", SourceNodes, d(5, 4, 0)))
	if l, got := TimeToPatch(ok, "westeurope", late); !got || l.Basis != BasisReleaseDate {
		t.Errorf("late sighting: %+v, %v", l, got)
	}
}

func TestSummariseWindows(t *testing.T) {
	var ls []Latency
	// Ten operations in the last 30 days taking 1..10 days, and two older ones.
	for i := 1; i <= 10; i++ {
		ls = append(ls, Latency{AppliedAt: now.Add(-time.Duration(i) * 24 * time.Hour), Duration: time.Duration(i) * 24 * time.Hour})
	}
	ls = append(ls, Latency{AppliedAt: now.Add(-45 * 24 * time.Hour), Duration: 30 * 24 * time.Hour},
		Latency{AppliedAt: now.Add(-120 * 24 * time.Hour), Duration: 60 * 24 * time.Hour})
	got := Summarise(ls, now)
	want := TimeToPatchFigures{
		Last30: Stats{Count: 10, Median: 5 * 24 * time.Hour, P90: 9 * 24 * time.Hour},
		Last90: Stats{Count: 11, Median: 6 * 24 * time.Hour, P90: 10 * 24 * time.Hour},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if got := Summarise(nil, now); got != (TimeToPatchFigures{}) {
		t.Errorf("empty: %+v", got)
	}
}

func TestTally(t *testing.T) {
	var pools []PoolStatus
	for _, tc := range statusCases() {
		c, cat := build(t, tc.sigs(t), tc.elsewhere, tc.pol, tc.evaluate)
		pools = append(pools, find(t, Status(c, cat, tc.pol, now, tc.nodes...), or(tc.pool, "system")))
	}
	nodes := []NodeStatus{
		{Node: "n0", Image: img0501, Compliance: ComplianceCurrent},
		{Node: "n1", Image: img0422, Compliance: ComplianceWithinPolicy},
		{Node: "n2", Image: img0407, Compliance: ComplianceBehind},
		{Node: "n3", Image: img0501, Compliance: ComplianceCurrent},
	}
	got := Tally(pools, nodes)
	want := Compliance{
		Pools: 26, PoolsCurrent: 1, PoolsWithinPolicy: 4, PoolsBehind: 16, PoolsUnknown: 5,
		Nodes: 4, NodesCurrent: 2, NodesWithinPolicy: 1, NodesBehind: 1,
		PercentPoolsCurrent: 3.8, PercentNodesCurrent: 50,
		OldestImage: img0407, OldestImageReleasedAt: d(4, 7, 0), MaxDaysBehind: 14,
		UpToDate: 1, AwaitingWindow: 3, Rolling: 1, Behind: 3, Blocked: 9, Failed: 1, Unmanaged: 1, NotPatched: 3, Unknown: 4,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	// Per-cluster figures add up to the fleet's, in any grouping.
	a, b := Tally(pools[:10], nodes[:1]), Tally(pools[10:], nodes[1:])
	if diff := cmp.Diff(got, Add(a, b)); diff != "" {
		t.Errorf("Add(a, b) (-tally +add):\n%s", diff)
	}
	if diff := cmp.Diff(Add(a, b), Add(b, a)); diff != "" {
		t.Errorf("Add is not commutative:\n%s", diff)
	}
}
