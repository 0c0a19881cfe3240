package fleet

import (
	"strings"
	"time"
)

// NodeObservation is what one node said about itself in an inventory snapshot:
// its labels, nodeInfo and Ready condition, as `kubectl get nodes -o json` shows.
type NodeObservation struct {
	Name             string `json:"name"`
	Pool             string `json:"pool"`                       // label kubernetes.azure.com/agentpool (lower case)
	NodeImageVersion string `json:"nodeImageVersion,omitempty"` // label kubernetes.azure.com/node-image-version
	KernelVersion    string `json:"kernelVersion,omitempty"`
	OSImage          string `json:"osImage,omitempty"`
	KubeletVersion   string `json:"kubeletVersion,omitempty"`
	ContainerRuntime string `json:"containerRuntime,omitempty"`
	OSType           string `json:"osType,omitempty"` // linux|windows (label kubernetes.io/os)
	Quarantined      bool   `json:"quarantined,omitempty"`
	Ready            string `json:"ready,omitempty"` // Ready condition status: True|False|Unknown ("" when absent)
}

// NodeSnapshot is one report of a cluster's nodes.
//
// A complete snapshot lists every node: a known node missing from it is gone.
// A partial one only updates the nodes it lists.
type NodeSnapshot struct {
	ID         string    // the reporter's snapshot id, else a hash of the content
	ObservedAt time.Time // when the nodes were listed
	Complete   bool
	Reporter   string // who sent it (node-reporter/<version>, kubectl, …), for the audit row
	Nodes      []NodeObservation
}

// Node is the stored state of one node.
type Node struct {
	NodeObservation
	FirstSeenAt  time.Time // first snapshot that listed it
	VersionSince time.Time // first snapshot that showed its current NodeImageVersion
	ChangedAt    time.Time // snapshot that last changed this row
	SnapshotID   string    // that snapshot
	Gone         bool      // absent from a complete snapshot newer than ChangedAt
}

// NodeVersionChange is one entry of a node's image history.
type NodeVersionChange struct {
	Node       string    `json:"node"`
	Pool       string    `json:"pool"`
	From       string    `json:"from"`
	To         string    `json:"to"`
	ObservedAt time.Time `json:"observedAt"`
	SnapshotID string    `json:"snapshotId"`
}

// NodeInventory is the per-cluster mark of the newest snapshot applied: the
// guard that keeps an older snapshot from overwriting a newer one.
type NodeInventory struct {
	SnapshotID string
	ObservedAt time.Time
	Complete   bool // the snapshot was fully applied
	Nodes      int  // nodes not gone after it
}

// Newer reports whether snapshot s is newer than the one the mark holds: by
// observation time, then by id, so any two snapshots have one winner.
func (m NodeInventory) Newer(s NodeSnapshot) bool {
	return Stamp{At: m.ObservedAt, SignalID: m.SnapshotID}.Before(Stamp{At: s.ObservedAt, SignalID: s.ID})
}

// Label keys AKS puts on nodes.
const (
	LabelAgentPool        = "kubernetes.azure.com/agentpool"
	LabelNodeImageVersion = "kubernetes.azure.com/node-image-version"
	LabelUpgradeStatus    = "kubernetes.azure.com/upgrade-status"
	LabelOS               = "kubernetes.io/os"
	UpgradeStatusQuarant  = "Quarantined"
)

// PoolNodes summarises the nodes of one pool in a snapshot: how many, how many
// Ready or quarantined, and how many run each node image version.
type PoolNodes struct {
	Nodes       int            `json:"nodes"`
	Ready       int            `json:"ready"`
	Quarantined int            `json:"quarantined"`
	Versions    map[string]int `json:"versions"`
}

// Dominant is the version most nodes run (ties: the lexically greatest), or "".
func (p PoolNodes) Dominant() string {
	best, n := "", 0
	for v, c := range p.Versions {
		if c > n || (c == n && v > best) {
			best, n = v, c
		}
	}
	return best
}

// InventorySummary is the fleet-state view of a node snapshot: per pool counts
// and version spread. It is the payload of a KindNodesObserved signal.
type InventorySummary struct {
	Complete bool
	Pools    map[string]PoolNodes // by lower-case pool name
}

