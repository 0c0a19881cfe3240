package handlers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	azarm "github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	azfake "github.com/Azure/azure-sdk-for-go/sdk/azcore/fake"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/containerservice/armcontainerservice/v9"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/containerservice/armcontainerservice/v9/fake"

	"github.com/upgradewatch/upgradewatch/handlers"
	"github.com/upgradewatch/upgradewatch/internal/arm"
	"github.com/upgradewatch/upgradewatch/internal/findings"
	"github.com/upgradewatch/upgradewatch/internal/fleet"
	"github.com/upgradewatch/upgradewatch/internal/host"
	"github.com/upgradewatch/upgradewatch/internal/notify"
	"github.com/upgradewatch/upgradewatch/internal/outbox"
	"github.com/upgradewatch/upgradewatch/internal/remediate/armexec"
	"github.com/upgradewatch/upgradewatch/internal/state"
	"github.com/upgradewatch/upgradewatch/internal/watch"
)

const (
	analyticsID  = "/subscriptions/6f1c2a3b-4d5e-4f60-8a71-92b3c4d5e6f7/resourceGroups/rg-analytics-prod/providers/Microsoft.ContainerService/managedClusters/aks-analytics-weu"
	analyticsAPI = "/api/clusters/6f1c2a3b-4d5e-4f60-8a71-92b3c4d5e6f7/rg-analytics-prod/aks-analytics-weu"
)

var (
	// Sunday 2026-11-29 02:00 UTC: inside the Sunday 01:00–05:00 node OS window.
	inWindow = time.Date(2026, 11, 29, 2, 0, 0, 0, time.UTC)
	// Tuesday 2026-11-24 09:00 UTC: outside it.
	outOfWindow = time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
)

// fleetARM is the fake ARM both the reader (enrichment) and the executor
// (remediation) talk to: the analytics cluster on Unmanaged with a spark pool
// two months behind, a Sunday node OS window, and every write counted.
type fleetARM struct {
	mu      sync.Mutex
	cluster armcontainerservice.ManagedCluster
	pool    armcontainerservice.AgentPool
	writes  map[string]int // "cluster.put", "pool.upgrade"
	ifMatch []string
	reqs    atomic.Int64
	now     func() time.Time
}

func newFleetARM(t *testing.T, remediateTag string, now func() time.Time) *fleetARM {
	t.Helper()
	f := &fleetARM{writes: map[string]int{}, now: now}
	for name, v := range map[string]any{"cluster-unmanaged.json": &f.cluster, "agentpool-spark.json": &f.pool} {
		b, err := os.ReadFile("../internal/remediate/armexec/testdata/" + name)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatal(err)
		}
	}
	delete(f.cluster.Tags, "upgradewatch.remediate")
	if remediateTag != "" {
		f.cluster.Tags["upgradewatch.remediate"] = &remediateTag
	}
	f.cluster.ETag = ptr(`"0a1b2c3d-0000-0d00-0000-674a1b2c0000"`)
	return f
}

