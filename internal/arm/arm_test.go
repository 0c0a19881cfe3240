package arm

import (
	"context"
	"encoding/hex"
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
)

const sub = "8f1c2b3a-4d5e-4f60-9a7b-1c2d3e4f5a6b"

var readAt = time.Date(2026, 9, 20, 6, 30, 0, 123456789, time.UTC)

// fakeARM serves fixtures through the SDK's fake servers. Failures are HTTP
// statuses with an ARM error code; a zero status answers the fixture.
type fakeARM struct {
	clusters    map[string]armcontainerservice.ManagedCluster // by cluster name
	maintenance map[string][]*armcontainerservice.MaintenanceConfiguration
	profiles    map[string]armcontainerservice.AgentPoolUpgradeProfile // by pool name

	getFail     func(call int32) (int, string) // for the n-th cluster GET (1-based)
	profileFail map[string]int                 // by pool name
	listFail    int

	gets atomic.Int32
}

func newFakeARM(t *testing.T) *fakeARM {
	t.Helper()
	f := &fakeARM{
		clusters: map[string]armcontainerservice.ManagedCluster{
			"aks-prod-weu": load[armcontainerservice.ManagedCluster](t, "cluster-mixed.json"),
			"aks-legacy":   load[armcontainerservice.ManagedCluster](t, "cluster-node-image.json"),
		},
		maintenance: map[string][]*armcontainerservice.MaintenanceConfiguration{
			"aks-prod-weu": load[armcontainerservice.MaintenanceConfigurationListResult](t, "maintenance-mixed.json").Value,
			"aks-legacy":   load[armcontainerservice.MaintenanceConfigurationListResult](t, "maintenance-monthly.json").Value,
		},
		profiles:    map[string]armcontainerservice.AgentPoolUpgradeProfile{},
		profileFail: map[string]int{},
	}
	for _, pool := range []string{"system", "userazl", "win22", "gpu", "nodepool1"} {
		f.profiles[pool] = load[armcontainerservice.AgentPoolUpgradeProfile](t, "upgradeprofile-"+pool+".json")
	}
	return f
}

// load decodes a fixture with the SDK's own UnmarshalJSON, the code that
// decodes ARM's answers, so the fixtures' nulls are tolerated or not as in
// production.
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

func (f *fakeARM) server() *fake.ServerFactory {
	return &fake.ServerFactory{
		ManagedClustersServer: fake.ManagedClustersServer{
			Get: func(_ context.Context, _, name string, _ *armcontainerservice.ManagedClustersClientGetOptions) (resp azfake.Responder[armcontainerservice.ManagedClustersClientGetResponse], errResp azfake.ErrorResponder) {
				n := f.gets.Add(1)
				if f.getFail != nil {
					if status, code := f.getFail(n); status != 0 {
						errResp.SetResponseError(status, code)
						return
					}
				}
				mc, ok := f.clusters[name]
				if !ok {
					errResp.SetResponseError(http.StatusNotFound, "ResourceNotFound")
					return
				}
				resp.SetResponse(http.StatusOK, armcontainerservice.ManagedClustersClientGetResponse{ManagedCluster: mc}, nil)
				return
			},
		},
		AgentPoolsServer: fake.AgentPoolsServer{
			GetUpgradeProfile: func(_ context.Context, _, _, pool string, _ *armcontainerservice.AgentPoolsClientGetUpgradeProfileOptions) (resp azfake.Responder[armcontainerservice.AgentPoolsClientGetUpgradeProfileResponse], errResp azfake.ErrorResponder) {
				if status := f.profileFail[pool]; status != 0 {
					errResp.SetResponseError(status, http.StatusText(status))
					return
				}
				p, ok := f.profiles[pool]
				if !ok {
					errResp.SetResponseError(http.StatusNotFound, "NotFound")
					return
				}
				resp.SetResponse(http.StatusOK, armcontainerservice.AgentPoolsClientGetUpgradeProfileResponse{AgentPoolUpgradeProfile: p}, nil)
				return
			},
		},
		MaintenanceConfigurationsServer: fake.MaintenanceConfigurationsServer{
			NewListByManagedClusterPager: func(_, name string, _ *armcontainerservice.MaintenanceConfigurationsClientListByManagedClusterOptions) (resp azfake.PagerResponder[armcontainerservice.MaintenanceConfigurationsClientListByManagedClusterResponse]) {
				if f.listFail != 0 {
					// One answer per try: the fake pager consumes an error per request.
					for range testRetries + 1 {
						resp.AddResponseError(f.listFail, http.StatusText(f.listFail))
					}
					return
				}
				// Two per page, so the reader must follow nextLink.
				all := f.maintenance[name]
				for i := 0; i == 0 || i < len(all); i += 2 {
					page := all[i:min(i+2, len(all))]
					resp.AddPage(http.StatusOK, armcontainerservice.MaintenanceConfigurationsClientListByManagedClusterResponse{
						MaintenanceConfigurationListResult: armcontainerservice.MaintenanceConfigurationListResult{Value: page},
					}, nil)
				}
				return
			},
		},
	}
}

