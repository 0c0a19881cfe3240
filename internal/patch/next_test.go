package patch

import (
	"testing"
	"time"
)

// verdicts is what the clock can change of a cluster's pools: status,
// Blocked reason and compliance class (not the days behind, which grow
// daily).
func verdicts(sts []PoolStatus) map[string][3]string {
	out := map[string][3]string{}
	for _, s := range sts {
		out[s.Pool] = [3]string{s.Status, s.Blocked, s.Compliance}
	}
	return out
}

// NextChange is never late: for every status case, no verdict changes
// between now and the time it names (checked every 30 minutes over 60
// days, or up to that time), so a Sweep woken then catches every change.
func TestNextChangeIsNeverLate(t *testing.T) {
	changed := 0
	for _, tc := range statusCases() {
		t.Run(tc.name, func(t *testing.T) {
			c, cat := build(t, tc.sigs(t), tc.elsewhere, tc.pol, tc.evaluate)
			next := NextChange(c, cat, tc.pol, now)
			if !next.IsZero() && !next.After(now) {
				t.Fatalf("next change %s is not after now %s", next, now)
			}
			want := verdicts(Status(c, cat, tc.pol, now, tc.nodes...))
			end := now.Add(60 * 24 * time.Hour)
			if !next.IsZero() {
				end = next
			}
			for at := now.Add(30 * time.Minute); at.Before(end); at = at.Add(30 * time.Minute) {
				if got := verdicts(Status(c, cat, tc.pol, at, tc.nodes...)); !equalVerdicts(got, want) {
					t.Fatalf("verdicts changed at %s, before the next change named (%s): %v → %v", at, next, want, got)
				}
			}
			if !next.IsZero() && !equalVerdicts(verdicts(Status(c, cat, tc.pol, next.Add(time.Second), tc.nodes...)), want) {
				changed++
			}
		})
	}
	if changed == 0 {
		t.Error("no case's verdict changed at the time NextChange named; the cases should include a grace that ends")
	}
}

func equalVerdicts(a, b map[string][3]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
