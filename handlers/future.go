package handlers

import (
	"fmt"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
	"github.com/upgradewatch/upgradewatch/internal/state"
)

// checkTime refuses a signal dated beyond fleet.MaxClockSkew after now. Every
// fact keeps its newest observation, so one signal from the future would
// outrank everything genuine after it until that date: a forged alert dated
// 2099 would stick. The decoders are pure; this is the one place that knows
// the time of receipt, and every commit passes through it. The error wraps
// state.ErrRejected, so each route records it and answers as for any
// permanent rejection (Event Grid 200, HTTP 400).
func (s *Server) checkTime(sig fleet.Signal) error {
	if err := fleet.CheckTime("event time", sig.Time, s.now()); err != nil {
		return fmt.Errorf("%w: %w", state.ErrRejected, err)
	}
	return nil
}
