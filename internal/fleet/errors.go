package fleet

import "errors"

// The error kinds the application decides on. Adapters (Table storage, ARM,
// the notification sinks, the remediation executor) translate their own
// failures into these, wrapped with context (fmt.Errorf("…: %w", ErrX));
// callers decide with errors.Is, and the HTTP layer maps them to status
// codes: ErrUnavailable to 5xx, so that the event is redelivered, ErrRejected
// to 2xx after recording the rejection.
var (
	// ErrUnavailable is transient: a dependency could not be reached, timed
	// out, throttled, answered 5xx, or contention did not settle. The same
	// call may succeed later: retry it, or have the event redelivered.
	ErrUnavailable = errors.New("unavailable")
	// ErrRejected is permanent: the input or the request can never succeed
	// as it is (the transition refused it, storage refused its rows, a sink
	// or ARM refused it for good). Retrying would not help.
	ErrRejected = errors.New("rejected")
	// ErrNotFound: what was asked for does not exist (no state for the
	// cluster).
	ErrNotFound = errors.New("not found")
	// ErrForbidden: a dependency refused the app's own identity (it lacks a
	// role assignment, or cannot see the subscription). Retrying will not
	// help until an operator grants access.
	ErrForbidden = errors.New("forbidden")
)
