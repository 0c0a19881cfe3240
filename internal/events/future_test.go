package events

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
)

// The decoders have no clock: a time far ahead is decoded as sent, and
// fleet.CheckTime, which the handler applies to every signal before it
// commits, is what refuses it. This pins both halves for each activity path.
func TestFutureTimesDecodeAsSentAndFailTheCheck(t *testing.T) {
	received := time.Date(2026, 11, 24, 9, 30, 0, 0, time.UTC)
	forged := time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC)
	future := func(fixture, from string) []byte {
		return bytes.ReplaceAll(readFixture(t, "activity/"+fixture), []byte(from), []byte("2099-01-01T00:00:00Z"))
	}
	decode := map[string]func() (fleet.Signal, error){
		"alert": func() (fleet.Signal, error) {
			return DecodeAlert(readFixture(t, "activity/alert-cluster-delete-2099.json"))
		},
		"event grid": func() (fleet.Signal, error) {
			return Decode(future("eg-cluster-delete-success.json", "2026-11-21T18:20:31.7788990Z"))
		},
		"export": func() (fleet.Signal, error) {
			recs, err := DecodeExport(future("export-auto-upgrade.json", "2026-05-03T02:03:11.5200000Z"))
			if err != nil || len(recs) == 0 {
				return fleet.Signal{}, errors.Join(err, errors.New("no records"))
			}
			return recs[0].Signal, recs[0].Err
		},
	}
	for name, fn := range decode {
		t.Run(name, func(t *testing.T) {
			sig, err := fn()
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if sig.Kind != fleet.KindActivity || !sig.Time.Equal(forged) {
				t.Fatalf("decoded %s at %v, want the activity at %v as sent", sig.Kind, sig.Time, forged)
			}
			if err := fleet.CheckTime("event time", sig.Time, received); !errors.Is(err, fleet.ErrFutureTime) {
				t.Errorf("CheckTime = %v, want ErrFutureTime", err)
			}
		})
	}
}
