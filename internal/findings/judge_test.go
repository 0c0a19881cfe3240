package findings

import (
	"testing"
	"time"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
)

func TestJudgeTime(t *testing.T) {
	wall := now
	events := now.Add(-21 * 24 * time.Hour)
	for _, tc := range []struct {
		name      string
		heard     time.Time
		lastEvent time.Time
		seen      time.Time // an open finding's LastSeenAt
		want      time.Time
	}{
		{"never heard (state from before): the wall clock", time.Time{}, events, time.Time{}, wall},
		{"a backlog arriving: its event clock", wall.Add(-time.Second), events, time.Time{}, events},
		{"quiet for Settle: the wall clock", wall.Add(-Settle), events, time.Time{}, wall},
		{"never before what an open finding was seen at", wall.Add(-time.Second), events, events.Add(time.Hour), events.Add(time.Hour)},
		{"never after the wall clock", wall.Add(-time.Second), wall.Add(time.Minute), time.Time{}, wall},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := fleet.NewCluster(aks)
			c.HeardAt, c.LastEventAt = tc.heard, tc.lastEvent
			if !tc.seen.IsZero() {
				c.Findings["x"] = &fleet.Finding{Code: fleet.CodeImageStale, Target: "pool/system", Status: fleet.FindingOpen, LastSeenAt: tc.seen}
			}
			if got := JudgeTime(c, wall); !got.Equal(tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

// A backlog three weeks late: an upgrade's Started arrives, then its
// Succeeded a moment later. Judged on event time, it never stalls; had the
// Succeeded not come, the Sweep opens the stall once the cluster is quiet.
func TestBacklogStallJudgedOnEventTime(t *testing.T) {
	rules := Evaluator(func(*fleet.Cluster) (fleet.Policy, []string) { return nodeImagePolicy, nil })
	start := now.Add(-21 * 24 * time.Hour)
	c := build(t, append(healthy(), roll("s1", fleet.KindRollingStarted, "system", start)))
	c.LastEventAt = start // the backlog's first event so far
	c.HeardAt = now
	if tr := rules(c, now); len(tr) != 0 {
		t.Fatalf("the Started alone, judged at its event time: %+v", tr)
	}
	// The deadline passed on the wall clock but not on the events: look
	// again once the cluster is quiet, not at once.
	if want := now.Add(Settle); !c.NextEvaluation.Equal(want) {
		t.Fatalf("next evaluation %v, want when the cluster settles %v", c.NextEvaluation, want)
	}
	stalled := c.Clone()
	if err := fleet.Apply(c, roll("s2", fleet.KindRollingSucceeded, "system", start.Add(90*time.Minute))); err != nil {
		t.Fatal(err)
	}
	c.HeardAt = now.Add(time.Second)
	if tr := rules(c, now.Add(time.Second)); len(tr) != 0 {
		t.Fatalf("Started and Succeeded from the backlog: %+v, want nothing", tr)
	}

	// No Succeeded: the Sweep at the settle time opens it, dated its deadline.
	sweep := now.Add(Settle)
	tr := rules(stalled, sweep)
	if len(tr) != 1 || tr[0].Kind != fleet.TransitionOpened || tr[0].Finding.Code != fleet.CodeUpgradeStalled {
		t.Fatalf("quiet cluster at the sweep: %+v, want UpgradeStalled opened", tr)
	}
	f := tr[0].Finding
	if want := start.Add(2 * time.Hour); !f.OpenedAt.Equal(want) || !f.NoticedAt.Equal(sweep) {
		t.Errorf("opened %v noticed %v, want opened at the deadline %v, noticed %v", f.OpenedAt, f.NoticedAt, want, sweep)
	}
	// Its Succeeded arrives late: resolved at the upgrade's true end.
	end := start.Add(3 * time.Hour)
	if err := fleet.Apply(stalled, roll("s2", fleet.KindRollingSucceeded, "system", end)); err != nil {
		t.Fatal(err)
	}
	stalled.HeardAt = sweep.Add(time.Minute)
	tr = rules(stalled, sweep.Add(time.Minute))
	if len(tr) != 1 || tr[0].Kind != fleet.TransitionResolved || !tr[0].Finding.ResolvedAt.Equal(end) {
		t.Errorf("late Succeeded: %+v, want resolved at the upgrade's end %v", tr, end)
	}
}

func TestInhibit(t *testing.T) {
	open := func(c *fleet.Cluster, code, target string) *fleet.Finding {
		f := &fleet.Finding{Code: code, Target: target, Status: fleet.FindingOpen}
		c.Findings[f.Key()] = f
		return f
	}
	c := build(t, append(healthy(), roll("s1", fleet.KindRollingStarted, "system", now.Add(-time.Minute))))
	stale := open(c, fleet.CodeImageStale, "pool/system")
	skew := open(c, fleet.CodeVersionSkew, "family/AKSUbuntu-2204gen2containerd")
	stall := open(c, fleet.CodeUpgradeStalled, "pool/system")
	other := open(c, fleet.CodeImageStale, "pool/payments")
	drift := open(c, fleet.CodeChannelDrift, "cluster")
	Inhibit(c)
	for _, tc := range []struct {
		f    *fleet.Finding
		want string
	}{
		{stale, "pool system rolling"}, {skew, "pool system rolling"}, {stall, ""}, {other, ""}, {drift, ""},
	} {
		if tc.f.InhibitedBy != tc.want {
			t.Errorf("%s: inhibited by %q, want %q", tc.f.Key(), tc.f.InhibitedBy, tc.want)
		}
	}
	// A reported deletion inhibits every pool finding, and the roll's end
	// lifts what it inhibited.
	c.DeletionReported = &fleet.DeletionReport{}
	c.Pools["system"].RollingState = fleet.RollingSucceeded
	Inhibit(c)
	for _, f := range []*fleet.Finding{stale, stall, other} {
		if f.InhibitedBy != InhibitClusterDeleting {
			t.Errorf("%s: inhibited by %q, want %q", f.Key(), f.InhibitedBy, InhibitClusterDeleting)
		}
	}
	if skew.InhibitedBy != "" || drift.InhibitedBy != "" {
		t.Errorf("cluster-wide findings inhibited: %q, %q", skew.InhibitedBy, drift.InhibitedBy)
	}
}
