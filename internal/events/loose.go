package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/upgradewatch/upgradewatch/internal/host"
)

// maxQuoted bounds how much of the input any error message repeats.
const maxQuoted = 200

// malformed builds an ErrMalformed error. Callers clip any input they quote.
func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
}

// clipped wraps an error from a library so that errors.Is still sees it while
// its message, which may quote the input at length, is cut short.
type clipped struct{ err error }

func (c clipped) Error() string {
	var verr event.ValidationError
	if errors.As(c.err, &verr) {
		// Its own Error() lists the fields in map order, one per line.
		keys := make([]string, 0, len(verr))
		for k := range verr {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = k + ": " + verr[k].Error()
		}
		return clip(strings.Join(parts, "; "), maxQuoted)
	}
	return clip(c.err.Error(), maxQuoted)
}

func (c clipped) Unwrap() error { return c.err }

// clip cuts s to at most n bytes on a rune boundary, marking the cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// jsonKind names the kind of a syntactically valid JSON value.
func jsonKind(raw []byte) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "empty value"
	}
	switch raw[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	default:
		return "number"
	}
}

// get looks a member up by the first of keys present, exactly or, failing
// that, case-insensitively (Azure Resource Graph lower-cases some names).
func get(m map[string]json.RawMessage, keys ...string) json.RawMessage {
	for _, k := range keys {
		if v, ok := m[k]; ok {
			return v
		}
	}
	for _, k := range keys {
		match := ""
		for name := range m {
			// The smallest match keeps the choice deterministic.
			if strings.EqualFold(name, k) && (match == "" || name < match) {
				match = name
			}
		}
		if match != "" {
			return m[match]
		}
	}
	return nil
}

// absent reports whether a member is missing or JSON null.
func absent(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) == 0 || string(raw) == "null"
}

// reader pulls loosely typed members out of JSON, naming the member in the
// first problem it meets and carrying on with zero values after that.
type reader struct{ err error }

func (r *reader) fail(path, format string, args ...any) {
	if r.err == nil {
		r.err = malformed("%s: "+format, append([]any{path}, args...)...)
	}
}

// text reads a string; numbers and booleans are taken as their text.
func (r *reader) text(path string, raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if absent(raw) {
		return ""
	}
	switch raw[0] {
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			r.fail(path, "not a valid JSON string")
		}
		return s
	case '{', '[':
		r.fail(path, "want a string, got a JSON %s", jsonKind(raw))
		return ""
	default:
		return string(raw)
	}
}

// integer reads a whole number sent as a number, a string ("3"), or an
// Azure Resource Graph style boolean.
func (r *reader) integer(path string, raw json.RawMessage) int {
	raw = bytes.TrimSpace(raw)
	if absent(raw) {
		return 0
	}
	if raw[0] == '{' || raw[0] == '[' {
		r.fail(path, "want an integer, got a JSON %s", jsonKind(raw))
		return 0
	}
	s := strings.TrimSpace(r.text(path, raw))
	switch strings.ToLower(s) {
	case "":
		return 0
	case "true":
		return 1
	case "false":
		return 0
	}
	if n, err := strconv.Atoi(s); err == nil {
		return n
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && f == math.Trunc(f) && math.Abs(f) <= 1<<53 {
		return int(f)
	}
	r.fail(path, "want an integer, got %q", clip(s, 40))
	return 0
}

// object reads a JSON object (nil when absent), also when it arrives
// JSON-encoded in a string.
func (r *reader) object(path string, raw json.RawMessage) map[string]json.RawMessage {
	raw = host.Unwrap(raw)
	if absent(raw) {
		return nil
	}
	var m map[string]json.RawMessage
	if raw[0] != '{' || json.Unmarshal(raw, &m) != nil {
		r.fail(path, "want an object, got a JSON %s", jsonKind(raw))
		return nil
	}
	return m
}

// array reads a JSON array (nil when absent), also when it arrives
// JSON-encoded in a string.
func (r *reader) array(path string, raw json.RawMessage) []json.RawMessage {
	raw = host.Unwrap(raw)
	if absent(raw) {
		return nil
	}
	var a []json.RawMessage
	if raw[0] != '[' || json.Unmarshal(raw, &a) != nil {
		r.fail(path, "want an array, got a JSON %s", jsonKind(raw))
		return nil
	}
	return a
}

// looseTime parses a time the way AKS sends them; the zero sentinel and
// anything unparseable give the zero time.
func looseTime(raw json.RawMessage) time.Time {
	var r reader
	t, err := host.ParseTime(r.text("", raw))
	if err != nil || r.err != nil {
		return time.Time{}
	}
	return t
}

// remarshal turns an SDK-decoded untyped bag back into JSON members, so that
// they can be read with a reader. HTML characters are left unescaped, since the
// text may end up in a notification.
func remarshal(v any) (map[string]json.RawMessage, []byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, nil, err
	}
	b := bytes.TrimSpace(buf.Bytes())
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, nil, err
	}
	return m, b, nil
}

// arnProbe is what can be read, without judging, from any Resource
// Notifications data: enough to attach a cluster and a time to an event that
// is otherwise unsupported.
type arnProbe struct {
	id, typ   string
	eventTime time.Time
	ok        bool // data was a JSON object
}

func probeARN(data []byte) arnProbe {
	var r reader
	m := r.object("data", data)
	if m == nil {
		return arnProbe{}
	}
	ri := r.object("", get(m, "resourceInfo"))
	oi := r.object("", get(m, "operationalInfo"))
	return arnProbe{
		id:        r.text("", get(ri, "id")),
		typ:       r.text("", get(ri, "type")),
		eventTime: looseTime(get(oi, "resourceEventTime")),
		ok:        true,
	}
}
