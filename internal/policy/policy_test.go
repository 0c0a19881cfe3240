package policy

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
)

const (
	day        = 24 * time.Hour
	prodSub    = "6f1c9a52-3b0e-4c77-9d2a-8e5f0b7c1d34"
	sandboxSub = "0b1f6471-1bf0-4dda-aec3-cb9272f09590"
)

// Pools of every kind that matters to the channel constraints.
var (
	ubuntu    = fleet.PoolProfile{Name: "system", Mode: "System", OSType: "Linux", OSSKU: "Ubuntu", VMSize: "Standard_D4ds_v5"}
	ubuntuGPU = fleet.PoolProfile{Name: "ubgpu", Mode: "User", OSType: "Linux", OSSKU: "Ubuntu", VMSize: "Standard_NC6s_v3"}
	azl       = fleet.PoolProfile{Name: "azl", Mode: "User", OSType: "Linux", OSSKU: "AzureLinux", VMSize: "Standard_D8ds_v5"}
	azlGPU    = fleet.PoolProfile{Name: "gpu", Mode: "User", OSType: "Linux", OSSKU: "AzureLinux", VMSize: "Standard_NC24ads_A100_v4"}
	azl3GPU   = fleet.PoolProfile{Name: "gpu3", Mode: "User", OSType: "Linux", OSSKU: "azurelinux3", VMSize: "standard_nv36ads_a10_v5"}
	marinGPU  = fleet.PoolProfile{Name: "mgpu", Mode: "User", OSType: "Linux", OSSKU: "CBLMariner", VMSize: "Standard_ND96asr_v4"}
	flatcar   = fleet.PoolProfile{Name: "fc", Mode: "User", OSType: "Linux", OSSKU: "Flatcar", VMSize: "Standard_D4ds_v5"}
	win       = fleet.PoolProfile{Name: "win22", Mode: "User", OSType: "Windows", OSSKU: "Windows2022", VMSize: "Standard_D4s_v5"}
	winNoType = fleet.PoolProfile{Name: "win25", Mode: "User", OSSKU: "Windows2025", VMSize: "Standard_D4s_v5"}
)

func cluster(sub, rg, name string, tags map[string]string, pools ...fleet.PoolProfile) *fleet.Cluster {
	c := fleet.NewCluster(fleet.ClusterID{SubscriptionID: sub, ResourceGroup: rg, Name: name})
	for k, v := range tags {
		c.Tags[k] = v
	}
	for _, p := range pools {
		key := strings.ToLower(p.Name)
		p.Name = key
		c.Pools[key] = &fleet.Pool{Name: key, Spec: p, RollingState: fleet.RollingIdle}
	}
	return c
}

// removed marks pools as removed from the cluster.
func removed(c *fleet.Cluster, pools ...string) *fleet.Cluster {
	for _, p := range pools {
		c.Pools[p].Removed = true
	}
	return c
}

func mustLoad(t testing.TB, docOrPath string) *Set {
	t.Helper()
	s, err := Load(docOrPath)
	if err != nil {
		t.Fatalf("Load(%q): %v", docOrPath, err)
	}
	return s
}

// builtin is the policy of a cluster when there is no document and no tag.
var builtin = fleet.Policy{
	ImageGrace:     7 * day,
	StallLimit:     24 * time.Hour,
	StallMinimum:   time.Hour,
	MinWindowHours: 4,
	Remediate:      fleet.RemediateOff,
	Source:         "defaults",
}

// docDefaults is the policy testdata/policy.json gives a cluster no rule matches.
func docDefaults(edit func(p *fleet.Policy)) fleet.Policy {
	p := fleet.Policy{
		NodeOSChannel:          fleet.ChannelNodeImage,
		UpgradeChannel:         fleet.UpgradePatch,
		MaxImageAge:            30 * day,
		ImageGrace:             7 * day,
		StallLimit:             24 * time.Hour,
		StallMinimum:           time.Hour,
		MinWindowHours:         4,
		RequireNodeOSWindow:    false,
		Remediate:              fleet.RemediateOff,
		RemediateOutsideWindow: false,
		Source:                 "defaults",
	}
	if edit != nil {
		edit(&p)
	}
	return p
}

