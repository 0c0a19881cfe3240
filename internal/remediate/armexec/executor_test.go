package armexec

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
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
	"github.com/google/go-cmp/cmp"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
	"github.com/upgradewatch/upgradewatch/internal/remediate"
)

// The cluster and images of the remediations (those of remediate's tests).
var aks = fleet.ClusterID{SubscriptionID: "6f1c2a3b-4d5e-4f60-8a71-92b3c4d5e6f7", ResourceGroup: "rg-analytics-prod", Name: "aks-analytics-weu"}

const (
	sparkImage   = "AKSUbuntu-2204gen2containerd-202609.10.0"
	latestUbuntu = "AKSUbuntu-2204gen2containerd-202611.17.0"
)

const (
	testRetries = 2
	clusterETag = `"5e01c7a2-0000-0d00-0000-6720f3b10000"`
)

// The remediations the executor is given, as Decide plans them.
var (
	applyAt   = time.Date(2026, 11, 29, 2, 30, 0, 0, time.UTC)
	nodeOSFix = fleet.Remediation{
		ID: remediate.ID(aks, fleet.CodeChannelDrift, "cluster", 1, fleet.ActionSetNodeOSChannel, fleet.RemediateApply), Action: fleet.ActionSetNodeOSChannel,
		Code: fleet.CodeChannelDrift, Target: "cluster", Opened: 1, From: fleet.ChannelUnmanaged, To: fleet.ChannelNodeImage,
		Mode: fleet.RemediateApply, Status: fleet.RemediationApplying, Attempt: 1, PlannedAt: applyAt,
		LeaseOwner: "sweep-1", LeaseUntil: applyAt.Add(5 * time.Minute),
	}
	upgradeFix = fleet.Remediation{
		ID: remediate.ID(aks, fleet.CodeUpgradeChannelDrift, "cluster", 1, fleet.ActionSetUpgradeChannel, fleet.RemediateApply), Action: fleet.ActionSetUpgradeChannel,
		Code: fleet.CodeUpgradeChannelDrift, Target: "cluster", Opened: 1, From: fleet.UpgradePatch, To: fleet.UpgradeStable,
		Mode: fleet.RemediateApply, Status: fleet.RemediationApplying, Attempt: 1, PlannedAt: applyAt,
	}
	imageFix = fleet.Remediation{
		ID: remediate.ID(aks, fleet.CodeImageStale, "pool/spark/latest", 1, fleet.ActionUpgradeNodeImage, fleet.RemediateApply), Action: fleet.ActionUpgradeNodeImage,
		Code: fleet.CodeImageStale, Target: "pool/spark/latest", Opened: 1, Pool: "spark", From: sparkImage, To: latestUbuntu,
		Mode: fleet.RemediateApply, Status: fleet.RemediationApplying, Attempt: 1, PlannedAt: applyAt,
		LeaseOwner: "sweep-1", LeaseUntil: applyAt.Add(5 * time.Minute),
	}
)

// armFail is an ARM error answer: status and error code; zero answers the fixture.
type armFail struct {
	status int
	code   string
}

// fakeARM serves the fixtures through the SDK's fake servers and records
// what reached them.
type fakeARM struct {
	cluster    armcontainerservice.ManagedCluster
	pool       armcontainerservice.AgentPool
	profile    armcontainerservice.AgentPoolUpgradeProfile
	etagHeader string // sent as the ETag header of the cluster GET

	getFail, putFail, poolFail, profileFail, upgradeFail armFail

	requests atomic.Int32 // every HTTP request, retries included
	mu       sync.Mutex
	calls    map[string]int
	puts     []put
}

type put struct {
	ifMatch string
	body    armcontainerservice.ManagedCluster
}

func newFakeARM(t *testing.T) *fakeARM {
	t.Helper()
	return &fakeARM{
		cluster: load[armcontainerservice.ManagedCluster](t, "cluster-unmanaged.json"),
		pool:    load[armcontainerservice.AgentPool](t, "agentpool-spark.json"),
		profile: load[armcontainerservice.AgentPoolUpgradeProfile](t, "upgradeprofile-spark.json"),
		calls:   map[string]int{},
	}
}

