package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/upgradewatch/upgradewatch/internal/azuritetest"
	"github.com/upgradewatch/upgradewatch/internal/state"
	"github.com/upgradewatch/upgradewatch/internal/timeline"
)

// The built handler creates the compliance tables, its Sweep computes the
// figures and the day's snapshot, and both routes answer from them.
func TestComplianceRoutesOfTheBuiltHandler(t *testing.T) {
	ep := azuritetest.Endpoint(t)
	svc := azuritetest.Service(t, ep)
	prefix := azuritetest.Prefix(t)
	azuritetest.DropTables(t, svc, prefix+state.TableFleet, prefix+state.TableIndex, prefix+state.TableRejected, prefix+state.TableCatalogue,
		prefix+state.TableCompliance, prefix+state.TableComplianceFleet)
	p := startHandler(t, ep, prefix)
	deliverAll(t, []string{p.URL}, timeline.Demo(), 4)

	timer := `{"Data":{"timer":{"IsPastDue":false}},"Metadata":{}}`
	r, err := http.Post(p.URL+"/Sweep", "application/json", strings.NewReader(timer))
	if err != nil || r.StatusCode != http.StatusOK {
		t.Fatalf("sweep: %v %v\n%s", r, err, p.log)
	}
	var sweep struct {
		ReturnValue struct {
			Compliance struct {
				Refreshed bool
				Clusters  int
				Snapshot  string
			}
		}
	}
	_ = json.NewDecoder(r.Body).Decode(&sweep)
	r.Body.Close()
	if c := sweep.ReturnValue.Compliance; !c.Refreshed || c.Clusters < 4 || c.Snapshot != "written" {
		t.Errorf("sweep's compliance pass %+v: want refreshed over the demo's clusters and the day's snapshot written", c)
	}

	var fleetAnswer struct {
		AsOf     *time.Time
		Clusters int
		ByStatus map[string]int
		Pools    []json.RawMessage `json:"poolsNotUpToDate"`
	}
	getJSON(t, p.URL+"/api/compliance", &fleetAnswer)
	t.Logf("the demo timeline's pools by status: %v", fleetAnswer.ByStatus)
	if fleetAnswer.AsOf == nil || fleetAnswer.Clusters < 4 || fleetAnswer.ByStatus["NotPatched"] == 0 || len(fleetAnswer.Pools) == 0 {
		t.Errorf("GET /api/compliance: %+v; want the demo's clusters, its channel-None pools NotPatched, the pools listed", fleetAnswer)
	}
	var hist struct{ Count int }
	getJSON(t, p.URL+"/api/compliance/history?days=7", &hist)
	if hist.Count != 1 {
		t.Errorf("history: %d days, want today's", hist.Count)
	}
	if r, err := http.Get(p.URL + "/api/compliance/history?days=500"); err != nil || r.StatusCode != http.StatusBadRequest {
		t.Errorf("history of 500 days: %v %v, want 400", r, err)
	}
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	r, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	if r.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d", url, r.StatusCode)
	}
	if err := json.NewDecoder(r.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

// UPGRADEWATCH_COMPLIANCE_EVERY defaults to 15 minutes and refuses what is
// not a duration from 1m to 24h, by name.
func TestComplianceEverySetting(t *testing.T) {
	env := func(extra map[string]string) func(string) string {
		return func(k string) string {
			if k == "AzureWebJobsStorage" {
				return "UseDevelopmentStorage=true"
			}
			return extra[k]
		}
	}
	c, err := parseConfig(env(nil))
	if err != nil || c.ComplianceEvery != 15*time.Minute {
		t.Fatalf("default: %v, %v; want 15m", c.ComplianceEvery, err)
	}
	if c, err = parseConfig(env(map[string]string{"UPGRADEWATCH_COMPLIANCE_EVERY": "1h"})); err != nil || c.ComplianceEvery != time.Hour {
		t.Errorf("1h: %v, %v", c.ComplianceEvery, err)
	}
	for _, bad := range []string{"30s", "25h", "often"} {
		if _, err := parseConfig(env(map[string]string{"UPGRADEWATCH_COMPLIANCE_EVERY": bad})); err == nil ||
			!strings.Contains(err.Error(), "UPGRADEWATCH_COMPLIANCE_EVERY") {
			t.Errorf("%s: %v, want an error naming the setting", bad, err)
		}
	}
}