// wire makes the SDK fakes answer errors as ARM does, as HTTP responses the
// pipeline's retry policy sees. The fakes return them as non-retriable
// transport errors instead, which would bypass the very policy under test.
type wire struct {
	next       policy.Transporter
	retryAfter string
}

func (w wire) Do(req *http.Request) (*http.Response, error) {
	resp, err := w.next.Do(req)
	var re *azcore.ResponseError
	if errors.As(err, &re) && re.RawResponse != nil {
		resp = re.RawResponse
		if w.retryAfter != "" {
			resp.Header.Set("Retry-After", w.retryAfter)
		}
		return resp, nil
	}
	return resp, err
}

const testRetries = 2

// reader wires a Reader to f with fast retries and a fixed clock.
func (f *fakeARM) reader(retryAfter string) *Reader {
	return NewReader(&azfake.TokenCredential{}, Options{
		ClientOptions: &azarm.ClientOptions{ClientOptions: azcore.ClientOptions{
			Transport: wire{next: fake.NewServerFactoryTransport(f.server()), retryAfter: retryAfter},
			Retry:     policy.RetryOptions{MaxRetries: testRetries, RetryDelay: time.Millisecond, MaxRetryDelay: 5 * time.Millisecond},
		}},
		Now: func() time.Time { return readAt.In(time.FixedZone("CEST", 2*3600)) },
	})
}

