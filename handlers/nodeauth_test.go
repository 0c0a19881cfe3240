package handlers_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
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
	"github.com/upgradewatch/upgradewatch/internal/auth"
	"github.com/upgradewatch/upgradewatch/internal/auth/authtest"
	"github.com/upgradewatch/upgradewatch/internal/fleet"
	"github.com/upgradewatch/upgradewatch/internal/state"
	"github.com/upgradewatch/upgradewatch/internal/watch"
)

const (
	teamSub   = "2c7e9a41-5b3d-4f86-a0e2-8d1c6b4f9e73"
	teamRG    = "rg-teams-weu"
	teamsAPI  = "/api/clusters/" + teamSub + "/" + teamRG + "/"
	saFixture = "../internal/auth/testdata/sa-token-node-reporter.json"
)

// issuerARM is a fake ARM whose clusters report the OIDC issuer the test
// gives each (nil: no oidcIssuerProfile, as on a cluster without one).
type issuerARM struct {
	mu      sync.Mutex
	issuers map[string]*string // cluster name → issuer URL
	gets    map[string]int
	fx      armcontainerservice.ManagedCluster
}

func newIssuerARM(t *testing.T, issuers map[string]*string) *issuerARM {
	t.Helper()
	b, err := os.ReadFile("../internal/arm/testdata/cluster-mixed.json")
	if err != nil {
		t.Fatal(err)
	}
	a := &issuerARM{issuers: issuers, gets: map[string]int{}}
	if err := json.Unmarshal(b, &a.fx); err != nil {
		t.Fatal(err)
	}
	return a
}

func (a *issuerARM) getCount(name string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.gets[name]
}

func (a *issuerARM) reader(now func() time.Time) *arm.Reader {
	srv := &fake.ServerFactory{
		ManagedClustersServer: fake.ManagedClustersServer{
			Get: func(_ context.Context, _, name string, _ *armcontainerservice.ManagedClustersClientGetOptions) (resp azfake.Responder[armcontainerservice.ManagedClustersClientGetResponse], errResp azfake.ErrorResponder) {
				a.mu.Lock()
				defer a.mu.Unlock()
				a.gets[name]++
				b, _ := json.Marshal(a.fx)
				var mc armcontainerservice.ManagedCluster
				_ = json.Unmarshal(b, &mc)
				mc.Name = &name
				mc.Properties.OidcIssuerProfile = nil
				if is := a.issuers[name]; is != nil {
					enabled, url := true, *is
					mc.Properties.OidcIssuerProfile = &armcontainerservice.ManagedClusterOIDCIssuerProfile{Enabled: &enabled, IssuerURL: &url}
				}
				resp.SetResponse(http.StatusOK, armcontainerservice.ManagedClustersClientGetResponse{ManagedCluster: mc}, nil)
				return
			},
		},
		AgentPoolsServer: fake.AgentPoolsServer{
			GetUpgradeProfile: func(_ context.Context, _, _, _ string, _ *armcontainerservice.AgentPoolsClientGetUpgradeProfileOptions) (resp azfake.Responder[armcontainerservice.AgentPoolsClientGetUpgradeProfileResponse], errResp azfake.ErrorResponder) {
				resp.SetResponse(http.StatusOK, armcontainerservice.AgentPoolsClientGetUpgradeProfileResponse{}, nil)
				return
			},
		},
		MaintenanceConfigurationsServer: fake.MaintenanceConfigurationsServer{
			NewListByManagedClusterPager: func(_, _ string, _ *armcontainerservice.MaintenanceConfigurationsClientListByManagedClusterOptions) (resp azfake.PagerResponder[armcontainerservice.MaintenanceConfigurationsClientListByManagedClusterResponse]) {
				resp.AddPage(http.StatusOK, armcontainerservice.MaintenanceConfigurationsClientListByManagedClusterResponse{}, nil)
				return
			},
		},
	}
	return arm.NewReader(&azfake.TokenCredential{}, arm.Options{
		ClientOptions: &azarm.ClientOptions{ClientOptions: azcore.ClientOptions{
			Transport: fake.NewServerFactoryTransport(srv), Retry: policy.RetryOptions{MaxRetries: -1}}},
		Now: now,
	})
}

// postNodes posts a snapshot with an Authorization header (none when empty).
func postNodes(t *testing.T, srv *handlers.Server, cluster, authz string, body []byte) (*httptest.ResponseRecorder, map[string]any) {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, teamsAPI+cluster+"/nodes", strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, req)
	var out map[string]any
	_ = json.Unmarshal(rec.Body.Bytes(), &out)
	return rec, out
}

