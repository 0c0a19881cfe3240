// Command bench measures upgradewatch's ingestion against baselines taken in
// the same run on the same Azurite: events/s through the running handler (the
// built executable, spoken to over the host protocol) versus raw aztables
// single-entity upserts and the minimal exactly-once commit (one transaction
// moving the sequence guard and adding the dedupe row). The machine is shared
// and noisy, so baselines and handler are interleaved in rounds and reported as
// ratios of medians, never as absolute pass/fail times. Storage requests are
// counted by the handler itself (GET /_upgradewatch/stats) or, where the kind
// of request matters, by a counting proxy in front of Azurite.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/upgradewatch/upgradewatch/internal/state"
	"github.com/upgradewatch/upgradewatch/internal/timeline"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

type config struct {
	bin          string
	binArgs      []string // arguments the handler is started with (the floor handler's -serve-floor)
	endpoint     string
	clusters     int
	weeks        int
	rounds       int
	concurrency  []int
	readyRuns    int
	only         string
	coldClusters int
	coldWeeks    int
	batches      []int
}

// parts are the values -only accepts; "" runs them all.
var parts = []string{"ingest", "cold", "batch", "nodes", "sweep", "notify", "stream", "compliance", "dashboard"}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c config
	var conc, batches string
	fs.StringVar(&c.bin, "handler", "bin/handler", "path of the built handler executable")
	fs.StringVar(&c.endpoint, "endpoint", envOr("AZURITE_TABLE_ENDPOINT", "http://127.0.0.1:10002/devstoreaccount1"), "Azurite table endpoint")
	fs.IntVar(&c.clusters, "clusters", 150, "clusters in the default stream")
	fs.IntVar(&c.weeks, "weeks", 3, "weeks of upgrades in the default stream")
	fs.IntVar(&c.rounds, "rounds", 3, "interleaved baseline/handler rounds per concurrency")
	fs.StringVar(&conc, "concurrency", "1,8", "comma-separated concurrency levels")
	fs.IntVar(&c.readyRuns, "ready-runs", 15, "handler starts for the exec-to-ready measurement")
	fs.StringVar(&c.only, "only", "", "run one part only: "+strings.Join(parts, ", "))
	fs.IntVar(&c.coldClusters, "cold-clusters", 300, "clusters in the cold-fleet stream, a week each (the issue's full size: 1500; 300 keeps a routine run short)")
	fs.IntVar(&c.coldWeeks, "cold-weeks", 1, "weeks of upgrades in the cold-fleet stream")
	fs.StringVar(&batches, "batches", "1,10,100", "comma-separated Event Grid batch sizes (events per invocation)")
	floorMode := fs.Bool("serve-floor", false, "run as the floor handler (the bench starts itself so; see floor.go)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *floorMode {
		return serveFloor(os.Getenv, stderr)
	}
	var err error
	if c.concurrency, err = positiveInts(conc); err != nil {
		fmt.Fprintf(stderr, "bad -concurrency: %v\n", err)
		return 2
	}
	if c.batches, err = positiveInts(batches); err != nil {
		fmt.Fprintf(stderr, "bad -batches: %v\n", err)
		return 2
	}
	if c.only != "" && !contains(parts, c.only) {
		fmt.Fprintf(stderr, "bad -only %q: want one of %s\n", c.only, strings.Join(parts, ", "))
		return 2
	}
	if c.rounds < 1 || c.clusters < 1 || c.weeks < 1 || c.coldClusters < 1 || c.coldWeeks < 1 {
		fmt.Fprintln(stderr, "-rounds, -clusters, -weeks, -cold-clusters and -cold-weeks must be at least 1")
		return 2
	}
	if err := bench(c, stdout); err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		return 1
	}
	return 0
}

