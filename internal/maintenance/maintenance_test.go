package maintenance

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
)

// at parses a UTC instant written "2006-01-02 15:04".
func at(s string) time.Time {
	t, err := time.Parse("2006-01-02 15:04", s)
	if err != nil {
		panic(err)
	}
	return t
}

func iv(start, end string) Interval { return Interval{Start: at(start), End: at(end)} }

func daily(n int) fleet.MaintenanceSchedule {
	return fleet.MaintenanceSchedule{Kind: fleet.ScheduleDaily, IntervalDays: n}
}

func weekly(n int, day string) fleet.MaintenanceSchedule {
	return fleet.MaintenanceSchedule{Kind: fleet.ScheduleWeekly, IntervalWeeks: n, DayOfWeek: day}
}

func absolute(n, dom int) fleet.MaintenanceSchedule {
	return fleet.MaintenanceSchedule{Kind: fleet.ScheduleAbsoluteMonthly, IntervalMonths: n, DayOfMonth: dom}
}

func relative(n int, index, day string) fleet.MaintenanceSchedule {
	return fleet.MaintenanceSchedule{Kind: fleet.ScheduleRelativeMonthly, IntervalMonths: n, WeekIndex: index, DayOfWeek: day}
}

// specExample is the REST specification's example body.
var specExample = fleet.MaintenanceWindow{
	Name:          fleet.MaintenanceNodeOS,
	Schedule:      relative(3, "First", "Monday"),
	DurationHours: 10, UTCOffset: "+05:30", StartDate: "2023-01-01", StartTime: "08:30",
	NotAllowed: []fleet.DateSpan{{Start: "2023-02-18", End: "2023-02-25"}, {Start: "2023-12-23", End: "2024-01-05"}},
}

// nightly runs 22:00–04:00 UTC every day from 2024-02-01.
var nightly = fleet.MaintenanceWindow{Schedule: daily(1), DurationHours: 6, StartDate: "2024-02-01", StartTime: "22:00"}

// weekend is the legacy form: Saturday 22:00 to Sunday 02:00 UTC.
var weekend = fleet.MaintenanceWindow{Name: fleet.MaintenanceDefault, TimeInWeek: []fleet.TimeInWeek{
	{Day: "Sunday", HourSlots: []int{1, 0}},
	{Day: "Saturday", HourSlots: []int{22, 23}},
}}