func nodeNames(t *testing.T, store *state.Store, cluster string) map[string]string {
	t.Helper()
	id, err := fleet.NewClusterID(teamSub, teamRG, cluster)
	if err != nil {
		t.Fatal(err)
	}
	_, nodes, err := store.Nodes(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, n := range nodes {
		if !n.Gone {
			out[n.Name] = n.NodeImageVersion
		}
	}
	return out
}

// Finding 2 of issue 12: one key wrote every cluster's nodes. Now a token
// issued by cluster A's OIDC issuer cannot write cluster B, whose issuer
// upgradewatch read from ARM; A's token still writes A; and each way a token
// can be wrong is refused, with B's node rows untouched on Azurite.
func TestNodeInventoryClusterTokens(t *testing.T) {
	t0 := time.Date(2026, 10, 5, 8, 0, 0, 0, time.UTC)
	clk := &clock{t: t0}
	issA := authtest.New(t, "/72f988bf-86f1-41af-91ab-2d7cd011db47/0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d/", "/openid/v1/jwks")
	issB := authtest.New(t, "/72f988bf-86f1-41af-91ab-2d7cd011db47/5d4c3b2a-1f0e-4d9c-8b7a-6f5e4d3c2b1a/", "/openid/v1/jwks")
	fakeARM := newIssuerARM(t, map[string]*string{"aks-team-a": &issA.URL, "aks-team-b": &issB.URL})
	store := newStore(t, state.Options{})
	srv := newServer(store, watch.Options{Enricher: fakeARM.reader(clk.now), EnrichTimeout: 10 * time.Second}, handlers.Options{Now: clk.now,
		NodeTokens: auth.NewClusterTokens(auth.DefaultAudience, auth.DefaultSubject, auth.Options{Transport: authtest.Transport(issA, issB), Now: clk.now})})
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })

	claimsA := authtest.Claims(t, saFixture, issA.URL, t0, time.Hour)
	claimsB := authtest.Claims(t, saFixture, issB.URL, t0, time.Hour)
	tokenA, tokenB := "Bearer "+issA.Sign(t, claimsA), "Bearer "+issB.Sign(t, claimsB)
	snapA, snapB := readFixture(t, "nodeauth/nodes-team-a.json"), readFixture(t, "nodeauth/nodes-team-b.json")

	// B's issuer is not known before upgradewatch read B from ARM: refused,
	// and the read is asked for, after which B's reporter gets through.
	rec, res := postNodes(t, srv, "aks-team-b", tokenB, snapB)
	if rec.Code != http.StatusForbidden || !strings.Contains(res["error"].(string), "not known yet") {
		t.Fatalf("B before any ARM read: %d %v, want 403 naming the unknown issuer", rec.Code, res)
	}
	waitIdle(t, srv)
	if fakeARM.getCount("aks-team-b") != 1 {
		t.Fatalf("ARM reads of B after the refusal: %d, want 1", fakeARM.getCount("aks-team-b"))
	}
	if rec, res = postNodes(t, srv, "aks-team-b", tokenB, snapB); rec.Code != http.StatusOK || res["nodes"] != float64(3) {
		t.Fatalf("B's token to B: %d %v", rec.Code, res)
	}
	if code, res := serve(t, srv, http.MethodPost, teamsAPI+"aks-team-a/refresh", nil); code != http.StatusOK {
		t.Fatalf("refresh A: %d %v", code, res)
	}
	wantB := nodeNames(t, store, "aks-team-b")
	if len(wantB) != 3 {
		t.Fatalf("B's nodes %v, want 3", wantB)
	}

	// A's token posting A's one node to B's route: refused, B unchanged. It
	// asks ARM about B's issuer again (B may have been recreated), but no
	// more than once in five minutes.
	clk.set(t0.Add(6 * time.Minute))
	readsB := fakeARM.getCount("aks-team-b")
	for range 2 {
		rec, res = postNodes(t, srv, "aks-team-b", tokenA, snapA)
		if rec.Code != http.StatusUnauthorized || !strings.Contains(res["error"].(string), "not by the cluster's OIDC issuer") {
			t.Fatalf("A's token to B: %d %v, want 401", rec.Code, res)
		}
	}
	waitIdle(t, srv)
	if got := fakeARM.getCount("aks-team-b") - readsB; got != 1 {
		t.Errorf("two refused cross-cluster posts caused %d ARM reads of B, want 1 (rate-limited)", got)
	}
	if got := nodeNames(t, store, "aks-team-b"); !equalMaps(got, wantB) {
		t.Fatalf("B's nodes after A's post: %v, want %v", got, wantB)
	}
	rejs, err := store.Rejections(context.Background(), t0)
	if err != nil {
		t.Fatal(err)
	}
	var recorded bool
	for _, r := range rejs {
		if r.Function == handlers.FunctionNodeInventory && strings.Contains(r.Reason, "authentication") &&
			strings.Contains(r.Source, "aks-team-b") && strings.Contains(r.Body, issA.URL) && !strings.Contains(r.Body, tokenA[7:]) {
			recorded = true
		}
	}
	if !recorded {
		t.Errorf("the cross-cluster attempt is not in Rejected with A's issuer: %+v", rejs)
	}

	// A's token to A is accepted.
	if rec, res = postNodes(t, srv, "aks-team-a", tokenA, snapA); rec.Code != http.StatusOK || res["result"] != "applied" {
		t.Fatalf("A's token to A: %d %v", rec.Code, res)
	}

	// Every other wrong token, to B.
	for _, tc := range []struct {
		name, authz, want string
	}{
		{"no token", "", "no bearer token"},
		{"basic auth", "Basic dXBncmFkZXdhdGNoOmtleQ==", "no bearer token"},
		{"expired", "Bearer " + issB.Sign(t, withClaim(claimsB, "exp", t0.Add(-10*time.Minute).Unix())), "expired"},
		{"wrong audience", "Bearer " + issB.Sign(t, withClaim(claimsB, "aud", []string{"https://kubernetes.default.svc.cluster.local"})), "audience"},
		{"wrong subject", "Bearer " + issB.Sign(t, withClaim(claimsB, "sub", "system:serviceaccount:default:default")), "subject"},
		{"bad signature", "Bearer " + issB.Forge(t, claimsB), "signature"},
		{"unknown issuer", "Bearer " + issB.Sign(t, withClaim(claimsB, "iss", "https://eastus.oic.prod-aks.azure.com/x/y/")), "not by the cluster's OIDC issuer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec, res := postNodes(t, srv, "aks-team-b", tc.authz, snapA)
			if rec.Code != http.StatusUnauthorized || !strings.Contains(res["error"].(string), tc.want) {
				t.Errorf("got %d %v, want 401 mentioning %q", rec.Code, res, tc.want)
			}
			if rec.Header().Get("WWW-Authenticate") == "" {
				t.Errorf("no WWW-Authenticate header")
			}
		})
	}
	waitIdle(t, srv)
	if got := nodeNames(t, store, "aks-team-b"); !equalMaps(got, wantB) {
		t.Errorf("B's nodes after the refused posts: %v, want %v", got, wantB)
	}

	// The finding as it was, and still is in key mode (UPGRADEWATCH_NODE_AUTH=key,
	// local development only): the function key alone lets A's one node
	// replace B's three.
	keyOnly := newServer(store, watch.Options{}, handlers.Options{Now: clk.now})
	if rec, res = postNodes(t, keyOnly, "aks-team-b", "", snapA); rec.Code != http.StatusOK {
		t.Fatalf("key mode: %d %v", rec.Code, res)
	}
	if got := nodeNames(t, store, "aks-team-b"); len(got) != 1 || got["aks-system-58392017-vmss000000"] == "" {
		t.Errorf("key mode: B's nodes %v, want A's one node (the finding reproduced)", got)
	}
}

