package host

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseTime(t *testing.T) {
	cases := []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"2026-11-02T02:03:11.5200000Z", time.Date(2026, 11, 2, 2, 3, 11, 520000000, time.UTC), true},
		{"2024-04-16T22:17:12.103268606Z", time.Date(2024, 4, 16, 22, 17, 12, 103268606, time.UTC), true},
		{"2024-04-16T22:17:12.1032748", time.Date(2024, 4, 16, 22, 17, 12, 103274800, time.UTC), true},
		{"2023-10-12T20:13:49", time.Date(2023, 10, 12, 20, 13, 49, 0, time.UTC), true},
		{"2023-02-14T16:45:00-08:00", time.Date(2023, 2, 15, 0, 45, 0, 0, time.UTC), true},
		{"2019-03-22T13:56:31.2917159+00:00", time.Date(2019, 3, 22, 13, 56, 31, 291715900, time.UTC), true},
		{"0001-01-01T00:00:00", time.Time{}, true},
		{"0001-01-01T00:00:00.0000000Z", time.Time{}, true},
		{"2023-11-22", time.Date(2023, 11, 22, 0, 0, 0, 0, time.UTC), true},
		{"yesterday", time.Time{}, false},
		{"", time.Time{}, false},
	}
	for _, tc := range cases {
		got, err := ParseTime(tc.in)
		if (err == nil) != tc.ok || !got.Equal(tc.want) {
			t.Errorf("ParseTime(%q) = %v, %v; want %v ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
		if err == nil && got.Location() != time.UTC {
			t.Errorf("ParseTime(%q) not in UTC", tc.in)
		}
	}
}

func TestUnwrapAndString(t *testing.T) {
	cases := []struct{ in, unwrapped, str string }{
		{`{"a":1}`, `{"a":1}`, `{"a":1}`},
		{`"{\"a\":1}"`, `{"a":1}`, `{"a":1}`},
		{`"\"{\\\"a\\\":1}\""`, `{"a":1}`, `{"a":1}`},
		{`"[1,2]"`, `[1,2]`, `[1,2]`},
		{`"\"hello\""`, `"hello"`, `hello`},
		{`"hello world"`, `"hello world"`, `hello world`},
		{`"4"`, `4`, `4`},
		{`4`, `4`, `4`},
		{`"true"`, `true`, `true`},
		{`null`, `null`, ``},
	}
	for _, tc := range cases {
		if got := string(Unwrap(json.RawMessage(tc.in))); got != tc.unwrapped {
			t.Errorf("Unwrap(%s) = %s, want %s", tc.in, got, tc.unwrapped)
		}
		if got := String(json.RawMessage(tc.in)); got != tc.str {
			t.Errorf("String(%s) = %q, want %q", tc.in, got, tc.str)
		}
	}
}

func TestDecodeRequestFixtures(t *testing.T) {
	cases := []struct {
		file, binding, method string
		wantObject            bool
		utcNow                time.Time
	}{
		{"envelope-eventgrid-object.json", "event", "AksEvents", true, time.Date(2026, 11, 2, 2, 3, 12, 14567800, time.UTC)},
		{"envelope-cloudevents-string-wrapped.json", "event", "AksEvents", true, time.Date(2026, 11, 2, 2, 41, 10, 0, time.UTC)},
		{"envelope-batch-string-array.json", "event", "AksEvents", false, time.Date(2026, 11, 3, 4, 31, 48, 0, time.UTC)},
		{"timer-offsetless.json", "timer", "Sweep", true, time.Date(2026, 11, 24, 9, 35, 0, 12345600, time.UTC)},
		{"queue-double-encoded.json", "item", "Remediate", true, time.Date(2026, 11, 24, 9, 35, 0, 0, time.UTC)},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("testdata", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			req, _, err := DecodeRequest(bytes.NewReader(b), 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			raw, err := req.Binding(strings.ToUpper(tc.binding[:1]) + tc.binding[1:]) // names are case-insensitive
			if err != nil {
				t.Fatal(err)
			}
			if isObj := raw[0] == '{'; isObj != tc.wantObject {
				t.Errorf("binding value %.40s…: object=%v, want %v", raw, isObj, tc.wantObject)
			}
			if !tc.wantObject && raw[0] != '[' {
				t.Errorf("binding value %.40s…: want an array", raw)
			}
			sys := req.Sys()
			if sys.MethodName != tc.method || !sys.UtcNow.Equal(tc.utcNow) || sys.RandGuid == "" {
				t.Errorf("sys = %+v, want %s at %v", sys, tc.method, tc.utcNow)
			}
		})
	}
}

func TestDecodeRequestErrors(t *testing.T) {
	big := `{"Data":{"event":"` + strings.Repeat("x", 2048) + `"}}`
	cases := []struct {
		body string
		want error
	}{
		{`{"Data":`, ErrMalformed},
		{`[]`, ErrMalformed},
		{`{"Metadata":{}}`, ErrMalformed},
		{`{"Data":{}} {"Data":{}}`, ErrMalformed},
		{big, ErrTooLarge},
	}
	for _, tc := range cases {
		_, _, err := DecodeRequest(strings.NewReader(tc.body), 1024)
		if !errors.Is(err, tc.want) {
			t.Errorf("DecodeRequest(%.30q…) = %v, want %v", tc.body, err, tc.want)
		}
	}
	req, _, err := DecodeRequest(strings.NewReader(`{"Data":{"eventGridEvent":{}, "event": null}}`), 1024)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := req.Binding("event"); !errors.Is(err, ErrNoBinding) {
		t.Errorf("null binding: %v, want ErrNoBinding", err)
	}
}

func TestWriteResponseNeverEmpty(t *testing.T) {
	for _, status := range []int{200, 503} {
		rec := httptest.NewRecorder()
		WriteResponse(rec, status, InvokeResponse{})
		if rec.Code != status || rec.Header().Get("Content-Type") != "application/json; charset=utf-8" {
			t.Errorf("status %d, content type %q", rec.Code, rec.Header().Get("Content-Type"))
		}
		var got map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
			t.Fatalf("body %q: %v", rec.Body.String(), err)
		}
		for _, k := range []string{"Outputs", "Logs", "ReturnValue"} {
			if _, ok := got[k]; !ok {
				t.Errorf("response lacks %s: %s", k, rec.Body.String())
			}
		}
		if got["Outputs"] == nil || got["Logs"] == nil {
			t.Errorf("Outputs and Logs must be an object and an array, not null: %s", rec.Body.String())
		}
	}
}

