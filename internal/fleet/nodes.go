package fleet

import (
	"sort"
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
	Unschedulable    bool   `json:"unschedulable,omitempty"` // spec.unschedulable: cordoned (by a drain, kured, an operator)
	Ready            string `json:"ready,omitempty"`         // Ready condition status: True|False|Unknown ("" when absent)
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
	LabelAgentPool           = "kubernetes.azure.com/agentpool"
	LabelNodeImageVersion    = "kubernetes.azure.com/node-image-version"
	LabelUpgradeStatus       = "kubernetes.azure.com/upgrade-status"
	LabelOS                  = "kubernetes.io/os"
	UpgradeStatusQuarantined = "Quarantined"
)

// PoolNodes summarises the nodes of one pool in a snapshot: how many, how many
// Ready or quarantined, and how many run each node image version.
type PoolNodes struct {
	Nodes       int
	Ready       int
	Quarantined int
	Cordoned    int // unschedulable, quarantined or not
	Versions    map[string]int
	// QuarantinedNodes names the quarantined nodes (at most maxNamedNodes).
	QuarantinedNodes []string
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

// maxNamedNodes bounds the node names a pool summary carries.
const maxNamedNodes = 20

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
			if len(p.QuarantinedNodes) < maxNamedNodes {
				p.QuarantinedNodes = append(p.QuarantinedNodes, n.Name)
			}
		}
		if n.Unschedulable {
			p.Cordoned++
		}
		p.Versions[n.NodeImageVersion]++
		s.Pools[pool] = p
	}
	return s
}

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

// ImageSpan is what upgradewatch remembers of one image version of a pool from
// one source: the first and last time it was observed. Spans, not individual
// observations, because min and max merge in any order (so delivery order does
// not matter) and a pool has only a handful of versions a month.
type ImageSpan struct {
	Version string
	From    string // ImageFromARM or ImageFromNodes
	First   time.Time
	Last    time.Time
}

// Image observation sources.
const (
	ImageFromARM   = "arm"   // the pool's nodeImageVersion in an ARM payload
	ImageFromNodes = "nodes" // the version most of the pool's nodes run
)

// maxImageSpans bounds a pool's image memory: the spans last seen most recently win.
const maxImageSpans = 24

func (p *Pool) observeImage(version, from string, at time.Time) {
	if version == "" || at.IsZero() {
		return
	}
	for i := range p.Images {
		s := &p.Images[i]
		if s.Version == version && s.From == from {
			if at.Before(s.First) {
				s.First = at
			}
			if at.After(s.Last) {
				s.Last = at
			}
			p.sortImages()
			return
		}
	}
	p.Images = append(p.Images, ImageSpan{Version: version, From: from, First: at, Last: at})
	p.sortImages()
	if len(p.Images) > maxImageSpans {
		p.Images = p.Images[:maxImageSpans]
	}
}

// sortImages orders spans by last sighting, newest first, so the stored
// slice is the same whatever the order of observation.
func (p *Pool) sortImages() {
	sort.Slice(p.Images, func(i, j int) bool {
		a, b := p.Images[i], p.Images[j]
		if !a.Last.Equal(b.Last) {
			return a.Last.After(b.Last)
		}
		if a.From != b.From {
			return a.From < b.From
		}
		return a.Version < b.Version
	})
}

// imageBefore is the version a source last saw at or before t: among versions
// first seen by t, the one seen latest (capped at t).
func (p *Pool) imageBefore(from string, t time.Time) (string, time.Time) {
	best, bestAt := "", time.Time{}
	for _, s := range p.Images {
		if s.From != from || s.First.After(t) {
			continue
		}
		seen := s.Last
		if seen.After(t) {
			seen = t
		}
		if best == "" || seen.After(bestAt) || (seen.Equal(bestAt) && s.First.After(p.spanFirst(from, best))) {
			best, bestAt = s.Version, seen
		}
	}
	return best, bestAt
}

// imageAfter is the version a source first saw at or after t: among versions
// still seen at t or later, the one seen earliest (floored at t); at a tie the
// one that appeared later, which is the newer image.
func (p *Pool) imageAfter(from string, t time.Time) (string, time.Time) {
	best, bestAt := "", time.Time{}
	for _, s := range p.Images {
		if s.From != from || s.Last.Before(t) {
			continue
		}
		seen := s.First
		if seen.Before(t) {
			seen = t
		}
		if best == "" || seen.Before(bestAt) || (seen.Equal(bestAt) && s.First.After(p.spanFirst(from, best))) {
			best, bestAt = s.Version, seen
		}
	}
	return best, bestAt
}

