// Command demo is the talking part of `make demo` (scripts/demo.sh): it
// posts the demo's requests to a running handler exactly as the Functions host
// would, and prints what the handler and the local receiver (bin/sink) hold.
// Each subcommand is one step of the demo:
//
//	demo json URL                      GET URL and print it indented
//	demo nodes URL FILE...             POST each node snapshot to URL (…/nodes); one line each
//	demo spread URL                    GET URL (…/nodes): each pool's version spread, image history
//	demo post URL FILE                 POST FILE to URL; print the HTTP status
//	demo rolling BASE TOPIC POOL KIND...  NodePoolRolling<KIND> events for POOL of TOPIC, now
//	demo sweep BASE                    the timer trigger's invocation of Sweep
//	demo received SINK                 what the sink got; fails on none or on duplicates
//	demo plan SINK STATUS_URL          the cluster's dry-run remediations and their CloudEvent
//	demo activity BASE three-paths|aks-failure|show
//	demo findings BASE                 the fleet's open findings, most severe first
//	demo compliance BASE               the fleet's patch compliance; each pool not current, one line
//	demo backlog BASE SINK             findings opened and resolved within the replay: never announced, nothing sent
//	demo silence BASE CLUSTER CODE TARGET            POST a silence for one finding, then GET /api/silences
//	demo silenced BASE SINK CLUSTER CODE TARGET      the finding is open with silencedBy; the sink got nothing for it
//	demo unsilence BASE SINK CLUSTER CODE TARGET     DELETE its silence; its opening reaches the sink
//	demo wait-grace BASE               wait until every open finding waiting for its grace has outlived it
//
// CLUSTER is subscriptionId/resourceGroup/clusterName.
//
// Exit status: 0 when the step did what the demo expects, 1 when it did not
// (the reason on stderr), 2 for bad arguments.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// Exit statuses.
const (
	exitOK     = 0
	exitFailed = 1
	exitUsage  = 2
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// errUsage marks a call with the wrong arguments.
var errUsage = errors.New("usage: demo json|nodes|spread|post|rolling|sweep|received|plan|activity|findings|compliance|backlog|silence|silenced|unsilence|wait-grace ARGS… (see the command's doc)")

// step is one subcommand: its arguments and where to print.
type step func(ctx context.Context, c *client, args []string, w io.Writer) error

var steps = map[string]struct {
	minArgs int
	run     step
}{
	"json":       {1, showJSON},
	"nodes":      {2, postNodes},
	"spread":     {1, showSpread},
	"post":       {2, postFile},
	"rolling":    {4, rolling},
	"sweep":      {1, sweep},
	"received":   {1, received},
	"plan":       {2, plan},
	"activity":   {2, activity},
	"findings":   {1, findings},
	"compliance": {1, compliance},
	"backlog":    {2, backlog},
	"silence":    {4, silence},
	"silenced":   {5, silenced},
	"unsilence":  {5, unsilence},
	"wait-grace": {1, waitGrace},
}

// run is the whole command; main only wires the process to it.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, errUsage)
		return exitUsage
	}
	s, ok := steps[args[0]]
	if !ok || len(args)-1 < s.minArgs {
		fmt.Fprintln(stderr, errUsage)
		return exitUsage
	}
	c := &client{http: &http.Client{Timeout: 30 * time.Second}, now: time.Now}
	if err := s.run(ctx, c, args[1:], stdout); err != nil {
		fmt.Fprintln(stderr, "demo: "+err.Error())
		if errors.Is(err, errUsage) {
			return exitUsage
		}
		return exitFailed
	}
	return exitOK
}