func TestBetween(t *testing.T) {
	cases := []struct {
		name     string
		w        fleet.MaintenanceWindow
		from, to string
		want     []Interval
	}{
		{"daily every day from startDate",
			fleet.MaintenanceWindow{Schedule: daily(1), DurationHours: 4, StartDate: "2024-03-01", StartTime: "02:00"},
			"2024-02-28 00:00", "2024-03-04 00:00",
			[]Interval{iv("2024-03-01 02:00", "2024-03-01 06:00"), iv("2024-03-02 02:00", "2024-03-02 06:00"), iv("2024-03-03 02:00", "2024-03-03 06:00")}},
		{"daily every 3 days counts from startDate",
			fleet.MaintenanceWindow{Schedule: daily(3), DurationHours: 4, StartDate: "2024-03-01", StartTime: "02:00"},
			"2024-02-20 00:00", "2024-03-12 00:00",
			[]Interval{iv("2024-03-01 02:00", "2024-03-01 06:00"), iv("2024-03-04 02:00", "2024-03-04 06:00"),
				iv("2024-03-07 02:00", "2024-03-07 06:00"), iv("2024-03-10 02:00", "2024-03-10 06:00")}},
		{"daily every 3 days without startDate counts from 1970-01-01",
			fleet.MaintenanceWindow{Schedule: daily(3), DurationHours: 4, StartTime: "02:00"},
			"2024-03-01 00:00", "2024-03-10 00:00",
			[]Interval{iv("2024-03-03 02:00", "2024-03-03 06:00"), iv("2024-03-06 02:00", "2024-03-06 06:00"), iv("2024-03-09 02:00", "2024-03-09 06:00")}},
		{"every 2 weeks on Sunday at +05:30 starts on Saturday in UTC",
			fleet.MaintenanceWindow{Schedule: weekly(2, "Sunday"), DurationHours: 4, UTCOffset: "+05:30", StartDate: "2024-03-01", StartTime: "02:00"},
			"2024-03-01 00:00", "2024-04-01 00:00",
			[]Interval{iv("2024-03-02 20:30", "2024-03-03 00:30"), iv("2024-03-16 20:30", "2024-03-17 00:30"), iv("2024-03-30 20:30", "2024-03-31 00:30")}},
		{"Saturday 20:00 at -08:00 is Sunday 04:00 UTC",
			fleet.MaintenanceWindow{Schedule: weekly(1, "Saturday"), DurationHours: 4, UTCOffset: "-08:00", StartDate: "2024-03-01", StartTime: "20:00"},
			"2024-03-01 00:00", "2024-03-12 00:00",
			[]Interval{iv("2024-03-03 04:00", "2024-03-03 08:00"), iv("2024-03-10 04:00", "2024-03-10 08:00")}},
		{"day 31 in a leap year: Feb 29, Apr 30",
			fleet.MaintenanceWindow{Schedule: absolute(1, 31), DurationHours: 4, StartDate: "2028-01-01", StartTime: "01:00"},
			"2028-01-01 00:00", "2028-05-01 00:00",
			[]Interval{iv("2028-01-31 01:00", "2028-01-31 05:00"), iv("2028-02-29 01:00", "2028-02-29 05:00"),
				iv("2028-03-31 01:00", "2028-03-31 05:00"), iv("2028-04-30 01:00", "2028-04-30 05:00")}},
		{"day 31 in a common year: Feb 28",
			fleet.MaintenanceWindow{Schedule: absolute(1, 31), DurationHours: 4, StartDate: "2027-01-01", StartTime: "01:00"},
			"2027-02-01 00:00", "2027-04-01 00:00",
			[]Interval{iv("2027-02-28 01:00", "2027-02-28 05:00"), iv("2027-03-31 01:00", "2027-03-31 05:00")}},
		{"day 10 every 2 months skips startDate's month when the day has passed",
			fleet.MaintenanceWindow{Schedule: absolute(2, 10), DurationHours: 4, StartDate: "2024-01-15"},
			"2024-01-01 00:00", "2024-06-01 00:00",
			[]Interval{iv("2024-03-10 00:00", "2024-03-10 04:00"), iv("2024-05-10 00:00", "2024-05-10 04:00")}},
		{"first Monday",
			fleet.MaintenanceWindow{Schedule: relative(1, "First", "Monday"), DurationHours: 4, StartDate: "2024-01-01"},
			"2024-01-01 00:00", "2024-04-01 00:00",
			[]Interval{iv("2024-01-01 00:00", "2024-01-01 04:00"), iv("2024-02-05 00:00", "2024-02-05 04:00"), iv("2024-03-04 00:00", "2024-03-04 04:00")}},
		{"last Friday",
			fleet.MaintenanceWindow{Schedule: relative(1, "Last", "Friday"), DurationHours: 4, StartDate: "2024-01-01"},
			"2024-01-01 00:00", "2024-04-01 00:00",
			[]Interval{iv("2024-01-26 00:00", "2024-01-26 04:00"), iv("2024-02-23 00:00", "2024-02-23 04:00"), iv("2024-03-29 00:00", "2024-03-29 04:00")}},
		{"spec example: first Monday every 3 months, 2024-01-01 not allowed",
			specExample, "2022-12-01 00:00", "2024-06-01 00:00",
			[]Interval{iv("2023-01-02 03:00", "2023-01-02 13:00"), iv("2023-04-03 03:00", "2023-04-03 13:00"),
				iv("2023-07-03 03:00", "2023-07-03 13:00"), iv("2023-10-02 03:00", "2023-10-02 13:00"),
				iv("2024-04-01 03:00", "2024-04-01 13:00")}},
		{"not allowed dates drop the occurrences starting on them",
			fleet.MaintenanceWindow{Schedule: daily(1), DurationHours: 4, StartDate: "2024-03-01", StartTime: "02:00",
				NotAllowed: []fleet.DateSpan{{Start: "2024-03-02", End: "2024-03-03"}}},
			"2024-03-01 00:00", "2024-03-05 00:00",
			[]Interval{iv("2024-03-01 02:00", "2024-03-01 06:00"), iv("2024-03-04 02:00", "2024-03-04 06:00")}},
		{"not allowed dates are in the offset",
			fleet.MaintenanceWindow{Schedule: daily(1), DurationHours: 4, UTCOffset: "+02:00", StartDate: "2024-03-01", StartTime: "01:00",
				NotAllowed: []fleet.DateSpan{{Start: "2024-03-02", End: "2024-03-02"}}},
			"2024-02-29 00:00", "2024-03-03 00:00",
			[]Interval{iv("2024-02-29 23:00", "2024-03-01 03:00"), iv("2024-03-02 23:00", "2024-03-03 03:00")}},
		{"a window running into not allowed dates is kept",
			fleet.MaintenanceWindow{Schedule: daily(1), DurationHours: 6, StartDate: "2024-03-01", StartTime: "22:00",
				NotAllowed: []fleet.DateSpan{{Start: "2024-03-02", End: "2024-03-02"}}},
			"2024-03-01 00:00", "2024-03-04 00:00",
			[]Interval{iv("2024-03-01 22:00", "2024-03-02 04:00"), iv("2024-03-03 22:00", "2024-03-04 04:00")}},
		{"22:00 for 6 h on the 31st crosses midnight and month end",
			fleet.MaintenanceWindow{Schedule: absolute(1, 31), DurationHours: 6, StartDate: "2024-01-01", StartTime: "22:00"},
			"2024-01-01 00:00", "2024-04-01 00:00",
			[]Interval{iv("2024-01-31 22:00", "2024-02-01 04:00"), iv("2024-02-29 22:00", "2024-03-01 04:00"), iv("2024-03-31 22:00", "2024-04-01 04:00")}},
		{"a window running at from is included",
			nightly, "2024-03-02 01:00", "2024-03-02 23:00",
			[]Interval{iv("2024-03-01 22:00", "2024-03-02 04:00"), iv("2024-03-02 22:00", "2024-03-03 04:00")}},
		{"a window ending at from is not",
			nightly, "2024-03-02 04:00", "2024-03-02 22:00", nil},
		{"a window starting at to is not",
			nightly, "2024-03-02 05:00", "2024-03-02 22:00", nil},
		{"nothing before a future startDate",
			fleet.MaintenanceWindow{Schedule: daily(1), DurationHours: 4, StartDate: "2030-01-01"},
			"2029-12-25 00:00", "2030-01-03 00:00",
			[]Interval{iv("2030-01-01 00:00", "2030-01-01 04:00"), iv("2030-01-02 00:00", "2030-01-02 04:00")}},
		{"empty range", nightly, "2024-03-02 01:00", "2024-03-02 01:00", nil},
		{"legacy slots merge across midnight into one occurrence",
			weekend, "2024-03-01 00:00", "2024-03-15 00:00",
			[]Interval{iv("2024-03-02 22:00", "2024-03-03 02:00"), iv("2024-03-09 22:00", "2024-03-10 02:00")}},
		{"legacy not allowed time drops occurrences starting inside it",
			fleet.MaintenanceWindow{TimeInWeek: weekend.TimeInWeek,
				NotAllowedTime: []fleet.TimeSpan{{Start: at("2024-03-09 00:00"), End: at("2024-03-09 22:00")}, {Start: at("2024-03-09 22:00"), End: at("2024-03-10 00:00")}}},
			"2024-03-01 00:00", "2024-03-20 00:00",
			[]Interval{iv("2024-03-02 22:00", "2024-03-03 02:00"), iv("2024-03-16 22:00", "2024-03-17 02:00")}},
		{"legacy separate hours stay separate",
			fleet.MaintenanceWindow{TimeInWeek: []fleet.TimeInWeek{{Day: "Monday", HourSlots: []int{3, 5}}}},
			"2024-03-04 00:00", "2024-03-05 00:00",
			[]Interval{iv("2024-03-04 03:00", "2024-03-04 04:00"), iv("2024-03-04 05:00", "2024-03-04 06:00")}},
		{"legacy all week gives back-to-back weeks from Sunday",
			fleet.MaintenanceWindow{TimeInWeek: allWeek()},
			"2024-03-01 00:00", "2024-03-11 00:00",
			[]Interval{iv("2024-02-25 00:00", "2024-03-03 00:00"), iv("2024-03-03 00:00", "2024-03-10 00:00"), iv("2024-03-10 00:00", "2024-03-17 00:00")}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Between(tc.w, at(tc.from), at(tc.to))
			if err != nil {
				t.Fatalf("Between: %v", err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Between(%s, %s) (-want +got):\n%s", tc.from, tc.to, diff)
			}
		})
	}
}

