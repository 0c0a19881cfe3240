package dashboard

import (
	"bytes"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
	"github.com/upgradewatch/upgradewatch/internal/patch"
	"github.com/upgradewatch/upgradewatch/internal/watch"
)

var now = time.Date(2026, 11, 24, 9, 30, 0, 0, time.UTC)

func TestTableSortAndCSV(t *testing.T) {
	tb := &Table{ID: "t", Columns: []Column{{Key: "name", Title: "Name"}, {Key: "n", Title: "N", Numeric: true}}, Rows: [][]Cell{
		{C("beta"), num(10)}, {C("Alpha"), num(9)}, {C("=HYPERLINK(\"x\")"), C("")}, {C("gamma"), num(-2)},
	}}
	if !tb.Sort("n", false) {
		t.Fatal("sort by a known column refused")
	}
	var got []string
	for _, r := range tb.Rows {
		got = append(got, r[0].Text)
	}
	// Numbers numerically (10 after 9), empty last.
	if want := []string{"gamma", "Alpha", "beta", "=HYPERLINK(\"x\")"}; !cmp.Equal(got, want) {
		t.Errorf("sorted by n: %v, want %v", got, want)
	}
	if tb.Sort("colour", false) {
		t.Errorf("sort by an unknown column accepted")
	}
	var b bytes.Buffer
	if err := tb.WriteCSV(&b); err != nil {
		t.Fatal(err)
	}
	want := "name,n\ngamma,-2\nAlpha,9\nbeta,10\n\"'=HYPERLINK(\"\"x\"\")\",\n"
	if b.String() != want {
		t.Errorf("csv:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestWindowWords(t *testing.T) {
	cases := []struct {
		w    fleet.MaintenanceWindow
		want string
	}{
		{fleet.MaintenanceWindow{Name: fleet.MaintenanceNodeOS, Schedule: fleet.MaintenanceSchedule{Kind: fleet.ScheduleWeekly, IntervalWeeks: 1, DayOfWeek: "Sunday"},
			DurationHours: 4, UTCOffset: "+01:00", StartTime: "02:00", StartDate: "2026-01-04", NotAllowed: []fleet.DateSpan{{Start: "2026-12-24", End: "2026-12-26"}}},
			"Every week on Sunday, 02:00 for 4 h at UTC+01:00, from 2026-01-04; not on 2026-12-24 to 2026-12-26"},
		{fleet.MaintenanceWindow{Schedule: fleet.MaintenanceSchedule{Kind: fleet.ScheduleRelativeMonthly, IntervalMonths: 2, DayOfWeek: "Tuesday", WeekIndex: "First"}, DurationHours: 6, StartTime: "22:00"},
			"On the first Tuesday of every 2 months, 22:00 for 6 h at UTC"},
		{fleet.MaintenanceWindow{Schedule: fleet.MaintenanceSchedule{Kind: fleet.ScheduleDaily, IntervalDays: 3}},
			"Every 3 days, 00:00 for 4 h at UTC"},
		{fleet.MaintenanceWindow{Name: fleet.MaintenanceDefault, TimeInWeek: []fleet.TimeInWeek{{Day: "Saturday", HourSlots: []int{1, 2}}}},
			"Allowed hours (UTC): Saturday 01:00, 02:00"},
	}
	for _, tc := range cases {
		if got := WindowWords(tc.w); got != tc.want {
			t.Errorf("WindowWords\n got %q\nwant %q", got, tc.want)
		}
	}
}

// A weekly Sunday window: five next occurrences, in order, a week apart.
func TestNextOccurrences(t *testing.T) {
	w := fleet.MaintenanceWindow{Name: fleet.MaintenanceNodeOS, Schedule: fleet.MaintenanceSchedule{Kind: fleet.ScheduleWeekly, IntervalWeeks: 1, DayOfWeek: "Sunday"},
		DurationHours: 4, StartTime: "02:00", UTCOffset: "+01:00"}
	got, err := Next(w, now, upcoming)
	if err != nil || len(got) != 5 {
		t.Fatalf("Next: %v %v", got, err)
	}
	if first := got[0].Start; !first.Equal(time.Date(2026, 11, 29, 1, 0, 0, 0, time.UTC)) {
		t.Errorf("first occurrence %v, want Sunday 2026-11-29 02:00+01:00", first)
	}
	for i := 1; i < len(got); i++ {
		if d := got[i].Start.Sub(got[i-1].Start); d != 7*24*time.Hour {
			t.Errorf("occurrence %d is %v after the previous", i, d)
		}
	}
}

// A window is missed when it passed with nothing run while a newer image
// waited; one with an operation, one before the image, and one still ahead
// are not.
func TestWindowMarks(t *testing.T) {
	id := fleet.ClusterID{SubscriptionID: "3f2b8c1e-7d4a-4e29-9b6f-0a1c5d8e2f47", ResourceGroup: "rg", Name: "aks"}
	c := &fleet.Cluster{ID: id, MaintenanceKnown: true,
		Maintenance: []fleet.MaintenanceWindow{{Name: fleet.MaintenanceNodeOS, DurationHours: 4, StartTime: "00:00",
			Schedule: fleet.MaintenanceSchedule{Kind: fleet.ScheduleWeekly, IntervalWeeks: 1, DayOfWeek: "Monday"}}},
		Pools: map[string]*fleet.Pool{"system": {Name: "system"}},
		Upgrades: map[string]*fleet.Upgrade{"u1": {Key: "u1", Pool: "system", Outcome: fleet.OutcomeSucceeded,
			StartedAt: time.Date(2026, 11, 9, 1, 0, 0, 0, time.UTC), EndedAt: time.Date(2026, 11, 9, 1, 40, 0, 0, time.UTC)}},
	}
	pv := &watch.PatchView{Pools: map[string]patch.PoolStatus{"system": {Pool: "system", Status: patch.StatusBehind,
		Compliance: patch.ComplianceBehind, Evidence: patch.Evidence{AvailableAt: time.Date(2026, 11, 5, 0, 0, 0, 0, time.UTC)}}}}
	marks := windowMarks(c, pv, now.Add(-timelineBack), now.Add(timelineAhead), now)
	got := map[string]string{}
	for _, m := range marks {
		state := "ok"
		switch {
		case m.Missed:
			state = "missed"
		case m.Ops > 0:
			state = "ran"
		}
		got[m.Start.Format("01-02")] = state
	}
	want := map[string]string{"11-02": "ok", "11-09": "ran", "11-16": "missed", "11-23": "missed", "11-30": "ok"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("marks (-want +got):\n%s", d)
	}
	svg := string(timelineSVG(c, marks, now.Add(-timelineBack), now.Add(timelineAhead), now))
	if strings.Count(svg, `class="win-missed"`) != 2 || !strings.Contains(svg, `class="op-Succeeded"`) {
		t.Errorf("the SVG does not mark two missed windows and the operation:\n%s", svg)
	}
}

func TestClustersPageFiltersAndLinks(t *testing.T) {
	rows := []ClusterRow{
		{ID: fleet.ClusterID{SubscriptionID: "3f2b8c1e-7d4a-4e29-9b6f-0a1c5d8e2f47", ResourceGroup: "rg-a", Name: "aks-a"}, Location: "westeurope", Bucket: patch.StatusUpToDate},
		{ID: fleet.ClusterID{SubscriptionID: "3f2b8c1e-7d4a-4e29-9b6f-0a1c5d8e2f47", ResourceGroup: "rg-b", Name: "aks-b"}, Location: "northeurope", Bucket: patch.StatusFailed},
	}
	q, err := ParseClustersQuery(url.Values{"location": {"NorthEurope"}, "sort": {"-pools"}, "code": {"secret"}})
	if err != nil {
		t.Fatal(err)
	}
	p, err := ClustersPage(rows, q, now)
	if err != nil {
		t.Fatal(err)
	}
	tb, _ := p.FindTable("clusters")
	if len(tb.Rows) != 1 || tb.Rows[0][0].Text != "aks-b" {
		t.Errorf("rows %v, want aks-b only", tb.Rows)
	}
	if p.Self != "/api/dashboard/clusters?location=NorthEurope&sort=-pools" {
		t.Errorf("permalink %q", p.Self)
	}
	if !strings.Contains(tb.CSVHref, "format=csv") || strings.Contains(tb.CSVHref+p.Self, "secret") {
		t.Errorf("links %q %q: a CSV link, and nothing but the page's own filters", tb.CSVHref, p.Self)
	}
	if _, err := ParseClustersQuery(url.Values{"status": {"Sideways"}}); err == nil {
		t.Errorf("an unknown status was accepted")
	}
}

// The clusters page shows ClustersPerPage rows at a time, worst first
// across pages, with links to the pages before and after that keep the
// filters; the CSV download holds every row; a bad page is refused.
func TestClustersPagination(t *testing.T) {
	var rows []ClusterRow
	for i := range ClustersPerPage + 20 {
		b := patch.StatusUpToDate
		if i%100 == 0 {
			b = patch.StatusFailed
		}
		rows = append(rows, ClusterRow{ID: fleet.ClusterID{SubscriptionID: "7f3c2a91-5b4e-4d1f-9e8a-2c6b0d4f1a37", ResourceGroup: "rg",
			Name: fmt.Sprintf("aks-%04d", i)}, Location: "westeurope", Bucket: b})
	}
	page := func(raw string) *Page {
		t.Helper()
		v, _ := url.ParseQuery(raw)
		q, err := ParseClustersQuery(v)
		if err != nil {
			t.Fatal(err)
		}
		p, err := ClustersPage(rows, q, now)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	first := page("location=westeurope").Sections[0]
	if len(first.Table.Rows) != ClustersPerPage || first.Table.Rows[0][0].Text != "aks-0000" || first.Table.Rows[5][0].Text != "aks-0500" ||
		first.Table.Rows[6][0].Text != "aks-0001" {
		t.Errorf("page 1: %d rows, starting %s, row 6 %s; want %d, the 6 Failed (aks-0000 … aks-0500) first", len(first.Table.Rows),
			first.Table.Rows[0][0].Text, first.Table.Rows[6][0].Text, ClustersPerPage)
	}
	if len(first.Links) != 1 || first.Links[0].Href != Root+"/clusters?location=westeurope&page=2" ||
		!strings.Contains(first.Table.Caption, "rows 1–500 (page 1 of 2)") {
		t.Errorf("page 1 links %v, caption %q", first.Links, first.Table.Caption)
	}
	second := page("location=westeurope&page=2").Sections[0]
	if len(second.Table.Rows) != 20 || len(second.Links) != 1 || second.Links[0].Text != "Previous page" ||
		!strings.Contains(second.Table.Caption, "rows 501–520 (page 2 of 2)") {
		t.Errorf("page 2: %d rows, links %v, caption %q; want the last 20 and a link back", len(second.Table.Rows), second.Links, second.Table.Caption)
	}
	if csv := page("format=csv&page=2").Sections[0]; len(csv.Table.Rows) != len(rows) {
		t.Errorf("csv: %d rows, want all %d", len(csv.Table.Rows), len(rows))
	}
	for _, bad := range []string{"0", "-1", "two"} {
		if _, err := ParseClustersQuery(url.Values{"page": {bad}}); err == nil {
			t.Errorf("page=%s accepted", bad)
		}
	}
}
