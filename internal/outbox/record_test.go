package outbox_test

import (
	"testing"
	"time"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
	"github.com/upgradewatch/upgradewatch/internal/outbox"
)

var (
	aks = fleet.ClusterID{SubscriptionID: "6f1c2a3b-4d5e-4f60-8a71-92b3c4d5e6f7", ResourceGroup: "rg-payments-prod", Name: "aks-payments-weu"}
	// Tuesday 2026-11-24 09:00 UTC.
	t0 = time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
)

var twoSinks = outbox.Config{Sinks: []string{"webhook", "teams"}, RemindEvery: 24 * time.Hour}

func drift() fleet.Observation {
	return fleet.Observation{Code: fleet.CodeChannelDrift, Target: "cluster", Severity: fleet.SeverityWarning,
		Summary:  "node OS channel is Unmanaged; policy (defaults) expects NodeImage",
		Evidence: map[string]any{"actual": "Unmanaged", "expected": "NodeImage", "policy": "defaults"}}
}

func stalled(sev string) fleet.Observation {
	return fleet.Observation{Code: fleet.CodeUpgradeStalled, Target: "pool/spark", Severity: sev,
		Summary: "pool spark has been upgrading for 26h", Evidence: map[string]any{"pool": "spark", "hours": 26}}
}

// step reconciles obs at now and records the steps, as the store's evaluation
// does. Intents done in the step before left with its commit, as the store
// archives them.
func step(c *fleet.Cluster, cfg outbox.Config, now time.Time, obs ...fleet.Observation) []fleet.Transition {
	c.NextEvaluation = time.Time{}
	for id, i := range c.Outbox {
		if i.Done() {
			delete(c.Outbox, id)
		}
	}
	tr := fleet.Reconcile(c, obs, now)
	outbox.Record(c, tr, now, cfg)
	return tr
}

func steps(c *fleet.Cluster) map[string]*fleet.Intent {
	out := map[string]*fleet.Intent{}
	for _, i := range c.Outbox {
		out[i.Step+"#"+i.Code] = i
	}
	return out
}

func TestOpenAndResolveRecordOneIntentEachForEverySink(t *testing.T) {
	c := fleet.NewCluster(aks)
	step(c, twoSinks, t0, drift())
	if len(c.Outbox) != 1 {
		t.Fatalf("outbox after opening: %d intents, want 1", len(c.Outbox))
	}
	open := c.OutboxOrder()[0]
	if open.Step != fleet.StepOpened || open.Code != fleet.CodeChannelDrift || !open.At.Equal(t0) || open.Opened != 1 {
		t.Fatalf("opened intent = %+v", open)
	}
	if len(open.Deliveries) != 2 || open.Deliveries["webhook"] == nil || open.Deliveries["teams"] == nil {
		t.Fatalf("deliveries = %v, want webhook and teams", open.Deliveries)
	}
	if !c.NextEvaluation.Equal(t0) {
		t.Errorf("NextEvaluation = %v, want now (the intent is due at once)", c.NextEvaluation)
	}
	// The same evaluation again records nothing new.
	step(c, twoSinks, t0.Add(time.Minute), drift())
	if len(c.Outbox) != 1 {
		t.Fatalf("re-evaluation added intents: %d", len(c.Outbox))
	}
	step(c, twoSinks, t0.Add(2*time.Hour))
	res := steps(c)[fleet.StepResolved+"#"+fleet.CodeChannelDrift]
	if res == nil || !res.ResolvedAt.Equal(t0.Add(2*time.Hour)) || !res.OpenedAt.Equal(t0) {
		t.Fatalf("resolved intent = %+v", res)
	}
	if res.ID == open.ID {
		t.Fatal("opened and resolved share an id")
	}
}

func TestReopeningIsANewStep(t *testing.T) {
	c := fleet.NewCluster(aks)
	step(c, twoSinks, t0, drift())
	first := c.OutboxOrder()[0].ID
	step(c, twoSinks, t0.Add(time.Hour))
	step(c, twoSinks, t0.Add(2*time.Hour), drift())
	var opened []string
	for _, i := range c.OutboxOrder() {
		if i.Step == fleet.StepOpened {
			opened = append(opened, i.ID)
		}
	}
	if len(opened) != 2 || opened[0] != first || opened[1] == first {
		t.Fatalf("opened intents = %v, want the first and a new one", opened)
	}
}

