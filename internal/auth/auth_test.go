package auth_test

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/upgradewatch/upgradewatch/internal/auth"
	"github.com/upgradewatch/upgradewatch/internal/auth/authtest"
)

const (
	akspath  = "/72f988bf-86f1-41af-91ab-2d7cd011db47/5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9/"
	aksJWKS  = akspath + "openid/v1/jwks"
	saClaims = "testdata/sa-token-node-reporter.json"
)

var t0 = time.Date(2026, 10, 5, 8, 0, 0, 0, time.UTC)

// testClock is a settable clock.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) advance(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.t = c.t.Add(d) }

func clusterVerifier(is *authtest.Issuer, clk *testClock) *auth.ClusterTokens {
	return auth.NewClusterTokens(auth.DefaultAudience, auth.DefaultSubject, auth.Options{Transport: is.Transport(), Now: clk.now})
}

func with(c map[string]any, kv ...any) map[string]any {
	out := make(map[string]any, len(c))
	for k, v := range c {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
		} else {
			out[kv[i].(string)] = kv[i+1]
		}
	}
	return out
}

// A token of cluster A verifies against A's issuer and nothing else; each
// way a token can be wrong is refused as unauthorized.
func TestClusterTokens(t *testing.T) {
	a := authtest.New(t, akspath, aksJWKS)
	b := authtest.New(t, akspath, aksJWKS) // same path, another server and key: another cluster
	clk := &testClock{t: t0}
	good := authtest.Claims(t, saClaims, a.URL, t0, time.Hour)
	unsigned := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." +
		base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"`+a.URL+`","sub":"`+auth.DefaultSubject+`","aud":"upgradewatch"}`)) + "."

	cases := []struct {
		name     string
		issuer   string // the cluster's recorded issuer
		token    string
		mismatch bool // want an *IssuerMismatchError
		want     string
	}{
		{"A's token for A", a.URL, a.Sign(t, good), false, ""},
		{"A's token for B", b.URL, a.Sign(t, good), true, "not by the cluster's OIDC issuer"},
		{"B's key claiming A", a.URL, b.Sign(t, good), false, "signature"},
		{"forged signature", a.URL, a.Forge(t, good), false, "signature"},
		{"expired", a.URL, a.Sign(t, with(good, "exp", t0.Add(-2*time.Minute).Unix())), false, "expired"},
		{"expired within the skew", a.URL, a.Sign(t, with(good, "exp", t0.Add(-30*time.Second).Unix())), false, ""},
		{"not yet valid", a.URL, a.Sign(t, with(good, "nbf", t0.Add(10*time.Minute).Unix())), false, "nbf"},
		{"no expiry", a.URL, a.Sign(t, with(good, "exp", nil)), false, "expired"},
		{"wrong audience", a.URL, a.Sign(t, with(good, "aud", []string{"https://kubernetes.default.svc"})), false, "audience"},
		{"wrong subject", a.URL, a.Sign(t, with(good, "sub", "system:serviceaccount:kube-system:default")), false, "subject"},
		{"unknown issuer", a.URL, a.Sign(t, with(good, "iss", "https://eastus.oic.prod-aks.azure.com/x/y/")), true, "not by the cluster's"},
		{"unsigned", a.URL, unsigned, false, "not a signed JWT"},
		{"not a JWT", a.URL, "c2VjcmV0", false, "not a signed JWT"},
		{"no token", a.URL, "", false, "no bearer token"},
		{"plain http issuer", "http://127.0.0.1:1/x/", a.Sign(t, with(good, "iss", "http://127.0.0.1:1/x/")), false, "not an https URL"},
	}
	v := auth.NewClusterTokens(auth.DefaultAudience, auth.DefaultSubject, auth.Options{Transport: authtest.Transport(a, b), Now: clk.now})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := v.VerifyClusterToken(context.Background(), tc.issuer, tc.token)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("got %v, want accepted", err)
				}
				return
			}
			if !errors.Is(err, auth.ErrUnauthorized) || errors.Is(err, auth.ErrUnavailable) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want unauthorized mentioning %q", err, tc.want)
			}
			var mm *auth.IssuerMismatchError
			if errors.As(err, &mm) != tc.mismatch {
				t.Errorf("IssuerMismatchError %v, want %v", errors.As(err, &mm), tc.mismatch)
			}
			if strings.Contains(err.Error(), tc.token) && tc.token != "" {
				t.Errorf("the error carries the token")
			}
		})
	}
	if n := b.KeyFetches(); n != 0 {
		t.Errorf("B's keys fetched %d times; a token naming another issuer must not cause a fetch", n)
	}
}

// A key set that cannot be fetched is transient (ErrUnavailable), not a
// refusal; once it answers again the same token passes.
func TestClusterTokensKeysUnavailable(t *testing.T) {
	a := authtest.New(t, akspath, aksJWKS)
	clk := &testClock{t: t0}
	v := clusterVerifier(a, clk)
	tok := a.Sign(t, authtest.Claims(t, saClaims, a.URL, t0, time.Hour))

	a.FailKeys(http.StatusInternalServerError)
	err := v.VerifyClusterToken(context.Background(), a.URL, tok)
	if !errors.Is(err, auth.ErrUnavailable) || errors.Is(err, auth.ErrUnauthorized) {
		t.Fatalf("keys failing: got %v, want ErrUnavailable only", err)
	}
	// Failures are not retried at every request.
	fetches := a.KeyFetches()
	if err := v.VerifyClusterToken(context.Background(), a.URL, tok); !errors.Is(err, auth.ErrUnavailable) || a.KeyFetches() != fetches {
		t.Errorf("second try at once: %v after %d fetches (was %d), want the cached failure", err, a.KeyFetches(), fetches)
	}
	a.FailKeys(0)
	clk.advance(20 * time.Second)
	if err := v.VerifyClusterToken(context.Background(), a.URL, tok); err != nil {
		t.Fatalf("keys back: %v", err)
	}
}

// An issuer that is not reachable at all, or answers oversized documents, is
// unavailable too.
func TestClusterTokensDiscoveryFailures(t *testing.T) {
	big := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"issuer":"` + strings.Repeat("x", 300<<10) + `"}`))
	}))
	defer big.Close()
	dead := httptest.NewTLSServer(http.NotFoundHandler())
	dead.Close()
	redirect := httptest.NewTLSServer(http.RedirectHandler("https://elsewhere.example/", http.StatusFound))
	defer redirect.Close()

	for _, tc := range []struct {
		name string
		srv  *httptest.Server
	}{{"oversized", big}, {"unreachable", dead}, {"redirect", redirect}} {
		t.Run(tc.name, func(t *testing.T) {
			issuer := tc.srv.URL + "/x/"
			v := auth.NewClusterTokens(auth.DefaultAudience, auth.DefaultSubject, auth.Options{Transport: tc.srv.Client().Transport, Now: func() time.Time { return t0 }, Timeout: 2 * time.Second})
			signer := authtest.New(t, "/x/", "/x/keys")
			tok := signer.Sign(t, authtest.Claims(t, saClaims, issuer, t0, time.Hour))
			err := v.VerifyClusterToken(context.Background(), issuer, tok)
			if !errors.Is(err, auth.ErrUnavailable) {
				t.Fatalf("got %v, want ErrUnavailable", err)
			}
		})
	}
}