// TestForPrecedence resolves realistic clusters against testdata/policy.json:
// built-in defaults < document defaults < matching rules in document order < tags.
func TestForPrecedence(t *testing.T) {
	set := mustLoad(t, "testdata/policy.json")
	cases := []struct {
		name     string
		cluster  *fleet.Cluster
		want     fleet.Policy
		problems []Problem
	}{
		{
			name:    "no rule matches: document defaults",
			cluster: cluster(prodSub, "rg-shop-dev-weu", "aks-shop-dev", nil, ubuntu),
			want:    docDefaults(nil),
		},
		{
			name:    "prod rule overrides the fields it sets",
			cluster: cluster(prodSub, "rg-shop-prod-weu", "aks-shop-01", nil, ubuntu, azl),
			want: docDefaults(func(p *fleet.Policy) {
				p.NodeOSChannel = fleet.ChannelSecurityPatch
				p.StallLimit = 12 * time.Hour
				p.RequireNodeOSWindow = true
				p.Source = "defaults, rule prod"
			}),
		},
		{
			name:    "later rule overrides an earlier one",
			cluster: cluster(prodSub, "rg-shop-prod-weu", "aks-win-shop", nil, ubuntu, win),
			want: docDefaults(func(p *fleet.Policy) {
				p.NodeOSChannel = fleet.ChannelNodeImage // windows-fleet after prod
				p.MaxImageAge = 45 * day
				p.StallLimit = 12 * time.Hour
				p.RequireNodeOSWindow = true
				p.Source = "defaults, rule prod, rule windows-fleet"
			}),
		},
		{
			name:    "explicit zero grace is kept",
			cluster: cluster(sandboxSub, "rg-sandbox", "aks-play", nil, ubuntu),
			want: docDefaults(func(p *fleet.Policy) {
				p.UpgradeChannel = fleet.UpgradeRapid
				p.ImageGrace = 0
				p.Remediate = fleet.RemediateApply
				p.RemediateOutsideWindow = true
				p.Source = "defaults, rule sandbox"
			}),
		},
		{
			name:    "legacy node-image rule",
			cluster: cluster(prodSub, "rg-ops", "aks-legacy-01", nil, ubuntu),
			want: docDefaults(func(p *fleet.Policy) {
				p.UpgradeChannel = fleet.UpgradeNodeImage
				p.Source = "defaults, rule legacy-node-image"
			}),
		},
		{
			name: "all sources: three rules, then tags",
			cluster: cluster(sandboxSub, "rg-payments-prod-neu", "aks-pay-01", map[string]string{
				"UpgradeWatch.NodeOSChannel":          "nodeimage",
				"upgradewatch.stallhours":             " 36 ",
				"upgradewatch.REMEDIATEOUTSIDEWINDOW": "False",
				"environment":                         "prod",
			}, ubuntu),
			want: docDefaults(func(p *fleet.Policy) {
				p.NodeOSChannel = fleet.ChannelNodeImage // tag over rule prod
				p.UpgradeChannel = fleet.UpgradeRapid    // rule sandbox
				p.ImageGrace = 0                         // rule sandbox
				p.StallLimit = 36 * time.Hour            // tag over rule prod
				p.RequireNodeOSWindow = true             // rule prod
				p.MinWindowHours = 6                     // rule payments-prod
				p.Remediate = fleet.RemediateDryRun      // rule payments-prod over sandbox
				p.RemediateOutsideWindow = false         // tag over rule sandbox: lowering is allowed
				p.TaggedNodeOSChannel = true             // not the document's SecurityPatch
				p.Source = "defaults, rule prod, rule sandbox, rule payments-prod, " +
					"tag upgradewatch.nodeOSChannel, tag upgradewatch.stallHours, tag upgradewatch.remediateOutsideWindow"
			}),
			problems: []Problem{{
				Field: "nodeOSChannel", Value: "NodeImage", Source: "tag upgradewatch.nodeOSChannel",
				Reason: "expected for findings, but remediation sets only the policy document's channels (SecurityPatch); not remediated",
			}},
		},
		{
			name: "tag nodeOSChannel contradicting node-image is ignored",
			cluster: cluster(prodSub, "rg-ops", "aks-legacy-02", map[string]string{
				"upgradewatch.nodeOSChannel": "SecurityPatch",
			}, ubuntu),
			want: docDefaults(func(p *fleet.Policy) {
				p.UpgradeChannel = fleet.UpgradeNodeImage
				p.Source = "defaults, rule legacy-node-image"
			}),
			problems: []Problem{{
				Field: "nodeOSChannel", Value: "SecurityPatch", Source: "tag upgradewatch.nodeOSChannel",
				Reason: "upgradeChannel node-image forces NodeImage; tag ignored",
			}},
		},
		{
			name: "tag node-image over a rule's SecurityPatch forces NodeImage",
			cluster: cluster(prodSub, "rg-shop-prod-weu", "aks-shop-02", map[string]string{
				"upgradewatch.upgradeChannel": "node-image",
			}, ubuntu),
			want: docDefaults(func(p *fleet.Policy) {
				p.UpgradeChannel = fleet.UpgradeNodeImage
				p.StallLimit = 12 * time.Hour
				p.RequireNodeOSWindow = true
				p.TaggedNodeOSChannel, p.TaggedUpgradeChannel = true, true
				p.Source = "defaults, rule prod, tag upgradewatch.upgradeChannel"
			}),
			problems: []Problem{{
				Field: "nodeOSChannel", Value: "SecurityPatch", Source: "rule prod",
				Reason: "upgradeChannel node-image (tag upgradewatch.upgradeChannel) forces NodeImage; NodeImage expected instead",
			}},
		},
		{
			name: "tags naming node-image and NodeImage together are honoured",
			cluster: cluster(prodSub, "rg-shop-prod-weu", "aks-shop-03", map[string]string{
				"upgradewatch.upgradeChannel": "NODE-IMAGE",
				"upgradewatch.nodeOSChannel":  "NodeImage",
			}, ubuntu),
			want: docDefaults(func(p *fleet.Policy) {
				p.UpgradeChannel = fleet.UpgradeNodeImage
				p.StallLimit = 12 * time.Hour
				p.RequireNodeOSWindow = true
				p.TaggedNodeOSChannel, p.TaggedUpgradeChannel = true, true
				p.Source = "defaults, rule prod, tag upgradewatch.nodeOSChannel, tag upgradewatch.upgradeChannel"
			}),
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, problems := set.For(tc.cluster)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("policy: got … want … (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.problems, problems); diff != "" {
				t.Errorf("problems: got … want … (-want +got):\n%s", diff)
			}
		})
	}
}

