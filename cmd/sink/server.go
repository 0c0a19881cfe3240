package main

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"
)

// maxBody bounds a request body; upgradewatch's payloads stay far below it
// (a Teams card must stay under 28 KB).
const maxBody = 1 << 20

// Kinds of received item.
const (
	kindCloudEvent = "cloudevent"
	kindTeams      = "teams"
	kindSlack      = "slack"
)

// options configure a server.
type options struct {
	// failFirst answers the first failFirst POSTs to each path with 503 and
	// Retry-After: 1, to show a sender's retries.
	failFirst int
	// quiet drops the per-request lines; the summary remains.
	quiet bool
	// out receives one line per request; record, when set, one JSON line per
	// item; errs the sink's own failures.
	out, record, errs io.Writer
	now               func() time.Time
}

// item is one received CloudEvent or chat message: an element of GET /events
// and a line of -out.
type item struct {
	ReceivedAt time.Time `json:"receivedAt"`
	Path       string    `json:"path"`
	Kind       string    `json:"kind"`           // kindCloudEvent, kindTeams or kindSlack
	Mode       string    `json:"mode,omitempty"` // CloudEvents: binary, structured or batch
	Duplicate  bool      `json:"duplicate,omitempty"`
	// Cluster and Steps: Teams and Slack only, the cluster name of the
	// message's status link and how many steps it groups (1 for one card).
	Cluster string `json:"cluster,omitempty"`
	Steps   int    `json:"steps,omitempty"`
	// Event is the CloudEvent in its structured JSON form.
	Event json.RawMessage `json:"event,omitempty"`
	// Message is the Teams or Slack message as posted.
	Message json.RawMessage `json:"message,omitempty"`

	line    string // for people, without the time
	eventID ceKey  // CloudEvents only
	ceType  string
}

// ceKey identifies a CloudEvent: the spec makes source+id unique.
type ceKey struct{ source, id string }

// seenKey is a CloudEvent at one receiver: a sender with two webhook sinks
// (routes) sends each step to both, once each, and that is no duplicate.
type seenKey struct {
	receiver string
	ceKey
}

// receiverOf names the receiver a path stands for: / and /events are one.
func receiverOf(path string) string {
	if path == "/" {
		return "/events"
	}
	return path
}

// server receives notifications and remembers them. Its methods are safe for
// concurrent use.
type server struct {
	opts options
	mux  *http.ServeMux

	mu       sync.Mutex
	items    [][]byte // as listed by GET /events
	seen     map[seenKey]bool
	attempts map[string]int            // POSTs by path, for -fail
	byPath   map[string]int            // accepted items
	byType   map[string]int            // accepted CloudEvents
	byChat   map[string]map[string]int // Teams/Slack messages: kind, then cluster
	dups     int
	rejected int
	failed   int // answered 503 on purpose
}

// newServer returns the sink's handler.
func newServer(o options) *server {
	if o.now == nil {
		o.now = time.Now
	}
	if o.out == nil {
		o.out = io.Discard
	}
	if o.errs == nil {
		o.errs = io.Discard
	}
	s := &server{
		opts:     o,
		seen:     map[seenKey]bool{},
		attempts: map[string]int{},
		byPath:   map[string]int{},
		byType:   map[string]int{},
		byChat:   map[string]map[string]int{},
	}
	mux := http.NewServeMux()
	ce := s.receive(http.StatusAccepted, "", decodeCloudEventItems)
	mux.Handle("POST /{$}", ce)
	mux.Handle("POST /events", ce)
	// A second webhook receiver, for a route to another sink (make demo's
	// "oncall"); its duplicates are counted apart from /events'.
	mux.Handle("POST /oncall", ce)
	// Workflows answers 202 with no body, Slack 200 "ok": the sinks accept both.
	mux.Handle("POST /teams", s.receive(http.StatusAccepted, "", decodeChatItem(kindTeams, decodeTeams)))
	mux.Handle("POST /slack", s.receive(http.StatusOK, "ok", decodeChatItem(kindSlack, decodeSlack)))
	mux.HandleFunc("GET /events", s.list)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	s.mux = mux
	return s
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// decoder turns a request body into items (with Kind, Mode, Event or Message,
// line and, for CloudEvents, eventID and ceType set). Its error is for the
// sender.
type decoder func(r *http.Request, body []byte) ([]item, error)

// receive handles a POST: fail on purpose, read the bounded body, decode,
// record and answer.
func (s *server) receive(status int, answer string, decode decoder) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		now := s.opts.now().UTC()
		if n, fail := s.failNow(r.URL.Path); fail {
			s.printf(now, "503 %s %s (-fail: %d of %d)", r.Method, r.URL.Path, n, s.opts.failFirst)
			w.Header().Set("Retry-After", "1")
			http.Error(w, "failing on purpose (-fail)", http.StatusServiceUnavailable)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
		if err != nil {
			if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
				s.reject(w, r, now, http.StatusRequestEntityTooLarge, fmt.Errorf("body larger than %d bytes", maxBody))
				return
			}
			s.reject(w, r, now, http.StatusBadRequest, fmt.Errorf("read body: %w", err))
			return
		}
		items, err := decode(r, body)
		if err != nil {
			s.reject(w, r, now, http.StatusBadRequest, err)
			return
		}
		if err := s.accept(now, r.URL.Path, items); err != nil {
			// Not remembered: the sender should try again.
			fmt.Fprintf(s.opts.errs, "sink: %v\n", err)
			http.Error(w, "cannot record the notification", http.StatusInternalServerError)
			return
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, answer)
	})
}

