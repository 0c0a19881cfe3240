package handlers_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	azfake "github.com/Azure/azure-sdk-for-go/sdk/azcore/fake"

	"github.com/upgradewatch/upgradewatch/handlers"
	"github.com/upgradewatch/upgradewatch/internal/arm"
	"github.com/upgradewatch/upgradewatch/internal/findings"
	"github.com/upgradewatch/upgradewatch/internal/fleet"
	"github.com/upgradewatch/upgradewatch/internal/notify"
	"github.com/upgradewatch/upgradewatch/internal/outbox"
	"github.com/upgradewatch/upgradewatch/internal/policy"
	"github.com/upgradewatch/upgradewatch/internal/remediate/armexec"
	"github.com/upgradewatch/upgradewatch/internal/state"
	"github.com/upgradewatch/upgradewatch/internal/watch"
)

// newPolicyEnv is newRemediationEnv with the real policy document and tags
// resolved as cmd/handler resolves them (problems become findings).
func newPolicyEnv(t *testing.T, doc string, tags map[string]string, ceiling string, at time.Time) *remediationEnv {
	t.Helper()
	set, err := policy.Load(doc)
	if err != nil {
		t.Fatal(err)
	}
	e := &remediationEnv{clk: &clock{t: at}, sink: &recorder{}}
	e.arm = newFleetARM(t, "", e.clk.now)
	for k, v := range tags {
		e.arm.cluster.Tags[k] = &v
	}
	policyFor := func(c *fleet.Cluster) fleet.Policy { p, _ := set.For(c); return p }
	resolve := func(c *fleet.Cluster) (fleet.Policy, []string) {
		p, problems := set.For(c)
		out := make([]string, len(problems))
		for i, pr := range problems {
			out[i] = pr.String()
		}
		return p, out
	}
	cfg := outbox.Config{Sinks: []string{e.sink.Name()}, RemindEvery: 24 * time.Hour}
	e.store = newStore(t, state.Options{Now: e.clk.now})
	e.srv = newServer(e.store, watch.Options{Rules: outbox.Evaluator(findings.Evaluator(resolve), cfg),
		NewDispatcher: dispatcher([]notify.Sink{e.sink}, outbox.Options{Now: e.clk.now, PublicURL: "https://upgradewatch-prod.azurewebsites.net"}),
		Enricher:      arm.NewReader(&azfake.TokenCredential{}, arm.Options{ClientOptions: e.arm.options(), Now: e.clk.now}),
		Remediation: &watch.Remediation{Policy: policyFor, Ceiling: ceiling, PerSweep: 5, Outbox: cfg, Owner: "test",
			Executor: armexec.NewExecutor(&azfake.TokenCredential{}, armexec.Options{ClientOptions: e.arm.options(), Now: e.clk.now})}},
		handlers.Options{Now: e.clk.now})
	t.Cleanup(func() { _ = e.srv.Shutdown(context.Background()) })
	if code, body := serve(t, e.srv, http.MethodPost, analyticsAPI+"/refresh", nil); code != http.StatusOK {
		t.Fatalf("refresh: %d %v", code, body)
	}
	e.idle(t)
	return e
}

// openFindings returns the cluster's open findings as "code: summary".
func (e *remediationEnv) openFindings(t *testing.T) []string {
	t.Helper()
	code, detail := serve(t, e.srv, http.MethodGet, analyticsAPI, nil)
	if code != http.StatusOK {
		t.Fatalf("status: %d", code)
	}
	var out []string
	list, _ := detail["findings"].([]any)
	for _, f := range list {
		m, _ := f.(map[string]any)
		out = append(out, m["code"].(string)+": "+m["summary"].(string))
	}
	return out
}

