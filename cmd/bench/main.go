// Command bench measures upgradewatch's ingestion against a baseline taken in
// the same run on the same Azurite: events/s through the running handler (the
// built executable, spoken to over the host protocol) versus raw aztables
// single-entity upserts. The machine is shared and noisy, so the two are
// interleaved in rounds and reported as a ratio of medians, never as absolute
// pass/fail times.
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

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
	"github.com/google/uuid"

	"github.com/upgradewatch/upgradewatch/internal/host"
	"github.com/upgradewatch/upgradewatch/internal/state"
	"github.com/upgradewatch/upgradewatch/internal/timeline"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

type config struct {
	bin         string
	endpoint    string
	clusters    int
	weeks       int
	rounds      int
	concurrency []int
	readyRuns   int
	only        string
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c config
	var conc string
	fs.StringVar(&c.bin, "handler", "bin/handler", "path of the built handler executable")
	fs.StringVar(&c.endpoint, "endpoint", envOr("AZURITE_TABLE_ENDPOINT", "http://127.0.0.1:10002/devstoreaccount1"), "Azurite table endpoint")
	fs.IntVar(&c.clusters, "clusters", 150, "clusters in the generated stream")
	fs.IntVar(&c.weeks, "weeks", 3, "weeks of upgrades in the generated stream")
	fs.IntVar(&c.rounds, "rounds", 3, "interleaved baseline/handler rounds per concurrency")
	fs.StringVar(&conc, "concurrency", "1,8", "comma-separated concurrency levels")
	fs.IntVar(&c.readyRuns, "ready-runs", 15, "handler starts for the exec-to-ready measurement")
	fs.StringVar(&c.only, "only", "", "run one part only: ingest, nodes, sweep or stream")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	for _, s := range strings.Split(conc, ",") {
		var n int
		if _, err := fmt.Sscan(strings.TrimSpace(s), &n); err != nil || n < 1 {
			fmt.Fprintf(stderr, "bad -concurrency %q\n", conc)
			return 2
		}
		c.concurrency = append(c.concurrency, n)
	}
	if err := bench(c, stdout); err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		return 1
	}
	return 0
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
	switch c.only {
	case "nodes":
		return nodeBench(c, svc, out)
	case "sweep":
		return sweepBench(c, out)
	case "stream":
		return streamBench(c, svc, out)
	}

	ready, err := execToReady(c)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "exec-to-ready (GET / answers), %d starts: p50 %s, max %s\n\n", len(ready), pct(ready, 50), pct(ready, 100))

	fmt.Fprintln(out, "| concurrency | baseline upserts/s | baseline guard transactions/s | handler events/s | ratio to upserts | ratio to transactions | storage requests/event | handler p50 | handler p99 | upsert p50 | upsert p99 |")
	fmt.Fprintln(out, "|---|---|---|---|---|---|---|---|---|---|---|")
	for _, n := range c.concurrency {
		var baseRates, txRates, evRates, reqPer []float64
		var baseLat, evLat []time.Duration
		for r := 0; r < c.rounds; r++ {
			rate, lat, err := baseline(svc, n, 3000)
			if err != nil {
				return fmt.Errorf("baseline: %w", err)
			}
			baseRates, baseLat = append(baseRates, rate), append(baseLat, lat...)
			rate, err = baselineTx(svc, n, 3000)
			if err != nil {
				return fmt.Errorf("transaction baseline: %w", err)
			}
			txRates = append(txRates, rate)
			rate, lat, rpe, err := ingest(c, n, int64(r))
			if err != nil {
				return fmt.Errorf("handler: %w", err)
			}
			evRates, evLat, reqPer = append(evRates, rate), append(evLat, lat...), append(reqPer, rpe)
		}
		b, tx, e := median(baseRates), median(txRates), median(evRates)
		fmt.Fprintf(out, "| %d | %.0f | %.0f | %.0f | %.2f | %.2f | %.2f | %s | %s | %s | %s |\n", n, b, tx, e, e/b, e/tx, median(reqPer),
			pct(evLat, 50), pct(evLat, 99), pct(baseLat, 50), pct(baseLat, 99))
	}
	fmt.Fprintf(out, "\nrounds: %d per concurrency (baseline and handler interleaved); medians reported.\n", c.rounds)
	if err := nodeBench(c, svc, out); err != nil {
		return err
	}
	if err := sweepBench(c, out); err != nil {
		return err
	}
	return streamBench(c, svc, out)
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
		ent := func(rk string, cols map[string]any) []byte {
			m := map[string]any{"PartitionKey": pk, "RowKey": rk}
			for k, v := range cols {
				m[k] = v
			}
			b, _ := json.Marshal(m)
			return b
		}
		var acts []aztables.TransactionAction
		if n > 0 {
			acts = append(acts, aztables.TransactionAction{ActionType: aztables.TransactionTypeDelete,
				Entity: ent(fmt.Sprintf("seq~%012d", n), nil), IfMatch: to.Ptr(azcore.ETagAny)})
		}
		acts = append(acts,
			aztables.TransactionAction{ActionType: aztables.TransactionTypeAdd, Entity: ent(fmt.Sprintf("seq~%012d", n+1), map[string]any{"Kind": "Sequence"})},
			aztables.TransactionAction{ActionType: aztables.TransactionTypeAdd, Entity: ent(fmt.Sprintf("signal~%d", i),
				map[string]any{"Kind": "Signal", "EventType": "Microsoft.ContainerService.NodePoolRollingStarted", "Pool": "np1"})},
			aztables.TransactionAction{ActionType: aztables.TransactionTypeInsertReplace, Entity: ent("pool~np1",
				map[string]any{"Kind": "NodePool", "RollingState": "Rolling", "NodeImageVersion": "AKSUbuntu-2204gen2containerd-202610.13.0"})})
		if _, err := client.SubmitTransaction(context.Background(), acts, nil); err != nil {
			return err
		}
		seqs[w][pk] = n + 1
		return nil
	})
	return rate, err
}

