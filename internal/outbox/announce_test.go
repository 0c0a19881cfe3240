package outbox_test

import (
	"testing"
	"time"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
	"github.com/upgradewatch/upgradewatch/internal/outbox"
)

// graced is twoSinks with a two-hour grace for drift and none for the rest.
var graced = func() outbox.Config {
	c := twoSinks
	c.Grace = outbox.Grace{fleet.CodeChannelDrift: 2 * time.Hour}
	return c
}()

func countSteps(c *fleet.Cluster, step string) int {
	n := 0
	for _, i := range c.Outbox {
		if i.Step == step {
			n++
		}
	}
	return n
}

// A finding is announced once it has been open for its grace, at the
// grace's end (which wakes the cluster), and its resolution follows.
func TestGraceAnnouncesOnceAtItsEnd(t *testing.T) {
	c := fleet.NewCluster(aks)
	step(c, graced, t0, drift())
	if len(c.Outbox) != 0 {
		t.Fatalf("inside the grace: %d intents, want none", len(c.Outbox))
	}
	if want := t0.Add(2 * time.Hour); !c.NextEvaluation.Equal(want) {
		t.Fatalf("NextEvaluation %v, want the grace's end %v", c.NextEvaluation, want)
	}
	f := c.Findings[fleet.FindingKey(fleet.CodeChannelDrift, "cluster")]
	if f.Announcement() != fleet.AnnouncementPending || !f.GraceUntil.Equal(t0.Add(2*time.Hour)) {
		t.Fatalf("finding %+v: want pending until t0+2h", f)
	}
	step(c, graced, t0.Add(time.Hour), drift())
	if len(c.Outbox) != 0 {
		t.Fatalf("still inside the grace: %d intents", len(c.Outbox))
	}
	end := t0.Add(2 * time.Hour)
	step(c, graced, end, drift())
	if countSteps(c, fleet.StepOpened) != 1 {
		t.Fatalf("at the grace's end: %d openings, want 1", countSteps(c, fleet.StepOpened))
	}
	open := c.OutboxOrder()[0]
	if !open.At.Equal(end) || !open.OpenedAt.Equal(t0) || len(open.Deliveries) != 2 {
		t.Errorf("opening at %v opened %v with %d deliveries, want at %v opened %v, both sinks", open.At, open.OpenedAt, len(open.Deliveries), end, t0)
	}
	// Recording again (a racing sweep) adds nothing: one intent id per step.
	outbox.Record(c, nil, end, graced)
	if len(c.Outbox) != 1 {
		t.Fatalf("a second record at the same time: %d intents, want 1", len(c.Outbox))
	}
	step(c, graced, end.Add(time.Hour))
	if countSteps(c, fleet.StepResolved) != 1 {
		t.Errorf("after announcing, the resolution: %d, want 1", countSteps(c, fleet.StepResolved))
	}
}

// A finding that resolves inside its grace sends nothing at all, and is
// marked never announced.
func TestResolvedInsideGraceSendsNothing(t *testing.T) {
	c := fleet.NewCluster(aks)
	step(c, graced, t0, drift())
	step(c, graced, t0.Add(90*time.Minute))
	step(c, graced, t0.Add(3*time.Hour))
	if len(c.Outbox) != 0 {
		t.Fatalf("%d intents, want none: %+v", len(c.Outbox), steps(c))
	}
	f := c.Findings[fleet.FindingKey(fleet.CodeChannelDrift, "cluster")]
	if f.Status != fleet.FindingResolved || f.Announcement() != fleet.AnnouncementNever {
		t.Errorf("finding %s, announcement %s; want resolved, never announced", f.Status, f.Announcement())
	}
}

