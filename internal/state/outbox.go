package state

import (
	"strings"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
)

// RowKeys of the outbox and of remediations. Pending notification intents
// and the newest remediations are state (loaded with the cluster); once an
// intent is delivered everywhere, or a remediation is pruned, its row moves to
// the archive after the audit rows, where loading never reads it.
const (
	rkOutPrefix     = "out~"
	rkRemPrefix     = "rem~"
	rkOutArchive    = "zout~"
	rkRemArchive    = "zrem~"
	KindOutbox      = "Outbox"
	KindRemediation = "Remediation"
)

// archived maps the RowKey of a state row that leaves the state to the
// RowKey it is kept under, for the kinds that are kept ("" for the others).
func archived(rk string) string {
	switch {
	case strings.HasPrefix(rk, rkOutPrefix):
		return rkOutArchive + strings.TrimPrefix(rk, rkOutPrefix)
	case strings.HasPrefix(rk, rkRemPrefix):
		return rkRemArchive + strings.TrimPrefix(rk, rkRemPrefix)
	}
	return ""
}

func intentRow(i *fleet.Intent) row {
	r := row{
		"Kind":       KindOutbox,
		"Step":       i.Step,
		"Code":       i.Code,
		"Target":     i.Target,
		"Severity":   i.Severity,
		"Summary":    truncateUTF16(i.Summary, 1024),
		"Evidence":   clipJSONObject(i.Evidence, 16000),
		"Opened":     int32(i.Opened),
		"Deliveries": deliveriesText(i.Deliveries), // never clipped (invalid JSON would lose the deliveries); errors in it are
	}
	setTime(r, "At", i.At)
	setTime(r, "OpenedAt", i.OpenedAt)
	setTime(r, "ResolvedAt", i.ResolvedAt)
	if i.Reminder > 0 {
		r["Reminder"] = int32(i.Reminder)
	}
	if i.EscalatedFrom != "" {
		r["EscalatedFrom"] = i.EscalatedFrom
	}
	if m := i.Remediation; m != nil {
		r["RemediationId"], r["Action"], r["DryRun"] = m.ID, m.Action, m.DryRun
		r["Detail"], r["Error"] = truncateUTF16(m.Detail, 1024), truncateUTF16(m.Error, 1024)
	}
	if i.LeaseOwner != "" {
		r["LeaseOwner"] = i.LeaseOwner
		setTime(r, "LeaseUntil", i.LeaseUntil)
	}
	return r
}

func intentOf(id string, e entity) *fleet.Intent {
	i := &fleet.Intent{
		ID: id, Step: e.str("Step"), At: e.time("At"),
		Code: e.str("Code"), Target: e.str("Target"), Severity: e.str("Severity"),
		Summary: e.str("Summary"), Evidence: e.str("Evidence"),
		OpenedAt: e.time("OpenedAt"), ResolvedAt: e.time("ResolvedAt"),
		Opened: int(e.int("Opened")), Reminder: int(e.int("Reminder")), EscalatedFrom: e.str("EscalatedFrom"),
		LeaseOwner: e.str("LeaseOwner"), LeaseUntil: e.time("LeaseUntil"),
		Deliveries: readDeliveries(e.str("Deliveries")),
	}
	if e.str("Action") != "" {
		i.Remediation = &fleet.RemediationStepRef{ID: e.str("RemediationId"), Action: e.str("Action"), DryRun: e.bool("DryRun"),
			Detail: e.str("Detail"), Error: e.str("Error")}
	}
	return i
}

func remediationRow(m *fleet.Remediation) row {
	r := row{
		"Kind":    KindRemediation,
		"Action":  m.Action,
		"Code":    m.Code,
		"Target":  m.Target,
		"Opened":  int32(m.Opened),
		"Pool":    m.Pool,
		"From":    m.From,
		"To":      m.To,
		"Mode":    m.Mode,
		"Status":  m.Status,
		"Detail":  truncateUTF16(m.Detail, 1024),
		"Error":   truncateUTF16(m.Error, 1024),
		"Attempt": int32(m.Attempt),
	}
	setTime(r, "PlannedAt", m.PlannedAt)
	setTime(r, "UpdatedAt", m.UpdatedAt)
	setTime(r, "RetryAt", m.RetryAt)
	if m.LeaseOwner != "" {
		r["LeaseOwner"] = m.LeaseOwner
		setTime(r, "LeaseUntil", m.LeaseUntil)
	}
	return r
}

func remediationOf(id string, e entity) *fleet.Remediation {
	return &fleet.Remediation{
		ID: id, Action: e.str("Action"), Code: e.str("Code"), Target: e.str("Target"), Opened: int(e.int("Opened")),
		Pool: e.str("Pool"), From: e.str("From"), To: e.str("To"), Mode: e.str("Mode"), Status: e.str("Status"),
		Detail: e.str("Detail"), Error: e.str("Error"), Attempt: int(e.int("Attempt")),
		PlannedAt: e.time("PlannedAt"), UpdatedAt: e.time("UpdatedAt"), RetryAt: e.time("RetryAt"),
		LeaseOwner: e.str("LeaseOwner"), LeaseUntil: e.time("LeaseUntil"),
	}
}

// The table model of the outbox: an intent some sink still owes is a state
// row, out~<id>; one every sink is done with (fleet.Intent.Done) is no longer
// state but a record: the change that finished it deletes out~<id> and writes
// its final form to zout~<id>, which loading never reads.

// leaving returns the final rows of the intents c's outbox is done with, by
// the RowKey of the state row they leave (changeOf archives them from there).
// An intent done already in the state the change started from left then; its
// entry here finds no state row and writes nothing.
func leaving(c *fleet.Cluster) map[string]row {
	var out map[string]row
	for id, i := range c.Outbox {
		if !i.Done() {
			continue
		}
		if out == nil {
			out = map[string]row{}
		}
		out[rkOutPrefix+safeKey(id)] = intentRow(i)
	}
	return out
}

// settled returns a copy of c as committed and loaded back: without the
// intents its commit archived. The cache holds this, so that a cached state
// and a loaded one are the same.
func settled(c *fleet.Cluster) *fleet.Cluster {
	n := c.Clone()
	for id, i := range n.Outbox {
		if i.Done() {
			delete(n.Outbox, id)
		}
	}
	if len(n.Outbox) == 0 {
		n.Outbox = nil
	}
	return n
}
