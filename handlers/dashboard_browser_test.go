package handlers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/upgradewatch/upgradewatch/internal/dashboard"
)

// browser starts headless Chromium from the distribution's package
// (CHROMIUM_BIN overrides /usr/bin/chromium) with a fresh profile, its
// events going to w from the start. Without Chromium the test is skipped
// locally and fails under CI=true: CI installs it.
func browser(t *testing.T, w *watcher) context.Context {
	t.Helper()
	bin := os.Getenv("CHROMIUM_BIN")
	if bin == "" {
		bin = "/usr/bin/chromium"
	}
	if _, err := os.Stat(bin); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("Chromium is missing at %s (CI installs the chromium package): %v", bin, err)
		}
		t.Skipf("Chromium not found at %s; install the chromium package or set CHROMIUM_BIN", bin)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(bin), chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1400, 1000),
		chromedp.Flag("headless", true), chromedp.Flag("no-sandbox", true), chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("no-first-run", true), chromedp.Flag("no-default-browser-check", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		// Back goes through a real load (which chromedp waits for), not
		// the back/forward cache, which fires none.
		chromedp.Flag("disable-features", "BackForwardCache"),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx, chromedp.WithListener(w.on))
	t.Cleanup(func() { cancelCtx(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	return ctx
}

// watcher records every request the page makes and every error or warning
// the console or the browser's log reports (CSP violations, failed loads).
type watcher struct {
	mu       sync.Mutex
	requests []string
	errors   []string
}

// on is called on the browser's reading goroutine: it only records.
func (w *watcher) on(ev any) {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch e := ev.(type) {
	case *network.EventRequestWillBeSent:
		w.requests = append(w.requests, e.Request.URL)
	case *runtime.EventConsoleAPICalled:
		if e.Type == runtime.ConsoleAPICalledTypeError || e.Type == runtime.ConsoleAPICalledTypeWarning {
			w.errors = append(w.errors, fmt.Sprintf("console.%s %s", e.Type, argsText(e.Args)))
		}
	case *runtime.EventExceptionThrown:
		w.errors = append(w.errors, "exception: "+e.ExceptionDetails.Text)
	case *cdplog.EventEntryAdded:
		if e.Entry.Level == cdplog.EntryLevelError || e.Entry.Level == cdplog.EntryLevelWarning {
			w.errors = append(w.errors, fmt.Sprintf("log %s: %s %s", e.Entry.Level, e.Entry.Text, e.Entry.URL))
		}
	}
}

func argsText(args []*runtime.RemoteObject) string {
	var parts []string
	for _, a := range args {
		parts = append(parts, cmpOr(string(a.Value), a.Description))
	}
	return strings.Join(parts, " ")
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// check fails the test for any request off the origin and any error seen.
func (w *watcher) check(t *testing.T, origin string) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.requests) < 8 {
		t.Errorf("only %d requests seen: the network listener is not working", len(w.requests))
	}
	for _, u := range w.requests {
		if !strings.HasPrefix(u, origin+"/") && !strings.HasPrefix(u, "data:") {
			t.Errorf("a request left the origin %s: %s", origin, u)
		}
	}
	for _, e := range w.errors {
		t.Errorf("browser reported: %s", e)
	}
}

// stepTimeout bounds one step in the browser, so a hang fails the step.
const stepTimeout = 30 * time.Second

func do(t *testing.T, ctx context.Context, step string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("%s: %v", step, err)
	}
}

