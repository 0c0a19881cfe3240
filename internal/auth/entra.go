package auth

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
)

// ActionGroupsAppID is the application id of "AZNS AAD Webhook", the
// first-party application Azure Monitor action groups take their secure
// webhook tokens as. Its service principal is given an app role on the
// webhook's app registration (Azure Monitor, "Configure authentication for
// Secure webhook"), and the token's appid (v1) or azp (v2) claim names it.
const ActionGroupsAppID = "461e8683-5575-4561-ac7f-899cc907d62a"

// Public-cloud Entra ID endpoints: where tenants' discovery documents are,
// and the host of v1 access tokens' issuer.
const (
	DefaultAuthority    = "https://login.microsoftonline.com"
	DefaultV1IssuerBase = "https://sts.windows.net"
)

var guidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// EntraConfig names the app registration a secure webhook's tokens are for.
type EntraConfig struct {
	// TenantID is the tenant of the app registration, a GUID (a domain name
	// would not match the issuer the tokens carry).
	TenantID string
	// Audiences are the values the token's aud may have: the app
	// registration's application ID URI and/or its client id (v1 tokens carry
	// the one the action group asked for, v2 tokens the client id).
	Audiences []string
	// CallerAppID is the application the token must have been issued to
	// (appid or azp); ActionGroupsAppID when empty.
	CallerAppID string
	// Authority and V1IssuerBase are the Entra endpoints (DefaultAuthority,
	// DefaultV1IssuerBase when empty); tests point both at a local issuer.
	Authority    string
	V1IssuerBase string
}

// EntraTokens verifies Azure Monitor action groups' secure webhook tokens. It
// is safe for concurrent use.
type EntraTokens struct {
	is        *issuers
	tenant    string
	discovery string   // the v2 issuer, whose document lists the tenant's keys
	issuers   []string // v1 and v2 issuers of the tenant
	audiences []string
	caller    string
}

// NewEntraTokens checks cfg and returns the verifier. Nothing is fetched until
// the first token arrives.
func NewEntraTokens(cfg EntraConfig, o Options) (*EntraTokens, error) {
	if !guidRE.MatchString(cfg.TenantID) {
		return nil, fmt.Errorf("tenant id %q is not a GUID", cfg.TenantID)
	}
	var auds []string
	for _, a := range cfg.Audiences {
		if a = strings.TrimSpace(a); a != "" {
			auds = append(auds, a)
		}
	}
	if len(auds) == 0 {
		return nil, errors.New("no audience: want the app registration's application ID URI or client id")
	}
	authority := strings.TrimSuffix(cmp.Or(cfg.Authority, DefaultAuthority), "/")
	v1 := strings.TrimSuffix(cmp.Or(cfg.V1IssuerBase, DefaultV1IssuerBase), "/")
	for _, u := range []string{authority, v1} {
		if p, err := url.Parse(u); err != nil || p.Scheme != "https" || p.Host == "" {
			return nil, fmt.Errorf("the Entra ID endpoint %q is not an https URL", u)
		}
	}
	tenant := strings.ToLower(cfg.TenantID)
	v2Issuer := authority + "/" + tenant + "/v2.0"
	return &EntraTokens{
		is:        newIssuers(o),
		tenant:    tenant,
		discovery: v2Issuer,
		issuers:   []string{v1 + "/" + tenant + "/", v2Issuer},
		audiences: auds,
		caller:    strings.ToLower(cmp.Or(cfg.CallerAppID, ActionGroupsAppID)),
	}, nil
}

// VerifyAlertToken checks that raw is an access token the tenant issued (v1
// or v2 issuer, signed by a key of the tenant's key set) for one of the
// audiences, to the action groups' application, and not expired. Errors wrap
// ErrUnauthorized or ErrUnavailable.
func (e *EntraTokens) VerifyAlertToken(ctx context.Context, raw string) error {
	if raw == "" {
		return fmt.Errorf("%w: no bearer token", ErrUnauthorized)
	}
	claims, err := unverified(raw)
	if err != nil {
		return err
	}
	if !slices.Contains(e.issuers, claims.Issuer) {
		return fmt.Errorf("%w: token issued by %q, not by tenant %s", ErrUnauthorized, claims.Issuer, e.tenant)
	}
	ks, err := e.is.keys(ctx, e.discovery)
	if err != nil {
		return err
	}
	now, skew := e.is.o.Now, e.is.o.Skew
	tok, err := verifyWith(ctx, claims.Issuer, ks, &oidc.Config{SkipClientIDCheck: true,
		Now: func() time.Time { return now().Add(-skew) }}, raw)
	if err != nil {
		return err
	}
	if !slices.ContainsFunc(tok.Audience, func(a string) bool { return slices.Contains(e.audiences, a) }) {
		return fmt.Errorf("%w: token audience %q is none of %q", ErrUnauthorized, tok.Audience, e.audiences)
	}
	var verified tokenClaims
	if err := tok.Claims(&verified); err != nil {
		return fmt.Errorf("%w: token claims: %v", ErrUnauthorized, err)
	}
	if caller := strings.ToLower(cmp.Or(verified.AppID, verified.AZP)); caller != e.caller {
		return fmt.Errorf("%w: token issued to application %q, not to Azure Monitor action groups (%s)", ErrUnauthorized, caller, e.caller)
	}
	if verified.TID != "" && !strings.EqualFold(verified.TID, e.tenant) {
		return fmt.Errorf("%w: token tenant %q is not %s", ErrUnauthorized, verified.TID, e.tenant)
	}
	return nil
}