// TestForTags sets every field by tag, with keys and values in any case, and
// checks that invalid values are ignored with a Problem each.
func TestForTags(t *testing.T) {
	cases := []struct {
		name     string
		tags     map[string]string
		want     fleet.Policy
		problems []Problem
	}{
		{
			name: "every tag, canonical keys",
			tags: map[string]string{
				"upgradewatch.nodeOSChannel":          "SecurityPatch",
				"upgradewatch.upgradeChannel":         "stable",
				"upgradewatch.maxImageAgeDays":        "21",
				"upgradewatch.imageGraceDays":         "0",
				"upgradewatch.stallHours":             "48",
				"upgradewatch.minWindowHours":         "8",
				"upgradewatch.requireNodeOSWindow":    "true",
				"upgradewatch.remediate":              "dry-run",
				"upgradewatch.remediateOutsideWindow": "true",
			},
			// Without a document nobody may be remediated: the two tags that
			// would raise it are ignored.
			want: fleet.Policy{
				NodeOSChannel: fleet.ChannelSecurityPatch, UpgradeChannel: fleet.UpgradeStable,
				MaxImageAge: 21 * day, ImageGrace: 0, StallLimit: 48 * time.Hour, StallMinimum: time.Hour,
				MinWindowHours: 8, RequireNodeOSWindow: true, Remediate: fleet.RemediateOff,
				TaggedNodeOSChannel: true, TaggedUpgradeChannel: true,
				Source: "defaults, tag upgradewatch.nodeOSChannel, tag upgradewatch.upgradeChannel, " +
					"tag upgradewatch.maxImageAgeDays, tag upgradewatch.imageGraceDays, tag upgradewatch.stallHours, " +
					"tag upgradewatch.minWindowHours, tag upgradewatch.requireNodeOSWindow",
			},
			problems: []Problem{
				{Field: "remediate", Value: "dry-run", Source: "tag upgradewatch.remediate",
					Reason: "a tag may only lower remediation, and the policy document allows off here; tag ignored"},
				{Field: "remediateOutsideWindow", Value: "true", Source: "tag upgradewatch.remediateOutsideWindow",
					Reason: "a tag may only keep remediation inside the maintenance window, and the policy document does not allow it outside here; tag ignored"},
			},
		},
		{
			name: "keys and values in other cases, values padded",
			tags: map[string]string{
				"UPGRADEWATCH.NODEOSCHANNEL":          " securitypatch ",
				"UpgradeWatch.UpgradeChannel":         "Patch",
				"upgradewatch.REQUIRENODEOSWINDOW":    "TRUE",
				"upgradewatch.Remediate":              "APPLY",
				"UpgradeWatch.RemediateOutsideWindow": " TRUE ",
				" upgradewatch.minWindowHours ":       "\t6\n",
			},
			want: fleet.Policy{
				NodeOSChannel: fleet.ChannelSecurityPatch, UpgradeChannel: fleet.UpgradePatch,
				ImageGrace: 7 * day, StallLimit: 24 * time.Hour, StallMinimum: time.Hour,
				MinWindowHours: 6, RequireNodeOSWindow: true, Remediate: fleet.RemediateOff,
				TaggedNodeOSChannel: true, TaggedUpgradeChannel: true,
				Source: "defaults, tag upgradewatch.nodeOSChannel, tag upgradewatch.upgradeChannel, " +
					"tag upgradewatch.minWindowHours, tag upgradewatch.requireNodeOSWindow",
			},
			problems: []Problem{
				{Field: "remediate", Value: "APPLY", Source: "tag upgradewatch.remediate",
					Reason: "a tag may only lower remediation, and the policy document allows off here; tag ignored"},
				{Field: "remediateOutsideWindow", Value: "TRUE", Source: "tag upgradewatch.remediateOutsideWindow",
					Reason: "a tag may only keep remediation inside the maintenance window, and the policy document does not allow it outside here; tag ignored"},
			},
		},
		{
			name: "empty values set nothing",
			tags: map[string]string{"upgradewatch.nodeOSChannel": "", "upgradewatch.stallHours": "  "},
			want: builtin,
		},
		{
			name: "invalid values are ignored",
			tags: map[string]string{
				"upgradewatch.nodeOSChannel":          "SecurityPatches",
				"upgradewatch.upgradeChannel":         "latest",
				"upgradewatch.maxImageAgeDays":        "400",
				"upgradewatch.imageGraceDays":         "-1",
				"upgradewatch.stallHours":             "1.5",
				"upgradewatch.minWindowHours":         "four",
				"upgradewatch.requireNodeOSWindow":    "yes",
				"upgradewatch.remediate":              "on",
				"upgradewatch.remediateOutsideWindow": "1.0",
			},
			want: builtin,
			problems: []Problem{
				{Field: "nodeOSChannel", Value: "SecurityPatches", Source: "tag upgradewatch.nodeOSChannel",
					Reason: "not a node OS channel (want one of None, Unmanaged, SecurityPatch, NodeImage); tag ignored"},
				{Field: "upgradeChannel", Value: "latest", Source: "tag upgradewatch.upgradeChannel",
					Reason: "not an upgrade channel (want one of none, patch, stable, rapid, node-image); tag ignored"},
				{Field: "maxImageAgeDays", Value: "400", Source: "tag upgradewatch.maxImageAgeDays",
					Reason: "out of range (want 1 to 365); tag ignored"},
				{Field: "imageGraceDays", Value: "-1", Source: "tag upgradewatch.imageGraceDays",
					Reason: "out of range (want 0 to 90); tag ignored"},
				{Field: "stallHours", Value: "1.5", Source: "tag upgradewatch.stallHours",
					Reason: "not a whole number; tag ignored"},
				{Field: "minWindowHours", Value: "four", Source: "tag upgradewatch.minWindowHours",
					Reason: "not a whole number; tag ignored"},
				{Field: "requireNodeOSWindow", Value: "yes", Source: "tag upgradewatch.requireNodeOSWindow",
					Reason: "not true or false; tag ignored"},
				{Field: "remediate", Value: "on", Source: "tag upgradewatch.remediate",
					Reason: "not a remediation mode (want one of off, dry-run, apply); tag ignored"},
				{Field: "remediateOutsideWindow", Value: "1.0", Source: "tag upgradewatch.remediateOutsideWindow",
					Reason: "not true or false; tag ignored"},
			},
		},
		{
			name: "one invalid tag does not spoil the others",
			tags: map[string]string{"upgradewatch.stallHours": "0", "upgradewatch.maxImageAgeDays": "14"},
			want: fleet.Policy{
				MaxImageAge: 14 * day, ImageGrace: 7 * day, StallLimit: 24 * time.Hour, StallMinimum: time.Hour,
				MinWindowHours: 4, Remediate: fleet.RemediateOff, Source: "defaults, tag upgradewatch.maxImageAgeDays",
			},
			problems: []Problem{{Field: "stallHours", Value: "0", Source: "tag upgradewatch.stallHours",
				Reason: "out of range (want 1 to 168); tag ignored"}},
		},
		{
			name: "unknown and duplicate upgradewatch tags are reported, others ignored silently",
			tags: map[string]string{
				"upgradewatch.nodeOsUpgradeChannel": "NodeImage",
				"Upgradewatch.StallHours":           "10",
				"upgradewatch.stallHours":           "20",
				"team":                              "payments",
			},
			want: fleet.Policy{
				ImageGrace: 7 * day, StallLimit: 10 * time.Hour, StallMinimum: time.Hour,
				MinWindowHours: 4, Remediate: fleet.RemediateOff, Source: "defaults, tag upgradewatch.stallHours",
			},
			problems: []Problem{
				{Value: "NodeImage", Source: "tag upgradewatch.nodeOsUpgradeChannel", Reason: "unknown upgradewatch tag; ignored"},
				{Value: "20", Source: "tag upgradewatch.stallHours",
					Reason: "duplicate of tag Upgradewatch.StallHours (tag names are case-insensitive); ignored"},
			},
		},
	}
	var empty *Set // a nil Set is an empty one
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, problems := empty.For(cluster(prodSub, "rg-x", "aks-x", tc.tags, ubuntu))
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("policy: got … want … (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.problems, problems); diff != "" {
				t.Errorf("problems: got … want … (-want +got):\n%s", diff)
			}
		})
	}
}