func (f *fleetARM) server() *fake.ServerFactory {
	return &fake.ServerFactory{
		ManagedClustersServer: fake.ManagedClustersServer{
			Get: func(_ context.Context, _, _ string, _ *armcontainerservice.ManagedClustersClientGetOptions) (resp azfake.Responder[armcontainerservice.ManagedClustersClientGetResponse], errResp azfake.ErrorResponder) {
				f.mu.Lock()
				defer f.mu.Unlock()
				resp.SetResponse(http.StatusOK, armcontainerservice.ManagedClustersClientGetResponse{ManagedCluster: f.cluster}, nil)
				return
			},
			BeginCreateOrUpdate: func(_ context.Context, _, _ string, mc armcontainerservice.ManagedCluster, o *armcontainerservice.ManagedClustersClientBeginCreateOrUpdateOptions) (resp azfake.PollerResponder[armcontainerservice.ManagedClustersClientCreateOrUpdateResponse], errResp azfake.ErrorResponder) {
				f.mu.Lock()
				defer f.mu.Unlock()
				f.writes["cluster.put"]++
				if o != nil && o.IfMatch != nil {
					f.ifMatch = append(f.ifMatch, *o.IfMatch)
				}
				if o == nil || o.IfMatch == nil || *o.IfMatch != *f.cluster.ETag {
					errResp.SetResponseError(http.StatusPreconditionFailed, "PreconditionFailed")
					return
				}
				f.cluster.Properties.AutoUpgradeProfile = mc.Properties.AutoUpgradeProfile
				f.cluster.ETag = ptr(`"0a1b2c3d-0000-0d00-0000-674a1b2c0001"`)
				resp.AddNonTerminalResponse(http.StatusOK, nil)
				resp.SetTerminalResponse(http.StatusOK, armcontainerservice.ManagedClustersClientCreateOrUpdateResponse{ManagedCluster: f.cluster}, nil)
				return
			},
		},
		AgentPoolsServer: fake.AgentPoolsServer{
			Get: func(_ context.Context, _, _, _ string, _ *armcontainerservice.AgentPoolsClientGetOptions) (resp azfake.Responder[armcontainerservice.AgentPoolsClientGetResponse], errResp azfake.ErrorResponder) {
				f.mu.Lock()
				defer f.mu.Unlock()
				resp.SetResponse(http.StatusOK, armcontainerservice.AgentPoolsClientGetResponse{AgentPool: f.pool}, nil)
				return
			},
			GetUpgradeProfile: func(_ context.Context, _, _, pool string, _ *armcontainerservice.AgentPoolsClientGetUpgradeProfileOptions) (resp azfake.Responder[armcontainerservice.AgentPoolsClientGetUpgradeProfileResponse], errResp azfake.ErrorResponder) {
				resp.SetResponse(http.StatusOK, armcontainerservice.AgentPoolsClientGetUpgradeProfileResponse{
					AgentPoolUpgradeProfile: armcontainerservice.AgentPoolUpgradeProfile{Properties: &armcontainerservice.AgentPoolUpgradeProfileProperties{
						LatestNodeImageVersion: ptr("AKSUbuntu-2204gen2containerd-202611.17.0")}}}, nil)
				return
			},
			BeginUpgradeNodeImageVersion: func(_ context.Context, _, _, _ string, _ *armcontainerservice.AgentPoolsClientBeginUpgradeNodeImageVersionOptions) (resp azfake.PollerResponder[armcontainerservice.AgentPoolsClientUpgradeNodeImageVersionResponse], errResp azfake.ErrorResponder) {
				f.mu.Lock()
				defer f.mu.Unlock()
				f.writes["pool.upgrade"]++
				resp.AddNonTerminalResponse(http.StatusAccepted, nil)
				resp.SetTerminalResponse(http.StatusOK, armcontainerservice.AgentPoolsClientUpgradeNodeImageVersionResponse{}, nil)
				return
			},
		},
		MaintenanceConfigurationsServer: fake.MaintenanceConfigurationsServer{
			NewListByManagedClusterPager: func(_, _ string, _ *armcontainerservice.MaintenanceConfigurationsClientListByManagedClusterOptions) (resp azfake.PagerResponder[armcontainerservice.MaintenanceConfigurationsClientListByManagedClusterResponse]) {
				day := armcontainerservice.WeekDaySunday
				resp.AddPage(http.StatusOK, armcontainerservice.MaintenanceConfigurationsClientListByManagedClusterResponse{
					MaintenanceConfigurationListResult: armcontainerservice.MaintenanceConfigurationListResult{Value: []*armcontainerservice.MaintenanceConfiguration{{
						Name: ptr("aksManagedNodeOSUpgradeSchedule"),
						Properties: &armcontainerservice.MaintenanceConfigurationProperties{MaintenanceWindow: &armcontainerservice.MaintenanceWindow{
							Schedule:      &armcontainerservice.Schedule{Weekly: &armcontainerservice.WeeklySchedule{DayOfWeek: &day, IntervalWeeks: ptr(int32(1))}},
							DurationHours: ptr(int32(4)), StartTime: ptr("01:00"), UTCOffset: ptr("+00:00"),
						}},
					}}},
				}, nil)
				return
			},
		},
	}
}

