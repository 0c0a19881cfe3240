package main

import (
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"

	"github.com/upgradewatch/upgradewatch/handlers"
	"github.com/upgradewatch/upgradewatch/internal/auth"
)

// Node snapshot authentication modes (UPGRADEWATCH_NODE_AUTH).
const (
	// NodeAuthOIDC: the function key and a token issued by the route's
	// cluster's own OIDC issuer.
	NodeAuthOIDC = "oidc"
	// NodeAuthKey: the function key alone; any holder writes any cluster's
	// nodes. Local development and the demo only.
	NodeAuthKey = "key"
)

// TrustConfig says how callers are authenticated beyond the function key the
// Functions host checks.
type TrustConfig struct {
	NodeAuth     string // UPGRADEWATCH_NODE_AUTH
	NodeAudience string // UPGRADEWATCH_NODE_TOKEN_AUDIENCE
	NodeSubject  string // UPGRADEWATCH_NODE_TOKEN_SUBJECT

	// The secure webhook's app registration; both empty: alerts are
	// trusted on the function key alone.
	AlertTenantID  string   // UPGRADEWATCH_ALERT_TENANT_ID
	AlertAudiences []string // UPGRADEWATCH_ALERT_AUDIENCE, comma-separated
}

var subjectRE = regexp.MustCompile(`^system:serviceaccount:[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?:[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$`)

// parseTrust reads the authentication settings, reporting every bad one.
func parseTrust(getenv func(string) string) (TrustConfig, error) {
	s := settings{getenv: getenv}
	t := TrustConfig{NodeAuth: s.choice("UPGRADEWATCH_NODE_AUTH", NodeAuthOIDC,
		"oidc (the cluster's service-account token) or key (the function key alone, local development only)", NodeAuthOIDC, NodeAuthKey),
		NodeAudience: auth.DefaultAudience, NodeSubject: auth.DefaultSubject}
	if v := getenv("UPGRADEWATCH_NODE_TOKEN_AUDIENCE"); strings.ContainsAny(v, " ,") {
		s.invalid("UPGRADEWATCH_NODE_TOKEN_AUDIENCE", v, "one audience")
	} else if v != "" {
		t.NodeAudience = v
	}
	if v := getenv("UPGRADEWATCH_NODE_TOKEN_SUBJECT"); v != "" && !subjectRE.MatchString(v) {
		s.invalid("UPGRADEWATCH_NODE_TOKEN_SUBJECT", v, "system:serviceaccount:<namespace>:<service account>")
	} else if v != "" {
		t.NodeSubject = v
	}
	t.AlertTenantID = strings.TrimSpace(getenv("UPGRADEWATCH_ALERT_TENANT_ID"))
	for _, a := range strings.Split(getenv("UPGRADEWATCH_ALERT_AUDIENCE"), ",") {
		if a = strings.TrimSpace(a); a != "" {
			t.AlertAudiences = append(t.AlertAudiences, a)
		}
	}
	switch {
	case (t.AlertTenantID == "") != (len(t.AlertAudiences) == 0):
		s.fail(errors.New("set both UPGRADEWATCH_ALERT_TENANT_ID and UPGRADEWATCH_ALERT_AUDIENCE for the secure webhook, or neither"))
	case t.AlertTenantID != "":
		// Checked now, so a typo stops the start instead of refusing every alert.
		if _, err := auth.NewEntraTokens(auth.EntraConfig{TenantID: t.AlertTenantID, Audiences: t.AlertAudiences}, auth.Options{}); err != nil {
			s.fail(fmt.Errorf("UPGRADEWATCH_ALERT_TENANT_ID / UPGRADEWATCH_ALERT_AUDIENCE: %w", err))
		}
	}
	return t, s.err()
}

// trustOptions sets the token verifiers the configuration asks for, and says
// at start what each input is trusted on.
// enriching says whether ARM reads are on: the issuers come from them.
func trustOptions(o *handlers.Options, t TrustConfig, enriching bool, log *slog.Logger) {
	switch {
	case t.NodeAuth == NodeAuthKey:
		log.Warn("node snapshots are trusted on the function key alone (UPGRADEWATCH_NODE_AUTH=key): whoever holds it can write any cluster's nodes; use it for local development and the demo only")
	default:
		o.NodeTokens = auth.NewClusterTokens(t.NodeAudience, t.NodeSubject, auth.Options{})
		if !enriching {
			log.Warn("node snapshots need the cluster's OIDC issuer, which only ARM reads provide, and ARM reads are off: every snapshot will be refused")
		}
	}
	if t.AlertTenantID == "" {
		log.Warn("activity-log alerts are trusted on the function key alone; set UPGRADEWATCH_ALERT_TENANT_ID and UPGRADEWATCH_ALERT_AUDIENCE to require the action group's secure webhook token")
		return
	}
	// parseTrust has checked the settings.
	v, _ := auth.NewEntraTokens(auth.EntraConfig{TenantID: t.AlertTenantID, Audiences: t.AlertAudiences}, auth.Options{})
	o.AlertTokens = v
}

// describe is the startup log's account of the authentication, without secrets.
func (t TrustConfig) describe() []any {
	node := "function key and the cluster's service-account token (" + t.NodeSubject + ", audience " + t.NodeAudience + ")"
	if t.NodeAuth == NodeAuthKey {
		node = "function key only"
	}
	alert := "function key only"
	if t.AlertTenantID != "" {
		alert = "function key and secure webhook token (tenant " + t.AlertTenantID + ")"
	}
	return []any{"node_auth", node, "alert_auth", alert}
}
