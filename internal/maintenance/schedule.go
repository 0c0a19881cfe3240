package maintenance

import (
	"cmp"
	"fmt"
	"iter"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
)

// All arithmetic is on Unix seconds and on day numbers (days since
// 1970-01-01), which a fixed offset maps onto each other without surprises.
const (
	day  = 24 * 60 * 60
	week = 7 * day
	// sunday is 1970-01-04 00:00 UTC, where legacy weeks start.
	sunday = 3 * day
	// maxDurationHours bounds what can be computed; AKS itself stops at 24.
	maxDurationHours = 366 * 24
)

var (
	minUnix = time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	maxUnix = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
)

// occ is one occurrence in Unix seconds, end excluded.
type occ struct{ start, end int64 }

func (o occ) interval() Interval {
	return Interval{Start: time.Unix(o.start, 0).UTC(), End: time.Unix(o.end, 0).UTC()}
}

// series is the recurrence before not-allowed spans are taken out.
type series interface {
	next(x int64) (occ, bool) // the first occurrence starting at or after x
	prev(x int64) (occ, bool) // the last occurrence starting at or before x
}

// span is a half-open range of Unix seconds in which no occurrence may start.
type span struct{ lo, hi int64 }

// plan is a validated window ready to enumerate.
type plan struct {
	series         series
	minDur, maxDur int64
	blocked        []span // sorted, disjoint
}

// after yields the allowed occurrences starting at or after x, in order. Each
// step either yields or jumps past a blocked span, so it never spins.
func (p *plan) after(x int64) iter.Seq[occ] {
	return func(yield func(occ) bool) {
		for x = max(x, minUnix); x < maxUnix; {
			o, ok := p.series.next(x)
			if !ok || o.start >= maxUnix {
				return
			}
			if b, in := p.block(o.start); in {
				x = b.hi
				continue
			}
			if !yield(o) {
				return
			}
			x = o.start + 1
		}
	}
}

// before yields the allowed occurrences starting at or before x, latest first.
func (p *plan) before(x int64) iter.Seq[occ] {
	return func(yield func(occ) bool) {
		for x = min(x, maxUnix); x >= minUnix; {
			o, ok := p.series.prev(x)
			if !ok || o.start < minUnix {
				return
			}
			if b, in := p.block(o.start); in {
				x = b.lo - 1
				continue
			}
			if !yield(o) {
				return
			}
			x = o.start - 1
		}
	}
}

func (p *plan) block(s int64) (span, bool) {
	i, _ := slices.BinarySearchFunc(p.blocked, s, func(b span, s int64) int {
		if b.hi <= s {
			return -1
		}
		return 1
	})
	if i < len(p.blocked) && p.blocked[i].lo <= s {
		return p.blocked[i], true
	}
	return span{}, false
}

// compile checks the window and builds its plan. All problems are reported
// together, so one look at a configuration shows everything wrong with it.
func compile(w fleet.MaintenanceWindow) (*plan, error) {
	var c checker
	var p *plan
	if legacy(w) {
		p = compileLegacy(w, &c)
	} else {
		p = compileSchedule(w, &c)
	}
	if err := c.err(w.Name); err != nil {
		return nil, err
	}
	slices.SortFunc(p.blocked, func(a, b span) int { return cmp.Compare(a.lo, b.lo) })
	merged := p.blocked[:0]
	for _, b := range p.blocked {
		if n := len(merged); n > 0 && b.lo <= merged[n-1].hi {
			merged[n-1].hi = max(merged[n-1].hi, b.hi)
			continue
		}
		merged = append(merged, b)
	}
	p.blocked = merged
	return p, nil
}

func legacy(w fleet.MaintenanceWindow) bool {
	return w.Schedule.Kind == "" && len(w.TimeInWeek) > 0
}

