package state

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
	"github.com/upgradewatch/upgradewatch/internal/watch"
)

// TableDigest is the digest claims table's base name (Options.TablePrefix is
// prepended, as for the others).
const TableDigest = "Digest"

// KindDigestClaim is the Kind column of a digest claim row.
const KindDigestClaim = "DigestClaim"

var _ watch.DigestStore = (*DigestTable)(nil)

// DigestOptions configure a DigestTable.
type DigestOptions struct {
	TablePrefix string
	Logger      *slog.Logger
}

// DigestTable keeps one claim row per local day and chat sink (PartitionKey
// the day YYYYMMDD, RowKey the sink's name; docs/tables.md): inserted if
// absent by the instance that sends that day's digest to that sink, and
// replaced only under its ETag, so two instances never both send it. The
// row records the outcome: sent, or the last failure and how many attempts.
type DigestTable struct {
	sideTable
}

// NewDigests returns the digest claims table on svc. Call EnsureTable before first use.
func NewDigests(svc *aztables.ServiceClient, o DigestOptions) *DigestTable {
	return &DigestTable{newSideTable(svc, o.TablePrefix+TableDigest, o.Logger)}
}

// ClaimDigest inserts the claim of day's digest to sink if absent
// (watch.ClaimMine). A claim that is settled answers watch.ClaimDone; one
// held by another owner whose lease runs watch.ClaimHeld; a lapsed one (its
// owner stopped, or its send failed and released it) is taken over under
// its ETag, so of two takers one wins.
func (t *DigestTable) ClaimDigest(ctx context.Context, day, sink, owner string, now time.Time, lease time.Duration) (watch.DayClaim, error) {
	claim := row{"Kind": KindDigestClaim, "Owner": owner, "Done": false, "Attempts": int32(1)}
	setTime(claim, "LeaseUntil", now.Add(lease))
	got, _, err := claimLease(ctx, t.client, day, sink, claim, now, func(prev entity, claim row) {
		claim["Attempts"] = int32(prev.int("Attempts") + 1)
		claim["LastError"] = prev.str("LastError")
	})
	return got, err
}

// SettleDigest records the outcome of owner's send of day's digest to sink:
// sent (done), rejected for good (done, the error kept: a resend would be
// refused alike), or failed for now (the error kept and the lease released,
// so that the next sweep tries again). A claim owner no longer holds is left
// as it is.
func (t *DigestTable) SettleDigest(ctx context.Context, day, sink, owner string, now time.Time, sendErr error) error {
	e, etag, err := t.read(ctx, day, sink)
	if err != nil {
		return err
	}
	if e.str("Owner") != owner || e.bool("Done") {
		return nil
	}
	r := row{"Kind": KindDigestClaim, "Owner": owner, "Attempts": int32(e.int("Attempts")), "Done": true}
	switch {
	case sendErr == nil:
		r["Outcome"] = "sent"
		setTime(r, "SentAt", now)
	case errors.Is(sendErr, fleet.ErrRejected):
		r["Outcome"], r["LastError"] = "rejected", truncateUTF16(sendErr.Error(), 1024)
	default:
		r["Done"], r["Outcome"], r["LastError"] = false, "failed", truncateUTF16(sendErr.Error(), 1024)
	}
	setTime(r, "LeaseUntil", now)
	body, err := r.marshalTyped(day, sink)
	if err != nil {
		return err
	}
	_, err = t.client.UpdateEntity(ctx, body, &aztables.UpdateEntityOptions{IfMatch: &etag, UpdateMode: aztables.UpdateModeReplace})
	if err != nil && !hasCode(err, aztables.UpdateConditionNotSatisfied) {
		return wrapStorage(err)
	}
	return nil
}

// DigestOutcome reads the claim of day's digest to sink, for tests and
// operators: its outcome ("" while being sent), attempts and last error.
func (t *DigestTable) DigestOutcome(ctx context.Context, day, sink string) (outcome string, attempts int, lastError string, err error) {
	e, _, err := t.read(ctx, day, sink)
	if err != nil {
		return "", 0, "", err
	}
	return e.str("Outcome"), int(e.int("Attempts")), e.str("LastError"), nil
}

func (t *DigestTable) read(ctx context.Context, day, sink string) (entity, azcore.ETag, error) {
	e, etag, err := readEntity(ctx, t.client, day, sink)
	if err != nil {
		return nil, "", fmt.Errorf("digest claim: %w", err)
	}
	return e, etag, nil
}

// ResolvedFindings lists the findings whose index entry ended (the finding
// resolved, or its cluster was deleted) at or after since: the tombstones
// of the open-finding index, which PruneIndex keeps findingTombstoneAge.
// Each carries the finding as it last stood open, with ResolvedAt the time
// its end was committed. Errors: fleet.ErrUnavailable.
func (s *Store) ResolvedFindings(ctx context.Context, since time.Time) ([]watch.FindingEntry, error) {
	if err := s.idx.sync(ctx); err != nil {
		return nil, err
	}
	filter := fmt.Sprintf("PartitionKey eq %s and Ended eq true and EndedAt ge datetime'%s'", odataString(IndexFindings),
		since.UTC().Format("2006-01-02T15:04:05.0000000Z"))
	ents, err := s.query(ctx, s.index, filter)
	if err != nil {
		return nil, fmt.Errorf("list resolved findings: %w", err)
	}
	out := make([]watch.FindingEntry, 0, len(ents))
	for _, e := range ents {
		id := fleet.ClusterID{SubscriptionID: e.str("SubscriptionId"), ResourceGroup: e.str("ResourceGroup"), Name: e.str("ClusterName")}
		f := findingOf(e)
		if f.ResolvedAt.IsZero() {
			f.ResolvedAt = e.time("EndedAt")
		}
		out = append(out, watch.FindingEntry{Cluster: id, Finding: *f, Resource: id.ResourceID()})
	}
	return out, nil
}
