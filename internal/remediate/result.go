package remediate

import "github.com/upgradewatch/upgradewatch/internal/fleet"

// Errors an executor reports, always one of them: callers decide with
// errors.Is whether to retry (RemediationRetrying) or give up
// (RemediationFailed). They are the domain's sentinels under the names this
// package has always used; the executor keeps its own cause in the chain.
var (
	// ErrTransient (fleet.ErrUnavailable): try again later. Throttling, 5xx
	// or a network failure that outlived the pipeline's retries; 409, an
	// operation in progress; 412, the cluster changed between the read and
	// the write; a cluster or pool not Succeeded; a lease that expired before
	// ARM was called.
	ErrTransient = fleet.ErrUnavailable
	// ErrRefused (fleet.ErrRejected): it will not succeed as asked. 400,
	// 401/403, 404, any other 4xx, an invalid remediation, or one not in
	// apply mode (refused without calling ARM).
	ErrRefused = fleet.ErrRejected
)

// Result is what carrying out a remediation did (the executor's answer).
type Result struct {
	Status string // fleet.RemediationApplied or fleet.RemediationSkipped
	Detail string // for people: what was done, or why nothing was
}
