package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"net/textproto"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/binding/format"
	"github.com/cloudevents/sdk-go/v2/binding/spec"
	"github.com/cloudevents/sdk-go/v2/event"
)

// Modes of the CloudEvents HTTP binding.
const (
	modeBinary     = "binary"
	modeStructured = "structured"
	modeBatch      = "batch"
)

// ceHeaders maps attributes to headers in binary mode exactly as sdk-go's
// protocol/http does (datacontenttype is Content-Type, the others ce-<name>).
// That package is not imported: it pulls in go.uber.org/zap, which this
// module does not require.
var ceHeaders = spec.WithPrefixMatchExact(ceHeader, "Ce-")

// ceHeader is the header of an attribute or extension in binary mode.
func ceHeader(name string) string {
	if name == "datacontenttype" {
		return "Content-Type"
	}
	return textproto.CanonicalMIMEHeaderKey("ce-" + name)
}

// requestMessage is a received HTTP request as a binding.MessageReader, so
// that binding.ToEvent decodes it as sdk-go's own HTTP receiver would.
type requestMessage struct {
	header  http.Header
	body    []byte
	format  format.Format // structured or batch mode: from Content-Type
	version spec.Version  // binary mode: from ce-specversion
}

var (
	_ binding.MessageReader         = (*requestMessage)(nil)
	_ binding.MessageMetadataReader = (*requestMessage)(nil) // binding needs it in binary mode
)

func newRequestMessage(h http.Header, body []byte) *requestMessage {
	m := &requestMessage{header: h, body: body}
	// As in protocol/http, an event format in Content-Type wins over ce-*
	// headers.
	if m.format = format.Lookup(h.Get("Content-Type")); m.format == nil {
		m.version = ceHeaders.Version(h.Get(ceHeaders.PrefixedSpecVersionName()))
	}
	return m
}

func (m *requestMessage) ReadEncoding() binding.Encoding {
	switch {
	case m.version != nil:
		return binding.EncodingBinary
	case m.format == format.JSONBatch:
		return binding.EncodingBatch
	case m.format != nil:
		return binding.EncodingStructured
	}
	return binding.EncodingUnknown
}

func (m *requestMessage) ReadStructured(ctx context.Context, w binding.StructuredWriter) error {
	if m.format == nil || m.format == format.JSONBatch {
		return binding.ErrNotStructured
	}
	return w.SetStructuredEvent(ctx, m.format, bytes.NewReader(m.body))
}

func (m *requestMessage) ReadBinary(_ context.Context, w binding.BinaryWriter) error {
	if m.version == nil {
		return binding.ErrNotBinary
	}
	// Sorted, so that of several bad headers the same one is reported each time.
	for _, k := range slices.Sorted(maps.Keys(m.header)) {
		v := m.header[k]
		var err error
		if a := m.version.Attribute(k); a != nil {
			err = w.SetAttribute(a, v[0])
		} else if name, ok := strings.CutPrefix(k, "Ce-"); ok {
			err = w.SetExtension(strings.ToLower(name), v[0])
		}
		if err != nil {
			return fmt.Errorf("header %s: %w", k, err)
		}
	}
	if len(m.body) > 0 {
		return w.SetData(bytes.NewReader(m.body))
	}
	return nil
}

func (m *requestMessage) GetAttribute(k spec.Kind) (spec.Attribute, any) {
	if m.version == nil {
		return nil, nil
	}
	a := m.version.AttributeFromKind(k)
	if a == nil {
		return nil, nil
	}
	if v := m.header.Values(ceHeader(a.Name())); len(v) > 0 {
		return a, v[0]
	}
	return a, nil
}

func (m *requestMessage) GetExtension(name string) any {
	if v := m.header.Values(ceHeader(name)); len(v) > 0 {
		return v[0]
	}
	return nil
}