func decodeCloudEventItems(r *http.Request, body []byte) ([]item, error) {
	evs, mode, err := decodeCloudEvents(r.Context(), r.Header, body)
	if err != nil {
		return nil, err
	}
	items := make([]item, 0, len(evs))
	for i := range evs {
		e := &evs[i]
		b, err := e.MarshalJSON()
		if err != nil {
			return nil, fmt.Errorf("CloudEvent %q: cannot encode it: %w", e.ID(), err)
		}
		items = append(items, item{
			Kind: kindCloudEvent, Mode: mode, Event: b,
			line: ceLine(e), eventID: ceKey{e.Source(), e.ID()}, ceType: e.Type(),
		})
	}
	return items, nil
}

func decodeChatItem(kind string, decode func([]byte) (string, error)) decoder {
	return func(_ *http.Request, body []byte) ([]item, error) {
		text, err := decode(body)
		if err != nil {
			return nil, err
		}
		// The text names the cluster already (a card's title, a group's headline).
		cluster, steps := chatFacts(body)
		return []item{{Kind: kind, Message: body, Cluster: cluster, Steps: steps, line: kind + " " + strconv.Quote(clip(text, 200))}}, nil
	}
}

// failNow counts a POST to path and reports whether -fail wants it failed,
// and as which attempt.
func (s *server) failNow(path string) (int, bool) {
	if s.opts.failFirst <= 0 {
		return 0, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.attempts[path]++
	n := s.attempts[path]
	if n > s.opts.failFirst {
		return n, false
	}
	s.failed++
	return n, true
}

func (s *server) reject(w http.ResponseWriter, r *http.Request, now time.Time, status int, err error) {
	msg := oneLine(err.Error(), 500)
	s.mu.Lock()
	s.rejected++
	s.mu.Unlock()
	s.printf(now, "rejected %s %s: %d %s", r.Method, r.URL.Path, status, msg)
	http.Error(w, msg, status)
}

// accept records items: appends them to -out in one write, then remembers,
// counts and prints them. When the write fails nothing is remembered.
func (s *server) accept(now time.Time, path string, items []item) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := map[seenKey]bool{} // duplicates within a batch count too
	receiver := receiverOf(path)
	var lines bytes.Buffer
	raws := make([][]byte, len(items))
	for i := range items {
		it := &items[i]
		it.ReceivedAt, it.Path = now, path
		if it.Kind == kindCloudEvent {
			k := seenKey{receiver, it.eventID}
			it.Duplicate = s.seen[k] || seen[k]
			seen[k] = true
		}
		b, err := marshal(it)
		if err != nil {
			return fmt.Errorf("encode %s item: %w", it.Kind, err)
		}
		raws[i] = b
		lines.Write(b)
		lines.WriteByte('\n')
	}
	if s.opts.record != nil {
		if _, err := s.opts.record.Write(lines.Bytes()); err != nil {
			return fmt.Errorf("append to -out: %w", err)
		}
	}
	for i, it := range items {
		s.items = append(s.items, raws[i])
		s.byPath[path]++
		line := it.line
		if it.Kind == kindCloudEvent {
			s.seen[seenKey{receiver, it.eventID}] = true
			s.byType[it.ceType]++
			if it.Duplicate {
				s.dups++
				line = "DUPLICATE id=" + oneLine(it.eventID.id, 200) + " " + line
			}
		} else {
			s.countChat(it.Kind, it.Cluster)
		}
		s.printLocked(now, "%s", line)
	}
	return nil
}

// list answers GET /events: every item so far, oldest first.
func (s *server) list(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	body := append([]byte("["), bytes.Join(s.items, []byte(","))...)
	s.mu.Unlock()
	body = append(body, "]\n"...)
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
}

// summary is one line of counts, for the end of a run.
func (s *server) summary() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	total := 0
	for _, n := range s.byPath {
		total += n
	}
	plural := func(n int, one, many string) string {
		if n == 1 {
			return "1 " + one
		}
		return strconv.Itoa(n) + " " + many
	}
	line := fmt.Sprintf("sink: %d received (%s); cloudevents by type: %s; %s; %d rejected; %d failed on purpose",
		total, counts(s.byPath), counts(s.byType), plural(s.dups, "duplicate", "duplicates"), s.rejected, s.failed)
	for _, kind := range slices.Sorted(maps.Keys(s.byChat)) {
		line += fmt.Sprintf("; %s messages by cluster: %s", kind, counts(s.byChat[kind]))
	}
	return line
}

// countChat counts a Teams or Slack message for its cluster; s.mu is held.
func (s *server) countChat(kind, cluster string) {
	if s.byChat[kind] == nil {
		s.byChat[kind] = map[string]int{}
	}
	s.byChat[kind][cmp.Or(cluster, "(no cluster)")]++
}

// counts formats a map as "k1 n1, k2 n2" in key order, or "none".
func counts(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

func (s *server) printf(now time.Time, format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.printLocked(now, format, args...)
}

// printLocked writes one line to out unless quiet; s.mu keeps lines whole.
func (s *server) printLocked(now time.Time, format string, args ...any) {
	if s.opts.quiet {
		return
	}
	fmt.Fprintf(s.opts.out, "%s %s\n", now.Format(time.RFC3339), fmt.Sprintf(format, args...))
}

// marshal is json.Marshal without HTML escaping ("<" reads better than
// "\u003c" in a terminal or a JSON Lines file).
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// oneLine makes outside text safe for one terminal line: control characters
// (newlines, escape sequences) become spaces; it is clipped to n runes.
func oneLine(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	return clip(strings.TrimSpace(s), n)
}

// clip shortens s to at most n runes, marking the cut.
func clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}
