package handlers

import (
	"errors"
	"net/http"

	"github.com/upgradewatch/upgradewatch/internal/host"
)

// FunctionSweep is the timerTrigger that re-evaluates clusters whose
// time-based findings are due: POST /Sweep, binding `timer`.
const FunctionSweep = "Sweep"

// sweep runs the application layer's Sweep and answers with its report; a
// transient failure answers 5xx so that the timer's next run (or retry)
// catches up.
func (s *Server) sweep(w http.ResponseWriter, r *http.Request) {
	l := s.log.With("function", FunctionSweep, "invocation_id", r.Header.Get("X-Azure-Functions-InvocationId"))
	if _, _, err := host.DecodeRequest(r.Body, s.maxBody); err != nil && !errors.Is(err, host.ErrMalformed) {
		l.Warn("could not read the timer invocation", "error", err)
	}
	rep, err := s.app.Sweep(r.Context(), l)
	host.WriteResponse(w, statusFor(err), host.InvokeResponse{Logs: rep.Lines, ReturnValue: rep})
}
