package notify

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/binding/spec"
	"github.com/cloudevents/sdk-go/v2/types"
)

// WebhookSink posts notifications as CloudEvents to any HTTP endpoint, in the
// CloudEvents HTTP binding's binary mode: the attributes are ce-* headers,
// Content-Type is application/json and the body is the Data object itself, so
// a receiver that knows nothing of CloudEvents still gets plain JSON. (Binary
// is also sdk-go's default.)
//
// The request is written by sdk-go's binding package, the same encoder its
// HTTP protocol uses. The protocol/http client itself is not used: it pulls in
// go.uber.org/zap, which this module does not require.
type WebhookSink struct {
	name    string
	dest    destination
	client  *http.Client
	timeout time.Duration
	source  string
}

var _ Sink = (*WebhookSink)(nil)

// NewWebhookSink returns a sink posting to rawURL (https, or http to localhost).
// Its error does not repeat the URL, which may hold a secret.
func NewWebhookSink(rawURL string, opts Options) (*WebhookSink, error) {
	d, err := parseDestination(rawURL)
	if err != nil {
		return nil, fmt.Errorf("webhook URL: %w", err)
	}
	return &WebhookSink{name: opts.name("webhook"), dest: d, client: opts.client(), timeout: opts.timeout(), source: opts.source()}, nil
}

// Name is "webhook" unless Options.Name said otherwise.
func (s *WebhookSink) Name() string { return s.name }

// Send posts n as a binary-mode CloudEvent. Any 2xx acknowledges it; 408, 429
// and 5xx are transient, other 4xx and any 3xx (not followed) permanent.
func (s *WebhookSink) Send(ctx context.Context, n Notification) error {
	e, err := n.CloudEvent(s.source)
	if err != nil {
		return invalid("webhook", err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.dest.url.String(), nil)
	if err != nil {
		return s.dest.transportError("webhook", err)
	}
	if err := binding.ToMessage(&e).ReadBinary(ctx, (*binaryRequest)(req)); err != nil {
		return invalid("webhook", err)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return s.dest.transportError("webhook", err)
	}
	snippet := readSnippet(resp.Body)
	if resp.StatusCode/100 != 2 {
		return s.dest.answerError("webhook", resp, snippet)
	}
	return nil
}

// binaryRequest writes a CloudEvent into an HTTP request in binary mode, as
// sdk-go's protocol/http does: each attribute a ce-<name> header (its
// canonical form), datacontenttype the Content-Type, data the body.
type binaryRequest http.Request

var _ binding.BinaryWriter = (*binaryRequest)(nil)

func (r *binaryRequest) Start(context.Context) error { return nil }
func (r *binaryRequest) End(context.Context) error   { return nil }

func (r *binaryRequest) SetAttribute(a spec.Attribute, value any) error {
	return r.set(attributeHeader(a), value)
}

func (r *binaryRequest) SetExtension(name string, value any) error {
	return r.set(textproto.CanonicalMIMEHeaderKey("ce-"+name), value)
}

func (r *binaryRequest) set(header string, value any) error {
	if value == nil {
		r.Header.Del(header)
		return nil
	}
	s, err := types.Format(value)
	if err != nil {
		return err
	}
	r.Header.Set(header, s)
	return nil
}

func (r *binaryRequest) SetData(data io.Reader) error {
	b, err := io.ReadAll(data)
	if err != nil {
		return err
	}
	r.Body = io.NopCloser(bytes.NewReader(b))
	r.ContentLength = int64(len(b))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	return nil
}

func attributeHeader(a spec.Attribute) string {
	if a.Kind() == spec.DataContentType {
		return "Content-Type"
	}
	return textproto.CanonicalMIMEHeaderKey("ce-" + a.Name())
}