// Tokens with made-up key ids do not make every request fetch the key set,
// and concurrent first requests share one discovery and one fetch.
func TestClusterTokensFetchBounds(t *testing.T) {
	a := authtest.New(t, akspath, aksJWKS)
	clk := &testClock{t: t0}
	v := clusterVerifier(a, clk)
	good := authtest.Claims(t, saClaims, a.URL, t0, time.Hour)
	tok := a.Sign(t, good)

	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- v.VerifyClusterToken(context.Background(), a.URL, tok)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent verification: %v", err)
		}
	}
	if a.Discoveries() != 1 || a.KeyFetches() != 1 {
		t.Errorf("16 concurrent first requests: %d discoveries, %d key fetches; want 1 and 1", a.Discoveries(), a.KeyFetches())
	}
	for range 10 {
		if err := v.VerifyClusterToken(context.Background(), a.URL, a.Forge(t, good)); !errors.Is(err, auth.ErrUnauthorized) {
			t.Fatalf("forged: %v", err)
		}
	}
	if a.KeyFetches() != 1 {
		t.Errorf("10 forged tokens within a minute: %d key fetches, want 1", a.KeyFetches())
	}
	clk.advance(2 * time.Minute)
	_ = v.VerifyClusterToken(context.Background(), a.URL, a.Forge(t, good))
	if a.KeyFetches() != 2 {
		t.Errorf("a forged token after a minute: %d key fetches, want 2 (a rotated key is looked up)", a.KeyFetches())
	}
}

func TestBearer(t *testing.T) {
	for in, want := range map[string]string{
		"Bearer abc.def.ghi":   "abc.def.ghi",
		"bearer  abc.def.ghi ": "abc.def.ghi",
		"Basic dXNlcjpwYXNz":   "",
		"Bearer":               "",
		"":                     "",
	} {
		if got := auth.Bearer(in); got != want {
			t.Errorf("Bearer(%q) = %q, want %q", in, got, want)
		}
	}
}
