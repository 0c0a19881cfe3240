package main

// End-to-end tests: build the real executable, start it as the Functions host
// would (FUNCTIONS_CUSTOMHANDLER_PORT, app settings in the environment), and
// speak the host protocol to it over HTTP.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/upgradewatch/upgradewatch/internal/azuritetest"
	"github.com/upgradewatch/upgradewatch/internal/fleet"
	"github.com/upgradewatch/upgradewatch/internal/host"
	"github.com/upgradewatch/upgradewatch/internal/state"
	"github.com/upgradewatch/upgradewatch/internal/timeline"
)

var handlerBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "upgradewatch-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	handlerBin = filepath.Join(dir, "handler")
	build := exec.Command("go", "build", "-o", handlerBin, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build handler:", err)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// syncBuffer collects a child's output; the exec package writes it from its
// own goroutine while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// proc is one running handler process.
type proc struct {
	URL     string
	cmd     *exec.Cmd
	log     *syncBuffer
	readyIn time.Duration
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startHandler runs the built executable against an Azurite endpoint and waits
// until it answers the host's readiness poll.
func startHandler(t testing.TB, endpoint, prefix string) *proc {
	t.Helper()
	port := freePort(t)
	cmd := exec.Command(handlerBin)
	cmd.Env = append(os.Environ(),
		fmt.Sprintf("FUNCTIONS_CUSTOMHANDLER_PORT=%d", port),
		"UPGRADEWATCH_STORAGE=UpgradewatchStorage",
		"UpgradewatchStorage="+azuritetest.ConnectionString(endpoint),
		"UPGRADEWATCH_TABLE_PREFIX="+prefix,
		"UPGRADEWATCH_STORAGE_TIMEOUT=2s",
		"UPGRADEWATCH_LOG_LEVEL=info",
		"UPGRADEWATCH_ENRICH=false", // no ARM here; enrichment is tested on the SDK fakes
	)
	p := &proc{URL: fmt.Sprintf("http://127.0.0.1:%d", port), cmd: cmd, log: &syncBuffer{}}
	cmd.Stdout, cmd.Stderr = p.log, p.log
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.stop(t) })
	for {
		resp, err := http.Get(p.URL + "/")
		if err == nil {
			resp.Body.Close()
			p.readyIn = time.Since(start)
			break
		}
		if time.Since(start) > 10*time.Second {
			t.Fatalf("handler not ready after 10s: %v\n%s", err, p.log)
		}
		time.Sleep(2 * time.Millisecond)
	}
	// Tables are created in the background; wait for them so tests start clean.
	for !strings.Contains(p.log.String(), "tables ready") {
		if time.Since(start) > 15*time.Second {
			t.Fatalf("tables not ready:\n%s", p.log)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return p
}

func (p *proc) stop(t testing.TB) {
	if p.cmd.Process == nil || p.cmd.ProcessState != nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("handler exited with %v\n%s", err, p.log)
		}
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		t.Errorf("handler did not stop on SIGTERM")
	}
}

// deliver posts one event as the Functions host does and returns the status.
func deliver(t testing.TB, base string, raw json.RawMessage) (int, host.InvokeResponse) {
	t.Helper()
	inv := uuid.NewString()
	body, err := host.NewEventGridRequest("event", "AksEvents", raw, time.Now(), inv)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, base+"/AksEvents", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("X-Azure-Functions-InvocationId", inv)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, host.InvokeResponse{}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out host.InvokeResponse
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") || json.Unmarshal(b, &out) != nil || out.Outputs == nil {
		t.Errorf("status %d: response is not a JSON envelope (%s): %q", resp.StatusCode, ct, b)
	}
	return resp.StatusCode, out
}

// deliverAll delivers events through the handlers with the given concurrency,
// redelivering whatever got a non-2xx answer, as Event Grid does.
func deliverAll(t testing.TB, bases []string, evs []timeline.Event, workers int) (redeliveries int) {
	t.Helper()
	var mu sync.Mutex
	queue := make(chan timeline.Event, len(evs))
	for _, e := range evs {
		queue <- e
	}
	close(queue)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for e := range queue {
				for attempt := 0; ; attempt++ {
					code, _ := deliver(t, bases[(w+attempt)%len(bases)], e.Raw)
					if code >= 200 && code < 300 {
						break
					}
					if attempt > 50 {
						t.Errorf("event %s never accepted (last status %d)", e.ID, code)
						break
					}
					mu.Lock()
					redeliveries++
					mu.Unlock()
					time.Sleep(20 * time.Millisecond)
				}
			}
		}(w)
	}
	wg.Wait()
	return redeliveries
}

