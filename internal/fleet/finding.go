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
}

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
// its row (OpenedAt restarts, Opened counts up).
func Reconcile(c *Cluster, obs []Observation, now time.Time) []Transition {
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
			if changed || now.Sub(f.LastSeenAt) >= lastSeenEvery {
				f.LastSeenAt = now
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
		f.Severity, f.Summary, f.Evidence = o.Severity, o.Summary, ev
		f.Status, f.OpenedAt, f.LastSeenAt, f.ResolvedAt = FindingOpen, now, now, time.Time{}
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
			f.Status, f.ResolvedAt = FindingResolved, now
			out = append(out, Transition{Finding: *f, Kind: TransitionResolved})
		}
	}
	return out
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
