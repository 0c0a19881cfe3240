package watch

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
	"github.com/upgradewatch/upgradewatch/internal/outbox"
	"github.com/upgradewatch/upgradewatch/internal/remediate"
)

// How an ARM call ends decides the remediation's status once; the record
// and the report follow from it: the lease is released, a transient failure
// waits for a retry until the attempt cap, and applied and failed steps are
// announced (skips and retries are not).
func TestRemediationOutcome(t *testing.T) {
	now := time.Date(2026, 11, 23, 3, 0, 0, 0, time.UTC)
	transient := fmt.Errorf("%w: 429 from ARM", remediate.ErrTransient)
	cases := []struct {
		name     string
		res      remediate.Result
		err      error
		attempt  int
		status   string
		step     string // the step announced, "" for none
		retryAt  time.Time
		reported func(RemediationReport) int
	}{
		{"applied", remediate.Result{Status: fleet.RemediationApplied, Detail: "node image upgrade started"}, nil, 1,
			fleet.RemediationApplied, fleet.StepRemediationApplied, time.Time{}, func(r RemediationReport) int { return r.Applied }},
		{"not needed", remediate.Result{Status: fleet.RemediationSkipped, Detail: "already on the latest image"}, nil, 1,
			fleet.RemediationSkipped, "", time.Time{}, func(r RemediationReport) int { return r.Skipped }},
		{"transient, attempts left", remediate.Result{}, transient, 1,
			fleet.RemediationRetrying, "", now.Add(remediationRetry), func(r RemediationReport) int { return r.Retry }},
		{"transient, last attempt", remediate.Result{}, transient, remediationAttempts,
			fleet.RemediationFailed, fleet.StepRemediationFailed, time.Time{}, func(r RemediationReport) int { return r.Failed }},
		{"refused", remediate.Result{}, fmt.Errorf("%w: 403", remediate.ErrRefused), 1,
			fleet.RemediationFailed, fleet.StepRemediationFailed, time.Time{}, func(r RemediationReport) int { return r.Failed }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := outcomeOf(tc.res, tc.err, tc.attempt)
			if o.status != tc.status {
				t.Fatalf("status = %s, want %s", o.status, tc.status)
			}
			c := &fleet.Cluster{ID: fleet.ClusterID{SubscriptionID: "6f1c2a3b-4d5e-4f60-8a71-92b3c4d5e6f7", ResourceGroup: "rg", Name: "aks"},
				Remediations: map[string]*fleet.Remediation{"r1": {ID: "r1", Code: "ImageStale", Target: "system", Attempt: tc.attempt,
					Mode: fleet.RemediateApply, Status: fleet.RemediationApplying, LeaseOwner: "sweep-a", LeaseUntil: now.Add(time.Minute)}}}
			if !o.record(c, "r1", now, outbox.Config{Sinks: []string{"webhook"}}) {
				t.Fatal("record found no remediation")
			}
			r := c.Remediations["r1"]
			if r.Status != tc.status || r.LeaseOwner != "" || !r.LeaseUntil.IsZero() || !r.RetryAt.Equal(tc.retryAt) {
				t.Errorf("recorded %+v, want status %s, lease released, retry at %v", r, tc.status, tc.retryAt)
			}
			var steps []string
			for _, i := range c.Outbox {
				steps = append(steps, i.Step)
			}
			if (tc.step == "" && len(steps) != 0) || (tc.step != "" && (len(steps) != 1 || steps[0] != tc.step)) {
				t.Errorf("steps announced %v, want %q", steps, tc.step)
			}
			var rep RemediationReport
			o.report(discard, &rep)
			if tc.reported(rep) != 1 {
				t.Errorf("report %+v does not count the outcome", rep)
			}
			if o.record(&fleet.Cluster{}, "r1", now, outbox.Config{}) {
				t.Error("record of a remediation gone from the state reported a change")
			}
		})
	}
	if errors.Is(transient, remediate.ErrRefused) {
		t.Fatal("fixture errors overlap")
	}
}
