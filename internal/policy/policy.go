// Package policy resolves the channel policy an operator intends for each
// cluster: which auto-upgrade channels it should be on, how old its images may
// get, how long an upgrade may take, what maintenance windows it needs and
// whether upgradewatch may remediate it.
//
// Four sources apply in order, each overriding the fields the earlier ones set:
// the built-in defaults (fleet.Policy.WithDefaults, no channel expectation,
// remediation off), the document's "defaults", every matching rule in document
// order, and the cluster's upgradewatch.* tags:
//
//	{
//	  "defaults": {"nodeOSChannel": "NodeImage", "upgradeChannel": "patch",
//	               "maxImageAgeDays": 30, "imageGraceDays": 7, "stallHours": 24,
//	               "minWindowHours": 4, "requireNodeOSWindow": false, "remediate": "off",
//	               "remediateOutsideWindow": false},
//	  "rules": [
//	    {"name": "prod",
//	     "match": {"subscription": "*", "resourceGroup": "rg-*-prod*", "cluster": "aks-*", "osTypes": ["Linux"]},
//	     "policy": {"nodeOSChannel": "SecurityPatch"}}
//	  ]
//	}
//
// Numbers are whole days (maxImageAgeDays 1-365, imageGraceDays 0-90) and
// hours (stallHours 1-168, minWindowHours 1-24); channel names and remediate
// (off, dry-run, apply) are accepted in any case. An absent field is left to
// the earlier sources; an explicit imageGraceDays 0 stays 0.
//
// Match fields are path.Match globs compared case-insensitively; an absent
// field matches anything, and osTypes matches a cluster with at least one
// pool (not removed) of one of the listed OS types. Tags are named
// upgradewatch.<field> after the document's fields; their keys are
// case-insensitive, as Azure treats them.
//
// The document is configuration: anything wrong in it, including a policy AKS
// cannot honour, refuses the whole document at load. Tags are user input on
// live clusters: a bad tag is ignored and reported as a Problem, never an error.
//
// Authority flows down, never up. The document, an app setting only operators
// change, decides who may be remediated and how far; anyone who may tag a
// cluster may only lower that: remediate off, or dry-run where the document
// allows apply, and remediateOutsideWindow false. A tag asking for more is
// ignored with a Problem. Channel tags set expectations for the findings, but
// remediation only ever sets the channels the document names
// (fleet.Policy.TaggedNodeOSChannel): a tag naming Unmanaged must not reimage
// every node of the cluster.
package policy

import (
	"fmt"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
)

// TagPrefix starts the name of every cluster tag upgradewatch reads.
const TagPrefix = "upgradewatch."

// Set is a loaded policy document. It is immutable after Load or Parse and
// safe for concurrent use; a nil *Set behaves as an empty one.
type Set struct {
	defaults fields
	rules    []rule
	routing  routing                  // where notifications go (routes.go)
	grace    map[string]time.Duration // per finding code (grace.go)
}

// rule is one validated rules[] entry.
type rule struct {
	name string
	// Lower-case globs; "" matches anything.
	subscription, resourceGroup, cluster string
	osTypes                              []string // canonical OS types; nil matches anything
	set                                  fields
}

// Problem is a setting For could not honour: a tag value it ignored, or a
// resolved policy AKS cannot implement on this cluster.
type Problem struct {
	Field  string // document field name (nodeOSChannel, stallHours, …); "" for an unknown tag
	Value  string // the value as given
	Source string // "defaults", "rule <name>" or "tag <key>"
	Reason string
}

// String formats the problem for a log line or a finding's evidence.
func (p Problem) String() string {
	if p.Field == "" {
		return fmt.Sprintf("%s %q: %s", p.Source, p.Value, p.Reason)
	}
	return fmt.Sprintf("%s: %s %q: %s", p.Source, p.Field, p.Value, p.Reason)
}

