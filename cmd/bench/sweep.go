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
	"sync/atomic"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/upgradewatch/upgradewatch/handlers"
	"github.com/upgradewatch/upgradewatch/internal/findings"
	"github.com/upgradewatch/upgradewatch/internal/fleet"
	"github.com/upgradewatch/upgradewatch/internal/state"
	"github.com/upgradewatch/upgradewatch/internal/watch"
)

// sweepInFlight is how many clusters are rolling (and come due) per sweep,
// whatever the size of the fleet.
const sweepInFlight = 20

type benchClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *benchClock) now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *benchClock) set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.t = t }

// sweepBench times the Sweep on fleets of 100 and 10,000 clusters with the
// same number of operations in flight: the sweep reads only the due index, so
// the two should cost the same.
func sweepBench(c config, out io.Writer) error {
	fmt.Fprintf(out, "\n## sweep (%d clusters in flight and due per sweep)\n\n", sweepInFlight)
	fmt.Fprintln(out, "| fleet | clusters due | sweep ms (median) | storage requests per sweep | storage baseline ms | fill time |")
	fmt.Fprintln(out, "|---|---|---|---|---|---|")
	var base, baseRaw float64
	for _, size := range []int{100, 10000} {
		ms, raw, due, reqs, fill, err := sweepFleet(c, size)
		if err != nil {
			return fmt.Errorf("sweep %d: %w", size, err)
		}
		fmt.Fprintf(out, "| %d | %d | %.1f | %.0f | %.1f | %s |\n", size, due, ms, reqs, raw, fill.Round(time.Second))
		if base == 0 {
			base, baseRaw = ms, raw
		} else {
			fmt.Fprintf(out, "\nsweep ratio 10,000 / 100 clusters: %.2f (goal ≤ 1.5); the same storage work alone: %.2f; "+
				"sweep ratio relative to storage: %.2f\n", ms/base, raw/baseRaw, (ms/base)/(raw/baseRaw))
		}
	}
	return nil
}

// storageBaseline is the storage work of a sweep without upgradewatch, on the
// same tables: one range query of the due index; per due cluster, one
// transaction of four row writes in its Fleet partition (the guard's delete
// and add, the finding, the cluster row); then the index changes in one
// transaction per index partition (per cluster: the due entry moved, the open
// finding added), grouped by partition as the index writer does.
func storageBaseline(svc *aztables.ServiceClient, prefix string, ids []fleet.ClusterID, now time.Time) (float64, error) {
	fleetT, index := svc.NewClient(prefix+state.TableFleet), svc.NewClient(prefix+state.TableIndex)
	ent := func(pk, rk string) []byte {
		b, _ := json.Marshal(map[string]any{"PartitionKey": pk, "RowKey": rk, "Kind": "Bench", "At": now.Format(time.RFC3339Nano)})
		return b
	}
	put := func(pk, rk string) aztables.TransactionAction {
		return aztables.TransactionAction{ActionType: aztables.TransactionTypeInsertReplace, Entity: ent(pk, rk)}
	}
	start := time.Now()
	filter := fmt.Sprintf("PartitionKey ge 'Due~' and PartitionKey lt 'Due~%s~~' and RowKey lt '%s'",
		now.UTC().Format("2006010215"), now.UTC().Format(fleet.TimeKeyLayout))
	pager := index.NewListEntitiesPager(&aztables.ListEntitiesOptions{Filter: &filter})
	for pager.More() {
		if _, err := pager.NextPage(context.Background()); err != nil {
			return 0, err
		}
	}
	byPK := map[string][]aztables.TransactionAction{}
	var found []aztables.TransactionAction
	for i, id := range ids {
		pk := id.Key()
		if _, err := fleetT.SubmitTransaction(context.Background(), []aztables.TransactionAction{
			put(pk, "zbench~a"), put(pk, "zbench~b"), put(pk, "zbench~c"), put(pk, "zbench~d")}, nil); err != nil {
			return 0, err
		}
		// The due entry leaves one hour's shard and joins another's.
		from := fmt.Sprintf("Due~%s~%02x", now.Format("2006010215"), i%64)
		to := fmt.Sprintf("Due~%s~%02x", now.Add(24*time.Hour).Format("2006010215"), (i*7)%64)
		byPK[from] = append(byPK[from], put(from, "zbench~"+pk+"~a"))
		byPK[to] = append(byPK[to], put(to, "zbench~"+pk+"~b"))
		found = append(found, put("Finding", "zbench~"+pk))
	}
	byPK["Finding"] = found
	for _, acts := range byPK {
		if _, err := index.SubmitTransaction(context.Background(), acts, nil); err != nil {
			return 0, err
		}
	}
	return float64(time.Since(start).Microseconds()) / 1000, nil
}

