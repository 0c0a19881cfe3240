package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/upgradewatch/upgradewatch/internal/azuritetest"
	"github.com/upgradewatch/upgradewatch/internal/state"
)

// noonZone names a fixed-offset zone where it is about noon now, so that a
// digest due from 06:00 local is due today and stays so for hours: the
// test's day never ends under it.
func noonZone(now time.Time) string {
	switch o := 12 - now.UTC().Hour(); {
	case o > 0:
		return fmt.Sprintf("Etc/GMT-%d", o) // POSIX signs: GMT-3 is three hours ahead
	case o < 0:
		return fmt.Sprintf("Etc/GMT+%d", -o)
	}
	return "UTC"
}

// sweepDigest runs one Sweep and returns its digest report.
func sweepDigest(t *testing.T, p *proc) map[string]any {
	t.Helper()
	timer := `{"Data":{"timer":{"IsPastDue":false}},"Metadata":{}}`
	r, err := http.Post(p.URL+"/Sweep", "application/json", strings.NewReader(timer))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	var out struct {
		ReturnValue struct{ Digest map[string]any }
	}
	if err := json.NewDecoder(r.Body).Decode(&out); err != nil || r.StatusCode != http.StatusOK {
		t.Fatalf("sweep: status %d, %v\n%s", r.StatusCode, err, p.log)
	}
	return out.ReturnValue.Digest
}

// digests are the daily digests among what a chat sink received.
func digests(r *receiver) []string {
	var out []string
	for _, m := range r.items() {
		if strings.Contains(m, "upgradewatch daily digest") {
			out = append(out, m)
		}
	}
	return out
}

// Two built handlers on the same tables, both sweeping at once and again
// after: each chat sink gets the day's digest once, listing what opened.
func TestE2EDailyDigestOncePerSinkAcrossInstances(t *testing.T) {
	endpoint := azuritetest.Endpoint(t)
	prefix := azuritetest.Prefix(t)
	svc := azuritetest.Service(t, endpoint)
	azuritetest.DropTables(t, svc, prefix+state.TableFleet, prefix+state.TableIndex, prefix+state.TableRejected, prefix+state.TableCatalogue,
		prefix+state.TableCompliance, prefix+state.TableComplianceFleet, prefix+"Silences", prefix+"Digest")
	teams, slack := newReceiver(t, false), newReceiver(t, false)
	t.Setenv("UPGRADEWATCH_NOTIFY_TEAMS_URL", teams.URL+"/workflows/5f0e/triggers/manual/paths/invoke")
	t.Setenv("UPGRADEWATCH_NOTIFY_SLACK_URL", slack.URL+"/services/T0AB12CDE/B0FG34HIJ/s3cr3t")
	t.Setenv("UPGRADEWATCH_NOTIFY_GROUP_WAIT", "0")
	t.Setenv("UPGRADEWATCH_NOTIFY_DIGEST", "daily@06:00")
	t.Setenv("UPGRADEWATCH_NOTIFY_DIGEST_TZ", noonZone(time.Now()))
	t.Setenv("UPGRADEWATCH_POLICY", `{"grace": {"UpgradeFailed": "0s"}}`)
	a, b := startHandler(t, endpoint, prefix), startHandler(t, endpoint, prefix)

	at := time.Now().Add(-time.Minute)
	for i, ev := range []struct{ cluster, pool string }{{"aks-shop-01", "system"}, {"aks-shop-01", "payments"}, {"aks-ops-01", "system"}} {
		if code, _ := deliver(t, []*proc{a, b}[i%2].URL, poolFailedEvent(i, ev.cluster, ev.pool, at)); code != http.StatusOK {
			t.Fatalf("event %d: status %d", i, code)
		}
	}
	time.Sleep(time.Second) // the other instance's index entries land behind its commits

	var wg sync.WaitGroup
	reports := make([]map[string]any, 2)
	for i, p := range []*proc{a, b} {
		wg.Add(1)
		go func() { defer wg.Done(); reports[i] = sweepDigest(t, p) }()
	}
	wg.Wait()
	for _, p := range []*proc{a, b} {
		sweepDigest(t, p) // a later sweep of the same day sends nothing more
	}

	sent := 0
	for _, rep := range reports {
		if s, ok := rep["sent"].([]any); ok {
			sent += len(s)
		}
	}
	if sent != 2 {
		t.Errorf("the two concurrent sweeps sent %d digests between them (reports %v), want one per chat sink", sent, reports)
	}
	for name, r := range map[string]*receiver{"teams": teams, "slack": slack} {
		got := digests(r)
		if len(got) != 1 {
			t.Errorf("%s received %d digests, want 1: %.300q", name, len(got), got)
			continue
		}
		for _, want := range []string{"3 opened", "UpgradeFailed on aks-shop-01", "UpgradeFailed on aks-ops-01"} {
			if !strings.Contains(got[0], want) {
				t.Errorf("%s's digest lacks %q: %.600s", name, want, got[0])
			}
		}
	}
}
