package notify

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// golden compares got (JSON) with testdata/golden/name, indented.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	var buf bytes.Buffer
	if err := json.Indent(&buf, got, "", "  "); err != nil {
		t.Fatalf("%s: not JSON: %v", name, err)
	}
	buf.WriteByte('\n')
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), buf.String()); diff != "" {
		t.Errorf("%s differs (-want +got; go test -update rewrites it):\n%s", path, diff)
	}
}

func TestSubjectFor(t *testing.T) {
	tests := []struct{ target, want string }{
		{"cluster", paymentsID},
		{"pool/payments", paymentsID + "/agentPools/payments"},
		{"pool/batch/latest", paymentsID + "/agentPools/batch"},
		{"maintenance/aksManagedNodeOSUpgradeSchedule", paymentsID},
		{"scheduled/ev-7f3a", paymentsID},
		{"family/AKSUbuntu-2204gen2containerd", paymentsID},
		{"node/aks-payments-38172645-vmss00000b", paymentsID},
		{"", paymentsID},
		{"pool/", paymentsID},
		{"pool/../../x", paymentsID}, // not a pool name: nothing is spliced into the ID
	}
	for _, tc := range tests {
		t.Run(tc.target, func(t *testing.T) {
			if got := SubjectFor(payments, tc.target); got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	ok := upgradeFailedOpened()
	tests := []struct {
		name   string
		change func(n *Notification)
		want   string // "" for valid
	}{
		{"valid", func(*Notification) {}, ""},
		{"valid remediation", func(n *Notification) { *n = imageStalePlanned() }, ""},
		{"empty evidence", func(n *Notification) { n.Evidence = nil }, ""},
		{"null evidence", func(n *Notification) { n.Evidence = json.RawMessage("null") }, ""},
		{"no id", func(n *Notification) { n.ID = "" }, "no id"},
		{"unknown type", func(n *Notification) { n.Type = "io.upgradewatch.finding.escalated" }, "unknown type"},
		{"finding without code", func(n *Notification) { n.Code = "" }, "without a code"},
		{"remediation without step", func(n *Notification) { n.Type, n.Remediation = TypeRemediationApplied, nil }, "without a remediation action"},
		{"no time", func(n *Notification) { n.Time = time.Time{} }, "no time"},
		{"no cluster", func(n *Notification) { n.Cluster = fleet.ClusterID{} }, "no cluster"},
		{"evidence an array", func(n *Notification) { n.Evidence = json.RawMessage(`["a"]`) }, "not a JSON object"},
		{"evidence not JSON", func(n *Notification) { n.Evidence = json.RawMessage(`{"a":`) }, "not a JSON object"},
		{"evidence not UTF-8", func(n *Notification) { n.Evidence = json.RawMessage("{\"a\":\"\xff\"}") }, "not UTF-8"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := ok
			tc.change(&n)
			err := n.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("got %v, want valid", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
			if tc.want == "" {
				return
			}
			// Nothing renders an invalid notification.
			if _, err := n.CloudEvent(""); err == nil {
				t.Error("CloudEvent: got no error")
			}
			if _, err := TeamsCard(n); err == nil {
				t.Error("TeamsCard: got no error")
			}
			if _, err := SlackMessage(n); err == nil {
				t.Error("SlackMessage: got no error")
			}
		})
	}
}

func TestCloudEvent(t *testing.T) {
	n := upgradeFailedOpened()
	e, err := n.CloudEvent(appSource)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ attr, got, want string }{
		{"specversion", e.SpecVersion(), "1.0"},
		{"id", e.ID(), n.ID},
		{"type", e.Type(), "io.upgradewatch.finding.opened"},
		{"source", e.Source(), appSource},
		{"subject", e.Subject(), paymentsID + "/agentPools/payments"},
		{"time", e.Time().Format(time.RFC3339Nano), "2026-03-14T02:48:12Z"},
		{"datacontenttype", e.DataContentType(), "application/json"},
	} {
		if c.got != c.want {
			t.Errorf("%s: got %q, want %q", c.attr, c.got, c.want)
		}
	}
	if e.DataBase64 {
		t.Error("data is base64; want a JSON object")
	}
	var got Data
	if err := e.DataAs(&got); err != nil {
		t.Fatal(err)
	}
	want, _ := n.Data()
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("data (-want +got):\n%s", diff)
	}
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "upgrade-failed-opened.cloudevent.json", b)
}

func TestCloudEventDefaults(t *testing.T) {
	n := rebootsUnmanagedOpened()
	e, err := n.CloudEvent("")
	if err != nil {
		t.Fatal(err)
	}
	if e.Source() != DefaultSource {
		t.Errorf("source: got %q, want %q", e.Source(), DefaultSource)
	}
	if e.Subject() != paymentsID {
		t.Errorf("subject (from the target): got %q, want %q", e.Subject(), paymentsID)
	}
	// Empty members are left out: "{}" evidence, zero resolvedAt, reminder 0,
	// no status link, no remediation.
	var m map[string]json.RawMessage
	if err := json.Unmarshal(e.Data(), &m); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	want := []string{"cluster", "code", "openedAt", "severity", "summary", "target"}
	if diff := cmp.Diff(want, keys); diff != "" {
		t.Errorf("data members (-want +got):\n%s", diff)
	}
}

func TestCloudEventGolden(t *testing.T) {
	for _, name := range []string{"channel-drift-resolved", "image-stale-failed", "image-stale-planned"} {
		t.Run(name, func(t *testing.T) {
			e, err := allFixtures()[name].CloudEvent(appSource)
			if err != nil {
				t.Fatal(err)
			}
			b, err := json.Marshal(e)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, name+".cloudevent.json", b)
		})
	}
}

func TestCloudEventRemediation(t *testing.T) {
	e, err := imageStalePlanned().CloudEvent(appSource)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Remediation map[string]any `json:"remediation"`
	}
	if err := json.Unmarshal(e.Data(), &d); err != nil {
		t.Fatal(err)
	}
	// dryRun is always present: false is an answer, not a missing value.
	if d.Remediation["dryRun"] != true || d.Remediation["action"] != "upgradeNodeImageVersion" {
		t.Errorf("got %v", d.Remediation)
	}
	e, err = channelDriftApplied().CloudEvent(appSource)
	if err != nil {
		t.Fatal(err)
	}
	d.Remediation = nil
	if err := json.Unmarshal(e.Data(), &d); err != nil {
		t.Fatal(err)
	}
	if v, ok := d.Remediation["dryRun"]; !ok || v != false {
		t.Errorf("applied: dryRun got %v (present %v), want false", v, ok)
	}
}
