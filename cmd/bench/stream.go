package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/upgradewatch/upgradewatch/handlers"
	"github.com/upgradewatch/upgradewatch/internal/host"
	"github.com/upgradewatch/upgradewatch/internal/state"
	"github.com/upgradewatch/upgradewatch/internal/watch"
)

// The export carries a whole subscription's activity log; AKS is a small part.
const (
	streamMessages    = 10
	streamPerMessage  = 100
	streamAKSRecords  = 50 // per batch, spread over streamClusters
	streamClusters    = 10
	streamBenchSubID  = "6f1c2a3b-4d5e-4f60-8a71-92b3c4d5e6f7"
	streamOtherTarget = "/SUBSCRIPTIONS/6F1C2A3B-4D5E-4F60-8A71-92B3C4D5E6F7/RESOURCEGROUPS/RG-DATA/PROVIDERS/MICROSOFT.STORAGE/STORAGEACCOUNTS/STDATA%03d"
)

// streamBench times ActivityLogStream batches of 1,000 records against the
// work they cannot avoid, measured in the same round: decoding the batch as
// plain JSON (a batch with no AKS record), plus the storage transactions of
// the AKS records' commits (a mixed batch).
func streamBench(c config, svc *aztables.ServiceClient, out io.Writer) error {
	prefix := fmt.Sprintf("benchstream%d", time.Now().UnixNano()%1e9)
	defer dropTables(c, prefix)
	store := state.New(svc, state.Options{TablePrefix: prefix, CacheSize: 2000})
	defer store.Close()
	if err := store.EnsureTables(context.Background()); err != nil {
		return err
	}
	srv := handlers.New(watch.New(store, watch.Options{}), handlers.Options{MaxBodyBytes: 16 << 20})
	scratch, drop, err := scratchTable(svc, "benchstreamtx")
	if err != nil {
		return err
	}
	defer drop()

	var ignoreT, decodeT, protoT, mixedT, storageT []float64
	for r := 0; r < c.rounds; r++ {
		ignored := streamBatch(r, false)
		mixed := streamBatch(r, true)

		d, err := timeDecode(ignored)
		if err != nil {
			return err
		}
		decodeT = append(decodeT, d)
		d, err = timeProtocolDecode(ignored)
		if err != nil {
			return err
		}
		protoT = append(protoT, d)
		ms, sum, err := timeStream(srv, ignored)
		if err != nil {
			return err
		}
		if sum.Ignored != streamMessages*streamPerMessage {
			return fmt.Errorf("round %d: %d of %d records ignored", r, sum.Ignored, streamMessages*streamPerMessage)
		}
		ignoreT = append(ignoreT, ms)

		s, err := timeActivityCommits(scratch, r)
		if err != nil {
			return err
		}
		storageT = append(storageT, s)
		ms, sum, err = timeStream(srv, mixed)
		if err != nil {
			return err
		}
		if sum.Committed != streamAKSRecords {
			return fmt.Errorf("round %d: %d AKS records committed, want %d (%+v)", r, sum.Committed, streamAKSRecords, sum)
		}
		mixedT = append(mixedT, ms)
	}
	n := streamMessages * streamPerMessage
	fmt.Fprintf(out, "\n## activity-log export (ActivityLogStream), batches of %d records in %d messages\n\n", n, streamMessages)
	fmt.Fprintln(out, "| batch | handler ms (median) | records/s | baseline | baseline ms | ratio |")
	fmt.Fprintln(out, "|---|---|---|---|---|---|")
	fmt.Fprintf(out, "| %d records, none about AKS | %.1f | %.0f | JSON decode of the batch into maps | %.1f | %.2f |\n",
		n, median(ignoreT), float64(n)/median(ignoreT)*1000, median(decodeT), median(ignoreT)/median(decodeT))
	fmt.Fprintf(out, "| %d records, none about AKS | %.1f | %.0f | the host envelope unwrapped (value → string → message strings) and the records decoded into maps | %.1f | %.2f |\n",
		n, median(ignoreT), float64(n)/median(ignoreT)*1000, median(protoT), median(ignoreT)/median(protoT))
	fmt.Fprintf(out, "| %d AKS records on %d clusters among %d | %.1f | %.0f | the JSON decode + %d guard transactions, 4 at a time | %.1f | %.2f |\n",
		streamAKSRecords, streamClusters, n, median(mixedT), float64(n)/median(mixedT)*1000, streamAKSRecords,
		median(decodeT)+median(storageT), median(mixedT)/(median(decodeT)+median(storageT)))
	fmt.Fprintf(out, "\nrounds: %d; medians reported.\n", c.rounds)
	return nil
}

