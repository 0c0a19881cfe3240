package auth_test

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/upgradewatch/upgradewatch/internal/auth"
	"github.com/upgradewatch/upgradewatch/internal/auth/authtest"
)

// FuzzVerifyClusterToken feeds arbitrary bearer tokens to the verifier: it
// never panics, never accepts anything but the one token the issuer signed
// (in any base64 spelling of the same bytes),
// and refuses everything else as unauthorized (the keys are cached, so
// nothing is "unavailable").
func FuzzVerifyClusterToken(f *testing.F) {
	is := authtest.New(f, akspath, aksJWKS)
	claims := authtest.Claims(f, saClaims, is.URL, t0, time.Hour)
	valid := is.Sign(f, claims)
	v := auth.NewClusterTokens(auth.DefaultAudience, auth.DefaultSubject, auth.Options{Transport: is.Transport(), Now: func() time.Time { return t0 }})
	if err := v.VerifyClusterToken(context.Background(), is.URL, valid); err != nil {
		f.Fatal(err)
	}
	parts := strings.Split(valid, ".")
	f.Add(valid)
	f.Add(is.Forge(f, claims))
	f.Add(is.Sign(f, with(claims, "sub", "system:serviceaccount:kube-system:default")))
	f.Add(parts[0] + "." + parts[1] + ".")
	f.Add(base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none"}`)) + "." + parts[1] + ".")
	f.Add(parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"`+is.URL+`"}`)) + "." + parts[2])
	f.Add("")
	f.Add("Bearer")
	f.Fuzz(func(t *testing.T, raw string) {
		err := v.VerifyClusterToken(context.Background(), is.URL, raw)
		switch {
		case err == nil && !sameJWS(raw, valid):
			t.Fatalf("accepted a token the issuer did not sign: %q", raw)
		case err != nil && raw == valid:
			t.Fatalf("refused the valid token: %v", err)
		case err != nil && !errors.Is(err, auth.ErrUnauthorized):
			t.Fatalf("error %v is not ErrUnauthorized", err)
		}
	})
}

// sameJWS reports whether two compact JWS decode to the same header, payload
// and signature: base64url has more than one spelling of some byte strings.
func sameJWS(a, b string) bool {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	if len(pa) != 3 || len(pb) != 3 {
		return false
	}
	for i := range pa {
		da, ea := base64.RawURLEncoding.DecodeString(pa[i])
		db, eb := base64.RawURLEncoding.DecodeString(pb[i])
		if ea != nil || eb != nil || string(da) != string(db) {
			return false
		}
	}
	return true
}
