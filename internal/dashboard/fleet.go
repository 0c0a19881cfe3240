package dashboard

import (
	"fmt"
	"html/template"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
	"github.com/upgradewatch/upgradewatch/internal/patch"
	"github.com/upgradewatch/upgradewatch/internal/watch"
)

// gridPools bounds the pool columns of the fleet grid; further pool names
// are summarised in one column.
const gridPools = 12

// FleetData is what the fleet page shows.
type FleetData struct {
	Rows     []ClusterRow
	Findings []watch.FindingEntry
	Rules    bool
	// Compliance and History are #14's fleet figures and daily snapshots,
	// when the app keeps them; nil/empty otherwise (the page then counts
	// pools from Rows and shows no trend).
	Compliance *watch.Aggregate
	History    []watch.Aggregate
	// View is the fleet page kept with the fleet's aggregate (its
	// Compliance.View): when set, the page is drawn from it and Rows is
	// not read (fleet scale: one row instead of every cluster).
	View *watch.FleetView
}

// FleetPage is the fleet page: headline figures, the cluster × pool grid
// coloured by days behind, the compliance trend, and the clusters grouped
// by status bucket, worst first.
func FleetPage(d FleetData, q url.Values, now time.Time) (*Page, error) {
	s := ParseSorting(q)
	self := func(kv ...string) string {
		return href(Root, override([]string{"sort", s.param(), "table", s.Table}, kv)...)
	}
	p := &Page{Title: "Fleet", Nav: "fleet", Base: Root, AsOf: now, Self: self(),
		Lead: "The fleet's patch state at a glance: how much of it runs the newest node image, what is behind and why, and what is about to happen."}
	if !d.Rules {
		p.Notes = append(p.Notes, "Finding rules are not configured: the finding figures are zero.")
	}
	if d.View != nil && d.Compliance != nil {
		p.Figures = viewFigures(d)
		p.Sections = append(p.Sections, viewGridSection(d.View), viewBucketSection(d.View), trendSection(d.History))
		p.Notes = append(p.Notes, "Figures as of the compliance refresh at "+d.Compliance.ComputedAt.UTC().Format("2006-01-02 15:04 UTC")+
			" (the Sweep refreshes them every 15 minutes).")
	} else {
		rows := slices.Clone(d.Rows)
		sortRows(rows)
		p.Figures = fleetFigures(d, rows, now)
		p.Sections = append(p.Sections, gridSection(rows), bucketSection(rows), trendSection(d.History))
	}
	if err := applySort(p.tables(), s, "grid", self); err != nil {
		return nil, err
	}
	return p, nil
}

func fleetFigures(d FleetData, rows []ClusterRow, now time.Time) []Figure {
	var behind []int
	var ttp []time.Duration
	pools, current, failed, stalled, soon := 0, 0, 0, 0, 0
	for _, r := range rows {
		if r.Deleted {
			continue
		}
		for _, c := range r.PoolCells {
			pools++
			if c.Compliance == patch.ComplianceCurrent {
				current++
			}
			if c.DaysBehind > 0 {
				behind = append(behind, c.DaysBehind)
			}
		}
		ttp = append(ttp, r.TimeToPatch...)
		failed, stalled = failed+r.Failed7d, stalled+r.Stalled
		if r.WindowKnown && r.NextWindow.Start.Before(now.Add(24*time.Hour)) {
			soon++
		}
	}
	p50, ok50 := percentileInt(behind, 50)
	p90, ok90 := percentileInt(behind, 90)
	t50, okT50 := percentileDur(ttp, 50)
	t90, okT90 := percentileDur(ttp, 90)
	figs := []Figure{{Label: "Clusters", Value: fmt.Sprint(len(rows)), Href: Root + "/clusters"}}
	figs = append(figs, currentFigures(d.Compliance, pools, current)...)
	figs = append(figs, operationFigures(intOrDash(p50, ok50), intOrDash(p90, ok90), hoursOrDash(t50, okT50), hoursOrDash(t90, okT90),
		failed, stalled, soon)...)
	return append(figs, findingFigures(d.Findings)...)
}

// operationFigures are the days behind, time to patch, failed and stalled
// operations and windows soon, as text.
func operationFigures(p50, p90, t50, t90 string, failed, stalled, soon int) []Figure {
	return []Figure{
		{Label: "Days behind, median", Value: p50, Note: "of pools behind an image"},
		{Label: "Days behind, p90", Value: p90},
		{Label: "Time to patch, p50", Value: t50, Note: "last 90 days, from the image's availability"},
		{Label: "Time to patch, p90", Value: t90},
		{Label: "Failed operations, 7 days", Value: fmt.Sprint(failed), Class: classIf(failed > 0, "st-Failed")},
		{Label: "Stalled operations", Value: fmt.Sprint(stalled), Class: classIf(stalled > 0, "st-Blocked"),
			Href: href(Root+"/findings", "code", fleet.CodeUpgradeStalled)},
		{Label: "Windows opening in 24 h", Value: fmt.Sprint(soon), Note: "node OS windows open now or opening"},
	}
}

