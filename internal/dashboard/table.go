package dashboard

import (
	"cmp"
	"encoding/csv"
	"io"
	"slices"
	"strconv"
	"strings"
)

// Column is one column of a Table. Key names it in ?sort= and in the CSV
// header; Numeric columns sort by number and are right-aligned.
type Column struct {
	Key     string
	Title   string
	Numeric bool
}

// Cell is one table cell. Sort, when set, is what the column sorts by
// (an ISO time, a number) instead of Text; Href makes the text a link;
// Class colours it (a status bucket).
type Cell struct {
	Text  string
	Href  string
	Sort  string
	Class string
	Title string
}

// Table is a table of a page; every table can be sorted by any column and
// downloaded as CSV (?format=csv&table=<ID>).
type Table struct {
	ID      string
	Caption string
	Columns []Column
	Rows    [][]Cell
	// Empty is said instead of an empty table.
	Empty string
	// SortKey and Desc are the order the rows are in (after Sort).
	SortKey string
	Desc    bool
	// CSVHref and the column headers' SortHrefs are permalinks (set by the
	// page builder, which knows the page's filters).
	CSVHref   string
	SortHrefs []string
}

// C is a plain text cell.
func C(text string) Cell { return Cell{Text: text} }

// sortKey is what a cell sorts by.
func (c Cell) sortKey() string { return cmp.Or(c.Sort, c.Text) }

// Sort orders the rows by the column key (ascending unless desc); an
// unknown key leaves the order as it is and answers false. Ties keep their
// order, so a page's default order breaks them.
func (t *Table) Sort(key string, desc bool) bool {
	i := slices.IndexFunc(t.Columns, func(c Column) bool { return c.Key == key })
	if i < 0 {
		return false
	}
	num := t.Columns[i].Numeric
	slices.SortStableFunc(t.Rows, func(a, b []Cell) int {
		r := compareCells(a[i].sortKey(), b[i].sortKey(), num)
		if desc {
			r = -r
		}
		return r
	})
	t.SortKey, t.Desc = key, desc
	return true
}

// compareCells compares numerically when both are numbers (empty cells
// last), else as case-insensitive text.
func compareCells(a, b string, numeric bool) int {
	if numeric {
		fa, ea := strconv.ParseFloat(a, 64)
		fb, eb := strconv.ParseFloat(b, 64)
		switch {
		case ea == nil && eb == nil:
			return cmp.Compare(fa, fb)
		case ea == nil:
			return -1
		case eb == nil:
			return 1
		}
	}
	return cmp.Compare(strings.ToLower(a), strings.ToLower(b))
}

// WriteCSV writes the table as CSV: a header of column keys, then the cells'
// text. A text cell that a spreadsheet would run as a formula (=, +, -, @)
// is prefixed with a quote: cluster names and messages come from outside.
func (t *Table) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	head := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		head[i] = c.Key
	}
	if err := cw.Write(head); err != nil {
		return err
	}
	for _, row := range t.Rows {
		rec := make([]string, len(row))
		for i, c := range row {
			rec[i] = csvSafe(c.Text, t.Columns[i].Numeric)
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

func csvSafe(s string, numeric bool) string {
	if numeric {
		if _, err := strconv.ParseFloat(s, 64); err == nil {
			return s
		}
	}
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}
