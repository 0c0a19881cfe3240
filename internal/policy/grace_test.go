package policy

import (
	"strings"
	"testing"
	"time"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
)

func TestGrace(t *testing.T) {
	s, err := Parse([]byte(`{"grace": {"UpgradeFailed": "2m", "ChannelDrift": "4h", "VersionSkew": "0s"}}`))
	if err != nil {
		t.Fatal(err)
	}
	g := s.Grace()
	want := map[string]time.Duration{fleet.CodeUpgradeFailed: 2 * time.Minute, fleet.CodeChannelDrift: 4 * time.Hour, fleet.CodeVersionSkew: 0}
	if len(g) != len(want) {
		t.Fatalf("got %v, want %v", g, want)
	}
	for k, v := range want {
		if d, ok := g[k]; !ok || d != v {
			t.Errorf("%s: got %v, want %v", k, d, v)
		}
	}
	if none, _ := Parse([]byte(`{"defaults": {"stallHours": 2}}`)); none.Grace() != nil {
		t.Errorf("no grace in the document: got %v, want nil", none.Grace())
	}
}

func TestGraceRefusesBadDocuments(t *testing.T) {
	for _, tc := range []struct{ doc, want string }{
		{`{"grace": {"UpgradeFailled": "5m"}}`, "grace.UpgradeFailled: not a finding code"},
		{`{"grace": {"UpgradeFailed": "5 minutes"}}`, `grace.UpgradeFailed "5 minutes": not a duration`},
		{`{"grace": {"UpgradeFailed": "-1m"}}`, `grace.UpgradeFailed "-1m": out of range`},
		{`{"grace": {"ImageStale": "200h"}}`, `grace.ImageStale "200h": out of range`},
		{`{"grace": {"ImageStale": 5}}`, "grace: want an object of finding code to duration"},
		{`{"grace": ["5m"]}`, "grace: want an object"},
	} {
		_, err := Parse([]byte(tc.doc))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.doc, err, tc.want)
		}
	}
}
