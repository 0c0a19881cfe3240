package fleet

import (
	"errors"
	"fmt"
	"time"
)

// MaxClockSkew is how far after its receipt a signal's own time may lie.
// Senders' clocks differ a little; a time further ahead is wrong or forged,
// and since every fact keeps its newest observation, one such signal would
// outrank every genuine one that follows.
const MaxClockSkew = 5 * time.Minute

// ErrFutureTime reports a signal dated beyond MaxClockSkew after its receipt.
var ErrFutureTime = errors.New("time is in the future")

// CheckTime returns an error wrapping ErrFutureTime when t, the time a signal
// says it happened (what names the field), lies more than MaxClockSkew after
// now, the time of receipt. The error quotes the time as sent.
func CheckTime(what string, t, now time.Time) error {
	if !t.After(now.Add(MaxClockSkew)) {
		return nil
	}
	return fmt.Errorf("%w: %s %s is more than %s after the time of receipt %s (the sender's clock is wrong, or the signal is forged)",
		ErrFutureTime, what, t.UTC().Format(time.RFC3339Nano), MaxClockSkew, now.UTC().Format(time.RFC3339))
}