func compileSchedule(w fleet.MaintenanceWindow, c *checker) *plan {
	s := w.Schedule
	off := c.offset(w.UTCOffset)
	startMin := c.clock(w.StartTime)
	dur := int64(w.DurationHours)
	switch {
	case dur == 0:
		dur = DefaultDurationHours
	case dur < 0 || dur > maxDurationHours:
		c.addf("durationHours %d: want 1-%d to compute (AKS accepts 4-24)", dur, maxDurationHours)
	}
	r := &recurring{c: int64(startMin)*60 - off, dur: dur * 3600, first: math.MinInt64}
	if w.StartDate != "" {
		if d, ok := c.date("startDate", w.StartDate); ok {
			r.first = d
		}
	}
	anchor := int64(0) // 1970-01-01: where the count starts without a startDate
	if r.first != math.MinInt64 {
		anchor = r.first
	}
	switch {
	case strings.EqualFold(s.Kind, fleet.ScheduleDaily):
		n := c.between("daily intervalDays", s.IntervalDays, 1, 7)
		r.days = periodic{anchor: anchor, period: int64(n)}
	case strings.EqualFold(s.Kind, fleet.ScheduleWeekly):
		n := c.between("weekly intervalWeeks", s.IntervalWeeks, 1, 4)
		wd := c.weekday("weekly dayOfWeek", s.DayOfWeek)
		r.days = periodic{anchor: anchor + floorMod(wd-weekday(anchor), 7), period: 7 * int64(n)}
	case strings.EqualFold(s.Kind, fleet.ScheduleAbsoluteMonthly):
		n := c.between("absoluteMonthly intervalMonths", s.IntervalMonths, 1, 6)
		dm := int64(c.between("absoluteMonthly dayOfMonth", s.DayOfMonth, 1, 31))
		r.days = monthly{anchor: monthOf(anchor), every: int64(n), dayOf: func(m int64) int64 {
			first := monthStart(m)
			return first + min(dm, monthStart(m+1)-first) - 1
		}}
	case strings.EqualFold(s.Kind, fleet.ScheduleRelativeMonthly):
		n := c.between("relativeMonthly intervalMonths", s.IntervalMonths, 1, 6)
		wd := c.weekday("relativeMonthly dayOfWeek", s.DayOfWeek)
		idx := c.weekIndex(s.WeekIndex)
		r.days = monthly{anchor: monthOf(anchor), every: int64(n), dayOf: func(m int64) int64 {
			if idx < 0 {
				last := monthStart(m+1) - 1
				return last - floorMod(weekday(last)-wd, 7)
			}
			first := monthStart(m)
			return first + floorMod(wd-weekday(first), 7) + 7*idx
		}}
	case s.Kind == "":
		c.addf("no schedule: set a schedule kind, or timeInWeek for the legacy form")
	default:
		c.addf("schedule kind %q: want %s, %s, %s or %s", s.Kind,
			fleet.ScheduleDaily, fleet.ScheduleWeekly, fleet.ScheduleAbsoluteMonthly, fleet.ScheduleRelativeMonthly)
	}
	p := &plan{series: r, minDur: r.dur, maxDur: r.dur}
	for i, d := range w.NotAllowed {
		a, okA := c.date(fmt.Sprintf("notAllowedDates[%d].start", i), d.Start)
		b, okB := c.date(fmt.Sprintf("notAllowedDates[%d].end", i), d.End)
		if okA && okB && b < a {
			c.addf("notAllowedDates[%d]: end %s before start %s", i, d.End, d.Start)
		}
		// A start on day D is at D*day + startTime - offset, so local
		// midnights bound the starts on the dates.
		p.blocked = append(p.blocked, span{a*day - off, (b+1)*day - off})
	}
	return p
}

// recurring is a schedule kind: one occurrence on each of its days, at the
// same time of day, never on a day before first.
type recurring struct {
	c     int64 // start = day*86400 + c: startTime minus the offset
	dur   int64
	first int64
	days  dayRule
}

// dayRule is a recurrence over day numbers, unbounded both ways.
type dayRule interface {
	next(d int64) int64 // the first occurrence day >= d
	prev(d int64) int64 // the last occurrence day <= d
}

func (r *recurring) next(x int64) (occ, bool) {
	d := max(ceilDiv(x-r.c, day), r.first)
	s := r.days.next(d)*day + r.c
	return occ{s, s + r.dur}, true
}

func (r *recurring) prev(x int64) (occ, bool) {
	d := r.days.prev(floorDiv(x-r.c, day))
	if d < r.first {
		return occ{}, false
	}
	s := d*day + r.c
	return occ{s, s + r.dur}, true
}

// periodic is every period days from anchor (Daily, Weekly).
type periodic struct{ anchor, period int64 }

func (p periodic) next(d int64) int64 { return p.anchor + ceilDiv(d-p.anchor, p.period)*p.period }
func (p periodic) prev(d int64) int64 { return p.anchor + floorDiv(d-p.anchor, p.period)*p.period }

// monthly is one day in every every-th month from anchor (months since year 0).
type monthly struct {
	anchor, every int64
	dayOf         func(month int64) int64
}

// next and prev look at most at two months: the occurrence month at or
// before/after d's month, then the one beyond it.
func (m monthly) next(d int64) int64 {
	for k := ceilDiv(monthOf(d)-m.anchor, m.every); ; k++ {
		if o := m.dayOf(m.anchor + k*m.every); o >= d {
			return o
		}
	}
}

func (m monthly) prev(d int64) int64 {
	for k := floorDiv(monthOf(d)-m.anchor, m.every); ; k-- {
		if o := m.dayOf(m.anchor + k*m.every); o <= d {
			return o
		}
	}
}