// dump reads a table whole, dropping what legitimately depends on delivery
// (storage timestamps and ETags, when a signal was received and in which
// commit it was applied).
func dump(t testing.TB, svc *aztables.ServiceClient, table string) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	pager := svc.NewClient(table).NewListEntitiesPager(nil)
	for pager.More() {
		page, err := pager.NextPage(context.Background())
		if err != nil {
			t.Fatalf("dump %s: %v", table, err)
		}
		for _, b := range page.Entities {
			var e map[string]any
			if err := json.Unmarshal(b, &e); err != nil {
				t.Fatal(err)
			}
			key := fmt.Sprint(e["PartitionKey"], " | ", e["RowKey"])
			// Findings are judged when each commit lands, on whatever state the
			// delivery order produced by then, at that moment's clock: what must
			// converge is the set of open findings, not their times or history.
			switch e["Kind"] {
			case state.KindFinding, state.KindOpenIndex:
				if e["Status"] != fleet.FindingOpen || e["Ended"] == true {
					continue
				}
				if e["Kind"] == state.KindOpenIndex {
					// Keyed per opening (…~<code>~<target>~<opening>): how
					// many times a finding opened is history too.
					rk := fmt.Sprint(e["RowKey"])
					key = fmt.Sprint(e["PartitionKey"], " | ", rk[:strings.LastIndex(rk, "~")])
				}
				out[key] = map[string]any{"Code": e["Code"], "Target": e["Target"], "Severity": e["Severity"], "Status": e["Status"]}
				continue
			case state.KindDue:
				continue
			case state.KindInFlight:
				if e["Ended"] == true {
					continue // a tombstone: history, kept an hour
				}
			}
			if strings.HasPrefix(fmt.Sprint(e["RowKey"]), "zfinding~") {
				continue
			}
			// FindingsSeenAt is the open findings' LastSeenAt, kept on the
			// sequence row: a finding time, left out as above.
			for k := range e {
				if k == "Timestamp" || strings.HasPrefix(k, "odata.") || strings.HasPrefix(k, "ReceivedAt") || strings.HasPrefix(k, "AppliedSeq") ||
					strings.HasPrefix(k, "NextEvaluation") || strings.HasPrefix(k, "HeardAt") || strings.HasPrefix(k, "FindingsSeenAt") {
					delete(e, k)
				}
			}
			out[key] = e
		}
	}
	return out
}

func TestReadinessAndProtocol(t *testing.T) {
	ep := azuritetest.Endpoint(t)
	svc := azuritetest.Service(t, ep)
	prefix := azuritetest.Prefix(t)
	azuritetest.DropTables(t, svc, prefix+state.TableFleet, prefix+state.TableIndex, prefix+state.TableRejected, prefix+state.TableCatalogue,
		prefix+state.TableCompliance, prefix+state.TableComplianceFleet)
	p := startHandler(t, ep, prefix)
	t.Logf("exec to ready: %v", p.readyIn)

	evs := timeline.Demo()
	code, resp := deliver(t, p.URL, evs[0].Raw)
	if code != 200 || len(resp.Logs) == 0 {
		t.Fatalf("first event: %d %+v", code, resp)
	}
	// Unknown function and malformed envelope: JSON answers, no crash.
	r, err := http.Post(p.URL+"/NoSuchFunction", "application/json", strings.NewReader(`{}`))
	if err != nil || r.StatusCode != 404 {
		t.Errorf("unknown function: %v %v", r, err)
	}
	r, err = http.Post(p.URL+"/AksEvents", "application/json", strings.NewReader(`{"Data":`))
	if err != nil || r.StatusCode != 200 {
		t.Errorf("malformed envelope: %v %v", r, err)
	}
	r, err = http.Get(p.URL + "/api/clusters")
	if err != nil || r.StatusCode != 200 {
		t.Fatalf("status API: %v %v", r, err)
	}
	var list struct{ Count int }
	_ = json.NewDecoder(r.Body).Decode(&list)
	if list.Count != 1 {
		t.Errorf("clusters after one event: %d, want 1", list.Count)
	}
	// The handler logs JSON lines carrying the invocation and event.
	if !strings.Contains(p.log.String(), `"function":"AksEvents"`) || !strings.Contains(p.log.String(), `"event_id":"`+evs[0].ID+`"`) {
		t.Errorf("log lines lack function/event_id:\n%s", p.log)
	}
}

