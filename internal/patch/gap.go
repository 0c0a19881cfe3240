package patch

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
	"github.com/upgradewatch/upgradewatch/internal/versions"
)

// maxRollout bounds how long after its release an image can take to reach a
// region: AKS rolls node images out to every region within about two weeks.
// An image first seen later than that (upgradewatch started watching late)
// counts as available from release + maxRollout, so a fresh install does not
// call months-old images new.
const maxRollout = 14 * 24 * time.Hour

// gap is how far one image is behind the newest the pool could run.
type gap struct {
	known   bool
	missing string // why not known

	family string
	region string
	target Seen   // the newest image the pool could run
	from   string // where target came from
	newer  []Seen // newer than the image, up to target, oldest first

	behind      bool
	availableAt time.Time // when the oldest newer image became available
	releasedAt  time.Time // its release date
	days        int       // now - releasedAt, in whole days
	within      bool      // not behind, or behind for less than the grace
}

// latest is the newest image a pool could run and where it came from: the
// pool's ARM upgrade profile when known and of the same OS SKU, else the
// newest of the family in the cluster's region in the catalogue.
func latest(c *fleet.Cluster, p *fleet.Pool, cur versions.Version, family string, cat Catalogue) (Seen, string, bool) {
	if lv := versions.Parse(p.LatestImage); lv.Known && lv.Family() == cur.Family() {
		s, ok := cat.Lookup(p.LatestImage, c.Location)
		if !ok {
			rel, _ := versions.ReleaseDate(lv)
			s = Seen{Version: p.LatestImage, Source: SourceUpgradeProfile, ReleasedAt: rel}
		}
		return s, "pool upgrade profile", true
	}
	if s, ok := cat.Newest(family, c.Location); ok {
		return s, "fleet catalogue (" + s.Source + ")", true
	}
	return Seen{}, "", false
}

// lineOf is the image line a pool is judged on: SecurityPatch when its image
// says so or its channel is SecurityPatch (ARM may omit the suffix).
func lineOf(c *fleet.Cluster, v versions.Version) string {
	if v.Patch != "" || (strings.EqualFold(c.NodeOSUpgradeChannel, fleet.ChannelSecurityPatch) && !v.IsWindows()) {
		return versions.LineSecurityPatch
	}
	return versions.LineNodeImage
}

// poolGap compares the pool's image with the newest it could run.
func poolGap(c *fleet.Cluster, p *fleet.Pool, cat Catalogue, pol fleet.Policy, now time.Time) gap {
	return imageGap(c, p, p.Image(), cat, pol, now)
}

func imageGap(c *fleet.Cluster, p *fleet.Pool, image string, cat Catalogue, pol fleet.Policy, now time.Time) gap {
	g := gap{region: NormaliseRegion(c.Location)}
	cur := versions.Parse(image)
	switch {
	case image == "":
		g.missing = "the pool's image: no ARM read, resource notification or node snapshot named it"
		return g
	case !cur.Known:
		g.missing = fmt.Sprintf("a known version format: %q cannot be compared", image)
		return g
	}
	g.family = versions.FamilyOn(cur, lineOf(c, cur))
	t, from, ok := latest(c, p, cur, g.family, cat)
	if !ok {
		if g.region == "" {
			g.missing = "the cluster's region, to look the newest image up in the fleet catalogue, and the pool's ARM upgrade profile"
		} else {
			g.missing = fmt.Sprintf("the newest image of %s in %s: no ARM upgrade profile read of the pool and no sighting in the fleet", g.family, g.region)
		}
		return g
	}
	g.known, g.target, g.from = true, t, from
	g.newer = newerThan(cur, t, cat.Versions(g.family, g.region))
	g.within = true
	if len(g.newer) == 0 {
		return g
	}
	g.behind = true
	oldest := g.newer[0]
	g.availableAt = availableAt(oldest)
	g.releasedAt = oldest.ReleasedAt
	ref := g.releasedAt
	if ref.IsZero() {
		ref = g.availableAt
	}
	if !ref.IsZero() && now.After(ref) {
		g.days = int(now.Sub(ref).Hours() / 24)
	}
	g.within = !g.availableAt.IsZero() && now.Before(g.availableAt.Add(pol.ImageGrace))
	return g
}

// newerThan lists the catalogue's versions newer than cur and not newer than
// the target, plus the target itself, oldest first.
func newerThan(cur versions.Version, target Seen, cands []Seen) []Seen {
	tv := versions.Parse(target.Version)
	if c, err := versions.Compare(tv, cur); err != nil || c <= 0 {
		return nil
	}
	out := []Seen{target}
	for _, s := range cands {
		v := versions.Parse(s.Version)
		above, err1 := versions.Compare(v, cur)
		below, err2 := versions.Compare(v, tv)
		if err1 == nil && err2 == nil && above > 0 && below < 0 {
			out = append(out, s)
		}
	}
	sort.Slice(out, func(i, j int) bool { return newer(out[j].Version, out[i].Version) })
	return out
}

// availableAt is when an image became available in a region: first seen,
// capped at its release plus the longest rollout; the release date when
// never seen.
func availableAt(s Seen) time.Time {
	t := s.FirstSeen
	if !s.ReleasedAt.IsZero() {
		if bound := s.ReleasedAt.Add(maxRollout); t.IsZero() || t.After(bound) {
			t = bound
		}
		if t.Before(s.ReleasedAt) {
			t = s.ReleasedAt
		}
	}
	return t
}

// classify is the compliance class of an image of a pool: the gap's, except
// where the image label cannot show whether the pool is patched (Unmanaged
// Linux patches in place; SecurityPatch may patch live on the same base),
// with what is missing to tell.
func classify(c *fleet.Cluster, p *fleet.Pool, g gap, image string) (string, string) {
	switch {
	case strings.EqualFold(c.NodeOSUpgradeChannel, fleet.ChannelUnmanaged) && !windows(p):
		return ComplianceUnknown, "the OS patches itself in place (Unmanaged): the image label does not show it"
	case strings.EqualFold(c.NodeOSUpgradeChannel, fleet.ChannelSecurityPatch) && g.sameBase(image):
		return ComplianceUnknown, "proof the nodes lack the patch: SecurityPatch patches live without changing the image label"
	}
	return g.compliance(), g.missing
}

// compliance classes a gap.
func (g gap) compliance() string {
	switch {
	case !g.known:
		return ComplianceUnknown
	case !g.behind:
		return ComplianceCurrent
	case g.within:
		return ComplianceWithinPolicy
	}
	return ComplianceBehind
}

// sameBase reports whether every newer image only adds a later security
// patch to the pool's own base build: what AKS can apply live.
func (g gap) sameBase(image string) bool {
	cur := versions.Parse(image)
	for _, s := range g.newer {
		v := versions.Parse(s.Version)
		if v.Build != cur.Build || v.Patch == "" {
			return false
		}
	}
	return len(g.newer) > 0
}