func TestRemindersComeEveryIntervalAndOnlyTheLatestAfterAGap(t *testing.T) {
	c := fleet.NewCluster(aks)
	step(c, twoSinks, t0, drift())
	if want := t0; !c.NextEvaluation.Equal(want) {
		t.Fatalf("NextEvaluation = %v, want %v", c.NextEvaluation, want)
	}
	// Deliver the opening so that only reminders are left to see.
	deliverAll(c, t0)
	step(c, twoSinks, t0.Add(time.Hour), drift())
	if len(c.Outbox) != 0 {
		t.Fatalf("intents before the first reminder: %d", len(c.Outbox))
	}
	if want := t0.Add(24 * time.Hour); !c.NextEvaluation.Equal(want) {
		t.Errorf("NextEvaluation = %v, want the first reminder at %v", c.NextEvaluation, want)
	}
	step(c, twoSinks, t0.Add(24*time.Hour+time.Minute), drift())
	r1 := steps(c)[fleet.StepReminded+"#"+fleet.CodeChannelDrift]
	if r1 == nil || r1.Reminder != 1 || !r1.At.Equal(t0.Add(24*time.Hour)) {
		t.Fatalf("first reminder = %+v", r1)
	}
	deliverAll(c, t0.Add(25*time.Hour))
	// Nobody evaluated the cluster for three days: one reminder, the fourth.
	step(c, twoSinks, t0.Add(4*24*time.Hour+time.Hour), drift())
	var got []int
	for _, i := range c.Outbox {
		got = append(got, i.Reminder)
	}
	if len(got) != 1 || got[0] != 4 {
		t.Fatalf("reminders after a gap = %v, want [4]", got)
	}
	if f := c.Findings[fleet.FindingKey(fleet.CodeChannelDrift, "cluster")]; f.Reminded != 4 {
		t.Errorf("Reminded = %d, want 4", f.Reminded)
	}
	// Reopening starts the count again.
	step(c, twoSinks, t0.Add(5*24*time.Hour))
	step(c, twoSinks, t0.Add(6*24*time.Hour), drift())
	if f := c.Findings[fleet.FindingKey(fleet.CodeChannelDrift, "cluster")]; f.Reminded != 0 || f.Opened != 2 {
		t.Errorf("after reopening Reminded = %d, Opened = %d; want 0 and 2", f.Reminded, f.Opened)
	}
}

func TestNoRemindersWhenDisabled(t *testing.T) {
	cfg := twoSinks
	cfg.RemindEvery = 0
	c := fleet.NewCluster(aks)
	step(c, cfg, t0, drift())
	deliverAll(c, t0)
	step(c, cfg, t0.Add(50*time.Hour), drift())
	if len(c.Outbox) != 0 {
		t.Fatalf("reminders recorded with RemindEvery 0: %d", len(c.Outbox))
	}
	if !c.NextEvaluation.IsZero() {
		t.Errorf("NextEvaluation = %v, want none", c.NextEvaluation)
	}
}

func TestEscalationIsAReminderFromTheOldSeverity(t *testing.T) {
	c := fleet.NewCluster(aks)
	step(c, twoSinks, t0, stalled(fleet.SeverityWarning))
	deliverAll(c, t0)
	tr := step(c, twoSinks, t0.Add(2*time.Hour), stalled(fleet.SeverityError))
	if len(tr) != 1 || tr[0].Kind != fleet.TransitionEscalated || tr[0].From != fleet.SeverityWarning {
		t.Fatalf("transitions = %+v, want one escalation from Warning", tr)
	}
	esc := c.OutboxOrder()
	if len(esc) != 1 || esc[0].Step != fleet.StepReminded || esc[0].EscalatedFrom != fleet.SeverityWarning || esc[0].Severity != fleet.SeverityError {
		t.Fatalf("escalation intent = %+v", esc)
	}
	// Going back down is not an escalation; up again is another one.
	deliverAll(c, t0.Add(2*time.Hour))
	step(c, twoSinks, t0.Add(3*time.Hour), stalled(fleet.SeverityWarning))
	if len(c.Outbox) != 0 {
		t.Fatalf("a severity drop recorded %d intents", len(c.Outbox))
	}
	step(c, twoSinks, t0.Add(4*time.Hour), stalled(fleet.SeverityError))
	if len(c.Outbox) != 1 || c.OutboxOrder()[0].ID == esc[0].ID {
		t.Fatalf("second escalation: %d intents (id reused: %v)", len(c.Outbox), len(c.Outbox) == 1 && c.OutboxOrder()[0].ID == esc[0].ID)
	}
}