// Load reads a policy document given either inline (the trimmed string starts
// with "{") or as the path of a file holding it. An empty or blank string gives
// an empty Set: built-in defaults for every cluster, unless tags say otherwise.
func Load(docOrPath string) (*Set, error) {
	s := strings.TrimSpace(docOrPath)
	switch {
	case s == "":
		return &Set{}, nil
	case strings.HasPrefix(s, "{"):
		return Parse([]byte(s))
	}
	b, err := os.ReadFile(s)
	if err != nil {
		return nil, fmt.Errorf("read policy file: %w", err)
	}
	set, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("policy file %s: %w", s, err)
	}
	return set, nil
}

// Len returns the number of rules.
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return len(s.rules)
}

// For resolves the policy of cluster c, with defaults applied. Source lists
// "defaults", every matching rule and every tag used, in the order they
// applied. The problems are ordered: ignored tags, then what AKS cannot honour.
//
// upgradeChannel node-image forces nodeOSChannel NodeImage in AKS, so a
// combination asking for another node OS channel resolves to NodeImage, with a
// Problem. SecurityPatch on a pool AKS does not patch that way is reported but
// kept: the rules report the cluster's unsupported channel themselves.
func (s *Set) For(c *fleet.Cluster) (fleet.Policy, []Problem) {
	if s == nil {
		s = &Set{}
	}
	if c == nil {
		c = &fleet.Cluster{}
	}
	p := fleet.Policy{Remediate: fleet.RemediateOff}.WithDefaults()
	var o origins
	sources := []string{"defaults"}
	s.defaults.apply(&p, "defaults", &o)
	for i := range s.rules {
		r := &s.rules[i]
		if r.matches(c) {
			src := "rule " + r.name
			r.set.apply(&p, src, &o)
			sources = append(sources, src)
		}
	}

	doc := documentChannels(p)
	tagged, problems := fromTags(c.Tags)
	problems = append(problems, lowerOnly(&tagged, p)...)
	// A tag cannot ask for what AKS forbids: with node-image, NodeImage only.
	upgrade := p.UpgradeChannel
	if tagged.set.UpgradeChannel != nil {
		upgrade = *tagged.set.UpgradeChannel
	}
	if v := tagged.set.NodeOSChannel; v != nil && upgrade == fleet.UpgradeNodeImage && *v != fleet.ChannelNodeImage {
		problems = append(problems, Problem{
			Field: fieldNodeOSChannel, Value: tagged.raw[fieldNodeOSChannel], Source: tagSource(fieldNodeOSChannel),
			Reason: "upgradeChannel node-image forces NodeImage; tag ignored",
		})
		tagged.set.NodeOSChannel = nil
	}
	for _, name := range fieldNames {
		if tagged.set.has(name) {
			one := tagged.set.only(name)
			one.apply(&p, tagSource(name), &o)
			sources = append(sources, tagSource(name))
		}
	}

	if p.UpgradeChannel == fleet.UpgradeNodeImage && p.NodeOSChannel != "" && p.NodeOSChannel != fleet.ChannelNodeImage {
		problems = append(problems, Problem{
			Field: fieldNodeOSChannel, Value: p.NodeOSChannel, Source: o.nodeOS,
			Reason: fmt.Sprintf("upgradeChannel node-image (%s) forces NodeImage; NodeImage expected instead", o.upgrade),
		})
		p.NodeOSChannel = fleet.ChannelNodeImage
	}
	p.TaggedNodeOSChannel = p.NodeOSChannel != doc.NodeOSChannel
	p.TaggedUpgradeChannel = p.UpgradeChannel != doc.UpgradeChannel
	problems = append(problems, taggedChannels(p, doc, o)...)
	if p.NodeOSChannel == fleet.ChannelSecurityPatch {
		for _, why := range securityPatchBlockers(c) {
			problems = append(problems, Problem{
				Field: fieldNodeOSChannel, Value: p.NodeOSChannel, Source: o.nodeOS,
				Reason: "AKS does not support SecurityPatch on " + why,
			})
		}
	}
	p.Source = strings.Join(sources, ", ")
	return p, problems
}

// documentChannels is the channel expectation of the document alone (p before
// any tag), with node-image forcing NodeImage as For does.
func documentChannels(p fleet.Policy) fleet.Policy {
	if p.UpgradeChannel == fleet.UpgradeNodeImage && p.NodeOSChannel != "" {
		p.NodeOSChannel = fleet.ChannelNodeImage
	}
	return p
}

