package watch

import (
	"errors"
	"time"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
)

// The types below are the vocabulary of the ports (Repository, Reader): the
// application declares them and the storage adapter (internal/state) returns
// them, so that neither the use cases nor the HTTP layer import the adapter.

// Result says what a Repository.Update did.
type Result string

// Update results.
const (
	// Committed: the change is in, under a new sequence number.
	Committed Result = "committed"
	// Duplicate: the mark's signal was committed before; nothing was written
	// (the index was repaired from the committed state).
	Duplicate Result = "duplicate"
	// Unchanged: fn left the state as it was and there was no mark; nothing
	// was written.
	Unchanged Result = "unchanged"
)

// Change reports a Repository.Update.
type Change struct {
	Result Result
	Seq    int64 // the partition's sequence number after the call
	// Cluster is the state after the call (as committed, or as found for a
	// Duplicate or Unchanged). It is the caller's own copy.
	Cluster *fleet.Cluster
}

// ErrNoChange, returned by an Update's fn (wrapped or not), declines the
// change: nothing is written (not even a mark) and Update answers Unchanged
// with the state as it was.
var ErrNoChange = errors.New("no change")

// Dispositions of a Rejection.
const (
	DispositionRejected    = "Rejected"    // could not be decoded or committed; never will be
	DispositionUnsupported = "Unsupported" // well-formed, but nothing upgradewatch tracks, and no cluster to file it under
)

// Rejection is an input that was answered but not committed to a cluster,
// kept for operators (the Rejected table).
type Rejection struct {
	Disposition  string
	Reason       string
	Function     string
	InvocationID string
	EventID      string
	EventType    string
	Source       string
	Subject      string
	Body         []byte
	ReceivedAt   time.Time
}

// ClusterEntry is one cluster as the index lists it.
type ClusterEntry struct {
	Key                  string
	SubscriptionID       string
	ResourceGroup        string
	Name                 string
	ResourceID           string
	UpgradeChannel       string
	NodeOSUpgradeChannel string
	KubernetesVersion    string
	Location             string
	Support              string
	Deleted              bool
	Pools                int
	RollingPools         int
}

// FindingEntry is one open finding as the index lists it.
type FindingEntry struct {
	Cluster  fleet.ClusterID
	Finding  fleet.Finding
	Resource string // ARM ID of the cluster
}

// DueEntry is a cluster the Sweep must re-evaluate.
type DueEntry struct {
	Cluster fleet.ClusterID
	At      time.Time
}

// NodesStatus says what Repository.ApplyNodes did to the node rows.
type NodesStatus string

// ApplyNodes results.
const (
	NodesApplied   NodesStatus = "applied"
	NodesDuplicate NodesStatus = "duplicate" // this snapshot was already applied: nothing written
	NodesStale     NodesStatus = "stale"     // a newer snapshot is already applied: nothing written
)

// NodesOutcome reports what a node snapshot changed in the node rows.
type NodesOutcome struct {
	Result       NodesStatus
	Changed      int // node rows written
	History      int // history rows written
	Pruned       int // rows of nodes gone longer than the retention, deleted
	Transactions int
	Inventory    fleet.NodeInventory
	Nodes        []fleet.Node // the cluster's nodes after the call, gone ones included, by name
}
