package state_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
	"github.com/google/go-cmp/cmp"

	"github.com/upgradewatch/upgradewatch/internal/azuritetest"
	"github.com/upgradewatch/upgradewatch/internal/fleet"
	"github.com/upgradewatch/upgradewatch/internal/state"
	"github.com/upgradewatch/upgradewatch/internal/watch"
)

func newSilenceTable(t *testing.T) (*state.SilenceTable, *aztables.Client) {
	t.Helper()
	svc := azuritetest.Service(t, azuritetest.Endpoint(t))
	s := state.NewSilences(svc, state.SilenceOptions{TablePrefix: azuritetest.Prefix(t)})
	azuritetest.DropTables(t, svc, s.Table())
	if err := s.EnsureTable(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s, svc.NewClient(s.Table())
}

var silenceT0 = time.Date(2026, 12, 14, 9, 0, 0, 0, time.UTC)

func sampleSilence(id string, until time.Time) fleet.Silence {
	return fleet.Silence{ID: id, Cluster: "8f1c2b3a-4d5e-4f60-9a7b-1c2d3e4f5a6b/rg-shops-*/aks-shop-0?", Code: fleet.CodeUpgradeFailed,
		Target: "pool/*", Until: until, Comment: "CHG0041872: node pool migration to Azure Linux, failures expected",
		CreatedBy: "ops-oncall@contoso.example", CreatedAt: silenceT0}
}

// A silence row round-trips every field, typed for dashboards; the list
// query selects by end (in force, or ended since), and the derived EndsAt
// follows an early end.
func TestSilenceTableRoundTripAndList(t *testing.T) {
	tbl, raw := newSilenceTable(t)
	ctx := context.Background()
	active := sampleSilence("20261214T090000Z-0000000a", silenceT0.Add(48*time.Hour))
	expired := sampleSilence("20261201T090000Z-0000000b", silenceT0.Add(-24*time.Hour))
	expired.Cluster, expired.Target = "", ""
	old := sampleSilence("20261101T090000Z-0000000c", silenceT0.Add(-40*24*time.Hour))
	for _, s := range []fleet.Silence{active, expired, old} {
		if err := tbl.AddSilence(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	if err := tbl.AddSilence(ctx, active); !errors.Is(err, fleet.ErrUnavailable) {
		t.Errorf("second insert of one id: %v, want ErrUnavailable (retry with a new id)", err)
	}
	got, err := tbl.Silence(ctx, active.ID)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(active, got); d != "" {
		t.Errorf("round trip (-want +got):\n%s", d)
	}
	e, err := raw.GetEntity(ctx, "silence", active.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	var cols map[string]any
	_ = json.Unmarshal(e.Value, &cols)
	for _, c := range []string{"Until", "CreatedAt", "EndsAt"} {
		if cols[c+"@odata.type"] != "Edm.DateTime" {
			t.Errorf("%s typed %v, want Edm.DateTime", c, cols[c+"@odata.type"])
		}
	}
	if cols["Kind"] != state.KindSilence || cols["MatchCode"] != fleet.CodeUpgradeFailed || cols["EndedAt"] != nil {
		t.Errorf("columns %v", cols)
	}

	for _, tc := range []struct {
		name  string
		since time.Time
		want  []string
	}{
		{"in force", silenceT0, []string{active.ID}},
		{"and ended in the last 30 days", silenceT0.Add(-30 * 24 * time.Hour), []string{expired.ID, active.ID}},
		{"all", silenceT0.Add(-400 * 24 * time.Hour), []string{old.ID, expired.ID, active.ID}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			list, err := tbl.Silences(ctx, tc.since)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.want, silenceIDs(list)); d != "" {
				t.Errorf("ids (-want +got):\n%s", d)
			}
		})
	}

	// Ended early: no longer in force, EndsAt moved to the end.
	endAt := silenceT0.Add(time.Hour)
	ended, err := tbl.UpdateSilence(ctx, active.ID, func(s *fleet.Silence) error {
		s.EndedAt, s.EndedBy = endAt, "jane@contoso.example"
		return nil
	})
	if err != nil || !ended.EndedAt.Equal(endAt) || ended.EndedBy != "jane@contoso.example" {
		t.Fatalf("end: %+v %v", ended, err)
	}
	if list, _ := tbl.Silences(ctx, endAt.Add(time.Minute)); len(list) != 0 {
		t.Errorf("after its end the silence is still listed in force: %v", silenceIDs(list))
	}
	if list, _ := tbl.Silences(ctx, endAt.Add(-time.Minute)); len(list) != 1 || list[0].EndedBy != "jane@contoso.example" {
		t.Errorf("listed since before its end: %+v, want it with its audit", list)
	}
}

func silenceIDs(list []fleet.Silence) []string {
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = s.ID
	}
	sort.Strings(out)
	return out
}

// Unknown and impossible ids are ErrNotFound; fn declining (ErrNoChange)
// writes nothing; fn's own error comes back as it is.
func TestSilenceTableUpdateErrors(t *testing.T) {
	tbl, raw := newSilenceTable(t)
	ctx := context.Background()
	s := sampleSilence("20261214T090000Z-0000000d", silenceT0.Add(time.Hour))
	if err := tbl.AddSilence(ctx, s); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"20261214T090000Z-ffffffff", "a/b", ""} {
		if _, err := tbl.Silence(ctx, id); !errors.Is(err, fleet.ErrNotFound) {
			t.Errorf("Silence(%q): %v, want ErrNotFound", id, err)
		}
		if _, err := tbl.UpdateSilence(ctx, id, func(*fleet.Silence) error { return nil }); !errors.Is(err, fleet.ErrNotFound) {
			t.Errorf("UpdateSilence(%q): %v, want ErrNotFound", id, err)
		}
	}
	if err := tbl.AddSilence(ctx, sampleSilence("bad#id", silenceT0)); !errors.Is(err, fleet.ErrRejected) {
		t.Errorf("AddSilence of an id that cannot be a key: %v, want ErrRejected", err)
	}
	before, _ := raw.GetEntity(ctx, "silence", s.ID, nil)
	got, err := tbl.UpdateSilence(ctx, s.ID, func(x *fleet.Silence) error { x.Comment = "changed"; return watch.ErrNoChange })
	if err != nil || got.Comment != s.Comment {
		t.Errorf("declined update: %+v %v, want the stored silence", got, err)
	}
	after, _ := raw.GetEntity(ctx, "silence", s.ID, nil)
	if before.ETag != after.ETag {
		t.Error("a declined update wrote the row")
	}
	boom := errors.New("boom")
	if _, err := tbl.UpdateSilence(ctx, s.ID, func(*fleet.Silence) error { return boom }); !errors.Is(err, boom) {
		t.Errorf("fn's error: %v", err)
	}
}

