package fleet

import (
	"encoding/json"
	"sort"
	"time"
)

// Finding codes. They are stable: dashboards, alert rules and Event Grid
// subscription filters match on them.
const (
	CodeChannelDrift              = "ChannelDrift"
	CodeUpgradeChannelDrift       = "UpgradeChannelDrift"
	CodeUnsupportedChannel        = "UnsupportedChannel"
	CodeChannelLocked             = "ChannelLocked"
	CodeNoSecurityUpdates         = "NoSecurityUpdates"
	CodeRebootsUnmanaged          = "RebootsUnmanaged"
	CodeMaintenanceWindowTooShort = "MaintenanceWindowTooShort"
	CodeMaintenanceWindowMissing  = "MaintenanceWindowMissing"
	CodeChannelChangeNotApplied   = "ChannelChangeNotApplied"
	CodeUpgradeStalled            = "UpgradeStalled"
	CodeUpgradeFailed             = "UpgradeFailed"
	CodeImageStale                = "ImageStale"
	CodeMissedMaintenanceWindow   = "MissedMaintenanceWindow"
	CodeVersionSkew               = "VersionSkew"
	CodeNodeQuarantined           = "NodeQuarantined"
	CodeClusterSupportEnding      = "ClusterSupportEnding"
	CodeClusterSupportEnded       = "ClusterSupportEnded"
	CodePolicyNotApplicable       = "PolicyNotApplicable"
)

// Codes lists every finding code, for validating configuration that names them.
var Codes = []string{
	CodeChannelDrift, CodeUpgradeChannelDrift, CodeUnsupportedChannel, CodeChannelLocked, CodeNoSecurityUpdates,
	CodeRebootsUnmanaged, CodeMaintenanceWindowTooShort, CodeMaintenanceWindowMissing, CodeChannelChangeNotApplied,
	CodeUpgradeStalled, CodeUpgradeFailed, CodeImageStale, CodeMissedMaintenanceWindow, CodeVersionSkew,
	CodeNodeQuarantined, CodeClusterSupportEnding, CodeClusterSupportEnded, CodePolicyNotApplicable,
}

// Severities, from least to most urgent.
const (
	SeverityInfo     = "Info"
	SeverityWarning  = "Warning"
	SeverityError    = "Error"
	SeverityCritical = "Critical"
)

// Finding statuses.
const (
	FindingOpen     = "Open"
	FindingResolved = "Resolved"
)

// Finding is one condition upgradewatch reports about a cluster, a pool, a
// node or a maintenance configuration. It opens when a rule first observes the
// condition and resolves when the rule no longer does; it is never deleted.
type Finding struct {
	Code       string
	Target     string // "cluster", "pool/<name>", "node/<name>", "maintenance/<name>", "scheduled/<id>", "ossku/<sku>"
	Severity   string
	Status     string
	Summary    string // one line, for people
	Evidence   string // JSON object: what the rule saw
	OpenedAt   time.Time
	LastSeenAt time.Time
	ResolvedAt time.Time // zero while open
	Opened     int       // how many times it opened (reopenings count)
	// Reminded is how many reminders this opening has had (internal/outbox);
	// it restarts at 0 when the finding opens again.
	Reminded int

	// What gets announced (internal/outbox). OpenedAt and ResolvedAt are
	// judged on event time; NoticedAt is the wall clock at which this
	// opening was first held, which is long after OpenedAt when the events
	// arrived late (a backlog, a replay, Event Grid retrying for hours).
	NoticedAt time.Time
	// GraceUntil is when the opening may be announced: NoticedAt plus its
	// code's grace. Zero until the outbox has stamped it.
	GraceUntil time.Time
	// AnnouncedAt is when the opening was announced (its intent recorded);
	// zero while it has not been. A resolved finding with a zero AnnouncedAt
	// was never announced, and its resolution was not either.
	AnnouncedAt time.Time
	// SilencedBy names the silence holding the announcement back ("" for
	// none): a silence id, or SilenceTag when the cluster's tag says so.
	SilencedBy string
	// InhibitedBy says what makes the finding meaningless for now (a
	// deletion reported, a pool rolling); "" for nothing. An inhibited
	// finding stays open but is not announced.
	InhibitedBy string
}

// Announcement states of an opening (Finding.Announcement).
const (
	AnnouncementSent    = "sent"
	AnnouncementPending = "pending"
	AnnouncementNever   = "never"
)

// Announcement says whether this opening was announced: sent, pending (open
// and not yet: within its grace, silenced or inhibited) or never (resolved
// without having been announced).
func (f *Finding) Announcement() string {
	switch {
	case !f.AnnouncedAt.IsZero():
		return AnnouncementSent
	case f.Status == FindingOpen:
		return AnnouncementPending
	}
	return AnnouncementNever
}

// Held reports whether a silence or an inhibition holds the finding's
// announcements back.
func (f *Finding) Held() bool { return f.SilencedBy != "" || f.InhibitedBy != "" }

// Key identifies a finding within its cluster.
func (f *Finding) Key() string { return FindingKey(f.Code, f.Target) }

