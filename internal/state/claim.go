package state

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
	"github.com/upgradewatch/upgradewatch/internal/watch"
)

// claimLease is the once-a-day claim the compliance snapshot and the daily
// digest share: claim (with Owner and LeaseUntil) is inserted at pk/rk if
// absent (watch.ClaimMine). A claim already there that is Done answers
// watch.ClaimDone; one another owner holds with its lease running,
// watch.ClaimHeld; a lapsed one is replaced under its ETag, carry first
// adding what the new claim keeps of the old one (nil: nothing), so that of
// two takers one wins. prev is the claim taken over (nil when inserted).
func claimLease(ctx context.Context, c *aztables.Client, pk, rk string, claim row, now time.Time,
	carry func(prev entity, claim row)) (got watch.DayClaim, prev entity, err error) {
	body, err := claim.marshalTyped(pk, rk)
	if err != nil {
		return "", nil, err
	}
	if _, err := c.AddEntity(ctx, body, nil); err == nil {
		return watch.ClaimMine, nil, nil
	} else if !hasCode(err, aztables.EntityAlreadyExists) {
		return "", nil, wrapStorage(err)
	}
	prev, etag, err := readEntity(ctx, c, pk, rk)
	if errors.Is(err, fleet.ErrNotFound) {
		// Pruned between the two requests: try again later.
		return "", nil, fmt.Errorf("%w: claim %s/%s vanished", ErrUnavailable, pk, rk)
	}
	if err != nil {
		return "", nil, err
	}
	switch {
	case prev.bool("Done"):
		return watch.ClaimDone, prev, nil
	case prev.str("Owner") != claim["Owner"] && now.Before(prev.time("LeaseUntil")):
		return watch.ClaimHeld, prev, nil
	}
	if carry != nil {
		carry(prev, claim)
		if body, err = claim.marshalTyped(pk, rk); err != nil {
			return "", nil, err
		}
	}
	_, err = c.UpdateEntity(ctx, body, &aztables.UpdateEntityOptions{IfMatch: &etag, UpdateMode: aztables.UpdateModeReplace})
	switch {
	case err == nil:
		return watch.ClaimMine, prev, nil
	case hasCode(err, aztables.UpdateConditionNotSatisfied):
		return watch.ClaimHeld, prev, nil
	}
	return "", nil, wrapStorage(err)
}

// readEntity reads one entity with its ETag; fleet.ErrNotFound when absent.
func readEntity(ctx context.Context, c *aztables.Client, pk, rk string) (entity, azcore.ETag, error) {
	got, err := c.GetEntity(ctx, pk, rk, nil)
	if hasCode(err, aztables.ResourceNotFound) {
		return nil, "", fmt.Errorf("%s/%s: %w", pk, rk, fleet.ErrNotFound)
	}
	if err != nil {
		return nil, "", wrapStorage(err)
	}
	e, err := decodeEntity(got.Value)
	if err != nil {
		return nil, "", fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return e, got.ETag, nil
}
