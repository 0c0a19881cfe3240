package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/go-cmp/cmp"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
)

// The secret parts of a webhook URL, shaped like Slack's and a Teams
// Workflows trigger's.
const (
	secretPath  = "/services/T0AB12CDE/B0FG34HIJ/s3cr3tT0k3nXyZ0q"
	secretQuery = "api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=hunter2SignatureAbCdEf"
)

var secrets = []string{"s3cr3tT0k3nXyZ0q", "B0FG34HIJ", "hunter2SignatureAbCdEf", "sig=", "/triggers/manual/run", "/services", "T0AB12CDE"}

func checkNoSecret(t *testing.T, err error) {
	t.Helper()
	for _, s := range secrets {
		if strings.Contains(err.Error(), s) {
			t.Errorf("error reveals %q: %v", s, err)
		}
	}
}

// received is one request a test server saw.
type received struct {
	header http.Header
	body   []byte
}

// server answers every request with status and body, and records it.
func server(t *testing.T, status int, body string) (*httptest.Server, <-chan received) {
	t.Helper()
	got := make(chan received, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- received{r.Header.Clone(), b}
		// {echo}: a careless endpoint repeating the URL it was called on.
		answer := strings.ReplaceAll(body, "{echo}", r.URL.String())
		w.WriteHeader(status)
		_, _ = io.WriteString(w, answer)
	}))
	t.Cleanup(srv.Close)
	return srv, got
}

// sinkKinds builds each HTTP sink for a URL.
var sinkKinds = []struct {
	name string
	new  func(url string, o Options) (Sink, error)
}{
	{"webhook", func(u string, o Options) (Sink, error) { return NewWebhookSink(u, o) }},
	{"teams", func(u string, o Options) (Sink, error) { return NewTeamsSink(u, o) }},
	{"slack", func(u string, o Options) (Sink, error) { return NewSlackSink(u, o) }},
}

func TestHTTPSinksClassify(t *testing.T) {
	tests := []struct {
		name      string
		status    int
		body      string
		wantErr   bool
		permanent bool
	}{
		{"200", 200, "ok", false, false},
		{"202 (Workflows)", 202, "", false, false},
		{"400 invalid_payload", 400, "invalid_payload", true, true},
		{"403 action_prohibited", 403, "action_prohibited", true, true},
		{"404 no_service", 404, "no_service", true, true},
		{"410 channel_is_archived", 410, "channel_is_archived", true, true},
		{"408 timeout", 408, "", true, false},
		{"429 rate limited", 429, "rate_limited", true, false},
		{"500", 500, "rollup_error", true, false},
		{"503", 503, "", true, false},
		{"400 echoing the URL", 400, "no such hook: {echo}", true, true},
	}
	n := upgradeFailedOpened()
	for _, kind := range sinkKinds {
		for _, tc := range tests {
			t.Run(kind.name+"/"+tc.name, func(t *testing.T) {
				srv, got := server(t, tc.status, tc.body)
				s, err := kind.new(srv.URL+secretPath+"?"+secretQuery, Options{})
				if err != nil {
					t.Fatal(err)
				}
				if s.Name() != kind.name {
					t.Errorf("Name: got %q, want %q", s.Name(), kind.name)
				}
				err = s.Send(context.Background(), n)
				if len(got) != 1 {
					t.Fatalf("server saw %d requests, want 1 (a sink makes one attempt)", len(got))
				}
				if !tc.wantErr {
					if err != nil {
						t.Fatalf("got %v, want success", err)
					}
					return
				}
				if err == nil {
					t.Fatal("got success, want an error")
				}
				if errors.Is(err, ErrPermanent) != tc.permanent {
					t.Errorf("permanent: got %v, want %v (%v)", errors.Is(err, ErrPermanent), tc.permanent, err)
				}
				if errors.Is(err, fleet.ErrUnavailable) == tc.permanent {
					t.Errorf("transient (fleet.ErrUnavailable): got %v, want %v (%v)", errors.Is(err, fleet.ErrUnavailable), !tc.permanent, err)
				}
				checkNoSecret(t, err)
				if want := srv.URL + ": "; !strings.Contains(err.Error(), want) {
					t.Errorf("got %v, want the URL redacted to %s", err, srv.URL)
				}
				if tc.body != "" && !strings.Contains(tc.body, "{echo}") && !strings.Contains(err.Error(), tc.body) {
					t.Errorf("got %v, want the answer %q in it", err, tc.body)
				}
			})
		}
	}
}