func TestMinSeverityAndNoSinks(t *testing.T) {
	cfg := twoSinks
	cfg.MinSeverity = fleet.SeverityError
	c := fleet.NewCluster(aks)
	step(c, cfg, t0, drift(), stalled(fleet.SeverityError))
	if len(c.Outbox) != 1 || c.OutboxOrder()[0].Code != fleet.CodeUpgradeStalled {
		t.Fatalf("with MinSeverity Error: %+v", c.OutboxOrder())
	}
	c = fleet.NewCluster(aks)
	step(c, outbox.Config{RemindEvery: time.Hour}, t0, drift())
	step(c, outbox.Config{RemindEvery: time.Hour}, t0.Add(5*time.Hour), drift())
	if len(c.Outbox) != 0 || c.Findings[fleet.FindingKey(fleet.CodeChannelDrift, "cluster")].Reminded != 0 {
		t.Fatalf("with no sinks: %d intents recorded", len(c.Outbox))
	}
}

func TestTidyExpiresGivesUpRemovedSinksAndArchivesWhatIsDone(t *testing.T) {
	c := fleet.NewCluster(aks)
	step(c, twoSinks, t0, drift())
	id := c.OutboxOrder()[0].ID
	c.Outbox[id].Deliveries["webhook"].SentAt = t0.Add(time.Second)
	c.Outbox[id].Deliveries["teams"].NextAttempt = t0.Add(30 * time.Minute)
	c.Outbox[id].Deliveries["teams"].LastError = "teams: status 503"

	step(c, twoSinks, t0.Add(time.Minute), drift())
	if len(c.Outbox) != 1 || !c.NextEvaluation.Equal(t0.Add(30*time.Minute)) {
		t.Fatalf("waiting for a retry: %d intents, NextEvaluation %v (want the retry time)", len(c.Outbox), c.NextEvaluation)
	}
	// A lease later than the retry holds the wake-up back to the lease.
	c.Outbox[id].LeaseOwner, c.Outbox[id].LeaseUntil = "other", t0.Add(40*time.Minute)
	step(c, twoSinks, t0.Add(2*time.Minute), drift())
	if !c.NextEvaluation.Equal(t0.Add(40 * time.Minute)) {
		t.Fatalf("NextEvaluation = %v, want the lease's end", c.NextEvaluation)
	}
	step(c, twoSinks, t0.Add(8*24*time.Hour), drift())
	archived := c.Outbox[id]
	if archived == nil || !archived.Done() || !archived.Deliveries["teams"].GaveUp || archived.LeaseOwner != "" {
		t.Fatalf("expired intent = %+v, want given up, unleased, done (for the commit to archive)", archived)
	}
	if got, want := c.Owed(), len(c.Outbox)-1; got != want {
		t.Errorf("Owed() = %d, want %d (every intent but the expired one)", got, want)
	}
	if got := archived.Deliveries["teams"].LastError; got != "expired after 168h0m0s: teams: status 503" {
		t.Errorf("LastError = %q", got)
	}
	if !archived.Deliveries["webhook"].SentAt.Equal(t0.Add(time.Second)) {
		t.Error("the sent delivery lost its time")
	}

	// A sink dropped from the configuration gives its deliveries up.
	c = fleet.NewCluster(aks)
	step(c, twoSinks, t0, drift())
	step(c, outbox.Config{Sinks: []string{"teams"}}, t0.Add(time.Minute), drift())
	i := c.OutboxOrder()[0]
	if d := i.Deliveries["webhook"]; !d.GaveUp || d.LastError != "sink no longer configured" {
		t.Fatalf("webhook delivery after removal = %+v", d)
	}
	if i.Deliveries["teams"].Done() {
		t.Fatal("the configured sink's delivery was given up")
	}
}

func deliverAll(c *fleet.Cluster, at time.Time) {
	for _, i := range c.Outbox {
		for _, d := range i.Deliveries {
			d.SentAt = at
		}
	}
}