func allWeek() []fleet.TimeInWeek {
	var out []fleet.TimeInWeek
	for _, d := range []string{"Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"} {
		tw := fleet.TimeInWeek{Day: d}
		for h := range 24 {
			tw.HourSlots = append(tw.HourSlots, h)
		}
		out = append(out, tw)
	}
	return out
}

func TestBetweenTruncated(t *testing.T) {
	w := fleet.MaintenanceWindow{Schedule: daily(1), DurationHours: 4}
	from := at("2024-01-01 00:00")
	cases := []struct {
		name    string
		to      time.Time
		wantLen int
		wantErr error
	}{
		{"exactly MaxIntervals", from.AddDate(0, 0, MaxIntervals), MaxIntervals, nil},
		{"one more", from.AddDate(0, 0, MaxIntervals+1), MaxIntervals, ErrTruncated},
		{"ten years", from.AddDate(10, 0, 0), MaxIntervals, ErrTruncated},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Between(w, from, tc.to)
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
				t.Errorf("err %v, want %v", err, tc.wantErr)
			}
			if len(got) != tc.wantLen {
				t.Errorf("got %d intervals, want %d", len(got), tc.wantLen)
			}
			if len(got) > 0 && !got[0].Start.Equal(from) {
				t.Errorf("first starts %s, want %s", got[0].Start, from)
			}
		})
	}
}

