package dashboard

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ClustersPerPage is how many rows the clusters page shows at once; the
// others are on the next pages (?page=2, …), so that a fleet of 10,000
// clusters is not one 5 MB page.
const ClustersPerPage = 500

// ClustersQuery is the clusters page's filters, order and page.
type ClustersQuery struct {
	Subscription  string
	ResourceGroup string
	Location      string
	Status        string
	Page          int // 1-based; 0: every row (the CSV download)
	Sorting
}

// ParseClustersQuery reads the page's query; a status that is no bucket is
// an error naming the buckets.
func ParseClustersQuery(q url.Values) (ClustersQuery, error) {
	c := ClustersQuery{Subscription: strings.TrimSpace(q.Get("subscription")), ResourceGroup: strings.TrimSpace(q.Get("resourceGroup")),
		Location: strings.TrimSpace(q.Get("location")), Status: strings.TrimSpace(q.Get("status")), Sorting: ParseSorting(q), Page: 1}
	if s := strings.TrimSpace(q.Get("page")); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return c, fmt.Errorf("page must be a whole number from 1")
		}
		c.Page = n
	}
	if q.Get("format") == "csv" {
		c.Page = 0 // the download holds every row the filters keep
	}
	if c.Status != "" {
		i := slices.IndexFunc(Buckets, func(b string) bool { return strings.EqualFold(b, c.Status) })
		if i < 0 {
			return c, fmt.Errorf("status must be one of %s", strings.Join(Buckets, ", "))
		}
		c.Status = Buckets[i]
	}
	return c, nil
}

func (q ClustersQuery) keep(r ClusterRow) bool {
	return match(q.Subscription, r.ID.SubscriptionID) && match(q.ResourceGroup, r.ID.ResourceGroup) &&
		match(q.Location, r.Location) && match(q.Status, r.Bucket)
}

func match(want, got string) bool { return want == "" || strings.EqualFold(want, got) }

func (q ClustersQuery) self(kv ...string) string {
	page := ""
	if q.Page > 1 {
		page = strconv.Itoa(q.Page)
	}
	base := []string{"subscription", q.Subscription, "resourceGroup", q.ResourceGroup, "location", q.Location,
		"status", q.Status, "sort", q.param(), "table", q.Table, "page", page}
	return href(Root+"/clusters", override(base, kv)...)
}

// override replaces or adds pairs of base with those of kv.
func override(base, kv []string) []string {
	out := slices.Clone(base)
	for i := 0; i+1 < len(kv); i += 2 {
		found := false
		for j := 0; j+1 < len(out); j += 2 {
			if out[j] == kv[i] {
				out[j+1], found = kv[i+1], true
			}
		}
		if !found {
			out = append(out, kv[i], kv[i+1])
		}
	}
	return out
}

// ClustersPage is the clusters page: one row per cluster, filtered and
// sorted as asked, worst bucket first by default.
func ClustersPage(rows []ClusterRow, q ClustersQuery, asOf time.Time) (*Page, error) {
	p := &Page{Title: "Clusters", Nav: "clusters", Base: Root, AsOf: asOf, Self: q.self(),
		Lead: "One row per cluster: its channels, its next node OS maintenance window, its last successful upgrade, how many pools are behind, its open findings and its status bucket (its worst pool's patch status)."}
	var subs, rgs, locs []string
	kept := []ClusterRow{}
	for _, r := range rows {
		subs, rgs, locs = append(subs, r.ID.SubscriptionID), append(rgs, r.ID.ResourceGroup), append(locs, r.Location)
		if q.keep(r) {
			kept = append(kept, r)
		}
	}
	p.Filters = &FilterForm{Action: Root + "/clusters", Sort: q.param(), Reset: Root + "/clusters", Fields: []Field{
		{Name: "subscription", Label: "Subscription", Options: options(subs, q.Subscription)},
		{Name: "resourceGroup", Label: "Resource group", Options: options(rgs, q.ResourceGroup)},
		{Name: "location", Label: "Location", Options: options(locs, q.Location)},
		{Name: "status", Label: "Status", Options: options(slices.Clone(Buckets), q.Status)},
	}}
	sortRows(kept)
	t := clustersTable(kept, asOf)
	t.Caption = fmt.Sprintf("%d of %d clusters", len(kept), len(rows))
	p.Sections = []Section{{ID: "list", Title: "Clusters", Table: t}}
	// A sort link starts again at the first page.
	if err := applySort(p.tables(), q.Sorting, "clusters", func(kv ...string) string { return q.self(append(kv, "page", "")...) }); err != nil {
		return nil, err
	}
	paginate(&p.Sections[0], q)
	return p, nil
}

