package patch

import (
	"slices"
	"time"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
	"github.com/upgradewatch/upgradewatch/internal/versions"
)

// Bases of a time-to-patch: what "available" was measured from.
const (
	BasisFirstSeen   = "firstSeen"   // the image's first sighting in the region
	BasisReleaseDate = "releaseDate" // its release date from the version (never seen before it was applied)
)

// Latency is one time-to-patch: an operation that brought a pool to a newer
// image, from the image becoming available to the end of the operation.
type Latency struct {
	Cluster     string // cluster key
	Pool        string
	Upgrade     string // fleet.Upgrade.Key
	Region      string
	Image       string // the image applied (ImageAfter)
	AvailableAt time.Time
	Basis       string // Basis*
	AppliedAt   time.Time
	Duration    time.Duration
}

// TimeToPatch is the time from the newer image becoming available to the end
// of the operation that applied it: first seen available in the region, or
// its release date when first-seen is unknown (or later than the end, which
// only says upgradewatch looked late). False when the operation did not
// succeed or did not bring the pool to a newer image of its family.
func TimeToPatch(u *fleet.Upgrade, region string, cat Catalogue) (Latency, bool) {
	if u == nil || u.Outcome != fleet.OutcomeSucceeded || u.EndedAt.IsZero() {
		return Latency{}, false
	}
	before, after := versions.Parse(u.ImageBefore), versions.Parse(u.ImageAfter)
	if c, err := versions.Compare(after, before); err != nil || c <= 0 {
		return Latency{}, false
	}
	l := Latency{Pool: u.Pool, Upgrade: u.Key, Region: NormaliseRegion(region), Image: u.ImageAfter, AppliedAt: u.EndedAt}
	if s, ok := cat.Lookup(u.ImageAfter, region); ok && !s.FirstSeen.After(u.EndedAt) {
		l.AvailableAt, l.Basis = s.FirstSeen, BasisFirstSeen
	} else if rel, ok := versions.ReleaseDate(after); ok {
		l.AvailableAt, l.Basis = rel, BasisReleaseDate
	} else {
		return Latency{}, false
	}
	l.Duration = max(u.EndedAt.Sub(l.AvailableAt), 0)
	return l, true
}

// Latencies lists the time-to-patch of every operation of the cluster that
// brought a pool to a newer image, oldest first.
func Latencies(c *fleet.Cluster, cat Catalogue) []Latency {
	var out []Latency
	for _, u := range c.RecentUpgrades(-1) {
		if l, ok := TimeToPatch(u, c.Location, cat); ok {
			l.Cluster = c.ID.Key()
			out = append(out, l)
		}
	}
	slices.Reverse(out)
	return out
}

// Stats summarises latencies: how many, the median and the 90th percentile
// (nearest rank).
type Stats struct {
	Count  int
	Median time.Duration
	P90    time.Duration
}

// TimeToPatchFigures are the time-to-patch statistics over the last 30 and
// 90 days (by the end of the operation).
type TimeToPatchFigures struct {
	Last30 Stats
	Last90 Stats
}

// Summarise computes the figures at now from latencies of one cluster or of
// the whole fleet.
func Summarise(ls []Latency, now time.Time) TimeToPatchFigures {
	return TimeToPatchFigures{Last30: stats(ls, now, 30), Last90: stats(ls, now, 90)}
}

func stats(ls []Latency, now time.Time, days int) Stats {
	from := now.Add(-time.Duration(days) * 24 * time.Hour)
	var ds []time.Duration
	for _, l := range ls {
		if l.AppliedAt.After(from) && !l.AppliedAt.After(now) {
			ds = append(ds, l.Duration)
		}
	}
	if len(ds) == 0 {
		return Stats{}
	}
	slices.Sort(ds)
	return Stats{Count: len(ds), Median: rank(ds, 50), P90: rank(ds, 90)}
}

// rank is the nearest-rank percentile of sorted durations: the smallest
// value with at least pct% of the values at or below it.
func rank(sorted []time.Duration, pct int) time.Duration {
	i := (pct*len(sorted) + 99) / 100
	return sorted[max(i-1, 0)]
}