func TestNext(t *testing.T) {
	cases := []struct {
		name   string
		w      fleet.MaintenanceWindow
		t      string
		want   Interval
		wantOK bool
	}{
		{"in progress", nightly, "2024-03-02 01:00", iv("2024-03-01 22:00", "2024-03-02 04:00"), true},
		{"at the start", nightly, "2024-03-01 22:00", iv("2024-03-01 22:00", "2024-03-02 04:00"), true},
		{"at the end: the next one", nightly, "2024-03-02 04:00", iv("2024-03-02 22:00", "2024-03-03 04:00"), true},
		{"between windows", nightly, "2024-03-02 12:00", iv("2024-03-02 22:00", "2024-03-03 04:00"), true},
		{"long before startDate", nightly, "2020-01-01 00:00", iv("2024-02-01 22:00", "2024-02-02 04:00"), true},
		{"past long not allowed dates",
			fleet.MaintenanceWindow{Schedule: daily(1), DurationHours: 4, NotAllowed: []fleet.DateSpan{{Start: "2024-01-01", End: "2099-12-31"}}},
			"2024-06-01 00:00", iv("2100-01-01 00:00", "2100-01-01 04:00"), true},
		{"spec example skips 2024-01-01", specExample, "2023-10-03 00:00", iv("2024-04-01 03:00", "2024-04-01 13:00"), true},
		{"legacy in progress across the week end", weekend, "2024-03-03 01:59", iv("2024-03-02 22:00", "2024-03-03 02:00"), true},
		{"legacy next week", weekend, "2024-03-03 02:00", iv("2024-03-09 22:00", "2024-03-10 02:00"), true},
		{"none left before year 10000",
			fleet.MaintenanceWindow{Schedule: daily(1), DurationHours: 4, NotAllowed: []fleet.DateSpan{{Start: "2024-01-01", End: "9999-12-31"}}},
			"2024-06-01 00:00", Interval{}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, ok, err := Next(tc.w, at(tc.t))
			if err != nil {
				t.Fatalf("Next: %v", err)
			}
			if ok != tc.wantOK || got != tc.want {
				t.Errorf("Next(%s) = %v, %v; want %v, %v", tc.t, got, ok, tc.want, tc.wantOK)
			}
		})
	}
}

func TestLast(t *testing.T) {
	cases := []struct {
		name   string
		w      fleet.MaintenanceWindow
		t      time.Time
		want   Interval
		wantOK bool
	}{
		{"exactly at the end", nightly, at("2024-03-02 04:00"), iv("2024-03-01 22:00", "2024-03-02 04:00"), true},
		{"just before the end", nightly, at("2024-03-02 04:00").Add(-time.Nanosecond), iv("2024-02-29 22:00", "2024-03-01 04:00"), true},
		{"before the first has ended", nightly, at("2024-02-02 03:59"), Interval{}, false},
		{"before startDate", nightly, at("2023-01-01 00:00"), Interval{}, false},
		{"spec example skips 2024-01-01", specExample, at("2024-03-01 00:00"), iv("2023-10-02 03:00", "2023-10-02 13:00"), true},
		{"legacy at the end", weekend, at("2024-03-10 02:00"), iv("2024-03-09 22:00", "2024-03-10 02:00"), true},
		{"legacy in progress: the week before", weekend, at("2024-03-10 01:00"), iv("2024-03-02 22:00", "2024-03-03 02:00"), true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, ok, err := Last(tc.w, tc.t)
			if err != nil {
				t.Fatalf("Last: %v", err)
			}
			if ok != tc.wantOK || got != tc.want {
				t.Errorf("Last(%s) = %v, %v; want %v, %v", tc.t, got, ok, tc.want, tc.wantOK)
			}
		})
	}
}

