package patch

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
)

func TestCatalogueMerge(t *testing.T) {
	obs := []Observation{
		seen(img0422, "westeurope", SourceNodes, d(4, 26, 3)),
		seen(img0422, "West Europe", SourceNotification, d(4, 23, 8)),  // the earliest sighting wins
		seen(img0422, "westeurope", SourceUpgradeProfile, d(4, 23, 8)), // same time: one winner by source
		seen(img0414, "westeurope", SourceARMRead, d(4, 16, 9)),
		seen(img0501, "eastus", SourceNodes, d(5, 4, 9)),
		seen(sp0414b, "westeurope", SourceNodes, d(4, 29, 1)),
		seen("AKSUbuntu:1604:2020.03.11", "westeurope", SourceARMRead, d(4, 1, 0)), // unknown format: skipped
		seen(img0501, "", SourceARMRead, d(5, 2, 0)),                               // no region: skipped
	}
	cat := Merge(Catalogue{}, obs...)
	want := []Entry{
		{Family: "AKSUbuntu-2204gen2containerd", Region: "eastus", Seen: Seen{Version: img0501, FirstSeen: d(5, 4, 9), Source: SourceNodes, ReleasedAt: d(5, 1, 0)}},
		{Family: "AKSUbuntu-2204gen2containerd", Region: "westeurope", Seen: Seen{Version: img0422, FirstSeen: d(4, 23, 8), Source: SourceNotification, ReleasedAt: d(4, 22, 0)}},
		{Family: "AKSUbuntu-2204gen2containerd", Region: "westeurope", Seen: Seen{Version: img0414, FirstSeen: d(4, 16, 9), Source: SourceARMRead, ReleasedAt: d(4, 14, 0)}},
		{Family: "AKSUbuntu-2204gen2containerd+SecurityPatch", Region: "westeurope", Seen: Seen{Version: sp0414b, FirstSeen: d(4, 29, 1), Source: SourceNodes, ReleasedAt: d(4, 28, 0)}},
	}
	if diff := cmp.Diff(want, cat.Entries()); diff != "" {
		t.Fatalf("entries (-want +got):\n%s", diff)
	}
	if n, ok := cat.Newest("AKSUbuntu-2204gen2containerd", "West Europe"); !ok || n.Version != img0422 {
		t.Errorf("Newest = %+v, %v", n, ok)
	}
	if len(Merge(Catalogue{}).Entries()) != 0 || len(cat.Entries()) != 4 {
		t.Errorf("Merge changed its input or kept junk")
	}
	// Every order of the observations, and any split into two catalogues
	// joined by Union, gives the same catalogue.
	rng := rand.New(rand.NewPCG(1, 4))
	for i := range 50 {
		p := shuffled(rng, obs)
		k := rng.IntN(len(p) + 1)
		got := Union(Merge(Catalogue{}, p[:k]...), Merge(Catalogue{}, p[k:]...))
		if diff := cmp.Diff(want, got.Entries()); diff != "" {
			t.Fatalf("permutation %d (-want +got):\n%s", i, diff)
		}
		if diff := cmp.Diff(want, FromEntries(got.Entries()).Entries()); diff != "" {
			t.Fatalf("FromEntries round trip (-want +got):\n%s", diff)
		}
	}
}

// Only the newest MaxVersions of a line are kept, whatever the order.
func TestCatalogueKeepsNewest(t *testing.T) {
	var obs []Observation
	start := time.Date(2025, 10, 1, 0, 0, 0, 0, time.UTC)
	for i := range MaxVersions + 6 {
		rel := start.AddDate(0, 0, 7*i)
		v := fmt.Sprintf("AKSAzureLinux-V3gen2-%s.0", rel.Format("200601.02"))
		obs = append(obs, seen(v, "northeurope", SourceNodes, rel.Add(36*time.Hour)))
	}
	rng := rand.New(rand.NewPCG(7, 7))
	var first []Entry
	for i := range 20 {
		es := Merge(Catalogue{}, shuffled(rng, obs)...).Entries()
		if len(es) != MaxVersions || es[0].Version != obs[len(obs)-1].Version || es[len(es)-1].Version != obs[6].Version {
			t.Fatalf("kept %d versions, %s … %s", len(es), es[0].Version, es[len(es)-1].Version)
		}
		if i == 0 {
			first = es
		} else if diff := cmp.Diff(first, es); diff != "" {
			t.Fatalf("order changed the catalogue:\n%s", diff)
		}
	}
}

func TestFromSignal(t *testing.T) {
	arm := armRead("arm-1", d(5, 6, 7), clusterRead{channel: "NodeImage", pools: []fleet.PoolProfile{system(img0414, img0422)}})
	rn := notification("rn-1", d(5, 6, 8), "", "NodeImage", system(img0414, ""))
	snap := snapshot("snap-1", d(5, 6, 9), "system", fleet.PoolNodes{Nodes: 3, Versions: map[string]int{img0414: 2, img0422: 1}})
	cases := []struct {
		name string
		sig  fleet.Signal
		want []Observation
	}{
		{"ARM read: pool image and upgrade profile", arm, []Observation{
			{img0414, "westeurope", SourceARMRead, d(5, 6, 7)}, {img0422, "westeurope", SourceUpgradeProfile, d(5, 6, 7)}}},
		{"resource notification without location", rn, []Observation{{img0414, "francecentral", SourceNotification, d(5, 6, 8)}}},
		{"node snapshot", snap, []Observation{{img0414, "francecentral", SourceNodes, d(5, 6, 9)}, {img0422, "francecentral", SourceNodes, d(5, 6, 9)}}},
		{"rolling event carries no image", rolling("r", fleet.KindRollingStarted, "system", d(5, 6, 9)), nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, FromSignal(tc.sig, "francecentral")); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// A catalogue seeded from stored state gives the same verdict as one fed
// signal by signal, when nothing else was seen.
func TestFromCluster(t *testing.T) {
	sigs := []fleet.Signal{
		armRead("arm-1", d(4, 24, 6), clusterRead{channel: "NodeImage", pools: []fleet.PoolProfile{system(img0414, img0422)}, windows: []fleet.MaintenanceWindow{sunday}}),
		snapshot("snap-1", d(5, 5, 9), "system", fleet.PoolNodes{Nodes: 3, Ready: 3, Versions: map[string]int{img0414: 3}}),
	}
	c, fed := build(t, sigs, nil, fleet.Policy{}, false)
	seeded := Merge(Catalogue{}, FromCluster(c)...)
	if diff := cmp.Diff(fed.Entries(), seeded.Entries()); diff != "" {
		t.Errorf("seeded catalogue differs (-fed +seeded):\n%s", diff)
	}
	if st := Status(c, seeded, fleet.Policy{}, now); st[0].Status != StatusBehind {
		t.Errorf("status %+v", st[0])
	}
}