// decodeCloudEvents decodes a request in any mode of the CloudEvents HTTP
// binding and validates each event. Its errors are for the sender.
func decodeCloudEvents(ctx context.Context, h http.Header, body []byte) ([]event.Event, string, error) {
	m := newRequestMessage(h, body)
	var (
		evs  []event.Event
		mode string
	)
	switch m.ReadEncoding() {
	case binding.EncodingBinary, binding.EncodingStructured:
		mode = modeStructured
		if m.version != nil {
			mode = modeBinary
		}
		e, err := binding.ToEvent(ctx, m)
		if err != nil {
			return nil, "", fmt.Errorf("%s-mode CloudEvent: %w", mode, err)
		}
		evs = []event.Event{*e}
	case binding.EncodingBatch:
		mode = modeBatch
		var err error
		if evs, err = binding.ToEvents(ctx, m, bytes.NewReader(body)); err != nil {
			return nil, "", fmt.Errorf("CloudEvents batch: %w", err)
		}
	default:
		return nil, "", notCloudEvent(h)
	}
	for i := range evs {
		if err := check(&evs[i]); err != nil {
			if mode == modeBatch {
				return nil, "", fmt.Errorf("CloudEvents batch: event %d: %w", i, err)
			}
			return nil, "", fmt.Errorf("%s-mode CloudEvent: %w", mode, err)
		}
	}
	return evs, mode, nil
}

// notCloudEvent says why a request is in no mode of the binding.
func notCloudEvent(h http.Header) error {
	if v := h.Get("Ce-Specversion"); v != "" {
		return fmt.Errorf("unsupported ce-specversion %q: want 1.0 (or 0.3)", v)
	}
	ct := h.Get("Content-Type")
	if mt, _, _ := mime.ParseMediaType(ct); format.IsFormat(mt) {
		return fmt.Errorf("unsupported event format %q: want %s or %s", mt, event.ApplicationCloudEventsJSON, event.ApplicationCloudEventsBatchJSON)
	}
	return fmt.Errorf("not a CloudEvent: binary mode needs a ce-specversion header, structured mode Content-Type %s (got Content-Type %q)",
		event.ApplicationCloudEventsJSON, ct)
}

// check validates e, and its data when it claims to be JSON: sdk-go would
// otherwise write the bytes verbatim into the event's JSON form.
func check(e *event.Event) error {
	if err := e.Validate(); err != nil {
		var ve event.ValidationError
		if errors.As(err, &ve) { // a map: sort it for a stable message
			var msgs []string
			for _, k := range slices.Sorted(maps.Keys(ve)) {
				msgs = append(msgs, k+": "+ve[k].Error())
			}
			return fmt.Errorf("invalid: %s", strings.Join(msgs, "; "))
		}
		return fmt.Errorf("invalid: %w", err)
	}
	if data := e.Data(); len(data) > 0 && !e.DataBase64 && jsonData(e.DataContentType()) && (!json.Valid(data) || !utf8.Valid(data)) {
		ct := e.DataContentType()
		if ct == "" {
			ct = "none, meaning JSON"
		}
		return fmt.Errorf("data is not valid UTF-8 JSON (datacontenttype %s)", ct)
	}
	return nil
}

// jsonData reports whether sdk-go treats data of this content type as JSON.
func jsonData(contentType string) bool {
	mt, _, _ := strings.Cut(contentType, ";")
	switch strings.ToLower(strings.TrimSpace(mt)) {
	case "", event.ApplicationJSON, event.TextJSON, event.ApplicationCloudEventsJSON, event.ApplicationCloudEventsBatchJSON:
		return true
	}
	return false
}

// The parts of an upgradewatch notification's data a line shows (the rest is
// in GET /events). Other producers' data simply leaves them empty.
type ceData struct {
	Code        string `json:"code"`
	Severity    string `json:"severity"`
	Summary     string `json:"summary"`
	Remediation *struct {
		Action string `json:"action"`
		DryRun bool   `json:"dryRun"`
	} `json:"remediation"`
}

