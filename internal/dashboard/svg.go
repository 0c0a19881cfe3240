package dashboard

import (
	"fmt"
	"html/template"
	"strings"
	"time"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
	"github.com/upgradewatch/upgradewatch/internal/maintenance"
	"github.com/upgradewatch/upgradewatch/internal/patch"
	"github.com/upgradewatch/upgradewatch/internal/watch"
)

// The timeline shows four weeks back and one ahead.
const (
	timelineBack  = 28 * 24 * time.Hour
	timelineAhead = 7 * 24 * time.Hour
	svgWidth      = 960
	svgLabel      = 130 // the pool names' column
	svgRow        = 22
	svgTop        = 28 // the windows' row and the day ticks
)

// WindowMark is one occurrence of the node OS window on the timeline.
type WindowMark struct {
	maintenance.Interval
	Ops    int  // operations that ran during it
	Missed bool // it passed with nothing run while a newer image waited
}

// windowMarks lists the node OS window's occurrences in [from, to) and
// marks the missed ones: past occurrences that opened after a newer image
// became available to a pool that is still not current, in which no
// operation of the cluster ran.
func windowMarks(c *fleet.Cluster, pv *watch.PatchView, from, to, now time.Time) []WindowMark {
	w := watch.NodeOSWindow(c)
	if w == nil {
		return nil
	}
	ins, _ := maintenance.Between(*w, from, to)
	waiting := earliestWaiting(c, pv)
	out := make([]WindowMark, 0, len(ins))
	for _, in := range ins {
		m := WindowMark{Interval: in}
		for _, u := range c.Upgrades {
			s, e := opSpan(u, now)
			if s.Before(in.End) && e.After(in.Start) {
				m.Ops++
			}
		}
		m.Missed = m.Ops == 0 && !in.End.After(now) && !waiting.IsZero() && !in.Start.Before(waiting)
		out = append(out, m)
	}
	return out
}

// earliestWaiting is when a newer image first became available to a pool
// that is still not current; zero when none waits.
func earliestWaiting(c *fleet.Cluster, pv *watch.PatchView) time.Time {
	var at time.Time
	for _, p := range c.SortedPools() {
		st, ok := pv.Pool(p.Name)
		if !ok || p.Removed || st.Compliance == patch.ComplianceCurrent || st.Evidence.AvailableAt.IsZero() {
			continue
		}
		if at.IsZero() || st.Evidence.AvailableAt.Before(at) {
			at = st.Evidence.AvailableAt
		}
	}
	return at
}

// opSpan is an operation's extent: a missing start is its end, a missing
// end (in progress) is now.
func opSpan(u *fleet.Upgrade, now time.Time) (time.Time, time.Time) {
	s, e := u.StartedAt, u.EndedAt
	if e.IsZero() {
		e = now
	}
	if s.IsZero() {
		s = e
	}
	return s, e
}

func timelineSection(c *fleet.Cluster, pv *watch.PatchView, now time.Time) Section {
	from, to := now.Add(-timelineBack), now.Add(timelineAhead)
	marks := windowMarks(c, pv, from, to, now)
	sec := Section{ID: "timeline", Title: "Timeline: windows and operations",
		Lead:  "Node OS maintenance windows (bands; missed ones outlined red and hatched) and rolling operations (bars, one row per pool), four weeks back and one ahead. The window table below and the operation history are the same data as text.",
		Chart: timelineSVG(c, marks, from, to, now), ChartAlt: timelineAlt(c, marks, now)}
	t := &Table{ID: "windowlog", Caption: "Node OS window occurrences on the timeline", Empty: "no node OS window configured",
		Columns: []Column{{Key: "opens", Title: "Opens"}, {Key: "closes", Title: "Closes"},
			{Key: "ops", Title: "Operations during it", Numeric: true}, {Key: "missed", Title: "Missed"}}}
	for _, m := range marks {
		missed := C("no")
		switch {
		case m.Missed:
			missed = Cell{Text: "yes: a newer image waited and nothing ran", Class: "st-Behind"}
		case m.End.After(now):
			missed = C("not yet")
		}
		t.Rows = append(t.Rows, []Cell{timeCell(m.Start, ""), timeCell(m.End, ""), num(m.Ops), missed})
	}
	sec.Table = t
	return sec
}

