package main

import (
	"io"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/upgradewatch/upgradewatch/internal/azuritetest"
)

func TestParseTrust(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	c, err := parseTrust(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.NodeAuth != NodeAuthOIDC || c.NodeAudience != "upgradewatch" || c.NodeSubject != "system:serviceaccount:upgradewatch:node-reporter" ||
		c.AlertTenantID != "" || c.AlertAudiences != nil {
		t.Errorf("defaults: %+v", c)
	}
	c, err = parseTrust(env(map[string]string{"UPGRADEWATCH_NODE_AUTH": "KEY", "UPGRADEWATCH_NODE_TOKEN_AUDIENCE": "uw-prod",
		"UPGRADEWATCH_NODE_TOKEN_SUBJECT": "system:serviceaccount:platform:uw-reporter",
		"UPGRADEWATCH_ALERT_TENANT_ID":    "9c3e1f5a-7b2d-4e8c-a6f0-1d4b7e9a2c58",
		"UPGRADEWATCH_ALERT_AUDIENCE":     "api://upgradewatch-alerts, b5a1c7e3-2d9f-4b6a-8e04-7c3f1a9d5e62"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.NodeAuth != NodeAuthKey || c.NodeAudience != "uw-prod" || c.NodeSubject != "system:serviceaccount:platform:uw-reporter" ||
		len(c.AlertAudiences) != 2 || c.AlertAudiences[1] != "b5a1c7e3-2d9f-4b6a-8e04-7c3f1a9d5e62" {
		t.Errorf("overrides: %+v", c)
	}
	for _, bad := range []map[string]string{
		{"UPGRADEWATCH_NODE_AUTH": "none"},
		{"UPGRADEWATCH_NODE_TOKEN_SUBJECT": "node-reporter"},
		{"UPGRADEWATCH_NODE_TOKEN_AUDIENCE": "a,b"},
		{"UPGRADEWATCH_ALERT_TENANT_ID": "9c3e1f5a-7b2d-4e8c-a6f0-1d4b7e9a2c58"},
		{"UPGRADEWATCH_ALERT_AUDIENCE": "api://upgradewatch-alerts"},
		{"UPGRADEWATCH_ALERT_TENANT_ID": "contoso.onmicrosoft.com", "UPGRADEWATCH_ALERT_AUDIENCE": "api://upgradewatch-alerts"},
	} {
		if _, err := parseTrust(env(bad)); err == nil || !strings.Contains(err.Error(), "UPGRADEWATCH_") {
			t.Errorf("%v: error %v, want one naming the setting", bad, err)
		}
	}
}

// The built handler refuses node snapshots without the cluster's token by
// default, and says at start what each input is trusted on; key mode, for
// local development, takes them on the function key alone and warns.
func TestE2ENodeAuthModes(t *testing.T) {
	endpoint := azuritetest.Endpoint(t)
	snap, err := os.ReadFile("../../internal/inventory/testdata/compact.json")
	if err != nil {
		t.Fatal(err)
	}
	post := func(p *proc, authz string) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, p.URL+"/api/clusters/7d3c1a52-9f0e-4b8a-a1c2-3e5f6a7b8c9d/rg-shop-prod-weu/aks-shop-prod-weu/nodes", strings.NewReader(string(snap)))
		req.Header.Set("Content-Type", "application/json")
		if authz != "" {
			req.Header.Set("Authorization", authz)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b strings.Builder
		_, _ = io.Copy(&b, resp.Body)
		return resp.StatusCode, b.String()
	}

	p := startHandler(t, endpoint, azuritetest.Prefix(t))
	if code, body := post(p, ""); code != http.StatusUnauthorized || !strings.Contains(body, "no bearer token") {
		t.Errorf("default mode, no token: %d %s", code, body)
	}
	if code, body := post(p, "Bearer eyJhbGciOiJSUzI1NiJ9.e30.c2ln"); code != http.StatusForbidden || !strings.Contains(body, "UPGRADEWATCH_ENRICH=false") {
		t.Errorf("default mode, a token, no ARM: %d %s", code, body)
	}
	for _, want := range []string{"every snapshot will be refused", "alerts are trusted on the function key alone", `"node_auth":"function key and the cluster's service-account token`} {
		if !strings.Contains(p.log.String(), want) {
			t.Errorf("startup log lacks %q:\n%s", want, p.log)
		}
	}
	p.stop(t)

	t.Setenv("UPGRADEWATCH_NODE_AUTH", "key")
	p = startHandler(t, endpoint, azuritetest.Prefix(t))
	if code, body := post(p, ""); code != http.StatusOK || !strings.Contains(body, `"applied"`) {
		t.Errorf("key mode: %d %s", code, body)
	}
	if !strings.Contains(p.log.String(), "UPGRADEWATCH_NODE_AUTH=key") {
		t.Errorf("key mode without a warning:\n%s", p.log)
	}
}
