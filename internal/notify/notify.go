// Package notify turns one notification step — a finding opening, being
// reminded of or resolving, or a remediation being planned, applied or
// failing — into outgoing messages, and sends them to sinks.
//
// The pieces:
//   - Notification is the step, with everything a reader needs; the caller
//     builds it (with a deterministic ID) from a fleet.Transition or a
//     remediation.
//   - Notification.CloudEvent is the machine form: a CloudEvents 1.0 event
//     whose data is the Data JSON object documented in docs/notifications.md.
//   - TeamsCard and SlackMessage are the forms for people: what happened,
//     where, since when, and what to do (a hint per finding code).
//     TeamsGroupCard and SlackGroupMessage announce a Group — the steps of
//     one cluster in one dispatch window — in one message, which the chat
//     sinks send as GroupSenders.
//   - Sink sends one notification somewhere. WebhookSink (CloudEvents HTTP
//     binding, binary mode), EventGridSink (azeventgrid), TeamsSink and
//     SlackSink (the rendered payloads) each make one bounded attempt and
//     classify failures: errors wrapping ErrPermanent will not succeed on
//     retry; all others may. Retrying, backoff and exactly-once bookkeeping
//     belong to the caller's outbox.
//   - NewSinks builds the configured sinks from a Config, which the command
//     parses from the environment (this package reads none).
//
// Webhook URLs carry their secret in the path or the query, so sinks never
// put a URL in an error beyond scheme://host, and follow no redirects.
package notify

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
)

// Notification types: the CloudEvents type attribute. They are stable: Event
// Grid subscription filters match on them.
const (
	TypeFindingOpened      = "io.upgradewatch.finding.opened"
	TypeFindingReminded    = "io.upgradewatch.finding.reminded"
	TypeFindingResolved    = "io.upgradewatch.finding.resolved"
	TypeRemediationPlanned = "io.upgradewatch.remediation.planned"
	TypeRemediationApplied = "io.upgradewatch.remediation.applied"
	TypeRemediationFailed  = "io.upgradewatch.remediation.failed"
)

// ExtensionGroupKey is the CloudEvents extension attribute naming the group
// a step was announced in to people (Notification.GroupKey).
const ExtensionGroupKey = "groupkey"

// DefaultSource is the CloudEvents source when none is configured (see
// Options.Source; the app's URL is a better one).
const DefaultSource = "/upgradewatch"

// Notification is one step to announce.
type Notification struct {
	// ID is stable for the step (the caller derives it, e.g. from the cluster,
	// finding key, type and time) so that a resend is recognisably the same
	// event: it becomes the CloudEvent id.
	ID   string
	Type string // one of the Type constants
	Time time.Time

	Cluster fleet.ClusterID
	// Subject is the ARM ID of what the step is about; SubjectFor(Cluster,
	// Target) when empty.
	Subject string

	Code     string // a fleet finding code
	Severity string // a fleet severity
	Target   string // the finding's target: "cluster", "pool/<name>", …
	Summary  string // one line, for people
	Evidence json.RawMessage

	OpenedAt   time.Time
	ResolvedAt time.Time
	Reminder   int // the n-th reminder (TypeFindingReminded)
	// EscalatedFrom is the severity before an escalation: a
	// TypeFindingReminded sent because an open finding got more severe.
	EscalatedFrom string

	// StatusURL links to the Status API for the cluster.
	StatusURL string

	// GroupKey names the group the step belongs to (GroupKey): the
	// CloudEvents extension attribute groupkey when set.
	GroupKey string

	// Remediation is set for the remediation types.
	Remediation *RemediationStep
}

// RemediationStep says what upgradewatch plans, did, or failed to do. Its JSON
// form is the "remediation" member of Data.
type RemediationStep struct {
	Action string `json:"action"`           // e.g. "upgradeNodeImageVersion"
	DryRun bool   `json:"dryRun"`           // planned only; ARM not called
	Detail string `json:"detail,omitempty"` // for people: what exactly
	Error  string `json:"error,omitempty"`  // TypeRemediationFailed
}

// Data is the CloudEvent data (datacontenttype application/json). Empty
// members are omitted; dryRun is always present in remediation.
type Data struct {
	Cluster    string          `json:"cluster"` // the cluster's ARM ID
	Code       string          `json:"code,omitempty"`
	Severity   string          `json:"severity,omitempty"`
	Target     string          `json:"target,omitempty"`
	Summary    string          `json:"summary,omitempty"`
	Evidence   json.RawMessage `json:"evidence,omitempty"` // a JSON object
	OpenedAt   time.Time       `json:"openedAt,omitzero"`
	ResolvedAt time.Time       `json:"resolvedAt,omitzero"`
	Reminder   int             `json:"reminder,omitempty"`
	// EscalatedFrom: see Notification.EscalatedFrom.
	EscalatedFrom string           `json:"escalatedFrom,omitempty"`
	StatusURL     string           `json:"statusUrl,omitempty"`
	Remediation   *RemediationStep `json:"remediation,omitempty"`
}