func (p *Pool) spanFirst(from, version string) time.Time {
	for _, s := range p.Images {
		if s.From == from && s.Version == version {
			return s.First
		}
	}
	return time.Time{}
}

// setImages sets an operation's before and after images. Node observations win
// over ARM's, because they are what the nodes actually run.
func (p *Pool) setImages(u *Upgrade) {
	u.ImageBefore, u.ImageAfter = "", ""
	start := u.StartedAt
	if start.IsZero() && len(u.Signals) > 0 {
		start = u.Signals[0].Time
	}
	for _, from := range []string{ImageFromNodes, ImageFromARM} {
		if u.ImageBefore == "" {
			u.ImageBefore, _ = p.imageBefore(from, start)
		}
		if u.ImageAfter == "" && u.Outcome != OutcomeInProgress && !u.EndedAt.IsZero() {
			u.ImageAfter, _ = p.imageAfter(from, u.EndedAt)
		}
	}
}

// NodeDiff is what a snapshot changes: the node rows to write and the version
// history entries to append.
type NodeDiff struct {
	Changed []Node
	History []NodeVersionChange
}

// DiffNodes applies a snapshot to the current nodes (by name) and returns only
// what changed. It is pure. A node row changes when anything the node reports
// changes or it goes or comes back; its image version changing also appends a
// history entry. Nodes missing from a complete snapshot are marked gone; only
// PruneGone, past a retention, lets their rows go.
func DiffNodes(current map[string]Node, snap NodeSnapshot) NodeDiff {
	var d NodeDiff
	t := snap.ObservedAt
	seen := make(map[string]bool, len(snap.Nodes))
	for _, obs := range snap.Nodes {
		seen[obs.Name] = true
		cur, ok := current[obs.Name]
		if !ok {
			d.Changed = append(d.Changed, Node{NodeObservation: obs, FirstSeenAt: t, VersionSince: t, ChangedAt: t, SnapshotID: snap.ID})
			continue
		}
		if cur.NodeObservation == obs && !cur.Gone {
			continue
		}
		next := cur
		next.NodeObservation, next.Gone = obs, false
		next.ChangedAt, next.SnapshotID = t, snap.ID
		if obs.NodeImageVersion != cur.NodeImageVersion {
			next.VersionSince = t
			d.History = append(d.History, NodeVersionChange{Node: obs.Name, Pool: obs.Pool,
				From: cur.NodeImageVersion, To: obs.NodeImageVersion, ObservedAt: t, SnapshotID: snap.ID})
		}
		d.Changed = append(d.Changed, next)
	}
	if snap.Complete {
		for name, cur := range current {
			if !seen[name] && !cur.Gone {
				cur.Gone, cur.ChangedAt, cur.SnapshotID = true, t, snap.ID
				d.Changed = append(d.Changed, cur)
			}
		}
	}
	sort.Slice(d.Changed, func(i, j int) bool { return d.Changed[i].Name < d.Changed[j].Name })
	return d
}

// Node retention: how long a gone node's row is kept, and how many rows one
// snapshot deletes at most.
const (
	// DefaultNodeRetention keeps a node that left for 30 days: long enough to
	// see it in the Status API after a scale-down or a reimage, short enough
	// that autoscaled clusters do not pile up rows every snapshot reads.
	DefaultNodeRetention = 30 * 24 * time.Hour
	// MaxPrunePerSnapshot bounds the deletions one snapshot carries (about
	// ten transactions), so a cluster with a long past pays for it over a few
	// snapshots instead of in one slow one.
	MaxPrunePerSnapshot = 1000
)

// PruneGone returns the names, in order, of at most limit nodes that have been
// gone for longer than retention at time at (a snapshot's time): their rows
// can be deleted. It is pure, so a redelivered, late or concurrent snapshot
// prunes the same rows; a node that came back is not gone and stays.
// Retention <= 0 prunes nothing.
func PruneGone(nodes map[string]Node, at time.Time, retention time.Duration, limit int) []string {
	if retention <= 0 || limit <= 0 {
		return nil
	}
	cutoff := at.Add(-retention)
	var out []string
	for name, n := range nodes {
		if n.Gone && !n.ChangedAt.After(cutoff) {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	if len(out) > limit {
		out = out[:limit]
	}
	return out
}

// Image is what a pool runs: the version most of its nodes run when a node
// snapshot is newer than ARM's view of the pool, else ARM's.
func (p *Pool) Image() string {
	if p.Nodes != nil && p.NodesAt.At.After(p.SpecAt.At) {
		if d := p.Nodes.Dominant(); d != "" {
			return d
		}
	}
	return p.Spec.NodeImageVersion
}