// load decodes a fixture with the SDK's own UnmarshalJSON, the code that
// decodes ARM's answers.
func load[T any](t *testing.T, name string) T {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decode %s: %v", name, err)
	}
	return v
}

func (f *fakeARM) called(method string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[method]++
}

func (f *fakeARM) server() *fake.ServerFactory {
	return &fake.ServerFactory{
		ManagedClustersServer: fake.ManagedClustersServer{
			Get: func(_ context.Context, _, _ string, _ *armcontainerservice.ManagedClustersClientGetOptions) (resp azfake.Responder[armcontainerservice.ManagedClustersClientGetResponse], errResp azfake.ErrorResponder) {
				f.called("cluster.get")
				if f.getFail.status != 0 {
					errResp.SetResponseError(f.getFail.status, f.getFail.code)
					return
				}
				var o *azfake.SetResponseOptions
				if f.etagHeader != "" {
					o = &azfake.SetResponseOptions{Header: http.Header{"Etag": []string{f.etagHeader}}}
				}
				resp.SetResponse(http.StatusOK, armcontainerservice.ManagedClustersClientGetResponse{ManagedCluster: f.cluster}, o)
				return
			},
			BeginCreateOrUpdate: func(_ context.Context, _, _ string, mc armcontainerservice.ManagedCluster, o *armcontainerservice.ManagedClustersClientBeginCreateOrUpdateOptions) (resp azfake.PollerResponder[armcontainerservice.ManagedClustersClientCreateOrUpdateResponse], errResp azfake.ErrorResponder) {
				f.called("cluster.put")
				p := put{body: mc}
				if o != nil && o.IfMatch != nil {
					p.ifMatch = *o.IfMatch
				}
				f.mu.Lock()
				f.puts = append(f.puts, p)
				f.mu.Unlock()
				if f.putFail.status != 0 {
					errResp.SetResponseError(f.putFail.status, f.putFail.code)
					return
				}
				// AKS answers 200 with provisioningState Updating and polls.
				updating := mc
				props := *mc.Properties
				props.ProvisioningState = ptr("Updating")
				updating.Properties = &props
				resp.AddNonTerminalResponse(http.StatusOK, nil)
				resp.SetTerminalResponse(http.StatusOK, armcontainerservice.ManagedClustersClientCreateOrUpdateResponse{ManagedCluster: updating}, nil)
				return
			},
		},
		AgentPoolsServer: fake.AgentPoolsServer{
			Get: func(_ context.Context, _, _, _ string, _ *armcontainerservice.AgentPoolsClientGetOptions) (resp azfake.Responder[armcontainerservice.AgentPoolsClientGetResponse], errResp azfake.ErrorResponder) {
				f.called("pool.get")
				if f.poolFail.status != 0 {
					errResp.SetResponseError(f.poolFail.status, f.poolFail.code)
					return
				}
				resp.SetResponse(http.StatusOK, armcontainerservice.AgentPoolsClientGetResponse{AgentPool: f.pool}, nil)
				return
			},
			GetUpgradeProfile: func(_ context.Context, _, _, _ string, _ *armcontainerservice.AgentPoolsClientGetUpgradeProfileOptions) (resp azfake.Responder[armcontainerservice.AgentPoolsClientGetUpgradeProfileResponse], errResp azfake.ErrorResponder) {
				f.called("pool.profile")
				if f.profileFail.status != 0 {
					errResp.SetResponseError(f.profileFail.status, f.profileFail.code)
					return
				}
				resp.SetResponse(http.StatusOK, armcontainerservice.AgentPoolsClientGetUpgradeProfileResponse{AgentPoolUpgradeProfile: f.profile}, nil)
				return
			},
			BeginUpgradeNodeImageVersion: func(_ context.Context, _, _, _ string, _ *armcontainerservice.AgentPoolsClientBeginUpgradeNodeImageVersionOptions) (resp azfake.PollerResponder[armcontainerservice.AgentPoolsClientUpgradeNodeImageVersionResponse], errResp azfake.ErrorResponder) {
				f.called("pool.upgrade")
				if f.upgradeFail.status != 0 {
					errResp.SetResponseError(f.upgradeFail.status, f.upgradeFail.code)
					return
				}
				// 202 and an Azure-AsyncOperation to poll, which Apply does not.
				resp.AddNonTerminalResponse(http.StatusAccepted, nil)
				resp.SetTerminalResponse(http.StatusOK, armcontainerservice.AgentPoolsClientUpgradeNodeImageVersionResponse{}, nil)
				return
			},
		},
	}
}

