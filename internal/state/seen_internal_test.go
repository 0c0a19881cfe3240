package state

import (
	"testing"
	"time"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
)

// Open findings' LastSeenAt is kept once, as the sequence row's
// FindingsSeenAt, and InhibitedBy not at all; a resolved finding keeps its
// own LastSeenAt. Reading the rows back (older rows included, which still
// hold both columns) gives every open finding the latest time any was seen.
func TestFindingRowsLeaveOutVolatileValues(t *testing.T) {
	id := fleet.ClusterID{SubscriptionID: "6f1c2a3b-4d5e-4f60-8a71-92b3c4d5e6f7", ResourceGroup: "rg-payments-prod", Name: "aks-payments-weu"}
	t0 := time.Date(2026, 11, 2, 2, 0, 0, 0, time.UTC)
	open := func(target string, seen time.Time, inhibited string) *fleet.Finding {
		return &fleet.Finding{Code: fleet.CodeImageStale, Target: target, Severity: fleet.SeverityWarning, Status: fleet.FindingOpen,
			Summary: "stale", Evidence: "{}", OpenedAt: t0, LastSeenAt: seen, Opened: 1, InhibitedBy: inhibited}
	}
	c := fleet.NewCluster(id)
	c.Signals = 3
	a, b := open("pool/system", t0.Add(time.Hour), "pool system rolling"), open("pool/user", t0.Add(90*time.Minute), "")
	gone := open("pool/batch", t0.Add(30*time.Minute), "")
	gone.Status, gone.ResolvedAt = fleet.FindingResolved, t0.Add(45*time.Minute)
	for _, f := range []*fleet.Finding{a, b, gone} {
		c.Findings[f.Key()] = f
	}

	rows := rowsOf(c)
	if got := rows[rkVolatile]["FindingsSeenAt"]; got != t0.Add(90*time.Minute) {
		t.Errorf("FindingsSeenAt = %v, want the latest open LastSeenAt %s", got, t0.Add(90*time.Minute))
	}
	for _, f := range []*fleet.Finding{a, b} {
		r := rows[findingKey(f.Code, f.Target)]
		if _, ok := r["LastSeenAt"]; ok {
			t.Errorf("open %s: row holds LastSeenAt", f.Key())
		}
		if _, ok := r["InhibitedBy"]; ok {
			t.Errorf("open %s: row holds InhibitedBy", f.Key())
		}
	}
	if got := rows[findingKey(gone.Code, gone.Target)]["LastSeenAt"]; got != gone.LastSeenAt {
		t.Errorf("resolved finding's LastSeenAt = %v, want %s", got, gone.LastSeenAt)
	}

	for _, tc := range []struct {
		name string
		edit func(ents map[string]entity)
		want time.Time
	}{
		{name: "as written", want: t0.Add(90 * time.Minute)},
		{name: "older rows: per-finding LastSeenAt and InhibitedBy, no FindingsSeenAt", edit: func(ents map[string]entity) {
			delete(ents[rkVolatile], "FindingsSeenAt")
			ents[findingKey(a.Code, a.Target)]["LastSeenAt"] = t0.Add(2 * time.Hour).Format(time.RFC3339Nano)
			ents[findingKey(a.Code, a.Target)]["InhibitedBy"] = "pool system rolling"
			ents[findingKey(b.Code, b.Target)]["LastSeenAt"] = t0.Format(time.RFC3339Nano)
		}, want: t0.Add(2 * time.Hour)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ents := map[string]entity{}
			for rk, r := range rows {
				body, err := r.marshal(id.Key(), rk)
				if err != nil {
					t.Fatal(err)
				}
				if ents[rk], err = decodeEntity(body); err != nil {
					t.Fatal(err)
				}
			}
			if tc.edit != nil {
				tc.edit(ents)
			}
			back, err := clusterOf(id, ents)
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range []*fleet.Finding{a, b} {
				got := back.Findings[f.Key()]
				if !got.LastSeenAt.Equal(tc.want) || got.InhibitedBy != "" {
					t.Errorf("%s read back: LastSeenAt %s, InhibitedBy %q; want %s and none (derived on read)",
						f.Key(), got.LastSeenAt, got.InhibitedBy, tc.want)
				}
			}
			if got := back.Findings[gone.Key()]; !got.LastSeenAt.Equal(gone.LastSeenAt) {
				t.Errorf("resolved finding read back: LastSeenAt %s, want %s", got.LastSeenAt, gone.LastSeenAt)
			}
		})
	}
}
