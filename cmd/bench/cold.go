package main

import (
	"fmt"
	"io"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/upgradewatch/upgradewatch/internal/timeline"
)

// coldBench delivers the cold-fleet stream (clusters of a week each: about nine
// events per cluster, so a ninth of the events find their cluster not yet
// loaded, as an instance of a scaled-out app mostly does; 300 clusters by
// default for a routine run, -cold-clusters 1500 for the size) at each
// concurrency level, interleaved with the minimal commit of the same stream.
func coldBench(c config, svc *aztables.ServiceClient, out io.Writer, sum *summary) error {
	stream := func(r int) []timeline.Event {
		return timeline.Generate(timeline.Options{Seed: 500 + int64(r), Clusters: c.coldClusters, Weeks: c.coldWeeks, Schema: "mixed",
			Start: time.Date(2026, 10, 5, 0, 0, 0, 0, time.UTC)})
	}
	evs := stream(0)
	fmt.Fprintf(out, "\n## ingestion, cold-fleet stream (%d clusters, %d week(s), %d events, %.1f events per cluster, one event per invocation)\n\n",
		c.coldClusters, c.coldWeeks, len(evs), float64(len(evs))/float64(c.coldClusters))
	if c.coldClusters != 1500 || c.coldWeeks != 1 {
		fmt.Fprintf(out, "Scaled down: the issue's cold fleet is 1,500 clusters, a week each (-cold-clusters 1500 -cold-weeks 1). "+
			"Events per cluster, which make the stream cold, are the same.\n\n")
	}
	fmt.Fprintln(out, "| concurrency | minimal commits/s | floor handler events/s | handler events/s | ratio to minimal commit | floor ÷ minimal commit | handler ÷ floor | storage requests/event | handler p50 | handler p99 |")
	fmt.Fprintln(out, "|---|---|---|---|---|---|---|---|---|---|")
	fc, err := floorConfig(c)
	if err != nil {
		return err
	}
	rounds := coldRounds(c.rounds)
	for _, n := range c.concurrency {
		var minRates, floorRates, evRates, reqPer []float64
		var evLat []time.Duration
		for r := 0; r < rounds; r++ {
			evs := stream(r)
			m, err := minimalCommit(svc, evs, n)
			if err != nil {
				return fmt.Errorf("cold minimal commit: %w", err)
			}
			f, err := deliver(fc, evs, n, 1)
			if err != nil {
				return fmt.Errorf("cold floor handler: %w", err)
			}
			d, err := deliver(c, evs, n, 1)
			if err != nil {
				return fmt.Errorf("cold handler: %w", err)
			}
			minRates, floorRates, evRates = append(minRates, m.rate), append(floorRates, f.rate), append(evRates, d.rate)
			reqPer, evLat = append(reqPer, d.perEvent()), append(evLat, d.lat...)
		}
		m, fl, e := median(minRates), median(floorRates), median(evRates)
		fmt.Fprintf(out, "| %d | %.0f | %.0f | %.0f | %.2f | %.2f | %.2f | %.2f | %s | %s |\n", n, m, fl, e, e/m, fl/m, e/fl, median(reqPer),
			pct(evLat, 50), pct(evLat, 99))
		sum.add(check{Name: fmt.Sprintf("requests/event, cold stream, concurrency %d", n), Value: median(reqPer), Op: opAtMost, Limit: 2.5})
		sum.add(check{Name: fmt.Sprintf("events/s ÷ minimal commit/s, cold stream, concurrency %d", n), Value: e / m, Op: opAtLeast, Limit: 0.5})
		sum.add(check{Name: fmt.Sprintf("events/s ÷ floor handler events/s, cold stream, concurrency %d", n), Value: e / fl})
	}
	fmt.Fprintf(out, "\nrounds: %d per concurrency (minimal commit, floor handler and handler interleaved; a fresh handler, so every cluster's first event loads it); medians reported.\n", rounds)
	return nil
}

// coldRounds: the cold stream is three times the default one, so it runs at
// most two rounds (the request counts barely vary between rounds; the rates
// are the noisy part, and they are ratios to a baseline of the same round).
func coldRounds(rounds int) int { return min(rounds, 2) }
