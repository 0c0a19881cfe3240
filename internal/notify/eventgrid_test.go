package notify

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/google/go-cmp/cmp"
)

const topicKey = "bXlUb3BpY0FjY2Vzc0tleVRoYXRJc1NlY3JldDEyMzQ1Njc4OTA="

// fakeCredential hands out a fixed token and records the scopes asked for.
type fakeCredential struct {
	mu     sync.Mutex
	scopes [][]string
}

func (c *fakeCredential) GetToken(_ context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.scopes = append(c.scopes, o.Scopes)
	return azcore.AccessToken{Token: "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.fake", ExpiresOn: time.Now().Add(time.Hour)}, nil
}

type topicRequest struct {
	method, path, query string
	header              http.Header
	body                []byte
}

// topic is an Event Grid topic stand-in over TLS (the SDK sends no credential
// over plain http).
func topic(t *testing.T, status int, body string) (*httptest.Server, <-chan topicRequest) {
	t.Helper()
	got := make(chan topicRequest, 10)
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- topicRequest{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Clone(), b}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv, got
}

func TestEventGridSinkWithKey(t *testing.T) {
	srv, got := topic(t, 200, "")
	s, err := NewEventGridSinkWithKey(srv.URL+"/api/events", azcore.NewKeyCredential(topicKey), Options{Source: appSource, HTTPClient: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	if s.Name() != "eventgrid" {
		t.Errorf("Name: got %q", s.Name())
	}
	n := upgradeFailedOpened()
	if err := s.Send(context.Background(), n); err != nil {
		t.Fatal(err)
	}
	r := <-got
	if r.method != http.MethodPost || r.path != "/api/events" || r.query != "api-version=2018-01-01" {
		t.Errorf("request: got %s %s?%s, want POST /api/events?api-version=2018-01-01", r.method, r.path, r.query)
	}
	if k := r.header.Get("aeg-sas-key"); k != topicKey {
		t.Errorf("aeg-sas-key: got %q, want the key", k)
	}
	if a := r.header.Get("Authorization"); a != "" {
		t.Errorf("Authorization: got %q, want none with a key", a)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/cloudevents-batch+json; charset=utf-8" {
		t.Errorf("Content-Type: got %q", ct)
	}
	var batch []map[string]json.RawMessage
	if err := json.Unmarshal(r.body, &batch); err != nil || len(batch) != 1 {
		t.Fatalf("body: got %v, %d events, want a batch of one: %s", err, len(batch), r.body)
	}
	ev := batch[0]
	attrs := map[string]string{}
	for _, k := range []string{"specversion", "id", "type", "source", "subject", "time", "datacontenttype"} {
		var v string
		if err := json.Unmarshal(ev[k], &v); err != nil {
			t.Errorf("%s: %v", k, err)
		}
		attrs[k] = v
	}
	wantAttrs := map[string]string{
		"specversion": "1.0", "id": n.ID, "type": TypeFindingOpened, "source": appSource,
		"subject": paymentsID + "/agentPools/payments", "time": "2026-03-14T02:48:12Z", "datacontenttype": "application/json",
	}
	if diff := cmp.Diff(wantAttrs, attrs); diff != "" {
		t.Errorf("attributes (-want +got):\n%s", diff)
	}
	if _, ok := ev["data_base64"]; ok {
		t.Error("data sent as data_base64; want a JSON object")
	}
	var d Data
	if err := json.Unmarshal(ev["data"], &d); err != nil {
		t.Fatalf("data: %v: %s", err, ev["data"])
	}
	want, _ := n.Data()
	if diff := cmp.Diff(want, d, cmp.Comparer(jsonEqual)); diff != "" {
		t.Errorf("data (-want +got):\n%s", diff)
	}
}

// jsonEqual compares JSON texts by meaning: the SDK's json.Marshal may escape
// differently from our encoder.
func jsonEqual(a, b json.RawMessage) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return string(a) == string(b)
	}
	return cmp.Equal(x, y)
}

