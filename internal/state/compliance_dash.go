package state

import (
	"encoding/json"
	"fmt"

	"github.com/upgradewatch/upgradewatch/internal/watch"
)

// maxViewChunks bounds the columns View0… holding the fleet's dashboard view:
// 12 of jsonUnits stay well inside an entity's 1 MiB with the other columns.
const maxViewChunks = 12

// dashColumns writes a summary's dashboard facts: flat columns people and
// dashboards can filter on, and the whole as JSON in Dashboard (cells
// dropped from the end, should it outgrow a column).
func dashColumns(r row, s watch.ClusterSummary) {
	d := s.Dash
	r["UpgradeChannel"], r["NodeOSUpgradeChannel"] = d.UpgradeChannel, d.NodeOSUpgradeChannel
	r["Bucket"], r["OpenFindings"], r["WorstSeverity"] = s.Bucket(), int32(d.Findings), d.Worst
	if !d.LastSuccess.IsZero() {
		setTime(r, "LastSuccessAt", d.LastSuccess)
	}
	for {
		j := jsonText(d)
		if utf16Len(j) <= jsonUnits || len(d.Cells) == 0 {
			r["Dashboard"] = j
			return
		}
		d.Cells = d.Cells[:len(d.Cells)-1]
	}
}

func dashOf(e entity) watch.DashFacts {
	var d watch.DashFacts
	_ = json.Unmarshal([]byte(e.str("Dashboard")), &d) // absent on rows written before it: no facts
	return d
}

// viewColumns writes the fleet's dashboard view as JSON over the columns
// View0, View1, … (a string column holds 32 K UTF-16 units), dropping grid
// rows from the end should it outgrow maxViewChunks of them.
func viewColumns(r row, v *watch.FleetView) {
	if v == nil {
		return
	}
	w := *v
	for {
		chunks := splitUnits(jsonText(w), jsonUnits)
		if len(chunks) <= maxViewChunks || len(w.Worst) == 0 {
			for i, c := range chunks {
				r[fmt.Sprintf("View%d", i)] = c
			}
			r["ViewChunks"] = int32(len(chunks))
			return
		}
		cut := max(len(w.Worst)/10, 1)
		w.Worst, w.GridOmitted = w.Worst[:len(w.Worst)-cut], w.GridOmitted+cut
	}
}

func viewOf(e entity) *watch.FleetView {
	n := int(e.int("ViewChunks"))
	if n == 0 {
		return nil
	}
	var b []byte
	for i := range n {
		b = append(b, e.str(fmt.Sprintf("View%d", i))...)
	}
	var v watch.FleetView
	if json.Unmarshal(b, &v) != nil {
		return nil // a torn view is no view: the page says the figures are not there
	}
	return &v
}

// splitUnits cuts s into pieces of at most n UTF-16 units, between runes.
func splitUnits(s string, n int) []string {
	var out []string
	start, units := 0, 0
	for i, r := range s {
		u := 1
		if r >= 0x10000 {
			u = 2
		}
		if units+u > n {
			out, start, units = append(out, s[start:i]), i, 0
		}
		units += u
	}
	return append(out, s[start:])
}