func TestActive(t *testing.T) {
	cases := []struct {
		name   string
		w      fleet.MaintenanceWindow
		t      time.Time
		want   Interval
		wantOK bool
	}{
		{"at the start", nightly, at("2024-03-01 22:00"), iv("2024-03-01 22:00", "2024-03-02 04:00"), true},
		{"past midnight", nightly, at("2024-03-02 03:59"), iv("2024-03-01 22:00", "2024-03-02 04:00"), true},
		{"at the end", nightly, at("2024-03-02 04:00"), Interval{}, false},
		{"just before the start", nightly, at("2024-03-01 22:00").Add(-time.Nanosecond), Interval{}, false},
		{"not on a not allowed date",
			fleet.MaintenanceWindow{Schedule: daily(1), DurationHours: 24, NotAllowed: []fleet.DateSpan{{Start: "2024-03-02", End: "2024-03-02"}}},
			at("2024-03-02 12:00"), Interval{}, false},
		{"legacy", weekend, at("2024-03-02 23:30"), iv("2024-03-02 22:00", "2024-03-03 02:00"), true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, ok, err := Active(tc.w, tc.t)
			if err != nil {
				t.Fatalf("Active: %v", err)
			}
			if ok != tc.wantOK || got != tc.want {
				t.Errorf("Active(%s) = %v, %v; want %v, %v", tc.t, got, ok, tc.want, tc.wantOK)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	ok := fleet.MaintenanceWindow{Schedule: daily(1), DurationHours: 4}
	with := func(f func(*fleet.MaintenanceWindow)) fleet.MaintenanceWindow {
		w := ok
		f(&w)
		return w
	}
	cases := []struct {
		name string
		w    fleet.MaintenanceWindow
		want []string // substrings of the error; none: valid
	}{
		{"spec example", specExample, nil},
		{"defaults", fleet.MaintenanceWindow{Schedule: weekly(1, "sunday")}, nil},
		{"short duration is not an error", with(func(w *fleet.MaintenanceWindow) { w.DurationHours = 2 }), nil},
		{"legacy", weekend, nil},
		{"schedule kind wins over legacy fields", with(func(w *fleet.MaintenanceWindow) { w.TimeInWeek = []fleet.TimeInWeek{{Day: "Moonday"}} }), nil},
		{"intervalDays 9", with(func(w *fleet.MaintenanceWindow) { w.Schedule.IntervalDays = 9 }), []string{"daily intervalDays 9: want 1-7"}},
		{"intervalDays absent", with(func(w *fleet.MaintenanceWindow) { w.Schedule.IntervalDays = 0 }), []string{"intervalDays 0"}},
		{"utcOffset +5:30", with(func(w *fleet.MaintenanceWindow) { w.UTCOffset = "+5:30" }), []string{`utcOffset "+5:30"`}},
		{"utcOffset minutes", with(func(w *fleet.MaintenanceWindow) { w.UTCOffset = "+05:60" }), []string{`utcOffset "+05:60"`}},
		{"startTime 25:00", with(func(w *fleet.MaintenanceWindow) { w.StartTime = "25:00" }), []string{`startTime "25:00"`}},
		{"startTime 9:00", with(func(w *fleet.MaintenanceWindow) { w.StartTime = "9:00" }), []string{`startTime "9:00"`}},
		{"startDate", with(func(w *fleet.MaintenanceWindow) { w.StartDate = "2024-13-01" }), []string{`startDate "2024-13-01"`}},
		{"no schedule kind", fleet.MaintenanceWindow{Name: "x", DurationHours: 4}, []string{`maintenance window "x": no schedule`}},
		{"unknown kind", with(func(w *fleet.MaintenanceWindow) { w.Schedule.Kind = "Hourly" }), []string{`schedule kind "Hourly"`}},
		{"intervalWeeks 5", fleet.MaintenanceWindow{Schedule: weekly(5, "Monday")}, []string{"weekly intervalWeeks 5: want 1-4"}},
		{"dayOfWeek", fleet.MaintenanceWindow{Schedule: weekly(1, "Funday")}, []string{`weekly dayOfWeek "Funday"`}},
		{"intervalMonths 7", fleet.MaintenanceWindow{Schedule: absolute(7, 1)}, []string{"absoluteMonthly intervalMonths 7: want 1-6"}},
		{"dayOfMonth 32", fleet.MaintenanceWindow{Schedule: absolute(1, 32)}, []string{"absoluteMonthly dayOfMonth 32: want 1-31"}},
		{"weekIndex", fleet.MaintenanceWindow{Schedule: relative(1, "Fifth", "Monday")}, []string{`weekIndex "Fifth"`}},
		{"negative duration", with(func(w *fleet.MaintenanceWindow) { w.DurationHours = -1 }), []string{"durationHours -1"}},
		{"duration beyond a year", with(func(w *fleet.MaintenanceWindow) { w.DurationHours = 10000 }), []string{"durationHours 10000"}},
		{"not allowed dates reversed", with(func(w *fleet.MaintenanceWindow) {
			w.NotAllowed = []fleet.DateSpan{{Start: "2024-03-02", End: "2024-03-01"}}
		}), []string{"notAllowedDates[0]: end 2024-03-01 before start 2024-03-02"}},
		{"not allowed date unparsable", with(func(w *fleet.MaintenanceWindow) {
			w.NotAllowed = []fleet.DateSpan{{Start: "2024-03-02", End: "soon"}}
		}), []string{`notAllowedDates[0].end "soon"`}},
		{"legacy bad day and hour", fleet.MaintenanceWindow{TimeInWeek: []fleet.TimeInWeek{{Day: "Moonday", HourSlots: []int{24}}}},
			[]string{`timeInWeek[0].day "Moonday"`, "hour 24", "allows no hour"}},
		{"legacy not allowed time reversed", fleet.MaintenanceWindow{TimeInWeek: weekend.TimeInWeek,
			NotAllowedTime: []fleet.TimeSpan{{Start: at("2024-03-02 00:00"), End: at("2024-03-01 00:00")}}},
			[]string{"notAllowedTime[0]: end"}},
		{"all problems at once", fleet.MaintenanceWindow{Schedule: daily(9), UTCOffset: "+5:30", StartTime: "25:00"},
			[]string{"intervalDays 9", "utcOffset", "startTime"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := Validate(tc.w)
			if len(tc.want) == 0 {
				if err != nil {
					t.Errorf("got %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("got %v, want an ErrInvalid", err)
			}
			for _, s := range tc.want {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("got %q, want it to contain %q", err, s)
				}
			}
		})
	}
}

// TestInvalidWindow checks that every computation refuses what Validate refuses.
func TestInvalidWindow(t *testing.T) {
	w := fleet.MaintenanceWindow{Schedule: daily(9)}
	now := at("2024-03-01 00:00")
	if _, err := Between(w, now, now.Add(time.Hour)); !errors.Is(err, ErrInvalid) {
		t.Errorf("Between: got %v, want ErrInvalid", err)
	}
	if _, _, err := Next(w, now); !errors.Is(err, ErrInvalid) {
		t.Errorf("Next: got %v, want ErrInvalid", err)
	}
	if _, _, err := Last(w, now); !errors.Is(err, ErrInvalid) {
		t.Errorf("Last: got %v, want ErrInvalid", err)
	}
	if _, _, err := Active(w, now); !errors.Is(err, ErrInvalid) {
		t.Errorf("Active: got %v, want ErrInvalid", err)
	}
}

func TestShort(t *testing.T) {
	cases := []struct {
		name string
		w    fleet.MaintenanceWindow
		min  int
		want bool
	}{
		{"4 h of 4", fleet.MaintenanceWindow{Schedule: daily(1), DurationHours: 4}, 4, false},
		{"3 h of 4", fleet.MaintenanceWindow{Schedule: daily(1), DurationHours: 3}, 4, true},
		{"absent duration is the default", fleet.MaintenanceWindow{Schedule: daily(1)}, DefaultDurationHours, false},
		{"legacy 4 h run of 4", weekend, 4, false},
		{"legacy 4 h run of 5", weekend, 5, true},
		{"legacy single hours", fleet.MaintenanceWindow{TimeInWeek: []fleet.TimeInWeek{{Day: "Monday", HourSlots: []int{3, 5}}}}, 2, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := Short(tc.w, tc.min); got != tc.want {
				t.Errorf("Short(%d) = %v, want %v", tc.min, got, tc.want)
			}
		})
	}
}