// SubjectFor is the ARM ID a target is about: the pool for "pool/<name>"
// (and "pool/<name>/…"), else the cluster.
func SubjectFor(c fleet.ClusterID, target string) string {
	id := c.ResourceID()
	if rest, ok := strings.CutPrefix(target, "pool/"); ok {
		pool, _, _ := strings.Cut(rest, "/")
		if fleet.ValidPoolName(pool) { // never splice anything else into an ARM ID
			return id + "/agentPools/" + pool
		}
	}
	return id
}

func isFindingType(t string) bool {
	return t == TypeFindingOpened || t == TypeFindingReminded || t == TypeFindingResolved
}

func isRemediationType(t string) bool {
	return t == TypeRemediationPlanned || t == TypeRemediationApplied || t == TypeRemediationFailed
}

// Validate reports what makes n unsendable: retrying it will not help.
func (n Notification) Validate() error {
	var errs []error
	if n.ID == "" {
		errs = append(errs, errors.New("no id"))
	}
	switch {
	case isFindingType(n.Type):
		if n.Code == "" {
			errs = append(errs, fmt.Errorf("%s without a code", n.Type))
		}
	case isRemediationType(n.Type):
		if n.Remediation == nil || n.Remediation.Action == "" {
			errs = append(errs, fmt.Errorf("%s without a remediation action", n.Type))
		}
	default:
		errs = append(errs, fmt.Errorf("unknown type %q", n.Type))
	}
	if n.Time.IsZero() {
		errs = append(errs, errors.New("no time"))
	}
	if n.Cluster.IsZero() {
		errs = append(errs, errors.New("no cluster"))
	}
	if _, err := evidence(n.Evidence); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("notification %q: %w", n.ID, err)
	}
	return nil
}

// evidence returns the evidence re-encoded compactly (keys sorted, numbers
// kept as written, no HTML escaping: fleet's json.Marshal writes "<" as
// "\u003c", which people should not have to read), or nil when there is none
// ("{}" and "null" included).
func evidence(raw json.RawMessage) (json.RawMessage, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	if !utf8.Valid(raw) {
		return nil, errors.New("evidence is not UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var obj map[string]any
	if err := dec.Decode(&obj); err != nil {
		return nil, fmt.Errorf("evidence is not a JSON object: %w", err)
	}
	if dec.More() {
		return nil, errors.New("evidence is not a JSON object: trailing data")
	}
	if len(obj) == 0 {
		return nil, nil
	}
	b, err := marshal(obj)
	if err != nil {
		return nil, fmt.Errorf("evidence: %w", err)
	}
	return b, nil
}

// Data returns the CloudEvent data of n.
func (n Notification) Data() (Data, error) {
	if err := n.Validate(); err != nil {
		return Data{}, err
	}
	ev, _ := evidence(n.Evidence) // validated
	d := Data{
		Cluster:       n.Cluster.ResourceID(),
		Code:          n.Code,
		Severity:      n.Severity,
		Target:        n.Target,
		Summary:       n.Summary,
		Evidence:      ev,
		OpenedAt:      n.OpenedAt.UTC(),
		ResolvedAt:    n.ResolvedAt.UTC(),
		Reminder:      n.Reminder,
		EscalatedFrom: n.EscalatedFrom,
		StatusURL:     n.StatusURL,
	}
	if n.Remediation != nil {
		r := *n.Remediation
		d.Remediation = &r
	}
	return d, nil
}

// CloudEvent returns n as a CloudEvents 1.0 event (event.Event is sdk-go's
// cloudevents.Event) from source (DefaultSource when empty): id n.ID, subject
// the cluster's or pool's ARM ID, data the JSON form of Data. The event is
// validated.
func (n Notification) CloudEvent(source string) (event.Event, error) {
	d, err := n.Data()
	if err != nil {
		return event.Event{}, err
	}
	body, err := marshal(d)
	if err != nil {
		return event.Event{}, fmt.Errorf("notification %q: %w", n.ID, err)
	}
	e := event.New(event.CloudEventsVersionV1)
	e.SetID(n.ID)
	e.SetType(n.Type)
	e.SetSource(cmp.Or(source, DefaultSource))
	e.SetSubject(cmp.Or(n.Subject, SubjectFor(n.Cluster, n.Target)))
	e.SetTime(n.Time.UTC())
	e.SetDataContentType(event.ApplicationJSON)
	if n.GroupKey != "" {
		e.SetExtension(ExtensionGroupKey, n.GroupKey)
	}
	// Set the bytes directly: SetData would base64 a []byte, and json.Marshal
	// would HTML-escape a json.RawMessage.
	e.DataEncoded, e.DataBase64 = body, false
	if err := e.Validate(); err != nil {
		return event.Event{}, fmt.Errorf("notification %q: %w", n.ID, err)
	}
	return e, nil
}

// marshal is json.Marshal without HTML escaping: the payloads are JSON read by
// programs and chat services, not embedded in HTML, and "<" reads better than
// "\u003c" in a log or a golden file.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