// Instances ending one silence at once: each runs its fn on a fresh read
// after losing the race, so exactly one end is recorded and every caller
// answers it.
func TestSilenceTableConcurrentEnds(t *testing.T) {
	tbl, _ := newSilenceTable(t)
	ctx := context.Background()
	s := sampleSilence("20261214T090000Z-0000000e", silenceT0.Add(24*time.Hour))
	if err := tbl.AddSilence(ctx, s); err != nil {
		t.Fatal(err)
	}
	const n = 6
	results := make([]fleet.Silence, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = tbl.UpdateSilence(ctx, s.ID, func(x *fleet.Silence) error {
				if !x.EndedAt.IsZero() {
					return watch.ErrNoChange
				}
				x.EndedAt, x.EndedBy = silenceT0.Add(time.Duration(i+1)*time.Minute), fmt.Sprintf("caller-%d", i)
				return nil
			})
		}()
	}
	wg.Wait()
	stored, err := tbl.Silence(ctx, s.ID)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("caller %d: %v", i, errs[i])
		}
		if results[i].EndedBy != stored.EndedBy || !results[i].EndedAt.Equal(stored.EndedAt) {
			t.Errorf("caller %d answered %s at %v; stored %s at %v", i, results[i].EndedBy, results[i].EndedAt, stored.EndedBy, stored.EndedAt)
		}
	}
}
