package patch

import (
	"sort"
	"strings"
	"time"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
	"github.com/upgradewatch/upgradewatch/internal/versions"
)

// Sources of an image observation, from the strongest evidence that the
// image is available to the weakest.
const (
	SourceUpgradeProfile = "upgradeProfile" // ARM agent pool upgrade profile: latestNodeImageVersion
	SourceARMRead        = "armRead"        // a pool's nodeImageVersion in the app's own ARM read
	SourceNotification   = "notification"   // a pool's nodeImageVersion in a resource notification
	SourceNodes          = "nodes"          // a node snapshot: a node runs it
)

// MaxVersions is how many versions the catalogue keeps per (family, region),
// the newest: with weekly images, about four months, more than any pool
// that is still patched lags.
const MaxVersions = 16

// Observation is one sighting of an image available in a region.
type Observation struct {
	Version string
	Region  string
	Source  string // Source*
	At      time.Time
}

// Seen is what the catalogue remembers of one version in one region: when
// it was first seen available and by which source, and its release date.
type Seen struct {
	Version    string    `json:"version"`
	FirstSeen  time.Time `json:"firstSeen"`
	Source     string    `json:"source"`
	ReleasedAt time.Time `json:"releasedAt,omitzero"`
}

// Entry is one row of the catalogue: a version of a family in a region.
type Entry struct {
	Family string
	Region string
	Seen
}

// Catalogue is the fleet's newest-image catalogue: per (image family,
// region), the newest versions seen available and when each was first seen.
//
// It is a function of the set of observations merged into it, not of their
// order: first-seen is the minimum over observations (ties broken by
// source), and the versions kept are the newest MaxVersions of the union.
// The zero value is an empty catalogue.
type Catalogue struct {
	lines map[lineKey][]Seen // newest first
}

type lineKey struct{ family, region string }

// NormaliseRegion gives the canonical form of an Azure region: "West Europe"
// and "westeurope" are one region.
func NormaliseRegion(r string) string {
	return strings.ToLower(strings.ReplaceAll(strings.TrimSpace(r), " ", ""))
}

// Merge returns the catalogue with the observations folded in; c is not
// changed. Observations of unknown versions or without a region or a time
// are skipped: they say nothing comparable.
func Merge(c Catalogue, obs ...Observation) Catalogue {
	out := c.clone()
	for _, o := range obs {
		out.observe(o)
	}
	return out
}

// Union merges two catalogues (shards read from storage, say) in either order.
func Union(a, b Catalogue) Catalogue {
	out := a.clone()
	for _, e := range b.Entries() {
		out.add(e.Family, e.Region, e.Seen)
	}
	return out
}

// FromEntries rebuilds a catalogue from stored entries.
func FromEntries(es []Entry) Catalogue {
	var c Catalogue
	for _, e := range es {
		c.add(e.Family, NormaliseRegion(e.Region), e.Seen)
	}
	return c
}

// Entries lists the catalogue by family, region, then newest version first.
func (c Catalogue) Entries() []Entry {
	keys := make([]lineKey, 0, len(c.lines))
	for k := range c.lines {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].family != keys[j].family {
			return keys[i].family < keys[j].family
		}
		return keys[i].region < keys[j].region
	})
	var out []Entry
	for _, k := range keys {
		for _, s := range c.lines[k] {
			out = append(out, Entry{Family: k.family, Region: k.region, Seen: s})
		}
	}
	return out
}

// Newest is the newest version of the family seen in the region.
func (c Catalogue) Newest(family, region string) (Seen, bool) {
	l := c.lines[lineKey{family, NormaliseRegion(region)}]
	if len(l) == 0 {
		return Seen{}, false
	}
	return l[0], true
}

// Lookup is what the catalogue knows of one version in one region.
func (c Catalogue) Lookup(version, region string) (Seen, bool) {
	fam := versions.Family(versions.Parse(version))
	for _, s := range c.lines[lineKey{fam, NormaliseRegion(region)}] {
		if s.Version == version {
			return s, true
		}
	}
	return Seen{}, false
}

// Versions lists the versions of a family seen in a region, newest first.
func (c Catalogue) Versions(family, region string) []Seen {
	return append([]Seen(nil), c.lines[lineKey{family, NormaliseRegion(region)}]...)
}

