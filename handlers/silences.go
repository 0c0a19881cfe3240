package handlers

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
	"github.com/upgradewatch/upgradewatch/internal/watch"
)

// FunctionSilences is the httpTrigger POST/GET /api/silences and
// GET/DELETE /api/silences/{id}: silences that hold announcements back.
const FunctionSilences = "Silences"

// principalHeader names the caller App Service Authentication signed in (it
// strips the header from what callers send): the most trustworthy "who".
const principalHeader = "X-MS-CLIENT-PRINCIPAL-NAME"

// Bounds of the silences API.
const (
	maxSilenceBody     = 16 << 10
	defaultSilenceDays = 30
	maxSilenceDays     = 400
)

type silenceMatchJSON struct {
	Cluster string `json:"cluster,omitempty"`
	Code    string `json:"code,omitempty"`
	Target  string `json:"target,omitempty"`
}

// silenceRequestJSON is POST /api/silences' body; until is a string so that
// a bad time gets its own message.
type silenceRequestJSON struct {
	Match     *silenceMatchJSON `json:"match"`
	Until     string            `json:"until"`
	Comment   string            `json:"comment"`
	CreatedBy string            `json:"createdBy"`
}

type silenceJSON struct {
	ID        string           `json:"id"`
	Match     silenceMatchJSON `json:"match"`
	Until     time.Time        `json:"until"`
	Comment   string           `json:"comment"`
	CreatedBy string           `json:"createdBy"`
	CreatedAt time.Time        `json:"createdAt"`
	EndedAt   *time.Time       `json:"endedAt,omitempty"`
	EndedBy   string           `json:"endedBy,omitempty"`
	// EndsAt is when it stops (stopped) holding: until, or when it was ended.
	EndsAt time.Time `json:"endsAt"`
	Active bool      `json:"active"`
	// State: active, ended (before its until) or expired.
	State string `json:"state"`
}

func silenceOut(s fleet.Silence, now time.Time) silenceJSON {
	j := silenceJSON{ID: s.ID, Match: silenceMatchJSON{Cluster: s.Cluster, Code: s.Code, Target: s.Target}, Until: s.Until,
		Comment: s.Comment, CreatedBy: s.CreatedBy, CreatedAt: s.CreatedAt, EndedAt: timePtr(s.EndedAt), EndedBy: s.EndedBy,
		EndsAt: s.End(), Active: s.ActiveAt(now), State: "expired"}
	switch {
	case j.Active:
		j.State = "active"
	case !s.EndedAt.IsZero() && s.EndedAt.Before(s.Until):
		j.State = "ended"
	}
	return j
}

// decodeSilenceRequest reads a create request strictly: one JSON object of
// known fields, within maxSilenceBody. The message says what is wrong.
func decodeSilenceRequest(r *http.Request, principal string) (watch.SilenceRequest, string) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxSilenceBody+1))
	switch {
	case err != nil:
		return watch.SilenceRequest{}, "could not read the body"
	case len(body) > maxSilenceBody:
		return watch.SilenceRequest{}, fmt.Sprintf("body is larger than %d bytes", maxSilenceBody)
	}
	var in silenceRequestJSON
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return watch.SilenceRequest{}, "body is not a silence: " + jsonProblem(err) +
			` (want {"match": {"cluster", "code", "target"}, "until", "comment", "createdBy"})`
	}
	if dec.More() {
		return watch.SilenceRequest{}, "body holds more than one JSON value"
	}
	if in.Match == nil {
		return watch.SilenceRequest{}, "match is required: at least one of cluster, code or target"
	}
	out := watch.SilenceRequest{Cluster: in.Match.Cluster, Code: in.Match.Code, Target: in.Match.Target,
		Comment: in.Comment, CreatedBy: in.CreatedBy}
	if principal != "" {
		out.CreatedBy = principal
	}
	if strings.TrimSpace(in.Until) != "" {
		t, err := time.Parse(time.RFC3339, strings.TrimSpace(in.Until))
		if err != nil {
			return out, fmt.Sprintf("until %q is not an RFC 3339 time (e.g. 2026-12-18T17:00:00Z)", clipParam(in.Until))
		}
		out.Until = t
	}
	return out, ""
}

// jsonProblem says what a decode error is about without echoing the body.
func jsonProblem(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return "invalid JSON at byte " + strconv.FormatInt(syn.Offset, 10)
	case errors.As(err, &typ):
		return fmt.Sprintf("%s must be a %s", typ.Field, typ.Type)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return "unknown field " + strings.TrimPrefix(err.Error(), "json: unknown field ")
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "empty or truncated JSON"
	}
	return "invalid JSON"
}

