package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/messaging"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/messaging/eventgrid/azeventgrid"
)

// EventGridSink publishes notifications as CloudEvents to an Event Grid topic
// (a custom topic whose input schema is CloudEvents v1.0), authenticated by
// Microsoft Entra ID (the app's managed identity needs the "EventGrid Data
// Sender" role on the topic) or by a topic access key.
type EventGridSink struct {
	name    string
	client  *azeventgrid.Client
	dest    destination
	source  string
	timeout time.Duration
}

var _ Sink = (*EventGridSink)(nil)

// NewEventGridSink returns a sink publishing to the topic endpoint
// ("https://<topic>.<region>-1.eventgrid.azure.net/api/events"; a bare host
// gets /api/events) with an Entra ID credential, e.g. a managed identity.
func NewEventGridSink(endpoint string, cred azcore.TokenCredential, opts Options) (*EventGridSink, error) {
	if cred == nil {
		return nil, errors.New("event grid: no credential")
	}
	return newEventGridSink(endpoint, opts, func(ep string, o *azeventgrid.ClientOptions) (*azeventgrid.Client, error) {
		return azeventgrid.NewClient(ep, cred, o)
	})
}

// NewEventGridSinkWithKey is NewEventGridSink authenticated by a topic access
// key (sent as the aeg-sas-key header).
func NewEventGridSinkWithKey(endpoint string, key *azcore.KeyCredential, opts Options) (*EventGridSink, error) {
	if key == nil {
		return nil, errors.New("event grid: no key")
	}
	return newEventGridSink(endpoint, opts, func(ep string, o *azeventgrid.ClientOptions) (*azeventgrid.Client, error) {
		return azeventgrid.NewClientWithSharedKeyCredential(ep, key, o)
	})
}

func newEventGridSink(endpoint string, opts Options, newClient func(string, *azeventgrid.ClientOptions) (*azeventgrid.Client, error)) (*EventGridSink, error) {
	d, err := parseDestination(endpoint)
	if err != nil {
		return nil, fmt.Errorf("event grid endpoint: %w", err)
	}
	if p := strings.TrimSuffix(d.url.Path, "/"); p == "" {
		u := *d.url
		u.Path = "/api/events"
		d.url = &u
		d.redacted = redact(&u)
	}
	co := &azeventgrid.ClientOptions{ClientOptions: azcore.ClientOptions{
		Transport: opts.client(),
		// One attempt per Send: the caller's outbox retries with backoff, and
		// the SDK's retries (up to a minute apart) would blow the timeout.
		Retry: policy.RetryOptions{MaxRetries: -1},
		// The SDK refuses to send a credential over http; parseDestination
		// allows http only to a loopback address (a local emulator).
		InsecureAllowCredentialWithHTTP: d.url.Scheme == "http",
	}}
	client, err := newClient(d.url.String(), co)
	if err != nil {
		return nil, fmt.Errorf("event grid client: %w", err)
	}
	return &EventGridSink{name: opts.name("eventgrid"), client: client, dest: d, source: opts.source(), timeout: opts.timeout()}, nil
}

// Name is "eventgrid" unless Options.Name said otherwise.
func (s *EventGridSink) Name() string { return s.name }

// Send publishes n as a batch of one CloudEvent. Event Grid answers 200;
// 408, 429 and 5xx are transient, other 4xx (a bad key: 401; a missing role:
// 403; too large: 413) permanent.
func (s *EventGridSink) Send(ctx context.Context, n Notification) error {
	e, err := n.CloudEvent(s.source)
	if err != nil {
		return invalid("eventgrid", err)
	}
	subject, t, ct := e.Subject(), e.Time(), e.DataContentType()
	ce := messaging.CloudEvent{
		ID:              e.ID(),
		Source:          e.Source(),
		SpecVersion:     e.SpecVersion(),
		Type:            e.Type(),
		Subject:         &subject,
		Time:            &t,
		DataContentType: &ct,
		// A json.RawMessage goes out as the JSON object; a []byte would be
		// sent as data_base64.
		Data: json.RawMessage(e.Data()),
	}
	if ext := e.Extensions(); len(ext) > 0 {
		ce.Extensions = ext // groupkey
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if _, err := s.client.PublishCloudEvents(ctx, []messaging.CloudEvent{ce}, nil); err != nil {
		var re *azcore.ResponseError
		if errors.As(err, &re) {
			// re.Error() carries the whole request and response; the status
			// and Event Grid's error code say enough.
			if re.RawResponse != nil && re.StatusCode/100 == 3 {
				return s.dest.answerError("eventgrid", re.RawResponse, "")
			}
			return s.dest.statusError("eventgrid", re.StatusCode, re.ErrorCode)
		}
		return s.dest.transportError("eventgrid", err)
	}
	return nil
}