// waitURL waits until the page's address holds part (a form's submission
// navigates after the click returns) and answers the address.
func waitURL(t *testing.T, ctx context.Context, part string) string {
	t.Helper()
	deadline := time.Now().Add(stepTimeout)
	for {
		loc := get(t, ctx, "location", chromedp.Location())
		if strings.Contains(loc, part) {
			return loc
		}
		if time.Now().After(deadline) {
			t.Fatalf("the address never held %q: %s", part, loc)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func get[T any](t *testing.T, ctx context.Context, step string, a chromedp.Action[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("%s: %v", step, err)
	}
	return v
}

// The pages in a real browser over the handler with Azurite behind: the
// figures against the data fed in, links from fleet to cluster to findings
// and back, a filter, a sort, nothing loaded from elsewhere, no console
// error, no serious accessibility violation, and the README screenshots.
func TestDashboardInBrowser(t *testing.T) {
	w := &watcher{}
	ctx := browser(t, w)
	srv := newDashServer(t)
	feedDemo(t, srv)
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	base := ts.URL + dashboard.Root
	open := openFindings(t, srv)

	do(t, ctx, "fleet", chromedp.Navigate(base), chromedp.WaitVisible(chromedp.CSS("#grid")))
	clusters := get(t, ctx, "clusters figure", chromedp.Evaluate[string](
		`Array.from(document.querySelectorAll("dl.figs dt")).find(dt => dt.textContent === "Clusters").nextElementSibling.textContent`))
	if clusters != "9" {
		t.Errorf("fleet page counts %q clusters, want the demo's 9", clusters)
	}
	axe(t, ctx, "fleet")
	screenshot(t, ctx, "dashboard-fleet.png")

	// Fleet → a cluster, from the grid.
	do(t, ctx, "fleet → cluster", chromedp.Click(chromedp.CSS(`#grid a[href$="/aks-payments-weu"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#pools`)))
	if h1 := get(t, ctx, "heading", chromedp.Text(chromedp.CSS("h1"))); h1 != "aks-payments-weu" {
		t.Errorf("cluster page heading %q", h1)
	}
	if pools := get(t, ctx, "pools", chromedp.Nodes(chromedp.CSSAll(`#pools tbody tr`))); len(pools) != 2 {
		t.Errorf("cluster page shows %d pools, want 2", len(pools))
	}
	if nodes := get(t, ctx, "nodes", chromedp.Nodes(chromedp.CSSAll(`#nodes tbody tr`))); len(nodes) != 9 {
		t.Errorf("cluster page shows %d nodes, want the snapshot's 9", len(nodes))
	}
	axe(t, ctx, "cluster")
	screenshot(t, ctx, "dashboard-cluster.png")

	// Cluster → findings, a filter, a finding → its cluster, and back.
	do(t, ctx, "findings", chromedp.Click(chromedp.CSS(`nav[aria-label="Pages"] a[href$="/findings"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#findings`)))
	if rows := get(t, ctx, "finding rows", chromedp.Nodes(chromedp.CSSAll(`#findings tbody tr`))); len(rows) != open {
		t.Errorf("findings page shows %d, want the API's %d open findings", len(rows), open)
	}
	axe(t, ctx, "findings")
	do(t, ctx, "filter", chromedp.SetValue(chromedp.CSS(`select[name="severity"]`), "Error"),
		chromedp.Click(chromedp.CSS(`form.filters button[type="submit"]`)))
	loc := waitURL(t, ctx, "severity=")
	do(t, ctx, "filtered page", chromedp.WaitVisible(chromedp.CSS(`#findings`)))
	if u, err := url.Parse(loc); err != nil || u.Query().Get("severity") != "Error" {
		t.Errorf("the filter is not in the permalink: %s", loc)
	}
	sevs := get(t, ctx, "filtered rows", chromedp.Evaluate[[]string](
		`Array.from(document.querySelectorAll("#findings tbody tr td:first-child")).map(td => td.textContent)`))
	if len(sevs) == 0 {
		t.Fatalf("no Error finding in the demo fleet")
	}
	for _, s := range sevs {
		if s != "Error" {
			t.Errorf("severity filter shows a %q finding", s)
		}
	}
	do(t, ctx, "finding → cluster", chromedp.Click(chromedp.CSS(`#findings tbody tr td:nth-child(3) a`)),
		chromedp.WaitVisible(chromedp.CSS(`#findings-s`)))
	do(t, ctx, "back to findings", chromedp.NavigateBack(), chromedp.WaitVisible(chromedp.CSS(`form.filters`)))
	if loc := get(t, ctx, "location", chromedp.Location()); !strings.Contains(loc, "severity=Error") {
		t.Errorf("back did not return to the filtered findings: %s", loc)
	}

	// Clusters, sorted by name descending by the script (two clicks).
	do(t, ctx, "sort", chromedp.Navigate(base+"/clusters"), chromedp.WaitVisible(chromedp.CSS(`#clusters`)),
		chromedp.Click(chromedp.CSS(`#clusters th[data-key="cluster"] a`)),
		chromedp.Click(chromedp.CSS(`#clusters th[data-key="cluster"] a`)))
	first := get(t, ctx, "first row", chromedp.Text(chromedp.CSS(`#clusters tbody tr:first-child td:first-child`)))
	if loc := get(t, ctx, "location", chromedp.Location()); first != "aks-search-uks" || !strings.Contains(loc, "sort=-cluster") {
		t.Errorf("after sorting by name descending: first %q at %s", first, loc)
	}
	axe(t, ctx, "clusters")
	w.check(t, ts.URL)
}

// axe runs axe-core (installed from npm by make setup into .axe) in the page
// and fails on any serious or critical violation.
func axe(t *testing.T, ctx context.Context, pageName string) {
	t.Helper()
	src, err := os.ReadFile("../.axe/node_modules/axe-core/axe.min.js")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("axe-core is missing (make setup installs it): %v", err)
		}
		t.Logf("axe-core not installed (make setup): accessibility of %s not checked", pageName)
		return
	}
	script := string(src) + `;axe.run(document, {resultTypes: ["violations"]}).then(r => r.violations)`
	raw := get(t, ctx, "axe "+pageName, chromedp.Evaluate[[]byte](script, chromedp.EvalAwaitPromise))
	var res []struct {
		ID     string `json:"id"`
		Impact string `json:"impact"`
		Help   string `json:"help"`
		Nodes  []struct {
			Target []any `json:"target"`
		} `json:"nodes"`
	}
	if err := json.Unmarshal(raw, &res); err != nil {
		t.Fatalf("axe result: %v", err)
	}
	for _, v := range res {
		if v.Impact == "serious" || v.Impact == "critical" {
			t.Errorf("%s: accessibility %s %s: %s at %v", pageName, v.Impact, v.ID, v.Help, v.Nodes)
		}
	}
}

// screenshot takes what the window shows of the page (1400×1000: the top
// of it, which is what the README shows). It is saved in docs/img only when
// UPGRADEWATCH_SCREENSHOTS=1 (`make screenshots`), so a test run leaves the
// tree as it was; otherwise it goes to the test's temporary directory.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png := get(t, ctx, "screenshot "+name, chromedp.CaptureScreenshot())
	if len(png) < 1000 {
		t.Errorf("screenshot %s: %d bytes, want an image", name, len(png))
	}
	dir := t.TempDir()
	if os.Getenv("UPGRADEWATCH_SCREENSHOTS") == "1" {
		dir = filepath.Join("..", "docs", "img")
	}
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		t.Errorf("save %s: %v", name, err)
	}
}
