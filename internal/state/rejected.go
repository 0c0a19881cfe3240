package state

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
)

// maxStoredBody bounds the excerpt of a rejected body kept in its row. It stays
// well under Table storage's 64 KiB string limit (and under the size at which
// Azurite corrupts multi-byte characters in single-entity writes).
const maxStoredBody = 16 * 1024

// RecordRejection keeps a rejected input in the Rejected table. It is
// idempotent: a redelivery of the same body overwrites the same row
// (PartitionKey = month received, RowKey = hash of function and body). It
// returns ErrUnavailable when storage is down, so the input is redelivered
// rather than lost.
func (s *Store) RecordRejection(ctx context.Context, r Rejection) error {
	if r.ReceivedAt.IsZero() {
		r.ReceivedAt = s.now()
	}
	h := sha256.New()
	h.Write([]byte(r.Function))
	h.Write([]byte{0})
	h.Write(r.Body)
	rk := hex.EncodeToString(h.Sum(nil)[:16])
	pk := r.ReceivedAt.UTC().Format("2006-01")
	body := truncateUTF16(string(r.Body), maxStoredBody)
	rw := row{
		"Kind":          KindRejection,
		"Disposition":   r.Disposition,
		"Reason":        truncateUTF16(r.Reason, 2048),
		"Function":      r.Function,
		"InvocationId":  r.InvocationID,
		"EventId":       truncateUTF16(r.EventID, 1024),
		"EventType":     truncateUTF16(r.EventType, 1024),
		"Source":        truncateUTF16(r.Source, 2048),
		"Subject":       truncateUTF16(r.Subject, 2048),
		"Body":          body,
		"BodyBytes":     int64(len(r.Body)),
		"BodyTruncated": len(body) < len(r.Body),
	}
	setTime(rw, "ReceivedAt", r.ReceivedAt)
	b, err := rw.marshal(pk, rk)
	if err != nil {
		return fmt.Errorf("encode rejection: %w", err)
	}
	if _, err := s.rejected.UpsertEntity(ctx, b, &aztables.UpsertEntityOptions{UpdateMode: aztables.UpdateModeReplace}); err != nil {
		return fmt.Errorf("record rejection: %w", wrapStorage(err))
	}
	return nil
}

// RejectionEntry is a stored rejection, as listed for operators and tests.
type RejectionEntry struct {
	Month, Key                             string
	Disposition, Reason, Function, EventID string
	EventType, Source, InvocationID, Body  string
	BodyBytes                              int64
	ReceivedAt                             time.Time
}

// Rejections lists the rejections received in a month (UTC), oldest key first.
func (s *Store) Rejections(ctx context.Context, month time.Time) ([]RejectionEntry, error) {
	ents, err := s.query(ctx, s.rejected, "PartitionKey eq "+odataString(month.UTC().Format("2006-01")))
	if err != nil {
		return nil, fmt.Errorf("list rejections: %w", err)
	}
	out := make([]RejectionEntry, 0, len(ents))
	for _, e := range ents {
		out = append(out, RejectionEntry{
			Month: e.str("PartitionKey"), Key: e.str("RowKey"), Disposition: e.str("Disposition"),
			Reason: e.str("Reason"), Function: e.str("Function"), EventID: e.str("EventId"),
			EventType: e.str("EventType"), Source: e.str("Source"), InvocationID: e.str("InvocationId"),
			Body: e.str("Body"), BodyBytes: e.int("BodyBytes"), ReceivedAt: e.time("ReceivedAt"),
		})
	}
	return out, nil
}