// lowerOnly drops the tags that would raise remediation above what the
// document allows the cluster (doc), with a Problem each. Authority flows
// down: anyone who may tag a cluster may opt it out, ask for dry runs instead
// of apply, or keep remediation inside the maintenance window, but only the
// document, which operators alone change, grants more.
func lowerOnly(t *tagged, doc fleet.Policy) []Problem {
	var out []Problem
	if v := t.set.Remediate; v != nil && modeRank(*v) > modeRank(doc.Remediate) {
		out = append(out, Problem{Field: fieldRemediate, Value: t.raw[fieldRemediate], Source: tagSource(fieldRemediate),
			Reason: fmt.Sprintf("a tag may only lower remediation, and the policy document allows %s here; tag ignored", doc.Remediate)})
		t.set.Remediate = nil
	}
	if v := t.set.RemediateOutsideWindow; v != nil && *v && !doc.RemediateOutsideWindow {
		out = append(out, Problem{Field: fieldRemediateOutsideWindow, Value: t.raw[fieldRemediateOutsideWindow],
			Source: tagSource(fieldRemediateOutsideWindow),
			Reason: "a tag may only keep remediation inside the maintenance window, and the policy document does not allow it outside here; tag ignored"})
		t.set.RemediateOutsideWindow = nil
	}
	return out
}

