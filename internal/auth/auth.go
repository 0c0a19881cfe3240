// Package auth verifies the bearer tokens callers present besides the
// function key, so that holding the key alone is not enough:
//
//   - ClusterTokens: a node reporter's projected service-account token. Its
//     issuer is the cluster's own OIDC issuer, so a token minted in cluster A
//     cannot pass for cluster B, whose issuer upgradewatch learned from ARM.
//   - EntraTokens: the Entra ID token an Azure Monitor action group's secure
//     webhook sends with an activity-log alert.
//
// Discovery, signature and claim checks are go-oidc's. This package fetches
// the issuers' discovery documents and keys over https only, with timeouts and
// bounded response sizes, caches them per issuer, and sorts failures for the
// caller's retry policy: a token that is not valid is ErrUnauthorized (do not
// retry), an issuer whose keys could not be fetched is ErrUnavailable (try
// again later). Tokens and keys are never logged or put into errors.
package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"
)

// Errors a verification reports; callers decide with errors.Is.
var (
	// ErrUnauthorized: the token is missing, malformed, expired, signed by
	// another key, issued by another issuer or for another audience or
	// subject. Sending it again cannot help.
	ErrUnauthorized = errors.New("unauthorized")
	// ErrUnavailable: the issuer's discovery document or keys could not be
	// fetched (network, timeout, non-200, oversized or unreadable answer).
	// The token may be fine; try again later.
	ErrUnavailable = errors.New("token issuer unavailable")
)

// Options configure how issuers are reached and tokens are timed. The zero
// value is usable.
type Options struct {
	// Transport carries the https requests to issuers (tests: a local TLS
	// server's); http.DefaultTransport when nil. Plain http is always refused.
	Transport http.RoundTripper
	// Timeout bounds one discovery or key fetch (default 10s).
	Timeout time.Duration
	// Now is the clock expiry is checked against; time.Now when nil.
	Now func() time.Time
	// Skew is how long after its expiry a token is still accepted, for clocks
	// that disagree (default 1m). go-oidc allows 5 minutes on nbf.
	Skew time.Duration
	// MaxIssuers bounds the issuers whose keys are cached (default 4096);
	// beyond it the least recently used is forgotten and fetched again if needed.
	MaxIssuers int
}

// Bounds on what an issuer may send: a discovery document is about 1 KiB, a
// key set a few KiB (Entra's, with certificate chains, some 10 KiB).
const (
	maxResponseBytes = 256 << 10
	// minKeyRefresh stops a token with an unknown key id from making every
	// request fetch the key set again; rotation publishes keys well ahead.
	minKeyRefresh = time.Minute
	// discoveryTTL is how long an issuer's key-set location is trusted;
	// failedRetry how soon a failed discovery is tried again.
	discoveryTTL = 24 * time.Hour
	failedRetry  = 15 * time.Second
)

func (o Options) withDefaults() Options {
	if o.Transport == nil {
		o.Transport = http.DefaultTransport
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Skew <= 0 {
		o.Skew = time.Minute
	}
	if o.MaxIssuers <= 0 {
		o.MaxIssuers = 4096
	}
	return o
}

// newClient is the client issuers are fetched with: https only, bounded in
// time and size, and never following a redirect (a key set must come from
// where the issuer's own document says).
func newClient(o Options) *http.Client {
	return &http.Client{
		Transport:     guard{next: o.Transport},
		Timeout:       o.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// guard refuses plain http and cuts bodies at maxResponseBytes.
type guard struct{ next http.RoundTripper }

func (g guard) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Scheme != "https" {
		return nil, fmt.Errorf("refusing to fetch %s://%s: issuers are reached over https only", r.URL.Scheme, r.URL.Host)
	}
	resp, err := g.next.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	resp.Body = &limitedBody{rc: resp.Body, left: maxResponseBytes}
	return resp, nil
}

// limitedBody fails, rather than truncates, a body over its limit: a cut
// document would decode into something else.
type limitedBody struct {
	rc   io.ReadCloser
	left int64
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		// One byte more tells an exact fit from an overflow.
		var one [1]byte
		n, err := b.rc.Read(one[:])
		if n > 0 {
			return 0, fmt.Errorf("issuer response larger than %d bytes", maxResponseBytes)
		}
		return 0, err
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *limitedBody) Close() error { return b.rc.Close() }

// unverified returns the claims of a token without checking anything, for
// messages and for the early refusal of a token from another issuer. Never
// trust what it returns.
func unverified(raw string) (tokenClaims, error) {
	var c tokenClaims
	jws, err := jose.ParseSignedCompact(raw, []jose.SignatureAlgorithm{jose.RS256, jose.RS384, jose.RS512, jose.ES256, jose.ES384, jose.ES512, jose.PS256, jose.PS384, jose.PS512, jose.EdDSA})
	if err != nil {
		return c, fmt.Errorf("%w: not a signed JWT", ErrUnauthorized)
	}
	if err := json.Unmarshal(jws.UnsafePayloadWithoutVerification(), &c); err != nil {
		return c, fmt.Errorf("%w: token claims are not a JSON object", ErrUnauthorized)
	}
	return c, nil
}

// tokenClaims are the claims this package reads besides go-oidc's.
type tokenClaims struct {
	Issuer string `json:"iss"`
	AppID  string `json:"appid"` // Entra v1 access tokens: the calling application
	AZP    string `json:"azp"`   // Entra v2 access tokens: the same
	TID    string `json:"tid"`
}

// Bearer returns the token of an `Authorization: Bearer <token>` header, or ""
// when there is none. The scheme is case-insensitive (RFC 7235).
func Bearer(header string) string {
	scheme, token, ok := strings.Cut(strings.TrimSpace(header), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(token)
}

// verifyWith runs go-oidc's verification of raw against ks with cfg and
// sorts its error. go-oidc flattens a key-set error into its message, so a
// fetch failure is passed back beside it (see keySet.VerifySignature).
func verifyWith(ctx context.Context, issuer string, ks *keySet, cfg *oidc.Config, raw string) (*oidc.IDToken, error) {
	var failed fetchFailure
	ctx = context.WithValue(ctx, fetchFailureKey{}, &failed)
	tok, err := oidc.NewVerifier(issuer, ks, cfg).Verify(ctx, raw)
	switch {
	case err == nil:
		return tok, nil
	case failed.err != nil:
		return nil, failed.err
	}
	var expired *oidc.TokenExpiredError
	if errors.As(err, &expired) {
		return nil, fmt.Errorf("%w: token expired at %s", ErrUnauthorized, expired.Expiry.UTC().Format(time.RFC3339))
	}
	return nil, fmt.Errorf("%w: %s", ErrUnauthorized, strings.TrimPrefix(err.Error(), "oidc: "))
}
