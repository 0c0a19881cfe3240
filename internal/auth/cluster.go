package auth

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
)

// Defaults of the node reporter's token, as infra/k8s mounts it.
const (
	// DefaultAudience is the audience the reporter's projected token is
	// requested for; no other API accepts it, so a leaked one is good only here.
	DefaultAudience = "upgradewatch"
	// DefaultSubject is the reporter's service account, node-reporter in the
	// upgradewatch namespace.
	DefaultSubject = "system:serviceaccount:upgradewatch:node-reporter"
)

// IssuerMismatchError is a token issued by another issuer than the cluster's
// recorded one: another cluster's token, or the cluster was recreated and its
// issuer changed. It wraps ErrUnauthorized. Got is what the token claims,
// unverified: never trust it beyond a message or a reason to read ARM again.
type IssuerMismatchError struct {
	Want, Got string
}

func (e *IssuerMismatchError) Error() string {
	return fmt.Sprintf("token issued by %q, not by the cluster's OIDC issuer %q", e.Got, e.Want)
}

// Unwrap makes errors.Is(err, ErrUnauthorized) true.
func (e *IssuerMismatchError) Unwrap() error { return ErrUnauthorized }

// ClusterTokens verifies node reporters' projected service-account tokens
// against the OIDC issuer of the cluster they claim to be. It is safe for
// concurrent use; issuers' keys are cached.
type ClusterTokens struct {
	is       *issuers
	audience string
	subject  string
}

// NewClusterTokens returns a verifier that accepts tokens for audience whose
// subject is subject (system:serviceaccount:<namespace>:<name>).
func NewClusterTokens(audience, subject string, o Options) *ClusterTokens {
	return &ClusterTokens{is: newIssuers(o), audience: audience, subject: subject}
}

// VerifyClusterToken checks that raw was issued by issuer, the cluster's OIDC
// issuer URL as ARM reports it: the issuer exactly, a signature by one of the
// issuer's published keys, the audience, the subject, expiry (with the
// configured skew) and not-before. Errors wrap ErrUnauthorized (an
// *IssuerMismatchError when the token names another issuer) or ErrUnavailable
// (the issuer's keys could not be fetched).
func (c *ClusterTokens) VerifyClusterToken(ctx context.Context, issuer, raw string) error {
	if raw == "" {
		return fmt.Errorf("%w: no bearer token", ErrUnauthorized)
	}
	if !strings.HasPrefix(issuer, "https://") {
		return fmt.Errorf("%w: the cluster's OIDC issuer %q is not an https URL", ErrUnauthorized, issuer)
	}
	claims, err := unverified(raw)
	if err != nil {
		return err
	}
	// Refused before any fetch: a token naming another issuer must not make
	// upgradewatch fetch this cluster's keys, nor anyone else's.
	if claims.Issuer != issuer {
		return &IssuerMismatchError{Want: issuer, Got: claims.Issuer}
	}
	ks, err := c.is.keys(ctx, issuer)
	if err != nil {
		return err
	}
	now, skew := c.is.o.Now, c.is.o.Skew
	tok, err := verifyWith(ctx, issuer, ks, &oidc.Config{ClientID: c.audience,
		Now: func() time.Time { return now().Add(-skew) }}, raw)
	if err != nil {
		return err
	}
	if tok.Subject != c.subject {
		return fmt.Errorf("%w: token subject %q is not the node reporter's service account %q", ErrUnauthorized, tok.Subject, c.subject)
	}
	return nil
}