// streamBatch builds one batch: records of other providers, and with aks the
// first streamAKSRecords replaced by AKS node image upgrade records (fresh
// correlation ids per round, so they commit).
func streamBatch(round int, aks bool) [][]byte {
	var msgs [][]byte
	k := 0
	for m := 0; m < streamMessages; m++ {
		var recs []map[string]any
		for i := 0; i < streamPerMessage; i++ {
			rec := map[string]any{
				"time": "2026-11-20T10:00:00.0000000Z", "resourceId": fmt.Sprintf(streamOtherTarget, k%500),
				"operationName": "MICROSOFT.STORAGE/STORAGEACCOUNTS/LISTKEYS/ACTION", "category": "Action",
				"resultType": "Success", "resultSignature": "Succeeded.OK", "durationMs": 41, "callerIpAddress": "198.51.100.40",
				"correlationId": fmt.Sprintf("00000000-0000-4000-8000-%012d", round*100000+k),
				"identity": map[string]any{"authorization": map[string]any{"scope": "/subscriptions/" + streamBenchSubID,
					"action": "Microsoft.Storage/storageAccounts/listKeys/action", "evidence": []any{}},
					"claims": map[string]any{"appid": "04b07795-8ddb-461a-bbee-02f9e1bf7b46",
						"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn": "ci@contoso.com"}},
				"level": "Information", "location": "global", "properties": map[string]any{"statusCode": "OK"},
			}
			if aks && k < streamAKSRecords {
				cluster := fmt.Sprintf("/subscriptions/%s/resourceGroups/rg-bench/providers/Microsoft.ContainerService/managedClusters/aks-%02d",
					streamBenchSubID, k%streamClusters)
				rec["resourceId"] = cluster + "/agentPools/system"
				rec["operationName"] = "MICROSOFT.CONTAINERSERVICE/MANAGEDCLUSTERS/AGENTPOOLS/UPGRADENODEIMAGEVERSION/ACTION"
				rec["identity"].(map[string]any)["authorization"] = map[string]any{"scope": cluster + "/agentPools/system",
					"action": "Microsoft.ContainerService/managedClusters/agentPools/upgradeNodeImageVersion/action"}
				rec["time"] = time.Date(2026, 11, 20, 10, 0, round*60+k, 0, time.UTC).Format(time.RFC3339Nano)
			}
			recs = append(recs, rec)
			k++
		}
		b, _ := json.Marshal(map[string]any{"records": recs})
		msgs = append(msgs, b)
	}
	return msgs
}

func timeDecode(msgs [][]byte) (float64, error) {
	start := time.Now()
	for _, m := range msgs {
		var v struct {
			Records []map[string]any `json:"records"`
		}
		if err := json.Unmarshal(m, &v); err != nil {
			return 0, err
		}
	}
	return float64(time.Since(start).Microseconds()) / 1000, nil
}

func timeStream(srv *handlers.Server, msgs [][]byte) (float64, struct{ Ignored, Committed int }, error) {
	var sum struct{ Ignored, Committed int }
	body, err := host.NewEventHubRequest("events", handlers.FunctionActivityLogStream, msgs, time.Now(), "1b3d5f7a-9c0e-4a2b-8d4f-6a8c0e2b4d6f")
	if err != nil {
		return 0, sum, err
	}
	rec := httptest.NewRecorder()
	start := time.Now()
	srv.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/ActivityLogStream", bytes.NewReader(body)))
	ms := float64(time.Since(start).Microseconds()) / 1000
	if rec.Code != http.StatusOK {
		return 0, sum, fmt.Errorf("ActivityLogStream answered %d: %s", rec.Code, rec.Body)
	}
	var resp struct {
		ReturnValue struct{ Ignored, Committed int }
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
		return 0, sum, err
	}
	return ms, resp.ReturnValue, nil
}

// timeActivityCommits is the storage work of committing streamAKSRecords
// activities without upgradewatch: per activity, one transaction in its
// cluster's partition moving the guard and adding the audit and activity rows;
// clusters 4 at a time, each cluster's in order (as the stream commits).
func timeActivityCommits(client *aztables.Client, round int) (float64, error) {
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, streamClusters)
	sem := make(chan struct{}, 4)
	for cl := 0; cl < streamClusters; cl++ {
		wg.Add(1)
		go func(cl int) {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			pk := fmt.Sprintf("%s~rg-bench~aks-%02d-r%d", streamBenchSubID, cl, round)
			ent := func(rk string) []byte {
				b, _ := json.Marshal(map[string]any{"PartitionKey": pk, "RowKey": rk, "Kind": "Bench", "Operation": "PoolUpgradeImage"})
				return b
			}
			for n := 0; n < streamAKSRecords/streamClusters; n++ {
				var acts []aztables.TransactionAction
				if n > 0 {
					acts = append(acts, aztables.TransactionAction{ActionType: aztables.TransactionTypeDelete,
						Entity: ent(fmt.Sprintf("seq~%012d", n)), IfMatch: to.Ptr(azcore.ETagAny)})
				}
				acts = append(acts,
					aztables.TransactionAction{ActionType: aztables.TransactionTypeAdd, Entity: ent(fmt.Sprintf("seq~%012d", n+1))},
					aztables.TransactionAction{ActionType: aztables.TransactionTypeAdd, Entity: ent(fmt.Sprintf("signal~%d", n))},
					aztables.TransactionAction{ActionType: aztables.TransactionTypeInsertReplace, Entity: ent(fmt.Sprintf("act~%d", n))})
				if _, err := client.SubmitTransaction(context.Background(), acts, nil); err != nil {
					errs <- err
					return
				}
			}
		}(cl)
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return 0, err
	}
	return float64(time.Since(start).Microseconds()) / 1000, nil
}

// timeProtocolDecode is the least any custom handler does with the batch: the
// host sends the messages as a JSON string holding an array of strings, so the
// envelope, that string and each message string are unescaped before the
// records can be decoded.
func timeProtocolDecode(msgs [][]byte) (float64, error) {
	body, err := host.NewEventHubRequest("events", handlers.FunctionActivityLogStream, msgs, time.Now(), "1b3d5f7a-9c0e-4a2b-8d4f-6a8c0e2b4d6f")
	if err != nil {
		return 0, err
	}
	start := time.Now()
	var env struct {
		Data struct {
			Events string `json:"events"`
		}
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return 0, err
	}
	var bodies []string
	if err := json.Unmarshal([]byte(env.Data.Events), &bodies); err != nil {
		return 0, err
	}
	for _, b := range bodies {
		var v struct {
			Records []map[string]any `json:"records"`
		}
		if err := json.Unmarshal([]byte(b), &v); err != nil {
			return 0, err
		}
	}
	return float64(time.Since(start).Microseconds()) / 1000, nil
}
