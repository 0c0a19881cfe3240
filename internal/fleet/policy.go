package fleet

import "time"

// Policy is what an operator intends for one cluster: the channels it should
// be on, how old its images may get, how long an upgrade may take, and what its
// maintenance windows should look like. Zero values mean "no expectation" or
// "use the default" as each field says. internal/policy resolves it from
// configuration and cluster tags; the rules only read it.
type Policy struct {
	NodeOSChannel  string // None|Unmanaged|SecurityPatch|NodeImage; "" = no expectation
	UpgradeChannel string // none|patch|stable|rapid|node-image; "" = no expectation

	// MaxImageAge caps how old a pool's or node's image may be; 0 derives it
	// from the channel's cadence (weekly for Linux NodeImage/SecurityPatch,
	// monthly for Windows) plus ImageGrace.
	MaxImageAge time.Duration
	// ImageGrace is the slack past the cadence, and how long a pool may stay
	// behind the newest available image (AKS rolls out to all regions in up to
	// two weeks). Default 7 days.
	ImageGrace time.Duration

	// StallLimit caps the expected duration of one rolling operation (AKS only
	// schedules auto-upgrades it estimates at 24 h or less). Default 24 h.
	StallLimit time.Duration
	// StallMinimum is the least time an operation is allowed before it can be
	// called stalled, whatever the estimate. Default 1 h.
	StallMinimum time.Duration

	// MinWindowHours is the shortest maintenance window accepted (AKS
	// recommends 4). Default 4.
	MinWindowHours int
	// RequireNodeOSWindow expects an aksManagedNodeOSUpgradeSchedule.
	RequireNodeOSWindow bool

	// Remediate is the remediation mode: "" or "off", "dry-run", "apply".
	Remediate string
	// RemediateOutsideWindow lets remediation start node image upgrades
	// outside the pool's node OS maintenance window (and on clusters without
	// one); by default they wait for an occurrence of the window.
	RemediateOutsideWindow bool

	// TaggedNodeOSChannel and TaggedUpgradeChannel report that a cluster tag,
	// not the policy document, set the channel expectation. A tag's
	// expectation counts for findings; remediation never writes it to AKS:
	// tags may lower what the document allows, never raise it.
	TaggedNodeOSChannel, TaggedUpgradeChannel bool

	// Source says where the policy came from (rule names and tags), for evidence.
	Source string
}

// Policy defaults.
const (
	DefaultImageGrace     = 7 * 24 * time.Hour
	DefaultStallLimit     = 24 * time.Hour
	DefaultStallMinimum   = time.Hour
	DefaultMinWindowHours = 4
)

// WithDefaults fills the zero durations and counts.
func (p Policy) WithDefaults() Policy {
	if p.ImageGrace <= 0 {
		p.ImageGrace = DefaultImageGrace
	}
	if p.StallLimit <= 0 {
		p.StallLimit = DefaultStallLimit
	}
	if p.StallMinimum <= 0 {
		p.StallMinimum = DefaultStallMinimum
	}
	if p.MinWindowHours <= 0 {
		p.MinWindowHours = DefaultMinWindowHours
	}
	return p
}

// Node OS upgrade channels (autoUpgradeProfile.nodeOSUpgradeChannel).
const (
	ChannelNone          = "None"
	ChannelUnmanaged     = "Unmanaged"
	ChannelSecurityPatch = "SecurityPatch"
	ChannelNodeImage     = "NodeImage"
)

// Cluster upgrade channels (autoUpgradeProfile.upgradeChannel).
const (
	UpgradeNone      = "none"
	UpgradePatch     = "patch"
	UpgradeStable    = "stable"
	UpgradeRapid     = "rapid"
	UpgradeNodeImage = "node-image"
)

// Remediation modes.
const (
	RemediateOff    = "off"
	RemediateDryRun = "dry-run"
	RemediateApply  = "apply"
)
