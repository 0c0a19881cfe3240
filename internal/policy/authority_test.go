package policy

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
	"github.com/upgradewatch/upgradewatch/internal/remediate"
)

// TestForTagsOnlyLower checks that authority flows down: the document decides
// who may be remediated and how far, and a tag can only lower that; a tag
// asking for more is ignored with a Problem.
func TestForTagsOnlyLower(t *testing.T) {
	const (
		lowerMode = "a tag may only lower remediation, and the policy document allows %s here; tag ignored"
		inWindow  = "a tag may only keep remediation inside the maintenance window, and the policy document does not allow it outside here; tag ignored"
	)
	raise := func(field, value, reason string) Problem {
		return Problem{Field: field, Value: value, Source: "tag upgradewatch." + field, Reason: reason}
	}
	cases := []struct {
		name     string
		doc      string
		tags     map[string]string
		remedy   string // resolved Remediate
		outside  bool   // resolved RemediateOutsideWindow
		tagged   bool   // TaggedNodeOSChannel
		problems []Problem
	}{
		{
			name:   "the issue: document wants NodeImage, tags ask Unmanaged, apply, outside the window",
			doc:    `{"defaults": {"nodeOSChannel": "NodeImage"}}`,
			tags:   map[string]string{"upgradewatch.nodeOSChannel": "Unmanaged", "upgradewatch.remediate": "apply", "upgradewatch.remediateOutsideWindow": "true"},
			remedy: fleet.RemediateOff, tagged: true,
			problems: []Problem{
				raise("remediate", "apply", "a tag may only lower remediation, and the policy document allows off here; tag ignored"),
				raise("remediateOutsideWindow", "true", inWindow),
			},
		},
		{
			name:   "document allows dry-run: apply by tag is ignored",
			doc:    `{"defaults": {"remediate": "dry-run"}}`,
			tags:   map[string]string{"upgradewatch.remediate": "APPLY"},
			remedy: fleet.RemediateDryRun,
			problems: []Problem{
				raise("remediate", "APPLY", "a tag may only lower remediation, and the policy document allows dry-run here; tag ignored"),
			},
		},
		{
			name:   "document allows dry-run: the same by tag is fine",
			doc:    `{"defaults": {"remediate": "dry-run"}}`,
			tags:   map[string]string{"upgradewatch.remediate": "dry-run"},
			remedy: fleet.RemediateDryRun,
		},
		{
			name:   "document allows apply: a tag opts out",
			doc:    `{"defaults": {"remediate": "apply"}}`,
			tags:   map[string]string{"upgradewatch.remediate": "off"},
			remedy: fleet.RemediateOff,
		},
		{
			name:   "document allows apply: a tag asks for dry runs",
			doc:    `{"defaults": {"remediate": "apply"}}`,
			tags:   map[string]string{"upgradewatch.remediate": "Dry-Run"},
			remedy: fleet.RemediateDryRun,
		},
		{
			name:    "document allows outside the window: a tag keeps it inside",
			doc:     `{"defaults": {"remediate": "apply", "remediateOutsideWindow": true}}`,
			tags:    map[string]string{"upgradewatch.remediateOutsideWindow": "false"},
			remedy:  fleet.RemediateApply,
			outside: false,
		},
		{
			name:     "document keeps the window: outside by tag is ignored",
			doc:      `{"defaults": {"remediate": "apply"}, "rules": [{"name": "shop", "match": {"cluster": "aks-shop-*"}, "policy": {"remediateOutsideWindow": false}}]}`,
			tags:     map[string]string{"upgradewatch.remediateOutsideWindow": "true"},
			remedy:   fleet.RemediateApply,
			problems: []Problem{raise("remediateOutsideWindow", "true", inWindow)},
		},
		{
			name:   "a rule grants apply only to the clusters it matches",
			doc:    `{"rules": [{"name": "sandbox", "match": {"resourceGroup": "rg-sandbox"}, "policy": {"remediate": "apply"}}]}`,
			tags:   map[string]string{"upgradewatch.remediate": "apply"},
			remedy: fleet.RemediateOff,
			problems: []Problem{
				raise("remediate", "apply", "a tag may only lower remediation, and the policy document allows off here; tag ignored"),
			},
		},
		{
			name:   "a channel tag on a remediated cluster counts for findings only",
			doc:    `{"defaults": {"nodeOSChannel": "NodeImage", "remediate": "apply"}}`,
			tags:   map[string]string{"upgradewatch.nodeOSChannel": "unmanaged"},
			remedy: fleet.RemediateApply, tagged: true,
			problems: []Problem{{Field: "nodeOSChannel", Value: "Unmanaged", Source: "tag upgradewatch.nodeOSChannel",
				Reason: "expected for findings, but remediation sets only the policy document's channels (NodeImage); not remediated"}},
		},
		{
			name:   "a channel tag naming the document's channel changes nothing",
			doc:    `{"defaults": {"nodeOSChannel": "NodeImage", "remediate": "apply"}}`,
			tags:   map[string]string{"upgradewatch.nodeOSChannel": "NodeImage"},
			remedy: fleet.RemediateApply,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, problems := mustLoad(t, tc.doc).For(cluster(prodSub, "rg-shop-prod", "aks-shop-01", tc.tags, ubuntu))
			if got.Remediate != tc.remedy || got.RemediateOutsideWindow != tc.outside || got.TaggedNodeOSChannel != tc.tagged {
				t.Errorf("got remediate %s, outside the window %v, tagged node OS channel %v; want %s, %v, %v",
					got.Remediate, got.RemediateOutsideWindow, got.TaggedNodeOSChannel, tc.remedy, tc.outside, tc.tagged)
			}
			if diff := cmp.Diff(tc.problems, problems); diff != "" {
				t.Errorf("problems: got … want … (-want +got):\n%s", diff)
			}
		})
	}
}