// paginate keeps the query's page of the sorted rows, saying which rows
// they are and linking to the pages before and after.
func paginate(sec *Section, q ClustersQuery) {
	t := sec.Table
	total := len(t.Rows)
	if q.Page == 0 || (total <= ClustersPerPage && q.Page == 1) {
		return
	}
	from := min((q.Page-1)*ClustersPerPage, total)
	to := min(from+ClustersPerPage, total)
	t.Rows = t.Rows[from:to]
	t.Caption += fmt.Sprintf(", rows %d–%d (page %d of %d)", min(from+1, to), to, q.Page, max((total+ClustersPerPage-1)/ClustersPerPage, 1))
	if q.Page > 1 {
		sec.Links = append(sec.Links, Link{Text: "Previous page", Href: q.self("page", strconv.Itoa(q.Page-1))})
	}
	if to < total {
		sec.Links = append(sec.Links, Link{Text: "Next page", Href: q.self("page", strconv.Itoa(q.Page+1))})
	}
}

// sortRows orders rows worst bucket first, then by name.
func sortRows(rows []ClusterRow) {
	slices.SortStableFunc(rows, func(a, b ClusterRow) int {
		if ra, rb := BucketRank(a.Bucket), BucketRank(b.Bucket); ra != rb {
			return ra - rb
		}
		return strings.Compare(strings.ToLower(a.ID.Name), strings.ToLower(b.ID.Name))
	})
}

func clustersTable(rows []ClusterRow, now time.Time) *Table {
	t := &Table{ID: "clusters", Empty: "no cluster matches", Columns: []Column{
		{Key: "cluster", Title: "Cluster"}, {Key: "subscription", Title: "Subscription"},
		{Key: "resourceGroup", Title: "Resource group"}, {Key: "location", Title: "Location"},
		{Key: "upgradeChannel", Title: "Upgrade channel"}, {Key: "nodeOSChannel", Title: "Node OS channel"},
		{Key: "nextWindow", Title: "Next node OS window"}, {Key: "lastSuccess", Title: "Last successful upgrade"},
		{Key: "poolsBehind", Title: "Pools behind", Numeric: true}, {Key: "pools", Title: "Pools", Numeric: true},
		{Key: "findings", Title: "Open findings", Numeric: true}, {Key: "status", Title: "Status"},
	}}
	for _, r := range rows {
		t.Rows = append(t.Rows, []Cell{
			{Text: r.ID.Name, Href: ClusterHref(r.ID)}, C(r.ID.SubscriptionID), C(r.ID.ResourceGroup), C(r.Location),
			C(dash(r.UpgradeChannel)), nodeOSCell(r), windowCell(r, now), timeCell(r.LastSuccess, "never seen"),
			num(r.PoolsBehind), num(r.Pools), findingsCell(r),
			{Text: r.Bucket, Class: "st-" + r.Bucket, Sort: fmt.Sprintf("%02d", BucketRank(r.Bucket))},
		})
	}
	return t
}

func nodeOSCell(r ClusterRow) Cell {
	c := Cell{Text: dash(r.NodeOSUpgradeChannel)}
	if r.ChannelProblem != "" {
		c.Text += " (AKS cannot honour it: " + r.ChannelProblem + ")"
		c.Class = "st-Blocked"
	}
	return c
}

func windowCell(r ClusterRow, now time.Time) Cell {
	switch {
	case r.WindowKnown && !r.NextWindow.Start.After(now):
		return Cell{Text: "open now, until " + inOffset(r.NextWindow.End, r.WindowOff), Sort: iso(r.NextWindow.Start)}
	case r.WindowKnown:
		return Cell{Text: inOffset(r.NextWindow.Start, r.WindowOff), Sort: iso(r.NextWindow.Start)}
	case r.WindowName != "":
		return Cell{Text: "none ahead", Sort: "~"}
	}
	return Cell{Text: "not configured (AKS's own cadence)", Sort: "~~"}
}

func findingsCell(r ClusterRow) Cell {
	c := num(r.Findings)
	if r.Worst != "" {
		c.Text += " (worst: " + r.Worst + ")"
		c.Class = "st-" + r.Worst
	}
	return c
}

func num(n int) Cell { return Cell{Text: strconv.Itoa(n), Sort: strconv.Itoa(n)} }

func timeCell(t time.Time, zero string) Cell {
	if t.IsZero() {
		return Cell{Text: zero}
	}
	return Cell{Text: t.UTC().Format("2006-01-02 15:04 UTC"), Sort: iso(t)}
}

func iso(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func dash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}