func TestNewEventGridRequestRoundTrip(t *testing.T) {
	ev := json.RawMessage(`{"id":"1","eventType":"Microsoft.ContainerService.NodePoolRollingStarted","data":{"nodePoolName":"np1"}}`)
	b, err := NewEventGridRequest("event", "AksEvents", ev, time.Date(2026, 11, 24, 1, 2, 3, 0, time.UTC), "inv")
	if err != nil {
		t.Fatal(err)
	}
	req, _, err := DecodeRequest(bytes.NewReader(b), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := req.Binding("event")
	if !bytes.Equal(raw, ev) {
		t.Errorf("binding = %s, want %s", raw, ev)
	}
	if string(req.Metadata["data"]) != `{"nodePoolName":"np1"}` || req.Sys().MethodName != "AksEvents" || req.Sys().RandGuid != "inv" {
		t.Errorf("metadata = %s", b)
	}
}

func FuzzDecodeRequest(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.json")
	for _, p := range files {
		b, _ := os.ReadFile(p)
		f.Add(b)
	}
	f.Add([]byte(`{"Data":{"event":"\"[{\\\"id\\\":1}]\""}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		req, _, err := DecodeRequest(bytes.NewReader(b), 1<<16)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		_ = req.Sys()
		for name := range req.Data {
			raw, err := req.Binding(name)
			if err == nil && !json.Valid(raw) {
				t.Fatalf("Binding(%q) returned invalid JSON %q", name, raw)
			}
		}
		for _, v := range req.Metadata {
			_ = String(v)
		}
	})
}