func cluster(t *testing.T, rg, name string) fleet.ClusterID {
	t.Helper()
	id, err := fleet.NewClusterID(sub, rg, name)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestReadMaps(t *testing.T) {
	mixed := &fleet.ClusterProfile{
		Location:             "westeurope",
		KubernetesVersion:    "1.31.5",
		UpgradeChannel:       "patch",
		NodeOSUpgradeChannel: "NodeImage",
		ProvisioningState:    "Succeeded",
		Tags:                 map[string]string{"env": "prod", "owner": "platform-team", "upgradewatch": ""},
		Pools: []fleet.PoolProfile{
			{
				Name: "gpu", Mode: "User", OSType: "Linux", OSSKU: "Ubuntu", VMSize: "Standard_NC6s_v3", Count: 1,
				OrchestratorVersion: "1.31.5", NodeImageVersion: "AKSUbuntu-2204gen2containerd-202410.15.0",
				ProvisioningState: "Succeeded", MaxSurge: "0", MaxUnavailable: "1", DrainTimeoutMinutes: 60,
				LatestNodeImageVersion: "AKSUbuntu-2204gen2containerd-202411.12.0",
			},
			{
				Name: "system", Mode: "System", OSType: "Linux", OSSKU: "Ubuntu", VMSize: "Standard_D4ds_v5", Count: 3,
				OrchestratorVersion: "1.31.5", NodeImageVersion: "AKSUbuntu-2204gen2containerd-202410.27.0",
				ProvisioningState: "Succeeded", MaxSurge: "33%", MaxUnavailable: "0", DrainTimeoutMinutes: 45,
				NodeSoakMinutes: 5, UndrainableBehavior: "Cordon",
				LatestNodeImageVersion: "AKSUbuntu-2204gen2containerd-202411.12.0",
			},
			{
				Name: "userazl", Mode: "User", OSType: "Linux", OSSKU: "AzureLinux", VMSize: "Standard_D8ds_v5", Count: 5,
				OrchestratorVersion: "1.31.5", NodeImageVersion: "AKSAzureLinux-V3gen2-202609.15.0",
				ProvisioningState: "Succeeded", MaxSurge: "10%",
				LatestNodeImageVersion: "AKSAzureLinux-V3gen2-202609.22.0",
			},
			{
				Name: "win22", Mode: "User", OSType: "Windows", OSSKU: "Windows2022", VMSize: "Standard_D4s_v5", Count: 2,
				OrchestratorVersion: "1.31.5", NodeImageVersion: "AKSWindows-2022-containerd-20348.3692.250518",
				ProvisioningState: "UpgradingNodeImageVersion", MaxSurge: "1", DrainTimeoutMinutes: 30,
				UndrainableBehavior:    "Schedule",
				LatestNodeImageVersion: "AKSWindows-2022-containerd-20348.3807.250612",
			},
		},
		MaintenanceKnown: true,
		Maintenance: []fleet.MaintenanceWindow{
			{
				Name:          fleet.MaintenanceAuto,
				Schedule:      fleet.MaintenanceSchedule{Kind: fleet.ScheduleWeekly, IntervalWeeks: 1, DayOfWeek: "Sunday"},
				DurationHours: 8, UTCOffset: "+01:00", StartDate: "2026-03-08", StartTime: "00:00",
				NotAllowed: []fleet.DateSpan{{Start: "2026-12-24", End: "2026-12-26"}},
			},
			{
				Name:          fleet.MaintenanceNodeOS,
				Schedule:      fleet.MaintenanceSchedule{Kind: fleet.ScheduleDaily, IntervalDays: 1},
				DurationHours: 4, UTCOffset: "+00:00", StartDate: "2023-11-22", StartTime: "09:00",
			},
			{
				Name: fleet.MaintenanceDefault,
				TimeInWeek: []fleet.TimeInWeek{
					{Day: "Saturday", HourSlots: []int{1, 2, 3, 4}},
					{Day: "Sunday", HourSlots: []int{1, 2}},
				},
				NotAllowedTime: []fleet.TimeSpan{{
					Start: time.Date(2026, 12, 23, 0, 0, 0, 0, time.UTC),
					End:   time.Date(2027, 1, 5, 0, 0, 0, 0, time.UTC),
				}},
			},
		},
		OIDCIssuerKnown: true,
		OIDCIssuerURL:   "https://westeurope.oic.prod-aks.azure.com/72f988bf-86f1-41af-91ab-2d7cd011db47/5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9/",
	}
	legacyPools := []fleet.PoolProfile{{
		Name: "nodepool1", Mode: "System", OSType: "Linux", OSSKU: "Ubuntu", VMSize: "Standard_DS2_v2", Count: 2,
		OrchestratorVersion: "1.30.10", NodeImageVersion: "AKSUbuntu-2204gen2containerd-202410.27.0",
		ProvisioningState: "Succeeded", LatestNodeImageVersion: "AKSUbuntu-2204gen2containerd-202411.12.0",
	}}
	nodeImage := &fleet.ClusterProfile{
		Location:             "northeurope",
		KubernetesVersion:    "1.30.10",
		UpgradeChannel:       "node-image",
		NodeOSUpgradeChannel: "NodeImage",
		ProvisioningState:    "Succeeded",
		Pools:                legacyPools,
		MaintenanceKnown:     true,
		OIDCIssuerKnown:      true, // no oidcIssuerProfile: known to have no issuer
		Maintenance: []fleet.MaintenanceWindow{
			{
				Name: fleet.MaintenanceAuto,
				Schedule: fleet.MaintenanceSchedule{
					Kind: fleet.ScheduleRelativeMonthly, IntervalMonths: 3, DayOfWeek: "Monday", WeekIndex: "First",
				},
				DurationHours: 10, UTCOffset: "+05:30", StartDate: "2023-01-01", StartTime: "08:30",
				NotAllowed: []fleet.DateSpan{{Start: "2023-02-18", End: "2023-02-25"}, {Start: "2023-12-23", End: "2024-01-05"}},
			},
			{
				Name:          fleet.MaintenanceNodeOS,
				Schedule:      fleet.MaintenanceSchedule{Kind: fleet.ScheduleAbsoluteMonthly, IntervalMonths: 1, DayOfMonth: 15},
				DurationHours: 6, UTCOffset: "-05:00", StartTime: "22:00",
			},
		},
	}
	noWindows := *nodeImage
	noWindows.Maintenance = []fleet.MaintenanceWindow{}

	tests := []struct {
		name          string
		rg, cluster   string
		noMaintenance bool
		want          *fleet.ClusterProfile
	}{
		{name: "mixed cluster", rg: "rg-platform-weu", cluster: "aks-prod-weu", want: mixed},
		{name: "node-image channel", rg: "rg-legacy", cluster: "aks-legacy", want: nodeImage},
		{name: "no maintenance configurations", rg: "rg-legacy", cluster: "aks-legacy", noMaintenance: true, want: &noWindows},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeARM(t)
			if tc.noMaintenance {
				delete(f.maintenance, tc.cluster)
			}
			id := cluster(t, tc.rg, tc.cluster)
			got, err := f.reader("").Read(context.Background(), id)
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			if diff := cmp.Diff(tc.want, got.Profile); diff != "" {
				t.Errorf("profile (-want +got):\n%s", diff)
			}
			want := fleet.Signal{
				ID: got.ID, Type: fleet.TypeARMRead, Source: id.ResourceID(), Subject: id.ResourceID(),
				Time: readAt, Cluster: id, Kind: fleet.KindClusterUpdated, Profile: got.Profile,
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("signal (-want +got):\n%s", diff)
			}
			if got.Time.Location() != time.UTC {
				t.Errorf("got time in %v, want UTC", got.Time.Location())
			}
			hexPart, ok := strings.CutPrefix(got.ID, "arm-")
			if _, err := hex.DecodeString(hexPart); !ok || err != nil || len(hexPart) != 32 {
				t.Errorf("got ID %q, want arm- and 32 hex digits", got.ID)
			}
		})
	}
}

