package dashboard

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
	"github.com/upgradewatch/upgradewatch/internal/watch"
)

var severities = []string{fleet.SeverityCritical, fleet.SeverityError, fleet.SeverityWarning, fleet.SeverityInfo}

// FindingsQuery is the findings page's filters and order.
type FindingsQuery struct {
	Code     string
	Severity string
	Cluster  string // part of a cluster's name or ARM ID, any case
	Sorting
}

// ParseFindingsQuery reads the page's query; an unknown severity is an error.
func ParseFindingsQuery(q url.Values) (FindingsQuery, error) {
	f := FindingsQuery{Code: strings.TrimSpace(q.Get("code")), Severity: strings.TrimSpace(q.Get("severity")),
		Cluster: strings.TrimSpace(q.Get("cluster")), Sorting: ParseSorting(q)}
	if f.Severity != "" {
		i := slices.IndexFunc(severities, func(s string) bool { return strings.EqualFold(s, f.Severity) })
		if i < 0 {
			return f, fmt.Errorf("severity must be one of %s", strings.Join(severities, ", "))
		}
		f.Severity = severities[i]
	}
	return f, nil
}

func (q FindingsQuery) keep(e watch.FindingEntry) bool {
	return match(q.Code, e.Finding.Code) && match(q.Severity, e.Finding.Severity) &&
		(q.Cluster == "" || strings.Contains(strings.ToLower(e.Resource), strings.ToLower(q.Cluster)))
}

func (q FindingsQuery) self(kv ...string) string {
	base := []string{"code", q.Code, "severity", q.Severity, "cluster", q.Cluster, "sort", q.param(), "table", q.Table}
	return href(Root+"/findings", override(base, kv)...)
}

// FindingsPage lists the fleet's open findings, most severe first; each
// links to its cluster's page. rules is false when no finding rules are
// configured.
func FindingsPage(list []watch.FindingEntry, q FindingsQuery, rules bool, asOf time.Time) (*Page, error) {
	p := &Page{Title: "Findings", Nav: "findings", Base: Root, AsOf: asOf, Self: q.self(),
		Lead: "Open findings across the fleet, most severe first. Each says what a rule saw and links to its cluster."}
	if !rules {
		p.Notes = append(p.Notes, "Finding rules are not configured in this installation: there are no findings to show.")
	}
	var codes []string
	bySev := map[string]int{}
	var kept []watch.FindingEntry
	for _, e := range list {
		codes = append(codes, e.Finding.Code)
		if q.keep(e) {
			kept = append(kept, e)
			bySev[e.Finding.Severity]++
		}
	}
	for _, s := range severities {
		p.Figures = append(p.Figures, Figure{Label: s, Value: fmt.Sprint(bySev[s]), Class: "st-" + s,
			Href: q.self("severity", s, "sort", "", "table", "")})
	}
	p.Filters = &FilterForm{Action: Root + "/findings", Sort: q.param(), Reset: Root + "/findings", Fields: []Field{
		{Name: "code", Label: "Code", Options: options(codes, q.Code)},
		{Name: "severity", Label: "Severity", Options: options(slices.Clone(severities), q.Severity)},
		{Name: "cluster", Label: "Cluster (name or ID contains)", Value: q.Cluster},
	}}
	slices.SortStableFunc(kept, func(a, b watch.FindingEntry) int {
		return compareFindings(a.Finding, b.Finding, a.Resource, b.Resource)
	})
	t := &Table{ID: "findings", Caption: fmt.Sprintf("%d of %d open findings", len(kept), len(list)), Empty: "no open finding matches",
		Columns: findingColumns(true)}
	for _, e := range kept {
		id := e.Cluster
		t.Rows = append(t.Rows, findingRow(e.Finding, &id, false))
	}
	p.Sections = []Section{{ID: "list", Title: "Open findings", Table: t}}
	if err := applySort(p.tables(), q.Sorting, "findings", q.self); err != nil {
		return nil, err
	}
	return p, nil
}

func findingColumns(fleetWide bool) []Column {
	cols := []Column{{Key: "severity", Title: "Severity"}, {Key: "code", Title: "Code"}}
	if fleetWide {
		cols = append(cols, Column{Key: "cluster", Title: "Cluster"})
	}
	cols = append(cols, Column{Key: "target", Title: "Target"}, Column{Key: "summary", Title: "Summary"},
		Column{Key: "opened", Title: "Opened"}, Column{Key: "lastSeen", Title: "Last seen"})
	if !fleetWide {
		cols = append(cols, Column{Key: "evidence", Title: "Evidence"})
	}
	return cols
}

func findingRow(f fleet.Finding, cluster *fleet.ClusterID, evidence bool) []Cell {
	row := []Cell{{Text: f.Severity, Class: "st-" + f.Severity, Sort: fmt.Sprint(9 - fleet.SeverityRank(f.Severity))}, C(f.Code)}
	if cluster != nil {
		row = append(row, Cell{Text: cluster.Name, Href: ClusterHref(*cluster) + "#findings", Title: cluster.ResourceID()})
	}
	row = append(row, C(f.Target), C(f.Summary), timeCell(f.OpenedAt, ""), timeCell(f.LastSeenAt, ""))
	if evidence {
		row = append(row, C(evidenceText(f.Evidence)))
	}
	return row
}

// evidenceText is the finding's evidence as compact JSON, clipped.
func evidenceText(ev string) string {
	var v any
	if ev == "" || json.Unmarshal([]byte(ev), &v) != nil {
		return ev
	}
	b, err := json.Marshal(v)
	if err != nil {
		return ev
	}
	// Spaces after the separators let a narrow column wrap the JSON.
	s := strings.NewReplacer(`,"`, `, "`, `":`, `": `).Replace(string(b))
	if r := []rune(s); len(r) > evidenceChars {
		s = string(r[:evidenceChars]) + "…"
	}
	return s
}

func sortFindings(fs []fleet.Finding) {
	slices.SortStableFunc(fs, func(a, b fleet.Finding) int { return compareFindings(a, b, "", "") })
}

// compareFindings: most severe first, then oldest opening, then by cluster,
// code and target.
func compareFindings(a, b fleet.Finding, ca, cb string) int {
	if ra, rb := fleet.SeverityRank(a.Severity), fleet.SeverityRank(b.Severity); ra != rb {
		return rb - ra
	}
	if c := a.OpenedAt.Compare(b.OpenedAt); c != 0 {
		return c
	}
	return strings.Compare(ca+a.Code+a.Target, cb+b.Code+b.Target)
}
