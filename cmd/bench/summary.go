package main

import (
	"fmt"
	"io"
	"strconv"
)

// op is how a figure is compared with the threshold.
type op int

const (
	opNone     op = iota // informational: no threshold
	opAtMost             // value ≤ limit
	opAtLeast            // value ≥ limit
	opMoreThan           // value > limit
)

// check is one figure of the summary and, where the issue sets one, its
// threshold.
type check struct {
	Name  string
	Value float64
	Op    op
	Limit float64
}

// threshold is the check's threshold as written in the summary ("" without one).
func (c check) threshold() string {
	limit := strconv.FormatFloat(c.Limit, 'f', -1, 64)
	switch c.Op {
	case opAtMost:
		return "≤ " + limit
	case opAtLeast:
		return "≥ " + limit
	case opMoreThan:
		return "> " + limit
	}
	return ""
}

// holds reports whether the value meets the threshold; ok is false when the
// check has none.
func (c check) holds() (holds, ok bool) {
	switch c.Op {
	case opAtMost:
		return c.Value <= c.Limit, true
	case opAtLeast:
		return c.Value >= c.Limit, true
	case opMoreThan:
		return c.Value > c.Limit, true
	}
	return false, false
}

// summary collects the figures the issue asks for, in the order measured.
type summary struct{ checks []check }

func (s *summary) add(c check) { s.checks = append(s.checks, c) }

// write prints the summary table. It is informational: a threshold that does
// not hold is reported, never turned into a failing exit.
func (s *summary) write(out io.Writer) {
	if len(s.checks) == 0 {
		return
	}
	fmt.Fprintln(out, "\n## summary (issue #13 thresholds; informational, the run never fails on them)")
	fmt.Fprintln(out)
	fmt.Fprintln(out, "| figure | measured | threshold | holds |")
	fmt.Fprintln(out, "|---|---|---|---|")
	for _, c := range s.checks {
		verdict := "-"
		if h, ok := c.holds(); ok {
			verdict = "no"
			if h {
				verdict = "yes"
			}
		}
		th := c.threshold()
		if th == "" {
			th = "-"
		}
		fmt.Fprintf(out, "| %s | %.2f | %s | %s |\n", c.Name, c.Value, th, verdict)
	}
}