// A finding whose cause and cure both lie weeks back when they arrive keeps
// its true times and sends nothing.
func TestLateCauseAndCureKeepTrueTimesSendNothing(t *testing.T) {
	cfg := twoSinks
	cfg.Grace = outbox.Grace{fleet.CodeUpgradeStalled: 15 * time.Minute}
	c := fleet.NewCluster(aks)
	deadline := t0.Add(-21 * 24 * time.Hour)
	obs := stalled(fleet.SeverityError)
	obs.Since = deadline
	judged := deadline.Add(3 * time.Hour) // the event clock of the backlog
	tr := fleet.ReconcileAt(c, []fleet.Observation{obs}, judged, t0)
	outbox.Record(c, tr, t0, cfg)
	cured := deadline.Add(5 * time.Hour)
	tr = fleet.ReconcileAt(c, nil, cured, t0.Add(2*time.Second))
	outbox.Record(c, tr, t0.Add(2*time.Second), cfg)
	if len(c.Outbox) != 0 {
		t.Fatalf("%d intents, want none", len(c.Outbox))
	}
	f := c.Findings[fleet.FindingKey(fleet.CodeUpgradeStalled, "pool/spark")]
	if !f.OpenedAt.Equal(deadline) || !f.ResolvedAt.Equal(cured) || !f.NoticedAt.Equal(t0) || f.Announcement() != fleet.AnnouncementNever {
		t.Errorf("opened %v resolved %v noticed %v (%s); want %v, %v, %v, never", f.OpenedAt, f.ResolvedAt, f.NoticedAt,
			f.Announcement(), deadline, cured, t0)
	}
}

// Escalations and reminders belong to announced findings only, and count
// from the announcement.
func TestEscalationAndRemindersOnlyAfterAnnouncement(t *testing.T) {
	cfg := twoSinks
	cfg.Grace = outbox.Grace{fleet.CodeUpgradeStalled: time.Hour}
	c := fleet.NewCluster(aks)
	step(c, cfg, t0, stalled(fleet.SeverityWarning))
	step(c, cfg, t0.Add(10*time.Minute), stalled(fleet.SeverityError))
	if len(c.Outbox) != 0 {
		t.Fatalf("escalated inside its grace: %d intents, want none", len(c.Outbox))
	}
	step(c, cfg, t0.Add(time.Hour), stalled(fleet.SeverityError))
	open := c.OutboxOrder()
	if len(open) != 1 || open[0].Step != fleet.StepOpened || open[0].Severity != fleet.SeverityError {
		t.Fatalf("at the grace's end: %+v, want one opening at Error", steps(c))
	}
	step(c, cfg, t0.Add(time.Hour+time.Minute), stalled(fleet.SeverityCritical))
	if countSteps(c, fleet.StepReminded) != 1 {
		t.Fatalf("escalation after the announcement: %d, want 1", countSteps(c, fleet.StepReminded))
	}
	// The first reminder is due a day after the announcement, not the opening.
	for _, i := range c.Outbox {
		for _, d := range i.Deliveries {
			d.SentAt = t0.Add(time.Hour)
		}
	}
	step(c, cfg, t0.Add(24*time.Hour+30*time.Minute), stalled(fleet.SeverityCritical))
	if n := countSteps(c, fleet.StepReminded); n != 0 {
		t.Fatalf("a day after the opening but not the announcement: %d reminders, want none", n)
	}
	if want := t0.Add(25 * time.Hour); !c.NextEvaluation.Equal(want) {
		t.Errorf("next evaluation %v, want the first reminder at %v", c.NextEvaluation, want)
	}
	step(c, cfg, t0.Add(25*time.Hour), stalled(fleet.SeverityCritical))
	if n := countSteps(c, fleet.StepReminded); n != 1 {
		t.Errorf("a day after the announcement: %d reminders, want 1", n)
	}
}

