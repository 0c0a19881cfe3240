package state

import (
	"encoding/json"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
)

// A row whose columns are each within a property's limit but together over
// an entity's 1 MiB is brought under it, text clipped with the mark, and
// fitting it again changes nothing.
func TestFitRowBoundsEntitySize(t *testing.T) {
	r := row{"Kind": KindScheduled, "Seq": int64(3)}
	for i := range 20 {
		r[fmt.Sprintf("Text%02d", i)] = strings.Repeat("ß", 40_000)
	}
	r["Evidence"] = `{"a":"` + strings.Repeat("x", 40_000) + `"}`
	fitRow(r)
	if n := entityBytes(r); n > maxEntityBytes {
		t.Fatalf("entity is %d bytes after fitting, want at most %d", n, maxEntityBytes)
	}
	for k, v := range r {
		if s, ok := v.(string); ok && utf16Len(s) > maxStringUnits {
			t.Errorf("%s holds %d units", k, utf16Len(s))
		}
	}
	if !strings.HasSuffix(r["Text00"].(string), clippedMark) {
		t.Error("clipped text carries no mark")
	}
	if r["Evidence"] != "{}" || r["Clipped"] != "Evidence" {
		t.Errorf("oversized JSON column: Evidence %.20q, Clipped %v; want {} and named", r["Evidence"], r["Clipped"])
	}
	again := fitRow(maps.Clone(r))
	if !again.equal(r) {
		t.Error("fitting a fitted row changed it")
	}
}

// Thousands of signals in one operation keep its first and the newest.
func TestSignalsColumnKeepsFirstAndNewest(t *testing.T) {
	var refs []fleet.SignalRef
	at := time.Date(2026, 11, 2, 2, 0, 0, 0, time.UTC)
	for i := range 3000 {
		refs = append(refs, fleet.SignalRef{ID: fmt.Sprintf("started-%05d", i), Kind: fleet.KindRollingStarted, Time: at.Add(time.Duration(i) * time.Second)})
	}
	r := row{}
	signalsColumn(r, refs)
	var got []signalRefCol
	if err := json.Unmarshal([]byte(r["Signals"].(string)), &got); err != nil {
		t.Fatal(err)
	}
	if utf16Len(r["Signals"].(string)) > jsonUnits || got[0].ID != "started-00000" || got[len(got)-1].ID != "started-02999" {
		t.Fatalf("kept %d signals from %s to %s", len(got), got[0].ID, got[len(got)-1].ID)
	}
	if r["SignalsOmitted"] != int32(3000-len(got)) {
		t.Errorf("SignalsOmitted = %v, want %d", r["SignalsOmitted"], 3000-len(got))
	}
}
