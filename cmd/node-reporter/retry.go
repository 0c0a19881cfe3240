package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"
)

// Backoff is capped exponential backoff with jitter: attempt n waits a random
// time in [d/2, d], d = min(Base·2ⁿ, Max), so reporters started by one
// schedule across many clusters do not retry in step.
type Backoff struct {
	Base, Max time.Duration
}

// Delay is the wait before retry n (0 for the first retry). A server's
// Retry-After, when positive, replaces it.
func (b Backoff) Delay(n int, retryAfter time.Duration) time.Duration {
	if retryAfter > 0 {
		return retryAfter
	}
	d := b.Max
	if n < 30 && b.Base<<n < b.Max {
		d = b.Base << n
	}
	return d/2 + rand.N(d/2+1)
}

// transientError is a failure worth retrying; retryAfter is the server's hint.
type transientError struct {
	err        error
	retryAfter time.Duration
}

func (e *transientError) Error() string { return e.err.Error() }
func (e *transientError) Unwrap() error { return e.err }

func transient(err error, retryAfter time.Duration) error {
	return &transientError{err: err, retryAfter: retryAfter}
}

// retry runs attempt until it succeeds or fails with a non-transient error,
// or until the next wait would pass deadline (zero: no deadline) or ctx ends.
func retry(ctx context.Context, log *slog.Logger, b Backoff, deadline time.Time, what string, attempt func() error) error {
	for n := 0; ; n++ {
		err := attempt()
		var t *transientError
		if err == nil || !errors.As(err, &t) {
			return err
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%s: giving up after %d attempts (%v): %w", what, n+1, context.Cause(ctx), t.err)
		}
		wait := b.Delay(n, t.retryAfter)
		if !deadline.IsZero() && time.Now().Add(wait).After(deadline) {
			return fmt.Errorf("%s: giving up after %d attempts, the next in %s would pass the deadline: %w", what, n+1, wait, t.err)
		}
		log.Warn("retrying", "what", what, "attempt", n+1, "error", t.err, "retry_in", wait.String())
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return fmt.Errorf("%s: giving up after %d attempts (%v): %w", what, n+1, context.Cause(ctx), t.err)
		case <-timer.C:
		}
	}
}

// networkError classifies a failed request: transient, unless the server's
// certificate was refused, which no retry will change.
func networkError(err error) error {
	var cert *tls.CertificateVerificationError
	if errors.As(err, &cert) {
		return err
	}
	return transient(err, 0)
}

// retryable reports whether an HTTP status is worth retrying.
func retryable(status int) bool {
	return status == http.StatusTooManyRequests || status >= 500
}

// retryAfter reads a Retry-After header: seconds or an HTTP date. Zero when
// absent or unreadable.
func retryAfter(h http.Header, now time.Time) time.Duration {
	v := h.Get("Retry-After")
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil {
		if s < 0 {
			return 0
		}
		return time.Duration(min(s, 86400)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
