// Command sink receives upgradewatch's notifications locally and shows them:
// CloudEvents as the webhook sink posts them, Teams and Slack messages as
// their webhooks would receive them. `make demo` points upgradewatch at it;
// operators use it to try notification settings without a real channel.
//
//	sink                                   # listen on 127.0.0.1:8090
//	sink -addr 127.0.0.1:0 -out sink.jsonl # any free port; keep everything
//	sink -fail 2                           # 503 to the first two POSTs of each path
//
//	UPGRADEWATCH_NOTIFY_WEBHOOK_URL=http://127.0.0.1:8090/events
//	UPGRADEWATCH_NOTIFY_TEAMS_URL=http://127.0.0.1:8090/teams
//	UPGRADEWATCH_NOTIFY_SLACK_URL=http://127.0.0.1:8090/slack
//
// Routes: POST / and POST /events take a CloudEvent in any mode of the
// CloudEvents HTTP binding (binary, structured, batch), and so does POST
// /oncall, a second webhook receiver for a route to another sink
// (UPGRADEWATCH_NOTIFY_SINKS=oncall=webhook, as make demo sets); POST /teams a
// Teams message with Adaptive Cards; POST /slack a Slack Block Kit message;
// anything else posted there is answered 400, a body over 1 MiB 413. GET
// /events lists everything received as a JSON array; GET /healthz answers 200.
//
// Each accepted item is one line on stdout; a CloudEvent whose source and id
// were seen before at the same receiver (/ and /events are one) is marked
// DUPLICATE and counted. Teams and Slack messages are counted per cluster
// (the cluster of their "Open status" link). On SIGINT or SIGTERM the sink
// shuts down and prints one summary line. Exit status: 0 after a clean
// shutdown, 1 when it cannot listen or record, 2 for bad flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
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

// shutdownTimeout bounds the wait for requests in flight at shutdown.
const shutdownTimeout = 5 * time.Second

// config is the parsed command line.
type config struct {
	addr  string
	out   string
	fail  int
	quiet bool
}

// run is the whole command: it serves until ctx ends, then prints the summary.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) && !errors.Is(err, errFlagParse) {
			fmt.Fprintf(stderr, "sink: %v\n", err)
		}
		return exitUsage
	}

	var record *os.File
	if cfg.out != "" {
		if record, err = os.OpenFile(cfg.out, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644); err != nil {
			fmt.Fprintf(stderr, "sink: -out: %v\n", err)
			return exitFailed
		}
	}
	opts := options{failFirst: cfg.fail, quiet: cfg.quiet, out: stdout, errs: stderr}
	if record != nil {
		opts.record = record // not a nil *os.File in an io.Writer
	}
	s := newServer(opts)

	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		fmt.Fprintf(stderr, "sink: %v\n", err)
		closeRecord(record, stderr)
		return exitFailed
	}
	// Printed before serving, so that no request's line comes first; scripts
	// read the address from it (-addr …:0).
	fmt.Fprintf(stdout, "sink: listening on http://%s (POST / /events /oncall /teams /slack; GET /events /healthz)%s\n", ln.Addr(), describe(cfg))
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, IdleTimeout: time.Minute}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	code := exitOK
	select {
	case <-ctx.Done():
	case err := <-served:
		fmt.Fprintf(stderr, "sink: %v\n", err)
		code = exitFailed
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
	}
	if !closeRecord(record, stderr) {
		code = exitFailed
	}
	fmt.Fprintln(stdout, s.summary())
	return code
}

func describe(cfg config) string {
	var s string
	if cfg.fail > 0 {
		s += fmt.Sprintf("; -fail %d", cfg.fail)
	}
	if cfg.out != "" {
		s += "; appending to " + cfg.out
	}
	return s
}

func closeRecord(f *os.File, stderr io.Writer) bool {
	if f == nil {
		return true
	}
	if err := f.Close(); err != nil {
		fmt.Fprintf(stderr, "sink: -out: %v\n", err)
		return false
	}
	return true
}

// errFlagParse marks an error the flag package has already printed.
var errFlagParse = errors.New("flag parse error")

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var cfg config
	fs := flag.NewFlagSet("sink", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.addr, "addr", "127.0.0.1:8090", "listen `address` (port 0: any free port, printed at start)")
	fs.StringVar(&cfg.out, "out", "", "append every received item to this JSON Lines `file`")
	fs.IntVar(&cfg.fail, "fail", 0, "answer 503 with Retry-After: 1 to the first `N` POSTs of each path, to show retries")
	fs.BoolVar(&cfg.quiet, "quiet", false, "print no line per request, only the summary at the end")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return cfg, err
		}
		return cfg, errFlagParse
	}
	switch {
	case fs.NArg() > 0:
		return cfg, fmt.Errorf("unexpected arguments %q", fs.Args())
	case cfg.addr == "":
		return cfg, errors.New("-addr is empty")
	case cfg.fail < 0:
		return cfg, fmt.Errorf("-fail %d: want 0 or more", cfg.fail)
	}
	return cfg, nil
}
