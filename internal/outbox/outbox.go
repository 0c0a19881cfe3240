// Package outbox makes every notification step happen exactly once per sink.
//
// A step — a finding opening, being reminded of, escalating or resolving, or a
// remediation being planned, applied or failing — becomes a fleet.Intent in
// the cluster's state, committed in the same guarded transaction as the change
// that caused it (Evaluator and AddRemediationStep), before anything is sent.
// The Dispatcher then leases intents with a guarded commit, sends them, and
// commits what each sink answered. The lease may also be taken inside a
// commit of the caller's (Dispatcher.Claim: the Sweep's evaluation, which
// records the steps), leaving only the settle to Dispatcher.Deliver:
//
//   - two dispatchers (a background dispatch and a sweep, or two instances)
//     never send the same intent to the same sink at once: each delivery (one
//     intent to one sink) is leased on its own, in a transaction fenced by the
//     partition's sequence row;
//   - each sink is dispatched on its own (Dispatcher.DispatchSink): a slow or
//     failing sink never delays another's sends or commits;
//   - a sink that fails is retried with exponential backoff, on its own: the
//     other sinks carry on, and its intents wait in order (each sink receives a
//     cluster's steps oldest first) until it recovers or they expire;
//   - a sink that fails again and again trips its circuit breaker: it is not
//     called for a cool-off, and what it owes waits with its retry time set to
//     when the breaker lets a probe through, so the Sweep finds it then;
//   - a sink that refuses an intent for good (a 4xx) gives it up, logged;
//   - the cluster's NextEvaluation includes the next retry and the next
//     reminder, so the Sweep picks up whatever a crashed instance or a down
//     sink still owes.
//
// The one duplicate this cannot exclude is a send the sink accepted whose
// answer was lost with the instance (or a lease that ran out mid-send): the
// step is sent again after the lease, with the same CloudEvent id.
package outbox

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
)

// Config says what the outbox records.
type Config struct {
	// Sinks are the names of the configured sinks (notify.Sink.Name). With
	// none, nothing is recorded.
	Sinks []string
	// RemindEvery is the interval between reminders of an open finding;
	// 0 sends none. DefaultRemindEvery unless configured.
	RemindEvery time.Duration
	// MinSeverity drops steps about findings less severe ("" = all).
	MinSeverity string
	// Expire is how long an intent is retried before it is given up
	// (DefaultExpire when zero).
	Expire time.Duration
	// Grace holds each opening back until the finding has been open that
	// long (announce.go); nil: none. cmd/handler sets DefaultGrace with the
	// policy document's overrides.
	Grace Grace
	// Silences, if set, gives the silences at now (cached by the caller;
	// the ended ones may be left out); the findings they match announce
	// nothing until they end.
	Silences func(now time.Time) []fleet.Silence

	// Routing and grouping (route.go, group.go): Route, if set, decides
	// which of Sinks each step reaches, once, when it is recorded; nil sends
	// every step to every sink. The deliveries of the Grouped sinks (the
	// chat sinks) wait GroupWait before their first attempt, so that the
	// steps of one window go out in one message.
	Route     func(c *fleet.Cluster, code, severity string) []string
	Grouped   []string
	GroupWait time.Duration
}

// Defaults.
const (
	DefaultRemindEvery = 24 * time.Hour
	DefaultExpire      = 7 * 24 * time.Hour
)

func (c Config) expire() time.Duration {
	if c.Expire > 0 {
		return c.Expire
	}
	return DefaultExpire
}

func (c Config) enabled() bool { return len(c.Sinks) > 0 }

// Evaluator wraps the finding rules (findings.Evaluator) so that every
// evaluation also records the steps it caused, and reminders, in the outbox,
// and tidies it: what every sink is done with leaves for the archive, and
// what waits for a retry or a reminder wakes the cluster then.
func Evaluator(rules func(c *fleet.Cluster, now time.Time) []fleet.Transition, cfg Config) func(c *fleet.Cluster, now time.Time) []fleet.Transition {
	return func(c *fleet.Cluster, now time.Time) []fleet.Transition {
		trans := rules(c, now)
		Record(c, trans, now, cfg)
		return trans
	}
}

// Record adds an intent for each step due at now: the opening of each open
// finding past its grace and neither silenced nor inhibited (announce.go),
// the escalation and the resolution of a finding whose opening was
// announced, and reminders. It gives up deliveries that expired or whose
// sink is gone, and brings c.NextEvaluation forward to the next grace end,
// silence end, retry or reminder. Intents every sink is done with stay in
// c.Outbox, done and unleased, for the commit to archive. It is pure.
func Record(c *fleet.Cluster, trans []fleet.Transition, now time.Time, cfg Config) {
	hold(c, now, cfg)
	if cfg.enabled() {
		for _, t := range trans {
			f := t.Finding
			// Only what was announced has anything more to say: a finding
			// that resolves inside its grace (or its silence) sends nothing.
			if !severe(f.Severity, cfg.MinSeverity) || f.AnnouncedAt.IsZero() {
				continue
			}
			switch t.Kind {
			case fleet.TransitionEscalated:
				if !f.Held() {
					add(c, findingIntent(c, &f, fleet.StepReminded, now, f.Reminded, t.From), cfg, now)
				}
			case fleet.TransitionResolved:
				// Dated now: the resolution's event time may lie weeks back
				// (a late cure), and an intent older than Expire is given up.
				i := findingIntent(c, &f, fleet.StepResolved, later(f.ResolvedAt, now), 0, "")
				i.ResolvedAt = f.ResolvedAt
				add(c, i, cfg, now)
			}
		}
	}
	announce(c, now, cfg)
	if cfg.enabled() && cfg.RemindEvery > 0 {
		remind(c, now, cfg)
	}
	tidy(c, now, cfg)
}

