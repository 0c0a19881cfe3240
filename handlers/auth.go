package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/upgradewatch/upgradewatch/internal/auth"
	"github.com/upgradewatch/upgradewatch/internal/fleet"
	"github.com/upgradewatch/upgradewatch/internal/watch"
)

// ClusterTokenVerifier checks a node reporter's bearer token against the OIDC
// issuer of the cluster whose route it posts to (implemented by
// *auth.ClusterTokens). Errors wrap auth.ErrUnauthorized, as an
// *auth.IssuerMismatchError when the token names another issuer, or
// auth.ErrUnavailable (the issuer's keys could not be fetched: transient).
// Safe for concurrent use.
type ClusterTokenVerifier interface {
	VerifyClusterToken(ctx context.Context, issuer, token string) error
}

var _ ClusterTokenVerifier = (*auth.ClusterTokens)(nil)

// AlertTokenVerifier checks an action group's secure webhook token
// (implemented by *auth.EntraTokens). Errors wrap auth.ErrUnauthorized or
// auth.ErrUnavailable. Safe for concurrent use.
type AlertTokenVerifier interface {
	VerifyAlertToken(ctx context.Context, token string) error
}

var _ AlertTokenVerifier = (*auth.EntraTokens)(nil)

// issuerAskEvery bounds how often refused snapshots of one cluster ask ARM
// for its issuer again (per instance): a flood of refused posts must not
// become a flood of ARM reads, which share the subscription's quota.
const issuerAskEvery = 5 * time.Minute

// trust holds the token checks and what they asked of ARM.
type trust struct {
	nodes  ClusterTokenVerifier // nil: the function key alone (UPGRADEWATCH_NODE_AUTH=key)
	alerts AlertTokenVerifier   // nil: the function key alone

	mu    sync.Mutex
	asked map[string]time.Time // cluster key → last ARM read asked for its issuer
}

