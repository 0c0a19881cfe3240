package state

import "github.com/upgradewatch/upgradewatch/internal/watch"

// The Store is the application's Repository (and Reader): it returns the
// types the application declares for its ports. The names below keep the
// adapter's own code and its callers short; they are the same types.
var _ watch.Repository = (*Store)(nil)

type (
	// Result says what an Update did (watch.Result).
	Result = watch.Result
	// Change reports an Update (watch.Change).
	Change = watch.Change
	// Rejection is an input kept in the Rejected table (watch.Rejection).
	Rejection = watch.Rejection
	// ClusterEntry is one cluster as the index lists it (watch.ClusterEntry).
	ClusterEntry = watch.ClusterEntry
	// FindingEntry is one open finding as the index lists it (watch.FindingEntry).
	FindingEntry = watch.FindingEntry
	// DueEntry is a cluster the sweep must re-evaluate (watch.DueEntry).
	DueEntry = watch.DueEntry
	// NodesResult says what ApplyNodes did (watch.NodesStatus).
	NodesResult = watch.NodesStatus
	// NodesOutcome reports an ApplyNodes (watch.NodesOutcome).
	NodesOutcome = watch.NodesOutcome
)

// Update and ApplyNodes results, and the dispositions of a Rejected row.
const (
	Committed              = watch.Committed
	Duplicate              = watch.Duplicate
	Unchanged              = watch.Unchanged
	NodesApplied           = watch.NodesApplied
	NodesDuplicate         = watch.NodesDuplicate
	NodesStale             = watch.NodesStale
	DispositionRejected    = watch.DispositionRejected
	DispositionUnsupported = watch.DispositionUnsupported
)

// ErrNoChange, returned by an Update's fn, declines the change (watch.ErrNoChange).
var ErrNoChange = watch.ErrNoChange