// TestForMatching checks each match field alone: globs are case-insensitive,
// and osTypes selects clusters by the OS of their live pools.
func TestForMatching(t *testing.T) {
	set := mustLoad(t, `{"rules": [
		{"name": "sub", "match": {"subscription": "6F1C9A52-*"}, "policy": {"stallHours": 2}},
		{"name": "rg", "match": {"resourceGroup": "rg-?-prod"}, "policy": {"stallHours": 3}},
		{"name": "cluster", "match": {"cluster": "aks-[ab]*"}, "policy": {"stallHours": 4}},
		{"name": "linux", "match": {"osTypes": ["linux"]}, "policy": {"minWindowHours": 5}},
		{"name": "windows", "match": {"osTypes": ["WINDOWS"]}, "policy": {"minWindowHours": 6}},
		{"name": "all", "match": {"subscription": "*", "resourceGroup": "*", "cluster": "*"}, "policy": {"remediate": "off"}}
	]}`)
	const other = "11111111-2222-3333-4444-555555555555"
	cases := []struct {
		name    string
		cluster *fleet.Cluster
		want    string
	}{
		{"subscription glob", cluster(prodSub, "rg-x", "x", nil), "defaults, rule sub, rule all"},
		{"subscription glob, upper-case value", cluster(strings.ToUpper(prodSub), "rg-x", "x", nil), "defaults, rule sub, rule all"},
		{"subscription mismatch", cluster(other, "rg-x", "x", nil), "defaults, rule all"},
		{"resource group glob", cluster(other, "rg-a-prod", "x", nil), "defaults, rule rg, rule all"},
		{"resource group glob, mixed case", cluster(other, "RG-B-Prod", "x", nil), "defaults, rule rg, rule all"},
		{"resource group ? is one character", cluster(other, "rg-ab-prod", "x", nil), "defaults, rule all"},
		{"cluster glob class", cluster(other, "rg-x", "aks-b01", nil), "defaults, rule cluster, rule all"},
		{"cluster glob class, upper case", cluster(other, "rg-x", "AKS-A01", nil), "defaults, rule cluster, rule all"},
		{"cluster glob class mismatch", cluster(other, "rg-x", "aks-c01", nil), "defaults, rule all"},
		{"linux pool", cluster(other, "rg-x", "x", nil, ubuntu), "defaults, rule linux, rule all"},
		{"linux and windows pools", cluster(other, "rg-x", "x", nil, ubuntu, win), "defaults, rule linux, rule windows, rule all"},
		{"windows known from osSKU only", cluster(other, "rg-x", "x", nil, winNoType), "defaults, rule windows, rule all"},
		{"removed windows pool does not count", removed(cluster(other, "rg-x", "x", nil, ubuntu, win), "win22"), "defaults, rule linux, rule all"},
		{"no pools known", cluster(other, "rg-x", "x", nil), "defaults, rule all"},
		{"every field matches", cluster(prodSub, "rg-c-prod", "aks-a1", nil, ubuntu, win),
			"defaults, rule sub, rule rg, rule cluster, rule linux, rule windows, rule all"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, _ := set.For(tc.cluster)
			if got.Source != tc.want {
				t.Errorf("Source: got %q, want %q", got.Source, tc.want)
			}
		})
	}
}

