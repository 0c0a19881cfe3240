package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/upgradewatch/upgradewatch/internal/events"
	"github.com/upgradewatch/upgradewatch/internal/timeline"
)

func TestPositiveInts(t *testing.T) {
	got, err := positiveInts("1, 10,100")
	if err != nil || len(got) != 3 || got[0] != 1 || got[1] != 10 || got[2] != 100 {
		t.Fatalf("positiveInts = %v, %v; want [1 10 100]", got, err)
	}
	for _, bad := range []string{"", "0", "1,-2", "x", "1,,2"} {
		if _, err := positiveInts(bad); err == nil {
			t.Errorf("positiveInts(%q) accepted", bad)
		}
	}
}

func TestMedianAndPercentiles(t *testing.T) {
	if m := median([]float64{5, 1, 3}); m != 3 {
		t.Errorf("median = %v, want 3", m)
	}
	ds := make([]time.Duration, 100)
	for i := range ds {
		ds[99-i] = time.Duration(i+1) * time.Millisecond // 100 ms … 1 ms, unsorted
	}
	for p, want := range map[int]string{50: "50ms", 99: "99ms", 100: "100ms", 0: "1ms"} {
		if got := pct(ds, p); got != want {
			t.Errorf("pct(p%d) = %s, want %s", p, got, want)
		}
	}
	if got := pct(nil, 50); got != "-" {
		t.Errorf("pct of nothing = %q, want -", got)
	}
	if ds[0] != 100*time.Millisecond {
		t.Error("pct sorted its input in place")
	}
}

func TestCheckThresholds(t *testing.T) {
	for _, tc := range []struct {
		c          check
		th         string
		holds, has bool
	}{
		{check{Value: 1.5, Op: opAtMost, Limit: 1.5}, "≤ 1.5", true, true},
		{check{Value: 3.65, Op: opAtMost, Limit: 1.5}, "≤ 1.5", false, true},
		{check{Value: 0.22, Op: opAtLeast, Limit: 0.5}, "≥ 0.5", false, true},
		{check{Value: 0.5, Op: opAtLeast, Limit: 0.5}, "≥ 0.5", true, true},
		{check{Value: 1, Op: opMoreThan, Limit: 1}, "> 1", false, true},
		{check{Value: 1.01, Op: opMoreThan, Limit: 1}, "> 1", true, true},
		{check{Value: 7}, "", false, false},
	} {
		holds, has := tc.c.holds()
		if tc.c.threshold() != tc.th || holds != tc.holds || has != tc.has {
			t.Errorf("%+v: threshold %q holds %v,%v; want %q %v,%v", tc.c, tc.c.threshold(), holds, has, tc.th, tc.holds, tc.has)
		}
	}
}

func TestSummaryWrite(t *testing.T) {
	var empty bytes.Buffer
	(&summary{}).write(&empty)
	if empty.Len() != 0 {
		t.Errorf("an empty summary printed %q", empty.String())
	}
	s := &summary{}
	s.add(check{Name: "requests/event, default stream, concurrency 1", Value: 3.654, Op: opAtMost, Limit: 1.5})
	s.add(check{Name: "events per storage request, batches of 10", Value: 1.2, Op: opMoreThan, Limit: 1})
	s.add(check{Name: "storage requests per due cluster", Value: 10.05})
	var b bytes.Buffer
	s.write(&b)
	for _, want := range []string{
		"| figure | measured | threshold | holds |",
		"| requests/event, default stream, concurrency 1 | 3.65 | ≤ 1.5 | no |",
		"| events per storage request, batches of 10 | 1.20 | > 1 | yes |",
		"| storage requests per due cluster | 10.05 | - | - |",
	} {
		if !strings.Contains(b.String(), want+"\n") {
			t.Errorf("summary lacks %q:\n%s", want, b.String())
		}
	}
}

func TestClassify(t *testing.T) {
	guarded := []byte("--changeset\r\nPOST http://127.0.0.1:1/devstoreaccount1/Fleet HTTP/1.1\r\n\r\n" +
		`{"PartitionKey":"sub~rg~aks","RowKey":"seq~000000000002","Kind":"Sequence"}`)
	for _, tc := range []struct {
		method, path string
		body         []byte
		want         string
	}{
		{"POST", "/devstoreaccount1/$batch", guarded, kindGuarded},
		{"POST", "/devstoreaccount1/$batch", []byte("DELETE http://h/devstoreaccount1/Fleet(PartitionKey='a',RowKey='seq~000000000001')"), kindGuarded},
		{"POST", "/devstoreaccount1/$batch", []byte(`{"PartitionKey":"Due~2026120519~0a","RowKey":"x"}`), kindBatch},
		{"GET", "/devstoreaccount1/Fleet(PartitionKey='a',RowKey='cluster')", nil, kindPoint},
		{"GET", "/devstoreaccount1/FleetIndex()", nil, kindQuery},
		{"GET", "/devstoreaccount1/FleetIndex", nil, kindQuery},
		{"PUT", "/devstoreaccount1/FleetIndex(PartitionKey='a',RowKey='b')", nil, kindWrite},
		{"POST", "/devstoreaccount1/Rejected", nil, kindWrite},
		{"POST", "/devstoreaccount1/Tables", nil, kindTableOps},
		{"DELETE", "/devstoreaccount1/Tables('benchFleet')", nil, kindTableOps},
	} {
		if got := classify(tc.method, tc.path, tc.body); got != tc.want {
			t.Errorf("classify(%s %s) = %q, want %q", tc.method, tc.path, got, tc.want)
		}
	}
}

