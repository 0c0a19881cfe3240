package notify

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Sink delivers notifications to one destination.
//
// Send makes one attempt, bounded by the sink's timeout and ctx, and returns
// nil once the destination accepted n. An error wrapping ErrPermanent means
// retrying the same notification cannot succeed (the destination refused it,
// or n is invalid); any other error is transient and the caller should retry
// later with backoff. A destination may see n more than once if an accepted
// send's response is lost: n.ID (the CloudEvent id) lets it tell. Errors
// never contain a destination's secret (its URL's query, path beyond the first
// segment, or key).
//
// Sinks are safe for concurrent use.
type Sink interface {
	// Name is short, stable and secret-free ("webhook", "eventgrid",
	// "teams", "slack"): for logs and for the outbox's bookkeeping.
	Name() string
	Send(ctx context.Context, n Notification) error
}

// ErrPermanent marks a send that will fail again however often it is retried:
// a 4xx answer other than 408 and 429, or a notification that cannot be
// rendered.
var ErrPermanent = errors.New("permanent failure")

// DefaultTimeout bounds one Send when Options.Timeout is zero.
const DefaultTimeout = 10 * time.Second

// Options configure a sink.
type Options struct {
	// Source is the CloudEvents source (the app's URL is a good one);
	// DefaultSource when empty.
	Source string
	// Timeout bounds each Send; DefaultTimeout when zero.
	Timeout time.Duration
	// HTTPClient sends the requests (http.DefaultClient's settings when nil);
	// tests point it at httptest servers.
	HTTPClient *http.Client
}

func (o Options) timeout() time.Duration {
	if o.Timeout > 0 {
		return o.Timeout
	}
	return DefaultTimeout
}

func (o Options) source() string {
	if o.Source != "" {
		return o.Source
	}
	return DefaultSource
}

func (o Options) client() *http.Client {
	if o.HTTPClient != nil {
		return o.HTTPClient
	}
	return &http.Client{}
}

// destination is a parsed sink URL and what may be said about it.
type destination struct {
	url      *url.URL
	redacted string   // scheme://host/first-segment…
	secrets  []string // fragments that must not appear in an error
}

// parseDestination checks a sink URL: https, or http to a loopback host for
// local use, with a host. Its errors do not repeat the URL.
func parseDestination(raw string) (destination, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return destination{}, errors.New("not a URL")
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && isLoopback(u.Hostname()):
	case u.Scheme == "http":
		return destination{}, errors.New("http is allowed only to localhost or 127.0.0.1; use https")
	default:
		return destination{}, errors.New("not an https URL")
	}
	if u.Host == "" || u.Hostname() == "" {
		return destination{}, errors.New("URL has no host")
	}
	return destination{url: u, redacted: redact(u), secrets: secretsOf(u)}, nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// redact keeps scheme, host and the first path segment: enough to tell
// hooks.slack.com/services… from prod-12.westeurope.logic.azure.com/workflows…,
// never the token after it.
func redact(u *url.URL) string {
	s := u.Scheme + "://" + u.Host
	segs := strings.Split(strings.TrimPrefix(u.EscapedPath(), "/"), "/")
	if segs[0] != "" {
		s += "/" + segs[0]
	}
	if len(segs) > 1 || u.RawQuery != "" || u.User != nil {
		s += "/…"
	}
	return s
}

// secretsOf lists the parts of u that may hold a secret, in the forms they
// can take in an error text.
func secretsOf(u *url.URL) []string {
	var out []string
	add := func(s string) {
		if len(s) >= 4 { // shorter fragments ("api", "v1") are not secrets and would mangle text
			out = append(out, s)
		}
	}
	segs := strings.Split(strings.TrimPrefix(u.EscapedPath(), "/"), "/")
	for _, s := range segs[min(1, len(segs)):] {
		add(s)
		if un, err := url.PathUnescape(s); err == nil && un != s {
			add(un)
		}
	}
	if u.RawQuery != "" {
		add(u.RawQuery)
		for _, vs := range u.Query() {
			for _, v := range vs {
				add(v)
				add(url.QueryEscape(v))
			}
		}
	}
	if u.User != nil {
		add(u.User.String())
		if p, ok := u.User.Password(); ok {
			add(p)
		}
	}
	return out
}

// scrub removes d's secrets from s.
func (d destination) scrub(s string) string {
	for _, sec := range d.secrets {
		s = strings.ReplaceAll(s, sec, "…")
	}
	return s
}

// sendError is a failed send. Its text is scrubbed of secrets, and it wraps
// only sentinels (ErrPermanent, context errors), never the transport's error,
// whose text would hold the full URL.
type sendError struct {
	msg     string
	wrapped []error
}

func (e *sendError) Error() string   { return e.msg }
func (e *sendError) Unwrap() []error { return e.wrapped }

// permanent reports whether an HTTP status means retrying cannot help.
func permanent(status int) bool {
	return status >= 400 && status < 500 && status != http.StatusRequestTimeout && status != http.StatusTooManyRequests
}

// statusError classifies a non-2xx answer; body is a snippet of the answer
// for diagnosis (Slack names the problem there: "invalid_payload").
func (d destination) statusError(sink string, status int, body string) error {
	msg := fmt.Sprintf("%s %s: status %d", sink, d.redacted, status)
	if body = oneLine(d.scrub(body), 200); body != "" {
		msg += ": " + body
	}
	e := &sendError{msg: msg}
	if permanent(status) {
		e.wrapped = []error{ErrPermanent}
	}
	return e
}

// transportError is a send that got no answer: always transient.
func (d destination) transportError(sink string, err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // ue.Error() repeats the URL
	}
	e := &sendError{msg: fmt.Sprintf("%s %s: %s", sink, d.redacted, d.scrub(err.Error()))}
	for _, sentinel := range []error{context.DeadlineExceeded, context.Canceled} {
		if errors.Is(err, sentinel) {
			e.wrapped = append(e.wrapped, sentinel)
		}
	}
	return e
}

// invalid is a notification a sink cannot send: permanent.
func invalid(sink string, err error) error {
	return fmt.Errorf("%s: %w: %w", sink, ErrPermanent, err)
}

func oneLine(s string, limit int) string {
	return clip(strings.Join(strings.Fields(s), " "), limit)
}

// readSnippet reads the start of a response body for an error message and
// drains the rest (bounded) so the connection can be reused.
func readSnippet(body io.ReadCloser) string {
	defer body.Close()
	b, _ := io.ReadAll(io.LimitReader(body, 1024))
	_, _ = io.Copy(io.Discard, io.LimitReader(body, 64<<10))
	return string(b)
}

// teamsWrapped finds the status Teams' legacy connectors wrap in a 200 answer:
// "Webhook message delivery failed with error: Microsoft Teams endpoint
// returned HTTP error 429 with ContextId …" (MicrosoftDocs/msteams-docs#1810).
var teamsWrapped = regexp.MustCompile(`(?i)delivery failed.*?HTTP error (\d{3})`)

func teamsWrappedStatus(body string) (int, bool) {
	m := teamsWrapped.FindStringSubmatch(body)
	if m == nil {
		return 0, false
	}
	status, err := strconv.Atoi(m[1])
	return status, err == nil
}