func TestReadRetriesThrottling(t *testing.T) {
	f := newFakeARM(t)
	f.getFail = func(n int32) (int, string) {
		if n == 1 {
			return http.StatusTooManyRequests, "TooManyRequests"
		}
		return 0, ""
	}
	got, err := f.reader("0").Read(context.Background(), cluster(t, "rg-platform-weu", "aks-prod-weu"))
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	if got.Kind != fleet.KindClusterUpdated || got.Profile == nil {
		t.Errorf("got kind %s profile %v, want ClusterUpdated with a profile", got.Kind, got.Profile)
	}
	if n := f.gets.Load(); n != 2 {
		t.Errorf("got %d cluster GETs, want 2 (one 429, one retry)", n)
	}
}

func TestReadErrors(t *testing.T) {
	always := func(status int, code string) func(int32) (int, string) {
		return func(int32) (int, string) { return status, code }
	}
	tests := []struct {
		name     string
		arrange  func(*fakeARM)
		ctx      func() (context.Context, context.CancelFunc)
		want     error // sentinel, or nil for neither
		wantGets int32 // -1: any (the fake may or may not run the handler)
		status   int   // the ResponseError kept in the chain; 0 for none
	}{
		{
			name:     "persistent 503",
			arrange:  func(f *fakeARM) { f.getFail = always(http.StatusServiceUnavailable, "ServiceUnavailable") },
			want:     ErrUnavailable,
			wantGets: testRetries + 1,
			status:   http.StatusServiceUnavailable,
		},
		{
			name:     "403 missing role assignment",
			arrange:  func(f *fakeARM) { f.getFail = always(http.StatusForbidden, "AuthorizationFailed") },
			want:     ErrForbidden,
			wantGets: 1,
			status:   http.StatusForbidden,
		},
		{
			name:     "401 invalid token",
			arrange:  func(f *fakeARM) { f.getFail = always(http.StatusUnauthorized, "InvalidAuthenticationToken") },
			want:     ErrForbidden,
			wantGets: 1,
			status:   http.StatusUnauthorized,
		},
		{
			name:     "404 subscription not found is no deletion",
			arrange:  func(f *fakeARM) { f.getFail = always(http.StatusNotFound, "SubscriptionNotFound") },
			want:     ErrForbidden,
			wantGets: 1,
			status:   http.StatusNotFound,
		},
		{
			name:     "400 is neither",
			arrange:  func(f *fakeARM) { f.getFail = always(http.StatusBadRequest, "InvalidApiVersionParameter") },
			wantGets: 1,
			status:   http.StatusBadRequest,
		},
		{
			name:     "pool upgrade profile 403",
			arrange:  func(f *fakeARM) { f.profileFail["win22"] = http.StatusForbidden },
			want:     ErrForbidden,
			wantGets: 1,
			status:   http.StatusForbidden,
		},
		{
			name:     "maintenance list persistent 500",
			arrange:  func(f *fakeARM) { f.listFail = http.StatusInternalServerError },
			want:     ErrUnavailable,
			wantGets: 1,
			status:   http.StatusInternalServerError,
		},
		{
			name:     "maintenance list 404 after the cluster GET",
			arrange:  func(f *fakeARM) { f.listFail = http.StatusNotFound },
			want:     ErrUnavailable,
			wantGets: 1,
			status:   http.StatusNotFound,
		},
		{
			name:    "deadline passed",
			arrange: func(*fakeARM) {},
			ctx: func() (context.Context, context.CancelFunc) {
				return context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
			},
			want:     ErrUnavailable,
			wantGets: -1,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeARM(t)
			tc.arrange(f)
			ctx, cancel := context.Background(), context.CancelFunc(func() {})
			if tc.ctx != nil {
				ctx, cancel = tc.ctx()
			}
			defer cancel()
			id := cluster(t, "rg-platform-weu", "aks-prod-weu")
			got, err := f.reader("").Read(ctx, id)
			if err == nil {
				t.Fatalf("got signal %+v and no error, want an error", got)
			}
			for _, s := range []error{ErrUnavailable, ErrForbidden} {
				if is, want := errors.Is(err, s), s == tc.want; is != want {
					t.Errorf("got errors.Is(err, %v) = %t, want %t (err: %v)", s, is, want, err)
				}
			}
			// The domain's sentinel decides the retry for callers outside arm.
			if is, want := errors.Is(err, fleet.ErrUnavailable), tc.want == ErrUnavailable; is != want {
				t.Errorf("got errors.Is(err, fleet.ErrUnavailable) = %t, want %t (err: %v)", is, want, err)
			}
			if !strings.HasPrefix(err.Error(), "read "+id.String()+": ") {
				t.Errorf("got error %q, want it to name the read", err)
			}
			var re *azcore.ResponseError
			if errors.As(err, &re) != (tc.status != 0) || (re != nil && re.StatusCode != tc.status) {
				t.Errorf("got response error %v, want status %d kept in the chain", re, tc.status)
			}
			if n := f.gets.Load(); tc.wantGets >= 0 && n != tc.wantGets {
				t.Errorf("got %d cluster GETs, want %d", n, tc.wantGets)
			}
		})
	}
}

