package events

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestSplit(t *testing.T) {
	started := "3e5c1f0a9b7d4e2f8a6c0b1d2e3f4a5b6c7d8e9f"
	succeeded := "a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5"
	tests := []struct {
		name    string
		in      []byte
		wantIDs []string // Decode's ID of each element; "" where Decode rejects it
		wantErr bool
	}{
		{name: "single object", in: readFixture(t, "eg-nodepool-rolling-started.json"), wantIDs: []string{started}},
		{name: "array", in: readFixture(t, "host-batch.json"), wantIDs: []string{started, succeeded}},
		{name: "string-wrapped array", in: readFixture(t, "host-string-wrapped-batch.json"), wantIDs: []string{started, succeeded}},
		{name: "string-wrapped object", in: readFixture(t, "host-string-wrapped-event.json"), wantIDs: []string{started}},
		{name: "empty array", in: []byte(" [] "), wantIDs: []string{}},
		{name: "non-object element kept for Decode to reject", in: []byte(`[42, "text"]`), wantIDs: []string{"", ""}},
		{name: "garbage", in: []byte(`{"id": "x", `), wantErr: true},
		{name: "not JSON at all", in: []byte(`hello`), wantErr: true},
		{name: "number", in: []byte(`42`), wantErr: true},
		{name: "null", in: []byte(`null`), wantErr: true},
		{name: "empty", in: nil, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Split(tc.in)
			if tc.wantErr {
				if !errors.Is(err, ErrMalformed) {
					t.Fatalf("got %d elements and error %v, want ErrMalformed", len(got), err)
				}
				return
			}
			if err != nil {
				t.Fatalf("got error %v, want none", err)
			}
			if got == nil {
				t.Fatalf("got a nil slice, want a non-nil one")
			}
			ids := make([]string, len(got))
			for i, raw := range got {
				sig, err := Decode(raw)
				if err == nil {
					ids[i] = sig.ID
				}
			}
			if diff := cmp.Diff(tc.wantIDs, ids); diff != "" {
				t.Errorf("decoded IDs mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSplitKeepsNonObjectsAsSent(t *testing.T) {
	got, err := Split([]byte(`[42, "text", {"a":1}]`))
	if err != nil {
		t.Fatal(err)
	}
	want := []json.RawMessage{json.RawMessage(`42`), json.RawMessage(`"text"`), json.RawMessage(`{"a":1}`)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Split mismatch (-want +got):\n%s", diff)
	}
}