// wire makes the SDK fakes answer errors as ARM does, as HTTP responses the
// pipeline's retry policy sees (the fakes return them as non-retriable
// transport errors), and counts every request that reaches the fakes.
type wire struct {
	next  policy.Transporter
	count *atomic.Int32
}

func (w wire) Do(req *http.Request) (*http.Response, error) {
	w.count.Add(1)
	resp, err := w.next.Do(req)
	var re *azcore.ResponseError
	if errors.As(err, &re) && re.RawResponse != nil {
		return re.RawResponse, nil
	}
	return resp, err
}

// executor wires an Executor to f with fast retries and a fixed clock.
func (f *fakeARM) executor() *Executor {
	return NewExecutor(&azfake.TokenCredential{}, Options{
		ClientOptions: &azarm.ClientOptions{ClientOptions: azcore.ClientOptions{
			Transport: wire{next: fake.NewServerFactoryTransport(f.server()), count: &f.requests},
			Retry:     policy.RetryOptions{MaxRetries: testRetries, RetryDelay: time.Millisecond, MaxRetryDelay: 5 * time.Millisecond},
		}},
		Now: func() time.Time { return applyAt.Add(time.Minute) },
	})
}

func ptr[T any](v T) *T { return &v }

func TestApplyChannel(t *testing.T) {
	cases := []struct {
		name    string
		r       fleet.Remediation
		arrange func(f *fakeARM)
		want    remediate.Result
		wantErr error
		wantMsg string // the whole error
		calls   map[string]int
		edit    func(mc *armcontainerservice.ManagedCluster) // the cluster as written: the fixture and this; nil when nothing is written
		ifMatch string
	}{
		{
			name:  "node OS channel",
			r:     nodeOSFix,
			want:  remediate.Result{Status: fleet.RemediationApplied, Detail: "set nodeOSUpgradeChannel of aks-analytics-weu from Unmanaged to NodeImage"},
			calls: map[string]int{"cluster.get": 1, "cluster.put": 1},
			edit: func(mc *armcontainerservice.ManagedCluster) {
				mc.Properties.AutoUpgradeProfile.NodeOSUpgradeChannel = ptr(armcontainerservice.NodeOSUpgradeChannelNodeImage)
			},
			ifMatch: clusterETag,
		},
		{
			name:  "cluster upgrade channel",
			r:     upgradeFix,
			want:  remediate.Result{Status: fleet.RemediationApplied, Detail: "set upgradeChannel of aks-analytics-weu from patch to stable"},
			calls: map[string]int{"cluster.get": 1, "cluster.put": 1},
			edit: func(mc *armcontainerservice.ManagedCluster) {
				mc.Properties.AutoUpgradeProfile.UpgradeChannel = ptr(armcontainerservice.UpgradeChannelStable)
			},
			ifMatch: clusterETag,
		},
		{
			name:  "channel in another case is written in the API's",
			r:     func() fleet.Remediation { r := nodeOSFix; r.To = "securitypatch"; return r }(),
			want:  remediate.Result{Status: fleet.RemediationApplied, Detail: "set nodeOSUpgradeChannel of aks-analytics-weu from Unmanaged to SecurityPatch"},
			calls: map[string]int{"cluster.get": 1, "cluster.put": 1},
			edit: func(mc *armcontainerservice.ManagedCluster) {
				mc.Properties.AutoUpgradeProfile.NodeOSUpgradeChannel = ptr(armcontainerservice.NodeOSUpgradeChannelSecurityPatch)
			},
			ifMatch: clusterETag,
		},
		{
			name:    "no auto-upgrade profile yet",
			r:       nodeOSFix,
			arrange: func(f *fakeARM) { f.cluster.Properties.AutoUpgradeProfile = nil },
			want:    remediate.Result{Status: fleet.RemediationApplied, Detail: "set nodeOSUpgradeChannel of aks-analytics-weu from (unknown) to NodeImage"},
			calls:   map[string]int{"cluster.get": 1, "cluster.put": 1},
			edit: func(mc *armcontainerservice.ManagedCluster) {
				mc.Properties.AutoUpgradeProfile = &armcontainerservice.ManagedClusterAutoUpgradeProfile{
					NodeOSUpgradeChannel: ptr(armcontainerservice.NodeOSUpgradeChannelNodeImage)}
			},
			ifMatch: clusterETag,
		},
		{
			name:    "ETag only in the header",
			r:       nodeOSFix,
			arrange: func(f *fakeARM) { f.cluster.ETag, f.etagHeader = nil, `W/"datetime'2026-11-29T02%3A29%3A11.1234567Z'"` },
			want:    remediate.Result{Status: fleet.RemediationApplied, Detail: "set nodeOSUpgradeChannel of aks-analytics-weu from Unmanaged to NodeImage"},
			calls:   map[string]int{"cluster.get": 1, "cluster.put": 1},
			edit: func(mc *armcontainerservice.ManagedCluster) {
				mc.ETag = nil
				mc.Properties.AutoUpgradeProfile.NodeOSUpgradeChannel = ptr(armcontainerservice.NodeOSUpgradeChannelNodeImage)
			},
			ifMatch: `W/"datetime'2026-11-29T02%3A29%3A11.1234567Z'"`,
		},
		{
			name:  "already on the target",
			r:     func() fleet.Remediation { r := nodeOSFix; r.To = fleet.ChannelUnmanaged; return r }(),
			want:  remediate.Result{Status: fleet.RemediationSkipped, Detail: "nodeOSUpgradeChannel of aks-analytics-weu is already Unmanaged"},
			calls: map[string]int{"cluster.get": 1},
		},
		{
			name:  "already on the target, in another case",
			r:     func() fleet.Remediation { r := upgradeFix; r.To = "PATCH"; return r }(),
			want:  remediate.Result{Status: fleet.RemediationSkipped, Detail: "upgradeChannel of aks-analytics-weu is already patch"},
			calls: map[string]int{"cluster.get": 1},
		},
		{
			name:    "cluster updating",
			r:       nodeOSFix,
			arrange: func(f *fakeARM) { f.cluster.Properties.ProvisioningState = ptr("Updating") },
			wantErr: remediate.ErrTransient,
			wantMsg: "setNodeOSUpgradeChannel aks-analytics-weu: cluster is Updating (transient, try again later)",
			calls:   map[string]int{"cluster.get": 1},
		},
		{
			name:    "no ETag at all",
			r:       nodeOSFix,
			arrange: func(f *fakeARM) { f.cluster.ETag = nil },
			wantErr: remediate.ErrRefused,
			wantMsg: "setNodeOSUpgradeChannel aks-analytics-weu: ARM gave no ETag to write the cluster with If-Match (refused)",
			calls:   map[string]int{"cluster.get": 1},
		},
		{
			name:    "412: the cluster changed since the read",
			r:       nodeOSFix,
			arrange: func(f *fakeARM) { f.putFail = armFail{http.StatusPreconditionFailed, "PreconditionFailed"} },
			wantErr: remediate.ErrTransient,
			wantMsg: "setNodeOSUpgradeChannel aks-analytics-weu: write cluster: 412 PreconditionFailed (transient, try again later)",
			calls:   map[string]int{"cluster.get": 1, "cluster.put": 1},
			edit: func(mc *armcontainerservice.ManagedCluster) {
				mc.Properties.AutoUpgradeProfile.NodeOSUpgradeChannel = ptr(armcontainerservice.NodeOSUpgradeChannelNodeImage)
			},
			ifMatch: clusterETag,
		},
		{
			name:    "409: an operation is in progress",
			r:       nodeOSFix,
			arrange: func(f *fakeARM) { f.putFail = armFail{http.StatusConflict, "OperationNotAllowed"} },
			wantErr: remediate.ErrTransient,
			wantMsg: "setNodeOSUpgradeChannel aks-analytics-weu: write cluster: 409 OperationNotAllowed (transient, try again later)",
			calls:   map[string]int{"cluster.get": 1, "cluster.put": 1},
			edit: func(mc *armcontainerservice.ManagedCluster) {
				mc.Properties.AutoUpgradeProfile.NodeOSUpgradeChannel = ptr(armcontainerservice.NodeOSUpgradeChannelNodeImage)
			},
			ifMatch: clusterETag,
		},
		{
			name:    "403: no role to write the cluster",
			r:       nodeOSFix,
			arrange: func(f *fakeARM) { f.putFail = armFail{http.StatusForbidden, "AuthorizationFailed"} },
			wantErr: remediate.ErrRefused,
			wantMsg: "setNodeOSUpgradeChannel aks-analytics-weu: write cluster: 403 AuthorizationFailed (refused)",
			calls:   map[string]int{"cluster.get": 1, "cluster.put": 1},
			edit: func(mc *armcontainerservice.ManagedCluster) {
				mc.Properties.AutoUpgradeProfile.NodeOSUpgradeChannel = ptr(armcontainerservice.NodeOSUpgradeChannelNodeImage)
			},
			ifMatch: clusterETag,
		},
		{
			name:    "403: no role to read the cluster",
			r:       nodeOSFix,
			arrange: func(f *fakeARM) { f.getFail = armFail{http.StatusForbidden, "AuthorizationFailed"} },
			wantErr: remediate.ErrRefused,
			wantMsg: "setNodeOSUpgradeChannel aks-analytics-weu: read cluster: 403 AuthorizationFailed (refused)",
			calls:   map[string]int{"cluster.get": 1},
		},
		{
			name:    "400: AKS refuses the channel",
			r:       func() fleet.Remediation { r := nodeOSFix; r.To = fleet.ChannelSecurityPatch; return r }(),
			arrange: func(f *fakeARM) { f.putFail = armFail{http.StatusBadRequest, "InvalidParameter"} },
			wantErr: remediate.ErrRefused,
			wantMsg: "setNodeOSUpgradeChannel aks-analytics-weu: write cluster: 400 InvalidParameter (refused)",
			calls:   map[string]int{"cluster.get": 1, "cluster.put": 1},
			edit: func(mc *armcontainerservice.ManagedCluster) {
				mc.Properties.AutoUpgradeProfile.NodeOSUpgradeChannel = ptr(armcontainerservice.NodeOSUpgradeChannelSecurityPatch)
			},
			ifMatch: clusterETag,
		},
		{
			name:    "404: the cluster is gone",
			r:       nodeOSFix,
			arrange: func(f *fakeARM) { f.getFail = armFail{http.StatusNotFound, "ResourceNotFound"} },
			wantErr: remediate.ErrRefused,
			wantMsg: "setNodeOSUpgradeChannel aks-analytics-weu: read cluster: 404 ResourceNotFound (refused)",
			calls:   map[string]int{"cluster.get": 1},
		},
		{
			name:    "throttled past the retries",
			r:       nodeOSFix,
			arrange: func(f *fakeARM) { f.getFail = armFail{http.StatusTooManyRequests, "TooManyRequests"} },
			wantErr: remediate.ErrTransient,
			wantMsg: "setNodeOSUpgradeChannel aks-analytics-weu: read cluster: 429 TooManyRequests (transient, try again later)",
			calls:   map[string]int{"cluster.get": testRetries + 1},
		},
		{
			name:    "503 past the retries on the write",
			r:       nodeOSFix,
			arrange: func(f *fakeARM) { f.putFail = armFail{http.StatusServiceUnavailable, "ServiceUnavailable"} },
			wantErr: remediate.ErrTransient,
			wantMsg: "setNodeOSUpgradeChannel aks-analytics-weu: write cluster: 503 ServiceUnavailable (transient, try again later)",
			calls:   map[string]int{"cluster.get": 1, "cluster.put": testRetries + 1},
			edit: func(mc *armcontainerservice.ManagedCluster) {
				mc.Properties.AutoUpgradeProfile.NodeOSUpgradeChannel = ptr(armcontainerservice.NodeOSUpgradeChannelNodeImage)
			},
			ifMatch: clusterETag,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeARM(t)
			if tc.arrange != nil {
				tc.arrange(f)
			}
			got, err := f.executor().Apply(context.Background(), aks, tc.r)
			checkErr(t, err, tc.wantErr, tc.wantMsg)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("result (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.calls, f.calls); diff != "" {
				t.Errorf("calls (-want +got):\n%s", diff)
			}
			if tc.edit == nil {
				return
			}
			want := f.cluster // as served, the arrangement included
			props := *want.Properties
			if props.AutoUpgradeProfile != nil {
				aup := *props.AutoUpgradeProfile
				props.AutoUpgradeProfile = &aup
			}
			want.Properties = &props
			tc.edit(&want)
			for i, p := range f.puts {
				if p.ifMatch != tc.ifMatch {
					t.Errorf("PUT %d: got If-Match %q, want %q", i, p.ifMatch, tc.ifMatch)
				}
				if diff := cmp.Diff(want, p.body); diff != "" {
					t.Errorf("PUT %d body: the cluster as read but the channel (-want +got):\n%s", i, diff)
				}
			}
		})
	}
}

