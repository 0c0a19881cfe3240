// Package host speaks the Azure Functions custom-handler protocol: the
// {Data, Metadata} invocation envelope the host POSTs to /<FunctionName> and the
// {Outputs, Logs, ReturnValue} answer it expects.
//
// The host is not consistent in how it encodes values: strings, numbers and
// arrays may arrive JSON-encoded inside a JSON string, and times may carry no
// offset. Everything here accepts all of those forms.
package host

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
)

// Errors returned by DecodeRequest and Binding.
var (
	ErrTooLarge  = errors.New("request body too large")
	ErrMalformed = errors.New("malformed invocation envelope")
	ErrNoBinding = errors.New("binding missing from envelope")
)

// InvokeRequest is what the host POSTs to /<FunctionName> for non-HTTP triggers.
type InvokeRequest struct {
	Data     map[string]json.RawMessage `json:"Data"`
	Metadata map[string]json.RawMessage `json:"Metadata"`
}

// InvokeResponse is the handler's answer. The host requires a JSON object with
// Content-Type application/json: an empty body would hang the invocation.
type InvokeResponse struct {
	Outputs     map[string]any `json:"Outputs"`
	Logs        []string       `json:"Logs"`
	ReturnValue any            `json:"ReturnValue"`
}

// Sys is the host's Metadata.sys block.
type Sys struct {
	MethodName string
	UtcNow     time.Time
	RandGuid   string
}

// DecodeRequest reads an envelope of at most limit bytes.
func DecodeRequest(r io.Reader, limit int64) (*InvokeRequest, []byte, error) {
	body, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, body, fmt.Errorf("read envelope: %w", err)
	}
	if int64(len(body)) > limit {
		return nil, body, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, limit)
	}
	var req InvokeRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&req); err != nil {
		return nil, body, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if dec.More() {
		return nil, body, fmt.Errorf("%w: trailing data after the envelope", ErrMalformed)
	}
	if req.Data == nil {
		return nil, body, fmt.Errorf("%w: no Data object", ErrMalformed)
	}
	return &req, body, nil
}

// Binding returns the value of the named input binding, unwrapped from any
// string encoding the host applied.
func (r *InvokeRequest) Binding(name string) (json.RawMessage, error) {
	raw, ok := r.Data[name]
	if !ok {
		// Binding names are case-insensitive in function.json.
		for k, v := range r.Data {
			if strings.EqualFold(k, name) {
				raw, ok = v, true
				break
			}
		}
	}
	if !ok || len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null" {
		return nil, fmt.Errorf("%w: %q", ErrNoBinding, name)
	}
	return Unwrap(raw), nil
}

// Sys returns Metadata.sys (or $sys), zero-valued where absent or unparseable.
func (r *InvokeRequest) Sys() Sys {
	raw, ok := r.Metadata["sys"]
	if !ok {
		raw = r.Metadata["$sys"]
	}
	var s struct {
		MethodName json.RawMessage
		UtcNow     json.RawMessage
		RandGuid   json.RawMessage
	}
	if json.Unmarshal(Unwrap(raw), &s) != nil {
		return Sys{}
	}
	out := Sys{MethodName: String(s.MethodName), RandGuid: String(s.RandGuid)}
	out.UtcNow, _ = ParseTime(String(s.UtcNow))
	return out
}

// Retry is Metadata.RetryContext, which the host sends when a function.json
// retry policy is active (Event Hubs, timer): Count is how many retries came
// before this attempt (0 on the first), Max the policy's maxRetryCount (-1:
// unbounded). Present is false when the host sent none.
type Retry struct {
	Count, Max int
	Present    bool
}

// Last reports whether this is the policy's last attempt: after it, an Event
// Hubs trigger moves its checkpoint past the batch whatever the outcome.
func (r Retry) Last() bool { return r.Present && r.Max >= 0 && r.Count >= r.Max }

// Retry returns Metadata.RetryContext, zero-valued where absent or
// unparseable (numbers may arrive as strings).
func (r *InvokeRequest) Retry() Retry {
	raw, ok := r.Metadata["RetryContext"]
	if !ok {
		return Retry{}
	}
	var rc struct {
		RetryCount, MaxRetryCount json.RawMessage
	}
	if json.Unmarshal(Unwrap(raw), &rc) != nil {
		return Retry{}
	}
	count, err1 := strconv.Atoi(String(rc.RetryCount))
	limit, err2 := strconv.Atoi(String(rc.MaxRetryCount))
	if err1 != nil || err2 != nil || count < 0 {
		return Retry{}
	}
	return Retry{Count: count, Max: limit, Present: true}
}