// FindingKey is Code~Target.
func FindingKey(code, target string) string { return code + "~" + target }

// Observation is a rule's verdict that a condition holds now.
type Observation struct {
	Code     string
	Target   string
	Severity string
	Summary  string
	Evidence map[string]any
	// Since is when the condition began by the evidence's own times (a stall
	// from its deadline, a failure from its event); zero: from when it was
	// judged. Reconcile takes it as OpenedAt when it is no later than that.
	Since time.Time
}

// Transition is a finding opening, escalating or resolving, for notifications.
type Transition struct {
	Finding Finding
	Kind    string // TransitionOpened, TransitionEscalated, TransitionResolved
	// From is the severity before an escalation.
	From string
}

// Transition kinds.
const (
	TransitionOpened = "opened"
	// TransitionEscalated: an open finding's severity rose (a stall that
	// became a failure, support that ended). It stays the same finding.
	TransitionEscalated = "escalated"
	TransitionResolved  = "resolved"
)

// lastSeenEvery bounds how often an unchanged open finding's LastSeenAt is
// rewritten: every evaluation would rewrite every open finding's row.
const lastSeenEvery = time.Hour

// Reconcile folds the rules' observations into the cluster's findings: new
// conditions open, held ones refresh, vanished ones resolve. It is pure and
// returns the transitions. Resolved findings stay; one that opens again keeps
// its row (OpenedAt restarts, Opened counts up). It is ReconcileAt with the
// judging time and the wall clock the same.
func Reconcile(c *Cluster, obs []Observation, now time.Time) []Transition {
	return ReconcileAt(c, obs, now, now)
}

// ReconcileAt is Reconcile judging at event time at (OpenedAt, LastSeenAt,
// ResolvedAt) while stamping new openings NoticedAt wall, the moment they
// were first held (see findings.JudgeTime).
func ReconcileAt(c *Cluster, obs []Observation, at, wall time.Time) []Transition {
	if c.Findings == nil {
		c.Findings = map[string]*Finding{}
	}
	var out []Transition
	seen := make(map[string]bool, len(obs))
	for _, o := range obs {
		key := FindingKey(o.Code, o.Target)
		if seen[key] {
			continue
		}
		seen[key] = true
		ev := evidenceText(o.Evidence)
		f, ok := c.Findings[key]
		if ok && f.Status == FindingOpen {
			changed := f.Severity != o.Severity || f.Summary != o.Summary || f.Evidence != ev
			from := f.Severity
			f.Severity, f.Summary, f.Evidence = o.Severity, o.Summary, ev
			if changed || at.Sub(f.LastSeenAt) >= lastSeenEvery {
				f.LastSeenAt = later(f.LastSeenAt, at)
			}
			if SeverityRank(o.Severity) > SeverityRank(from) {
				out = append(out, Transition{Finding: *f, Kind: TransitionEscalated, From: from})
			}
			continue
		}
		if !ok {
			f = &Finding{Code: o.Code, Target: o.Target}
			c.Findings[key] = f
		}
		opened := at
		if !o.Since.IsZero() && o.Since.Before(at) && !o.Since.Before(f.ResolvedAt) {
			opened = o.Since.UTC()
		}
		f.Severity, f.Summary, f.Evidence = o.Severity, o.Summary, ev
		f.Status, f.OpenedAt, f.LastSeenAt, f.ResolvedAt = FindingOpen, opened, at, time.Time{}
		f.NoticedAt, f.GraceUntil, f.AnnouncedAt = wall, time.Time{}, time.Time{}
		f.Opened++
		f.Reminded = 0
		out = append(out, Transition{Finding: *f, Kind: TransitionOpened})
	}
	keys := make([]string, 0, len(c.Findings))
	for k := range c.Findings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		f := c.Findings[k]
		if f.Status == FindingOpen && !seen[k] {
			f.Status, f.ResolvedAt = FindingResolved, later(f.OpenedAt, at)
			f.SilencedBy, f.InhibitedBy = "", ""
			out = append(out, Transition{Finding: *f, Kind: TransitionResolved})
		}
	}
	return out
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// OpenFindings returns the open findings, most severe first, then by key.
func (c *Cluster) OpenFindings() []*Finding {
	var out []*Finding
	for _, f := range c.Findings {
		if f.Status == FindingOpen {
			out = append(out, f)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if a, b := SeverityRank(out[i].Severity), SeverityRank(out[j].Severity); a != b {
			return a > b
		}
		return out[i].Key() < out[j].Key()
	})
	return out
}

// SeverityRank orders severities: Info 1 … Critical 4; unknown 0.
func SeverityRank(s string) int {
	switch s {
	case SeverityInfo:
		return 1
	case SeverityWarning:
		return 2
	case SeverityError:
		return 3
	case SeverityCritical:
		return 4
	}
	return 0
}

func evidenceText(m map[string]any) string {
	if len(m) == 0 {
		return "{}"
	}
	b, err := json.Marshal(m) // map keys sorted: equal evidence, equal text
	if err != nil {
		return "{}"
	}
	return string(b)
}