// TestForUnsupportedSecurityPatch checks the pools AKS does not patch with
// SecurityPatch: the policy stays as resolved and each such pool is a Problem.
func TestForUnsupportedSecurityPatch(t *testing.T) {
	set := mustLoad(t, "testdata/policy.json")
	const rg, name = "rg-shop-prod-weu", "aks-shop-01" // rule prod: SecurityPatch
	prod := func(source string) fleet.Policy {
		return docDefaults(func(p *fleet.Policy) {
			p.NodeOSChannel = fleet.ChannelSecurityPatch
			p.StallLimit = 12 * time.Hour
			p.RequireNodeOSWindow = true
			p.Source = source
		})
	}
	problem := func(source, reason string) Problem {
		return Problem{Field: "nodeOSChannel", Value: "SecurityPatch", Source: source, Reason: reason}
	}
	cases := []struct {
		name     string
		cluster  *fleet.Cluster
		want     fleet.Policy
		problems []Problem
	}{
		{
			name:    "Ubuntu, Azure Linux CPU and Ubuntu GPU pools are fine",
			cluster: cluster(prodSub, rg, name, nil, ubuntu, azl, ubuntuGPU),
			want:    prod("defaults, rule prod"),
		},
		{
			name:     "Windows pool",
			cluster:  cluster(prodSub, rg, name, nil, ubuntu, win),
			want:     prod("defaults, rule prod"),
			problems: []Problem{problem("rule prod", "AKS does not support SecurityPatch on Windows pool win22")},
		},
		{
			name:     "Windows pool known from osSKU only",
			cluster:  cluster(prodSub, rg, name, nil, ubuntu, winNoType),
			want:     prod("defaults, rule prod"),
			problems: []Problem{problem("rule prod", "AKS does not support SecurityPatch on Windows pool win25")},
		},
		{
			name:    "Azure Linux GPU pools, every SKU spelling",
			cluster: cluster(prodSub, rg, name, nil, ubuntu, azlGPU, azl3GPU, marinGPU),
			want:    prod("defaults, rule prod"),
			problems: []Problem{
				problem("rule prod", "AKS does not support SecurityPatch on Azure Linux GPU pool gpu"),
				problem("rule prod", "AKS does not support SecurityPatch on Azure Linux GPU pool gpu3"),
				problem("rule prod", "AKS does not support SecurityPatch on Azure Linux GPU pool mgpu"),
			},
		},
		{
			name:     "Flatcar pool",
			cluster:  cluster(prodSub, rg, name, nil, ubuntu, flatcar),
			want:     prod("defaults, rule prod"),
			problems: []Problem{problem("rule prod", "AKS does not support SecurityPatch on Flatcar pool fc")},
		},
		{
			name:    "removed pools do not count",
			cluster: removed(cluster(prodSub, rg, name, nil, ubuntu, win, flatcar), "win22", "fc"),
			want:    prod("defaults, rule prod"),
		},
		{
			name: "SecurityPatch from a tag names the tag",
			cluster: cluster(prodSub, "rg-shop-dev", "aks-dev", map[string]string{"upgradewatch.nodeoschannel": "securityPatch"},
				ubuntu, win),
			want: docDefaults(func(p *fleet.Policy) {
				p.NodeOSChannel = fleet.ChannelSecurityPatch
				p.TaggedNodeOSChannel = true
				p.Source = "defaults, tag upgradewatch.nodeOSChannel"
			}),
			problems: []Problem{problem("tag upgradewatch.nodeOSChannel", "AKS does not support SecurityPatch on Windows pool win22")},
		},
		{
			name: "a tag back to NodeImage clears the problem",
			cluster: cluster(prodSub, rg, name, map[string]string{"upgradewatch.nodeOSChannel": "NodeImage"},
				ubuntu, win, azlGPU, flatcar),
			want: docDefaults(func(p *fleet.Policy) {
				p.StallLimit = 12 * time.Hour
				p.RequireNodeOSWindow = true
				p.TaggedNodeOSChannel = true
				p.Source = "defaults, rule prod, tag upgradewatch.nodeOSChannel"
			}),
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, problems := set.For(tc.cluster)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("policy: got … want … (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.problems, problems); diff != "" {
				t.Errorf("problems: got … want … (-want +got):\n%s", diff)
			}
		})
	}
}