// Unwrap peels up to two layers of "JSON value encoded as a JSON string". A
// string whose content is not JSON stays the JSON string it was.
func Unwrap(raw json.RawMessage) json.RawMessage {
	raw = bytes.TrimSpace(raw)
	for i := 0; i < 2; i++ {
		if len(raw) == 0 || raw[0] != '"' {
			return raw
		}
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return raw
		}
		t := strings.TrimSpace(s)
		if t == "" || !json.Valid([]byte(t)) {
			return raw
		}
		raw = json.RawMessage(t)
	}
	return raw
}

// String returns the text of a JSON value that should be a string, whatever the
// host did to it: a plain string, a double-encoded one, or a bare number/bool.
func String(raw json.RawMessage) string {
	raw = Unwrap(raw)
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	t := strings.TrimSpace(string(raw))
	if t == "null" {
		return ""
	}
	return t
}

// zeroTimes are the .NET "never" sentinels.
var zeroPrefix = "0001-01-01T00:00:00"

var timeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999", // no offset: UTC
	"2006-01-02T15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02",
}

// ParseTime parses the host's and Azure's time forms: RFC 3339 with or without
// fractional seconds (up to 9 digits), with no offset at all (taken as UTC),
// and the .NET zero value 0001-01-01T00:00:00 (returned as the zero time).
// The result is in UTC.
func ParseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, fmt.Errorf("parse time: empty")
	}
	if strings.HasPrefix(s, zeroPrefix) {
		return time.Time{}, nil
	}
	for _, layout := range timeLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("parse time: %q is not an RFC 3339 time", truncate(s, 64))
}

// WriteResponse writes the answer envelope with the given status. Status is the
// retry policy: 2xx for success, duplicates and permanent rejections; 5xx only
// when the work may succeed if the host tries again.
func WriteResponse(w http.ResponseWriter, status int, resp InvokeResponse) {
	if resp.Outputs == nil {
		resp.Outputs = map[string]any{}
	}
	if resp.Logs == nil {
		resp.Logs = []string{}
	}
	body, err := json.Marshal(resp)
	if err != nil {
		body = []byte(`{"Outputs":{},"Logs":["response encoding failed"],"ReturnValue":null}`)
		status = http.StatusInternalServerError
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// NewEventGridRequest builds the envelope the host sends for an eventGridTrigger
// binding: the event as a JSON object under Data.<binding>, and Metadata with the
// event's data and the sys block. Tests and cmd/replay use it to play the host.
func NewEventGridRequest(binding, function string, event json.RawMessage, now time.Time, invocationID string) ([]byte, error) {
	var probe struct {
		Data json.RawMessage `json:"data"`
	}
	_ = json.Unmarshal(event, &probe)
	data := probe.Data
	if len(data) == 0 {
		data = json.RawMessage("null")
	}
	sys := map[string]string{
		"MethodName": function,
		"UtcNow":     now.UTC().Format("2006-01-02T15:04:05.0000000Z"),
		"RandGuid":   invocationID,
	}
	sysRaw, _ := json.Marshal(sys)
	req := InvokeRequest{
		Data:     map[string]json.RawMessage{binding: event},
		Metadata: map[string]json.RawMessage{"data": data, "sys": sysRaw},
	}
	return json.Marshal(req)
}

// NewEventHubRequest builds the envelope the host sends for an eventHubTrigger
// binding with cardinality many and dataType string: Data.<binding> is a JSON
// string holding a JSON array of the message bodies as strings, and Metadata
// carries the per-batch arrays (arrays as JSON strings, objects as objects).
func NewEventHubRequest(binding, function string, messages [][]byte, now time.Time, invocationID string) ([]byte, error) {
	bodies := make([]string, len(messages))
	enqueued := make([]string, len(messages))
	seqs := make([]int64, len(messages))
	for i, m := range messages {
		bodies[i] = string(m)
		enqueued[i] = now.UTC().Format("2006-01-02T15:04:05.0000000Z")
		seqs[i] = int64(i + 1)
	}
	arr, err := json.Marshal(bodies)
	if err != nil {
		return nil, err
	}
	value, _ := json.Marshal(string(arr))
	asString := func(v any) json.RawMessage {
		b, _ := json.Marshal(v)
		s, _ := json.Marshal(string(b))
		return s
	}
	sysRaw, _ := json.Marshal(map[string]string{
		"MethodName": function,
		"UtcNow":     now.UTC().Format("2006-01-02T15:04:05.0000000Z"),
		"RandGuid":   invocationID,
	})
	req := InvokeRequest{
		Data: map[string]json.RawMessage{binding: value},
		Metadata: map[string]json.RawMessage{
			"PartitionContext":     json.RawMessage(`{"ConsumerGroup":"$Default","EventHubName":"activity-log","PartitionId":"0"}`),
			"EnqueuedTimeUtcArray": asString(enqueued),
			"SequenceNumberArray":  asString(seqs),
			"sys":                  sysRaw,
		},
	}
	return json.Marshal(req)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
