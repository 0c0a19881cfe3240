// Package authtest runs a local OpenID Connect issuer over TLS for tests: a
// discovery document, a key set and tokens signed with the issuer's own key,
// in the shapes AKS's OIDC issuer and Entra ID publish. Each Issuer has its
// own server and key, so two of them are two clusters that trust nothing of
// each other.
package authtest

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Issuer is a local OIDC issuer.
type Issuer struct {
	// URL is the issuer identifier: the server's URL plus the path given to New.
	URL    string
	server *httptest.Server
	key    *rsa.PrivateKey
	kid    string

	mu          sync.Mutex
	keysStatus  int // non-zero: the key set answers this status
	keyFetches  atomic.Int64
	discoveries atomic.Int64
}

// New starts an issuer whose identifier is the server's URL + path (AKS's
// look like "/<tenant>/<guid>/", with the slash; Entra's "/<tenant>/v2.0"),
// publishing its keys at the server's URL + jwksPath. It stops with the test.
func New(t testing.TB, path, jwksPath string) *Issuer {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	is := &Issuer{key: key, kid: rand.Text()[:16]}
	mux := http.NewServeMux()
	is.server = httptest.NewTLSServer(mux)
	t.Cleanup(is.server.Close)
	is.URL = is.server.URL + path
	mux.HandleFunc("GET "+strings.TrimSuffix(path, "/")+"/.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		is.discoveries.Add(1)
		writeJSON(w, map[string]any{
			"issuer":                                is.URL,
			"jwks_uri":                              is.server.URL + jwksPath,
			"response_types_supported":              []string{"id_token"},
			"subject_types_supported":               []string{"public"},
			"id_token_signing_alg_values_supported": []string{"RS256"},
		})
	})
	mux.HandleFunc("GET "+jwksPath, func(w http.ResponseWriter, _ *http.Request) {
		is.keyFetches.Add(1)
		is.mu.Lock()
		status := is.keysStatus
		is.mu.Unlock()
		if status != 0 {
			http.Error(w, http.StatusText(status), status)
			return
		}
		writeJSON(w, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &is.key.PublicKey, KeyID: is.kid, Algorithm: "RS256", Use: "sig"}}})
	})
	return is
}

// Transport trusts the issuer's TLS certificate (and only it).
func (is *Issuer) Transport() http.RoundTripper { return is.server.Client().Transport }

// Transport routes each request to the issuer whose server it names,
// trusting each one's certificate: several clusters' issuers at once.
func Transport(issuers ...*Issuer) http.RoundTripper { return multi(issuers) }

type multi []*Issuer

func (m multi) RoundTrip(r *http.Request) (*http.Response, error) {
	for _, is := range m {
		if strings.HasPrefix(r.URL.String(), is.server.URL+"/") {
			return is.Transport().RoundTrip(r)
		}
	}
	return nil, errors.New("no test issuer serves " + r.URL.Scheme + "://" + r.URL.Host)
}

// ServerURL is the base URL of the server (the issuer URL without its path).
func (is *Issuer) ServerURL() string { return is.server.URL }

// FailKeys makes the key set answer status (0: serve the keys again).
func (is *Issuer) FailKeys(status int) {
	is.mu.Lock()
	defer is.mu.Unlock()
	is.keysStatus = status
}

// KeyFetches is how often the key set was fetched; Discoveries how often the
// discovery document was.
func (is *Issuer) KeyFetches() int64  { return is.keyFetches.Load() }
func (is *Issuer) Discoveries() int64 { return is.discoveries.Load() }

// Sign returns claims as a compact JWT signed RS256 with the issuer's key.
func (is *Issuer) Sign(t testing.TB, claims map[string]any) string {
	t.Helper()
	return sign(t, is.key, is.kid, claims)
}

// Forge signs claims with a fresh key under the issuer's key id: a token that
// looks like the issuer's but is not.
func (is *Issuer) Forge(t testing.TB, claims map[string]any) string {
	t.Helper()
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return sign(t, other, is.kid, claims)
}

func sign(t testing.TB, key *rsa.PrivateKey, kid string, claims map[string]any) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", kid))
	if err != nil {
		t.Fatal(err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// Claims reads a claims fixture (JSON) and sets iss, and iat, nbf and exp
// around now (valid from a minute before now for ttl).
func Claims(t testing.TB, file, issuer string, now time.Time, ttl time.Duration) map[string]any {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	start := now.Add(-time.Minute)
	c["iss"], c["iat"], c["nbf"], c["exp"] = issuer, start.Unix(), start.Unix(), start.Add(ttl).Unix()
	return c
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