func sweepFleet(c config, size int) (ms, raw float64, due int, reqs float64, fill time.Duration, err error) {
	prefix := fmt.Sprintf("benchsweep%d", time.Now().UnixNano()%1e9)
	defer dropTables(c, prefix)
	var requests sweepCounter
	svc, err := state.NewServiceClient(state.Connection{Name: "bench", ConnectionString: connString(c.endpoint)},
		state.ClientOptions{TryTimeout: 10 * time.Second, MaxRetries: 2, Counter: &requests.n})
	if err != nil {
		return 0, 0, 0, 0, 0, err
	}
	t0 := time.Date(2026, 11, 23, 6, 0, 0, 0, time.UTC)
	clk := &benchClock{t: t0}
	policy := fleet.Policy{NodeOSChannel: fleet.ChannelNodeImage, UpgradeChannel: fleet.UpgradePatch, Source: "bench"}
	store := state.New(svc, state.Options{TablePrefix: prefix, CacheSize: 2000, Now: clk.now})
	defer store.Close()
	app := watch.New(store, watch.Options{Now: clk.now,
		Rules: findings.Evaluator(func(*fleet.Cluster) (fleet.Policy, []string) { return policy, nil })})
	if err := store.EnsureTables(context.Background()); err != nil {
		return 0, 0, 0, 0, 0, err
	}
	id := func(i int) fleet.ClusterID {
		return fleet.ClusterID{SubscriptionID: "6f1c2a3b-4d5e-4f60-8a71-92b3c4d5e6f7", ResourceGroup: "rg-bench", Name: fmt.Sprintf("aks-%05d", i)}
	}
	start := time.Now()
	_, _, err = drive(8, size, func(_, i int) error {
		_, err := app.Ingest(context.Background(), fleet.Signal{ID: fmt.Sprintf("arm-%d", i), Type: fleet.TypeARMRead,
			Time: t0, Cluster: id(i), Kind: fleet.KindClusterUpdated, Profile: &fleet.ClusterProfile{
				NodeOSUpgradeChannel: "NodeImage", UpgradeChannel: "patch", KubernetesVersion: "1.32.6",
				Pools: []fleet.PoolProfile{{Name: "system", OSType: "Linux", OSSKU: "Ubuntu", Count: 3, MaxSurge: "33%",
					DrainTimeoutMinutes: 30, NodeImageVersion: "AKSUbuntu-2204gen2containerd-202611.17.0"}}}})
		return err
	})
	if err != nil {
		return 0, 0, 0, 0, 0, err
	}
	fill = time.Since(start)

	srv := handlers.New(app, handlers.Options{Now: clk.now})
	var times, counts, raws []float64
	for r := 0; r < c.rounds; r++ {
		// This round's clusters start rolling ten minutes after the last round's.
		started := t0.Add(time.Duration(r) * 10 * time.Minute)
		clk.set(started)
		for k := 0; k < sweepInFlight; k++ {
			i := (r*sweepInFlight + k) % size
			if _, err := app.Ingest(context.Background(), fleet.Signal{ID: fmt.Sprintf("s-%d-%d", r, k), Time: started,
				Cluster: id(i), Kind: fleet.KindRollingStarted, Pool: "system"}); err != nil {
				return 0, 0, 0, 0, 0, err
			}
		}
		// Two hours later (the expected duration of a 3-node pool) they are due.
		clk.set(started.Add(2*time.Hour + time.Minute))
		var ids []fleet.ClusterID
		for k := 0; k < sweepInFlight; k++ {
			ids = append(ids, id((r*sweepInFlight+k+sweepInFlight*c.rounds)%size))
		}
		rawMs, err := storageBaseline(svc, prefix, ids, clk.now())
		if err != nil {
			return 0, 0, 0, 0, 0, err
		}
		raws = append(raws, rawMs)
		before := requests.n.Load()
		body, _ := json.Marshal(map[string]any{"Data": map[string]any{"timer": map[string]any{"IsPastDue": false}}, "Metadata": map[string]any{}})
		rec := httptest.NewRecorder()
		t := time.Now()
		srv.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/Sweep", bytes.NewReader(body)))
		times = append(times, float64(time.Since(t).Microseconds())/1000)
		counts = append(counts, float64(requests.n.Load()-before))
		if rec.Code != http.StatusOK {
			return 0, 0, 0, 0, 0, fmt.Errorf("sweep answered %d: %s", rec.Code, rec.Body)
		}
		var resp struct {
			ReturnValue struct{ Due, Opened int }
		}
		_ = json.Unmarshal(rec.Body.Bytes(), &resp)
		if resp.ReturnValue.Due != sweepInFlight || resp.ReturnValue.Opened != sweepInFlight {
			return 0, 0, 0, 0, 0, fmt.Errorf("round %d: sweep saw %d due and opened %d, want %d each", r, resp.ReturnValue.Due, resp.ReturnValue.Opened, sweepInFlight)
		}
		due = resp.ReturnValue.Due
	}
	return median(times), median(raws), due, median(counts), fill, nil
}

type sweepCounter struct{ n atomic.Int64 }