func timelineAlt(c *fleet.Cluster, marks []WindowMark, now time.Time) string {
	missed, ops := 0, 0
	for _, m := range marks {
		if m.Missed {
			missed++
		}
	}
	for _, u := range c.Upgrades {
		if s, _ := opSpan(u, now); s.After(now.Add(-timelineBack)) {
			ops++
		}
	}
	return fmt.Sprintf("Timeline of %s: %d window occurrences (%d missed) and %d operations in the last four weeks.", c.ID.Name, len(marks), missed, ops)
}

// timelineSVG draws the timeline. Every text in it is escaped; classes, not
// inline styles, colour it (the CSP allows no inline style).
func timelineSVG(c *fleet.Cluster, marks []WindowMark, from, to, now time.Time) template.HTML {
	pools := c.SortedPools()
	h := svgTop + svgRow*max(len(pools), 1) + 18
	span := to.Sub(from).Seconds()
	x := func(t time.Time) float64 {
		f := t.Sub(from).Seconds() / span
		return svgLabel + min(max(f, 0), 1)*float64(svgWidth-svgLabel-10)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-labelledby="tl-title">`, svgWidth, h, svgWidth, h)
	fmt.Fprintf(&b, `<title id="tl-title">%s</title>`, template.HTMLEscapeString(timelineAlt(c, marks, now)))
	for d := from.Truncate(24 * time.Hour).Add(24 * time.Hour); d.Before(to); d = d.Add(24 * time.Hour) {
		if d.Weekday() == time.Monday {
			fmt.Fprintf(&b, `<line class="grid" x1="%.1f" y1="%d" x2="%.1f" y2="%d"/><text x="%.1f" y="12">%s</text>`, x(d), svgTop-8, x(d), h-18, x(d)+2, d.Format("Jan 2"))
		}
	}
	for _, m := range marks {
		cls := "win"
		if m.Missed {
			cls = "win-missed"
		}
		fmt.Fprintf(&b, `<rect class="%s" x="%.1f" y="%d" width="%.1f" height="%d"><title>window %s – %s%s</title></rect>`, cls, x(m.Start), svgTop-8,
			max(x(m.End)-x(m.Start), 2), h-svgTop-10, m.Start.UTC().Format("Jan 2 15:04"), m.End.UTC().Format("Jan 2 15:04 UTC"), missedWord(m))
	}
	for i, p := range pools {
		y := svgTop + i*svgRow
		fmt.Fprintf(&b, `<text x="4" y="%d">%s</text>`, y+15, template.HTMLEscapeString(clip(p.Name, 18)))
		for _, u := range c.Upgrades {
			if !strings.EqualFold(u.Pool, p.Name) {
				continue
			}
			s, e := opSpan(u, now)
			if e.Before(from) || s.After(to) {
				continue
			}
			fmt.Fprintf(&b, `<rect class="op-%s" x="%.1f" y="%d" width="%.1f" height="%d"><title>%s %s: %s</title></rect>`,
				template.HTMLEscapeString(u.Outcome), x(s), y+4, max(x(e)-x(s), 3), svgRow-8,
				template.HTMLEscapeString(p.Name), s.UTC().Format("Jan 2 15:04 UTC"), template.HTMLEscapeString(u.Outcome))
		}
	}
	fmt.Fprintf(&b, `<line class="now" x1="%.1f" y1="%d" x2="%.1f" y2="%d"/><text x="%.1f" y="%d">now</text>`, x(now), svgTop-8, x(now), h-18, x(now)+2, h-6)
	fmt.Fprintf(&b, `<line class="axis" x1="%d" y1="%d" x2="%d" y2="%d"/></svg>`, svgLabel, h-18, svgWidth-10, h-18)
	return template.HTML(b.String()) // #nosec: built here, every input text escaped above
}

func missedWord(m WindowMark) string {
	if m.Missed {
		return " (missed)"
	}
	return ""
}

func clip(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}
