package handlers_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/upgradewatch/upgradewatch/handlers"
	"github.com/upgradewatch/upgradewatch/internal/azuritetest"
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
