package fleet

import "time"

// Remediation actions.
const (
	ActionSetNodeOSChannel  = "setNodeOSUpgradeChannel"
	ActionSetUpgradeChannel = "setUpgradeChannel"
	ActionUpgradeNodeImage  = "upgradeNodeImageVersion"
)

// Remediation statuses.
const (
	RemediationDryRun   = "DryRun"   // planned in dry-run mode; ARM never called
	RemediationApplying = "Applying" // claimed by a sweep (LeaseUntil) that is calling ARM
	RemediationApplied  = "Applied"  // ARM accepted the change
	RemediationRetrying = "Retrying" // ARM failed transiently; tried again from RetryAt
	RemediationFailed   = "Failed"   // ARM refused, or the retries ran out
	RemediationSkipped  = "Skipped"  // at apply time ARM showed the action unsafe or moot
)

// Remediation is one fix upgradewatch planned for one finding opening: at
// most one per (finding opening, action), so a finding that stays open is
// never fixed twice, and a dry run is announced once.
type Remediation struct {
	ID      string // deterministic: cluster, code, target, opening, action
	Action  string // an Action constant
	Code    string // the finding it answers
	Target  string
	Opened  int    // the finding's Opened count
	Pool    string // for ActionUpgradeNodeImage
	From    string // channel or image before
	To      string // channel or image wanted
	Mode    string // RemediateDryRun or RemediateApply
	Status  string
	Detail  string // for people: what exactly
	Error   string
	Attempt int

	PlannedAt  time.Time
	UpdatedAt  time.Time
	RetryAt    time.Time // RemediationRetrying
	LeaseOwner string    // RemediationApplying
	LeaseUntil time.Time
}

// Terminal reports whether nothing more will happen to the remediation.
func (r *Remediation) Terminal() bool {
	switch r.Status {
	case RemediationDryRun, RemediationApplied, RemediationFailed, RemediationSkipped:
		return true
	}
	return false
}