func TestDiffCounts(t *testing.T) {
	d, total := diffCounts(map[string]int64{kindGuarded: 2, kindPoint: 5}, map[string]int64{kindGuarded: 5, kindPoint: 5, kindQuery: 1})
	if total != 4 || d[kindGuarded] != 3 || d[kindQuery] != 1 || len(d) != 2 {
		t.Errorf("diffCounts = %v, %d; want guarded 3, query 1, total 4", d, total)
	}
}

// TestBatchBodies decodes each delivery as the handler does (the host
// envelope's event binding, then events.Split) and gets the stream back in
// order, cut in batches of the size asked.
func TestBatchBodies(t *testing.T) {
	evs := timeline.Generate(timeline.Options{Seed: 1, Clusters: 3, Weeks: 1})
	for _, size := range []int{1, 10, 100} {
		bodies, err := batchBodies(evs, size)
		if err != nil {
			t.Fatal(err)
		}
		if want := (len(evs) + size - 1) / size; len(bodies) != want {
			t.Fatalf("size %d: %d deliveries, want %d", size, len(bodies), want)
		}
		var got []string
		for i, b := range bodies {
			var env struct{ Data map[string]json.RawMessage }
			if err := json.Unmarshal(b, &env); err != nil {
				t.Fatal(err)
			}
			raw := env.Data["event"]
			if size == 1 && raw[0] != '{' {
				t.Fatalf("size 1: delivery %d is not a single event object", i)
			}
			items, err := events.Split(raw)
			if err != nil {
				t.Fatal(err)
			}
			if i < len(bodies)-1 && len(items) != size {
				t.Fatalf("size %d: delivery %d holds %d events", size, i, len(items))
			}
			for _, it := range items {
				e, err := timeline.Parse(it)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, e.ID)
			}
		}
		if len(got) != len(evs) {
			t.Fatalf("size %d: %d events delivered, want %d", size, len(got), len(evs))
		}
		for i := range evs {
			if got[i] != evs[i].ID {
				t.Fatalf("size %d: event %d is %s, want %s", size, i, got[i], evs[i].ID)
			}
		}
	}
}

func TestClustersPerBatch(t *testing.T) {
	cl := []string{"a", "a", "b", "c", "c", "c", "a"}
	if got := clustersPerBatch(cl, 1); got != 1 {
		t.Errorf("batches of 1: %v clusters, want 1", got)
	}
	if got := clustersPerBatch(cl, 3); got != (2.0+1+1)/3 { // [a a b] [c c c] [a]
		t.Errorf("batches of 3: %v clusters, want 4/3", got)
	}
	if got := clustersPerBatch(nil, 10); got != 0 {
		t.Errorf("no events: %v", got)
	}
}

func TestMinimalActions(t *testing.T) {
	first := minimalActions("sub~rg~aks", 0, "ev-1", "Microsoft.ContainerService.NodePoolRollingStarted")
	if len(first) != 2 || first[0].ActionType != aztables.TransactionTypeAdd || !bytes.Contains(first[0].Entity, []byte(`"RowKey":"seq~000000000001"`)) ||
		!bytes.Contains(first[1].Entity, []byte(`"RowKey":"signal~ev-1"`)) {
		t.Fatalf("first commit: %s", actions(first))
	}
	next := minimalActions("sub~rg~aks", 7, "fleet/9/x", "T")
	if len(next) != 3 || next[0].ActionType != aztables.TransactionTypeDelete || next[0].IfMatch == nil ||
		!bytes.Contains(next[0].Entity, []byte(`"RowKey":"seq~000000000007"`)) || !bytes.Contains(next[1].Entity, []byte(`"RowKey":"seq~000000000008"`)) ||
		!bytes.Contains(next[2].Entity, []byte(`"RowKey":"signal~h-`)) {
		t.Fatalf("eighth commit: %s", actions(next))
	}
}

func actions(acts []aztables.TransactionAction) string {
	var b strings.Builder
	for _, a := range acts {
		b.WriteString(string(a.ActionType) + " " + string(a.Entity) + "\n")
	}
	return b.String()
}

func TestRowKeyOf(t *testing.T) {
	if got := rowKeyOf("0f8a3c4d5e6f"); got != "0f8a3c4d5e6f" {
		t.Errorf("a safe id changed: %q", got)
	}
	a, b := rowKeyOf("fleet/1/a"), rowKeyOf("fleet/1/b")
	if a == b || !strings.HasPrefix(a, "h-") || strings.ContainsAny(a, `/\#?`) {
		t.Errorf("unsafe ids: %q, %q", a, b)
	}
}

func TestRetimed(t *testing.T) {
	at := time.Date(2026, 12, 5, 18, 0, 15, 0, time.UTC)
	for _, raw := range []string{
		`{"id":"a","eventType":"Microsoft.ContainerService.NodePoolRollingStarted","eventTime":"2026-11-02T01:00:00Z","data":{"nodePoolName":"system"}}`,
		`{"id":"a","type":"Microsoft.ContainerService.NodePoolRollingStarted","time":"2026-11-02T01:00:00Z","specversion":"1.0","data":{"nodePoolName":"system"}}`,
	} {
		out, err := retimed(json.RawMessage(raw), at)
		if err != nil {
			t.Fatal(err)
		}
		e, err := timeline.Parse(out)
		if err != nil {
			t.Fatal(err)
		}
		if !e.Time.Equal(at) || e.ID == "a" || e.Type != timeline.TypeNodePoolRollingStarted || !bytes.Contains(out, []byte(`"nodePoolName":"system"`)) {
			t.Errorf("retimed %s = %s", raw, out)
		}
	}
}