// A stream with 30 % duplicates, reordered, delivered through two handler
// processes at once, ends in exactly the state of one in-order delivery.
func TestDuplicatesReorderedTwoProcessesEqualInOrder(t *testing.T) {
	ep := azuritetest.Endpoint(t)
	svc := azuritetest.Service(t, ep)
	evs := timeline.Generate(timeline.Options{Seed: 42, Clusters: 6, Weeks: 3, Schema: "mixed",
		Start: time.Date(2026, 10, 5, 0, 0, 0, 0, time.UTC)})
	evs = append(timeline.Demo(), evs...)

	ref, got := azuritetest.Prefix(t), azuritetest.Prefix(t)
	for _, pfx := range []string{ref, got} {
		azuritetest.DropTables(t, svc, pfx+state.TableFleet, pfx+state.TableIndex, pfx+state.TableRejected, pfx+state.TableCatalogue,
			pfx+state.TableCompliance, pfx+state.TableComplianceFleet)
	}

	one := startHandler(t, ep, ref)
	if n := deliverAll(t, []string{one.URL}, evs, 1); n != 0 {
		t.Fatalf("in-order delivery needed %d redeliveries", n)
	}

	a, b := startHandler(t, ep, got), startHandler(t, ep, got)
	messy := timeline.Shuffle(timeline.WithDuplicates(evs, 0.3, 7), 9)
	if len(messy) < len(evs)*13/10 {
		t.Fatalf("stream has %d events, want at least %d", len(messy), len(evs)*13/10)
	}
	deliverAll(t, []string{a.URL, b.URL}, messy, 8)
	// Stopped as the host stops them: what they queued for the index
	// behind their commits is written before they exit.
	for _, p := range []*proc{one, a, b} {
		p.stop(t)
	}

	for _, table := range []string{state.TableFleet, state.TableIndex} {
		want, have := dump(t, svc, ref+table), dump(t, svc, got+table)
		if len(want) == 0 {
			t.Fatalf("%s: reference is empty", table)
		}
		if diff := cmp.Diff(want, have); diff != "" {
			t.Errorf("%s differs from the in-order delivery (-in order +messy):\n%s", table, diff)
		}
	}
	var signals int
	for k := range dump(t, svc, got+state.TableFleet) {
		if strings.Contains(k, "| signal~") {
			signals++
		}
	}
	if signals != len(evs) {
		t.Errorf("%d signal rows, want one per distinct event (%d)", signals, len(evs))
	}
}

// Storage stops mid-stream: the handler answers 5xx for what it could not
// commit, recovers when storage returns, and after redelivery nothing is lost
// or doubled.
func TestStorageOutageMidStream(t *testing.T) {
	az := azuritetest.Start(t)
	svc := azuritetest.Service(t, az.Endpoint)
	prefix, ref := azuritetest.Prefix(t), azuritetest.Prefix(t)
	p := startHandler(t, az.Endpoint, prefix)

	evs := timeline.Demo()
	half := len(evs) / 2
	for _, e := range evs[:half] {
		if code, _ := deliver(t, p.URL, e.Raw); code != 200 {
			t.Fatalf("before outage: status %d for %s", code, e.ID)
		}
	}
	az.Stop()
	var failed []timeline.Event
	for _, e := range evs[half : half+5] {
		code, _ := deliver(t, p.URL, e.Raw)
		if code < 500 {
			t.Fatalf("during outage: status %d for %s, want 5xx so Event Grid redelivers", code, e.ID)
		}
		failed = append(failed, e)
	}
	az.Restart(t)
	// Event Grid redelivers the failures, then the rest arrives; a few earlier
	// events are redelivered too.
	rest := append(append(failed, evs[half+5:]...), evs[:3]...)
	if n := deliverAll(t, []string{p.URL}, rest, 2); n > 10 {
		t.Errorf("%d redeliveries after storage returned, want storage to be usable at once", n)
	}

	r := startHandler(t, az.Endpoint, ref)
	deliverAll(t, []string{r.URL}, evs, 1)
	want, got := dump(t, svc, ref+state.TableFleet), dump(t, svc, prefix+state.TableFleet)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("state after the outage differs from a clean delivery (-clean +outage):\n%s", diff)
	}
	signals := 0
	for k := range got {
		if strings.Contains(k, "| signal~") {
			signals++
		}
	}
	if signals != len(evs) {
		t.Errorf("%d signal rows after the outage, want %d: one per event, none lost or doubled", signals, len(evs))
	}
}