func (f *fleetARM) options() *azarm.ClientOptions {
	return &azarm.ClientOptions{ClientOptions: azcore.ClientOptions{
		Transport: counted{next: fake.NewServerFactoryTransport(f.server()), n: &f.reqs},
		Retry:     policy.RetryOptions{MaxRetries: -1},
	}}
}

func (f *fleetARM) wrote(what string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.writes[what]
}

type counted struct {
	next policy.Transporter
	n    *atomic.Int64
}

func (c counted) Do(r *http.Request) (*http.Response, error) { c.n.Add(1); return c.next.Do(r) }

// recorder is a notification sink that keeps what it accepted.
type recorder struct {
	mu  sync.Mutex
	got []notify.Notification
}

func (r *recorder) Name() string { return "webhook" }
func (r *recorder) Send(_ context.Context, n notify.Notification) error {
	if _, err := n.CloudEvent(""); err != nil {
		return fmt.Errorf("%w: %v", notify.ErrPermanent, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, n)
	return nil
}

// steps returns "type code [action dryRun]" per notification, failing on an
// id received twice.
func (r *recorder) steps(t *testing.T) []string {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	seen := map[string]bool{}
	var out []string
	for _, n := range r.got {
		if seen[n.ID] {
			t.Errorf("notification %s (%s %s) received twice", n.ID, n.Type, n.Code)
		}
		seen[n.ID] = true
		s := strings.TrimPrefix(n.Type, "io.upgradewatch.") + " " + n.Code
		if m := n.Remediation; m != nil {
			s += fmt.Sprintf(" %s dryRun=%v", m.Action, m.DryRun)
		}
		out = append(out, s)
	}
	return out
}

func (r *recorder) count(t *testing.T, step string) int {
	n := 0
	for _, s := range r.steps(t) {
		if strings.HasPrefix(s, step) {
			n++
		}
	}
	return n
}

type remediationEnv struct {
	srv   *handlers.Server
	clk   *clock
	arm   *fleetARM
	sink  *recorder
	store *state.Store
}

// newRemediationEnv is the app as cmd/handler wires it: findings with the
// outbox, the dispatcher, ARM enrichment and remediation on the fake ARM.
// The policy expects NodeImage and opts nobody in; tags decide.
func newRemediationEnv(t *testing.T, tag, ceiling string, at time.Time) *remediationEnv {
	t.Helper()
	e := &remediationEnv{clk: &clock{t: at}, sink: &recorder{}}
	e.arm = newFleetARM(t, tag, e.clk.now)
	p := fleet.Policy{NodeOSChannel: fleet.ChannelNodeImage, Remediate: fleet.RemediateOff, Source: "defaults"}.WithDefaults()
	policyFor := func(c *fleet.Cluster) fleet.Policy {
		q := p
		if v, ok := c.Tags["upgradewatch.remediate"]; ok {
			q.Remediate = v
		}
		return q
	}
	cfg := outbox.Config{Sinks: []string{e.sink.Name()}, RemindEvery: 24 * time.Hour}
	e.store = newStore(t, state.Options{Now: e.clk.now})
	e.srv = newServer(e.store, watch.Options{Rules: outbox.Evaluator(findings.Evaluator(
		func(c *fleet.Cluster) (fleet.Policy, []string) { return policyFor(c), nil }), cfg),
		NewDispatcher: dispatcher([]notify.Sink{e.sink}, outbox.Options{Now: e.clk.now, PublicURL: "https://upgradewatch-prod.azurewebsites.net"}),
		Enricher:      arm.NewReader(&azfake.TokenCredential{}, arm.Options{ClientOptions: e.arm.options(), Now: e.clk.now}),
		Remediation: &watch.Remediation{Policy: policyFor, Ceiling: ceiling, PerSweep: 5, Outbox: cfg, Owner: "test",
			Executor: armexec.NewExecutor(&azfake.TokenCredential{}, armexec.Options{ClientOptions: e.arm.options(), Now: e.clk.now})}},
		handlers.Options{Now: e.clk.now})
	t.Cleanup(func() { _ = e.srv.Shutdown(context.Background()) })
	// The cluster as ARM shows it: ChannelDrift (Unmanaged, NodeImage expected)
	// and ImageStale on spark open.
	if code, body := serve(t, e.srv, http.MethodPost, analyticsAPI+"/refresh", nil); code != http.StatusOK {
		t.Fatalf("refresh: %d %v", code, body)
	}
	e.idle(t)
	return e
}

func (e *remediationEnv) idle(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := e.srv.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
}

// sweep runs the Sweep as the timer would and returns its remediation summary.
func (e *remediationEnv) sweep(t *testing.T) map[string]any {
	t.Helper()
	_, _, sum := (&env{srv: e.srv}).invoke(t, "Sweep", timerInvocation(t, e.clk.now()))
	e.idle(t)
	rem, _ := sum["remediations"].(map[string]any)
	return rem
}

func (e *remediationEnv) remediations(t *testing.T) []map[string]any {
	t.Helper()
	code, detail := serve(t, e.srv, http.MethodGet, analyticsAPI, nil)
	if code != 200 {
		t.Fatalf("status: %d", code)
	}
	var out []map[string]any
	list, _ := detail["remediations"].([]any)
	for _, r := range list {
		out = append(out, r.(map[string]any))
	}
	return out
}

func TestRemediationNeverActsWithoutOptIn(t *testing.T) {
	for _, tc := range []struct{ name, tag, ceiling string }{
		{"no tag", "", fleet.RemediateApply},
		{"tag off", "off", fleet.RemediateApply},
		{"apply tag under an off ceiling", "apply", fleet.RemediateOff},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newRemediationEnv(t, tc.tag, tc.ceiling, inWindow)
			if e.sink.count(t, "finding.opened ChannelDrift") != 1 || e.sink.count(t, "finding.opened ImageStale") == 0 {
				t.Fatalf("the findings to remediate did not open: %v", e.sink.steps(t))
			}
			before := e.arm.reqs.Load()
			for range 3 {
				if rem := e.sweep(t); rem["planned"] != float64(0) {
					t.Fatalf("sweep planned %v", rem)
				}
				e.clk.set(e.clk.now().Add(time.Hour))
			}
			if n := e.arm.reqs.Load() - before; n != 0 {
				t.Errorf("%d ARM requests without opt-in", n)
			}
			if r := e.remediations(t); len(r) != 0 || e.sink.count(t, "remediation") != 0 {
				t.Errorf("remediations recorded: %v; notifications %v", r, e.sink.steps(t))
			}
		})
	}
}

