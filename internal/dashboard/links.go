package dashboard

import (
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
)

// Root is where the dashboard is served.
const Root = "/api/dashboard"

// ClusterHref is the permalink of a cluster's page.
func ClusterHref(id fleet.ClusterID) string {
	return Root + "/clusters/" + url.PathEscape(id.SubscriptionID) + "/" + url.PathEscape(id.ResourceGroup) + "/" +
		url.PathEscape(id.Name)
}

// href builds a permalink of path with the non-empty query values, in a
// stable order. Only the values a page knows are ever passed, so nothing
// else of the request (a function key, say) ends up in a link.
func href(path string, kv ...string) string {
	q := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			q.Set(kv[i], kv[i+1])
		}
	}
	if len(q) == 0 {
		return path
	}
	return path + "?" + q.Encode()
}

// Sorting is a table's requested order: ?sort=<key> or ?sort=-<key>
// (descending), for the table ?table=<id> (the page's main table when
// absent).
type Sorting struct {
	Table string
	Key   string
	Desc  bool
}

// ParseSorting reads ?sort= and ?table=.
func ParseSorting(q url.Values) Sorting {
	s := Sorting{Table: q.Get("table"), Key: q.Get("sort")}
	if strings.HasPrefix(s.Key, "-") {
		s.Key, s.Desc = s.Key[1:], true
	}
	return s
}

func (s Sorting) param() string {
	if s.Key == "" {
		return ""
	}
	if s.Desc {
		return "-" + s.Key
	}
	return s.Key
}

// applySort sorts the page's tables as asked and gives every table its sort
// and CSV permalinks; self gives the page's permalink with extra query
// pairs. An unknown table or column is an error (a bad permalink deserves
// to be told, not silently ignored).
func applySort(tables []*Table, s Sorting, main string, self func(kv ...string) string) error {
	target := s.Table
	if target == "" {
		target = main
	}
	found := s.Key == ""
	for _, t := range tables {
		if t == nil {
			continue
		}
		if s.Key != "" && t.ID == target {
			if !t.Sort(s.Key, s.Desc) {
				return fmt.Errorf("table %s has no column %q; columns: %s", t.ID, s.Key, columnKeys(t))
			}
			found = true
		}
		sortParam, tableParam := "", ""
		if t.ID == target {
			sortParam = s.param()
		}
		if t.ID != main {
			tableParam = t.ID
		}
		t.CSVHref = self("format", "csv", "table", t.ID, "sort", sortParam)
		t.SortHrefs = make([]string, len(t.Columns))
		for i, c := range t.Columns {
			key := c.Key
			if t.SortKey == c.Key && !t.Desc {
				key = "-" + c.Key
			}
			t.SortHrefs[i] = self("sort", key, "table", tableParam) + "#" + t.ID
		}
	}
	if !found {
		return fmt.Errorf("no table %q on this page", target)
	}
	return nil
}

func columnKeys(t *Table) string {
	keys := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		keys[i] = c.Key
	}
	return strings.Join(keys, ", ")
}

// FindTable returns the page's table with the id (for ?format=csv).
func (p *Page) FindTable(id string) (*Table, bool) {
	for _, s := range p.Sections {
		if s.Table != nil && s.Table.ID == id {
			return s.Table, true
		}
	}
	return nil, false
}

func (p *Page) tables() []*Table {
	var out []*Table
	for _, s := range p.Sections {
		if s.Table != nil {
			out = append(out, s.Table)
		}
	}
	return out
}

// options builds a select's options from values, with "any" first.
func options(values []string, selected string) []Option {
	slices.Sort(values)
	values = slices.Compact(values)
	out := []Option{{Value: "", Label: "any", Selected: selected == ""}}
	for _, v := range values {
		if v == "" {
			continue
		}
		out = append(out, Option{Value: v, Label: v, Selected: strings.EqualFold(v, selected)})
	}
	return out
}