// TestForCrossSourceNodeImage checks a node-image upgrade channel and another
// node OS channel coming from two different document entries: AKS forces
// NodeImage, so the policy expects NodeImage and says why.
func TestForCrossSourceNodeImage(t *testing.T) {
	set := mustLoad(t, `{"defaults": {"nodeOSChannel": "SecurityPatch"},
		"rules": [{"name": "legacy", "match": {"cluster": "aks-legacy-*"}, "policy": {"upgradeChannel": "node-image"}}]}`)
	got, problems := set.For(cluster(prodSub, "rg", "aks-legacy-1", nil, ubuntu, win))
	want := builtin
	want.NodeOSChannel, want.UpgradeChannel, want.Source = fleet.ChannelNodeImage, fleet.UpgradeNodeImage, "defaults, rule legacy"
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("policy: got … want … (-want +got):\n%s", diff)
	}
	wantProblems := []Problem{{Field: "nodeOSChannel", Value: "SecurityPatch", Source: "defaults",
		Reason: "upgradeChannel node-image (rule legacy) forces NodeImage; NodeImage expected instead"}}
	if diff := cmp.Diff(wantProblems, problems); diff != "" {
		t.Errorf("problems: got … want … (-want +got):\n%s", diff)
	}
}

// TestParseCanonicalValues checks that document values are accepted in any
// case and come out in the canonical spelling.
func TestParseCanonicalValues(t *testing.T) {
	set := mustLoad(t, `{"defaults": {"nodeOSChannel": "securitypatch", "upgradeChannel": "STABLE", "remediate": "Dry-Run"},
		"rules": [{"name": "r", "policy": {"nodeOSChannel": " unmanaged "}}]}`)
	got, problems := set.For(cluster(prodSub, "rg", "aks", nil))
	want := builtin
	want.NodeOSChannel, want.UpgradeChannel, want.Remediate = fleet.ChannelUnmanaged, fleet.UpgradeStable, fleet.RemediateDryRun
	want.Source = "defaults, rule r"
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("policy: got … want … (-want +got):\n%s", diff)
	}
	if len(problems) != 0 {
		t.Errorf("problems: got %v, want none", problems)
	}
}

