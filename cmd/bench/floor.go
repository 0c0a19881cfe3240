package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/upgradewatch/upgradewatch/internal/events"
	"github.com/upgradewatch/upgradewatch/internal/host"
	"github.com/upgradewatch/upgradewatch/internal/state"
)

// The floor handler is the thinnest handler that can take the stream at all:
// a separate process behind the same host protocol (`POST /AksEvents` with the
// {Data, Metadata} envelope, one event per invocation), decoding each event
// with the real decoder and committing, per event, the minimal exactly-once
// commit plus the one state row any handler that records a cluster must
// write (the cluster's newest event). It keeps each cluster's guard in memory,
// never loads, evaluates no rule and writes no index. `bench -serve-floor`
// runs it; the ingestion part delivers the same stream to it as to the
// handler, so its rate is the most any handler can reach here: the gap from
// the minimal commit to the floor is the host hop and one state row, the gap
// from the floor to the handler is upgradewatch's own work.

// floorConfig is c with the floor handler as the handler: this executable,
// started with -serve-floor.
func floorConfig(c config) (config, error) {
	self, err := os.Executable()
	if err != nil {
		return c, err
	}
	c.bin, c.binArgs = self, []string{"-serve-floor"}
	return c, nil
}

// serveFloor runs the floor handler until the process is signalled. It reads
// the same settings the bench gives the real handler.
func serveFloor(getenv func(string) string, stderr io.Writer) int {
	var requests atomic.Int64
	svc, err := state.NewServiceClient(state.Connection{Name: "AzureWebJobsStorage", ConnectionString: getenv("AzureWebJobsStorage")},
		state.ClientOptions{TryTimeout: 10 * time.Second, Counter: &requests})
	if err != nil {
		fmt.Fprintln(stderr, "floor:", err)
		return 1
	}
	f := &floor{table: svc.NewClient(getenv("UPGRADEWATCH_TABLE_PREFIX") + "Fleet"), guards: map[string]*floorGuard{}}
	var ready atomic.Bool
	go func() {
		for {
			_, err := f.table.CreateTable(context.Background(), nil)
			var re *azcore.ResponseError
			if err == nil || errors.As(err, &re) && re.ErrorCode == string(aztables.TableAlreadyExists) {
				ready.Store(true)
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "{}") })
	mux.HandleFunc("GET /api/clusters", func(w http.ResponseWriter, _ *http.Request) {
		if !ready.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	mux.HandleFunc("GET /_upgradewatch/stats", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]int64{"storageRequests": requests.Load()})
	})
	mux.HandleFunc("POST /AksEvents", f.aksEvents)
	l, err := net.Listen("tcp", "127.0.0.1:"+cmp.Or(getenv("FUNCTIONS_CUSTOMHANDLER_PORT"), "8080"))
	if err != nil {
		fmt.Fprintln(stderr, "floor:", err)
		return 1
	}
	// The bench stops handlers with SIGTERM; the default action ends the process.
	if err := http.Serve(l, mux); err != nil {
		fmt.Fprintln(stderr, "floor:", err)
		return 1
	}
	return 0
}

type floor struct {
	table  *aztables.Client
	mu     sync.Mutex
	guards map[string]*floorGuard
}

// floorGuard is one cluster's sequence number, held while its commit runs.
type floorGuard struct {
	mu sync.Mutex
	n  int
}

func (f *floor) guard(pk string) *floorGuard {
	f.mu.Lock()
	defer f.mu.Unlock()
	g := f.guards[pk]
	if g == nil {
		g = &floorGuard{}
		f.guards[pk] = g
	}
	return g
}

// aksEvents takes one event per invocation, as the default stream delivers.
func (f *floor) aksEvents(w http.ResponseWriter, r *http.Request) {
	req, _, err := host.DecodeRequest(r.Body, 1<<20)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	raw, err := req.Binding("event")
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	sig, err := events.Decode(raw)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	pk := "-"
	if !sig.Cluster.IsZero() {
		pk = sig.Cluster.Key()
	}
	g := f.guard(pk)
	g.mu.Lock()
	defer g.mu.Unlock()
	cluster, err := json.Marshal(map[string]any{"PartitionKey": pk, "RowKey": "cluster", "Kind": "Cluster",
		"LastEventAt": sig.Time.Format(time.RFC3339Nano), "LastEventAt@odata.type": "Edm.DateTime", "LastEventType": sig.Type})
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	acts := append(minimalActions(pk, g.n, sig.ID, sig.Type),
		aztables.TransactionAction{ActionType: aztables.TransactionTypeInsertReplace, Entity: cluster})
	if _, err := f.table.SubmitTransaction(r.Context(), acts, nil); err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	g.n++
	host.WriteResponse(w, http.StatusOK, host.InvokeResponse{ReturnValue: ingestReturn{Events: 1, Committed: 1}})
}
