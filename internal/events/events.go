// Package events turns the events upgradewatch receives through Event Grid — AKS
// system events, Azure Resource Notifications and the activity log's
// Microsoft.Resources.* events, in the Event Grid schema or the CloudEvents 1.0
// schema — into one domain type, fleet.Signal. The activity log's two other
// paths decode to the same signals: activity-log alerts (DecodeAlert, the
// common alert schema) and the diagnostic-settings export (SplitEventHub,
// DecodeExport).
//
// Decoding is strict where a wrong answer would corrupt state (event identity,
// time, the cluster and pool a signal is about) and tolerant where Azure is known
// to be loose: numbers sent as strings, timestamps without an offset, .NET zero
// sentinels, the polymorphic eventDetails of scheduled events, and CloudEvents
// attribute names in another case than the specification's (docs/inputs.md).
package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/eventgrid/azsystemevents"
	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
	"github.com/upgradewatch/upgradewatch/internal/host"
)

// ErrMalformed reports an event that cannot be decoded into a Signal. Retrying
// will not help: callers record the rejection and acknowledge the delivery.
var ErrMalformed = errors.New("malformed event")

// envelope is what both schemas have in common once decoded.
type envelope struct {
	id, typ, source, subject string
	time                     time.Time // zero when absent or the .NET zero sentinel
	timeField                string    // "eventTime" or "time", for messages
	data                     []byte
}

// handler fills the kind-specific part of sig from the event data.
type handler func(sig *fleet.Signal, env envelope) error

// handlers maps the lower-cased event type to its decoder; anything else is
// accepted as fleet.KindUnsupported.
var handlers = byLowerType(map[string]handler{
	azsystemevents.TypeContainerServiceNodePoolRollingStarted:                       rolling(fleet.KindRollingStarted),
	azsystemevents.TypeContainerServiceNodePoolRollingSucceeded:                     rolling(fleet.KindRollingSucceeded),
	azsystemevents.TypeContainerServiceNodePoolRollingFailed:                        rolling(fleet.KindRollingFailed),
	azsystemevents.TypeContainerServiceNewKubernetesVersionAvailable:                versionsAvailable,
	azsystemevents.TypeContainerServiceClusterSupportEnding:                         support(fleet.KindSupportEnding),
	azsystemevents.TypeContainerServiceClusterSupportEnded:                          support(fleet.KindSupportEnded),
	azsystemevents.TypeResourceNotificationsContainerServiceEventResourcesScheduled: scheduledEvent,
	TypeMaintenanceScheduledEventEmitted:                                            scheduledEvent,
	azsystemevents.TypeResourceNotificationsResourceManagementCreatedOrUpdated:      resourceCreatedOrUpdated,
	azsystemevents.TypeResourceNotificationsResourceManagementDeleted:               resourceDeleted,
	azsystemevents.TypeResourceWriteSuccess:                                         resourceActivity,
	azsystemevents.TypeResourceWriteFailure:                                         resourceActivity,
	azsystemevents.TypeResourceWriteCancel:                                          resourceActivity,
	azsystemevents.TypeResourceDeleteSuccess:                                        resourceActivity,
	azsystemevents.TypeResourceDeleteFailure:                                        resourceActivity,
	azsystemevents.TypeResourceDeleteCancel:                                         resourceActivity,
	azsystemevents.TypeResourceActionSuccess:                                        resourceActivity,
	azsystemevents.TypeResourceActionFailure:                                        resourceActivity,
	azsystemevents.TypeResourceActionCancel:                                         resourceActivity,
})

func byLowerType(in map[string]handler) map[string]handler {
	out := make(map[string]handler, len(in))
	for typ, h := range in {
		out[strings.ToLower(typ)] = h
	}
	return out
}

// TypeMaintenanceScheduledEventEmitted is the event type the first AKS
// Communication Manager documentation used for scheduled events. It carries the
// same data as azsystemevents.TypeResourceNotificationsContainerServiceEventResourcesScheduled.
const TypeMaintenanceScheduledEventEmitted = "Microsoft.ResourceNotifications.MaintenanceResources.ScheduledEventEmitted"

// arnPrefix starts every Azure Resource Notifications event type; their data
// carries operationalInfo.resourceEventTime, the fallback for a missing envelope time.
const arnPrefix = "microsoft.resourcenotifications."