// createSilence: POST /api/silences → 201 {"id"} with its Location.
func (s *Server) createSilence(w http.ResponseWriter, r *http.Request) {
	req, bad := decodeSilenceRequest(r, strings.TrimSpace(r.Header.Get(principalHeader)))
	if bad != "" {
		writeJSON(w, http.StatusBadRequest, errorBody{Error: bad})
		return
	}
	sil, err := s.app.CreateSilence(r.Context(), req)
	if err != nil {
		s.silenceError(w, err, "create silence failed")
		return
	}
	w.Header().Set("Location", "/api/silences/"+sil.ID)
	writeJSON(w, http.StatusCreated, map[string]any{"id": sil.ID, "silence": silenceOut(sil, s.now())})
}

// listSilences: GET /api/silences[?days=30] — the silences in force and
// those that ended in the last days, newest first.
func (s *Server) listSilences(w http.ResponseWriter, r *http.Request) {
	days := defaultSilenceDays
	for key, vs := range r.URL.Query() {
		// code is the function key, when given in the query: the host's.
		if key != "code" && (key != "days" || len(vs) != 1) {
			writeJSON(w, http.StatusBadRequest, errorBody{Error: "the only parameter is days, given once"})
			return
		}
	}
	if v := r.URL.Query().Get("days"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxSilenceDays {
			writeJSON(w, http.StatusBadRequest, errorBody{Error: "days must be a whole number from 1 to " + strconv.Itoa(maxSilenceDays)})
			return
		}
		days = n
	}
	list, err := s.app.ListSilences(r.Context(), s.now().Add(-time.Duration(days)*24*time.Hour))
	if err != nil {
		s.silenceError(w, err, "list silences failed")
		return
	}
	out := make([]silenceJSON, len(list.Silences))
	active := 0
	for i, sil := range list.Silences {
		if out[i] = silenceOut(sil, list.At); out[i].Active {
			active++
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"silences": out, "count": len(out), "active": active, "endedSince": list.Since.UTC()})
}

// getSilence: GET /api/silences/{id}.
func (s *Server) getSilence(w http.ResponseWriter, r *http.Request) {
	sil, err := s.app.Silence(r.Context(), r.PathValue("id"))
	if err != nil {
		s.silenceError(w, err, "read silence failed")
		return
	}
	writeJSON(w, http.StatusOK, silenceOut(sil, s.now()))
}

// endSilence: DELETE /api/silences/{id}[?endedBy=] → 200 with the ended
// silence; again for one that ended already (idempotent). Who ended it: the
// signed-in principal, else endedBy (query or body), else "unknown".
func (s *Server) endSilence(w http.ResponseWriter, r *http.Request) {
	by := strings.TrimSpace(r.Header.Get(principalHeader))
	if by == "" {
		by = strings.TrimSpace(r.URL.Query().Get("endedBy"))
	}
	if by == "" {
		var in struct {
			EndedBy string `json:"endedBy"`
		}
		body, _ := io.ReadAll(io.LimitReader(r.Body, maxSilenceBody))
		if len(bytes.TrimSpace(body)) > 0 {
			if err := json.Unmarshal(body, &in); err != nil {
				writeJSON(w, http.StatusBadRequest, errorBody{Error: `body must be {"endedBy": "<who>"} or empty: ` + jsonProblem(err)})
				return
			}
		}
		by = strings.TrimSpace(in.EndedBy)
	}
	if by == "" {
		by = "unknown"
	}
	sil, err := s.app.EndSilence(r.Context(), r.PathValue("id"), by)
	if err != nil {
		s.silenceError(w, err, "end silence failed")
		return
	}
	writeJSON(w, http.StatusOK, silenceOut(sil, s.now()))
}

// silenceError maps the silences use cases' errors to status codes.
func (s *Server) silenceError(w http.ResponseWriter, err error, msg string) {
	switch {
	case errors.Is(err, watch.ErrSilencesOff):
		writeJSON(w, http.StatusNotImplemented, errorBody{Error: "silences are not configured"})
	case errors.Is(err, watch.ErrTooManySilences):
		writeJSON(w, http.StatusConflict, errorBody{Error: watch.ErrTooManySilences.Error()})
	case errors.Is(err, fleet.ErrNotFound):
		writeJSON(w, http.StatusNotFound, errorBody{Error: "no such silence (ids look like 20261124T093000Z-4f1a9c2e)"})
	case errors.Is(err, fleet.ErrRejected):
		writeJSON(w, http.StatusBadRequest, errorBody{Error: err.Error()})
	default:
		s.log.Error(msg, "function", FunctionSilences, "error", err)
		unavailable(w)
	}
}
