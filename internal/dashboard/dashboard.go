// Package dashboard renders upgradewatch's dashboard: server-rendered
// html/template pages over the same state the Status API serves, with their
// stylesheet and one small progressive-enhancement script embedded in the
// binary, charts drawn here as inline SVG (each with a table equivalent),
// and every table downloadable as CSV.
//
// Nothing is loaded from another origin: the pages are served with CSP, a
// Content-Security-Policy that allows only the dashboard's own assets, and
// links out (release notes) are plain navigation. The package is pure
// presentation: it builds view models from the application layer's types
// and writes them; reading state and checking access are the HTTP layer's.
package dashboard

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"path"
	"strings"
	"time"
)

// CSP is the pages' Content-Security-Policy: own scripts and styles only, no
// inline script or style, images only inline (the favicon), no framing.
const CSP = "default-src 'none'; style-src 'self'; img-src 'self' data:; script-src 'self'; connect-src 'self'; " +
	"base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

//go:embed templates/*.html static/*
var files embed.FS

// Renderer renders pages; it is safe for concurrent use.
type Renderer struct {
	page *template.Template
}

// New parses the embedded templates.
func New() (*Renderer, error) {
	t, err := template.New("page.html").Funcs(template.FuncMap{
		"utc":     func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") },
		"iso":     func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
		"numeric": func(c Column) bool { return c.Numeric },
		"arrow":   arrow,
	}).ParseFS(files, "templates/page.html")
	if err != nil {
		return nil, fmt.Errorf("dashboard templates: %w", err)
	}
	return &Renderer{page: t}, nil
}

// Render writes the page as HTML. It renders into a buffer first, so a
// template error never leaves half a page behind a 200.
func (r *Renderer) Render(w io.Writer, p *Page) error {
	var b bytes.Buffer
	if err := r.page.Execute(&b, p); err != nil {
		return fmt.Errorf("render %s: %w", p.Title, err)
	}
	_, err := w.Write(b.Bytes())
	return err
}

// Static returns an embedded asset by name (style.css, sort.js) and its
// content type; false when there is none.
func Static(name string) ([]byte, string, bool) {
	if name == "" || strings.Contains(name, "/") || strings.HasPrefix(name, ".") {
		return nil, "", false
	}
	b, err := fs.ReadFile(files, "static/"+name)
	if err != nil {
		return nil, "", false
	}
	switch path.Ext(name) {
	case ".css":
		return b, "text/css; charset=utf-8", true
	case ".js":
		return b, "text/javascript; charset=utf-8", true
	case ".svg":
		return b, "image/svg+xml", true
	}
	return b, "application/octet-stream", true
}

// arrow marks the column a table is sorted by.
func arrow(t *Table, key string) string {
	if t.SortKey != key {
		return ""
	}
	if t.Desc {
		return " ▼"
	}
	return " ▲"
}
