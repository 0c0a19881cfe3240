package maintenance

import (
	"fmt"
	"strings"
	"time"
)

// checker parses fields and collects what is wrong with them. On a bad value
// each parser returns a harmless one, so compiling can go on and report the
// rest.
type checker struct{ problems []string }

func (c *checker) addf(format string, args ...any) {
	c.problems = append(c.problems, fmt.Sprintf(format, args...))
}

func (c *checker) err(name string) error {
	if len(c.problems) == 0 {
		return nil
	}
	return &invalidError{name: name, problems: c.problems}
}

type invalidError struct {
	name     string
	problems []string
}

func (e *invalidError) Error() string {
	return fmt.Sprintf("maintenance window %q: %s", e.name, strings.Join(e.problems, "; "))
}

func (e *invalidError) Is(target error) bool { return target == ErrInvalid }

// offset parses ±HH:MM into seconds east of UTC. AKS documents only the
// pattern; any offset under a day is accepted, real ones lie in -12:00…+14:00.
func (c *checker) offset(s string) int64 {
	if s == "" {
		return 0
	}
	if len(s) != 6 || (s[0] != '+' && s[0] != '-') {
		c.addf("utcOffset %q: want ±HH:MM", s)
		return 0
	}
	m, ok := hhmm(s[1:])
	if !ok {
		c.addf("utcOffset %q: want ±HH:MM, HH 00-23, MM 00-59", s)
		return 0
	}
	if s[0] == '-' {
		m = -m
	}
	return int64(m) * 60
}

// clock parses startTime HH:MM (00:00-23:59) into minutes after midnight.
func (c *checker) clock(s string) int {
	if s == "" {
		return 0
	}
	m, ok := hhmm(s)
	if !ok {
		c.addf("startTime %q: want HH:MM from 00:00 to 23:59", s)
	}
	return m
}

func hhmm(s string) (int, bool) {
	if len(s) != 5 || s[2] != ':' {
		return 0, false
	}
	d := func(i int) (int, bool) {
		a, b := s[i], s[i+1]
		if a < '0' || a > '9' || b < '0' || b > '9' {
			return 0, false
		}
		return int(a-'0')*10 + int(b-'0'), true
	}
	h, okH := d(0)
	m, okM := d(3)
	if !okH || !okM || h > 23 || m > 59 {
		return 0, false
	}
	return h*60 + m, true
}

// date parses YYYY-MM-DD into a day number (days since 1970-01-01).
func (c *checker) date(field, s string) (int64, bool) {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		c.addf("%s %q: want YYYY-MM-DD", field, s)
		return 0, false
	}
	return floorDiv(t.Unix(), day), true
}

func (c *checker) between(field string, n, lo, hi int) int {
	if n < lo || n > hi {
		c.addf("%s %d: want %d-%d", field, n, lo, hi)
		return lo
	}
	return n
}

var weekdays = map[string]time.Weekday{
	"sunday": time.Sunday, "monday": time.Monday, "tuesday": time.Tuesday, "wednesday": time.Wednesday,
	"thursday": time.Thursday, "friday": time.Friday, "saturday": time.Saturday,
}

func (c *checker) weekday(field, s string) int64 {
	d, ok := weekdays[strings.ToLower(s)]
	if !ok {
		c.addf("%s %q: want Monday…Sunday", field, s)
	}
	return int64(d)
}

// weekIndex is 0-3 for First…Fourth and -1 for Last.
func (c *checker) weekIndex(s string) int64 {
	switch strings.ToLower(s) {
	case "first":
		return 0
	case "second":
		return 1
	case "third":
		return 2
	case "fourth":
		return 3
	case "last":
		return -1
	}
	c.addf("relativeMonthly weekIndex %q: want First, Second, Third, Fourth or Last", s)
	return 0
}
