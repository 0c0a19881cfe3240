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

	"github.com/upgradewatch/upgradewatch/internal/fleet"
)

// Sink delivers notifications to one destination.
//
// Send makes one attempt, bounded by the sink's timeout and ctx, and returns
// nil once the destination accepted n. An error wrapping ErrPermanent
// (fleet.ErrRejected) means retrying the same notification cannot succeed
// (the destination refused it, or n is invalid); any other error is transient
// (it wraps fleet.ErrUnavailable) and the caller should retry later with
// backoff. A destination may see n more than once if an accepted
// send's response is lost: n.ID (the CloudEvent id) lets it tell. Errors
// never contain a destination's secret (its URL's path, query, or key): a
// destination is named by its scheme and host only.
//
// Sinks follow no redirects: a 3xx answer is a permanent failure naming only
// the scheme and host it pointed to.
//
// Sinks are safe for concurrent use.
type Sink interface {
	// Name is short, stable and secret-free: the kind ("webhook",
	// "eventgrid", "teams", "slack") for the default sinks, the configured
	// name for named ones (Options.Name). It is for logs, routes and the
	// outbox's bookkeeping.
	Name() string
	Send(ctx context.Context, n Notification) error
}

// ErrPermanent marks a send that will fail again however often it is retried:
// a 4xx answer other than 408 and 429, a redirect (3xx, never followed), or a
// notification that cannot be rendered. It is the domain's fleet.ErrRejected;
// transient failures wrap fleet.ErrUnavailable.
var ErrPermanent = fleet.ErrRejected

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
	// tests point it at httptest servers. Sinks use a copy that follows no
	// redirects, whatever its CheckRedirect.
	HTTPClient *http.Client
	// Name is the sink's name (Sink.Name); its kind ("webhook", "teams", …)
	// when empty.
	Name string
}

func (o Options) name(kind string) string {
	if o.Name != "" {
		return o.Name
	}
	return kind
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

// client is the configured client, made to follow no redirect: a webhook URL
// is a secret shared with one host, and a redirect would re-send the message
// (and headers such as Event Grid's aeg-sas-key, which Go keeps across hosts)
// wherever the answer points.
func (o Options) client() *http.Client {
	c := &http.Client{}
	if o.HTTPClient != nil {
		cp := *o.HTTPClient
		c = &cp
	}
	c.CheckRedirect = noRedirect
	return c
}

// noRedirect makes a client return a 3xx answer as it is.
func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// Destination is where s sends, by scheme and host only
// ("https://hooks.slack.com"), for logs; "" for a sink of another package.
func Destination(s Sink) string {
	if d, ok := s.(interface{ destination() destination }); ok {
		return d.destination().redacted
	}
	return ""
}

func (c chat) destination() destination           { return c.dest }
func (s *WebhookSink) destination() destination   { return s.dest }
func (s *EventGridSink) destination() destination { return s.dest }

// destination is a parsed sink URL and what may be said about it.
type destination struct {
	url      *url.URL
	redacted string   // scheme://host
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

// redact keeps scheme and host (with its port, if any): enough to tell
// hooks.slack.com from prod-12.westeurope.logic.azure.com. Any path segment
// may be a token (Teams' webhookb2/<ids>/IncomingWebhook/<token>, a receiver's
// /hooks/<secret>), so none is shown.
func redact(u *url.URL) string {
	return u.Scheme + "://" + u.Host
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
	if p := strings.Trim(u.EscapedPath(), "/"); p != "" {
		add(p)
	}
	for _, s := range strings.Split(strings.Trim(u.EscapedPath(), "/"), "/") {
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
// only sentinels (ErrPermanent or fleet.ErrUnavailable, context errors),
// never the transport's error, whose text would hold the full URL.
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
	e := &sendError{msg: msg, wrapped: []error{fleet.ErrUnavailable}}
	if permanent(status) {
		e.wrapped = []error{ErrPermanent}
	}
	return e
}

// answerError classifies a non-2xx answer. A redirect is permanent: the sink
// does not follow it, and the URL needs fixing; the error names only where it
// pointed (scheme and host), as its path may hold another secret.
func (d destination) answerError(sink string, resp *http.Response, body string) error {
	if resp.StatusCode/100 != 3 {
		return d.statusError(sink, resp.StatusCode, body)
	}
	to := "no Location"
	if loc, err := resp.Location(); err == nil && loc.Host != "" {
		to = "to " + redact(loc)
	}
	return &sendError{
		msg:     fmt.Sprintf("%s %s: status %d: redirected %s; sinks follow no redirects: configure the final URL", sink, d.redacted, resp.StatusCode, to),
		wrapped: []error{ErrPermanent},
	}
}

// transportError is a send that got no answer: always transient.
func (d destination) transportError(sink string, err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // ue.Error() repeats the URL
	}
	e := &sendError{msg: fmt.Sprintf("%s %s: %s", sink, d.redacted, d.scrub(err.Error())), wrapped: []error{fleet.ErrUnavailable}}
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