// findingFigures count the open findings by severity.
func findingFigures(findings []watch.FindingEntry) []Figure {
	var figs []Figure
	bySev := map[string]int{}
	for _, f := range findings {
		bySev[f.Finding.Severity]++
	}
	for _, sev := range severities {
		figs = append(figs, Figure{Label: "Open findings: " + sev, Value: fmt.Sprint(bySev[sev]), Class: classIf(bySev[sev] > 0, "st-"+sev),
			Href: href(Root+"/findings", "severity", sev)})
	}
	return figs
}

// currentFigures are the pools and nodes current: #14's figures when kept
// (nodes are known only there), else the pools counted here.
func currentFigures(c *watch.Aggregate, pools, current int) []Figure {
	if c != nil {
		f := c.Figures
		return []Figure{
			{Label: "Pools current", Value: fmt.Sprintf("%d of %d", f.PoolsCurrent, f.Pools), Note: fmt.Sprintf("%.1f %%", f.PercentPoolsCurrent)},
			{Label: "Nodes current", Value: fmt.Sprintf("%d of %d", f.NodesCurrent, f.Nodes), Note: fmt.Sprintf("%.1f %%", f.PercentNodesCurrent)},
		}
	}
	pct := "—"
	if pools > 0 {
		pct = fmt.Sprintf("%.1f %%", float64(current)*100/float64(pools))
	}
	return []Figure{{Label: "Pools current", Value: fmt.Sprintf("%d of %d", current, pools), Note: pct},
		{Label: "Nodes current", Value: "—", Note: "kept with the compliance figures"}}
}

func classIf(b bool, c string) string {
	if b {
		return c
	}
	return ""
}

func gridSection(rows []ClusterRow) Section {
	count := map[string]int{}
	for _, r := range rows {
		for _, c := range r.PoolCells {
			count[c.Pool]++
		}
	}
	names := sortedKeys(count)
	slices.SortStableFunc(names, func(a, b string) int { return count[b] - count[a] })
	other := len(names) > gridPools
	if other {
		names = names[:gridPools]
	}
	slices.Sort(names)
	cols := []Column{{Key: "cluster", Title: "Cluster"}, {Key: "status", Title: "Status"}}
	for _, n := range names {
		cols = append(cols, Column{Key: "pool:" + n, Title: n, Numeric: true})
	}
	if other {
		cols = append(cols, Column{Key: "other", Title: "Other pools"})
	}
	t := &Table{ID: "grid", Caption: "Days behind per cluster and pool", Empty: "no cluster known yet", Columns: cols}
	for _, r := range rows {
		if r.Deleted {
			continue
		}
		t.Rows = append(t.Rows, gridRow(r, names, other))
	}
	return Section{ID: "grid-s", Title: "Cluster × pool: days behind",
		Lead:  "Each cell is a pool's days behind the newest image of its family (0: current or within policy), coloured 0, 1–7, 8–30, over 30 days; grey when unknown. Empty: the cluster has no such pool.",
		Table: t}
}

func gridRow(r ClusterRow, names []string, other bool) []Cell {
	row := []Cell{{Text: r.ID.Name, Href: ClusterHref(r.ID), Title: r.ID.ResourceID()},
		{Text: r.Bucket, Class: "st-" + r.Bucket, Sort: fmt.Sprintf("%02d", BucketRank(r.Bucket))}}
	byName := map[string]PoolCell{}
	for _, c := range r.PoolCells {
		byName[c.Pool] = c
	}
	for _, n := range names {
		c, ok := byName[n]
		if !ok {
			row = append(row, Cell{Text: "", Sort: ""})
			continue
		}
		delete(byName, n)
		row = append(row, daysCell(c))
	}
	if other {
		var rest []string
		for _, n := range sortedKeys(byName) {
			rest = append(rest, fmt.Sprintf("%s: %d d", n, byName[n].DaysBehind))
		}
		row = append(row, C(strings.Join(rest, ", ")))
	}
	return row
}

func daysCell(c PoolCell) Cell {
	cell := Cell{Text: fmt.Sprint(c.DaysBehind), Sort: fmt.Sprint(c.DaysBehind), Title: c.Status}
	switch {
	case c.Compliance == patch.ComplianceUnknown:
		cell.Class, cell.Text, cell.Sort = "dna", "?", ""
	case c.DaysBehind == 0:
		cell.Class = "d0"
	case c.DaysBehind <= 7:
		cell.Class = "d1"
	case c.DaysBehind <= 30:
		cell.Class = "d2"
	default:
		cell.Class = "d3"
	}
	return cell
}

