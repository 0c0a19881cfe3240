package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/upgradewatch/upgradewatch/internal/findings"
	"github.com/upgradewatch/upgradewatch/internal/host"
	"github.com/upgradewatch/upgradewatch/internal/timeline"
)

// sweepLead is how far ahead of the sweep the stall deadlines are set: long
// enough to ingest the clusters before any of them is due, and for them to
// settle. A cluster that heard a signal less than findings.Settle ago is
// judged at its event clock (issue #16: a backlog is judged as it happened),
// so a stall opens from the sweep only once its cluster has been quiet that
// long: this part of the bench waits about five minutes.
const sweepLead = findings.Settle + 15*time.Second

// sweepNotifyBench measures what a Sweep costs per due cluster that owes a
// notification, through the built handler and its real clock. With the
// policy's stallHours at 1, a pool that started rolling an hour ago less
// sweepLead is due when the deadline passes: the Sweep finds the cluster due,
// opens UpgradeStalled and dispatches it to a webhook sink (a receiver in this
// process). A counting proxy between the handler and Azurite tells guarded
// transactions (those moving a partition's sequence guard) from other
// requests.
func sweepNotifyBench(c config, out io.Writer, sum *summary) error {
	var received atomic.Int64
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		received.Add(1)
		w.WriteHeader(http.StatusOK)
	}))
	defer sink.Close()
	px, err := newCountingProxy(c.endpoint)
	if err != nil {
		return err
	}
	defer px.close()
	pc := c
	pc.endpoint = px.endpoint
	prefix := fmt.Sprintf("benchsweepn%d", time.Now().UnixNano()%1e9)
	// No grace: the opening is sent by the Sweep that opens it (issue #16's
	// grace would hold it back for 15 minutes).
	p, err := startHandler(pc, prefix, `UPGRADEWATCH_POLICY={"defaults":{"stallHours":1},"grace":{"UpgradeStalled":"0s"}}`,
		"UPGRADEWATCH_NOTIFY_WEBHOOK_URL="+sink.URL+"/events")
	if err != nil {
		return err
	}
	defer p.stop()
	defer dropTables(c, prefix)

	deadline, err := ingestRolling(p, sweepInFlight)
	if err != nil {
		return err
	}
	settle(&received, time.Second)
	time.Sleep(time.Until(deadline.Add(time.Second)))

	before, reqBefore, sentBefore := px.snapshot(), mustRequests(p), received.Load()
	ret, ms, err := postSweep(p.url)
	if err != nil {
		return err
	}
	after, reqAfter := px.snapshot(), mustRequests(p)
	sent := received.Load() - sentBefore
	if ret.Due != sweepInFlight || ret.Opened < sweepInFlight || ret.Notifications.Sent < sweepInFlight || sent < int64(sweepInFlight) {
		return fmt.Errorf("sweep: %d due, %d opened, %d notifications sent, %d received; want %d of each",
			ret.Due, ret.Opened, ret.Notifications.Sent, sent, sweepInFlight)
	}
	byKind, total := diffCounts(before, after)
	due := float64(ret.Due)
	fmt.Fprintf(out, "\n## sweep of due clusters owing notifications (through the handler, one webhook sink)\n\n")
	fmt.Fprintf(out, "%d clusters due (UpgradeStalled opens on each), %d findings opened, %d notifications sent by the sweep "+
		"(%d received by the sink), sweep %.1f ms.\n\n", ret.Due, ret.Opened, ret.Notifications.Sent, sent, ms)
	fmt.Fprintln(out, "| storage request | count | per due cluster |")
	fmt.Fprintln(out, "|---|---|---|")
	for _, k := range requestKinds {
		fmt.Fprintf(out, "| %s | %d | %.2f |\n", k, byKind[k], float64(byKind[k])/due)
	}
	fmt.Fprintf(out, "| all (counted by the proxy) | %d | %.2f |\n", total, float64(total)/due)
	fmt.Fprintf(out, "| all (counted by the handler) | %d | %.2f |\n", reqAfter-reqBefore, float64(reqAfter-reqBefore)/due)
	fmt.Fprintln(out, "\nA guarded transaction is an entity-group transaction that writes a seq~ row (the partition's sequence guard);"+
		" the proxy reads each $batch body to tell.")
	sum.add(check{Name: "guarded transactions per due cluster in a Sweep (notifications owed)", Value: float64(byKind[kindGuarded]) / due,
		Op: opAtMost, Limit: 2})
	sum.add(check{Name: "storage requests per due cluster in a Sweep (notifications owed)", Value: float64(total) / due})
	return nil
}

