package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/upgradewatch/upgradewatch/internal/azuritetest"
	"github.com/upgradewatch/upgradewatch/internal/host"
	"github.com/upgradewatch/upgradewatch/internal/timeline"
)

// The floor handler commits, per event, the guard move, the dedupe row and the
// cluster's row, in the event's cluster partition; a body it cannot read is
// answered 400 and writes nothing. It is the baseline the ingestion figures are
// divided by, so what it writes is checked row by row.
func TestFloorCommits(t *testing.T) {
	ep := azuritetest.Endpoint(t)
	svc := azuritetest.Service(t, ep)
	name := azuritetest.Prefix(t) + "Fleet"
	azuritetest.DropTables(t, svc, name)
	f := &floor{table: svc.NewClient(name), guards: map[string]*floorGuard{}}
	if _, err := f.table.CreateTable(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	evs := timeline.Generate(timeline.Options{Seed: 7, Clusters: 1, Weeks: 1, Schema: "mixed"})
	var mine []timeline.Event
	for _, e := range evs {
		if e.Cluster != "" && (len(mine) == 0 || e.Cluster == mine[0].Cluster) {
			mine = append(mine, e)
		}
	}
	if len(mine) < 2 {
		t.Fatalf("the generated week has %d events for one cluster, want at least 2", len(mine))
	}
	post := func(body []byte) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		f.aksEvents(rec, httptest.NewRequest(http.MethodPost, "/AksEvents", bytes.NewReader(body)))
		return rec
	}
	for _, e := range mine[:2] {
		body, err := host.NewEventGridRequest("event", "AksEvents", e.Raw, time.Now(), "floor-test")
		if err != nil {
			t.Fatal(err)
		}
		rec := post(body)
		var out struct{ ReturnValue ingestReturn }
		if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &out) != nil || out.ReturnValue.Committed != 1 {
			t.Fatalf("event %s: status %d, body %s", e.ID, rec.Code, rec.Body)
		}
	}
	if rec := post([]byte(`{"Data":{"event":"{\"id\":"}}`)); rec.Code != http.StatusBadRequest {
		t.Errorf("malformed invocation: status %d, want 400", rec.Code)
	}

	var keys []string
	var last string
	for _, e := range azuritetest.Rows(t, f.table, "") {
		if e["PartitionKey"] != mine[0].Cluster {
			t.Errorf("row %v outside the event's cluster partition %s", e["RowKey"], mine[0].Cluster)
		}
		keys = append(keys, e["RowKey"].(string))
		if e["RowKey"] == "cluster" {
			last, _ = e["LastEventAt"].(string)
		}
	}
	sort.Strings(keys)
	want := []string{"cluster", "seq~000000000002", "signal~" + rowKeyOf(mine[0].ID), "signal~" + rowKeyOf(mine[1].ID)}
	sort.Strings(want)
	if !slices.Equal(keys, want) {
		t.Errorf("rows %v, want %v", keys, want)
	}
	if at, err := time.Parse(time.RFC3339Nano, last); err != nil || !at.Equal(mine[1].Time) {
		t.Errorf("cluster row LastEventAt %q, want the second event's time %s", last, mine[1].Time)
	}
}