// A dry run plans, announces once, and never calls ARM.
func TestDryRunPlansAndAnnouncesButNeverCallsARM(t *testing.T) {
	e := newRemediationEnv(t, "dry-run", fleet.RemediateApply, inWindow)
	before := e.arm.reqs.Load()
	if rem := e.sweep(t); rem["planned"] != float64(1) || rem["applied"] != float64(0) {
		t.Fatalf("first sweep: %v, want one plan", rem)
	}
	// One at a time per cluster: the channel first, the image next sweep.
	if rem := e.sweep(t); rem["planned"] != float64(1) {
		t.Fatalf("second sweep: %v, want the image plan", rem)
	}
	for range 2 {
		if rem := e.sweep(t); rem["planned"] != float64(0) {
			t.Fatalf("later sweep planned again: %v", rem)
		}
	}
	if n := e.arm.reqs.Load() - before; n != 0 {
		t.Errorf("dry run made %d ARM requests", n)
	}
	rs := e.remediations(t)
	if len(rs) != 2 {
		t.Fatalf("remediations = %v, want 2", rs)
	}
	got := map[string]map[string]any{}
	for _, r := range rs {
		got[r["action"].(string)] = r
		if r["status"] != fleet.RemediationDryRun || r["mode"] != fleet.RemediateDryRun {
			t.Errorf("remediation %v, want a dry run", r)
		}
	}
	if ch := got[fleet.ActionSetNodeOSChannel]; ch == nil || ch["from"] != "Unmanaged" || ch["to"] != "NodeImage" {
		t.Errorf("channel plan = %v", ch)
	}
	if up := got[fleet.ActionUpgradeNodeImage]; up == nil || up["to"] != "AKSUbuntu-2204gen2containerd-202611.17.0" {
		t.Errorf("image plan = %v", up)
	}
	if n := e.sink.count(t, "remediation.planned"); n != 2 {
		t.Errorf("planned notifications = %d, want 2: %v", n, e.sink.steps(t))
	}
	for _, s := range e.sink.steps(t) {
		if strings.HasPrefix(s, "remediation") && !strings.HasSuffix(s, "dryRun=true") {
			t.Errorf("notification %q is not marked dry run", s)
		}
	}
}

