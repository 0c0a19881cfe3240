package outbox

import (
	"sync"
	"time"
)

// breaker is one sink's circuit breaker, in this process: after threshold
// failed sends in a row it opens, and the sink is not called for coolOff;
// then one send is let through as a probe. The probe's success closes it;
// its failure opens it again for twice as long, up to RetryCap.
//
// It is a small state machine rather than a library's (sony/gobreaker) because
// the outbox needs what a library does not give: the time it half-opens, to
// persist as the retry time of what the sink owes (so the Sweep's Due index
// wakes the cluster then, on any instance), and the injected clock every test
// and the store share. Counting spans clusters: a sink that hangs for one
// cluster hangs for all.
type breaker struct {
	threshold int
	coolOff   time.Duration
	probeFor  time.Duration // how long a probe may take before another is let through

	mu         sync.Mutex
	failures   int       // in a row, while closed
	trips      int       // openings in a row, without a success
	openUntil  time.Time // zero while closed
	probeUntil time.Time // a probe is in flight until then
}

// state reports whether the breaker keeps the sink from being called at now,
// and until when. It changes nothing.
func (b *breaker) state(now time.Time) (open bool, until time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.openUntil.IsZero():
		return false, time.Time{}
	case now.Before(b.openUntil):
		return true, b.openUntil
	case now.Before(b.probeUntil):
		return true, b.probeUntil
	}
	return false, time.Time{}
}

// allow reports whether one send may go now. Half-open, it lets the first
// caller through as the probe and keeps the others out until the probe ends.
func (b *breaker) allow(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.openUntil.IsZero():
		return true
	case now.Before(b.openUntil), now.Before(b.probeUntil):
		return false
	}
	b.probeUntil = now.Add(b.probeFor)
	return true
}

// success records that the sink answered: it closes the breaker.
func (b *breaker) success() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.failures, b.trips, b.openUntil, b.probeUntil = 0, 0, time.Time{}, time.Time{}
}

// failure records a failed send (a transient error or a timeout). It reports
// whether the breaker is open now, and until when.
func (b *breaker) failure(now time.Time) (open bool, until time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if now.Before(b.openUntil) {
		return true, b.openUntil // a send started before it opened
	}
	halfOpen := !b.openUntil.IsZero()
	b.failures++
	if !halfOpen && b.failures < b.threshold {
		return false, time.Time{}
	}
	b.trips++
	wait := RetryCap
	if b.trips < 16 {
		wait = min(b.coolOff<<(b.trips-1), RetryCap)
	}
	b.failures, b.openUntil, b.probeUntil = 0, now.Add(wait), time.Time{}
	return true, b.openUntil
}
