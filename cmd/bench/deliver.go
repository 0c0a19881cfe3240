package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
	"github.com/google/uuid"

	"github.com/upgradewatch/upgradewatch/internal/host"
	"github.com/upgradewatch/upgradewatch/internal/timeline"
)

// delivery is what one stream delivered to a fresh handler measured.
type delivery struct {
	rate        float64         // events per second
	lat         []time.Duration // per invocation
	events      int
	invocations int
	requests    int64 // storage requests the handler counted while the stream was delivered
	// cpu is the handler process's CPU time, user and system, from exec to
	// exit (0 for the in-bench minimal commit): a figure the shared
	// machine's noise moves far less than a rate.
	cpu time.Duration
}

// cpuPerEvent is the handler's CPU time per event.
func (d delivery) cpuPerEvent() time.Duration {
	if d.events == 0 {
		return 0
	}
	return d.cpu / time.Duration(d.events)
}

// perEvent is storage requests per event.
func (d delivery) perEvent() float64 { return float64(d.requests) / float64(d.events) }

// ingestReturn is the part of AksEvents' ReturnValue the bench checks.
type ingestReturn struct {
	Events, Committed, Duplicates, Rejected, Unsupported, Ignored, Failed int
}

// batchBodies cuts the stream, in order, into Event Grid deliveries of up to
// size events: one event object when size is 1 (as today's subscriptions
// deliver), else a JSON array (maxEventsPerBatch > 1).
func batchBodies(evs []timeline.Event, size int) ([][]byte, error) {
	var out [][]byte
	for start := 0; start < len(evs); start += size {
		chunk := evs[start:min(start+size, len(evs))]
		event := chunk[0].Raw
		if size > 1 {
			raws := make([]json.RawMessage, len(chunk))
			for i, e := range chunk {
				raws[i] = e.Raw
			}
			b, err := json.Marshal(raws)
			if err != nil {
				return nil, err
			}
			event = b
		}
		body, err := host.NewEventGridRequest("event", "AksEvents", event, time.Now(), uuid.NewString())
		if err != nil {
			return nil, err
		}
		out = append(out, body)
	}
	return out, nil
}

