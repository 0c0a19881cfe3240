package fleet

import (
	"sort"
	"time"
)

// Intent is one notification step owed to the configured sinks: a finding
// opening, being reminded of, escalating or resolving, or a remediation being
// planned, applied or failing. It is the outbox: the intent is committed in
// the same transaction as the change that caused it, before anything is sent.
// Once every sink it owes has accepted it or given up it is done: the change
// that finished it commits it, as it ended, to the archive, and it is no
// longer part of the cluster's state.
//
// An intent carries a copy of what it announces, as it was at the step: the
// finding may have moved on by the time a sink that was down takes it.
type Intent struct {
	ID   string // deterministic for the step; the CloudEvent id
	Step string // a Step constant
	At   time.Time

	Code     string
	Target   string
	Severity string
	Summary  string
	Evidence string // JSON object
	OpenedAt time.Time
	// ResolvedAt is set for StepResolved.
	ResolvedAt time.Time
	Opened     int // the finding's opening this step belongs to (Finding.Opened)
	Reminder   int // the n-th reminder (StepReminded)
	// EscalatedFrom is the severity before an escalation (StepReminded sent
	// because the severity rose); "" for plain reminders.
	EscalatedFrom string

	// Remediation is set for the remediation steps.
	Remediation *RemediationStepRef

	// Deliveries is what each sink (by its Name) still owes or has done.
	Deliveries map[string]*Delivery

	// LeaseOwner held the whole intent while it was being sent, until
	// LeaseUntil, before deliveries were leased one sink at a time
	// (Delivery.LeaseOwner). Dispatchers still honour it on rows written then,
	// and never set it.
	LeaseOwner string
	LeaseUntil time.Time
}

// RemediationStepRef is what a remediation intent announces.
type RemediationStepRef struct {
	ID     string // the Remediation record
	Action string
	DryRun bool
	Detail string
	Error  string
}

// Notification steps.
const (
	StepOpened             = "finding.opened"
	StepReminded           = "finding.reminded"
	StepResolved           = "finding.resolved"
	StepRemediationPlanned = "remediation.planned"
	StepRemediationApplied = "remediation.applied"
	StepRemediationFailed  = "remediation.failed"
)

// Delivery is one sink's account of one intent.
type Delivery struct {
	Attempts    int       `json:"attempts,omitempty"`
	NextAttempt time.Time `json:"next,omitzero"`
	SentAt      time.Time `json:"sent,omitzero"`
	// GaveUp is set when the sink refused the intent for good, or it
	// expired; LastError says which.
	GaveUp    bool   `json:"gaveUp,omitempty"`
	LastError string `json:"error,omitempty"`
	// LeaseOwner holds the delivery while a dispatch sends it, until
	// LeaseUntil: another dispatch of this sink leaves it alone until then.
	// Each sink's deliveries are leased on their own, so that a slow sink
	// never holds up another's.
	LeaseOwner string    `json:"lease,omitempty"`
	LeaseUntil time.Time `json:"leaseUntil,omitzero"`
}

// Leased reports whether a dispatch holds the delivery at now.
func (d *Delivery) Leased(now time.Time) bool { return d.LeaseOwner != "" && now.Before(d.LeaseUntil) }

// Done reports whether the delivery needs nothing more.
func (d *Delivery) Done() bool { return !d.SentAt.IsZero() || d.GaveUp }

// Done reports whether every delivery of the intent is done.
func (i *Intent) Done() bool {
	for _, d := range i.Deliveries {
		if !d.Done() {
			return false
		}
	}
	return true
}

// Clone copies the intent deeply.
func (i *Intent) Clone() *Intent {
	n := *i
	if i.Remediation != nil {
		r := *i.Remediation
		n.Remediation = &r
	}
	n.Deliveries = make(map[string]*Delivery, len(i.Deliveries))
	for k, d := range i.Deliveries {
		cd := *d
		n.Deliveries[k] = &cd
	}
	return &n
}

// Owed returns how many intents of the outbox some sink still owes (done
// ones wait only for their change to be committed).
func (c *Cluster) Owed() int {
	n := 0
	for _, i := range c.Outbox {
		if !i.Done() {
			n++
		}
	}
	return n
}

// OutboxOrder returns the intents oldest first (by At, then ID): the order in
// which each sink receives them.
func (c *Cluster) OutboxOrder() []*Intent {
	out := make([]*Intent, 0, len(c.Outbox))
	for _, i := range c.Outbox {
		out = append(out, i)
	}
	sort.Slice(out, func(a, b int) bool {
		if !out[a].At.Equal(out[b].At) {
			return out[a].At.Before(out[b].At)
		}
		return out[a].ID < out[b].ID
	})
	return out
}
