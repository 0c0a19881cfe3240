package handlers_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/upgradewatch/upgradewatch/handlers"
	"github.com/upgradewatch/upgradewatch/internal/azuritetest"
	"github.com/upgradewatch/upgradewatch/internal/fleet"
	"github.com/upgradewatch/upgradewatch/internal/host"
	"github.com/upgradewatch/upgradewatch/internal/state"
	"github.com/upgradewatch/upgradewatch/internal/watch"
)

const legacyKey = "8f1c2b3a-4d5e-4f60-9a7b-1c2d3e4f5a6b~rg-legacy-weu~aks-legacy-weu"

// withRetry adds the host's RetryContext (retry policy active) to an
// invocation envelope: count retries so far, of max.
func withRetry(t *testing.T, body []byte, count, max int) []byte {
	t.Helper()
	var req host.InvokeRequest
	if err := json.Unmarshal(body, &req); err != nil {
		t.Fatal(err)
	}
	rc, _ := json.Marshal(map[string]any{"RetryCount": count, "MaxRetryCount": max, "Exception": nil})
	req.Metadata["RetryContext"] = rc
	out, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// poisonPartition writes a Cluster row this version cannot read (its Channels
// column is not JSON) into a cluster's partition: every commit to that cluster
// fails on load, the same way at every attempt, while storage answers for
// every other cluster. That is what a poison record looks like from here.
func poisonPartition(t *testing.T, store *state.Store, pk string) {
	t.Helper()
	svc := azuritetest.Service(t, azuritetest.Endpoint(t))
	row, _ := json.Marshal(map[string]any{"PartitionKey": pk, "RowKey": "cluster", "Kind": "Cluster", "Channels": "{not json"})
	if _, err := svc.NewClient(store.Tables()[0]).UpsertEntity(context.Background(), row, &aztables.UpsertEntityOptions{UpdateMode: aztables.UpdateModeReplace}); err != nil {
		t.Fatal(err)
	}
}

// TestActivityLogStreamPoisonRecord reproduces issue 12 finding 9: one
// cluster's records that can never commit failed the whole batch with 503, and
// the unbounded retry policy redelivered it forever, stalling the export. Now
// the other clusters commit at once; the host retries (bounded), and on its
// last attempt the poison records are kept in Rejected and the batch is 200.
func TestActivityLogStreamPoisonRecord(t *testing.T) {
	e := newEnv(t)
	poisonPartition(t, e.store, legacyKey)
	batch := activityStream(t, "export-four-clusters-1.json", "export-four-clusters-2.json")

	// Not the last attempt: the storage may only be slow for that cluster, so
	// the batch is retried; everything else is in already.
	code, sum := invokeFn(t, e.srv, handlers.FunctionActivityLogStream, withRetry(t, batch, 0, 10))
	if code != http.StatusServiceUnavailable || sum["committed"] != float64(3) || sum["failed"] != float64(1) {
		t.Fatalf("first attempt: %d %v, want 503 with 3 committed and the poison cluster failed", code, sum)
	}
	for _, pk := range []string{prodKey, "8f1c2b3a-4d5e-4f60-9a7b-1c2d3e4f5a6b~rg-shop-neu~aks-shop-neu",
		"8f1c2b3a-4d5e-4f60-9a7b-1c2d3e4f5a6b~rg-batch-eus~aks-batch-eus"} {
		if n := len(rowsOfKind(t, e.store, pk, "Activity")); n != 1 {
			t.Errorf("%s: %d Activity rows after the first attempt, want 1", pk, n)
		}
	}

	// The last attempt: after it the host moves past the batch, so what
	// cannot commit is kept, with its reason and body, and the batch is done.
	code, sum = invokeFn(t, e.srv, handlers.FunctionActivityLogStream, withRetry(t, batch, 10, 10))
	if code != http.StatusOK || sum["duplicates"] != float64(3) || sum["rejected"] != float64(2) || sum["failed"] != float64(0) {
		t.Fatalf("last attempt: %d %v, want 200: 3 duplicates, the 2 poison records rejected", code, sum)
	}
	rej, err := e.store.Rejections(context.Background(), received)
	if err != nil {
		t.Fatal(err)
	}
	var kept []state.RejectionEntry
	for _, r := range rej {
		if r.Function == handlers.FunctionActivityLogStream {
			kept = append(kept, r)
		}
	}
	if len(kept) != 2 {
		t.Fatalf("rejections %+v, want the 2 records of aks-legacy-weu", kept)
	}
	for _, r := range kept {
		body := r.Body
		if r.Disposition != state.DispositionRejected || r.EventID == "" ||
			!strings.Contains(r.Reason, "not committed by the last of 11 attempts") || !strings.Contains(r.Reason, "Channels column") ||
			!strings.Contains(body, "AKS-LEGACY-WEU") {
			t.Errorf("rejection %s (%s): %q, body %.80s; want the record, its id and why", r.EventID, r.Disposition, r.Reason, body)
		}
	}
	if n := len(rowsOfKind(t, e.store, legacyKey, "Activity")); n != 0 {
		t.Errorf("%d Activity rows in the poison partition", n)
	}
}

// Storage down answers 503 on every attempt, the last one included: nothing
// could be committed or kept.
func TestActivityLogStreamStorageDown(t *testing.T) {
	down := newServer(downStore(t), watch.Options{}, handlers.Options{Now: func() time.Time { return received }})
	batch := activityStream(t, "export-four-clusters-1.json")
	for _, attempt := range []int{0, 10} {
		code, sum := invokeFn(t, down, handlers.FunctionActivityLogStream, withRetry(t, batch, attempt, 10))
		if code != http.StatusServiceUnavailable || sum["failed"] == float64(0) || sum["rejected"] != float64(0) {
			t.Errorf("attempt %d with storage down: %d %v, want 503 with records failed", attempt, code, sum)
		}
	}
}

// seqOf is a cluster partition's sequence number: how many guarded
// transactions have committed to it (its moving sequence row; seq~0 is
// only the partition's birth mark).
func seqOf(t *testing.T, store *state.Store, pk string) int64 {
	t.Helper()
	var seq int64
	for _, r := range rowsOfKind(t, store, pk, state.KindSequence) {
		var n int64
		switch v := r["Seq"].(type) {
		case float64:
			n = int64(v)
		case string: // Edm.Int64 travels as a string
			n, _ = strconv.ParseInt(v, 10, 64)
		}
		seq = max(seq, n)
	}
	return seq
}

// A stream batch of 8 records about 3 clusters, interleaved over two
// messages, commits in one guarded transaction per cluster (record by record
// it took 8), each record once; its redelivery is all duplicates and writes
// nothing.
func TestActivityLogStreamOneChangePerCluster(t *testing.T) {
	e := newEnv(t)
	const sub = "8f1c2b3a-4d5e-4f60-9a7b-1c2d3e4f5a6b"
	want := map[fleet.ClusterID]int64{ // records per cluster in the fixtures
		{SubscriptionID: sub, ResourceGroup: "rg-platform-weu", Name: "aks-prod-weu"}: 3,
		{SubscriptionID: sub, ResourceGroup: "rg-shop-neu", Name: "aks-shop-neu"}:     3,
		{SubscriptionID: sub, ResourceGroup: "rg-batch-eus", Name: "aks-batch-eus"}:   2,
	}
	batch := activityStream(t, "export-three-clusters-1.json", "export-three-clusters-2.json")
	code, sum := invokeFn(t, e.srv, handlers.FunctionActivityLogStream, batch)
	if code != http.StatusOK || sum["records"] != float64(8) || sum["committed"] != float64(8) ||
		sum["rejected"] != float64(0) || sum["failed"] != float64(0) {
		t.Fatalf("batch: %d %v, want 200 with the 8 records committed", code, sum)
	}
	seqs := map[fleet.ClusterID]int64{}
	var txns int64
	for id, n := range want {
		seqs[id] = seqOf(t, e.store, id.Key())
		txns += seqs[id]
		c, err := e.store.Cluster(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if c.Signals != n {
			t.Errorf("%s: Signals = %d, want %d (each record once)", id.Name, c.Signals, n)
		}
	}
	if txns < 1 || txns > 3 {
		t.Errorf("8 records over 3 clusters took %d guarded transactions (%v), want at most 3", txns, seqs)
	}
	t.Logf("8 records over 3 clusters: %d guarded transactions", txns)

	code, sum = invokeFn(t, e.srv, handlers.FunctionActivityLogStream, batch)
	if code != http.StatusOK || sum["duplicates"] != float64(8) || sum["committed"] != float64(0) || sum["failed"] != float64(0) {
		t.Fatalf("redelivery: %d %v, want the 8 records duplicates", code, sum)
	}
	for id := range want {
		if seq := seqOf(t, e.store, id.Key()); seq != seqs[id] {
			t.Errorf("%s: redelivery moved the sequence from %d to %d, want nothing written", id.Name, seqs[id], seq)
		}
	}
}

// A record dated ahead of its receipt is refused on its own: the other
// records of its cluster, committed with it in one change, go in, and the
// refused one is kept in Rejected with its reason.
func TestActivityLogStreamFutureRecordCostsItself(t *testing.T) {
	e := newEnv(t)
	var msg struct {
		Records []map[string]any `json:"records"`
	}
	if err := json.Unmarshal(readFixture(t, "activity/export-three-clusters-1.json"), &msg); err != nil {
		t.Fatal(err)
	}
	msg.Records[3]["time"] = "2099-11-21T14:12:47.3300000Z" // aks-prod-weu's write, succeeded
	body, _ := json.Marshal(msg)
	batch, err := host.NewEventHubRequest("events", handlers.FunctionActivityLogStream, [][]byte{body}, received,
		"8e0a2c4e-6f1b-4d3f-b5c7-d9e1f3a5b7c9")
	if err != nil {
		t.Fatal(err)
	}
	code, sum := invokeFn(t, e.srv, handlers.FunctionActivityLogStream, batch)
	if code != http.StatusOK || sum["committed"] != float64(4) || sum["rejected"] != float64(1) || sum["failed"] != float64(0) {
		t.Fatalf("batch: %d %v, want 200: 4 committed, the future record rejected", code, sum)
	}
	c, err := e.store.Cluster(context.Background(), fleet.ClusterID{SubscriptionID: "8f1c2b3a-4d5e-4f60-9a7b-1c2d3e4f5a6b",
		ResourceGroup: "rg-platform-weu", Name: "aks-prod-weu"})
	if err != nil || c.Signals != 1 {
		t.Fatalf("aks-prod-weu: %v, err %v; want its other record committed", c, err)
	}
	rej, err := e.store.Rejections(context.Background(), received)
	if err != nil {
		t.Fatal(err)
	}
	var reasons []string
	for _, r := range rej {
		if r.Function == handlers.FunctionActivityLogStream {
			reasons = append(reasons, r.Reason)
		}
	}
	if len(reasons) != 1 || !strings.Contains(reasons[0], "event time") {
		t.Errorf("rejections %q, want the future record's", reasons)
	}
}
