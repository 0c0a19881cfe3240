//go:build pprof

package main

import (
	"log/slog"
	"net/http"
	_ "net/http/pprof" // registers /debug/pprof on http.DefaultServeMux
	"os"
)

// A handler built with `-tags pprof` serves Go's profiles on
// UPGRADEWATCH_PPROF_ADDR (a loopback address such as 127.0.0.1:6060), apart
// from the routes the host invokes, for profiling under `make bench`. Release
// builds do not carry it.
func init() {
	addr := os.Getenv("UPGRADEWATCH_PPROF_ADDR")
	if addr == "" {
		return
	}
	go func() {
		if err := http.ListenAndServe(addr, nil); err != nil {
			slog.Warn("pprof listener stopped", "addr", addr, "err", err)
		}
	}()
}
