package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
	"github.com/upgradewatch/upgradewatch/internal/inventory"
)

const (
	testToken = "eyJhbGciOiJSUzI1NiJ9.test-service-account-token"
	testKey   = "fk_test-function-key_0123456789abcdef=="
	// projectedToken stands for the token the kubelet projects for
	// upgradewatch (audience upgradewatch); upgradewatch verifies it.
	projectedToken = "eyJhbGciOiJSUzI1NiIsImtpZCI6InV3In0.projected-for-upgradewatch.c2ln"
	nodesPath      = "/api/clusters/7d3c1a52-9f0e-4b8a-a1c2-3e5f6a7b8c9d/rg-shop-prod-weu/aks-shop-prod-weu/nodes"
)

// fakeAPI is the Kubernetes API server: GET /api/v1/nodes in two pages of
// the mixed-cluster fixture, for the bearer token testToken only.
type fakeAPI struct {
	*httptest.Server
	dir string // service account dir: token and ca.crt

	mu       sync.Mutex
	queries  []url.Values
	items    []json.RawMessage
	split    int  // items on the first page
	expire   bool // answer the next continued request 410 once
	failures []int
}

func newFakeAPI(t *testing.T) *fakeAPI {
	t.Helper()
	var list struct{ Items []json.RawMessage }
	b, err := os.ReadFile("../../internal/inventory/testdata/nodes-mixed.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &list); err != nil {
		t.Fatal(err)
	}
	a := &fakeAPI{items: list.Items, split: 6}
	a.Server = httptest.NewTLSServer(http.HandlerFunc(a.serve))
	t.Cleanup(a.Close)

	a.dir = t.TempDir()
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: a.Certificate().Raw})
	if err := os.WriteFile(filepath.Join(a.dir, "ca.crt"), ca, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(a.dir, "token"), []byte(testToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(a.dir, "upgradewatch-token"), []byte(projectedToken), 0o600); err != nil {
		t.Fatal(err)
	}
	return a
}

func (a *fakeAPI) serve(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	defer a.mu.Unlock()
	q := r.URL.Query()
	a.queries = append(a.queries, q)
	status := func(code int, reason, msg string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		fmt.Fprintf(w, `{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":%q,"reason":%q,"code":%d}`, msg, reason, code)
	}
	switch {
	case r.Method != http.MethodGet || r.URL.Path != "/api/v1/nodes":
		status(http.StatusNotFound, "NotFound", "the server could not find the requested resource")
		return
	case r.Header.Get("Authorization") != "Bearer "+testToken:
		status(http.StatusUnauthorized, "Unauthorized", "Unauthorized")
		return
	case q.Get("limit") != "500":
		status(http.StatusBadRequest, "BadRequest", "want limit=500")
		return
	case len(a.failures) > 0:
		code := a.failures[0]
		a.failures = a.failures[1:]
		w.Header().Set("Retry-After", "0")
		status(code, "InternalError", "etcdserver: leader changed")
		return
	}
	page, cont := a.items[:a.split], "page-2"
	switch q.Get("continue") {
	case "":
	case "page-2":
		if a.expire {
			a.expire = false
			status(http.StatusGone, "Expired", "The provided continue parameter is too old to display a consistent list result.")
			return
		}
		page, cont = a.items[a.split:], ""
	default:
		status(http.StatusBadRequest, "BadRequest", "bad continue token")
		return
	}
	out, _ := json.Marshal(map[string]any{
		"kind": "NodeList", "apiVersion": "v1",
		"metadata": map[string]any{"resourceVersion": "48211099", "continue": cont},
		"items":    page,
	})
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(out)
}

func (a *fakeAPI) requests() []url.Values {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]url.Values(nil), a.queries...)
}

// fakeUpgradewatch is the NodeInventory endpoint. Each request is answered
// by the next responder; after the last, 200.
type fakeUpgradewatch struct {
	*httptest.Server
	mu         sync.Mutex
	responders []func(http.ResponseWriter, *http.Request)
	got        []received
}