func (c Catalogue) clone() Catalogue {
	out := Catalogue{lines: make(map[lineKey][]Seen, len(c.lines))}
	for k, l := range c.lines {
		out.lines[k] = append([]Seen(nil), l...)
	}
	return out
}

func (c *Catalogue) observe(o Observation) {
	v := versions.Parse(o.Version)
	region := NormaliseRegion(o.Region)
	if !v.Known || region == "" || o.At.IsZero() {
		return
	}
	rel, _ := versions.ReleaseDate(v)
	c.add(versions.Family(v), region, Seen{Version: o.Version, FirstSeen: o.At.UTC(), Source: o.Source, ReleasedAt: rel})
}

// add keeps the earliest sighting of a version and the newest MaxVersions.
func (c *Catalogue) add(family, region string, s Seen) {
	if c.lines == nil {
		c.lines = map[lineKey][]Seen{}
	}
	k := lineKey{family, region}
	l := c.lines[k]
	for i := range l {
		if l[i].Version == s.Version {
			if earlier(s, l[i]) {
				l[i].FirstSeen, l[i].Source = s.FirstSeen, s.Source
			}
			return
		}
	}
	l = append(l, s)
	sort.Slice(l, func(i, j int) bool { return newer(l[i].Version, l[j].Version) })
	if len(l) > MaxVersions {
		l = l[:MaxVersions]
	}
	c.lines[k] = l
}

// earlier orders two sightings of one version: by time, then by source name,
// so equal times still have one winner.
func earlier(a, b Seen) bool {
	if !a.FirstSeen.Equal(b.FirstSeen) {
		return a.FirstSeen.Before(b.FirstSeen)
	}
	return a.Source < b.Source
}

// newer orders versions of one family, newest first; ties (equal builds
// written differently) by text.
func newer(a, b string) bool {
	c, err := versions.Compare(versions.Parse(a), versions.Parse(b))
	if err != nil || c == 0 {
		return a > b
	}
	return c > 0
}

// FromSignal lists the image sightings a signal carries, where the cluster
// is (region: the payload's location, else the cluster's). The application
// layer merges them into the catalogue as it ingests the signal.
func FromSignal(s fleet.Signal, region string) []Observation {
	var out []Observation
	add := func(version, source string) {
		if version != "" {
			out = append(out, Observation{Version: version, Region: region, Source: source, At: s.Time})
		}
	}
	source := SourceNotification
	if s.Type == fleet.TypeARMRead {
		source = SourceARMRead
	}
	var pools []fleet.PoolProfile
	switch s.Kind {
	case fleet.KindClusterUpdated:
		if s.Profile == nil {
			return nil
		}
		if s.Profile.Location != "" {
			region = s.Profile.Location
		}
		pools = s.Profile.Pools
	case fleet.KindPoolUpdated:
		if s.PoolSpec != nil {
			pools = []fleet.PoolProfile{*s.PoolSpec}
		}
	case fleet.KindNodesObserved:
		if s.Inventory == nil {
			return nil
		}
		for _, name := range sortedKeys(s.Inventory.Pools) {
			for _, v := range sortedKeys(s.Inventory.Pools[name].Versions) {
				add(v, SourceNodes)
			}
		}
		return out
	}
	for _, p := range pools {
		add(p.NodeImageVersion, source)
		add(p.LatestNodeImageVersion, SourceUpgradeProfile)
	}
	for i := range out {
		out[i].Region = region
	}
	return out
}

// FromCluster lists the sightings a stored cluster state still holds, to
// seed a catalogue from state written before it existed: each pool's
// upgrade-profile latest (at the newest read that offered it, so later than
// its true first sighting) and the first sighting of each image the pool
// ran (ARM payloads count as ARM reads: the state does not tell reads from
// notifications).
func FromCluster(c *fleet.Cluster) []Observation {
	var out []Observation
	for _, p := range c.SortedPools() {
		if p.LatestImage != "" && !p.LatestImageAt.At.IsZero() {
			out = append(out, Observation{Version: p.LatestImage, Region: c.Location, Source: SourceUpgradeProfile, At: p.LatestImageAt.At})
		}
		for _, s := range p.Images {
			src := SourceARMRead
			if s.From == fleet.ImageFromNodes {
				src = SourceNodes
			}
			out = append(out, Observation{Version: s.Version, Region: c.Location, Source: src, At: s.First})
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
