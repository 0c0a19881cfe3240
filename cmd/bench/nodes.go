package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
	"github.com/upgradewatch/upgradewatch/internal/inventory"
)

const benchNodes = 1000

// snapshotOf is a complete snapshot of n Ubuntu nodes in 4 pools; the first
// `changed` of them run the newer image.
func snapshotOf(id string, at time.Time, n, changed int) []byte {
	s := fleet.NodeSnapshot{ID: id, ObservedAt: at, Complete: true, Reporter: "bench"}
	for i := 0; i < n; i++ {
		v := "AKSUbuntu-2204gen2containerd-202410.27.0"
		if i < changed {
			v = "AKSUbuntu-2204gen2containerd-202411.03.0"
		}
		pool := fmt.Sprintf("user%d", i%4)
		s.Nodes = append(s.Nodes, fleet.NodeObservation{Name: fmt.Sprintf("aks-%s-38475619-vmss%06x", pool, i), Pool: pool,
			NodeImageVersion: v, KernelVersion: "5.15.0-1074-azure", OSImage: "Ubuntu 22.04.5 LTS", KubeletVersion: "v1.31.9",
			ContainerRuntime: "containerd://1.7.25-1", OSType: "linux", Ready: "True"})
	}
	b, err := inventory.Encode(s)
	if err != nil {
		panic(err)
	}
	return b
}

// nodeBench measures NodeInventory against the least work storage must do for
// the same effect, in the same run: for a first snapshot, the node rows written
// in full transactions; for a snapshot that changes 10 nodes, reading the
// cluster's node rows and one transaction of the changed rows.
func nodeBench(c config, svc *aztables.ServiceClient, out io.Writer) error {
	prefix := fmt.Sprintf("benchnodes%d", time.Now().UnixNano()%1e9)
	p, err := startHandler(c, prefix)
	if err != nil {
		return err
	}
	defer p.stop()
	defer dropTables(c, prefix)
	table, drop, err := scratchTable(svc, "benchnodes")
	if err != nil {
		return err
	}
	defer drop()

	type sample struct{ base, handler, reqs []float64 }
	var first, delta, same sample
	t0 := time.Date(2026, 11, 2, 8, 0, 0, 0, time.UTC)
	for r := 0; r < c.rounds; r++ {
		pk := fmt.Sprintf("6f1c2a3b-4d5e-4f60-8a71-92b3c4d5e6f7~rg-bench~aks-nodes-%d", r)
		url := fmt.Sprintf("%s/api/clusters/6f1c2a3b-4d5e-4f60-8a71-92b3c4d5e6f7/rg-bench/aks-nodes-%d/nodes", p.url, r)

		d, err := timed(func() error { return rawWrite(table, pk, 0, benchNodes) })
		if err != nil {
			return fmt.Errorf("baseline write: %w", err)
		}
		first.base = append(first.base, d)
		h, reqs, err := postTimed(p, url, snapshotOf(fmt.Sprintf("s%d-1", r), t0, benchNodes, 0))
		if err != nil {
			return err
		}
		first.handler, first.reqs = append(first.handler, h), append(first.reqs, reqs)

		d, err = timed(func() error {
			if err := rawRead(table, pk); err != nil {
				return err
			}
			return rawWrite(table, pk, 0, 23) // 10 nodes, 10 history rows, guard and mark
		})
		if err != nil {
			return fmt.Errorf("baseline delta: %w", err)
		}
		delta.base = append(delta.base, d)
		h, reqs, err = postTimed(p, url, snapshotOf(fmt.Sprintf("s%d-2", r), t0.Add(time.Hour), benchNodes, 10))
		if err != nil {
			return err
		}
		delta.handler, delta.reqs = append(delta.handler, h), append(delta.reqs, reqs)

		d, err = timed(func() error {
			if err := rawRead(table, pk); err != nil {
				return err
			}
			return rawWrite(table, pk, 0, 3) // guard and mark
		})
		if err != nil {
			return err
		}
		same.base = append(same.base, d)
		h, reqs, err = postTimed(p, url, snapshotOf(fmt.Sprintf("s%d-3", r), t0.Add(2*time.Hour), benchNodes, 10))
		if err != nil {
			return err
		}
		same.handler, same.reqs = append(same.handler, h), append(same.reqs, reqs)
	}
	fmt.Fprintf(out, "\n## node snapshots (%d nodes, NodeInventory through the handler)\n\n", benchNodes)
	fmt.Fprintln(out, "| snapshot | baseline ms | handler ms | ratio (baseline/handler) | storage requests |")
	fmt.Fprintln(out, "|---|---|---|---|---|")
	for _, row := range []struct {
		name string
		s    sample
	}{{"first (1000 new nodes)", first}, {"10 nodes reimaged", delta}, {"nothing changed", same}} {
		b, h := median(row.s.base), median(row.s.handler)
		fmt.Fprintf(out, "| %s | %.1f | %.1f | %.2f | %.0f |\n", row.name, b, h, b/h, median(row.s.reqs))
	}
	return nil
}

func timed(f func() error) (float64, error) {
	start := time.Now()
	err := f()
	return float64(time.Since(start).Microseconds()) / 1000, err
}

func postTimed(p *proc, url string, body []byte) (float64, float64, error) {
	before, err := p.storageRequests()
	if err != nil {
		return 0, 0, err
	}
	start := time.Now()
	resp, err := http.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		return 0, 0, err
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	ms := float64(time.Since(start).Microseconds()) / 1000
	if resp.StatusCode != http.StatusOK {
		return 0, 0, fmt.Errorf("NodeInventory: %d %s", resp.StatusCode, msg)
	}
	after, err := p.storageRequests()
	return ms, float64(after - before), err
}

// rawWrite writes rows [from, from+n) of a partition in transactions of 97
// node-like rows plus the guard pair, as NodeInventory does.
func rawWrite(t *aztables.Client, pk string, from, n int) error {
	for start := from; start < from+n; start += 97 {
		end := min(start+97, from+n)
		var acts []aztables.TransactionAction
		for i := start; i < end; i++ {
			b, _ := json.Marshal(map[string]any{"PartitionKey": pk, "RowKey": fmt.Sprintf("vnode~aks-user%d-38475619-vmss%06x", i%4, i),
				"Kind": "Node", "Pool": fmt.Sprintf("user%d", i%4), "NodeImageVersion": "AKSUbuntu-2204gen2containerd-202410.27.0",
				"KernelVersion": "5.15.0-1074-azure", "OsImage": "Ubuntu 22.04.5 LTS", "KubeletVersion": "v1.31.9", "Ready": "True"})
			acts = append(acts, aztables.TransactionAction{ActionType: aztables.TransactionTypeInsertReplace, Entity: b})
		}
		seq, _ := json.Marshal(map[string]any{"PartitionKey": pk, "RowKey": "vseq"})
		acts = append(acts, aztables.TransactionAction{ActionType: aztables.TransactionTypeInsertReplace, Entity: seq})
		if _, err := t.SubmitTransaction(context.Background(), acts, nil); err != nil {
			return err
		}
	}
	return nil
}

// rawRead lists a partition's node rows.
func rawRead(t *aztables.Client, pk string) error {
	filter := fmt.Sprintf("PartitionKey eq '%s' and RowKey ge 'vinv' and RowKey lt 'vt'", pk)
	pager := t.NewListEntitiesPager(&aztables.ListEntitiesOptions{Filter: &filter})
	for pager.More() {
		if _, err := pager.NextPage(context.Background()); err != nil {
			return err
		}
	}
	return nil
}
