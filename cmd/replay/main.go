// Command replay delivers a timeline of AKS events to upgradewatch exactly as
// the Azure Functions host would (-handler: the custom-handler invocation
// envelope POSTed to /AksEvents) or as Event Grid would to a deployed app's
// webhook (-webhook), then optionally shows the state upgradewatch built
// (-show).
//
//	replay -handler http://127.0.0.1:8089 -timeline demo -show
//	replay -handler http://127.0.0.1:8089 -timeline fleet -clusters 200 -weeks 8 -dup 0.05 -shuffle -concurrency 8
//	replay -webhook 'https://<app>.azurewebsites.net/runtime/webhooks/eventgrid?functionName=AksEvents&code=<key>'
//	replay -dump -timeline fleet -clusters 3 > events.jsonl; replay -handler … -file events.jsonl
//	replay -handler http://127.0.0.1:8089 -timeline none -show
//
// Delivery retries 5xx, 408, 429 and connection errors with a doubling
// backoff, as Event Grid does (on a much shorter schedule). Exit status: 0 when
// every event was accepted, 1 when any finally failed (or -show failed), 2 for
// bad flags.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/upgradewatch/upgradewatch/internal/timeline"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Exit statuses.
const (
	exitOK     = 0
	exitFailed = 1
	exitUsage  = 2
)

// timelineNone delivers nothing: with -show, only the state is printed.
const timelineNone = "none"

// config is the parsed command line.
type config struct {
	handler     *url.URL // custom-handler base URL
	webhook     *url.URL // Event Grid webhook URL, with its code
	timeline    string   // demo|fleet|none
	file        string
	clusters    int
	weeks       int
	seed        int64
	schema      string
	dup         float64
	shuffle     bool
	concurrency int
	retries     int
	backoff     time.Duration
	timeout     time.Duration
	dump        bool
	show        bool
	verbose     bool
}

// run is the whole command; main only wires the process to it.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, err := parseConfig(args, stderr)
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) && !errors.Is(err, errFlagParse) {
			fmt.Fprintf(stderr, "replay: %v\n", err)
		}
		return exitUsage
	}
	// The webhook key must never reach a log line or the summary, whatever
	// error message might quote the URL.
	stdout, stderr = redacting(stdout, cfg.webhook), redacting(stderr, cfg.webhook)
	level := slog.LevelInfo
	if cfg.verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	evs, err := load(cfg)
	if err != nil {
		log.Error("load timeline", "error", err)
		return exitFailed
	}
	originals := len(evs)
	if cfg.shuffle {
		evs = timeline.Shuffle(evs, cfg.seed)
	}
	if cfg.dup > 0 {
		evs = timeline.WithDuplicates(evs, cfg.dup, cfg.seed)
	}

	if cfg.dump {
		if err := dump(stdout, evs); err != nil {
			log.Error("dump timeline", "error", err)
			return exitFailed
		}
		return exitOK
	}

	code := exitOK
	if cfg.timeline != timelineNone || cfg.file != "" {
		d := newDeliverer(cfg, log)
		log.Info("replay starting", "target", d.describe(), "events", len(evs), "duplicates", len(evs)-originals,
			"concurrency", cfg.concurrency)
		st := d.run(ctx, evs)
		fmt.Fprintf(stdout, "delivered %d events (%d duplicates) in %.3fs: %d ok, %d retried, %d failed\n",
			st.attempted, len(evs)-originals, st.elapsed.Seconds(), st.ok, st.retries, st.failed)
		if st.failed > 0 {
			code = exitFailed
		}
		if st.attempted < len(evs) {
			log.Error("replay interrupted", "undelivered", len(evs)-st.attempted)
			return exitFailed
		}
	}
	if cfg.show {
		if err := show(ctx, newClient(cfg), cfg.handler, stdout); err != nil {
			log.Error("show state", "error", err)
			return exitFailed
		}
	}
	return code
}

var errFlagParse = errors.New("flag parse error")