func TestEventGridSinkWithManagedIdentity(t *testing.T) {
	srv, got := topic(t, 200, "")
	cred := &fakeCredential{}
	// A bare topic host gets /api/events.
	s, err := NewEventGridSink(srv.URL, cred, Options{HTTPClient: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(context.Background(), channelDriftResolved()); err != nil {
		t.Fatal(err)
	}
	r := <-got
	if r.path != "/api/events" {
		t.Errorf("path: got %q, want /api/events", r.path)
	}
	if a := r.header.Get("Authorization"); a != "Bearer eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.fake" {
		t.Errorf("Authorization: got %q", a)
	}
	if r.header.Get("aeg-sas-key") != "" {
		t.Error("aeg-sas-key sent with a token credential")
	}
	if len(cred.scopes) == 0 || !slices.Equal(cred.scopes[0], []string{"https://eventgrid.azure.net/.default"}) {
		t.Errorf("scopes: got %v, want [https://eventgrid.azure.net/.default]", cred.scopes)
	}
	var batch []struct {
		Source string `json:"source"`
	}
	if err := json.Unmarshal(r.body, &batch); err != nil || len(batch) != 1 || batch[0].Source != DefaultSource {
		t.Errorf("source: got %v %+v, want %s", err, batch, DefaultSource)
	}
}

func TestEventGridSinkClassify(t *testing.T) {
	tests := []struct {
		status    int
		body      string
		permanent bool
	}{
		{400, `{"error":{"code":"BadRequest","message":"Unsupported content type: application/json"}}`, true},
		{401, `{"error":{"code":"Unauthorized","message":"The request authorization key is not authorized for topic.westeurope-1.eventgrid.azure.net."}}`, true},
		{403, `{"error":{"code":"Forbidden","message":"The principal does not have the required permissions (Microsoft.EventGrid/events/send/action)."}}`, true},
		{413, `{"error":{"code":"RequestEntityTooLarge","message":"The maximum size (1536000) has been exceeded."}}`, true},
		{408, "", false},
		{429, `{"error":{"code":"TooManyRequests"}}`, false},
		{500, `{"error":{"code":"InternalServerError"}}`, false},
		{503, "", false},
	}
	for _, tc := range tests {
		t.Run(http.StatusText(tc.status), func(t *testing.T) {
			srv, got := topic(t, tc.status, tc.body)
			s, err := NewEventGridSinkWithKey(srv.URL+"/api/events", azcore.NewKeyCredential(topicKey), Options{HTTPClient: srv.Client()})
			if err != nil {
				t.Fatal(err)
			}
			err = s.Send(context.Background(), upgradeFailedOpened())
			if err == nil {
				t.Fatal("got success, want an error")
			}
			if len(got) != 1 {
				t.Errorf("topic saw %d requests, want 1 (the SDK's retries are off)", len(got))
			}
			if errors.Is(err, ErrPermanent) != tc.permanent {
				t.Errorf("permanent: got %v, want %v (%v)", errors.Is(err, ErrPermanent), tc.permanent, err)
			}
			if strings.Contains(err.Error(), topicKey) {
				t.Errorf("error reveals the key: %v", err)
			}
			if !strings.Contains(err.Error(), srv.URL+":") || strings.Contains(err.Error(), srv.URL+"/") {
				t.Errorf("got %v, want the endpoint named by scheme and host only", err)
			}
		})
	}
	t.Run("closed", func(t *testing.T) {
		srv := httptest.NewTLSServer(http.NotFoundHandler())
		client := srv.Client()
		url := srv.URL
		srv.Close()
		s, err := NewEventGridSinkWithKey(url+"/api/events", azcore.NewKeyCredential(topicKey), Options{HTTPClient: client})
		if err != nil {
			t.Fatal(err)
		}
		err = s.Send(context.Background(), upgradeFailedOpened())
		if err == nil || errors.Is(err, ErrPermanent) {
			t.Fatalf("got %v, want a transient error", err)
		}
		if strings.Contains(err.Error(), topicKey) {
			t.Errorf("error reveals the key: %v", err)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		release := make(chan struct{})
		srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}))
		defer srv.Close()
		defer close(release)
		s, err := NewEventGridSinkWithKey(srv.URL, azcore.NewKeyCredential(topicKey), Options{HTTPClient: srv.Client(), Timeout: 100 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		err = s.Send(context.Background(), upgradeFailedOpened())
		if err == nil || errors.Is(err, ErrPermanent) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("got %v, want a transient deadline error", err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("Send took %s with a 100ms timeout", d)
		}
	})
}

func TestEventGridSinkRefuses(t *testing.T) {
	if _, err := NewEventGridSink("https://topic.westeurope-1.eventgrid.azure.net/api/events", nil, Options{}); err == nil {
		t.Error("no credential: got no error")
	}
	if _, err := NewEventGridSinkWithKey("https://topic.westeurope-1.eventgrid.azure.net/api/events", nil, Options{}); err == nil {
		t.Error("no key: got no error")
	}
	if _, err := NewEventGridSinkWithKey("http://topic.westeurope-1.eventgrid.azure.net/api/events", azcore.NewKeyCredential(topicKey), Options{}); err == nil {
		t.Error("a key over plain http: got no error")
	}
	if _, err := NewEventGridSink("https://topic.westeurope-1.eventgrid.azure.net/api/events", &fakeCredential{}, Options{}); err != nil {
		t.Errorf("valid: %v", err)
	}
}

// A topic answering with a redirect gets no second request anywhere: the
// aeg-sas-key header would go with it.
func TestEventGridSinkFollowsNoRedirect(t *testing.T) {
	elsewhere, stolen := topic(t, http.StatusOK, "")
	first := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		http.Redirect(w, r, elsewhere.URL+"/api/events", http.StatusTemporaryRedirect)
	}))
	defer first.Close()
	s, err := NewEventGridSinkWithKey(first.URL+"/api/events", azcore.NewKeyCredential(topicKey), Options{HTTPClient: first.Client()})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Send(context.Background(), upgradeFailedOpened())
	if len(stolen) != 0 {
		t.Fatalf("the redirect's target received %d requests (with the key), want none", len(stolen))
	}
	if !errors.Is(err, ErrPermanent) || !strings.Contains(err.Error(), "redirected to "+elsewhere.URL) {
		t.Fatalf("got %v, want a permanent error naming %s", err, elsewhere.URL)
	}
}