func TestApplyNodeImage(t *testing.T) {
	cases := []struct {
		name    string
		arrange func(f *fakeARM)
		want    remediate.Result
		wantErr error
		wantMsg string
		calls   map[string]int
	}{
		{
			name: "started",
			want: remediate.Result{Status: fleet.RemediationApplied,
				Detail: "started upgrading the node image of pool spark from " + sparkImage + " to " + latestUbuntu},
			calls: map[string]int{"pool.get": 1, "pool.profile": 1, "pool.upgrade": 1},
		},
		{
			name:    "pool upgrading",
			arrange: func(f *fakeARM) { f.pool.Properties.ProvisioningState = ptr("UpgradingNodeImageVersion") },
			wantErr: remediate.ErrTransient,
			wantMsg: "upgradeNodeImageVersion aks-analytics-weu: pool spark is UpgradingNodeImageVersion (transient, try again later)",
			calls:   map[string]int{"pool.get": 1},
		},
		{
			name:    "pool failed",
			arrange: func(f *fakeARM) { f.pool.Properties.ProvisioningState = ptr("Failed") },
			wantErr: remediate.ErrTransient,
			wantMsg: "upgradeNodeImageVersion aks-analytics-weu: pool spark is Failed (transient, try again later)",
			calls:   map[string]int{"pool.get": 1},
		},
		{
			name:    "already on the latest image",
			arrange: func(f *fakeARM) { f.pool.Properties.NodeImageVersion = ptr(latestUbuntu) },
			want:    remediate.Result{Status: fleet.RemediationSkipped, Detail: "pool spark already runs " + latestUbuntu + ", the latest node image"},
			calls:   map[string]int{"pool.get": 1, "pool.profile": 1},
		},
		{
			name: "a newer image than planned",
			arrange: func(f *fakeARM) {
				f.profile.Properties.LatestNodeImageVersion = ptr("AKSUbuntu-2204gen2containerd-202611.24.0")
			},
			want: remediate.Result{Status: fleet.RemediationApplied,
				Detail: "started upgrading the node image of pool spark from " + sparkImage + " to AKSUbuntu-2204gen2containerd-202611.24.0"},
			calls: map[string]int{"pool.get": 1, "pool.profile": 1, "pool.upgrade": 1},
		},
		{
			name:    "409: an operation is in progress",
			arrange: func(f *fakeARM) { f.upgradeFail = armFail{http.StatusConflict, "OperationNotAllowed"} },
			wantErr: remediate.ErrTransient,
			wantMsg: "upgradeNodeImageVersion aks-analytics-weu: start node image upgrade of pool spark: 409 OperationNotAllowed (transient, try again later)",
			calls:   map[string]int{"pool.get": 1, "pool.profile": 1, "pool.upgrade": 1},
		},
		{
			name:    "403: no role for upgradeNodeImageVersion",
			arrange: func(f *fakeARM) { f.upgradeFail = armFail{http.StatusForbidden, "AuthorizationFailed"} },
			wantErr: remediate.ErrRefused,
			wantMsg: "upgradeNodeImageVersion aks-analytics-weu: start node image upgrade of pool spark: 403 AuthorizationFailed (refused)",
			calls:   map[string]int{"pool.get": 1, "pool.profile": 1, "pool.upgrade": 1},
		},
		{
			name:    "404: the pool is gone",
			arrange: func(f *fakeARM) { f.poolFail = armFail{http.StatusNotFound, "NotFound"} },
			wantErr: remediate.ErrRefused,
			wantMsg: "upgradeNodeImageVersion aks-analytics-weu: read pool spark: 404 NotFound (refused)",
			calls:   map[string]int{"pool.get": 1},
		},
		{
			name:    "500 on the upgrade profile past the retries",
			arrange: func(f *fakeARM) { f.profileFail = armFail{http.StatusInternalServerError, "InternalServerError"} },
			wantErr: remediate.ErrTransient,
			wantMsg: "upgradeNodeImageVersion aks-analytics-weu: read upgrade profile of pool spark: 500 InternalServerError (transient, try again later)",
			calls:   map[string]int{"pool.get": 1, "pool.profile": testRetries + 1},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeARM(t)
			if tc.arrange != nil {
				tc.arrange(f)
			}
			got, err := f.executor().Apply(context.Background(), aks, imageFix)
			checkErr(t, err, tc.wantErr, tc.wantMsg)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("result (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.calls, f.calls); diff != "" {
				t.Errorf("calls (-want +got):\n%s", diff)
			}
		})
	}
}

