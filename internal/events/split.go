package events

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/upgradewatch/upgradewatch/internal/host"
)

// Split returns the events in an eventGridTrigger binding value: one event
// object, an array of them (cardinality many, or an Event Grid batch), or either
// of those JSON-encoded in a string. Elements are returned unjudged — a
// non-object element comes back as is, for Decode to reject — except that an
// object encoded in a string is unwrapped. An empty array gives an empty slice.
// Input that is neither an object nor an array yields an ErrMalformed error.
func Split(raw []byte) ([]json.RawMessage, error) {
	raw = host.Unwrap(raw)
	if len(raw) == 0 {
		return nil, malformed("event batch is empty")
	}
	if err := json.Unmarshal(raw, new(json.RawMessage)); err != nil {
		return nil, fmt.Errorf("%w: event batch is not valid JSON: %w", ErrMalformed, clipped{err})
	}
	switch raw[0] {
	case '{':
		return []json.RawMessage{bytes.Clone(raw)}, nil
	case '[':
		var items []json.RawMessage
		if err := json.Unmarshal(raw, &items); err != nil {
			return nil, fmt.Errorf("%w: event batch: %w", ErrMalformed, clipped{err})
		}
		for i, item := range items {
			if u := host.Unwrap(item); len(u) > 0 && u[0] == '{' {
				items[i] = u
			}
		}
		return items, nil
	}
	return nil, malformed("event batch is a JSON %s, want an object or an array of objects", jsonKind(raw))
}