func parseConfig(args []string, stderr io.Writer) (config, error) {
	var cfg config
	var handler, webhook string
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&handler, "handler", "", "custom-handler base `URL` (e.g. http://127.0.0.1:8089): POST /AksEvents with the host envelope")
	fs.StringVar(&webhook, "webhook", "", "Event Grid webhook `URL` of a deployed app (…/runtime/webhooks/eventgrid?functionName=AksEvents&code=…)")
	fs.StringVar(&cfg.timeline, "timeline", "demo", "timeline to deliver: demo, fleet or none")
	fs.StringVar(&cfg.file, "file", "", "replay events from a JSON-lines `file` (one event object per line) instead of a timeline")
	fs.IntVar(&cfg.clusters, "clusters", 20, "fleet: number of clusters")
	fs.IntVar(&cfg.weeks, "weeks", 4, "fleet: number of weeks")
	fs.Int64Var(&cfg.seed, "seed", 1, "seed of the fleet timeline, -shuffle and -dup")
	fs.StringVar(&cfg.schema, "schema", timeline.SchemaMixed, "fleet: eventgrid, cloudevents or mixed")
	fs.Float64Var(&cfg.dup, "dup", 0, "redeliver this `fraction` (0–1) of the events, later in the stream")
	fs.BoolVar(&cfg.shuffle, "shuffle", false, "deliver in a random order")
	fs.IntVar(&cfg.concurrency, "concurrency", 1, "number of concurrent deliveries")
	fs.IntVar(&cfg.retries, "retries", 5, "redeliveries of an event after a 5xx, 408, 429 or connection error")
	fs.DurationVar(&cfg.backoff, "backoff", 100*time.Millisecond, "first retry delay; doubles, capped at 2s")
	fs.DurationVar(&cfg.timeout, "timeout", 30*time.Second, "per-request timeout (Event Grid waits 30s)")
	fs.BoolVar(&cfg.dump, "dump", false, "write the timeline as JSON lines to stdout and exit")
	fs.BoolVar(&cfg.show, "show", false, "after delivering, print the clusters upgradewatch holds (needs -handler)")
	fs.BoolVar(&cfg.verbose, "v", false, "log every delivery")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return cfg, err
		}
		return cfg, errFlagParse
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	var err error
	if handler != "" {
		if cfg.handler, err = parseTarget("handler", handler); err != nil {
			return cfg, err
		}
	}
	if webhook != "" {
		if cfg.webhook, err = parseTarget("webhook", webhook); err != nil {
			return cfg, err
		}
	}

	switch {
	case cfg.timeline != "demo" && cfg.timeline != "fleet" && cfg.timeline != timelineNone:
		return cfg, fmt.Errorf("-timeline %q: want demo, fleet or none", cfg.timeline)
	case cfg.file != "" && set["timeline"]:
		return cfg, errors.New("-file replaces -timeline: give one of them")
	case cfg.schema != timeline.SchemaEventGrid && cfg.schema != timeline.SchemaCloudEvents && cfg.schema != timeline.SchemaMixed:
		return cfg, fmt.Errorf("-schema %q: want eventgrid, cloudevents or mixed", cfg.schema)
	case (set["clusters"] || set["weeks"] || set["schema"]) && (cfg.timeline != "fleet" || cfg.file != ""):
		return cfg, errors.New("-clusters, -weeks and -schema only apply to -timeline fleet")
	case cfg.clusters < 1 || cfg.weeks < 1:
		return cfg, errors.New("-clusters and -weeks must be at least 1")
	case cfg.dup < 0 || cfg.dup > 1:
		return cfg, fmt.Errorf("-dup %g: want a fraction between 0 and 1", cfg.dup)
	case cfg.concurrency < 1:
		return cfg, errors.New("-concurrency must be at least 1")
	case cfg.retries < 0 || cfg.backoff <= 0 || cfg.timeout <= 0:
		return cfg, errors.New("-retries must be ≥ 0, -backoff and -timeout > 0")
	}

	nothing := cfg.timeline == timelineNone && cfg.file == ""
	if cfg.dump {
		switch {
		case cfg.handler != nil || cfg.webhook != nil || cfg.show:
			return cfg, errors.New("-dump writes the timeline and exits: it takes no -handler, -webhook or -show")
		case nothing:
			return cfg, errors.New("-dump -timeline none has nothing to write")
		}
		return cfg, nil
	}
	switch {
	case (cfg.handler == nil) == (cfg.webhook == nil):
		return cfg, errors.New("give exactly one of -handler and -webhook (or -dump)")
	case cfg.show && cfg.handler == nil:
		return cfg, errors.New("-show reads the status API of -handler")
	case nothing && !cfg.show:
		return cfg, errors.New("-timeline none without -show has nothing to do")
	}
	return cfg, nil
}

func parseTarget(name, raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		// The error of url.Parse quotes the URL, key included: leave it out.
		return nil, fmt.Errorf("-%s: want an absolute http(s) URL", name)
	}
	return u, nil
}