func TestReadDeleted(t *testing.T) {
	for _, code := range []string{"ResourceNotFound", "ResourceGroupNotFound"} {
		t.Run(code, func(t *testing.T) {
			f := newFakeARM(t)
			f.getFail = func(int32) (int, string) { return http.StatusNotFound, code }
			id := cluster(t, "rg-platform-weu", "aks-prod-weu")
			got, err := f.reader("").Read(context.Background(), id)
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			want := fleet.Signal{
				ID: got.ID, Type: fleet.TypeARMRead, Source: id.ResourceID(), Subject: id.ResourceID(),
				Time: readAt, Cluster: id, Kind: fleet.KindClusterDeleted,
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("signal (-want +got):\n%s", diff)
			}
			if !strings.HasPrefix(got.ID, "arm-") {
				t.Errorf("got ID %q, want the arm- scheme", got.ID)
			}
		})
	}
}

func TestReadPoolGone(t *testing.T) {
	f := newFakeARM(t)
	f.profileFail["gpu"] = http.StatusNotFound
	got, err := f.reader("").Read(context.Background(), cluster(t, "rg-platform-weu", "aks-prod-weu"))
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	latest := map[string]string{}
	for _, p := range got.Profile.Pools {
		latest[p.Name] = p.LatestNodeImageVersion
	}
	want := map[string]string{
		"gpu":     "",
		"system":  "AKSUbuntu-2204gen2containerd-202411.12.0",
		"userazl": "AKSAzureLinux-V3gen2-202609.22.0",
		"win22":   "AKSWindows-2022-containerd-20348.3807.250612",
	}
	if diff := cmp.Diff(want, latest); diff != "" {
		t.Errorf("latest images (-want +got):\n%s", diff)
	}
}