// taggedChannels reports a channel expectation a tag changed on a cluster
// remediation may act on: it counts for findings, but remediation writes only
// the document's channels (a tag asking for Unmanaged must not reimage every
// node), so that part of the tag is not honoured.
func taggedChannels(p, doc fleet.Policy, o origins) []Problem {
	if p.Remediate == fleet.RemediateOff {
		return nil
	}
	// A node OS channel a node-image tag forced was set by that tag.
	nodeOSSource := o.nodeOS
	if !strings.HasPrefix(nodeOSSource, "tag ") {
		nodeOSSource = o.upgrade
	}
	var out []Problem
	for _, ch := range []struct {
		field, source string
		tagged        bool
		got, want     string
	}{
		{fieldNodeOSChannel, nodeOSSource, p.TaggedNodeOSChannel, p.NodeOSChannel, doc.NodeOSChannel},
		{fieldUpgradeChannel, o.upgrade, p.TaggedUpgradeChannel, p.UpgradeChannel, doc.UpgradeChannel},
	} {
		if !ch.tagged {
			continue
		}
		out = append(out, Problem{Field: ch.field, Value: ch.got, Source: ch.source,
			Reason: fmt.Sprintf("expected for findings, but remediation sets only the policy document's channels (%s); not remediated",
				orNone(ch.want))})
	}
	return out
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// modeRank orders the remediation modes by what they let happen.
func modeRank(mode string) int { return slices.Index(remediateModes, mode) }

// origins remembers which source set the channels, to name it in problems.
type origins struct{ nodeOS, upgrade string }

func (r *rule) matches(c *fleet.Cluster) bool {
	if !glob(r.subscription, c.ID.SubscriptionID) || !glob(r.resourceGroup, c.ID.ResourceGroup) || !glob(r.cluster, c.ID.Name) {
		return false
	}
	if r.osTypes == nil {
		return true
	}
	for _, pool := range c.Pools {
		if pool != nil && !pool.Removed && slices.Contains(r.osTypes, osType(pool.Spec)) {
			return true
		}
	}
	return false
}

// glob matches a lower-case pattern validated at load against a value of any case.
func glob(pattern, value string) bool {
	if pattern == "" {
		return true
	}
	ok, err := path.Match(pattern, strings.ToLower(value))
	return err == nil && ok
}

// osType is the pool's OS type, from its osSKU when the payload lacked osType.
func osType(spec fleet.PoolProfile) string {
	if t, ok := canonical(spec.OSType, osTypes); ok {
		return t
	}
	switch {
	case spec.OSSKU == "":
		return ""
	case hasPrefixFold(spec.OSSKU, "Windows"):
		return osWindows
	}
	return osLinux
}

// securityPatchBlockers names the live pools AKS will not patch with the
// SecurityPatch channel (aks-signals §5.1).
func securityPatchBlockers(c *fleet.Cluster) []string {
	var out []string
	for _, pool := range c.SortedPools() {
		if pool == nil || pool.Removed {
			continue
		}
		spec := pool.Spec
		switch {
		case osType(spec) == osWindows:
			out = append(out, "Windows pool "+pool.Name)
		case isAzureLinux(spec.OSSKU) && fleet.IsGPUSize(spec.VMSize):
			out = append(out, "Azure Linux GPU pool "+pool.Name)
		case strings.EqualFold(spec.OSSKU, "Flatcar"):
			out = append(out, "Flatcar pool "+pool.Name)
		}
	}
	return out
}

func isAzureLinux(sku string) bool {
	for _, s := range []string{"AzureLinux", "AzureLinux3", "CBLMariner"} {
		if strings.EqualFold(sku, s) {
			return true
		}
	}
	return false
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// apply copies the fields f sets into p.
func (f fields) apply(p *fleet.Policy, src string, o *origins) {
	if f.NodeOSChannel != nil {
		p.NodeOSChannel, o.nodeOS = *f.NodeOSChannel, src
	}
	if f.UpgradeChannel != nil {
		p.UpgradeChannel, o.upgrade = *f.UpgradeChannel, src
	}
	if f.MaxImageAgeDays != nil {
		p.MaxImageAge = days(*f.MaxImageAgeDays)
	}
	if f.ImageGraceDays != nil {
		p.ImageGrace = days(*f.ImageGraceDays)
	}
	if f.StallHours != nil {
		p.StallLimit = time.Duration(*f.StallHours) * time.Hour
	}
	if f.MinWindowHours != nil {
		p.MinWindowHours = *f.MinWindowHours
	}
	if f.RequireNodeOSWindow != nil {
		p.RequireNodeOSWindow = *f.RequireNodeOSWindow
	}
	if f.Remediate != nil {
		p.Remediate = *f.Remediate
	}
	if f.RemediateOutsideWindow != nil {
		p.RemediateOutsideWindow = *f.RemediateOutsideWindow
	}
}

func days(n int) time.Duration { return time.Duration(n) * 24 * time.Hour }

func tagSource(field string) string { return "tag " + TagPrefix + field }

// tagged is what a cluster's tags ask for, validated.
type tagged struct {
	set fields
	raw map[string]string // field → trimmed tag value, for problems
}

// fromTags reads the upgradewatch.* tags. A key differing from another only
// in case is a duplicate (Azure would not allow it); the first in byte order
// wins. An empty value sets nothing.
func fromTags(tags map[string]string) (tagged, []Problem) {
	t := tagged{raw: map[string]string{}}
	keys := make([]string, 0, len(tags))
	for k := range tags {
		if hasPrefixFold(strings.TrimSpace(k), TagPrefix) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)

	var problems, unknown []Problem
	seen := map[string]string{} // lower-case key → key used
	for _, k := range keys {
		key := strings.TrimSpace(k)
		value := strings.TrimSpace(tags[k])
		lower := strings.ToLower(key)
		if first, dup := seen[lower]; dup {
			unknown = append(unknown, Problem{Value: value, Source: "tag " + key,
				Reason: fmt.Sprintf("duplicate of tag %s (tag names are case-insensitive); ignored", first)})
			continue
		}
		seen[lower] = key
		name, ok := fieldByLower[strings.TrimPrefix(lower, TagPrefix)]
		if !ok {
			unknown = append(unknown, Problem{Value: value, Source: "tag " + key, Reason: "unknown upgradewatch tag; ignored"})
			continue
		}
		if value == "" {
			continue
		}
		one, fe := parseTag(name, value)
		if fe == nil {
			fe = one.normalise()
		}
		if fe != nil {
			problems = append(problems, Problem{Field: name, Value: value, Source: tagSource(name), Reason: fe.reason + "; tag ignored"})
			continue
		}
		t.set.merge(one)
		t.raw[name] = value
	}
	// Known fields in document order, then the rest.
	slices.SortStableFunc(problems, func(a, b Problem) int {
		return slices.Index(fieldNames, a.Field) - slices.Index(fieldNames, b.Field)
	})
	return t, append(problems, unknown...)
}
