package main

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/upgradewatch/upgradewatch/internal/azuritetest"
)

// apiCall sends an API request to a handler process as the host forwards it.
func apiCall(t *testing.T, method, url, body string, headers ...string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	return resp.StatusCode, out
}

// Two handler processes on the same tables: a silence created through one
// holds the failure the other ingests (the other reads it from the table),
// and ending it through the first announces that failure once, at once,
// with no Sweep.
func TestE2ESilenceAcrossInstances(t *testing.T) {
	endpoint := azuritetest.Endpoint(t)
	prefix := azuritetest.Prefix(t)
	svc := azuritetest.Service(t, endpoint)
	t.Cleanup(func() {
		azuritetest.DropTables(t, svc, prefix+"Fleet", prefix+"FleetIndex", prefix+"Rejected", prefix+"ImageCatalogue",
			prefix+"Compliance", prefix+"ComplianceFleet", prefix+"Silences")
	})
	hook := newReceiver(t, true)
	t.Setenv("UPGRADEWATCH_NOTIFY_WEBHOOK_URL", hook.URL+"/hooks/upgradewatch")
	t.Setenv("UPGRADEWATCH_POLICY", `{"grace": {"UpgradeFailed": "0s"}}`)
	a, b := startHandler(t, endpoint, prefix), startHandler(t, endpoint, prefix)

	until := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	code, out := apiCall(t, http.MethodPost, a.URL+"/api/silences", `{"match": {"cluster": "8f1c2b3a-4d5e-4f60-9a7b-1c2d3e4f5a6b/rg-shops-weu/aks-shop-01",
		"code": "UpgradeFailed"}, "until": "`+until+`", "comment": "CHG0041872: pool migration", "createdBy": "ops-oncall@contoso.example"}`)
	id, _ := out["id"].(string)
	if code != http.StatusCreated || id == "" {
		t.Fatalf("create: %d %v\n%s", code, out, a.log)
	}
	if code, _ := deliver(t, b.URL, poolFailedEvent(1, "aks-shop-01", "system", time.Now().Add(-time.Minute))); code != http.StatusOK {
		t.Fatalf("event: status %d", code)
	}
	time.Sleep(2 * time.Second) // a send would arrive by now
	if got := hook.items(); len(got) != 0 {
		t.Fatalf("the silenced failure was sent: %v", got)
	}
	code, out = apiCall(t, http.MethodGet, b.URL+"/api/clusters/8f1c2b3a-4d5e-4f60-9a7b-1c2d3e4f5a6b/rg-shops-weu/aks-shop-01/findings", "")
	if fs, _ := out["findings"].([]any); code != http.StatusOK || len(fs) != 1 || fs[0].(map[string]any)["silencedBy"] != id {
		t.Fatalf("findings on the other instance: %d %v, want the failure silencedBy %s", code, out, id)
	}

	code, out = apiCall(t, http.MethodDelete, a.URL+"/api/silences/"+id, "", "X-MS-CLIENT-PRINCIPAL-NAME", "jane.doe@contoso.example")
	if code != http.StatusOK || out["endedBy"] != "jane.doe@contoso.example" {
		t.Fatalf("end: %d %v", code, out)
	}
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) && len(hook.items()) == 0 {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(2 * time.Second) // anything sent twice would arrive by now
	if got := hook.items(); len(got) != 1 || !strings.Contains(got[0], "aks-shop-01") {
		t.Errorf("after the end the webhook received %v, want the one opening of aks-shop-01\n%s", got, a.log)
	}
}
