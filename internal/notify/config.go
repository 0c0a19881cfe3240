package notify

import (
	"errors"
	"fmt"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
)

// Config is the notification settings, parsed once by the command that reads
// the environment (cmd/handler); this package reads none. The URLs and the
// key are secrets: never log a Config, log Destination(sink) instead.
type Config struct {
	// Sinks: each is optional, "" leaves it out; any combination works.
	WebhookURL        string // CloudEvents over HTTP, binary mode
	EventGridEndpoint string // an Event Grid topic, CloudEvents schema
	// EventGridKey is the topic's access key; "" authenticates with the
	// credential given to NewSinks (the app's managed identity).
	EventGridKey string
	TeamsURL     string
	SlackURL     string

	// RemindEvery is how often an open finding is announced again; 0 never.
	RemindEvery time.Duration
	// MinSeverity is the least severe finding announced; "" announces all.
	MinSeverity string
	// PublicURL is the app's base URL: the CloudEvents source and the root
	// of the Status API links. "" when unknown.
	PublicURL string
}

// NeedsCredential reports whether NewSinks needs an Entra ID credential: an
// Event Grid topic configured without a key.
func (c Config) NeedsCredential() bool {
	return c.EventGridEndpoint != "" && c.EventGridKey == ""
}

// CheckURL reports whether raw is a URL a sink may send to: https, or http to
// localhost or a loopback address for local use, with a host. Its error never
// repeats the URL, which holds the sink's secret.
func CheckURL(raw string) error {
	_, err := parseDestination(raw)
	return err
}

// NewSinks builds the sinks c configures, in the order webhook, eventgrid,
// teams, slack; none when none is set. The Event Grid sink authenticates with
// c.EventGridKey when set, else with cred. opts applies to every sink; its
// Source defaults to c.PublicURL, then DefaultSource.
//
// Errors name the sink, never a URL or key.
func NewSinks(c Config, cred azcore.TokenCredential, opts Options) ([]Sink, error) {
	if opts.Source == "" {
		opts.Source = c.PublicURL
	}
	var sinks []Sink
	var errs []error
	add := func(name string, s Sink, err error) {
		if err != nil {
			errs = append(errs, fmt.Errorf("%s sink: %w", name, err))
			return
		}
		sinks = append(sinks, s)
	}
	if c.WebhookURL != "" {
		s, err := NewWebhookSink(c.WebhookURL, opts)
		add("webhook", s, err)
	}
	if c.EventGridEndpoint != "" {
		s, err := eventGridSink(c, cred, opts)
		add("eventgrid", s, err)
	} else if c.EventGridKey != "" {
		errs = append(errs, errors.New("eventgrid sink: a key without an endpoint"))
	}
	if c.TeamsURL != "" {
		s, err := NewTeamsSink(c.TeamsURL, opts)
		add("teams", s, err)
	}
	if c.SlackURL != "" {
		s, err := NewSlackSink(c.SlackURL, opts)
		add("slack", s, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return sinks, nil
}

// eventGridSink is the topic's sink, by key or by credential.
func eventGridSink(c Config, cred azcore.TokenCredential, opts Options) (Sink, error) {
	if c.EventGridKey != "" {
		return NewEventGridSinkWithKey(c.EventGridEndpoint, azcore.NewKeyCredential(c.EventGridKey), opts)
	}
	if cred == nil {
		return nil, errors.New("neither a topic key nor a managed identity credential")
	}
	return NewEventGridSink(c.EventGridEndpoint, cred, opts)
}