// TestParseRefusals loads every document under testdata/invalid and checks
// that the error names the rule (or defaults) and the field.
func TestParseRefusals(t *testing.T) {
	cases := []struct {
		file string
		want []string // substrings of the error
	}{
		{"unknown-top-field.json", []string{`default: unknown field`}},
		{"unknown-rule-field.json", []string{`rule "prod"`, `enabled: unknown field`}},
		{"unknown-match-field.json", []string{`rule "prod"`, `match.resourceGroups: unknown field`}},
		{"unknown-policy-field.json", []string{`rule "prod"`, `policy.nodeOSUpgradeChannel: unknown field`}},
		{"unknown-defaults-field.json", []string{`defaults.maxImageAge: unknown field`}},
		{"invalid-nodeos-channel.json", []string{`rule "prod"`, `policy.nodeOSChannel "SecurityPatches": not a node OS channel`}},
		{"invalid-upgrade-channel.json", []string{`defaults.upgradeChannel "latest": not an upgrade channel`}},
		{"invalid-remediate.json", []string{`rule "auto-fix"`, `policy.remediate "yes": not a remediation mode`}},
		{"remediate-outside-window-not-bool.json", []string{`rule "night-shift"`, `policy.remediateOutsideWindow: got JSON string, want true or false`}},
		{"max-image-age-out-of-range.json", []string{`rule "archive"`, `policy.maxImageAgeDays 400: out of range (want 1 to 365)`}},
		{"image-grace-negative.json", []string{`defaults.imageGraceDays -1: out of range (want 0 to 90)`}},
		{"stall-hours-absurd.json", []string{`rule "big-pools"`, `policy.stallHours 1000: out of range (want 1 to 168)`}},
		{"min-window-zero.json", []string{`rule "windows"`, `policy.minWindowHours 0: out of range (want 1 to 24)`}},
		{"number-not-integer.json", []string{`rule "slow"`, `policy.stallHours: got JSON number 1.5, want a whole number`}},
		{"number-as-string.json", []string{`rule "slow"`, `policy.stallHours: got JSON string, want a whole number`}},
		{"bad-glob.json", []string{`rule "prod"`, `match.resourceGroup "rg-[prod": bad glob`}},
		{"empty-glob.json", []string{`rule "prod"`, `match.cluster: empty pattern`}},
		{"duplicate-rule-names.json", []string{`rule "Prod"`, `name: duplicate of rule #1`}},
		{"missing-rule-name.json", []string{`rule #2`, `name: missing`}},
		{"node-image-conflict-rule.json", []string{`rule "legacy"`, `policy.nodeOSChannel "SecurityPatch": AKS forces NodeImage when upgradeChannel is node-image`}},
		{"node-image-conflict-defaults.json", []string{`defaults.nodeOSChannel "Unmanaged": AKS forces NodeImage`}},
		{"securitypatch-windows.json", []string{`rule "win-patch"`, `policy.nodeOSChannel "SecurityPatch": AKS does not support SecurityPatch on Windows pools`}},
		{"invalid-os-type.json", []string{`rule "ubuntu"`, `match.osTypes "Ubuntu": not an OS type`}},
		{"empty-os-types.json", []string{`rule "none"`, `match.osTypes: empty list`}},
		{"empty-policy.json", []string{`rule "noop"`, `policy: sets nothing`}},
		{"policy-not-object.json", []string{`rule "prod"`, `policy: must be an object`}},
		{"rules-not-list.json", []string{`rules: got JSON object, want a list`}},
		{"trailing-data.json", []string{`unexpected data after the document`}},
		{"not-object.json", []string{`not a JSON object`}},
		{"syntax-error.json", []string{`invalid JSON at line 2, column 46`}},
	}
	files, err := filepath.Glob("testdata/invalid/*.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(cases) {
		t.Errorf("testdata/invalid holds %d files, the table %d: keep them in step", len(files), len(cases))
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("testdata/invalid", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			s, err := Parse(b)
			if err == nil {
				t.Fatalf("Parse: got %d rules and no error, want an error", s.Len())
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error: got %q, want it to contain %q", err, w)
				}
			}
		})
	}
}

