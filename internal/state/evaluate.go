package state

import (
	"context"
	"fmt"
	"time"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
)

// RepairIndex rewrites a cluster's index entries from its committed state.
func (s *Store) RepairIndex(ctx context.Context, id fleet.ClusterID) error {
	snap, err := s.load(ctx, id)
	if err != nil {
		return err
	}
	return s.reconcileIndex(ctx, snap.cluster)
}

// Due lists clusters whose next evaluation is at or before now, oldest first,
// at most limit. One range query on the index: its cost depends on how many
// are due, not on the size of the fleet.
func (s *Store) Due(ctx context.Context, now time.Time, limit int) ([]DueEntry, error) {
	// Every shard of every hour up to now's; the RowKey bound drops what is
	// due later in the current hour.
	filter := fmt.Sprintf("PartitionKey ge %s and PartitionKey lt %s and RowKey lt %s",
		odataString(IndexDue+"~"), odataString(IndexDue+"~"+now.UTC().Format("2006010215")+"~~"),
		odataString(now.UTC().Format(fleet.TimeKeyLayout)+"~~"))
	ents, err := s.queryLimit(ctx, s.index, filter, limit)
	if err != nil {
		return nil, fmt.Errorf("list due clusters: %w", err)
	}
	out := make([]DueEntry, 0, len(ents))
	for _, e := range ents {
		out = append(out, DueEntry{At: e.time("At"), Cluster: fleet.ClusterID{SubscriptionID: e.str("SubscriptionId"),
			ResourceGroup: e.str("ResourceGroup"), Name: e.str("ClusterName")}})
	}
	return out, nil
}

// OpenFindings lists the open findings of the whole fleet from the index: one
// partition query.
func (s *Store) OpenFindings(ctx context.Context) ([]FindingEntry, error) {
	ents, err := s.queryIndex(ctx, IndexFindings)
	if err != nil {
		return nil, fmt.Errorf("list findings: %w", err)
	}
	out := make([]FindingEntry, 0, len(ents))
	for _, e := range ents {
		id := fleet.ClusterID{SubscriptionID: e.str("SubscriptionId"), ResourceGroup: e.str("ResourceGroup"), Name: e.str("ClusterName")}
		f := findingOf(e)
		out = append(out, FindingEntry{Cluster: id, Finding: *f, Resource: id.ResourceID()})
	}
	return out, nil
}

// DropDue removes a due entry that no longer matches its cluster (an index
// write that failed after a commit left it behind).
func (s *Store) DropDue(ctx context.Context, e DueEntry) error {
	return s.idx.apply(ctx, []indexOp{{pk: duePartition(e.Cluster, e.At), rk: dueKey(e.Cluster, e.At)}})
}