func severe(sev, min string) bool {
	return min == "" || fleet.SeverityRank(sev) >= fleet.SeverityRank(min)
}

// remind adds the reminder due for each announced open finding, if any:
// one, the latest, however many intervals passed unseen. Reminders count
// from the announcement (a finding opened weeks back by its events and
// announced today is not overdue), and a silence or an inhibition holds
// them back like the opening.
func remind(c *fleet.Cluster, now time.Time, cfg Config) {
	for _, f := range c.OpenFindings() {
		base := f.AnnouncedAt
		if !severe(f.Severity, cfg.MinSeverity) || base.IsZero() || f.Held() {
			continue
		}
		k := int(now.Sub(base) / cfg.RemindEvery)
		if k > f.Reminded {
			f.Reminded = k
			at := base.Add(time.Duration(k) * cfg.RemindEvery)
			add(c, findingIntent(c, f, fleet.StepReminded, at, k, ""), cfg, now)
		}
		wake(c, base.Add(time.Duration(f.Reminded+1)*cfg.RemindEvery))
	}
}

func findingIntent(c *fleet.Cluster, f *fleet.Finding, step string, at time.Time, reminder int, from string) *fleet.Intent {
	i := &fleet.Intent{
		Step: step, At: at.UTC(), Code: f.Code, Target: f.Target, Severity: f.Severity,
		Summary: f.Summary, Evidence: f.Evidence, OpenedAt: f.OpenedAt, Opened: f.Opened,
		Reminder: reminder, EscalatedFrom: from,
	}
	// An escalation is told apart by its time and new severity: a finding can
	// escalate more than once in one opening.
	extra := ""
	if from != "" {
		extra = at.UTC().Format(time.RFC3339Nano) + "~" + f.Severity
	}
	i.ID = intentID(c.ID, f.Key(), f.Opened, step, reminder, extra)
	return i
}

// intentID is deterministic for the step: a step recorded twice (it cannot
// be, short of a bug) would be one intent, and a resend is recognisably the
// same CloudEvent.
func intentID(id fleet.ClusterID, key string, opened int, step string, n int, extra string) string {
	h := sha256.Sum256([]byte(strings.Join([]string{id.Key(), key, fmt.Sprint(opened), step, fmt.Sprint(n), extra}, "|")))
	return hex.EncodeToString(h[:16])
}

func add(c *fleet.Cluster, i *fleet.Intent, cfg Config, now time.Time) {
	if c.Outbox == nil {
		c.Outbox = map[string]*fleet.Intent{}
	}
	if _, ok := c.Outbox[i.ID]; ok {
		return
	}
	i.Deliveries = deliveries(c, i, cfg, now) // the route's sinks (route.go)
	c.Outbox[i.ID] = i
}

// AddRemediationStep records the intent announcing one remediation step, if
// notifications are configured. The caller commits it with the remediation.
func AddRemediationStep(c *fleet.Cluster, r *fleet.Remediation, step string, now time.Time, cfg Config) {
	if !cfg.enabled() {
		return
	}
	i := &fleet.Intent{
		Step: step, At: now.UTC(), Code: r.Code, Target: r.Target, Opened: r.Opened,
		Remediation: &fleet.RemediationStepRef{ID: r.ID, Action: r.Action, DryRun: r.Mode == fleet.RemediateDryRun,
			Detail: r.Detail, Error: r.Error},
	}
	if f := c.Findings[fleet.FindingKey(r.Code, r.Target)]; f != nil {
		i.Severity, i.Summary, i.Evidence, i.OpenedAt = f.Severity, f.Summary, f.Evidence, f.OpenedAt
	}
	i.ID = intentID(c.ID, r.ID, r.Attempt, step, 0, "")
	add(c, i, cfg, now)
}

// tidy gives up what expired or lost its sink, releases finished intents
// (the commit archives them), and wakes the cluster for the next retry or
// lease expiry.
func tidy(c *fleet.Cluster, now time.Time, cfg Config) {
	sinks := make(map[string]bool, len(cfg.Sinks))
	for _, s := range cfg.Sinks {
		sinks[s] = true
	}
	for _, i := range c.OutboxOrder() {
		for name, d := range i.Deliveries {
			switch {
			case d.Done():
			case !sinks[name]:
				d.GaveUp, d.LastError = true, "sink no longer configured"
			case now.Sub(i.At) > cfg.expire():
				d.GaveUp = true
				d.LastError = fmt.Sprintf("expired after %s: %s", cfg.expire(), d.LastError)
			}
		}
		if i.Done() {
			i.LeaseOwner, i.LeaseUntil = "", time.Time{}
			for _, d := range i.Deliveries {
				d.LeaseOwner, d.LeaseUntil = "", time.Time{}
			}
			continue
		}
		for _, d := range i.Deliveries {
			if !d.Done() {
				wake(c, later(d.NextAttempt, later(d.LeaseUntil, i.LeaseUntil)))
			}
		}
	}
	if len(c.Outbox) == 0 {
		c.Outbox = nil
	}
}

func wake(c *fleet.Cluster, t time.Time) {
	if t.IsZero() {
		return
	}
	if c.NextEvaluation.IsZero() || t.Before(c.NextEvaluation) {
		c.NextEvaluation = t.UTC()
	}
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