// authorizeNodes lets a NodeInventory request through only if its bearer
// token was issued by the OIDC issuer ARM reports for the route's cluster, so
// a credential held in one cluster cannot write another's nodes. Otherwise it
// answers (401, 403, or 503 when the issuer's keys could not be fetched) and
// returns false. The body is not read before this: a refused caller costs
// nothing.
func (s *Server) authorizeNodes(w http.ResponseWriter, r *http.Request, id fleet.ClusterID, l *slog.Logger) bool {
	if s.trust.nodes == nil {
		return true
	}
	ctx := r.Context()
	rej := watch.Rejection{Function: FunctionNodeInventory, InvocationID: r.Header.Get("X-Azure-Functions-InvocationId"),
		Source: id.ResourceID(), Subject: r.URL.Path, ReceivedAt: s.now(), Disposition: watch.DispositionRejected}
	token := auth.Bearer(r.Header.Get("Authorization"))
	if token == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="upgradewatch"`)
		s.refuseAuth(ctx, w, l, rej, "", http.StatusUnauthorized, "no bearer token: node-reporter sends its projected "+
			"service-account token as Authorization: Bearer (by hand: kubectl create token node-reporter -n upgradewatch --audience upgradewatch)")
		return false
	}
	c, err := s.app.Cluster(ctx, id)
	if err != nil && !errors.Is(err, fleet.ErrNotFound) {
		l.Error("could not read the cluster to check the node reporter's token", "error", err)
		unavailable(w)
		return false
	}
	switch {
	case c == nil || !c.OIDCIssuerKnown:
		s.refuseAuth(ctx, w, l, rej, "", http.StatusForbidden, "the OIDC issuer of "+id.ResourceID()+
			" is not known yet; upgradewatch learns it only from ARM, so the reporter's token cannot be verified."+s.askIssuer(id))
		return false
	case c.OIDCIssuer == "":
		s.refuseAuth(ctx, w, l, rej, "", http.StatusForbidden, "ARM reports no OIDC issuer for "+id.ResourceID()+
			": enable it (az aks update --enable-oidc-issuer), so the cluster can prove its node reporter."+s.askIssuer(id))
		return false
	}
	err = s.trust.nodes.VerifyClusterToken(ctx, c.OIDCIssuer, token)
	var mismatch *auth.IssuerMismatchError
	switch {
	case err == nil:
		return true
	case errors.Is(err, auth.ErrUnavailable):
		l.Warn("could not fetch the cluster's OIDC issuer keys; the reporter should retry", "issuer", c.OIDCIssuer, "error", err)
		w.Header().Set("Retry-After", "60")
		writeJSON(w, http.StatusServiceUnavailable, errorBody{Error: "could not fetch the signing keys of the cluster's OIDC issuer; try again"})
		return false
	case errors.As(err, &mismatch):
		// Another cluster's token, or this cluster was recreated with a
		// new issuer: only ARM can say which.
		w.Header().Set("WWW-Authenticate", `Bearer realm="upgradewatch", error="invalid_token"`)
		s.refuseAuth(ctx, w, l, rej, mismatch.Got, http.StatusUnauthorized, err.Error()+"."+s.askIssuer(id))
		return false
	default:
		w.Header().Set("WWW-Authenticate", `Bearer realm="upgradewatch", error="invalid_token"`)
		s.refuseAuth(ctx, w, l, rej, "", http.StatusUnauthorized, err.Error())
		return false
	}
}

// askIssuer asks for an ARM read of the cluster, at most every
// issuerAskEvery, and says so in words for the refusal.
func (s *Server) askIssuer(id fleet.ClusterID) string {
	if !s.app.Enriching() {
		return " ARM reads are switched off (UPGRADEWATCH_ENRICH=false), so it never will be."
	}
	key, now := id.Key(), s.now()
	t := &s.trust
	t.mu.Lock()
	last, seen := t.asked[key]
	ask := !seen || now.Sub(last) >= issuerAskEvery
	if ask {
		if len(t.asked) >= 10000 {
			clear(t.asked) // forgetting only allows one more read per cluster
		}
		t.asked[key] = now
	}
	t.mu.Unlock()
	if ask {
		s.app.RequestRefresh(id, "node reporter's issuer")
	}
	return " An ARM read of the cluster was requested; the next run can succeed."
}

// refuseAuth records an authentication refusal and answers status. The
// request body is never read, so the record holds who was refused and why:
// the route's cluster and, for a token of another issuer, the issuer it
// claims (unverified, for the audit). Never the token.
func (s *Server) refuseAuth(ctx context.Context, w http.ResponseWriter, l *slog.Logger, rej watch.Rejection, tokenIssuer string, status int, reason string) {
	rej.Reason = "authentication: " + reason
	rej.Body, _ = json.Marshal(struct {
		Refused     string `json:"refused"`
		Cluster     string `json:"cluster,omitempty"`
		TokenIssuer string `json:"tokenIssuer,omitempty"`
	}{"authentication", rej.Source, tokenIssuer})
	s.refuse(ctx, w, l, rej, status)
}

// authorizeAlert lets an activity-log alert through only with a valid secure
// webhook token, when one is required. Otherwise it records the alert with
// the reason and answers 401, or 503 when Entra's keys could not be fetched
// (action groups retry 503, not 401), and returns false.
func (s *Server) authorizeAlert(w http.ResponseWriter, r *http.Request, inv *invocation, body []byte) bool {
	if s.trust.alerts == nil {
		return true
	}
	err := s.trust.alerts.VerifyAlertToken(r.Context(), auth.Bearer(r.Header.Get("Authorization")))
	switch {
	case err == nil:
		return true
	case errors.Is(err, auth.ErrUnavailable):
		inv.log.Warn("could not fetch Entra ID's signing keys; the action group will retry", "error", err)
		w.Header().Set("Retry-After", "60")
		writeJSON(w, http.StatusServiceUnavailable, errorBody{Error: "could not fetch the keys to verify the secure webhook token; try again"})
		return false
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="upgradewatch", error="invalid_token"`)
	reason := "authentication: " + err.Error() + " (ActivityLogAlert requires the action group's secure webhook token)"
	if rerr := inv.reject(watch.Rejection{Body: body}, errors.New(reason), inv.log); rerr != nil {
		unavailable(w)
		return false
	}
	writeJSON(w, http.StatusUnauthorized, alertResult{Result: "rejected", Reason: reason})
	return false
}
