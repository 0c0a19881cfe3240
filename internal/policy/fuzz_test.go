package policy

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
)

// FuzzParse feeds Parse every fixture, valid and invalid, and their mutations,
// with a tag value set on every upgradewatch tag of a sample cluster: Parse
// and For must never panic, and what For returns must be a policy the rules
// can use: durations not negative, channels in their canonical spelling, no
// combination AKS refuses.
func FuzzParse(f *testing.F) {
	for _, pattern := range []string{"testdata/*.json", "testdata/invalid/*.json"} {
		files, err := filepath.Glob(pattern)
		if err != nil {
			f.Fatal(err)
		}
		for _, file := range files {
			b, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b, "")
		}
	}
	f.Add([]byte(`{"rules":[{"name":"a","match":{"cluster":"*"},"policy":{"upgradeChannel":"node-image"}}]}`), "SecurityPatch")
	f.Add([]byte(`{"defaults":{"nodeOSChannel":"SecurityPatch"}}`), "node-image")
	f.Add([]byte(`{}`), "24")

	f.Fuzz(func(t *testing.T, doc []byte, tag string) {
		s, err := Parse(doc)
		if err != nil {
			return
		}
		tags := map[string]string{"upgradewatch.unknown": tag}
		for _, name := range fieldNames {
			tags[TagPrefix+name] = tag
		}
		c := cluster(prodSub, "rg-shop-prod-weu", "aks-win-shop", tags, ubuntu, win, azlGPU, flatcar)
		for _, c := range []*fleet.Cluster{c, nil, cluster(sandboxSub, "rg", "aks-legacy-1", nil)} {
			p, problems := s.For(c)
			for name, d := range map[string]int64{
				"MaxImageAge": int64(p.MaxImageAge), "ImageGrace": int64(p.ImageGrace),
				"StallLimit": int64(p.StallLimit), "StallMinimum": int64(p.StallMinimum),
			} {
				if d < 0 {
					t.Errorf("%s: got %d, want ≥ 0", name, d)
				}
			}
			if p.StallLimit == 0 || p.StallMinimum == 0 || p.MinWindowHours < 1 {
				t.Errorf("defaults not applied: got %+v", p)
			}
			if p.NodeOSChannel != "" && !slices.Contains(nodeOSChannels, p.NodeOSChannel) {
				t.Errorf("NodeOSChannel: got %q, want a canonical channel", p.NodeOSChannel)
			}
			if p.UpgradeChannel != "" && !slices.Contains(upgradeChannels, p.UpgradeChannel) {
				t.Errorf("UpgradeChannel: got %q, want a canonical channel", p.UpgradeChannel)
			}
			if !slices.Contains(remediateModes, p.Remediate) {
				t.Errorf("Remediate: got %q, want a mode", p.Remediate)
			}
			if p.UpgradeChannel == fleet.UpgradeNodeImage && p.NodeOSChannel != "" && p.NodeOSChannel != fleet.ChannelNodeImage {
				t.Errorf("node-image with NodeOSChannel %q", p.NodeOSChannel)
			}
			if !strings.HasPrefix(p.Source, "defaults") {
				t.Errorf("Source: got %q, want it to start with defaults", p.Source)
			}
			for _, pr := range problems {
				if pr.Source == "" || pr.Reason == "" {
					t.Errorf("problem without source or reason: %+v", pr)
				}
			}
		}
	})
}
