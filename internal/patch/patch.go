// Package patch answers "is each pool current, and if not, why": it keeps
// the fleet's newest-image catalogue (per image family and region, the
// newest versions seen available and when each was first seen), judges each
// pool's patch status from the cluster's state, the catalogue, the policy and
// the clock, computes time-to-patch for the operations that brought a pool to
// a newer image, and tallies compliance over pools and nodes.
//
// Everything here is pure (no clock, no I/O, no Azure); storing the
// catalogue and the figures is the application layer's and the store's job.
// docs/patch-status.md explains each status and reason.
package patch

import "time"

// Patch statuses: exactly one per pool.
const (
	StatusUpToDate       = "UpToDate"       // no newer image known for the pool's family
	StatusAwaitingWindow = "AwaitingWindow" // a newer image exists; the next node OS window (or AKS's cadence) will bring it
	StatusRolling        = "Rolling"        // an operation is rolling the pool now
	StatusBehind         = "Behind"         // a newer image has been available past the grace and nothing explains it
	StatusBlocked        = "Blocked"        // a named reason keeps the pool from moving (Blocked*)
	StatusFailed         = "Failed"         // the last upgrade failed and AKS said nothing about why
	StatusUnmanaged      = "Unmanaged"      // the OS patches itself in place; the image is not expected to move
	StatusNotPatched     = "NotPatched"     // nothing patches the pool (channel None, Unmanaged on Windows, unsupported channel)
	StatusUnknown        = "Unknown"        // what is needed to judge is missing (Evidence.Missing)
)

// Reasons a pool is Blocked.
const (
	BlockedClusterState          = "ClusterNotSucceeded"   // the cluster's provisioning state is not Succeeded
	BlockedKubernetesUnsupported = "KubernetesUnsupported" // the cluster's minor is out of support: node OS auto-upgrade stops
	BlockedChannelChangePending  = "ChannelChangePending"  // the node OS channel changed less than 24 h ago
	BlockedWindowTooShort        = "WindowTooShort"        // the node OS window is shorter than AKS needs
	BlockedNotAllowedDates       = "NotAllowedDates"       // only not-allowed dates ahead within the grace
	BlockedQuarantined           = "QuarantinedNodes"      // nodes AKS could not drain are quarantined
	BlockedUpgradeFailed         = "UpgradeFailed"         // the last upgrade failed; AKS's message says why
	BlockedPDB                   = "PodDisruptionBudget"   // a PodDisruptionBudget blocked the drain
)

// Compliance classes of a pool or a node, for the figures.
const (
	ComplianceCurrent      = "Current"      // on the newest known image of its family
	ComplianceWithinPolicy = "WithinPolicy" // behind, but the newer image is younger than the grace
	ComplianceBehind       = "Behind"       // behind past the grace
	ComplianceUnknown      = "Unknown"      // cannot be compared
)

// PoolStatus is the verdict on one pool. Its JSON is the "patch" object of
// a pool in the cluster Status API.
type PoolStatus struct {
	Pool    string `json:"pool"`
	Status  string `json:"status"`
	Blocked string `json:"blockedBy,omitempty"` // Blocked*, when Status is Blocked
	Reason  string `json:"reason"`
	Image   string `json:"image,omitempty"` // what the pool runs
	// LatestImage is the newest image the pool could run; LatestSince when it
	// was first seen available in the cluster's region; ReleasedAt its
	// release date from the version.
	LatestImage string    `json:"latestImage,omitempty"`
	LatestSince time.Time `json:"latestSince,omitzero"`
	ReleasedAt  time.Time `json:"releasedAt,omitzero"`
	// DaysBehind is now minus the release date of the oldest newer image
	// not applied; 0 when current or unknown.
	DaysBehind int      `json:"daysBehind"`
	Compliance string   `json:"compliance"` // Compliance*
	Evidence   Evidence `json:"evidence"`
}

// Evidence is what a verdict rests on. Empty fields were not known or not
// relevant.
type Evidence struct {
	Channel  string `json:"channel,omitempty"` // node OS upgrade channel
	OSType   string `json:"osType,omitempty"`
	Family   string `json:"family,omitempty"` // image family compared in
	Region   string `json:"region,omitempty"`
	ImageSrc string `json:"imageSource,omitempty"` // "nodes" or "arm": where the pool's image was read
	// LatestFrom says where LatestImage came from: the pool's ARM upgrade
	// profile, or the fleet catalogue (and its first sighting's source).
	LatestFrom  string    `json:"latestFrom,omitempty"`
	NewerImages []string  `json:"newerImages,omitempty"` // newer than the pool's, oldest first
	AvailableAt time.Time `json:"availableAt,omitzero"`  // when the oldest newer image became available
	GraceDays   int       `json:"graceDays,omitempty"`

	Window *WindowEvidence `json:"window,omitempty"` // the node OS maintenance window

	ProvisioningState string           `json:"provisioningState,omitempty"`
	KubernetesVersion string           `json:"kubernetesVersion,omitempty"`
	Support           string           `json:"support,omitempty"` // Ending|Ended, from the support notice
	ChannelChangedAt  time.Time        `json:"channelChangedAt,omitzero"`
	QuarantinedNodes  []string         `json:"quarantinedNodes,omitempty"`
	Upgrade           string           `json:"upgrade,omitempty"` // key of the operation the verdict is about
	Failure           *FailureEvidence `json:"failure,omitempty"`
	// Findings names the open findings on the pool the verdict relates to
	// (ImageStale, MissedMaintenanceWindow, UpgradeStalled, …).
	Findings []string `json:"findings,omitempty"`

	// SecurityPatch: AKS may patch nodes live, without a new image label.
	LivePatchPossible bool           `json:"livePatchPossible,omitempty"`
	Kernels           map[string]int `json:"kernels,omitempty"`  // node snapshot kernel versions → nodes
	OSImages          map[string]int `json:"osImages,omitempty"` // node snapshot OS images → nodes

	RebootManagerNeeded bool     `json:"rebootManagerNeeded,omitempty"` // Unmanaged Linux
	Missing             []string `json:"missing,omitempty"`             // Unknown: what is missing
}

// WindowEvidence is the node OS window as it bears on the verdict.
type WindowEvidence struct {
	Name          string    `json:"name"`
	DurationHours int       `json:"durationHours"`
	NextStart     time.Time `json:"nextStart,omitzero"` // next allowed occurrence (or the one open now)
	NextEnd       time.Time `json:"nextEnd,omitzero"`
	Open          bool      `json:"open,omitempty"`
	LastStart     time.Time `json:"lastStart,omitzero"`    // latest occurrence that ended
	SkippedStart  time.Time `json:"skippedStart,omitzero"` // first occurrence dropped by notAllowedDates
}

// FailureEvidence is the failure a verdict names.
type FailureEvidence struct {
	At            time.Time `json:"at"`
	Source        string    `json:"source"` // rolling|activity|scheduled
	Message       string    `json:"message,omitempty"`
	CorrelationID string    `json:"correlationId,omitempty"`
}