// positiveInts parses a comma-separated list of numbers of at least 1.
func positiveInts(list string) ([]int, error) {
	var out []int
	for _, s := range strings.Split(list, ",") {
		var n int
		if _, err := fmt.Sscan(strings.TrimSpace(s), &n); err != nil || n < 1 {
			return nil, fmt.Errorf("%q: want numbers of at least 1, comma-separated", list)
		}
		out = append(out, n)
	}
	return out, nil
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func connString(endpoint string) string {
	return strings.Replace(state.AzuriteConnectionString, "http://127.0.0.1:10002/devstoreaccount1", endpoint, 1)
}

func bench(c config, out io.Writer) error {
	svc, err := state.NewServiceClient(state.Connection{Name: "bench", ConnectionString: connString(c.endpoint)},
		state.ClientOptions{TryTimeout: 10 * time.Second, MaxRetries: 2})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "# upgradewatch benchmark (%s)\n\n", time.Now().UTC().Format(time.RFC3339))
	sum := &summary{}
	steps := []struct {
		part string
		run  func() error
	}{
		{"ingest", func() error { return ingestBench(c, svc, out, sum) }},
		{"cold", func() error { return coldBench(c, svc, out, sum) }},
		{"batch", func() error { return batchBench(c, out, sum) }},
		{"nodes", func() error { return nodeBench(c, svc, out) }},
		{"sweep", func() error { return sweepBench(c, out) }},
		{"notify", func() error { return sweepNotifyBench(c, out, sum) }},
		{"stream", func() error { return streamBench(c, svc, out) }},
		{"compliance", func() error { return complianceBench(c, out, sum) }},
		{"dashboard", func() error { return dashboardBench(c, out, sum) }},
	}
	for _, st := range steps {
		if c.only != "" && c.only != st.part {
			continue
		}
		if err := st.run(); err != nil {
			return err
		}
	}
	sum.write(out)
	return nil
}

// ingestBench: exec-to-ready, then per concurrency level the default stream
// through the handler, interleaved with three baselines.
func ingestBench(c config, svc *aztables.ServiceClient, out io.Writer, sum *summary) error {
	ready, err := execToReady(c)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "exec-to-ready (GET / answers), %d starts: p50 %s, max %s\n\n", len(ready), pct(ready, 50), pct(ready, 100))
	evs := defaultStream(c, 0)
	fmt.Fprintf(out, "## ingestion, default stream (%d clusters, %d weeks, %d events, one event per invocation)\n\n", c.clusters, c.weeks, len(evs))
	fmt.Fprintln(out, "| concurrency | baseline upserts/s | baseline guard transactions/s | minimal commits/s | floor handler events/s | handler events/s | ratio to upserts | ratio to transactions | ratio to minimal commit | floor ÷ minimal commit | handler ÷ floor | storage requests/event | handler CPU/event | floor CPU/event | handler p50 | handler p99 | floor p50 | minimal commit p50 | minimal commit p99 |")
	fmt.Fprintln(out, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
	fc, err := floorConfig(c)
	if err != nil {
		return err
	}
	for _, n := range c.concurrency {
		var baseRates, txRates, minRates, floorRates, evRates, reqPer []float64
		var minLat, floorLat, evLat, floorCPU, evCPU []time.Duration
		for r := 0; r < c.rounds; r++ {
			rate, _, err := baseline(svc, n, 3000)
			if err != nil {
				return fmt.Errorf("baseline: %w", err)
			}
			baseRates = append(baseRates, rate)
			if rate, err = baselineTx(svc, n, 3000); err != nil {
				return fmt.Errorf("transaction baseline: %w", err)
			}
			txRates = append(txRates, rate)
			evs := defaultStream(c, int64(r))
			m, err := minimalCommit(svc, evs, n)
			if err != nil {
				return fmt.Errorf("minimal commit: %w", err)
			}
			minRates, minLat = append(minRates, m.rate), append(minLat, m.lat...)
			f, err := deliver(fc, evs, n, 1)
			if err != nil {
				return fmt.Errorf("floor handler: %w", err)
			}
			floorRates, floorLat, floorCPU = append(floorRates, f.rate), append(floorLat, f.lat...), append(floorCPU, f.cpuPerEvent())
			d, err := deliver(c, evs, n, 1)
			if err != nil {
				return fmt.Errorf("handler: %w", err)
			}
			evRates, evLat, reqPer = append(evRates, d.rate), append(evLat, d.lat...), append(reqPer, d.perEvent())
			evCPU = append(evCPU, d.cpuPerEvent())
		}
		b, tx, m, fl, e := median(baseRates), median(txRates), median(minRates), median(floorRates), median(evRates)
		fmt.Fprintf(out, "| %d | %.0f | %.0f | %.0f | %.0f | %.0f | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %s | %s | %s | %s | %s | %s | %s |\n", n, b, tx, m, fl, e,
			e/b, e/tx, e/m, fl/m, e/fl, median(reqPer), pct(evCPU, 50), pct(floorCPU, 50),
			pct(evLat, 50), pct(evLat, 99), pct(floorLat, 50), pct(minLat, 50), pct(minLat, 99))
		sum.add(check{Name: fmt.Sprintf("requests/event, default stream, concurrency %d", n), Value: median(reqPer), Op: opAtMost, Limit: 1.5})
		sum.add(check{Name: fmt.Sprintf("events/s ÷ minimal commit/s, default stream, concurrency %d", n), Value: e / m, Op: opAtLeast, Limit: 0.5})
		sum.add(check{Name: fmt.Sprintf("floor handler events/s ÷ minimal commit/s (the most any handler reaches here), concurrency %d", n), Value: fl / m})
		sum.add(check{Name: fmt.Sprintf("events/s ÷ floor handler events/s, concurrency %d", n), Value: e / fl})
	}
	fmt.Fprintf(out, "\nrounds: %d per concurrency (baselines and handler interleaved); medians reported. Minimal commit: per event one "+
		"entity-group transaction in its cluster's partition (delete seq~n, add seq~n+1, add signal~<event id>), same stream, same order. "+
		"Floor handler: a separate process behind the same host protocol that decodes each event with the real decoder and commits the minimal "+
		"commit plus one cluster row (cmd/bench/floor.go): the most any handler that records state reaches on this machine.\n", c.rounds)
	return nil
}

