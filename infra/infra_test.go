// Package infra holds the deployment (Bicep, Kubernetes manifests). Its tests
// read those files and hold them to the security properties no Azure CLI is
// here to check: storage reachable only from the app, no basic-auth
// publishing, images pinned by digest.
package infra

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// block returns the brace-balanced body of the first declaration starting
// with header (e.g. "resource storage '"), header included, without comments.
func block(t *testing.T, src, header string) string {
	t.Helper()
	i := strings.Index(src, header)
	if i < 0 {
		t.Fatalf("no %q in the Bicep", header)
	}
	start := strings.IndexByte(src[i:], '{') + i
	depth := 0
	for j := start; j < len(src); j++ {
		switch src[j] {
		case '{':
			depth++
		case '}':
			depth--
			if depth == 0 {
				return stripComments(src[i : j+1])
			}
		}
	}
	t.Fatalf("unbalanced braces after %q", header)
	return ""
}

func stripComments(s string) string {
	var out []string
	for _, line := range strings.Split(s, "\n") {
		if i := strings.Index(line, "//"); i >= 0 && !strings.Contains(line[:i], "'") {
			line = line[:i]
		}
		out = append(out, line)
	}
	return strings.Join(out, "\n")
}

// prop returns the value of the first "key: value" line in body.
func prop(t *testing.T, body, key string) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^\s*` + regexp.QuoteMeta(key) + `:\s*(.+?)\s*$`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no %s in\n%s", key, body)
	}
	return m[1]
}

// TestStorageReachableOnlyFromTheApp: issue 12 finding 12 found the state
// account open to every network (publicNetworkAccess Enabled, default Allow).
func TestStorageReachableOnlyFromTheApp(t *testing.T) {
	src := read(t, "main.bicep")
	def := regexp.MustCompile(`param storageNetworkAccess string = '(\w+)'`).FindStringSubmatch(src)
	if def == nil || def[1] != "privateEndpoint" {
		t.Errorf("storageNetworkAccess default: got %v, want privateEndpoint", def)
	}
	for _, v := range []string{"usePrivateEndpoints = storageNetworkAccess == 'privateEndpoint'", "vnetEnabled = storageNetworkAccess != 'public'"} {
		if !strings.Contains(src, v) {
			t.Errorf("main.bicep lacks %q", v)
		}
	}

	st := block(t, src, "resource storage 'Microsoft.Storage/storageAccounts@")
	for key, want := range map[string]string{
		"publicNetworkAccess":  "usePrivateEndpoints ? 'Disabled' : 'Enabled'",
		"defaultAction":        "vnetEnabled ? 'Deny' : 'Allow'",
		"allowSharedKeyAccess": "false",
		"minimumTlsVersion":    "'TLS1_2'",
		"ipRules":              "[]",
	} {
		if got := prop(t, st, key); got != want {
			t.Errorf("state storage %s: got %s, want %s", key, got, want)
		}
	}
	if !strings.Contains(prop(t, st, "virtualNetworkRules"), "storageNetworkAccess == 'serviceEndpoint'") ||
		!strings.Contains(st, "id: appSubnetId") {
		t.Error("state storage: the serviceEndpoint mode does not allow the app subnet")
	}

	// A private endpoint and DNS zone for each service the app uses.
	services := regexp.MustCompile(`(?s)var storageServices = \[(.*?)\]`).FindStringSubmatch(src)
	if services == nil || strings.Join(strings.Fields(services[1]), " ") != "'blob' 'queue' 'table'" {
		t.Errorf("storageServices: got %v, want blob, queue, table", services)
	}
	pe := block(t, src, "resource storagePrivateEndpoints 'Microsoft.Network/privateEndpoints@")
	if !strings.Contains(pe, "if (usePrivateEndpoints)") || !strings.Contains(pe, "privateLinkServiceId: storage.id") {
		t.Errorf("private endpoints are not for the state account:\n%s", pe)
	}
	if zone := prop(t, block(t, src, "resource storageDnsZones"), "name"); zone != "'privatelink.${service}.${environment().suffixes.storage}'" {
		t.Errorf("private DNS zone name: got %s", zone)
	}

	// The app is integrated with the subnet the storage lets in.
	app := block(t, src, "resource app 'Microsoft.Web/sites@")
	if got := prop(t, app, "virtualNetworkSubnetId"); got != "vnetEnabled ? appSubnetId : null" {
		t.Errorf("app virtualNetworkSubnetId: got %s", got)
	}
	vnet := block(t, src, "resource vnet 'Microsoft.Network/virtualNetworks@")
	if !strings.Contains(vnet, "serviceName: 'Microsoft.App/environments'") {
		t.Error("the app subnet is not delegated to Microsoft.App/environments (Flex Consumption)")
	}

	// Every storage account: Entra only, TLS 1.2, no anonymous blobs.
	for _, m := range regexp.MustCompile(`resource (\w+) 'Microsoft.Storage/storageAccounts@`).FindAllStringSubmatch(src, -1) {
		body := block(t, src, m[0])
		for key, want := range map[string]string{"allowSharedKeyAccess": "false", "allowBlobPublicAccess": "false", "minimumTlsVersion": "'TLS1_2'"} {
			if got := prop(t, body, key); got != want {
				t.Errorf("storage account %s %s: got %s, want %s", m[1], key, got, want)
			}
		}
	}
}

