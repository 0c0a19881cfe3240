package findings

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
)

// A condition that only goes on holding says the same thing every time it
// is judged: no age or duration that grows with the clock, so the finding's
// row is not rewritten for time passing alone.
func TestSummaryAndEvidenceStableOverTime(t *testing.T) {
	for _, tc := range []struct {
		name, key   string
		sigs        []fleet.Signal
		at          []time.Time
		wantSummary string
		wantEv      map[string]any
	}{
		{name: "image past its limit, judged a day and a week apart", key: fleet.FindingKey(fleet.CodeImageStale, "pool/system"),
			sigs:        []fleet.Signal{read("arm-1", now.Add(-time.Hour), "NodeImage", "patch", pools(ubuntuOld), sundayWindow)},
			at:          []time.Time{now, now.Add(24 * time.Hour), now.Add(7 * 24 * time.Hour)},
			wantSummary: "pool system runs AKSUbuntu-2204gen2containerd-202610.20.0, built 2026-10-20: past its 14-day limit since 2026-11-03",
			wantEv: map[string]any{"image": ubuntuOld, "imageDate": "2026-10-20", "staleSince": "2026-11-03", "limitDays": 14.0,
				"channel": "NodeImage"}},
		{name: "stalled roll, judged hours apart", key: fleet.FindingKey(fleet.CodeUpgradeStalled, "pool/system"),
			sigs:        append(healthy(), roll("s1", fleet.KindRollingStarted, "system", now.Add(-3*time.Hour))),
			at:          []time.Time{now, now.Add(5 * time.Hour), now.Add(20 * time.Hour)},
			wantSummary: "pool system has been rolling since 2026-11-24 06:00Z, longer than the 2h expected"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := build(t, tc.sigs)
			var first *fleet.Observation
			for _, at := range tc.at {
				o, ok := keys(Evaluate(c, nodeImagePolicy, nil, at))[tc.key]
				if !ok {
					t.Fatalf("%s not observed at %s", tc.key, at)
				}
				if first == nil {
					first = &o
					continue
				}
				if o.Summary != first.Summary {
					t.Errorf("summary at %s: %q, at %s: %q", tc.at[0], first.Summary, at, o.Summary)
				}
				if a, b := evidenceJSON(t, first.Evidence), evidenceJSON(t, o.Evidence); a != b {
					t.Errorf("evidence at %s: %s, at %s: %s", tc.at[0], a, at, b)
				}
			}
			if first.Summary != tc.wantSummary {
				t.Errorf("summary %q, want %q", first.Summary, tc.wantSummary)
			}
			if tc.wantEv != nil {
				var got map[string]any
				if err := json.Unmarshal([]byte(evidenceJSON(t, first.Evidence)), &got); err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(tc.wantEv, got); diff != "" {
					t.Errorf("evidence (-want +got):\n%s", diff)
				}
			}
		})
	}
}

func evidenceJSON(t *testing.T, ev map[string]any) string {
	t.Helper()
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