// ceLine describes e for a person.
func ceLine(e *event.Event) string {
	var d ceData
	if jsonData(e.DataContentType()) {
		_ = json.Unmarshal(e.Data(), &d) // not an object: nothing to show
	}
	parts := []string{"cloudevent", e.Type()}
	for _, s := range []string{d.Code, d.Severity} {
		if s != "" {
			parts = append(parts, s)
		}
	}
	if r := d.Remediation; r != nil {
		parts = append(parts, "action="+r.Action, fmt.Sprintf("dryRun=%t", r.DryRun))
	}
	if e.Subject() != "" {
		parts = append(parts, shortID(e.Subject()))
	} else {
		parts = append(parts, e.Source())
	}
	line := oneLine(strings.Join(parts, " "), 400)
	if d.Summary != "" {
		line += " — " + oneLine(d.Summary, 200)
	}
	return line
}

// shortID abbreviates an ARM ID to what tells clusters apart:
// /subscriptions/…/managedClusters/aks-prod/agentPools/system.
func shortID(id string) string {
	if !strings.HasPrefix(strings.ToLower(id), "/subscriptions/") {
		return id
	}
	i := strings.Index(strings.ToLower(id), "/providers/")
	if i < 0 {
		return id
	}
	_, rest, ok := strings.Cut(id[i+len("/providers/"):], "/") // drop the namespace
	if !ok || rest == "" {
		return id
	}
	return "/subscriptions/…/" + rest
}

// The Teams message TeamsSink posts: a "message" with Adaptive Card
// attachments. Only what is checked or shown is modelled.
type teamsMessage struct {
	Type        string `json:"type"`
	Attachments []struct {
		ContentType string          `json:"contentType"`
		Content     json.RawMessage `json:"content"`
	} `json:"attachments"`
}

type adaptiveCard struct {
	Type string `json:"type"`
	Body []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	} `json:"body"`
}

const adaptiveCardType = "application/vnd.microsoft.card.adaptive"

// decodeTeams checks body is a Teams message carrying Adaptive Cards and
// returns the text of the first card's first TextBlock.
func decodeTeams(body []byte) (string, error) {
	var m teamsMessage
	if err := strictJSON(body, &m); err != nil {
		return "", fmt.Errorf("not a Teams message: %w", err)
	}
	if m.Type != "message" {
		return "", fmt.Errorf("not a Teams message: type %q, want \"message\"", m.Type)
	}
	if len(m.Attachments) == 0 {
		return "", errors.New("not a Teams message: no attachments")
	}
	var first string
	for i, a := range m.Attachments {
		if a.ContentType != adaptiveCardType {
			return "", fmt.Errorf("bad Teams message: attachment %d: contentType %q, want %s", i, a.ContentType, adaptiveCardType)
		}
		var card adaptiveCard
		if err := strictJSON(a.Content, &card); err != nil {
			return "", fmt.Errorf("bad Teams message: attachment %d: content: %w", i, err)
		}
		if card.Type != "AdaptiveCard" || len(card.Body) == 0 {
			return "", fmt.Errorf("bad Teams message: attachment %d: content is not an Adaptive Card with a body", i)
		}
		for _, el := range card.Body {
			if el.Type == "TextBlock" && first == "" {
				first = el.Text
			}
		}
	}
	return first, nil
}

// The Slack incoming-webhook message SlackSink posts.
type slackMessage struct {
	Text   string `json:"text"`
	Blocks []struct {
		Type string `json:"type"`
	} `json:"blocks"`
}

// decodeSlack checks body is a Slack message (text, blocks or both; every
// block typed) and returns its text.
func decodeSlack(body []byte) (string, error) {
	var m slackMessage
	if err := strictJSON(body, &m); err != nil {
		return "", fmt.Errorf("not a Slack message: %w", err)
	}
	if m.Text == "" && len(m.Blocks) == 0 {
		return "", errors.New("not a Slack message: neither text nor blocks")
	}
	for i, b := range m.Blocks {
		if b.Type == "" {
			return "", fmt.Errorf("bad Slack message: block %d has no type", i)
		}
	}
	return m.Text, nil
}

// strictJSON decodes one JSON object: not null, nothing after it.
func strictJSON(b []byte, v any) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '{' {
		return errors.New("want a JSON object")
	}
	if !utf8.Valid(b) { // kept as received: it must stay valid JSON text
		return errors.New("not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("trailing data after the JSON object")
	}
	return nil
}
