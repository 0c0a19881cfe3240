package state

import (
	"encoding/json"
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
		"Deliveries": jsonText(i.Deliveries), // never clipped (invalid JSON would lose the deliveries); errors in it are
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
		Deliveries: map[string]*fleet.Delivery{},
	}
	if e.str("Action") != "" {
		i.Remediation = &fleet.RemediationStepRef{ID: e.str("RemediationId"), Action: e.str("Action"), DryRun: e.bool("DryRun"),
			Detail: e.str("Detail"), Error: e.str("Error")}
	}
	// An unreadable column (truncated by hand, say) owes nothing: losing a
	// notification is better than failing the cluster's every commit.
	_ = json.Unmarshal([]byte(e.str("Deliveries")), &i.Deliveries)
	for _, d := range i.Deliveries {
		d.NextAttempt, d.SentAt = d.NextAttempt.UTC(), d.SentAt.UTC()
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

// leaving returns the final rows of the intents that leave c's outbox in this
// change, by the RowKey they leave.
func leaving(c *fleet.Cluster) map[string]row {
	if len(c.Delivered) == 0 {
		return nil
	}
	out := make(map[string]row, len(c.Delivered))
	for _, i := range c.Delivered {
		out[rkOutPrefix+safeKey(i.ID)] = intentRow(i)
	}
	return out
}