func TestHTTPSinksUnreachable(t *testing.T) {
	for _, kind := range sinkKinds {
		t.Run(kind.name+"/closed server", func(t *testing.T) {
			srv := httptest.NewServer(http.NotFoundHandler())
			url := srv.URL
			srv.Close()
			s, err := kind.new(url+secretPath+"?"+secretQuery, Options{})
			if err != nil {
				t.Fatal(err)
			}
			err = s.Send(context.Background(), upgradeFailedOpened())
			if err == nil || errors.Is(err, ErrPermanent) || !errors.Is(err, fleet.ErrUnavailable) {
				t.Fatalf("got %v, want a transient error (fleet.ErrUnavailable)", err)
			}
			checkNoSecret(t, err)
		})
		t.Run(kind.name+"/timeout", func(t *testing.T) {
			release := make(chan struct{})
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				select {
				case <-release:
				case <-r.Context().Done():
				}
			}))
			defer srv.Close()
			defer close(release)
			s, err := kind.new(srv.URL+secretPath+"?"+secretQuery, Options{Timeout: 100 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			err = s.Send(context.Background(), upgradeFailedOpened())
			if err == nil || errors.Is(err, ErrPermanent) || !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, fleet.ErrUnavailable) {
				t.Fatalf("got %v, want a transient deadline error", err)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("Send took %s with a 100ms timeout", d)
			}
			checkNoSecret(t, err)
		})
		t.Run(kind.name+"/invalid notification", func(t *testing.T) {
			srv, got := server(t, 200, "")
			s, err := kind.new(srv.URL, Options{})
			if err != nil {
				t.Fatal(err)
			}
			n := upgradeFailedOpened()
			n.ID = ""
			if err := s.Send(context.Background(), n); !errors.Is(err, ErrPermanent) {
				t.Errorf("got %v, want a permanent error", err)
			}
			if len(got) != 0 {
				t.Error("an invalid notification was sent")
			}
		})
	}
}

func TestChatSinksPostTheRenderedPayload(t *testing.T) {
	n := imageStaleFailed()
	for _, tc := range []struct {
		name   string
		new    func(string, Options) (Sink, error)
		render func(Notification) ([]byte, error)
	}{
		{"teams", sinkKinds[1].new, TeamsCard},
		{"slack", sinkKinds[2].new, SlackMessage},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, got := server(t, 200, "1")
			s, err := tc.new(srv.URL+secretPath, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Send(context.Background(), n); err != nil {
				t.Fatal(err)
			}
			r := <-got
			if ct := r.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type: got %q, want application/json", ct)
			}
			want, _ := tc.render(n)
			if diff := cmp.Diff(string(want), string(r.body)); diff != "" {
				t.Errorf("body (-want +got):\n%s", diff)
			}
		})
	}
}

// Teams' legacy connectors answer 200 and put the real status in the body
// (MicrosoftDocs/msteams-docs#1810, #7425).
func TestTeamsSinkWrappedFailures(t *testing.T) {
	const prefix = "Webhook message delivery failed with error: Microsoft Teams endpoint returned HTTP error "
	tests := []struct {
		name      string
		body      string
		wantErr   bool
		permanent bool
	}{
		{"success", "1", false, false},
		{"429", prefix + "429 with ContextId tcid=0,server=msgapi-production-eus-azsc7-2-35,cv=AszFFaeXdEGdFrJhai0eUw.0..", true, false},
		{"413", prefix + "413 with ContextId tcid=622824298674363899,server=DB5PEPF00003FC8,cv=AszFFaeXdEGdFrJhai0eUw.1.0..", true, true},
		{"400", prefix + "400 with ContextId MS-CV=wUmM9kBhpkiOZnT3ZEwhdg.0..", true, true},
		{"no status", "Webhook message delivery failed with error: unknown", true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv, _ := server(t, 200, tc.body)
			s, err := NewTeamsSink(srv.URL+secretPath, Options{})
			if err != nil {
				t.Fatal(err)
			}
			err = s.Send(context.Background(), upgradeFailedOpened())
			if (err != nil) != tc.wantErr {
				t.Fatalf("got %v, want error %v", err, tc.wantErr)
			}
			if err != nil && errors.Is(err, ErrPermanent) != tc.permanent {
				t.Errorf("permanent: got %v, want %v (%v)", errors.Is(err, ErrPermanent), tc.permanent, err)
			}
		})
	}
}