// ingestRolling sends n generated clusters' profiles (their Resource
// Notifications snapshot) and then, for each, its first NodePoolRollingStarted
// dated an hour less sweepLead ago. It returns when the stalls fall due.
func ingestRolling(p *proc, n int) (time.Time, error) {
	start := time.Now().UTC().Add(-3 * time.Hour).Truncate(time.Hour)
	evs := timeline.Generate(timeline.Options{Seed: 900, Clusters: n, Weeks: 1, Schema: "mixed", Start: start})
	var first []timeline.Event
	seen := map[string]bool{}
	for _, e := range evs {
		switch {
		case e.Time.Before(start.Add(time.Hour)): // the snapshots come in the first half hour
			first = append(first, e)
		case e.Type == timeline.TypeNodePoolRollingStarted && !seen[e.Cluster]:
			seen[e.Cluster] = true
		}
	}
	client := &http.Client{}
	for _, e := range first {
		if err := postOne(client, p.url, e.Raw); err != nil {
			return time.Time{}, err
		}
	}
	startedAt := time.Now().Add(-time.Hour + sweepLead)
	seen = map[string]bool{}
	for _, e := range evs {
		if e.Type != timeline.TypeNodePoolRollingStarted || seen[e.Cluster] {
			continue
		}
		seen[e.Cluster] = true
		raw, err := retimed(e.Raw, startedAt)
		if err != nil {
			return time.Time{}, err
		}
		if err := postOne(client, p.url, raw); err != nil {
			return time.Time{}, err
		}
	}
	if len(seen) != n {
		return time.Time{}, fmt.Errorf("the generated stream has %d clusters rolling, want %d", len(seen), n)
	}
	due := startedAt.Add(time.Hour)
	if time.Now().After(due) {
		return time.Time{}, fmt.Errorf("ingesting %d clusters took longer than %s: they fell due before the sweep", n, sweepLead)
	}
	return due, nil
}

func postOne(client *http.Client, url string, raw json.RawMessage) error {
	body, err := host.NewEventGridRequest("event", "AksEvents", raw, time.Now(), uuid.NewString())
	if err != nil {
		return err
	}
	ret, err := postEvents(client, url, body)
	if err == nil && (ret.Failed > 0 || ret.Rejected > 0) {
		err = fmt.Errorf("event not taken: %+v", ret)
	}
	return err
}

// retimed gives an event object (either schema) a new id and time.
func retimed(raw json.RawMessage, at time.Time) (json.RawMessage, error) {
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, err
	}
	ts := at.UTC().Format(time.RFC3339Nano)
	if _, ok := m["eventTime"]; ok {
		m["eventTime"] = ts
	} else {
		m["time"] = ts
	}
	m["id"] = uuid.NewString()
	return json.Marshal(m)
}

// settle waits until the counter has not moved for quiet (the background
// dispatch of what ingestion opened), at most 30 s.
func settle(n *atomic.Int64, quiet time.Duration) {
	end := time.Now().Add(30 * time.Second)
	last := n.Load()
	for time.Now().Before(end) {
		time.Sleep(quiet)
		if v := n.Load(); v == last {
			return
		} else {
			last = v
		}
	}
}

func mustRequests(p *proc) int64 {
	n, _ := p.storageRequests()
	return n
}

type sweepReturn struct {
	Due, Evaluated, Opened int
	Notifications          struct{ Sent, Failed, GaveUp, Pending int }
}

// postSweep invokes the timer function once, as the host does.
func postSweep(url string) (sweepReturn, float64, error) {
	body, _ := json.Marshal(map[string]any{"Data": map[string]any{"timer": map[string]any{"IsPastDue": false}}, "Metadata": map[string]any{}})
	start := time.Now()
	resp, err := http.Post(url+"/Sweep", "application/json", bytes.NewReader(body))
	if err != nil {
		return sweepReturn{}, 0, err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(resp.Body)
	ms := float64(time.Since(start).Microseconds()) / 1000
	if resp.StatusCode != http.StatusOK {
		return sweepReturn{}, 0, fmt.Errorf("sweep answered %d: %.300s", resp.StatusCode, msg)
	}
	var out struct{ ReturnValue sweepReturn }
	if err := json.Unmarshal(msg, &out); err != nil {
		return sweepReturn{}, 0, err
	}
	return out.ReturnValue, ms, nil
}
