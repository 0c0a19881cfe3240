package main

import (
	"fmt"
	"io"
)

// batchBench delivers the default stream as Event Grid batches (an array of
// up to n events per AksEvents invocation, as a subscription with
// maxEventsPerBatch n does under backlog): consecutive events of the
// time-ordered stream, so a batch mixes the few clusters whose windows are
// open at that moment. Sequential invocations; one fresh handler per size.
func batchBench(c config, out io.Writer, sum *summary) error {
	evs := defaultStream(c, 0)
	fmt.Fprintf(out, "\n## Event Grid batch delivery (default stream, %d events, invocations one at a time)\n\n", len(evs))
	fmt.Fprintln(out, "| events per batch | invocations | clusters per batch (mean) | storage requests | events per storage request | storage requests/event | events/s | invocation p50 | invocation p99 |")
	fmt.Fprintln(out, "|---|---|---|---|---|---|---|---|---|")
	for _, n := range c.batches {
		d, err := deliver(c, evs, 1, n)
		if err != nil {
			return fmt.Errorf("batches of %d: %w", n, err)
		}
		clusters := make([]string, len(evs))
		for i, e := range evs {
			clusters[i] = e.Cluster
		}
		perReq := float64(d.events) / float64(d.requests)
		fmt.Fprintf(out, "| %d | %d | %.1f | %d | %.2f | %.2f | %.0f | %s | %s |\n", n, d.invocations, clustersPerBatch(clusters, n),
			d.requests, perReq, d.perEvent(), d.rate, pct(d.lat, 50), pct(d.lat, 99))
		if n == 10 {
			sum.add(check{Name: "events per storage request, batches of 10", Value: perReq, Op: opMoreThan, Limit: 1})
		} else {
			sum.add(check{Name: fmt.Sprintf("events per storage request, batches of %d", n), Value: perReq})
		}
	}
	fmt.Fprintln(out, "\none round per size (request counts barely vary between rounds).")
	return nil
}

// clustersPerBatch is the mean number of distinct clusters in the batches of
// size n cut from the stream in order.
func clustersPerBatch(clusters []string, n int) float64 {
	if len(clusters) == 0 {
		return 0
	}
	total, batches := 0, 0
	for start := 0; start < len(clusters); start += n {
		seen := map[string]bool{}
		for _, c := range clusters[start:min(start+n, len(clusters))] {
			seen[c] = true
		}
		total += len(seen)
		batches++
	}
	return float64(total) / float64(batches)
}