func compileLegacy(w fleet.MaintenanceWindow, c *checker) *plan {
	for i, t := range w.TimeInWeek {
		c.weekday(fmt.Sprintf("timeInWeek[%d].day", i), t.Day)
		for _, h := range t.HourSlots {
			if h < 0 || h > 23 {
				c.addf("timeInWeek[%d].hourSlots: hour %d, want 0-23", i, h)
			}
		}
	}
	rs := runs(slots(w.TimeInWeek))
	if len(rs) == 0 {
		c.addf("timeInWeek allows no hour")
	}
	p := &plan{series: legacyWeek(rs), minDur: math.MaxInt64}
	for _, r := range rs {
		p.minDur, p.maxDur = min(p.minDur, r.dur), max(p.maxDur, r.dur)
	}
	for i, t := range w.NotAllowedTime {
		if t.End.Before(t.Start) {
			c.addf("notAllowedTime[%d]: end %s before start %s", i, t.End.Format(time.RFC3339), t.Start.Format(time.RFC3339))
		}
		p.blocked = append(p.blocked, span{ceilUnix(t.Start), ceilUnix(t.End)})
	}
	return p
}

// slots is the week's allowed hours, Sunday 00:00 UTC first. Entries for the
// same day add up, as AKS documents; unknown days and hours count for nothing.
func slots(tw []fleet.TimeInWeek) (mask [7 * 24]bool) {
	for _, t := range tw {
		d, ok := weekdays[strings.ToLower(t.Day)]
		if !ok {
			continue
		}
		for _, h := range t.HourSlots {
			if h >= 0 && h <= 23 {
				mask[int(d)*24+h] = true
			}
		}
	}
	return mask
}

// run is one legacy occurrence: an offset from the week's start and a
// duration, both in seconds.
type run struct{ off, dur int64 }

// runs merges the allowed hours into maximal runs, sorted by offset; a run
// may wrap past Saturday into Sunday.
func runs(mask [7 * 24]bool) []run {
	gap := slices.Index(mask[:], false)
	if gap < 0 {
		return []run{{0, week}}
	}
	var out []run
	n := len(mask)
	for i := 1; i <= n; i++ {
		h := (gap + i) % n
		if !mask[h] {
			continue
		}
		if prev := (h + n - 1) % n; mask[prev] && len(out) > 0 {
			out[len(out)-1].dur += 3600
			continue
		}
		out = append(out, run{int64(h) * 3600, 3600})
	}
	slices.SortFunc(out, func(a, b run) int { return cmp.Compare(a.off, b.off) })
	return out
}

// legacyWeek repeats its runs every week from a Sunday 00:00 UTC.
type legacyWeek []run

func (l legacyWeek) next(x int64) (occ, bool) {
	if len(l) == 0 {
		return occ{}, false
	}
	base := sunday + floorDiv(x-sunday, week)*week
	for _, r := range l {
		if s := base + r.off; s >= x {
			return occ{s, s + r.dur}, true
		}
	}
	s := base + week + l[0].off
	return occ{s, s + l[0].dur}, true
}

func (l legacyWeek) prev(x int64) (occ, bool) {
	if len(l) == 0 {
		return occ{}, false
	}
	base := sunday + floorDiv(x-sunday, week)*week
	for i := len(l) - 1; i >= 0; i-- {
		if s := base + l[i].off; s <= x {
			return occ{s, s + l[i].dur}, true
		}
	}
	last := l[len(l)-1]
	s := base - week + last.off
	return occ{s, s + last.dur}, true
}

// weekday is 0 for Sunday, like time.Weekday; day 0 was a Thursday.
func weekday(d int64) int64 { return floorMod(d+4, 7) }

// monthOf is the month of day d, counted from January of year 0.
func monthOf(d int64) int64 {
	y, m, _ := time.Unix(d*day, 0).UTC().Date()
	return int64(y)*12 + int64(m) - 1
}

// monthStart is the day number of the first of month m.
func monthStart(m int64) int64 {
	t := time.Date(int(floorDiv(m, 12)), time.Month(floorMod(m, 12)+1), 1, 0, 0, 0, 0, time.UTC)
	return floorDiv(t.Unix(), day)
}

func floorUnix(t time.Time) int64 { return min(max(t.Unix(), minUnix), maxUnix) }

func ceilUnix(t time.Time) int64 {
	s := t.Unix()
	if t.Nanosecond() > 0 {
		s++
	}
	return min(max(s, minUnix), maxUnix)
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

func ceilDiv(a, b int64) int64 { return -floorDiv(-a, b) }

func floorMod(a, b int64) int64 { return a - floorDiv(a, b)*b }
