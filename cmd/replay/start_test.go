package main

import (
	"testing"
	"time"

	"github.com/upgradewatch/upgradewatch/internal/timeline"
)

// A generated fleet never runs past now (the handler refuses events from the
// future), and keeps its fixed start while that is possible.
func TestFleetStartEndsBeforeNow(t *testing.T) {
	now := time.Date(2026, 12, 5, 18, 37, 0, 0, time.UTC)
	if got := fleetStart(4, now); !got.Equal(timeline.DefaultStart) {
		t.Errorf("4 weeks: start %v, want the default %v", got, timeline.DefaultStart)
	}
	for _, weeks := range []int{5, 8, 52} {
		start := fleetStart(weeks, now)
		if start.Weekday() != time.Monday || start.AddDate(0, 0, 7*weeks).After(now.Add(-12*time.Hour)) {
			t.Errorf("%d weeks: start %v (%s), want a Monday whose weeks end a margin before %v", weeks, start, start.Weekday(), now)
		}
		evs := timeline.Generate(timeline.Options{Seed: 1, Clusters: 5, Weeks: weeks, Start: start})
		if last := evs[len(evs)-1].Time; last.After(now) {
			t.Errorf("%d weeks: last event %v is after now %v", weeks, last, now)
		}
	}
}
