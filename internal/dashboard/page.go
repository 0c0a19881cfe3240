package dashboard

import (
	"html/template"
	"time"
)

// Page is one dashboard page, as the layout template renders it: a heading,
// "data as of", a filter form, headline figures and sections, each holding
// plain facts, a chart with its text equivalent, or a table.
type Page struct {
	Title string
	// Nav is the active navigation entry: fleet, clusters or findings.
	Nav  string
	Base string // the dashboard's root path, /api/dashboard
	// AsOf is when the data shown was read.
	AsOf time.Time
	// Self is this page's permalink, with its filters and sort.
	Self string
	// User is the signed-in principal's name, when the platform said.
	User    string
	Lead    string
	Crumbs  []Link
	Filters *FilterForm
	Figures []Figure
	// Notes are things the reader must know about the data (a part that
	// could not be read, a figure not computed yet).
	Notes    []string
	Sections []Section
}

// Link is a hyperlink.
type Link struct{ Text, Href string }

// Figure is a headline number.
type Figure struct {
	Label, Value string
	Note         string
	Class        string
	Href         string
}

// FilterForm is a GET form whose fields become the page's query string, so
// a filtered page is a permalink and works without JavaScript.
type FilterForm struct {
	Action string
	Fields []Field
	// Sort keeps the current sort when the filters change.
	Sort  string
	Reset string // the page without filters
}

// Field is a filter: a select when it has options, else a text input.
type Field struct {
	Name, Label, Value string
	Options            []Option
}

// Option is one choice of a select.
type Option struct {
	Value, Label string
	Selected     bool
}

// Section is a titled part of a page.
type Section struct {
	ID, Title, Lead string
	Items           []Item
	// Chart is an inline SVG drawn by this package (never from input
	// markup); ChartAlt says what it shows. Its table equivalent is Table or
	// another section's.
	Chart    template.HTML
	ChartAlt string
	Table    *Table
	Links    []Link
}

// Item is one fact of a definition list.
type Item struct {
	Term, Text, Href string
	Class            string
}
