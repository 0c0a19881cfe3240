package auth_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/upgradewatch/upgradewatch/internal/auth"
	"github.com/upgradewatch/upgradewatch/internal/auth/authtest"
)

const (
	tenant      = "9c3e1f5a-7b2d-4e8c-a6f0-1d4b7e9a2c58"
	appIDURI    = "api://upgradewatch-alerts"
	appClientID = "b5a1c7e3-2d9f-4b6a-8e04-7c3f1a9d5e62"
)

// entraIssuer is a local stand-in for login.microsoftonline.com: the
// tenant's v2 discovery document and key set; v1 tokens name the same server
// as their sts.windows.net.
func entraIssuer(t *testing.T) (*authtest.Issuer, *auth.EntraTokens) {
	t.Helper()
	is := authtest.New(t, "/"+tenant+"/v2.0", "/"+tenant+"/discovery/v2.0/keys")
	v, err := auth.NewEntraTokens(auth.EntraConfig{TenantID: tenant, Audiences: []string{appIDURI, appClientID},
		Authority: is.ServerURL(), V1IssuerBase: is.ServerURL()}, auth.Options{Transport: is.Transport(), Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	return is, v
}

func TestEntraTokens(t *testing.T) {
	is, v := entraIssuer(t)
	v1 := authtest.Claims(t, "testdata/entra-v1-action-group.json", is.ServerURL()+"/"+tenant+"/", t0, time.Hour)
	v2 := authtest.Claims(t, "testdata/entra-v2-action-group.json", is.ServerURL()+"/"+tenant+"/v2.0", t0, time.Hour)
	otherTenant := "0d2e4f6a-8b1c-4d3e-9f5a-7b6c8d0e2f14"

	cases := []struct {
		name  string
		token string
		want  string // "" accepted; else a part of the error
	}{
		{"v1 token for the app ID URI", is.Sign(t, v1), ""},
		{"v2 token for the client id", is.Sign(t, v2), ""},
		{"another tenant's issuer", is.Sign(t, with(v1, "iss", is.ServerURL()+"/"+otherTenant+"/")), "not by tenant"},
		{"sts.windows.net of the right tenant, not ours", is.Sign(t, with(v1, "iss", "https://sts.windows.net/"+tenant+"/")), "not by tenant"},
		{"another app's token", is.Sign(t, with(v1, "appid", "04b07795-8ddb-461a-bbee-02f9e1bf7b46")), "not to Azure Monitor action groups"},
		{"v2 without azp", is.Sign(t, with(v2, "azp", nil)), "not to Azure Monitor action groups"},
		{"wrong audience", is.Sign(t, with(v1, "aud", "https://management.azure.com/")), "audience"},
		{"expired", is.Sign(t, with(v2, "exp", t0.Add(-5*time.Minute).Unix())), "expired"},
		{"tid of another tenant", is.Sign(t, with(v2, "tid", otherTenant)), "tenant"},
		{"forged signature", is.Forge(t, v1), "signature"},
		{"no token", "", "no bearer token"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := v.VerifyAlertToken(context.Background(), tc.token)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("got %v, want accepted", err)
				}
				return
			}
			if !errors.Is(err, auth.ErrUnauthorized) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want unauthorized mentioning %q", err, tc.want)
			}
		})
	}
}

func TestEntraTokensKeysUnavailable(t *testing.T) {
	is, v := entraIssuer(t)
	is.FailKeys(http.StatusServiceUnavailable)
	tok := is.Sign(t, authtest.Claims(t, "testdata/entra-v2-action-group.json", is.ServerURL()+"/"+tenant+"/v2.0", t0, time.Hour))
	if err := v.VerifyAlertToken(context.Background(), tok); !errors.Is(err, auth.ErrUnavailable) {
		t.Fatalf("got %v, want ErrUnavailable", err)
	}
}

func TestNewEntraTokensConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  auth.EntraConfig
		want string
	}{
		{"domain instead of tenant id", auth.EntraConfig{TenantID: "contoso.onmicrosoft.com", Audiences: []string{appIDURI}}, "GUID"},
		{"no audience", auth.EntraConfig{TenantID: tenant, Audiences: []string{" "}}, "audience"},
		{"plain http authority", auth.EntraConfig{TenantID: tenant, Audiences: []string{appIDURI}, Authority: "http://login.example"}, "https"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := auth.NewEntraTokens(tc.cfg, auth.Options{}); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error mentioning %q", err, tc.want)
			}
		})
	}
	if _, err := auth.NewEntraTokens(auth.EntraConfig{TenantID: tenant, Audiences: []string{appIDURI}}, auth.Options{}); err != nil {
		t.Errorf("defaults: %v", err)
	}
}