// An issuer whose keys cannot be fetched answers 503 (the reporter retries),
// not 401; a cluster without an OIDC issuer is refused with what to do.
func TestNodeInventoryIssuerFailures(t *testing.T) {
	t0 := time.Date(2026, 10, 5, 8, 0, 0, 0, time.UTC)
	clk := &clock{t: t0}
	issC := authtest.New(t, "/72f988bf-86f1-41af-91ab-2d7cd011db47/9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a/", "/openid/v1/jwks")
	fakeARM := newIssuerARM(t, map[string]*string{"aks-team-c": &issC.URL, "aks-team-d": nil})
	store := newStore(t, state.Options{})
	srv := newServer(store, watch.Options{Enricher: fakeARM.reader(clk.now), EnrichTimeout: 10 * time.Second}, handlers.Options{Now: clk.now,
		NodeTokens: auth.NewClusterTokens(auth.DefaultAudience, auth.DefaultSubject, auth.Options{Transport: authtest.Transport(issC), Now: clk.now})})
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	for _, name := range []string{"aks-team-c", "aks-team-d"} {
		if code, res := serve(t, srv, http.MethodPost, teamsAPI+name+"/refresh", nil); code != http.StatusOK {
			t.Fatalf("refresh %s: %d %v", name, code, res)
		}
	}
	tokenC := "Bearer " + issC.Sign(t, authtest.Claims(t, saFixture, issC.URL, t0, time.Hour))
	snap := readFixture(t, "nodeauth/nodes-team-b.json")

	issC.FailKeys(http.StatusInternalServerError)
	rec, res := postNodes(t, srv, "aks-team-c", tokenC, snap)
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" {
		t.Fatalf("keys failing: %d %v (Retry-After %q), want 503 with Retry-After", rec.Code, res, rec.Header().Get("Retry-After"))
	}
	if n := len(nodeNames(t, store, "aks-team-c")); n != 0 {
		t.Errorf("%d nodes stored while the token could not be verified", n)
	}
	issC.FailKeys(0)
	clk.set(t0.Add(30 * time.Second))
	if rec, res = postNodes(t, srv, "aks-team-c", tokenC, snap); rec.Code != http.StatusOK {
		t.Fatalf("keys back: %d %v", rec.Code, res)
	}

	rec, res = postNodes(t, srv, "aks-team-d", tokenC, snap)
	if rec.Code != http.StatusForbidden || !strings.Contains(res["error"].(string), "--enable-oidc-issuer") {
		t.Errorf("cluster without an issuer: %d %v, want 403 saying how to enable it", rec.Code, res)
	}
}

func withClaim(c map[string]any, k string, v any) map[string]any {
	out := make(map[string]any, len(c))
	for key, val := range c {
		out[key] = val
	}
	out[k] = v
	return out
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
