package maintenance

import (
	"errors"
	"testing"
	"time"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
)

var kinds = []string{"", fleet.ScheduleDaily, fleet.ScheduleWeekly, fleet.ScheduleAbsoluteMonthly, fleet.ScheduleRelativeMonthly}

// FuzzBetween builds windows from random field values and checks that no
// input panics and that Between, Next, Active and Last agree on well-formed
// intervals.
func FuzzBetween(f *testing.F) {
	f.Add(uint8(4), 3, "Monday", 0, "First", 10, "+05:30", "2023-01-01", "08:30", "2023-02-18", "2023-02-25",
		[]byte(nil), int64(0), int64(0), int64(1672531200), int64(0), uint32(60*24*600))
	f.Add(uint8(1), 1, "", 0, "", 6, "", "2024-02-01", "22:00", "", "", []byte(nil), int64(0), int64(0),
		int64(1709330400), int64(5), uint32(60*24*3))
	f.Add(uint8(2), 2, "Sunday", 0, "", 4, "-08:00", "", "23:59", "2024-03-02", "2024-03-02", []byte(nil), int64(0), int64(0),
		int64(1709251200), int64(0), uint32(60*24*90))
	f.Add(uint8(3), 1, "", 31, "", 24, "+14:00", "2028-01-31", "22:00", "", "", []byte(nil), int64(0), int64(0),
		int64(1830297600), int64(0), uint32(60*24*400))
	f.Add(uint8(0), 0, "", 0, "", 0, "", "", "", "", "", []byte{166, 167, 0, 1, 30}, int64(1709935200), int64(1709942400),
		int64(1709251200), int64(999999999), uint32(60*24*30))
	f.Add(uint8(1), 7, "", 0, "", 8784, "-23:59", "0000-01-01", "00:00", "9999-01-01", "9999-12-31", []byte(nil), int64(0), int64(0),
		int64(-62167219200), int64(0), uint32(1<<32-1))
	f.Fuzz(func(t *testing.T, kind uint8, interval int, dayOfWeek string, dayOfMonth int, weekIndex string, duration int,
		offset, startDate, startTime, naStart, naEnd string, slots []byte, natStart, natEnd, fromSec, fromNano int64, minutes uint32) {
		w := fleet.MaintenanceWindow{
			Schedule: fleet.MaintenanceSchedule{Kind: kinds[int(kind)%len(kinds)],
				IntervalDays: interval, IntervalWeeks: interval, IntervalMonths: interval,
				DayOfWeek: dayOfWeek, DayOfMonth: dayOfMonth, WeekIndex: weekIndex},
			DurationHours: duration, UTCOffset: offset, StartDate: startDate, StartTime: startTime,
		}
		if naStart != "" || naEnd != "" {
			w.NotAllowed = []fleet.DateSpan{{Start: naStart, End: naEnd}}
		}
		for _, b := range slots {
			days := []string{"Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"}
			w.TimeInWeek = append(w.TimeInWeek, fleet.TimeInWeek{Day: days[int(b)/24%7], HourSlots: []int{int(b) % 24}})
		}
		if natStart != 0 || natEnd != 0 {
			w.NotAllowedTime = []fleet.TimeSpan{{Start: time.Unix(natStart, 0), End: time.Unix(natEnd, 0)}}
		}
		from := time.Unix(fromSec, fromNano%int64(time.Second))
		to := from.Add(time.Duration(minutes) * time.Minute)

		got, err := Between(w, from, to)
		verr := Validate(w)
		switch {
		case verr != nil:
			if !errors.Is(err, ErrInvalid) || !errors.Is(verr, ErrInvalid) {
				t.Fatalf("Between err %v, Validate %v: want both ErrInvalid", err, verr)
			}
			Short(w, 4)
			return
		case err != nil && !errors.Is(err, ErrTruncated):
			t.Fatalf("Between: %v", err)
		}
		truncated := errors.Is(err, ErrTruncated)
		if len(got) > MaxIntervals {
			t.Fatalf("got %d intervals, want at most %d", len(got), MaxIntervals)
		}
		for i, in := range got {
			if in.Start.Location() != time.UTC || in.End.Location() != time.UTC {
				t.Errorf("interval %d %v not in UTC", i, in)
			}
			if !in.Start.Before(in.End) || !in.Start.Before(to) || !in.End.After(from) {
				t.Fatalf("interval %d %v: want Start < End, Start < to %v, End > from %v", i, in, to, from)
			}
			if i > 0 && (!got[i-1].Start.Before(in.Start) || in.End.Before(got[i-1].End)) {
				t.Fatalf("intervals %d %v and %d %v out of order", i-1, got[i-1], i, in)
			}
		}
		if len(got) == 0 {
			return
		}
		next, ok, err := Next(w, from)
		if err != nil || !ok || next != got[0] {
			t.Errorf("Next(from) = %v, %v, %v; want Between's first %v", next, ok, err, got[0])
		}
		active, ok, err := Active(w, from)
		if want := !got[0].Start.After(from); err != nil || ok != want || (ok && active != got[0]) {
			t.Errorf("Active(from) = %v, %v, %v; want %v, %v", active, ok, err, got[0], want)
		}
		if truncated {
			return
		}
		var want *Interval
		for i := range got {
			if !got[i].End.After(to) {
				want = &got[i]
			}
		}
		last, ok, err := Last(w, to)
		switch {
		case err != nil:
			t.Errorf("Last: %v", err)
		case want != nil && (!ok || last != *want):
			t.Errorf("Last(to) = %v, %v; want %v", last, ok, *want)
		case want == nil && ok && last.End.After(from):
			t.Errorf("Last(to) = %v; want none ending after from %v", last, from)
		}
	})
}