// Summarise counts nodes per pool. Gone nodes are skipped.
func Summarise(nodes []Node, complete bool) InventorySummary {
	s := InventorySummary{Complete: complete, Pools: map[string]PoolNodes{}}
	for _, n := range nodes {
		if n.Gone {
			continue
		}
		pool := strings.ToLower(n.Pool)
		p := s.Pools[pool]
		if p.Versions == nil {
			p.Versions = map[string]int{}
		}
		p.Nodes++
		if n.Ready == "True" {
			p.Ready++
		}
		if n.Quarantined {
			p.Quarantined++
		}
		p.Versions[n.NodeImageVersion]++
		s.Pools[pool] = p
	}
	return s
}

// ImageSeen is one observation of a pool's node image version.
type ImageSeen struct {
	Version string    `json:"v"`
	At      time.Time `json:"at"`
	From    string    `json:"from"` // arm (pool spec) or nodes (dominant node version)
}

// Image observation sources.
const (
	ImageFromARM   = "arm"
	ImageFromNodes = "nodes"
)

// MaintenanceWindow is one AKS maintenance configuration
// (default, aksManagedAutoUpgradeSchedule, aksManagedNodeOSUpgradeSchedule).
type MaintenanceWindow struct {
	Name          string              `json:"name"`
	Schedule      MaintenanceSchedule `json:"schedule"`
	DurationHours int                 `json:"durationHours,omitempty"`
	UTCOffset     string              `json:"utcOffset,omitempty"` // ±HH:MM, "" = +00:00
	StartDate     string              `json:"startDate,omitempty"` // YYYY-MM-DD
	StartTime     string              `json:"startTime,omitempty"` // HH:MM in UTCOffset
	NotAllowed    []DateSpan          `json:"notAllowedDates,omitempty"`
	// Legacy form of the `default` configuration.
	TimeInWeek     []TimeInWeek `json:"timeInWeek,omitempty"`
	NotAllowedTime []TimeSpan   `json:"notAllowedTime,omitempty"`
}

// Maintenance configuration names AKS uses.
const (
	MaintenanceDefault = "default"
	MaintenanceAuto    = "aksManagedAutoUpgradeSchedule"
	MaintenanceNodeOS  = "aksManagedNodeOSUpgradeSchedule"
)

// MaintenanceSchedule is exactly one of the four schedule kinds.
type MaintenanceSchedule struct {
	Kind           string `json:"kind,omitempty"` // Daily|Weekly|AbsoluteMonthly|RelativeMonthly ("" for legacy)
	IntervalDays   int    `json:"intervalDays,omitempty"`
	IntervalWeeks  int    `json:"intervalWeeks,omitempty"`
	IntervalMonths int    `json:"intervalMonths,omitempty"`
	DayOfWeek      string `json:"dayOfWeek,omitempty"`  // Monday…Sunday
	DayOfMonth     int    `json:"dayOfMonth,omitempty"` // 1-31
	WeekIndex      string `json:"weekIndex,omitempty"`  // First|Second|Third|Fourth|Last
}

// Schedule kinds.
const (
	ScheduleDaily           = "Daily"
	ScheduleWeekly          = "Weekly"
	ScheduleAbsoluteMonthly = "AbsoluteMonthly"
	ScheduleRelativeMonthly = "RelativeMonthly"
)

// DateSpan is an inclusive range of dates (YYYY-MM-DD).
type DateSpan struct {
	Start string `json:"start"`
	End   string `json:"end"`
}

// TimeInWeek is a legacy `default` window: a day and its allowed hours (0-23).
type TimeInWeek struct {
	Day       string `json:"day"`
	HourSlots []int  `json:"hourSlots"`
}

// TimeSpan is a legacy not-allowed time range.
type TimeSpan struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// IsGPUSize reports whether an Azure VM size has GPUs: the N-series families
// (NC, ND, NG, NV and their variants, e.g. Standard_NC6s_v3, Standard_ND96asr_v4,
// Standard_NV36ads_A10_v5, Standard_NC24ads_A100_v4).
func IsGPUSize(vmSize string) bool {
	s := strings.ToUpper(strings.TrimSpace(vmSize))
	s = strings.TrimPrefix(s, "STANDARD_")
	s = strings.TrimPrefix(s, "BASIC_")
	if len(s) < 3 || s[0] != 'N' {
		return false
	}
	switch s[1] {
	case 'C', 'D', 'G', 'V':
	default:
		return false
	}
	// After the family letters comes the vCPU count (NC6, ND96, NV36, NCC40?).
	for i := 2; i < len(s); i++ {
		c := s[i]
		if c >= '0' && c <= '9' {
			return true
		}
		if c < 'A' || c > 'Z' {
			return false
		}
	}
	return false
}