// TestNoBasicAuthPublishing: SCM and FTP basic publishing credentials off.
func TestNoBasicAuthPublishing(t *testing.T) {
	app := block(t, read(t, "main.bicep"), "resource app 'Microsoft.Web/sites@")
	for _, name := range []string{"scm", "ftp"} {
		re := regexp.MustCompile(`resource \w+ 'basicPublishingCredentialsPolicies' = \{\s*name: '` + name + `'\s*properties: \{\s*allow: false\s*\}`)
		if !re.MatchString(app) {
			t.Errorf("no basicPublishingCredentialsPolicies %s with allow: false in the app", name)
		}
	}
	if got := prop(t, app, "ftpsState"); got != "'Disabled'" {
		t.Errorf("ftpsState: got %s, want 'Disabled'", got)
	}
}

var digest = regexp.MustCompile(`@sha256:[0-9a-f]{64}$`)

// TestImagesPinnedByDigest: every image the node reporter is built from or
// runs as names a digest, not a tag alone.
func TestImagesPinnedByDigest(t *testing.T) {
	froms := 0
	for _, line := range strings.Split(read(t, "../cmd/node-reporter/Dockerfile"), "\n") {
		fields := strings.Fields(line)
		if len(fields) < 2 || !strings.EqualFold(fields[0], "FROM") {
			continue
		}
		froms++
		if image := fields[1]; image != "scratch" && !strings.HasSuffix(image, "@${GO_DIGEST}") && !digest.MatchString(image) {
			t.Errorf("Dockerfile: FROM %s is not pinned by digest", image)
		}
	}
	if froms != 2 {
		t.Errorf("Dockerfile: %d FROM lines, want 2 (build, scratch)", froms)
	}
	if df := read(t, "../cmd/node-reporter/Dockerfile"); !regexp.MustCompile(`(?m)^ARG GO_DIGEST$`).MatchString(df) {
		t.Error("Dockerfile: GO_DIGEST must be an ARG without a default (a build without a digest must fail)")
	}

	images := regexp.MustCompile(`(?m)^\s*image:\s*(\S+)`).FindAllStringSubmatch(read(t, "k8s/cronjob.yaml"), -1)
	if len(images) == 0 {
		t.Fatal("k8s/cronjob.yaml: no image")
	}
	for _, m := range images {
		if !digest.MatchString(m[1]) {
			t.Errorf("k8s/cronjob.yaml: image %s is not pinned by digest", m[1])
		}
	}
	if k := read(t, "k8s/kustomization.yaml"); !strings.Contains(k, "digest: sha256:") {
		t.Error("k8s/kustomization.yaml does not show how to pin the image by digest")
	}
}

// TestDashboardBehindSignIn: issue 15 puts the dashboard behind App Service
// Authentication (Microsoft Entra ID) while every machine route keeps its
// own key: each HTTP function's route at authLevel function must be excluded
// from the sign-in redirect, and nothing of the dashboard may be.
func TestDashboardBehindSignIn(t *testing.T) {
	app := block(t, read(t, "main.bicep"), "resource app 'Microsoft.Web/sites@")
	auth := block(t, app, "resource dashboardAuth 'config'")
	for key, want := range map[string]string{"name": "'authsettingsV2'", "requireAuthentication": "true",
		"unauthenticatedClientAction": "'RedirectToLoginPage'", "redirectToProvider": "'azureactivedirectory'", "requireHttps": "true"} {
		if got := prop(t, auth, key); got != want {
			t.Errorf("%s: got %s, want %s", key, got, want)
		}
	}
	if !regexp.MustCompile(`azureActiveDirectory: \{\s*enabled: true`).MatchString(auth) {
		t.Errorf("the Microsoft Entra ID provider is not enabled")
	}
	excluded := regexp.MustCompile(`'(/[^']*)'`).FindAllStringSubmatch(block(t, auth, "excludedPaths"), -1)
	covers := func(path string) bool {
		for _, m := range excluded {
			p := m[1]
			if p == path || (strings.HasSuffix(p, "/*") && strings.HasPrefix(path, strings.TrimSuffix(p, "*"))) {
				return true
			}
		}
		return false
	}
	routes := httpRoutes(t)
	if len(routes) < 5 {
		t.Fatalf("found only %d HTTP functions: %v", len(routes), routes)
	}
	for fn, r := range routes {
		base := "/api/" + strings.TrimSuffix(regexp.MustCompile(`\{[^}]*\}`).ReplaceAllString(r.route, "x"), "/x")
		switch {
		case fn == "Dashboard":
			if r.authLevel != "anonymous" || covers("/api/dashboard") || covers("/api/dashboard/clusters") {
				t.Errorf("the dashboard (%s, authLevel %s) must be anonymous to the host and behind sign-in", r.route, r.authLevel)
			}
		case !covers(base) || (strings.Contains(r.route, "{") && !covers(base+"/a/b")):
			t.Errorf("%s's route %s is not excluded from sign-in: its callers use keys, not browsers", fn, r.route)
		}
	}
	if !covers("/runtime/webhooks/eventgrid") {
		t.Errorf("Event Grid's webhook is not excluded from sign-in")
	}
}

type httpRoute struct{ route, authLevel string }

// httpRoutes reads the HTTP functions' routes from ../functions.
func httpRoutes(t *testing.T) map[string]httpRoute {
	t.Helper()
	files, err := filepath.Glob("../functions/*/function.json")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]httpRoute{}
	for _, f := range files {
		var fn struct {
			Bindings []struct{ Type, Route, AuthLevel string } `json:"bindings"`
		}
		if err := json.Unmarshal([]byte(read(t, f)), &fn); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if len(fn.Bindings) > 0 && fn.Bindings[0].Type == "httpTrigger" {
			out[filepath.Base(filepath.Dir(f))] = httpRoute{fn.Bindings[0].Route, fn.Bindings[0].AuthLevel}
		}
	}
	return out
}