// A Slack answer of 200 "ok" with the same text is not a Teams failure.
func TestSlackSinkIgnoresTeamsWording(t *testing.T) {
	srv, _ := server(t, 200, "Webhook message delivery failed with error: Microsoft Teams endpoint returned HTTP error 400")
	s, err := NewSlackSink(srv.URL, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(context.Background(), upgradeFailedOpened()); err != nil {
		t.Errorf("got %v, want success", err)
	}
}

// The webhook gets a binary-mode CloudEvent: ce-* headers, the data as body.
func TestWebhookSinkBinaryMode(t *testing.T) {
	srv, got := server(t, 204, "")
	s, err := NewWebhookSink(srv.URL+"/api/events", Options{Source: appSource})
	if err != nil {
		t.Fatal(err)
	}
	n := upgradeFailedOpened()
	if err := s.Send(context.Background(), n); err != nil {
		t.Fatal(err)
	}
	r := <-got
	wantHeaders := map[string]string{
		"Ce-Specversion": "1.0",
		"Ce-Id":          n.ID,
		"Ce-Type":        TypeFindingOpened,
		"Ce-Source":      appSource,
		"Ce-Subject":     paymentsID + "/agentPools/payments",
		"Ce-Time":        "2026-03-14T02:48:12Z",
		"Content-Type":   "application/json",
	}
	for h, want := range wantHeaders {
		if got := r.header.Get(h); got != want {
			t.Errorf("%s: got %q, want %q", h, got, want)
		}
	}
	for h := range r.header {
		if strings.HasPrefix(h, "Ce-") && wantHeaders[h] == "" {
			t.Errorf("unexpected header %s: %q", h, r.header.Get(h))
		}
	}
	// Rebuild the event from the request, independently of the sink's writer,
	// and compare it with the notification's.
	e := event.New(r.header.Get("Ce-Specversion"))
	e.SetID(r.header.Get("Ce-Id"))
	e.SetType(r.header.Get("Ce-Type"))
	e.SetSource(r.header.Get("Ce-Source"))
	e.SetSubject(r.header.Get("Ce-Subject"))
	tm, err := time.Parse(time.RFC3339Nano, r.header.Get("Ce-Time"))
	if err != nil {
		t.Fatal(err)
	}
	e.SetTime(tm)
	e.SetDataContentType(r.header.Get("Content-Type"))
	e.DataEncoded = r.body
	if err := e.Validate(); err != nil {
		t.Fatal(err)
	}
	want, _ := n.CloudEvent(appSource)
	gotJSON, _ := json.Marshal(e)
	wantJSON, _ := json.Marshal(want)
	if diff := cmp.Diff(string(wantJSON), string(gotJSON)); diff != "" {
		t.Errorf("event (-want +got):\n%s", diff)
	}
	var d Data
	if err := json.Unmarshal(r.body, &d); err != nil || d.Code != "UpgradeFailed" || d.Cluster != paymentsID {
		t.Errorf("body is not the data object: %v %s", err, r.body)
	}
}

func TestRedact(t *testing.T) {
	tests := []struct{ url, want string }{
		{"https://hooks.slack.com/services/T0AB12CDE/B0FG34HIJ/s3cr3tT0k3nXyZ0q", "https://hooks.slack.com"},
		{"https://prod-12.westeurope.logic.azure.com:443/workflows/5f0e1c2d3b4a/triggers/manual/paths/invoke?" + secretQuery,
			"https://prod-12.westeurope.logic.azure.com:443"},
		{"https://contoso.webhook.office.com/webhookb2/0a1b2c3d@4e5f/IncomingWebhook/6a7b8c/9d0e", "https://contoso.webhook.office.com"},
		{"https://receiver.example.com/", "https://receiver.example.com"},
		{"https://receiver.example.com/hooks/s3cr3tT0k3nXyZ0q", "https://receiver.example.com"},
		{"https://receiver.example.com?token=abc", "https://receiver.example.com"},
		{"https://user:pa55word@receiver.example.com/events", "https://receiver.example.com"},
	}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) {
			d, err := parseDestination(tc.url)
			if err != nil {
				t.Fatal(err)
			}
			if d.redacted != tc.want {
				t.Errorf("got %s, want %s", d.redacted, tc.want)
			}
			for _, kind := range sinkKinds {
				s, err := kind.new(tc.url, Options{})
				if err != nil {
					t.Fatal(err)
				}
				if got := Destination(s); got != tc.want {
					t.Errorf("Destination(%s) = %s, want %s", kind.name, got, tc.want)
				}
			}
		})
	}
}

// A sink answered with a redirect re-sends nothing to where it points: the
// second server receives nothing, the failure is permanent, and the error
// names both ends by scheme and host only.
func TestSinksFollowNoRedirect(t *testing.T) {
	for _, status := range []int{http.StatusMovedPermanently, http.StatusFound, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		for _, kind := range sinkKinds {
			t.Run(fmt.Sprintf("%s/%d", kind.name, status), func(t *testing.T) {
				elsewhere, stolen := server(t, http.StatusOK, "ok")
				first := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					_, _ = io.Copy(io.Discard, r.Body)
					http.Redirect(w, r, elsewhere.URL+"/collect/"+strings.TrimPrefix(r.URL.Path, "/"), status)
				}))
				defer first.Close()
				// The caller's client would follow redirects; the sink's copy must not.
				s, err := kind.new(first.URL+secretPath+"?"+secretQuery, Options{HTTPClient: first.Client()})
				if err != nil {
					t.Fatal(err)
				}
				err = s.Send(context.Background(), upgradeFailedOpened())
				if len(stolen) != 0 {
					t.Fatalf("the redirect's target received %d requests, want none", len(stolen))
				}
				if !errors.Is(err, ErrPermanent) {
					t.Fatalf("got %v, want a permanent error", err)
				}
				checkNoSecret(t, err)
				if !strings.Contains(err.Error(), "redirected to "+elsewhere.URL+";") || strings.Contains(err.Error(), "/collect") {
					t.Errorf("got %v, want it to name the target as %s only", err, elsewhere.URL)
				}
			})
		}
	}
}