type received struct {
	header http.Header
	body   []byte
}

func newFakeUpgradewatch(t *testing.T, responders ...func(http.ResponseWriter, *http.Request)) *fakeUpgradewatch {
	t.Helper()
	u := &fakeUpgradewatch{responders: responders}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		u.mu.Lock()
		u.got = append(u.got, received{r.Header.Clone(), body})
		var respond func(http.ResponseWriter, *http.Request)
		if len(u.responders) > 0 {
			respond, u.responders = u.responders[0], u.responders[1:]
		}
		u.mu.Unlock()
		if r.URL.Path != nodesPath || r.Method != http.MethodPost {
			http.Error(w, `{"error":"no such route"}`, http.StatusNotFound)
			return
		}
		if respond != nil {
			respond(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"status":"applied","nodes":9}`)
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *fakeUpgradewatch) posts() []received {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]received(nil), u.got...)
}

func answer(code int, body string, header ...string) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, _ *http.Request) {
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		w.WriteHeader(code)
		fmt.Fprint(w, body)
	}
}

// hangUp closes the connection without an answer: a network error.
func hangUp(w http.ResponseWriter, _ *http.Request) {
	conn, _, err := w.(http.Hijacker).Hijack()
	if err == nil {
		conn.Close()
	}
}

// testEnv is the environment of a pod whose API server is api, posting to up.
func testEnv(api *fakeAPI, up *fakeUpgradewatch) map[string]string {
	au, _ := url.Parse(api.URL)
	return map[string]string{
		"KUBERNETES_SERVICE_HOST":         au.Hostname(),
		"KUBERNETES_SERVICE_PORT":         au.Port(),
		"UPGRADEWATCH_SERVICEACCOUNT_DIR": api.dir,
		"UPGRADEWATCH_NODES_URL":          up.URL + nodesPath,
		"UPGRADEWATCH_FUNCTION_KEY":       testKey,
		"UPGRADEWATCH_TOKEN_FILE":         filepath.Join(api.dir, "upgradewatch-token"),
	}
}

func runWith(t *testing.T, env map[string]string) (int, string) {
	t.Helper()
	var out bytes.Buffer
	code := run(context.Background(), func(k string) string { return env[k] }, &out)
	logs := out.String()
	for _, secret := range []string{testKey, testToken, projectedToken} {
		if strings.Contains(logs, secret) {
			t.Errorf("a secret appears in the logs:\n%s", logs)
		}
	}
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		if !json.Valid([]byte(line)) {
			t.Errorf("log line is not JSON: %s", line)
		}
	}
	return code, logs
}

// decodePost decodes what node-reporter posted, as the server would.
func decodePost(t *testing.T, r received) inventory.Result {
	t.Helper()
	res, err := inventory.Decode(r.body, time.Now())
	if err != nil {
		t.Fatalf("server-side Decode of the posted body: %v\n%s", err, r.body)
	}
	return res
}

func TestRunPostsSnapshot(t *testing.T) {
	api, up := newFakeAPI(t), newFakeUpgradewatch(t)
	start := time.Now()
	code, logs := runWith(t, testEnv(api, up))
	if code != 0 {
		t.Fatalf("exit %d, want 0; logs:\n%s", code, logs)
	}

	q := api.requests()
	if len(q) != 2 || q[0].Get("continue") != "" || q[1].Get("continue") != "page-2" {
		t.Errorf("API requests %v, want a first page and then continue=page-2", q)
	}
	posts := up.posts()
	if len(posts) != 1 {
		t.Fatalf("%d posts, want 1", len(posts))
	}
	p := posts[0]
	if got := p.header.Get("x-functions-key"); got != testKey {
		t.Errorf("x-functions-key %q, want the configured key", got)
	}
	if got := p.header.Get("Authorization"); got != "Bearer "+projectedToken {
		t.Errorf("Authorization %q, want the projected token (not the API token)", got)
	}
	if got := p.header.Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type %q, want application/json", got)
	}
	res := decodePost(t, p)
	s := res.Snapshot
	if res.Form != inventory.FormCompact || !s.Complete || s.Reporter != "node-reporter/"+version || !strings.HasPrefix(s.ID, "nr-") {
		t.Errorf("form %q complete %v reporter %q id %q, want compact, complete, node-reporter/%s, nr-…", res.Form, s.Complete, s.Reporter, s.ID, version)
	}
	if s.ObservedAt.Before(start.Add(-time.Second)) || s.ObservedAt.After(time.Now()) {
		t.Errorf("observedAt %v, want the time of the list", s.ObservedAt)
	}
	pools := map[string]int{}
	for _, n := range s.Nodes {
		pools[n.Pool]++
	}
	if diff := cmp.Diff(map[string]int{"system": 3, "azlinux": 4, "win": 2}, pools); diff != "" {
		t.Errorf("nodes per pool (-want +got):\n%s", diff)
	}
	want := fleet.NodeObservation{
		Name: "aks-azlinux-23456789-vmss000004", Pool: "azlinux", NodeImageVersion: "AKSAzureLinux-V3gen2-202609.15.0",
		KernelVersion: "6.6.96.2-1.azl3", OSImage: "Microsoft Azure Linux 3.0", KubeletVersion: "v1.31.11",
		ContainerRuntime: "containerd://1.7.27", OSType: "linux", Quarantined: true, Unschedulable: true, Ready: "True",
	}
	if diff := cmp.Diff(want, s.Nodes[1]); diff != "" {
		t.Errorf("the quarantined node (-want +got):\n%s", diff)
	}
	for _, msg := range []string{`"msg":"nodes listed"`, `"nodes":9`, `"skipped":1`, `"msg":"snapshot posted"`, `"status":200`} {
		if !strings.Contains(logs, msg) {
			t.Errorf("logs lack %s:\n%s", msg, logs)
		}
	}
}

func TestRunRetriesSameSnapshot(t *testing.T) {
	tests := []struct {
		name      string
		responder func(http.ResponseWriter, *http.Request)
		minWait   time.Duration
	}{
		{"503 with Retry-After", answer(http.StatusServiceUnavailable, "host is restarting", "Retry-After", "1"), time.Second},
		{"429", answer(http.StatusTooManyRequests, "slow down"), 0},
		{"connection closed", hangUp, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			api, up := newFakeAPI(t), newFakeUpgradewatch(t, tc.responder)
			start := time.Now()
			code, logs := runWith(t, testEnv(api, up))
			if code != 0 {
				t.Fatalf("exit %d, want 0; logs:\n%s", code, logs)
			}
			if waited := time.Since(start); waited < tc.minWait {
				t.Errorf("retried after %s, want at least %s (Retry-After)", waited, tc.minWait)
			}
			posts := up.posts()
			if len(posts) != 2 {
				t.Fatalf("%d posts, want 2", len(posts))
			}
			if !bytes.Equal(posts[0].body, posts[1].body) {
				t.Errorf("the retry sent a different body:\n%s\n%s", posts[0].body, posts[1].body)
			}
			if a, b := decodePost(t, posts[0]).Snapshot.ID, decodePost(t, posts[1]).Snapshot.ID; a != b {
				t.Errorf("snapshot ids %q and %q, want one", a, b)
			}
			if len(api.requests()) != 2 {
				t.Errorf("the nodes were listed again for the retry")
			}
			if !strings.Contains(logs, `"msg":"retrying"`) {
				t.Errorf("no retry logged:\n%s", logs)
			}
		})
	}
}

func TestRunRefused(t *testing.T) {
	tests := []struct {
		name      string
		responder func(http.ResponseWriter, *http.Request)
		wantLog   string
	}{
		{"401", answer(http.StatusUnauthorized, `{"error":"invalid function key"}`), "invalid function key"},
		{"400", answer(http.StatusBadRequest, `{"error":"malformed node snapshot: node \"x\" is listed twice"}`), "is listed twice"},
		{"redirect is not followed", answer(http.StatusFound, "", "Location", "https://elsewhere.invalid/"), "302 Found"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			api, up := newFakeAPI(t), newFakeUpgradewatch(t, tc.responder)
			code, logs := runWith(t, testEnv(api, up))
			if code != 1 {
				t.Errorf("exit %d, want 1", code)
			}
			if n := len(up.posts()); n != 1 {
				t.Errorf("%d posts, want 1 (no retry)", n)
			}
			if !strings.Contains(logs, tc.wantLog) || !strings.Contains(logs, `"msg":"posting snapshot failed"`) {
				t.Errorf("logs lack %q:\n%s", tc.wantLog, logs)
			}
			if strings.Contains(logs, `"msg":"retrying"`) {
				t.Errorf("a refusal was retried:\n%s", logs)
			}
		})
	}
}

func TestRunGivesUp(t *testing.T) {
	api := newFakeAPI(t)
	up := newFakeUpgradewatch(t)
	up.responders = nil
	always503 := answer(http.StatusServiceUnavailable, "down")
	for range 100 {
		up.responders = append(up.responders, always503)
	}
	env := testEnv(api, up)
	env["UPGRADEWATCH_TIMEOUT"] = "2s"
	start := time.Now()
	code, logs := runWith(t, env)
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("gave up after %s, want within the 2s timeout", took)
	}
	if len(up.posts()) < 2 || !strings.Contains(logs, "giving up") {
		t.Errorf("%d posts, want retries and then giving up; logs:\n%s", len(up.posts()), logs)
	}
}

func TestRunKubernetesAPI(t *testing.T) {
	t.Run("wrong token", func(t *testing.T) {
		api, up := newFakeAPI(t), newFakeUpgradewatch(t)
		if err := os.WriteFile(filepath.Join(api.dir, "token"), []byte("expired"), 0o600); err != nil {
			t.Fatal(err)
		}
		code, logs := runWith(t, testEnv(api, up))
		if code != 1 || len(up.posts()) != 0 {
			t.Errorf("exit %d with %d posts, want 1 and none", code, len(up.posts()))
		}
		if !strings.Contains(logs, "401 Unauthorized") || !strings.Contains(logs, "list on nodes") {
			t.Errorf("logs lack the API's answer and the RBAC hint:\n%s", logs)
		}
	})
	t.Run("transient errors and an expired continue token", func(t *testing.T) {
		api, up := newFakeAPI(t), newFakeUpgradewatch(t)
		api.failures = []int{http.StatusInternalServerError}
		api.expire = true
		code, logs := runWith(t, testEnv(api, up))
		if code != 0 {
			t.Fatalf("exit %d, want 0; logs:\n%s", code, logs)
		}
		// 500, page 1, 410 on page 2, page 1 again, page 2.
		if n := len(api.requests()); n != 5 {
			t.Errorf("%d API requests, want 5", n)
		}
		if got := len(decodePost(t, up.posts()[0]).Snapshot.Nodes); got != 9 {
			t.Errorf("posted %d nodes, want 9 (no page twice)", got)
		}
	})
	t.Run("wrong CA", func(t *testing.T) {
		api, up := newFakeAPI(t), newFakeUpgradewatch(t)
		// Every httptest server shares one certificate: make another.
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "other-ca"},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			t.Fatal(err)
		}
		ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
		if err := os.WriteFile(filepath.Join(api.dir, "ca.crt"), ca, 0o600); err != nil {
			t.Fatal(err)
		}
		code, logs := runWith(t, testEnv(api, up))
		if code != 1 || len(up.posts()) != 0 {
			t.Errorf("exit %d with %d posts, want 1 and none", code, len(up.posts()))
		}
		if !strings.Contains(logs, "certificate signed by unknown authority") || strings.Contains(logs, `"msg":"retrying"`) {
			t.Errorf("want the TLS error, not retried; logs:\n%s", logs)
		}
	})
}

func TestParseConfig(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "key")
	if err := os.WriteFile(keyFile, []byte("  from-file-key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := map[string]string{
		"KUBERNETES_SERVICE_HOST":   "10.0.0.1",
		"KUBERNETES_SERVICE_PORT":   "443",
		"UPGRADEWATCH_NODES_URL":    "https://uw.example" + nodesPath,
		"UPGRADEWATCH_FUNCTION_KEY": "k1",
	}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	tests := []struct {
		name    string
		env     map[string]string
		wantErr string
		check   func(t *testing.T, c Config)
	}{
		{name: "defaults", env: base, check: func(t *testing.T, c Config) {
			if c.APIServer != "https://10.0.0.1:443" || c.ServiceAccountDir != DefaultServiceAccountDir || c.Timeout != 5*time.Minute || c.FunctionKey != "k1" ||
				c.TokenFile != DefaultTokenFile {
				t.Errorf("config %+v", c)
			}
		}},
		{name: "no token (key mode)", env: with("UPGRADEWATCH_TOKEN_FILE", "none"), check: func(t *testing.T, c Config) {
			if c.TokenFile != "" {
				t.Errorf("TokenFile %q, want none", c.TokenFile)
			}
		}},
		{name: "IPv6 API server", env: with("KUBERNETES_SERVICE_HOST", "fd00::1"), check: func(t *testing.T, c Config) {
			if c.APIServer != "https://[fd00::1]:443" {
				t.Errorf("APIServer %q", c.APIServer)
			}
		}},
		{name: "key file", env: with("UPGRADEWATCH_FUNCTION_KEY", "", "UPGRADEWATCH_FUNCTION_KEY_FILE", keyFile), check: func(t *testing.T, c Config) {
			if c.FunctionKey != "from-file-key" {
				t.Errorf("FunctionKey %q", c.FunctionKey)
			}
		}},
		{name: "http to loopback", env: with("UPGRADEWATCH_NODES_URL", "http://127.0.0.1:7071"+nodesPath)},
		{name: "timeout", env: with("UPGRADEWATCH_TIMEOUT", "90s"), check: func(t *testing.T, c Config) {
			if c.Timeout != 90*time.Second {
				t.Errorf("Timeout %s", c.Timeout)
			}
		}},
		{name: "outside a pod", env: with("KUBERNETES_SERVICE_HOST", ""), wantErr: "KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set"},
		{name: "no URL", env: with("UPGRADEWATCH_NODES_URL", ""), wantErr: "UPGRADEWATCH_NODES_URL is not set"},
		{name: "relative URL", env: with("UPGRADEWATCH_NODES_URL", "/api/x"), wantErr: "is not an absolute URL"},
		{name: "http elsewhere", env: with("UPGRADEWATCH_NODES_URL", "http://uw.example"+nodesPath), wantErr: "want https"},
		{name: "key in the URL", env: with("UPGRADEWATCH_NODES_URL", "https://uw.example"+nodesPath+"?code=secret"), wantErr: "must not carry credentials, a query"},
		{name: "no key", env: with("UPGRADEWATCH_FUNCTION_KEY", ""), wantErr: "no function key"},
		{name: "both keys", env: with("UPGRADEWATCH_FUNCTION_KEY_FILE", keyFile), wantErr: "not both"},
		{name: "missing key file", env: with("UPGRADEWATCH_FUNCTION_KEY", "", "UPGRADEWATCH_FUNCTION_KEY_FILE", filepath.Join(dir, "none")), wantErr: "UPGRADEWATCH_FUNCTION_KEY_FILE"},
		{name: "key with a space", env: with("UPGRADEWATCH_FUNCTION_KEY", "abc def"), wantErr: "contains a space"},
		{name: "timeout too long", env: with("UPGRADEWATCH_TIMEOUT", "2h"), wantErr: "want a duration from 1s to 1h"},
		{name: "log level", env: with("UPGRADEWATCH_LOG_LEVEL", "loud"), wantErr: "UPGRADEWATCH_LOG_LEVEL"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseConfig(func(k string) string { return tc.env[k] })
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "secret") || strings.Contains(err.Error(), "abc def") {
					t.Errorf("the error quotes the key: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.check != nil {
				tc.check(t, c)
			}
		})
	}
}

func TestRunInvalidConfigExits2(t *testing.T) {
	code, logs := runWith(t, map[string]string{})
	if code != 2 || !strings.Contains(logs, `"msg":"invalid configuration"`) {
		t.Errorf("exit %d, logs %s; want 2 and the reason", code, logs)
	}
}

func TestBackoff(t *testing.T) {
	b := Backoff{Base: 500 * time.Millisecond, Max: 30 * time.Second}
	for n, max := range []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second} {
		for range 50 {
			if d := b.Delay(n, 0); d < max/2 || d > max {
				t.Fatalf("Delay(%d) = %s, want within [%s, %s]", n, d, max/2, max)
			}
		}
	}
	if d := b.Delay(62, 0); d < 15*time.Second || d > 30*time.Second {
		t.Errorf("Delay(62) = %s, want capped at 30s", d)
	}
	if d := b.Delay(3, 7*time.Second); d != 7*time.Second {
		t.Errorf("Delay with Retry-After 7s = %s", d)
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 10, 5, 8, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		value string
		want  time.Duration
	}{
		{"", 0}, {"3", 3 * time.Second}, {"-1", 0}, {"soon", 0},
		{"Mon, 05 Oct 2026 08:00:30 GMT", 30 * time.Second},
		{"Mon, 05 Oct 2026 07:00:00 GMT", 0},
	} {
		h := http.Header{}
		if tc.value != "" {
			h.Set("Retry-After", tc.value)
		}
		if got := retryAfter(h, now); got != tc.want {
			t.Errorf("Retry-After %q: %s, want %s", tc.value, got, tc.want)
		}
	}
}

// The projected token is read for every attempt: the kubelet replaces it
// before it expires, and a retry must not send a stale one.
func TestRunRereadsToken(t *testing.T) {
	api := newFakeAPI(t)
	file := filepath.Join(api.dir, "upgradewatch-token")
	rotated := "eyJhbGciOiJSUzI1NiIsImtpZCI6InV3In0.rotated-by-the-kubelet.c2ln"
	up := newFakeUpgradewatch(t, func(w http.ResponseWriter, r *http.Request) {
		if err := os.WriteFile(file, []byte(rotated+"\n"), 0o600); err != nil {
			t.Error(err)
		}
		answer(http.StatusServiceUnavailable, "restarting", "Retry-After", "1")(w, r)
	})
	code, logs := runWith(t, testEnv(api, up))
	if code != 0 {
		t.Fatalf("exit %d; logs:\n%s", code, logs)
	}
	posts := up.posts()
	if len(posts) != 2 || posts[0].header.Get("Authorization") != "Bearer "+projectedToken || posts[1].header.Get("Authorization") != "Bearer "+rotated {
		t.Errorf("tokens sent: %q", authorizations(posts))
	}
	if strings.Contains(logs, rotated) {
		t.Errorf("the token appears in the logs")
	}
}

// A pod without the projected token is misconfigured (exit 2, nothing
// listed); "none" posts without one.
func TestRunTokenFile(t *testing.T) {
	api, up := newFakeAPI(t), newFakeUpgradewatch(t)
	env := testEnv(api, up)
	env["UPGRADEWATCH_TOKEN_FILE"] = filepath.Join(api.dir, "missing")
	code, logs := runWith(t, env)
	if code != 2 || !strings.Contains(logs, "projected volume") || len(api.requests()) != 0 {
		t.Errorf("missing token: exit %d, %d lists; logs:\n%s", code, len(api.requests()), logs)
	}
	env["UPGRADEWATCH_TOKEN_FILE"] = "none"
	if code, logs = runWith(t, env); code != 0 {
		t.Fatalf("none: exit %d; logs:\n%s", code, logs)
	}
	if got := authorizations(up.posts()); len(got) != 1 || got[0] != "" {
		t.Errorf("none: Authorization %q, want no header", got)
	}
}

func authorizations(posts []received) []string {
	var out []string
	for _, p := range posts {
		out = append(out, p.header.Get("Authorization"))
	}
	return out
}
