package events

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
	"github.com/upgradewatch/upgradewatch/internal/host"
)

// TypeActivityLogRecord is the Signal.Type of a diagnostic-settings export record.
const TypeActivityLogRecord = "Microsoft.Insights.ActivityLogRecord"

// SplitEventHub returns the messages in an eventHubTrigger binding value. With
// cardinality many and dataType string the host sends a JSON string holding a
// JSON array whose elements are strings, one message body each; an array of
// strings, an array of objects, one object, or a string holding one object are
// accepted too. String elements are unwrapped to the message they hold; other
// elements come back as is, for DecodeExport to judge. An empty array gives an
// empty slice; anything else yields an ErrMalformed error.
func SplitEventHub(raw []byte) ([]json.RawMessage, error) {
	raw = host.Unwrap(raw)
	if len(raw) == 0 {
		return nil, malformed("Event Hub binding value is empty")
	}
	switch raw[0] {
	case '{':
		if !json.Valid(raw) {
			return nil, malformed("Event Hub binding value is not valid JSON")
		}
		return []json.RawMessage{bytes.Clone(raw)}, nil
	case '[':
		// One pass: decoding into the slice validates the whole value.
		var items []json.RawMessage
		if err := json.Unmarshal(raw, &items); err != nil {
			return nil, fmt.Errorf("%w: Event Hub binding value is not valid JSON: %w", ErrMalformed, clipped{err})
		}
		out := make([]json.RawMessage, 0, len(items))
		for _, item := range items {
			item = bytes.TrimSpace(item)
			var s string
			if len(item) > 0 && item[0] == '"' && json.Unmarshal(item, &s) == nil {
				item = json.RawMessage(s)
			}
			out = append(out, item)
		}
		return out, nil
	}
	if !json.Valid(raw) {
		return nil, malformed("Event Hub binding value is not valid JSON")
	}
	return nil, malformed("Event Hub binding value is a JSON %s, want an array of messages or one message", jsonKind(raw))
}

// ExportRecord is one record of an exported activity-log message, decoded on
// its own: one bad record does not spoil the others.
type ExportRecord struct {
	Index int             // position in the message, from 0
	Raw   json.RawMessage // the record as sent
	// Signal is of Kind fleet.KindActivity or fleet.KindIgnored, or, when Err
	// is set, filled as far as it could be read (Kind empty) to record the
	// rejection. Ignored records carry no ID.
	Signal fleet.Signal
	Err    error // wraps ErrMalformed when the record is unreadable
}

// DecodeExport decodes one message of the activity log exported by a
// diagnostic setting: {"records":[…]} as Event Hub carries it, one record
// object without the wrapper, or JSON Lines (one record per line) as the
// storage export writes it.
//
// The export carries the whole subscription's activity log, so most records
// are of other resource providers: they come back as fleet.KindIgnored after
// reading only their operation name. A message-level error (ErrMalformed) is
// returned only when the message as a whole is unreadable.
func DecodeExport(msg []byte) ([]ExportRecord, error) {
	msg = host.Unwrap(msg)
	if len(msg) == 0 {
		return nil, malformed("message is empty")
	}
	// The common case in one pass: {"records":[…]}.
	if msg[0] == '{' {
		var w struct {
			Records []json.RawMessage `json:"records"`
		}
		if json.Unmarshal(msg, &w) == nil && w.Records != nil {
			out := make([]ExportRecord, len(w.Records))
			for i, item := range w.Records {
				out[i] = decodeRecord(i, item)
			}
			return out, nil
		}
	}
	if err := json.Unmarshal(msg, new(json.RawMessage)); err != nil {
		if lines := jsonLines(msg); lines != nil {
			out := make([]ExportRecord, len(lines))
			for i, line := range lines {
				out[i] = decodeRecord(i, line)
			}
			return out, nil
		}
		return nil, fmt.Errorf("%w: message is not valid JSON: %w", ErrMalformed, clipped{err})
	}
	if msg[0] != '{' {
		return nil, malformed("message is a JSON %s, want an object with records, a record, or JSON Lines", jsonKind(msg))
	}
	var wrapper struct {
		Records json.RawMessage `json:"records"`
	}
	if err := json.Unmarshal(msg, &wrapper); err != nil {
		return nil, fmt.Errorf("%w: message: %w", ErrMalformed, clipped{err})
	}
	if absent(wrapper.Records) {
		return []ExportRecord{decodeRecord(0, bytes.Clone(msg))}, nil
	}
	records := host.Unwrap(wrapper.Records)
	if records[0] != '[' {
		return nil, malformed("records is a JSON %s, want an array", jsonKind(records))
	}
	var items []json.RawMessage
	if err := json.Unmarshal(records, &items); err != nil {
		return nil, fmt.Errorf("%w: records: %w", ErrMalformed, clipped{err})
	}
	out := make([]ExportRecord, len(items))
	for i, item := range items {
		out[i] = decodeRecord(i, item)
	}
	return out, nil
}

// jsonLines splits a message that is not one JSON value into its non-blank
// lines, provided at least one of them is a JSON object; nil otherwise.
func jsonLines(msg []byte) []json.RawMessage {
	var lines []json.RawMessage
	anyObject := false
	for _, line := range bytes.Split(msg, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		if !anyObject && line[0] == '{' && json.Valid(line) {
			anyObject = true
		}
		lines = append(lines, line)
	}
	if !anyObject {
		return nil
	}
	return lines
}

