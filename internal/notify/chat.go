package notify

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// TeamsSink posts notifications to a Microsoft Teams channel through a
// Workflows webhook ("when a Teams webhook request is received") or a legacy
// incoming webhook, as TeamsCard renders them.
type TeamsSink struct{ chat }

// SlackSink posts notifications to a Slack incoming webhook, as SlackMessage
// renders them.
type SlackSink struct{ chat }

var (
	_ Sink = (*TeamsSink)(nil)
	_ Sink = (*SlackSink)(nil)
)

// NewTeamsSink returns a sink posting to the webhook URL (https, or http to
// localhost). Its error does not repeat the URL, which holds a secret.
func NewTeamsSink(webhookURL string, opts Options) (*TeamsSink, error) {
	c, err := newChat("teams", webhookURL, TeamsCard, TeamsGroupCard, opts)
	if err != nil {
		return nil, err
	}
	return &TeamsSink{c}, nil
}

// NewSlackSink returns a sink posting to the incoming-webhook URL (https, or
// http to localhost). Its error does not repeat the URL, which holds a secret.
func NewSlackSink(webhookURL string, opts Options) (*SlackSink, error) {
	c, err := newChat("slack", webhookURL, SlackMessage, SlackGroupMessage, opts)
	if err != nil {
		return nil, err
	}
	return &SlackSink{c}, nil
}

// chat posts a rendered JSON payload; Teams and Slack differ only in the
// renderers and in how Teams reports some failures.
type chat struct {
	kind        string // "teams" or "slack": in errors
	name        string // the sink's name (Options.Name, else kind)
	dest        destination
	client      *http.Client
	timeout     time.Duration
	render      func(Notification) ([]byte, error)
	renderGroup func(Group) ([]byte, error)
}

func newChat(kind, rawURL string, render func(Notification) ([]byte, error), renderGroup func(Group) ([]byte, error), opts Options) (chat, error) {
	d, err := parseDestination(rawURL)
	if err != nil {
		return chat{}, fmt.Errorf("%s webhook URL: %w", kind, err)
	}
	return chat{kind: kind, name: opts.name(kind), dest: d, client: opts.client(), timeout: opts.timeout(),
		render: render, renderGroup: renderGroup}, nil
}

// Name is the sink's configured name: "teams" or "slack" unless
// Options.Name said otherwise.
func (c chat) Name() string { return c.name }

// Send posts n. Teams and Slack answer 200 or 202; 408, 429 and 5xx are
// transient, other 4xx and any 3xx (not followed) permanent. A Teams 200 that says the delivery failed
// is classified by the status it quotes.
func (c chat) Send(ctx context.Context, n Notification) error {
	body, err := c.render(n)
	if err != nil {
		return invalid(c.kind, err)
	}
	return c.post(ctx, body)
}

// SendGroup posts g as one message (TeamsGroupCard, SlackGroupMessage),
// answered and classified as Send.
func (c chat) SendGroup(ctx context.Context, g Group) error {
	body, err := c.renderGroup(g)
	if err != nil {
		return invalid(c.kind, err)
	}
	return c.post(ctx, body)
}

// post sends one rendered payload.
func (c chat) post(ctx context.Context, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.dest.url.String(), bytes.NewReader(body))
	if err != nil {
		return c.dest.transportError(c.kind, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.client.Do(req)
	if err != nil {
		return c.dest.transportError(c.kind, err)
	}
	snippet := readSnippet(resp.Body)
	if resp.StatusCode/100 != 2 {
		return c.dest.answerError(c.kind, resp, snippet)
	}
	if c.kind == "teams" && strings.Contains(strings.ToLower(snippet), "delivery failed") {
		status, ok := teamsWrappedStatus(snippet)
		if !ok {
			status = http.StatusBadGateway // failed, cause unknown: transient
		}
		return c.dest.statusError(c.kind, status, "answered 200 but: "+snippet)
	}
	return nil
}