// defaultStream is the generated fleet stream of round r.
func defaultStream(c config, r int64) []timeline.Event {
	return timeline.Generate(timeline.Options{Seed: 100 + r, Clusters: c.clusters, Weeks: c.weeks, Schema: "mixed",
		Start: time.Date(2026, 10, 5, 0, 0, 0, 0, time.UTC)})
}

// drive runs op(worker, i) for every i below total on `workers` goroutines and
// times each call. It returns calls per second, the latencies, and the first
// error (a worker stops at its first error).
func drive(workers, total int, op func(w, i int) error) (float64, []time.Duration, error) {
	var next atomic.Int64
	lat := make([]time.Duration, total)
	var mu sync.Mutex
	var firstErr error
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= total {
					return
				}
				t0 := time.Now()
				err := op(w, i)
				lat[i] = time.Since(t0)
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					return
				}
			}
		}(w)
	}
	wg.Wait()
	return float64(total) / time.Since(start).Seconds(), lat, firstErr
}

// scratchTable creates a throw-away table; call drop when done.
func scratchTable(svc *aztables.ServiceClient, name string) (client *aztables.Client, drop func(), err error) {
	client = svc.NewClient(fmt.Sprintf("%s%d", name, time.Now().UnixNano()%1e9))
	ctx := context.Background()
	if _, err := client.CreateTable(ctx, nil); err != nil {
		return nil, nil, err
	}
	return client, func() { _, _ = client.Delete(ctx, nil) }, nil
}

// baseline: raw single-entity upserts of a NodePool-sized row, the cheapest
// write one event could possibly cost.
func baseline(svc *aztables.ServiceClient, workers, total int) (float64, []time.Duration, error) {
	client, drop, err := scratchTable(svc, "benchbase")
	if err != nil {
		return 0, nil, err
	}
	defer drop()
	return drive(workers, total, func(_, i int) error {
		ent, _ := json.Marshal(map[string]any{
			"PartitionKey": fmt.Sprintf("6f1c2a3b-4d5e-4f60-8a71-92b3c4d5e6f7~rg-bench~aks-%03d", i%150),
			"RowKey":       fmt.Sprintf("pool~np%d", i%4), "Kind": "NodePool", "Pool": fmt.Sprintf("np%d", i%4),
			"RollingState": "Rolling", "NodeImageVersion": "AKSUbuntu-2204gen2containerd-202610.13.0",
			"OsType": "Linux", "OsSku": "Ubuntu", "VmSize": "Standard_D4s_v5", "Count": 5, "MaxSurge": "33%",
		})
		_, err := client.UpsertEntity(context.Background(), ent, nil)
		return err
	})
}

// baselineTx: raw entity-group transactions of the smallest shape a commit can
// have (delete seq~n, add seq~n+1, add the signal row, replace one state row),
// to separate Azurite's cost of a transaction from the handler's own. Each
// worker owns its partitions, so there are no conflicts.
func baselineTx(svc *aztables.ServiceClient, workers, total int) (float64, error) {
	client, drop, err := scratchTable(svc, "benchtx")
	if err != nil {
		return 0, err
	}
	defer drop()
	seqs := make([]map[string]int, workers)
	for w := range seqs {
		seqs[w] = map[string]int{}
	}
	rate, _, err := drive(workers, total, func(w, i int) error {
		pk := fmt.Sprintf("6f1c2a3b-4d5e-4f60-8a71-92b3c4d5e6f7~rg-bench~aks-w%d-%02d", w, i%20)
		n := seqs[w][pk]
		// The minimal exactly-once commit plus one state row, as a signal that
		// changes one pool writes.
		pool, _ := json.Marshal(map[string]any{"PartitionKey": pk, "RowKey": "pool~np1", "Kind": "NodePool",
			"RollingState": "Rolling", "NodeImageVersion": "AKSUbuntu-2204gen2containerd-202610.13.0"})
		acts := append(minimalActions(pk, n, fmt.Sprint(i), "Microsoft.ContainerService.NodePoolRollingStarted"),
			aztables.TransactionAction{ActionType: aztables.TransactionTypeInsertReplace, Entity: pool})
		if _, err := client.SubmitTransaction(context.Background(), acts, nil); err != nil {
			return err
		}
		seqs[w][pk] = n + 1
		return nil
	})
	return rate, err
}