// Decode turns one event — a JSON object in the CloudEvents 1.0 schema or the
// Event Grid schema, possibly JSON-encoded in a string — into a fleet.Signal.
//
// Event types upgradewatch does not act on are accepted with Kind
// fleet.KindUnsupported. Anything that cannot be decoded yields an error wrapping
// ErrMalformed (and fleet.ErrInvalidResourceID when the cluster ID is at fault)
// together with the partially filled Signal — ID, Type, Source and Subject as far
// as they could be read, Kind empty — so the caller can record the rejection.
func Decode(raw []byte) (fleet.Signal, error) {
	var sig fleet.Signal
	raw = host.Unwrap(raw)
	top, err := topLevel(raw)
	if err != nil {
		return sig, err
	}

	var env envelope
	switch {
	case hasFold(top, "specversion"):
		sig.Schema = fleet.SchemaCloudEvents
		if top, raw, err = lowerAttributes(top, raw); err != nil {
			partial(&sig, top, "type", "source")
			return sig, err
		}
		partial(&sig, top, "type", "source")
		env, err = decodeCloudEvent(raw, top)
	case has(top, "eventType"):
		sig.Schema = fleet.SchemaEventGrid
		partial(&sig, top, "eventType", "topic")
		env, err = decodeEventGrid(raw, top)
	default:
		partial(&sig, top, "type", "source")
		return sig, malformed("neither specversion (CloudEvents) nor eventType (Event Grid) is present")
	}
	if err != nil {
		return sig, err
	}
	sig.ID, sig.Type, sig.Source, sig.Subject, sig.Time = env.id, env.typ, env.source, env.subject, env.time

	h, ok := handlers[strings.ToLower(sig.Type)]
	if !ok {
		h = unsupported
	}
	out := sig
	err = h(&out, env)
	if err == nil && out.Time.IsZero() {
		err = missingTime(out.Type, env.timeField)
	}
	if err != nil {
		sig.Cluster, sig.Time = out.Cluster, out.Time
		return sig, err
	}
	return out, nil
}

func missingTime(typ, field string) error {
	if strings.HasPrefix(strings.ToLower(typ), arnPrefix) {
		return malformed("%s is missing and so is data.operationalInfo.resourceEventTime", field)
	}
	return malformed("%s is missing", field)
}