func TestSignalID(t *testing.T) {
	id := cluster(t, "rg-platform-weu", "aks-prod-weu")
	read := func(t *testing.T, at time.Time, change func(*fakeARM)) string {
		t.Helper()
		f := newFakeARM(t)
		change(f)
		r := f.reader("")
		r.now = func() time.Time { return at }
		s, err := r.Read(context.Background(), id)
		if err != nil {
			t.Fatalf("Read: %v", err)
		}
		return s.ID
	}
	same := func(*fakeARM) {}
	retagged := func(f *fakeARM) {
		mc := f.clusters["aks-prod-weu"]
		v := "staging"
		mc.Tags = map[string]*string{"env": &v}
		f.clusters["aks-prod-weu"] = mc
	}
	newImage := func(f *fakeARM) {
		p := f.profiles["gpu"]
		props := *p.Properties
		v := "AKSUbuntu-2204gen2containerd-202411.19.0"
		props.LatestNodeImageVersion = &v
		p.Properties = &props
		f.profiles["gpu"] = p
	}
	gone := func(f *fakeARM) { delete(f.clusters, "aks-prod-weu") }
	base := read(t, readAt, same)

	tests := []struct {
		name   string
		at     time.Time
		change func(*fakeARM)
		equal  bool
	}{
		{name: "same time and content", at: readAt, change: same, equal: true},
		{name: "same instant in another zone", at: readAt.In(time.FixedZone("EST", -5*3600)), change: same, equal: true},
		{name: "later read", at: readAt.Add(time.Nanosecond), change: same},
		{name: "tags differ", at: readAt, change: retagged},
		{name: "latest image differs", at: readAt, change: newImage},
		{name: "cluster deleted", at: readAt, change: gone},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := read(t, tc.at, tc.change)
			if (got == base) != tc.equal {
				t.Errorf("got ID %s against %s: equal %t, want %t", got, base, got == base, tc.equal)
			}
		})
	}
}

func TestReadConcurrent(t *testing.T) {
	const subscriptions, perSubscription = 8, 3
	f := newFakeARM(t)
	mixed := f.clusters["aks-prod-weu"]
	var ids []fleet.ClusterID
	for s := range subscriptions {
		for c := range perSubscription {
			name := fmt.Sprintf("aks-%d-%d", s, c)
			mc := mixed
			loc := "loc-" + name
			mc.Location = &loc
			f.clusters[name] = mc
			f.maintenance[name] = f.maintenance["aks-prod-weu"]
			id, err := fleet.NewClusterID(fmt.Sprintf("%08x-0000-4000-8000-000000000000", s), "rg", name)
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
		}
	}
	r := f.reader("")
	got := make([]fleet.Signal, len(ids))
	errs := make([]error, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Go(func() { got[i], errs[i] = r.Read(context.Background(), id) })
	}
	wg.Wait()
	for i, id := range ids {
		if errs[i] != nil {
			t.Errorf("Read %s: %v", id, errs[i])
			continue
		}
		if got[i].Cluster != id || got[i].Source != id.ResourceID() {
			t.Errorf("got cluster %v source %s, want %v", got[i].Cluster, got[i].Source, id)
		}
		if want := "loc-" + id.Name; got[i].Profile.Location != want {
			t.Errorf("got location %q for %s, want %q", got[i].Profile.Location, id, want)
		}
	}
	if n := r.clients.Len(); n != subscriptions {
		t.Errorf("got %d client factories, want one per subscription (%d)", n, subscriptions)
	}
}

func TestClientOptions(t *testing.T) {
	transport := wire{}
	tests := []struct {
		name string
		in   *azarm.ClientOptions
		want azarm.ClientOptions
	}{
		{name: "nil takes the defaults", in: nil, want: DefaultClientOptions()},
		{
			name: "zero fields take the defaults, set ones stay",
			in: &azarm.ClientOptions{ClientOptions: azcore.ClientOptions{
				Transport: transport,
				Retry:     policy.RetryOptions{MaxRetries: -1},
				Telemetry: policy.TelemetryOptions{ApplicationID: "bench"},
			}},
			want: azarm.ClientOptions{
				ClientOptions: azcore.ClientOptions{
					Transport: transport,
					Retry: policy.RetryOptions{
						MaxRetries: -1, RetryDelay: 2 * time.Second, MaxRetryDelay: time.Minute, TryTimeout: 30 * time.Second,
					},
					Telemetry: policy.TelemetryOptions{ApplicationID: "bench"},
				},
				DisableRPRegistration: true,
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// The options hold a tracing provider with unexported fields:
			// compare what withDefaults decides.
			type view struct {
				Transport  policy.Transporter
				Retry      policy.RetryOptions
				Telemetry  policy.TelemetryOptions
				DisableRPR bool
			}
			see := func(o azarm.ClientOptions) view {
				return view{o.Transport, o.Retry, o.Telemetry, o.DisableRPRegistration}
			}
			got := withDefaults(tc.in)
			if diff := cmp.Diff(see(tc.want), see(got), cmp.Comparer(func(a, b policy.Transporter) bool { return a == b })); diff != "" {
				t.Errorf("options (-want +got):\n%s", diff)
			}
		})
	}
}
