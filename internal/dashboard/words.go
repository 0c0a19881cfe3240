package dashboard

import (
	"fmt"
	"strings"
	"time"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
	"github.com/upgradewatch/upgradewatch/internal/maintenance"
)

// upcoming is how many occurrences of a window the cluster page lists.
const upcoming = 5

// WindowWords says a maintenance window in plain words: "Every week on
// Sunday, 02:00 for 4 h at UTC+01:00, from 2026-01-04; not on 2026-12-24 to
// 2026-12-26".
func WindowWords(w fleet.MaintenanceWindow) string {
	var b strings.Builder
	if w.Schedule.Kind == "" && len(w.TimeInWeek) > 0 {
		b.WriteString("Allowed hours (UTC): ")
		for i, d := range w.TimeInWeek {
			if i > 0 {
				b.WriteString("; ")
			}
			fmt.Fprintf(&b, "%s %s", d.Day, hourList(d.HourSlots))
		}
	} else {
		b.WriteString(recurrence(w.Schedule))
		hours := w.DurationHours
		if hours == 0 {
			hours = maintenance.DefaultDurationHours
		}
		fmt.Fprintf(&b, ", %s for %d h at %s", orDefault(w.StartTime, "00:00"), hours, offsetWords(w.UTCOffset))
		if w.StartDate != "" {
			b.WriteString(", from " + w.StartDate)
		}
	}
	if len(w.NotAllowed) > 0 {
		spans := make([]string, len(w.NotAllowed))
		for i, d := range w.NotAllowed {
			spans[i] = d.Start
			if d.End != "" && d.End != d.Start {
				spans[i] += " to " + d.End
			}
		}
		b.WriteString("; not on " + strings.Join(spans, ", "))
	}
	return b.String()
}

func recurrence(s fleet.MaintenanceSchedule) string {
	every := func(n int, one, many string) string {
		if n <= 1 {
			return "every " + one
		}
		return fmt.Sprintf("every %d %s", n, many)
	}
	switch s.Kind {
	case fleet.ScheduleDaily:
		return "Every " + strings.TrimPrefix(every(s.IntervalDays, "day", "days"), "every ")
	case fleet.ScheduleWeekly:
		return "Every " + strings.TrimPrefix(every(s.IntervalWeeks, "week", "weeks"), "every ") + " on " + s.DayOfWeek
	case fleet.ScheduleAbsoluteMonthly:
		return fmt.Sprintf("On day %d of %s", s.DayOfMonth, every(s.IntervalMonths, "month", "months"))
	case fleet.ScheduleRelativeMonthly:
		return fmt.Sprintf("On the %s %s of %s", strings.ToLower(s.WeekIndex), s.DayOfWeek, every(s.IntervalMonths, "month", "months"))
	}
	return "On an unknown schedule"
}

func hourList(h []int) string {
	if len(h) == 0 {
		return "no hours"
	}
	parts := make([]string, len(h))
	for i, x := range h {
		parts[i] = fmt.Sprintf("%02d:00", x)
	}
	return strings.Join(parts, ", ")
}

func offsetWords(off string) string {
	if off == "" || off == "+00:00" || off == "-00:00" {
		return "UTC"
	}
	return "UTC" + off
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// Next lists the window's next n occurrences from now (the one open now
// first); an invalid window gives its error.
func Next(w fleet.MaintenanceWindow, now time.Time, n int) ([]maintenance.Interval, error) {
	var out []maintenance.Interval
	t := now
	for len(out) < n {
		in, ok, err := maintenance.Next(w, t)
		if err != nil {
			return out, err
		}
		if !ok {
			break
		}
		out = append(out, in)
		t = in.End
	}
	return out, nil
}

// inOffset formats an instant in UTC and in the window's own offset.
func inOffset(t time.Time, off string) string {
	s := t.UTC().Format("Mon 2006-01-02 15:04 UTC")
	if loc := offsetLocation(off); loc != nil {
		s += " (" + t.In(loc).Format("15:04") + " " + offsetWords(off) + ")"
	}
	return s
}

func offsetLocation(off string) *time.Location {
	if off == "" || off == "+00:00" || off == "-00:00" {
		return nil
	}
	t, err := time.Parse("-07:00", off)
	if err != nil {
		return nil
	}
	_, secs := t.Zone()
	return time.FixedZone(offsetWords(off), secs)
}