// ingest delivers a generated fleet stream to a fresh handler process (its own
// tables) and measures events/s, latency, and storage requests per event.
func ingest(c config, workers int, seed int64) (float64, []time.Duration, float64, error) {
	prefix := fmt.Sprintf("bench%d", time.Now().UnixNano()%1e9)
	p, err := startHandler(c, prefix)
	if err != nil {
		return 0, nil, 0, err
	}
	defer p.stop()
	defer dropTables(c, prefix)
	evs := timeline.Generate(timeline.Options{Seed: 100 + seed, Clusters: c.clusters, Weeks: c.weeks, Schema: "mixed",
		Start: time.Date(2026, 10, 5, 0, 0, 0, 0, time.UTC)})
	bodies := make([][]byte, len(evs))
	for i, e := range evs {
		bodies[i], _ = host.NewEventGridRequest("event", "AksEvents", e.Raw, time.Now(), uuid.NewString())
	}
	before, err := p.storageRequests()
	if err != nil {
		return 0, nil, 0, err
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	rate, lat, err := drive(workers, len(bodies), func(_, i int) error {
		resp, err := client.Post(p.url+"/AksEvents", "application/json; charset=utf-8", bytes.NewReader(bodies[i]))
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("event %s: status %d", evs[i].ID, resp.StatusCode)
		}
		return nil
	})
	if err != nil {
		return 0, nil, 0, err
	}
	after, err := p.storageRequests()
	if err != nil {
		return 0, nil, 0, err
	}
	return rate, lat, float64(after-before) / float64(len(evs)), nil
}

func dropTables(c config, prefix string) {
	svc, err := state.NewServiceClient(state.Connection{Name: "bench", ConnectionString: connString(c.endpoint)}, state.ClientOptions{})
	if err != nil {
		return
	}
	for _, t := range []string{state.TableFleet, state.TableIndex, state.TableRejected} {
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
func launch(c config, prefix, logLevel string) (*proc, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	bin, _ := filepath.Abs(c.bin)
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), fmt.Sprintf("FUNCTIONS_CUSTOMHANDLER_PORT=%d", port),
		"AzureWebJobsStorage="+connString(c.endpoint), "UPGRADEWATCH_TABLE_PREFIX="+prefix, "UPGRADEWATCH_LOG_LEVEL="+logLevel,
		"UPGRADEWATCH_ENRICH=false",  // no ARM here; a background read would only add noise
		"UPGRADEWATCH_NODE_AUTH=key") // and so no cluster OIDC issuer to verify node snapshots against
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
func startHandler(c config, prefix string) (*proc, error) {
	p, err := launch(c, prefix, "warn")
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