// exportFields are the record members DecodeExport reads, left raw so that a
// record of another provider costs one scan and nothing more.
type exportFields struct {
	Time              json.RawMessage `json:"time"`
	ResourceID        json.RawMessage `json:"resourceId"`
	OperationName     json.RawMessage `json:"operationName"`
	ResultType        json.RawMessage `json:"resultType"`
	ResultSignature   json.RawMessage `json:"resultSignature"`
	ResultDescription json.RawMessage `json:"resultDescription"`
	CorrelationID     json.RawMessage `json:"correlationId"`
	Caller            json.RawMessage `json:"caller"`
	EventDataID       json.RawMessage `json:"eventDataId"`
	Identity          json.RawMessage `json:"identity"`
	Properties        json.RawMessage `json:"properties"`
}

// containerService starts every AKS operation name; an ignored record of
// another provider is not worth parsing its resource ID for.
const containerService = "microsoft.containerservice/"

func decodeRecord(i int, raw json.RawMessage) ExportRecord {
	rec := ExportRecord{Index: i, Raw: raw}
	sig := &rec.Signal
	sig.Schema, sig.Type = fleet.SchemaActivityExport, TypeActivityLogRecord
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		rec.Err = malformed("record is a JSON %s, want an object", jsonKind(raw))
		return rec
	}
	var f exportFields
	if err := json.Unmarshal(raw, &f); err != nil {
		rec.Err = fmt.Errorf("%w: record is not valid JSON: %w", ErrMalformed, clipped{err})
		return rec
	}
	var r reader
	act := fleet.Activity{
		OperationName: operationText(&r, "operationName", f.OperationName),
		ResourceID:    r.text("resourceId", f.ResourceID),
		Status:        fleet.NormaliseActivityStatus(cmp.Or(looseText(f.ResultType), looseText(f.ResultSignature))),
		CorrelationID: r.text("correlationId", f.CorrelationID),
		Path:          fleet.PathExport,
	}
	sig.Subject, sig.Time = act.ResourceID, looseTime(f.Time)
	if r.err != nil {
		rec.Err = r.err
		return rec
	}
	var identity, auth map[string]json.RawMessage
	if act.OperationName == "" {
		identity = looseObject(f.Identity)
		auth = looseObject(get(identity, "authorization"))
		act.OperationName = looseText(get(auth, "action"))
	}
	act.Operation = fleet.ClassifyOperation(act.OperationName)
	if act.Operation == "" {
		if len(act.OperationName) >= len(containerService) &&
			strings.EqualFold(act.OperationName[:len(containerService)], containerService) {
			ignore(sig, act)
		} else {
			sig.Kind, sig.Activity = fleet.KindIgnored, &act
		}
		return rec
	}

	if identity == nil {
		identity = looseObject(f.Identity)
		auth = looseObject(get(identity, "authorization"))
	}
	props := looseObject(f.Properties)
	// resourceId is often upper-cased; the scope and entity keep the real case.
	var field string
	act.ResourceID, field = exportResource(act.ResourceID,
		candidate{"identity.authorization.scope", looseText(get(auth, "scope"))},
		candidate{"properties.entity", looseText(get(props, "entity"))},
	)
	sig.Subject = act.ResourceID
	act.Actor, act.ActorType = actorOf(looseText(f.Caller), claimsOf(get(identity, "claims")),
		looseText(get(looseObject(get(auth, "evidence")), "principalType")))
	act.Message = readableMessage(get(props, "statusMessage"))
	if act.Message == "" {
		act.Message = readableMessage(f.ResultDescription)
	}
	act.DeliveryID = cmp.Or(looseText(f.EventDataID), looseText(get(props, "eventDataId")),
		looseText(get(props, "operationId")))

	stamp := r.text("time", f.Time)
	t, err := host.ParseTime(stamp)
	switch {
	case r.err != nil:
		rec.Err = r.err
		return rec
	case strings.TrimSpace(stamp) == "" || (err == nil && t.IsZero()):
		rec.Err = malformed("time is missing")
		return rec
	case err != nil:
		rec.Err = malformed("time %q is not an RFC 3339 time", clip(stamp, 64))
		return rec
	}
	sig.Time = t

	c, err := locate(&act, field)
	if err != nil {
		sig.Cluster, rec.Err = c, err
		return rec
	}
	sig.Cluster, sig.Kind, sig.Activity, sig.Pool = c, fleet.KindActivity, &act, act.Pool
	sig.Source = "/subscriptions/" + c.SubscriptionID
	sig.ID = fleet.ActivityID(act)
	return rec
}

// exportResource chooses the resource of a record: resourceId, or the first
// of the others that names the same resource in another case; the first
// present of the others when resourceId is missing.
func exportResource(resourceID string, others ...candidate) (id, field string) {
	if strings.TrimSpace(resourceID) == "" {
		return pickResource(others...)
	}
	for _, c := range others {
		if sameResource(c.id, resourceID) {
			return strings.TrimSpace(c.id), c.field
		}
	}
	return resourceID, "resourceId"
}

func sameResource(a, b string) bool {
	norm := func(s string) string { return strings.Trim(strings.TrimSpace(s), "/") }
	return norm(a) != "" && strings.EqualFold(norm(a), norm(b))
}