// TestLoad covers the forms of UPGRADEWATCH_POLICY: a path, inline JSON, empty.
func TestLoad(t *testing.T) {
	inline, err := os.ReadFile("testdata/policy.json")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"rules": [{"name": "prod", "policy": {"stallHours": 0}}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	emptyFile := filepath.Join(dir, "empty.json")
	if err := os.WriteFile(emptyFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		in      string
		rules   int
		wantErr []string
	}{
		{name: "empty string", in: "", rules: 0},
		{name: "blank string", in: " \n\t", rules: 0},
		{name: "path", in: "testdata/policy.json", rules: 5},
		{name: "path with spaces around", in: "  testdata/policy.json\n", rules: 5},
		{name: "inline JSON", in: string(inline), rules: 5},
		{name: "inline JSON after blanks", in: "\n  " + string(inline), rules: 5},
		{name: "inline empty object", in: "{}", rules: 0},
		{name: "missing file", in: filepath.Join(dir, "nope.json"), wantErr: []string{"read policy file", "nope.json"}},
		{name: "invalid file names the file", in: bad, wantErr: []string{bad, `rule "prod"`, "policy.stallHours 0"}},
		{name: "empty file", in: emptyFile, wantErr: []string{emptyFile, "policy document is empty"}},
		{name: "invalid inline", in: `{"rules": [{"name": "x", "policy": {"nodeOSChannel": "Weekly"}}]}`,
			wantErr: []string{`rule "x"`, "policy.nodeOSChannel"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Load(tc.in)
			if tc.wantErr != nil {
				if err == nil {
					t.Fatalf("Load: got no error, want one containing %q", tc.wantErr)
				}
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error: got %q, want it to contain %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("Load: got error %v, want none", err)
			}
			if s.Len() != tc.rules {
				t.Errorf("rules: got %d, want %d", s.Len(), tc.rules)
			}
		})
	}

	t.Run("empty Set gives the built-in defaults", func(t *testing.T) {
		got, problems := mustLoad(t, "").For(cluster(prodSub, "rg", "aks", nil, ubuntu, win))
		if diff := cmp.Diff(builtin, got); diff != "" {
			t.Errorf("policy: got … want … (-want +got):\n%s", diff)
		}
		if len(problems) != 0 {
			t.Errorf("problems: got %v, want none", problems)
		}
	})
	t.Run("nil cluster", func(t *testing.T) {
		got, _ := mustLoad(t, `{"defaults": {"stallHours": 6}}`).For(nil)
		want := builtin
		want.StallLimit = 6 * time.Hour
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("policy: got … want … (-want +got):\n%s", diff)
		}
	})
}

// TestForConcurrent resolves from many goroutines at once (run with -race).
func TestForConcurrent(t *testing.T) {
	set := mustLoad(t, "testdata/policy.json")
	c := cluster(sandboxSub, "rg-payments-prod-neu", "aks-pay-01", map[string]string{"upgradewatch.stallHours": "36"}, ubuntu, win)
	want, _ := set.For(c)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				if got, _ := set.For(c); got != want {
					t.Errorf("concurrent For: got %+v, want %+v", got, want)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestProblemString(t *testing.T) {
	cases := []struct {
		p    Problem
		want string
	}{
		{Problem{Field: "stallHours", Value: "x", Source: "tag upgradewatch.stallHours", Reason: "not a whole number; tag ignored"},
			`tag upgradewatch.stallHours: stallHours "x": not a whole number; tag ignored`},
		{Problem{Value: "1", Source: "tag upgradewatch.foo", Reason: "unknown upgradewatch tag; ignored"},
			`tag upgradewatch.foo "1": unknown upgradewatch tag; ignored`},
	}
	for _, tc := range cases {
		if got := tc.p.String(); got != tc.want {
			t.Errorf("String: got %q, want %q", got, tc.want)
		}
	}
}
