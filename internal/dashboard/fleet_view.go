package dashboard

import (
	"fmt"

	"github.com/upgradewatch/upgradewatch/internal/watch"
)

// viewFigures are the fleet page's headline figures from the fleet's
// aggregate and its view: nothing here grows with the fleet.
func viewFigures(d FleetData) []Figure {
	v, a := d.View, d.Compliance
	clusters := 0
	for _, n := range v.Buckets {
		clusters += n
	}
	p50, p90 := "—", "—"
	if v.DaysBehindPools > 0 {
		p50, p90 = fmt.Sprintf("%d d", v.DaysBehindP50), fmt.Sprintf("%d d", v.DaysBehindP90)
	}
	ttp := a.TimeToPatch.Last90
	t50, t90 := hoursOrDash(ttp.Median, ttp.Count > 0), hoursOrDash(ttp.P90, ttp.Count > 0)
	figs := []Figure{{Label: "Clusters", Value: fmt.Sprint(clusters), Href: Root + "/clusters"}}
	figs = append(figs, currentFigures(a, 0, 0)...)
	figs = append(figs, operationFigures(p50, p90, t50, t90, v.Failed7d, v.Stalled, v.WindowsSoon)...)
	return append(figs, findingFigures(d.Findings)...)
}

// viewGridSection is the grid of the worst clusters the view keeps
// (watch.MaxGridClusters), saying so and linking to the full list.
func viewGridSection(v *watch.FleetView) Section {
	rows := make([]ClusterRow, len(v.Worst))
	for i, g := range v.Worst {
		rows[i] = ClusterRow{ID: g.Cluster, Bucket: g.Bucket, PoolCells: g.Cells}
	}
	sec := gridSection(rows)
	if v.GridOmitted > 0 {
		sec.Lead = fmt.Sprintf("The worst %d of %d clusters, worst status first; the clusters page lists them all. ",
			len(v.Worst), len(v.Worst)+v.GridOmitted) + sec.Lead
		sec.Links = append(sec.Links, Link{Text: "All clusters", Href: Root + "/clusters"})
	}
	return sec
}

// viewBucketSection counts the clusters per status bucket, worst first,
// each linking to the clusters page filtered by it.
func viewBucketSection(v *watch.FleetView) Section {
	t := &Table{ID: "buckets", Caption: "Clusters per status bucket, worst first", Empty: "no cluster known yet",
		Columns: []Column{{Key: "status", Title: "Status"}, {Key: "clusters", Title: "Clusters", Numeric: true}, {Key: "names", Title: "Which"}}}
	var bars []bar
	for _, b := range Buckets {
		n := v.Buckets[b]
		if n == 0 {
			continue
		}
		link := href(Root+"/clusters", "status", b)
		t.Rows = append(t.Rows, []Cell{{Text: b, Class: "st-" + b, Href: link, Sort: fmt.Sprintf("%02d", BucketRank(b))},
			num(n), {Text: fmt.Sprintf("the %d clusters", n), Href: link}})
		bars = append(bars, bar{label: b, n: n})
	}
	sec := Section{ID: "buckets-s", Title: "Clusters by status, worst first", Table: t}
	if len(bars) > 0 {
		sec.Chart, sec.ChartAlt = barsSVG("buckets-title", "Clusters per status bucket", bars), "Clusters per status bucket; the table below has the same counts."
	}
	return sec
}