// TestApplyRefusesBeforeARM checks that what must not be carried out never
// reaches ARM: not a single request.
func TestApplyRefusesBeforeARM(t *testing.T) {
	with := func(r fleet.Remediation, edit func(*fleet.Remediation)) fleet.Remediation { edit(&r); return r }
	cases := []struct {
		name    string
		id      fleet.ClusterID
		r       fleet.Remediation
		wantErr error
		wantMsg string
	}{
		{"dry-run record", aks, with(imageFix, func(r *fleet.Remediation) { r.Mode, r.Status = fleet.RemediateDryRun, fleet.RemediationDryRun }),
			remediate.ErrRefused, `upgradeNodeImageVersion aks-analytics-weu: mode is "dry-run", not apply (refused)`},
		{"dry-run channel record", aks, with(nodeOSFix, func(r *fleet.Remediation) { r.Mode = fleet.RemediateDryRun }),
			remediate.ErrRefused, `setNodeOSUpgradeChannel aks-analytics-weu: mode is "dry-run", not apply (refused)`},
		{"mode off", aks, with(nodeOSFix, func(r *fleet.Remediation) { r.Mode = fleet.RemediateOff }),
			remediate.ErrRefused, `setNodeOSUpgradeChannel aks-analytics-weu: mode is "off", not apply (refused)`},
		{"no mode", aks, with(nodeOSFix, func(r *fleet.Remediation) { r.Mode = "" }),
			remediate.ErrRefused, `setNodeOSUpgradeChannel aks-analytics-weu: mode is "", not apply (refused)`},
		{"unknown action", aks, with(nodeOSFix, func(r *fleet.Remediation) { r.Action = "abortLatestOperation" }),
			remediate.ErrRefused, `abortLatestOperation aks-analytics-weu: unknown action (refused)`},
		{"no channel", aks, with(nodeOSFix, func(r *fleet.Remediation) { r.To = "" }),
			remediate.ErrRefused, `setNodeOSUpgradeChannel aks-analytics-weu: "" is not a channel (refused)`},
		{"node OS channel for the cluster channel", aks, with(upgradeFix, func(r *fleet.Remediation) { r.To = fleet.ChannelNodeImage }),
			remediate.ErrRefused, `setUpgradeChannel aks-analytics-weu: "NodeImage" is not a channel (refused)`},
		{"no pool", aks, with(imageFix, func(r *fleet.Remediation) { r.Pool = "" }),
			remediate.ErrRefused, `upgradeNodeImageVersion aks-analytics-weu: invalid pool name "" (refused)`},
		{"pool name with a path in it", aks, with(imageFix, func(r *fleet.Remediation) { r.Pool = "spark/../../x" }),
			remediate.ErrRefused, `upgradeNodeImageVersion aks-analytics-weu: invalid pool name "spark/../../x" (refused)`},
		{"no cluster", fleet.ClusterID{}, imageFix,
			remediate.ErrRefused, `upgradeNodeImageVersion : no cluster (refused)`},
		{"lease expired", aks, with(imageFix, func(r *fleet.Remediation) { r.LeaseUntil = applyAt.Add(time.Minute) }),
			remediate.ErrTransient, `upgradeNodeImageVersion aks-analytics-weu: lease expired before ARM was called (transient, try again later)`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeARM(t)
			got, err := f.executor().Apply(context.Background(), tc.id, tc.r)
			checkErr(t, err, tc.wantErr, tc.wantMsg)
			if got != (remediate.Result{}) {
				t.Errorf("got result %+v, want none", got)
			}
			if n := f.requests.Load(); n != 0 {
				t.Errorf("got %d requests to ARM, want 0 (calls %v)", n, f.calls)
			}
		})
	}
}