// Apply: the channel is written back with If-Match, once, even with two
// sweeps at the same time; the pool upgrade waits for the window.
func TestApplyOutsideTheWindowFixesTheChannelOnlyOnce(t *testing.T) {
	e := newRemediationEnv(t, "apply", fleet.RemediateApply, outOfWindow)
	var wg sync.WaitGroup
	sums := make([]map[string]any, 2)
	for i := range sums {
		wg.Add(1)
		go func() { defer wg.Done(); sums[i] = e.sweep(t) }()
	}
	wg.Wait()
	if n := e.arm.wrote("cluster.put"); n != 1 {
		t.Fatalf("two concurrent sweeps wrote the cluster %d times (%v), want once", n, sums)
	}
	if len(e.arm.ifMatch) != 1 || e.arm.ifMatch[0] != `"0a1b2c3d-0000-0d00-0000-674a1b2c0000"` {
		t.Errorf("If-Match = %v, want the ETag the executor read", e.arm.ifMatch)
	}
	// ARM now reports NodeImage; the drift resolves on the next read.
	e.clk.set(e.clk.now().Add(40 * time.Minute))
	if code, _ := serve(t, e.srv, http.MethodPost, analyticsAPI+"/refresh", nil); code != 200 {
		t.Fatal("refresh")
	}
	for range 3 {
		e.sweep(t)
		e.clk.set(e.clk.now().Add(time.Hour))
	}
	if n := e.arm.wrote("pool.upgrade"); n != 0 {
		t.Errorf("the pool was upgraded %d times outside its window", n)
	}
	if n := e.arm.wrote("cluster.put"); n != 1 {
		t.Errorf("cluster written %d times in all, want once", n)
	}
	e.idle(t)
	for _, want := range []string{"remediation.planned ChannelDrift setNodeOSUpgradeChannel dryRun=false",
		"remediation.applied ChannelDrift setNodeOSUpgradeChannel dryRun=false", "finding.resolved ChannelDrift"} {
		if n := e.sink.count(t, want); n != 1 {
			t.Errorf("%q received %d times, want once: %v", want, n, e.sink.steps(t))
		}
	}
}