// bucketSection groups the clusters by status bucket, worst first: a bar
// chart, its table, and the clusters of each bucket.
func bucketSection(rows []ClusterRow) Section {
	by := map[string][]ClusterRow{}
	for _, r := range rows {
		by[r.Bucket] = append(by[r.Bucket], r)
	}
	t := &Table{ID: "buckets", Caption: "Clusters per status bucket, worst first", Empty: "no cluster known yet",
		Columns: []Column{{Key: "status", Title: "Status"}, {Key: "clusters", Title: "Clusters", Numeric: true}, {Key: "names", Title: "Which"}}}
	var bars []bar
	for _, b := range Buckets {
		rs := by[b]
		if len(rs) == 0 {
			continue
		}
		names := make([]string, len(rs))
		for i, r := range rs {
			names[i] = r.ID.Name
		}
		t.Rows = append(t.Rows, []Cell{{Text: b, Class: "st-" + b, Href: href(Root+"/clusters", "status", b), Sort: fmt.Sprintf("%02d", BucketRank(b))},
			num(len(rs)), C(strings.Join(names, ", "))})
		bars = append(bars, bar{label: b, n: len(rs)})
	}
	sec := Section{ID: "buckets-s", Title: "Clusters by status, worst first", Table: t}
	if len(bars) > 0 {
		sec.Chart, sec.ChartAlt = barsSVG("buckets-title", "Clusters per status bucket", bars), "Clusters per status bucket; the table below has the same counts."
	}
	return sec
}

func trendSection(hist []watch.Aggregate) Section {
	sec := Section{ID: "trend", Title: "Compliance trend"}
	if len(hist) == 0 {
		sec.Lead = "No daily compliance snapshots yet: the trend appears once the Sweep has taken them (one a day)."
		return sec
	}
	t := &Table{ID: "trend", Caption: "Pools and nodes current, per day", Columns: []Column{{Key: "day", Title: "Day"},
		{Key: "pools", Title: "Pools current %", Numeric: true}, {Key: "nodes", Title: "Nodes current %", Numeric: true},
		{Key: "maxBehind", Title: "Most days behind", Numeric: true}}}
	var bars []bar
	for _, a := range hist {
		f := a.Figures
		t.Rows = append(t.Rows, []Cell{C(a.Day.UTC().Format("2006-01-02")), C(fmt.Sprintf("%.1f", f.PercentPoolsCurrent)),
			C(fmt.Sprintf("%.1f", f.PercentNodesCurrent)), num(f.MaxDaysBehind)})
		bars = append(bars, bar{label: a.Day.UTC().Format("01-02"), n: int(f.PercentPoolsCurrent + 0.5)})
	}
	sec.Table = t
	sec.Chart, sec.ChartAlt = barsSVG("trend-title", "Pools current, % per day", bars), "Pools current per day, in per cent; the table below has the figures."
	return sec
}

type bar struct {
	label string
	n     int
}

// barsSVG draws a horizontal bar chart (labels escaped).
func barsSVG(id, title string, bars []bar) template.HTML {
	most := 1
	for _, b := range bars {
		most = max(most, b.n)
	}
	h := 20 + 22*len(bars)
	var sb strings.Builder
	fmt.Fprintf(&sb, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 640 %d" width="640" height="%d" role="img" aria-labelledby="%s"><title id="%s">%s</title>`,
		h, h, id, id, template.HTMLEscapeString(title))
	for i, b := range bars {
		y := 10 + i*22
		w := float64(b.n) / float64(most) * 400
		fmt.Fprintf(&sb, `<text x="4" y="%d">%s</text><rect class="bar" x="140" y="%d" width="%.1f" height="16"/><text x="%.1f" y="%d">%d</text>`,
			y+13, template.HTMLEscapeString(b.label), y, max(w, 1), 146+w, y+13, b.n)
	}
	sb.WriteString(`</svg>`)
	return template.HTML(sb.String()) // #nosec: built here, labels escaped
}

func percentileInt(xs []int, p int) (int, bool) {
	if len(xs) == 0 {
		return 0, false
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[(len(s)-1)*p/100], true
}

func percentileDur(xs []time.Duration, p int) (time.Duration, bool) {
	if len(xs) == 0 {
		return 0, false
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[(len(s)-1)*p/100], true
}

func intOrDash(n int, ok bool) string {
	if !ok {
		return "—"
	}
	return fmt.Sprintf("%d d", n)
}

func hoursOrDash(d time.Duration, ok bool) string {
	if !ok {
		return "—"
	}
	return fmt.Sprintf("%.1f h", d.Hours())
}