// TestTagsCannotRaiseRemediation reproduces issue 12 finding 1 through the
// Sweep: the document wants NodeImage and opts nobody in; the cluster (on
// Unmanaged) is tagged to go to None — a transition that reimages every node
// — with apply, outside the window, under the ceiling apply. Before, the tags
// alone planned and applied Unmanaged → None outside the window.
func TestTagsCannotRaiseRemediation(t *testing.T) {
	tags := map[string]string{"upgradewatch.nodeOSChannel": "None", "upgradewatch.remediate": "apply",
		"upgradewatch.remediateOutsideWindow": "true"}
	for doc, problem := range map[string]string{
		`{"defaults": {"nodeOSChannel": "NodeImage"}}`:                       `remediate "apply": a tag may only lower remediation`,
		`{"defaults": {"nodeOSChannel": "NodeImage", "remediate": "apply"}}`: `remediateOutsideWindow "true": a tag may only keep remediation inside`,
	} {
		t.Run(doc, func(t *testing.T) {
			e := newPolicyEnv(t, doc, tags, fleet.RemediateApply, outOfWindow)
			before := e.arm.reqs.Load()
			for range 3 {
				e.sweep(t)
				e.clk.set(e.clk.now().Add(time.Hour))
			}
			if n := e.arm.wrote("cluster.put") + e.arm.wrote("pool.upgrade"); n != 0 {
				t.Errorf("ARM written %d times on the tags' say", n)
			}
			for _, r := range e.remediations(t) {
				if r["action"] == fleet.ActionSetNodeOSChannel || r["mode"] == fleet.RemediateApply {
					t.Errorf("remediation recorded: %v", r)
				}
			}
			if strings.HasSuffix(doc, `"NodeImage"}}`) && e.arm.reqs.Load() != before {
				t.Errorf("%d ARM requests for a cluster the document does not opt in", e.arm.reqs.Load()-before)
			}
			// The tag's expectation still counts for findings; the first
			// ignored tag is the cluster's PolicyNotApplicable.
			open := strings.Join(e.openFindings(t), "\n")
			for _, want := range []string{"ChannelDrift: node OS channel is Unmanaged, policy wants None", "PolicyNotApplicable: ", problem} {
				if !strings.Contains(open, want) {
					t.Errorf("open findings do not mention %s:\n%s", want, open)
				}
			}
		})
	}
}

// TestTagsLowerRemediation: where the document allows apply, a tag asking
// for dry runs gets dry runs, and one opting out gets nothing.
func TestTagsLowerRemediation(t *testing.T) {
	const doc = `{"defaults": {"nodeOSChannel": "NodeImage", "remediate": "apply"}}`
	t.Run("dry-run", func(t *testing.T) {
		e := newPolicyEnv(t, doc, map[string]string{"upgradewatch.remediate": "dry-run"}, fleet.RemediateApply, outOfWindow)
		if rem := e.sweep(t); rem["planned"] != float64(1) || rem["applied"] != float64(0) {
			t.Fatalf("sweep: %v, want one dry-run plan", rem)
		}
		if n := e.arm.wrote("cluster.put"); n != 0 {
			t.Errorf("cluster written %d times under a dry-run tag", n)
		}
		rs := e.remediations(t)
		if len(rs) != 1 || rs[0]["mode"] != fleet.RemediateDryRun || rs[0]["to"] != fleet.ChannelNodeImage {
			t.Errorf("remediations = %v, want one dry run to NodeImage", rs)
		}
	})
	t.Run("off", func(t *testing.T) {
		e := newPolicyEnv(t, doc, map[string]string{"upgradewatch.remediate": "off"}, fleet.RemediateApply, inWindow)
		before := e.arm.reqs.Load()
		if rem := e.sweep(t); rem["planned"] != float64(0) {
			t.Fatalf("sweep: %v, want nothing planned", rem)
		}
		if n := e.arm.reqs.Load() - before; n != 0 || len(e.remediations(t)) != 0 {
			t.Errorf("%d ARM requests, remediations %v; want none", n, e.remediations(t))
		}
	})
	t.Run("the document alone applies", func(t *testing.T) {
		e := newPolicyEnv(t, doc, nil, fleet.RemediateApply, outOfWindow)
		e.sweep(t)
		if n := e.arm.wrote("cluster.put"); n != 1 {
			t.Errorf("cluster written %d times, want once (Unmanaged → NodeImage, as the document says)", n)
		}
	})
}