// TestTagsCannotReimage reproduces issue 12 finding 1 through the planner: a
// cluster on NodeImage, as the document wants, tagged to go to Unmanaged with
// apply outside the window. Before, the planner chose NodeImage → Unmanaged
// outside the window under the ceiling apply: a reimage of every node.
func TestTagsCannotReimage(t *testing.T) {
	outside := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC) // no window known: outside any
	tags := map[string]string{"upgradewatch.nodeOSChannel": "Unmanaged", "upgradewatch.remediate": "apply",
		"upgradewatch.remediateOutsideWindow": "true"}
	for _, doc := range []string{
		`{"defaults": {"nodeOSChannel": "NodeImage"}}`,
		`{"defaults": {"nodeOSChannel": "NodeImage", "remediate": "apply"}}`,
		`{"defaults": {"nodeOSChannel": "NodeImage", "remediate": "apply", "remediateOutsideWindow": true}}`,
	} {
		t.Run(doc, func(t *testing.T) {
			c := cluster(prodSub, "rg-shop-prod", "aks-shop-01", tags, ubuntu)
			c.NodeOSUpgradeChannel, c.UpgradeChannel, c.ProvisioningState = fleet.ChannelNodeImage, fleet.UpgradePatch, "Succeeded"
			c.Findings = map[string]*fleet.Finding{
				fleet.FindingKey(fleet.CodeChannelDrift, "cluster"): {Code: fleet.CodeChannelDrift, Target: "cluster",
					Status: fleet.FindingOpen, Opened: 1, OpenedAt: outside.Add(-time.Hour), Severity: fleet.SeverityWarning},
			}
			p, problems := mustLoad(t, doc).For(c)
			if len(problems) == 0 {
				t.Error("problems: got none, want the ignored tags reported")
			}
			d := remediate.Decide(c, p, fleet.RemediateApply, outside)
			if d.Next != nil {
				t.Fatalf("Decide: got %s %s → %s (mode %s), want nothing planned", d.Next.Action, d.Next.From, d.Next.To, d.Mode)
			}
			if len(d.Skips) != 1 || (d.Skips[0].Reason != remediate.ReasonNotOptedIn && d.Skips[0].Reason != remediate.ReasonTaggedChannel) {
				t.Errorf("skips: got %+v, want ChannelDrift skipped as NotOptedIn or TaggedChannel", d.Skips)
			}
		})
	}
}
