package handlers_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/upgradewatch/upgradewatch/internal/host"
	"github.com/upgradewatch/upgradewatch/internal/timeline"
)

// BenchmarkAksEvents measures the handler in process (no HTTP hop) on Azurite,
// for CPU profiles: go test -bench AksEvents -cpuprofile cpu.out ./handlers/
func BenchmarkAksEvents(b *testing.B) {
	e := newEnv(b)
	evs := timeline.Generate(timeline.Options{Seed: 3, Clusters: 100, Weeks: 4})
	bodies := make([][]byte, len(evs))
	for i, ev := range evs {
		bodies[i], _ = host.NewEventGridRequest("event", "AksEvents", ev.Raw, time.Now(), "bench")
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rec := httptest.NewRecorder()
		e.srv.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/AksEvents", bytes.NewReader(bodies[i%len(bodies)])))
		if rec.Code != 200 {
			b.Fatalf("status %d", rec.Code)
		}
	}
}