// deliver posts the stream to a fresh handler process (its own tables) in
// batches of `batch` events on `workers` connections, checks that every event
// was taken (committed, a duplicate, or knowingly skipped; none failed or
// rejected), and counts the storage requests the handler made meanwhile.
func deliver(c config, evs []timeline.Event, workers, batch int, env ...string) (delivery, error) {
	prefix := fmt.Sprintf("bench%d", time.Now().UnixNano()%1e9)
	p, err := startHandler(c, prefix, env...)
	if err != nil {
		return delivery{}, err
	}
	defer p.stop()
	defer dropTables(c, prefix)
	bodies, err := batchBodies(evs, batch)
	if err != nil {
		return delivery{}, err
	}
	before, err := p.storageRequests()
	if err != nil {
		return delivery{}, err
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	var mu sync.Mutex
	var total ingestReturn
	start := time.Now()
	_, lat, err := drive(workers, len(bodies), func(_, i int) error {
		ret, err := postEvents(client, p.url, bodies[i])
		if err != nil {
			return fmt.Errorf("delivery %d: %w", i, err)
		}
		mu.Lock()
		total.Events, total.Committed, total.Failed, total.Rejected = total.Events+ret.Events, total.Committed+ret.Committed,
			total.Failed+ret.Failed, total.Rejected+ret.Rejected
		mu.Unlock()
		return nil
	})
	elapsed := time.Since(start)
	if err != nil {
		return delivery{}, err
	}
	if total.Events != len(evs) || total.Failed > 0 || total.Rejected > 0 {
		return delivery{}, fmt.Errorf("handler took %d of %d events (%d failed, %d rejected)", total.Events, len(evs), total.Failed, total.Rejected)
	}
	after, err := p.storageRequests()
	if err != nil {
		return delivery{}, err
	}
	p.stop() // a graceful stop writes what the handler queued; then its CPU time is final
	var cpu time.Duration
	if st := p.cmd.ProcessState; st != nil {
		cpu = st.UserTime() + st.SystemTime()
	}
	return delivery{rate: float64(len(evs)) / elapsed.Seconds(), lat: lat, events: len(evs), invocations: len(bodies),
		requests: after - before, cpu: cpu}, nil
}

// postEvents sends one AksEvents invocation and reads its ReturnValue.
func postEvents(client *http.Client, url string, body []byte) (ingestReturn, error) {
	resp, err := client.Post(url+"/AksEvents", "application/json; charset=utf-8", bytes.NewReader(body))
	if err != nil {
		return ingestReturn{}, err
	}
	defer resp.Body.Close()
	msg, err := io.ReadAll(resp.Body)
	if err != nil {
		return ingestReturn{}, err
	}
	if resp.StatusCode != http.StatusOK {
		return ingestReturn{}, fmt.Errorf("status %d: %.300s", resp.StatusCode, msg)
	}
	var out struct{ ReturnValue ingestReturn }
	if err := json.Unmarshal(msg, &out); err != nil {
		return ingestReturn{}, fmt.Errorf("answer: %w", err)
	}
	return out.ReturnValue, nil
}

// minimalCommit is the least an exactly-once commit of the same stream can
// cost on the same Azurite: per event, one entity-group transaction in its
// cluster's partition holding the guard move (delete seq~n, add seq~n+1) and
// the dedupe row (add signal~<event id>), nothing else. Events are taken in
// stream order by `workers` goroutines; a cluster's commits are serialised
// (its guard is in memory), so there are no conflicts to retry.
func minimalCommit(svc *aztables.ServiceClient, evs []timeline.Event, workers int) (delivery, error) {
	client, drop, err := scratchTable(svc, "benchmin")
	if err != nil {
		return delivery{}, err
	}
	defer drop()
	type guard struct {
		mu sync.Mutex
		n  int
	}
	guards := map[string]*guard{}
	for _, e := range evs {
		if guards[partitionOf(e)] == nil {
			guards[partitionOf(e)] = &guard{}
		}
	}
	rate, lat, err := drive(workers, len(evs), func(_, i int) error {
		e := evs[i]
		g := guards[partitionOf(e)]
		g.mu.Lock()
		defer g.mu.Unlock()
		acts := minimalActions(partitionOf(e), g.n, e.ID, e.Type)
		if _, err := client.SubmitTransaction(context.Background(), acts, nil); err != nil {
			return err
		}
		g.n++
		return nil
	})
	return delivery{rate: rate, lat: lat, events: len(evs), invocations: len(evs), requests: int64(len(evs))}, err
}

// partitionOf is the event's cluster key, or "-" for an event about no
// cluster (the handler records those too).
func partitionOf(e timeline.Event) string {
	if e.Cluster == "" {
		return "-"
	}
	return e.Cluster
}

// minimalActions is the minimal exactly-once commit of one event to a
// partition whose guard is at n (0: no guard row yet).
func minimalActions(pk string, n int, id, typ string) []aztables.TransactionAction {
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
	return append(acts,
		aztables.TransactionAction{ActionType: aztables.TransactionTypeAdd, Entity: ent(fmt.Sprintf("seq~%012d", n+1), map[string]any{"Kind": "Sequence"})},
		aztables.TransactionAction{ActionType: aztables.TransactionTypeAdd, Entity: ent("signal~"+rowKeyOf(id), map[string]any{"Kind": "Signal", "EventType": typ})})
}

// rowKeyOf is id when Table storage accepts it as a RowKey, else a hash of
// it (as the handler does for ids with a slash, backslash, '#', '?' or a control character).
func rowKeyOf(id string) string {
	if id != "" && len(id) <= 512 && !strings.ContainsAny(id, "/\\#?") && strings.IndexFunc(id, func(r rune) bool { return r < 0x20 || r == 0x7f }) < 0 {
		return id
	}
	h := sha256.Sum256([]byte(id))
	return "h-" + hex.EncodeToString(h[:16])
}