// topLevel checks that raw is one JSON object and returns its members.
func topLevel(raw []byte) (map[string]json.RawMessage, error) {
	if len(raw) == 0 {
		return nil, malformed("event is empty")
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(raw, &top); err != nil {
		if json.Valid(raw) {
			return nil, malformed("event is a JSON %s, want an object", jsonKind(raw))
		}
		return nil, fmt.Errorf("%w: event is not valid JSON: %w", ErrMalformed, clipped{err})
	}
	if top == nil {
		return nil, malformed("event is JSON null, want an object")
	}
	return top, nil
}

func has(top map[string]json.RawMessage, key string) bool {
	_, ok := top[key]
	return ok
}

// hasFold reports whether top has a member named key in any case.
func hasFold(top map[string]json.RawMessage, key string) bool {
	for name := range top {
		if strings.EqualFold(name, key) {
			return true
		}
	}
	return false
}

// lowerAttributes makes the member names of a CloudEvent lower case, as the
// specification spells every attribute: people paste samples that do not
// (Azure's own NewKubernetesVersionAvailable sample has "specVersion"), and
// the SDK matches names exactly. Two spellings of one attribute are taken as
// one when their values are the same, and refused when they differ. raw is
// re-encoded only when a name changed.
func lowerAttributes(top map[string]json.RawMessage, raw []byte) (map[string]json.RawMessage, []byte, error) {
	names := make([]string, 0, len(top))
	changed := false
	for name := range top {
		names = append(names, name)
		changed = changed || name != strings.ToLower(name)
	}
	if !changed {
		return top, raw, nil
	}
	sort.Strings(names) // the message names the same pair every time
	out := make(map[string]json.RawMessage, len(top))
	spelled := make(map[string]string, len(top))
	var conflict error
	for _, name := range names {
		lower := strings.ToLower(name)
		if prev, ok := out[lower]; ok {
			if !sameJSON(prev, top[name]) && conflict == nil {
				conflict = malformed("attribute %q is sent twice, as %q and %q, with different values",
					clip(lower, 40), clip(spelled[lower], 40), clip(name, 40))
			}
			continue
		}
		out[lower], spelled[lower] = top[name], name
	}
	if conflict != nil {
		return out, raw, conflict
	}
	b, err := json.Marshal(out)
	if err != nil {
		return out, raw, fmt.Errorf("%w: CloudEvents envelope: %w", ErrMalformed, clipped{err})
	}
	return out, b, nil
}

// sameJSON reports whether two JSON values are the same text once compacted.
func sameJSON(a, b json.RawMessage) bool {
	var ca, cb bytes.Buffer
	if json.Compact(&ca, a) != nil || json.Compact(&cb, b) != nil {
		return bytes.Equal(a, b)
	}
	return bytes.Equal(ca.Bytes(), cb.Bytes())
}

// partial reads the identity fields leniently, so that a rejected event can
// still be recorded under its id and type.
func partial(sig *fleet.Signal, top map[string]json.RawMessage, typeKey, sourceKey string) {
	var r reader // errors ignored: this is best effort
	sig.ID = r.text("id", top["id"])
	sig.Type = r.text(typeKey, top[typeKey])
	sig.Source = r.text(sourceKey, top[sourceKey])
	sig.Subject = r.text("subject", top["subject"])
}

// decodeCloudEvent decodes and validates a CloudEvents 1.0 envelope with the
// CloudEvents SDK. source is taken as sent (from top), not from the SDK: the
// SDK parses it as a URI reference and gives it back percent-escaped
// (rg-münchen-prod becomes rg-m%C3%BCnchen-prod), so it would neither name the
// same cluster as the Event Grid topic nor quote what was sent.
func decodeCloudEvent(raw []byte, top map[string]json.RawMessage) (env envelope, err error) {
	env.timeField = "time"
	defer func() {
		// The SDK's hand-written parser can panic on some hostile inputs (for
		// example a numeric data_base64); that is a malformed event, not a crash.
		if r := recover(); r != nil {
			env = envelope{timeField: "time"}
			err = malformed("the CloudEvents SDK failed on the envelope: %s", clip(fmt.Sprint(r), 100))
		}
	}()
	e := event.New()
	if err := json.Unmarshal(raw, &e); err != nil {
		return env, fmt.Errorf("%w: CloudEvents envelope: %w", ErrMalformed, clipped{err})
	}
	if v := e.SpecVersion(); v != event.CloudEventsVersionV1 {
		return env, malformed("specversion %q is not supported, want %q", clip(v, 20), event.CloudEventsVersionV1)
	}
	if err := e.Validate(); err != nil {
		return env, fmt.Errorf("%w: CloudEvents envelope is invalid: %w", ErrMalformed, clipped{err})
	}
	var r reader
	env.id, env.typ, env.source, env.subject = e.ID(), e.Type(), r.text("source", top["source"]), e.Subject()
	if r.err != nil || strings.TrimSpace(env.source) == "" {
		env.source = e.Source() // cannot happen once the SDK validated source; never leave it empty
	}
	if t := e.Time(); !t.IsZero() {
		env.time = t.UTC()
	}
	env.data = e.Data()
	return env, nil
}

// decodeEventGrid decodes an Event Grid envelope with the azsystemevents type,
// falling back to reading the members one by one when the SDK's stricter typing
// fails (a numeric dataVersion, a date-only eventTime, …).
func decodeEventGrid(raw []byte, top map[string]json.RawMessage) (envelope, error) {
	env := envelope{timeField: "eventTime"}
	var ev azsystemevents.EventGridEvent
	if json.Unmarshal(raw, &ev) == nil {
		env.id, env.typ, env.source, env.subject = deref(ev.ID), deref(ev.EventType), deref(ev.Topic), deref(ev.Subject)
		if ev.EventTime != nil {
			env.time = ev.EventTime.UTC()
		}
		env.data, _ = ev.Data.([]byte)
	} else {
		var r reader
		env.id = r.text("id", top["id"])
		env.typ = r.text("eventType", top["eventType"])
		env.source = r.text("topic", top["topic"])
		env.subject = r.text("subject", top["subject"])
		if s := r.text("eventTime", top["eventTime"]); s != "" {
			t, err := host.ParseTime(s)
			if err != nil {
				return env, malformed("eventTime %q is not an RFC 3339 time", clip(s, 64))
			}
			env.time = t
		}
		if r.err != nil {
			return env, r.err
		}
		env.data = top["data"]
	}
	switch {
	case strings.TrimSpace(env.id) == "":
		return env, malformed("id is missing")
	case strings.TrimSpace(env.typ) == "":
		return env, malformed("eventType is missing")
	case strings.TrimSpace(env.subject) == "":
		return env, malformed("subject is missing")
	}
	return env, nil
}

// decodeData unmarshals the event data, which must be a JSON object, into v.
func decodeData(data []byte, v any) error {
	data = host.Unwrap(data)
	if len(data) == 0 || string(data) == "null" {
		return malformed("data is missing")
	}
	if data[0] != '{' {
		return malformed("data is a JSON %s, want an object", jsonKind(data))
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%w: data does not fit the event type: %w", ErrMalformed, clipped{err})
	}
	return nil
}

// unsupported accepts an event upgradewatch does not act on, attaching the
// cluster when one can be found.
func unsupported(sig *fleet.Signal, env envelope) error {
	p := probeARN(env.data)
	for _, id := range []string{sig.Source, sig.Subject, p.id} {
		if c, _, err := fleet.ParseResourceID(id); err == nil {
			sig.Cluster = c
			break
		}
	}
	if sig.Time.IsZero() && strings.HasPrefix(strings.ToLower(sig.Type), arnPrefix) {
		sig.Time = p.eventTime
	}
	sig.Kind = fleet.KindUnsupported
	return nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