func dropTables(c config, prefix string) {
	svc, err := state.NewServiceClient(state.Connection{Name: "bench", ConnectionString: connString(c.endpoint)}, state.ClientOptions{})
	if err != nil {
		return
	}
	for _, t := range []string{state.TableFleet, state.TableIndex, state.TableRejected, state.TableCatalogue, state.TableCompliance, state.TableComplianceFleet} {
		_, _ = svc.DeleteTable(context.Background(), prefix+t, nil)
	}
}

type proc struct {
	url   string
	cmd   *exec.Cmd
	log   *bytes.Buffer
	start time.Time
}

// launch starts the handler on a free port, as the Functions host would, without
// waiting for it.
func launch(c config, prefix, logLevel string, env ...string) (*proc, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	bin, _ := filepath.Abs(c.bin)
	cmd := exec.Command(bin, c.binArgs...)
	cmd.Env = append(os.Environ(), fmt.Sprintf("FUNCTIONS_CUSTOMHANDLER_PORT=%d", port),
		"AzureWebJobsStorage="+connString(c.endpoint), "UPGRADEWATCH_TABLE_PREFIX="+prefix, "UPGRADEWATCH_LOG_LEVEL="+logLevel,
		"UPGRADEWATCH_ENRICH=false",  // no ARM here; a background read would only add noise
		"UPGRADEWATCH_NODE_AUTH=key") // and so no cluster OIDC issuer to verify node snapshots against
	cmd.Env = append(cmd.Env, env...)
	p := &proc{url: fmt.Sprintf("http://127.0.0.1:%d", port), cmd: cmd, log: &bytes.Buffer{}}
	cmd.Stdout, cmd.Stderr = p.log, p.log
	p.start = time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w (run make build)", bin, err)
	}
	return p, nil
}

// waitFor polls path until it answers with want (0: any answer at all).
func (p *proc) waitFor(path string, want int, poll time.Duration) error {
	deadline := p.start.Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(p.url + path); err == nil {
			resp.Body.Close()
			if want == 0 || resp.StatusCode == want {
				return nil
			}
		}
		time.Sleep(poll)
	}
	return fmt.Errorf("handler: %s did not answer in time", path)
}

// startHandler launches the handler and waits until its tables exist.
func startHandler(c config, prefix string, env ...string) (*proc, error) {
	p, err := launch(c, prefix, "warn", env...)
	if err != nil {
		return nil, err
	}
	if err := p.waitFor("/api/clusters", http.StatusOK, 5*time.Millisecond); err != nil {
		p.stop() // after Wait the log is safe to read
		return nil, fmt.Errorf("%w:\n%s", err, p.log)
	}
	return p, nil
}

func (p *proc) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	_ = p.cmd.Wait()
}

func (p *proc) storageRequests() (int64, error) {
	resp, err := http.Get(p.url + "/_upgradewatch/stats")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var s struct{ StorageRequests int64 }
	err = json.NewDecoder(resp.Body).Decode(&s)
	return s.StorageRequests, err
}

// execToReady starts the handler repeatedly and times exec until GET / answers
// (the host polls every 25 ms; this polls faster to measure).
func execToReady(c config) ([]time.Duration, error) {
	defer dropTables(c, "benchready")
	var out []time.Duration
	for i := 0; i < c.readyRuns; i++ {
		p, err := launch(c, "benchready", "error")
		if err != nil {
			return nil, err
		}
		err = p.waitFor("/", 0, 500*time.Microsecond)
		ready := time.Since(p.start)
		p.stop()
		if err != nil {
			return nil, err
		}
		out = append(out, ready)
	}
	return out, nil
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[len(s)/2]
}

func pct(ds []time.Duration, p int) string {
	if len(ds) == 0 {
		return "-"
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := (len(s) - 1) * p / 100
	return s[i].Round(10 * time.Microsecond).String()
}