// TestApplyErrorChain checks that the ARM response error stays reachable
// behind the short message, and that a cancelled context is transient.
func TestApplyErrorChain(t *testing.T) {
	f := newFakeARM(t)
	f.putFail = armFail{http.StatusPreconditionFailed, "PreconditionFailed"}
	_, err := f.executor().Apply(context.Background(), aks, nodeOSFix)
	var re *azcore.ResponseError
	if !errors.As(err, &re) || re.StatusCode != http.StatusPreconditionFailed || re.ErrorCode != "PreconditionFailed" {
		t.Errorf("got %v, want the 412 response error in the chain", re)
	}
	if strings.Contains(err.Error(), "https://") || strings.Contains(err.Error(), "\n") {
		t.Errorf("got error %q, want one short line without the request", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = newFakeARM(t).executor().Apply(ctx, aks, imageFix)
	if !errors.Is(err, remediate.ErrTransient) || !errors.Is(err, context.Canceled) {
		t.Errorf("got %v, want remediate.ErrTransient and context.Canceled", err)
	}
	if want := "upgradeNodeImageVersion aks-analytics-weu: read pool spark: canceled (transient, try again later)"; err.Error() != want {
		t.Errorf("got error %q, want %q", err, want)
	}
}

func TestApplyConcurrent(t *testing.T) {
	f := newFakeARM(t)
	x := f.executor()
	// One call per cluster: the SDK's fake keeps one poller per URL and is
	// not safe for concurrent Begin calls on the same pool.
	subs := []string{aks.SubscriptionID, "0b1f6471-1bf0-4dda-aec3-cb9272f09590", "0B1F6471-1BF0-4DDA-AEC3-CB9272F09590"}
	var ids []fleet.ClusterID
	for i := range 9 {
		ids = append(ids, fleet.ClusterID{SubscriptionID: subs[i%len(subs)], ResourceGroup: "rg-analytics", Name: fmt.Sprintf("aks-analytics-%02d", i)})
	}
	errs := make([]error, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Go(func() { _, errs[i] = x.Apply(context.Background(), id, imageFix) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Apply %s: %v", ids[i], err)
		}
	}
	if n := f.calls["pool.upgrade"]; n != len(ids) {
		t.Errorf("got %d upgrades, want %d", n, len(ids))
	}
	if n := x.clients.Len(); n != 2 {
		t.Errorf("got %d client factories, want one per subscription (2)", n)
	}
}

func checkErr(t *testing.T, err, want error, wantMsg string) {
	t.Helper()
	if want == nil {
		if err != nil {
			t.Fatalf("got error %v, want none", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("got no error, want %v", want)
	}
	for _, s := range []error{remediate.ErrTransient, remediate.ErrRefused} {
		if is := errors.Is(err, s); is != (s == want) {
			t.Errorf("got errors.Is(err, %v) = %t, want %t (err: %v)", s, is, s == want, err)
		}
	}
	if wantMsg != "" && err.Error() != wantMsg {
		t.Errorf("got error %q, want %q", err, wantMsg)
	}
}