// load builds the events to deliver, in time order (or file order).
func load(cfg config) ([]timeline.Event, error) {
	switch {
	case cfg.file != "":
		f, err := os.Open(cfg.file)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		return readJSONL(f)
	case cfg.timeline == "demo":
		return timeline.Demo(), nil
	case cfg.timeline == "fleet":
		return timeline.Generate(timeline.Options{Seed: cfg.seed, Clusters: cfg.clusters, Weeks: cfg.weeks, Schema: cfg.schema,
			Start: fleetStart(cfg.weeks, time.Now())}), nil
	}
	return nil, nil
}

// fleetStart is where a generated fleet timeline begins: timeline.DefaultStart,
// so a seed gives the same events every day, unless the weeks asked for
// would run past now. The handler refuses events dated in the future, so the
// timeline then starts on the Monday that makes it end before now.
func fleetStart(weeks int, now time.Time) time.Time {
	start := timeline.DefaultStart
	if !start.AddDate(0, 0, 7*weeks+1).After(now) {
		return start
	}
	// A day's margin: the last week's rolls may end a few hours into the next.
	start = now.UTC().AddDate(0, 0, -7*weeks-1).Truncate(24 * time.Hour)
	for start.Weekday() != time.Monday {
		start = start.AddDate(0, 0, -1)
	}
	return start
}

// readJSONL reads one event object per line. Blank lines are skipped; a line
// holding an array (an Event Grid batch as delivered) yields each element.
func readJSONL(r io.Reader) ([]timeline.Event, error) {
	var evs []timeline.Event
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 16<<20)
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		objs := []json.RawMessage{line}
		if line[0] == '[' {
			if err := json.Unmarshal(line, &objs); err != nil {
				return nil, fmt.Errorf("line %d: %w", n, err)
			}
		}
		for _, obj := range objs {
			var b bytes.Buffer
			if err := json.Compact(&b, obj); err != nil {
				return nil, fmt.Errorf("line %d: %w", n, err)
			}
			ev, err := timeline.Parse(b.Bytes())
			if err != nil {
				return nil, fmt.Errorf("line %d: %w", n, err)
			}
			evs = append(evs, ev)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return evs, nil
}

func dump(w io.Writer, evs []timeline.Event) error {
	bw := bufio.NewWriter(w)
	for _, ev := range evs {
		var b bytes.Buffer
		if err := json.Compact(&b, ev.Raw); err != nil {
			return fmt.Errorf("event %s: %w", ev.ID, err)
		}
		b.WriteByte('\n')
		if _, err := bw.Write(b.Bytes()); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// redactedKey replaces the webhook key wherever it would be printed.
const redactedKey = "REDACTED"

// redactURL is u for printing: the code query value replaced.
func redactURL(u *url.URL) string {
	if u == nil {
		return ""
	}
	c := *u
	q := c.Query()
	if q.Has("code") {
		q.Set("code", redactedKey)
		c.RawQuery = strings.ReplaceAll(q.Encode(), url.QueryEscape(redactedKey), redactedKey)
	}
	c.User = nil
	return c.String()
}

// redacting wraps w so that no form of the webhook's code value gets through.
// Every log record and the summary are single writes, so a value cannot be
// split across two of them.
func redacting(w io.Writer, webhook *url.URL) io.Writer {
	if webhook == nil {
		return w
	}
	var secrets []string
	for _, v := range webhook.Query()["code"] {
		secrets = append(secrets, v, url.QueryEscape(v), url.PathEscape(v))
	}
	for _, part := range strings.Split(webhook.RawQuery, "&") {
		if k, v, ok := strings.Cut(part, "="); ok && k == "code" {
			secrets = append(secrets, v)
		}
	}
	// At one position the Replacer takes the first matching pair: longest first.
	slices.SortFunc(secrets, func(a, b string) int { return len(b) - len(a) })
	var pairs []string
	for _, s := range secrets {
		if s != "" {
			pairs = append(pairs, s, redactedKey)
		}
	}
	if len(pairs) == 0 {
		return w
	}
	return &redactWriter{w: w, r: strings.NewReplacer(pairs...)}
}

type redactWriter struct {
	w io.Writer
	r *strings.Replacer
}

func (rw *redactWriter) Write(p []byte) (int, error) {
	if _, err := io.WriteString(rw.w, rw.r.Replace(string(p))); err != nil {
		return 0, err
	}
	return len(p), nil
}