func TestApplyInsideTheWindowUpgradesTheStalePoolButNeverWhileRolling(t *testing.T) {
	e := newRemediationEnv(t, "apply", fleet.RemediateApply, inWindow)
	// The spark pool starts rolling (someone else's upgrade): nothing is done.
	rolling := []byte(fmt.Sprintf(`{"id":"7e6d5c4b-3a29-4180-9f7e-6d5c4b3a2918","topic":%q,"subject":"aks-analytics-weu",
	  "eventType":"Microsoft.ContainerService.NodePoolRollingStarted","eventTime":%q,"data":{"nodePoolName":"spark"},
	  "dataVersion":"1","metadataVersion":"1"}`, analyticsID, inWindow.Format(time.RFC3339)))
	body, err := host.NewEventGridRequest("event", "AksEvents", rolling, inWindow, "2c3d4e5f-6a7b-4c8d-9e0f-1a2b3c4d5e6f")
	if err != nil {
		t.Fatal(err)
	}
	if code, _, sum := invokeRaw(t, e.srv, body); code != 200 || sum["committed"] != float64(1) {
		t.Fatalf("rolling started: %d %v", code, sum)
	}
	e.idle(t) // the ARM read the roll asks for
	before := e.arm.reqs.Load()
	if rem := e.sweep(t); rem["planned"] != float64(0) {
		t.Fatalf("sweep while spark rolls planned %v", rem)
	}
	if n := e.arm.reqs.Load() - before; n != 0 {
		t.Errorf("%d ARM requests while a pool rolls", n)
	}
	// The roll fails and is over; the channel is fixed first, then, after
	// the settle time, the pool is upgraded once.
	failed := strings.Replace(strings.Replace(string(rolling), "RollingStarted", "RollingFailed", 1), "7e6d5c4b", "8f7e6d5c", 1)
	e.clk.set(e.clk.now().Add(20 * time.Minute))
	body, _ = host.NewEventGridRequest("event", "AksEvents", json.RawMessage(failed), e.clk.now(), "3d4e5f6a-7b8c-4d9e-8f01-2a3b4c5d6e7f")
	if code, _, _ := invokeRaw(t, e.srv, body); code != 200 {
		t.Fatal("rolling failed")
	}
	for range 4 {
		e.sweep(t)
		e.clk.set(e.clk.now().Add(35 * time.Minute))
	}
	if n := e.arm.wrote("pool.upgrade"); n != 1 {
		t.Fatalf("pool upgraded %d times, want once", n)
	}
	rs := e.remediations(t)
	applied := 0
	for _, r := range rs {
		if r["status"] == fleet.RemediationApplied {
			applied++
		}
	}
	if applied != 2 {
		t.Errorf("remediations = %v, want the channel and the image applied", rs)
	}
}

// Event Grid redelivers, two sweeps run at once: each step still reaches the
// sink once.
func TestNotificationsOncePerStepUnderRedeliveryAndConcurrentSweeps(t *testing.T) {
	e := newRemediationEnv(t, "", fleet.RemediateApply, outOfWindow)
	opened := e.sink.steps(t)
	if len(opened) < 2 {
		t.Fatalf("after the refresh: %v, want the findings opened", opened)
	}
	ev := []byte(fmt.Sprintf(`{"id":"5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d","topic":%q,"subject":"aks-analytics-weu",
	  "eventType":"Microsoft.ContainerService.NodePoolRollingFailed","eventTime":%q,"data":{"nodePoolName":"system"},
	  "dataVersion":"1","metadataVersion":"1"}`, analyticsID, outOfWindow.Format(time.RFC3339)))
	for i, want := range []string{"committed", "duplicates", "duplicates"} {
		body, err := host.NewEventGridRequest("event", "AksEvents", ev, outOfWindow, fmt.Sprintf("4b5c6d7e-8f90-4a1b-9c2d-3e4f5a6b7c%02d", i))
		if err != nil {
			t.Fatal(err)
		}
		if code, _, sum := invokeRaw(t, e.srv, body); code != 200 || sum[want] != float64(1) {
			t.Fatalf("delivery %d: %d %v, want %s", i, code, sum, want)
		}
		e.idle(t)
	}
	if n := e.sink.count(t, "finding.opened UpgradeFailed"); n != 1 {
		t.Fatalf("UpgradeFailed opened %d times: %v", n, e.sink.steps(t))
	}
	e.clk.set(outOfWindow.Add(25 * time.Hour))
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() { defer wg.Done(); e.sweep(t) }()
	}
	wg.Wait()
	open := 0
	code, list := serve(t, e.srv, http.MethodGet, analyticsAPI+"/findings", nil)
	if fs, ok := list["findings"].([]any); code == 200 && ok {
		open = len(fs)
	}
	if n := e.sink.count(t, "finding.reminded"); n != open || open == 0 {
		t.Errorf("%d reminders for %d open findings: %v", n, open, e.sink.steps(t))
	}
	e.sink.steps(t) // fails on any duplicate
}