// A silence holds the opening back; its end announces it once.
func TestSilenceHoldsUntilItsEnd(t *testing.T) {
	until := t0.Add(6 * time.Hour)
	sil := fleet.Silence{ID: "s-1", Cluster: "*/rg-payments-*/*", Code: fleet.CodeChannelDrift, Until: until}
	cfg := twoSinks
	cfg.Silences = func(time.Time) []fleet.Silence { return []fleet.Silence{sil} }
	c := fleet.NewCluster(aks)
	step(c, cfg, t0, drift())
	f := c.Findings[fleet.FindingKey(fleet.CodeChannelDrift, "cluster")]
	// Judged again before the silence's end (SilenceRecheck), in case it
	// was ended early on another instance; still held then.
	if recheck := t0.Add(outbox.SilenceRecheck); len(c.Outbox) != 0 || f.SilencedBy != "s-1" || !c.NextEvaluation.Equal(recheck) {
		t.Fatalf("silenced: %d intents, silencedBy %q, next %v; want none, s-1, %v", len(c.Outbox), f.SilencedBy, c.NextEvaluation, recheck)
	}
	step(c, cfg, t0.Add(outbox.SilenceRecheck), drift())
	if len(c.Outbox) != 0 || f.SilencedBy != "s-1" {
		t.Fatalf("at the recheck: %d intents, silencedBy %q; want still held", len(c.Outbox), f.SilencedBy)
	}
	// An early end: the next judgement announces.
	ended := sil
	ended.Until = t0.Add(15 * time.Minute)
	early := cfg
	early.Silences = func(time.Time) []fleet.Silence { return []fleet.Silence{ended} }
	early2 := fleet.NewCluster(aks)
	step(early2, early, t0, drift())
	step(early2, early, t0.Add(outbox.SilenceRecheck), drift())
	step(early2, early, t0.Add(2*outbox.SilenceRecheck), drift())
	if countSteps(early2, fleet.StepOpened) != 1 {
		t.Errorf("a silence ended early: %d openings at the second recheck, want 1", countSteps(early2, fleet.StepOpened))
	}
	step(c, cfg, until, drift())
	step(c, cfg, until.Add(time.Minute), drift())
	if countSteps(c, fleet.StepOpened) != 1 || f.SilencedBy != "" {
		t.Errorf("after the silence: %d openings, silencedBy %q; want 1 and none", countSteps(c, fleet.StepOpened), f.SilencedBy)
	}
}

// The upgradewatch.silence tag silences the whole cluster until its date.
func TestSilenceTag(t *testing.T) {
	c := fleet.NewCluster(aks)
	c.Tags = map[string]string{"UpgradeWatch.Silence": t0.Add(time.Hour).Format(time.RFC3339)}
	step(c, twoSinks, t0, drift())
	f := c.Findings[fleet.FindingKey(fleet.CodeChannelDrift, "cluster")]
	if len(c.Outbox) != 0 || f.SilencedBy != "tag "+fleet.SilenceTag {
		t.Fatalf("tagged: %d intents, silencedBy %q", len(c.Outbox), f.SilencedBy)
	}
	step(c, twoSinks, t0.Add(time.Hour), drift())
	if countSteps(c, fleet.StepOpened) != 1 {
		t.Errorf("after the tag's date: %d openings, want 1", countSteps(c, fleet.StepOpened))
	}
}

// An inhibited finding sends nothing, not even after its grace.
func TestInhibitedSendsNothing(t *testing.T) {
	c := fleet.NewCluster(aks)
	tr := fleet.Reconcile(c, []fleet.Observation{stalled(fleet.SeverityError)}, t0)
	c.Findings[fleet.FindingKey(fleet.CodeUpgradeStalled, "pool/spark")].InhibitedBy = "cluster deletion reported"
	outbox.Record(c, tr, t0, twoSinks)
	outbox.Record(c, nil, t0.Add(48*time.Hour), twoSinks)
	if len(c.Outbox) != 0 {
		t.Fatalf("%d intents, want none: %+v", len(c.Outbox), steps(c))
	}
}

// A finding recorded before announcements were tracked was announced when it
// opened: it is not announced again, and its resolution is sent.
func TestFindingFromBeforeIsAnnouncedAlready(t *testing.T) {
	c := fleet.NewCluster(aks)
	c.Findings[fleet.FindingKey(fleet.CodeChannelDrift, "cluster")] = &fleet.Finding{Code: fleet.CodeChannelDrift, Target: "cluster",
		Severity: fleet.SeverityWarning, Status: fleet.FindingOpen, OpenedAt: t0.Add(-time.Hour), LastSeenAt: t0.Add(-time.Hour), Opened: 1,
		Summary: drift().Summary, Evidence: `{"actual":"Unmanaged","expected":"NodeImage","policy":"defaults"}`}
	step(c, graced, t0, drift())
	if len(c.Outbox) != 0 {
		t.Fatalf("re-announced: %+v", steps(c))
	}
	step(c, graced, t0.Add(time.Minute))
	if countSteps(c, fleet.StepResolved) != 1 {
		t.Errorf("resolution: %d, want 1", countSteps(c, fleet.StepResolved))
	}
}
