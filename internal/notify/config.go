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
	// Named are further sinks, each with a name of its own, for routes to
	// choose from; the four above are the default-named sinks ("webhook",
	// "eventgrid", "teams", "slack").
	Named []NamedSink

	// RemindEvery is how often an open finding is announced again; 0 never.
	RemindEvery time.Duration
	// GroupWait is how long a chat sink waits for more steps of a cluster
	// before it announces them together in one message; 0 sends what is
	// pending at once (still as one message).
	GroupWait time.Duration
	// MinSeverity is the least severe finding announced; "" announces all.
	MinSeverity string
	// PublicURL is the app's base URL: the CloudEvents source and the root
	// of the Status API links. "" when unknown.
	PublicURL string
}

// Sink kinds: the Kind of a NamedSink, and the name of the default sink of
// each kind.
const (
	KindWebhook   = "webhook"
	KindEventGrid = "eventgrid"
	KindTeams     = "teams"
	KindSlack     = "slack"
)

// Kinds are the sink kinds, in the order NewSinks builds them.
var Kinds = []string{KindWebhook, KindEventGrid, KindTeams, KindSlack}

// NamedSink is one further sink of a kind. URL and Key are secrets.
type NamedSink struct {
	Name string // lower-case letters, digits and hyphens; not a kind's name
	Kind string // KindWebhook, KindEventGrid, KindTeams or KindSlack
	URL  string // the webhook URL, or the Event Grid topic endpoint
	Key  string // the Event Grid topic key; "" uses the credential
}

// CheckSinkName reports whether name may name a sink: 1 to 40 lower-case
// letters, digits and hyphens, starting with a letter, and not one of the
// kinds (the default sinks' names).
func CheckSinkName(name string) error {
	if name == "" || len(name) > 40 {
		return errors.New("a sink name has 1 to 40 characters")
	}
	for i, r := range name {
		if !(r >= 'a' && r <= 'z' || i > 0 && (r >= '0' && r <= '9' || r == '-')) {
			return fmt.Errorf("sink name %q: lower-case letters, digits and hyphens, starting with a letter", name)
		}
	}
	for _, k := range Kinds {
		if name == k {
			return fmt.Errorf("sink name %q is the default %s sink's; choose another", name, k)
		}
	}
	return nil
}

// Names lists the names of the sinks c configures, in NewSinks' order,
// without building them.
func (c Config) Names() []string {
	var out []string
	for _, d := range []struct{ name, url string }{
		{KindWebhook, c.WebhookURL}, {KindEventGrid, c.EventGridEndpoint}, {KindTeams, c.TeamsURL}, {KindSlack, c.SlackURL},
	} {
		if d.url != "" {
			out = append(out, d.name)
		}
	}
	for _, n := range c.Named {
		out = append(out, n.Name)
	}
	return out
}

// NeedsCredential reports whether NewSinks needs an Entra ID credential: an
// Event Grid topic configured without a key.
func (c Config) NeedsCredential() bool {
	if c.EventGridEndpoint != "" && c.EventGridKey == "" {
		return true
	}
	for _, n := range c.Named {
		if n.Kind == KindEventGrid && n.Key == "" {
			return true
		}
	}
	return false
}

// CheckURL reports whether raw is a URL a sink may send to: https, or http to
// localhost or a loopback address for local use, with a host. Its error never
// repeats the URL, which holds the sink's secret.
func CheckURL(raw string) error {
	_, err := parseDestination(raw)
	return err
}

// NewSinks builds the sinks c configures, in the order webhook, eventgrid,
// teams, slack, then the named ones as listed; none when none is set. The Event Grid sink authenticates with
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
	seen := map[string]bool{}
	for _, n := range c.Named {
		if err := CheckSinkName(n.Name); err != nil {
			errs = append(errs, err)
			continue
		}
		if seen[n.Name] {
			errs = append(errs, fmt.Errorf("sink %s: named twice", n.Name))
			continue
		}
		seen[n.Name] = true
		s, err := namedSink(n, cred, opts)
		add(n.Kind+" sink "+n.Name, s, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return sinks, nil
}

// eventGridSink is the topic's sink, by key or by credential.
func eventGridSink(c Config, cred azcore.TokenCredential, opts Options) (Sink, error) {
	return topicSink(c.EventGridEndpoint, c.EventGridKey, cred, opts)
}

func topicSink(endpoint, key string, cred azcore.TokenCredential, opts Options) (Sink, error) {
	if key != "" {
		return NewEventGridSinkWithKey(endpoint, azcore.NewKeyCredential(key), opts)
	}
	if cred == nil {
		return nil, errors.New("neither a topic key nor a managed identity credential")
	}
	return NewEventGridSink(endpoint, cred, opts)
}

// namedSink builds one named sink of its kind.
func namedSink(n NamedSink, cred azcore.TokenCredential, opts Options) (Sink, error) {
	opts.Name = n.Name
	if n.Key != "" && n.Kind != KindEventGrid {
		return nil, errors.New("a key is only for an Event Grid topic")
	}
	switch n.Kind {
	case KindWebhook:
		return NewWebhookSink(n.URL, opts)
	case KindEventGrid:
		return topicSink(n.URL, n.Key, cred, opts)
	case KindTeams:
		return NewTeamsSink(n.URL, opts)
	case KindSlack:
		return NewSlackSink(n.URL, opts)
	}
	return nil, fmt.Errorf("unknown kind %q (want webhook, eventgrid, teams or slack)", n.Kind)
}
