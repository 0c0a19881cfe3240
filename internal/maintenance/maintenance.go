// Package maintenance turns an AKS maintenance configuration into the
// concrete intervals it allows, so rules can tell whether an upgrade ran
// inside its window, when the next one opens and whether a window is long
// enough to finish one. It is pure: no clock, no Azure.
//
// AKS documents the fields but not every corner of the recurrence. Where it
// is silent, this package decides:
//
//   - durationHours 0 (absent) means DefaultDurationHours, the least AKS
//     accepts. Durations outside AKS's 4–24 h are computed as given; Short
//     tells the short ones.
//   - An empty startDate means the window has always been in force: AKS
//     defaults it to the creation date, which a configuration does not carry.
//     Daily then counts its days from 1970-01-01 in the window's offset,
//     Weekly its weeks from the first dayOfWeek on or after that date, the
//     monthly schedules their months from January 1970.
//   - Monthly schedules count months from startDate's month; an occurrence in
//     that month that falls before startDate is skipped, not moved.
//   - AbsoluteMonthly on a day the month lacks (31 in April) falls on the
//     month's last day.
//   - notAllowedDates drop an occurrence whose start falls on one of them; one
//     that starts earlier and runs into them is kept whole.
//   - The legacy form (timeInWeek, no schedule kind) is in UTC hours. Adjacent
//     allowed hours merge into one occurrence, across midnight and the week's
//     end; a day without hourSlots adds none; a week with every hour allowed
//     gives back-to-back week-long occurrences from Sunday 00:00 UTC.
//     notAllowedTime drops the occurrences that start inside it, start
//     included, end excluded. A schedule kind, when set, wins over the legacy
//     fields.
//   - Instants outside the years 0000–9999 are clamped to them.
package maintenance

import (
	"errors"
	"fmt"
	"time"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
)

// Interval is one occurrence of a window: [Start, End) in UTC.
type Interval struct{ Start, End time.Time }

// DefaultDurationHours is the duration assumed when durationHours is absent.
// AKS requires the field, so only hand-made windows lack it; the minimum AKS
// accepts never claims more maintenance time than a real window could have.
const DefaultDurationHours = 4

// MaxIntervals caps what Between returns, so that a daily window over a long
// range cannot exhaust memory.
const MaxIntervals = 1000

var (
	// ErrInvalid is matched (errors.Is) by every error Validate returns: the
	// window is one AKS would refuse or one that cannot be computed.
	ErrInvalid = errors.New("invalid maintenance window")
	// ErrTruncated comes with the first MaxIntervals occurrences when the
	// range holds more.
	ErrTruncated = fmt.Errorf("maintenance: more than %d occurrences", MaxIntervals)
)

// Validate reports, in one error matching ErrInvalid, every field AKS would
// refuse or that makes the window impossible to compute. A duration outside
// AKS's 4–24 h is computed, not refused (see Short), unless it is negative or
// beyond a year.
func Validate(w fleet.MaintenanceWindow) error {
	_, err := compile(w)
	return err
}

// Between returns the occurrences that overlap [from, to), in order,
// including one already running at from. It returns at most MaxIntervals of
// them, with ErrTruncated when there are more.
func Between(w fleet.MaintenanceWindow, from, to time.Time) ([]Interval, error) {
	p, err := compile(w)
	if err != nil {
		return nil, err
	}
	if !from.Before(to) {
		return nil, nil
	}
	lo, hi := floorUnix(from), ceilUnix(to)
	var out []Interval
	for o := range p.after(lo - p.maxDur + 1) {
		if o.start >= hi {
			break
		}
		if o.end <= lo {
			continue
		}
		if len(out) == MaxIntervals {
			return out, ErrTruncated
		}
		out = append(out, o.interval())
	}
	return out, nil
}

// Next returns the first occurrence that ends after t: the one in progress at
// t, if any, else the next to open.
func Next(w fleet.MaintenanceWindow, t time.Time) (Interval, bool, error) {
	p, err := compile(w)
	if err != nil {
		return Interval{}, false, err
	}
	x := floorUnix(t)
	for o := range p.after(x - p.maxDur + 1) {
		if o.end > x {
			return o.interval(), true, nil
		}
	}
	return Interval{}, false, nil
}

// Last returns the latest occurrence that ended at or before t.
func Last(w fleet.MaintenanceWindow, t time.Time) (Interval, bool, error) {
	p, err := compile(w)
	if err != nil {
		return Interval{}, false, err
	}
	x := floorUnix(t)
	for o := range p.before(x - p.minDur) {
		if o.end <= x {
			return o.interval(), true, nil
		}
	}
	return Interval{}, false, nil
}

// Active reports the occurrence in progress at t, if any.
func Active(w fleet.MaintenanceWindow, t time.Time) (Interval, bool, error) {
	in, ok, err := Next(w, t)
	if err != nil || !ok || in.Start.After(t) {
		return Interval{}, false, err
	}
	return in, true, nil
}

// Short reports whether the window is shorter than minHours: its duration, or
// for the legacy form its longest run of allowed hours. AKS starts no
// operation after a window ends, so too short a window may never fit one; it
// recommends four hours.
func Short(w fleet.MaintenanceWindow, minHours int) bool {
	return hours(w) < minHours
}

func hours(w fleet.MaintenanceWindow) int {
	if legacy(w) {
		longest := int64(0)
		for _, r := range runs(slots(w.TimeInWeek)) {
			longest = max(longest, r.dur)
		}
		return int(longest / 3600)
	}
	if w.DurationHours == 0 {
		return DefaultDurationHours
	}
	return w.DurationHours
}
