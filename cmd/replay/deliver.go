package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/upgradewatch/upgradewatch/internal/host"
	"github.com/upgradewatch/upgradewatch/internal/timeline"
)

// What the Functions host sends: the function (folder) name, the trigger's
// binding name in its function.json, and the host's version headers.
const (
	functionName = "AksEvents"
	bindingName  = "event"
	hostVersion  = "4.1037.0"
	hostAgent    = "Azure-Functions-Host/" + hostVersion

	// Webhook deliveries: the subscription name Event Grid would put in aeg-subscription-name.
	subscriptionName = "UPGRADEWATCH-REPLAY"

	maxBackoff = 2 * time.Second
)

// deliverer sends events to one target, retrying like Event Grid.
type deliverer struct {
	client      *http.Client
	handler     *url.URL // custom-handler mode when set
	webhook     *url.URL // Event Grid webhook mode when set
	retries     int
	backoff     time.Duration
	concurrency int
	log         *slog.Logger
}

func newDeliverer(cfg config, log *slog.Logger) *deliverer {
	return &deliverer{
		client: newClient(cfg), handler: cfg.handler, webhook: cfg.webhook,
		retries: cfg.retries, backoff: cfg.backoff, concurrency: cfg.concurrency, log: log,
	}
}

func newClient(cfg config) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = cfg.concurrency + 1
	return &http.Client{
		Timeout:   cfg.timeout,
		Transport: tr,
		// A redirect is a failed delivery; following it would also carry the key elsewhere.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// describe names the target for logs, without the webhook key.
func (d *deliverer) describe() string {
	if d.handler != nil {
		return d.handler.JoinPath(functionName).String()
	}
	return redactURL(d.webhook)
}

// stats count a replay. retries counts redeliveries (attempts after the first).
type stats struct {
	attempted, ok, retries, failed int
	elapsed                        time.Duration
}

// run delivers evs with d.concurrency workers (in order when there is one)
// and stops feeding them when ctx ends.
func (d *deliverer) run(ctx context.Context, evs []timeline.Event) stats {
	start := time.Now()
	var (
		mu sync.Mutex
		st stats
		wg sync.WaitGroup
	)
	jobs := make(chan timeline.Event)
	for range d.concurrency {
		wg.Go(func() {
			for ev := range jobs {
				retries, err := d.deliver(ctx, ev)
				mu.Lock()
				st.attempted++
				st.retries += retries
				if err != nil {
					st.failed++
				} else {
					st.ok++
				}
				mu.Unlock()
			}
		})
	}
feed:
	for _, ev := range evs {
		select {
		case jobs <- ev:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	st.elapsed = time.Since(start)
	return st
}

// deliveryError is a failed attempt: the status (0 for a transport error),
// what went wrong, and whether Event Grid would try again.
type deliveryError struct {
	status int
	msg    string
	retry  bool
}

func (e *deliveryError) Error() string {
	if e.status == 0 {
		return e.msg
	}
	if e.msg == "" {
		return fmt.Sprintf("HTTP %d", e.status)
	}
	return fmt.Sprintf("HTTP %d: %s", e.status, e.msg)
}

// deliver sends one event until it is accepted, fails for good, or runs out
// of retries. It returns the number of redeliveries it made.
func (d *deliverer) deliver(ctx context.Context, ev timeline.Event) (int, error) {
	delay := d.backoff
	for attempt := 0; ; attempt++ {
		err := d.attempt(ctx, ev, attempt)
		if err == nil {
			d.log.Debug("delivered", "event_id", ev.ID, "event_type", ev.Type, "cluster", ev.Cluster, "attempt", attempt+1)
			return attempt, nil
		}
		var de *deliveryError
		retry := errors.As(err, &de) && de.retry
		if !retry || attempt >= d.retries || ctx.Err() != nil {
			d.log.Error("delivery failed", "event_id", ev.ID, "event_type", ev.Type, "cluster", ev.Cluster,
				"attempts", attempt+1, "error", err)
			return attempt, err
		}
		d.log.Warn("delivery failed, retrying", "event_id", ev.ID, "event_type", ev.Type, "cluster", ev.Cluster,
			"attempt", attempt+1, "retry_in", delay, "error", err)
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return attempt, ctx.Err()
		}
		delay = min(2*delay, maxBackoff)
	}
}

func (d *deliverer) attempt(ctx context.Context, ev timeline.Event, attempt int) error {
	req, err := d.request(ctx, ev, attempt)
	if err != nil {
		return err
	}
	resp, err := d.client.Do(req)
	if err != nil {
		return &deliveryError{msg: transportError(err), retry: true}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return &deliveryError{status: resp.StatusCode, msg: "read response: " + transportError(err), retry: true}
	}
	code := resp.StatusCode
	switch {
	case code >= 200 && code < 300:
		if d.handler != nil {
			if err := checkInvokeResponse(resp.Header.Get("Content-Type"), body); err != nil {
				// The host would fail the invocation. Retrying cannot fix a
				// handler that answers this way, so report it at once.
				return &deliveryError{status: code, msg: err.Error()}
			}
		}
		return nil
	case code >= 500 || code == http.StatusRequestTimeout || code == http.StatusTooManyRequests:
		return &deliveryError{status: code, msg: snippet(body), retry: true}
	default:
		return &deliveryError{status: code, msg: snippet(body)}
	}
}

// request builds one attempt: the host's invocation envelope for a handler
// (a new invocation id each time, as each redelivery is a new invocation), or
// Event Grid's webhook delivery.
func (d *deliverer) request(ctx context.Context, ev timeline.Event, attempt int) (*http.Request, error) {
	if d.handler != nil {
		invocationID := uuid.NewString()
		body, err := host.NewEventGridRequest(bindingName, functionName, ev.Raw, time.Now(), invocationID)
		if err != nil {
			return nil, fmt.Errorf("envelope for %s: %w", ev.ID, err)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.handler.JoinPath(functionName).String(), bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/json; charset=utf-8")
		req.Header.Set("X-Azure-Functions-InvocationId", invocationID)
		req.Header.Set("X-Azure-Functions-HostVersion", hostVersion)
		req.Header.Set("User-Agent", hostAgent)
		return req, nil
	}

	var probe struct {
		SpecVersion     string `json:"specversion"`
		DataVersion     string `json:"dataVersion"`
		MetadataVersion string `json:"metadataVersion"`
	}
	_ = json.Unmarshal(ev.Raw, &probe)
	var body []byte
	var contentType, metadataVersion string
	if probe.SpecVersion != "" {
		// CloudEvents structured mode, one event per request.
		body, contentType, metadataVersion = ev.Raw, "application/cloudevents+json", probe.SpecVersion
	} else {
		// Event Grid schema: always an array, here of one.
		body = append(append([]byte{'['}, ev.Raw...), ']')
		contentType, metadataVersion = "application/json", probe.MetadataVersion
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.webhook.String(), bytes.NewReader(body))
	if err != nil {
		return nil, errors.New("build webhook request") // the error would quote the URL
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("aeg-event-type", "Notification")
	req.Header.Set("aeg-subscription-name", subscriptionName)
	req.Header.Set("aeg-delivery-count", strconv.Itoa(attempt))
	if metadataVersion != "" {
		req.Header.Set("aeg-metadata-version", metadataVersion)
	}
	if probe.DataVersion != "" {
		req.Header.Set("aeg-data-version", probe.DataVersion)
	}
	return req, nil
}

// checkInvokeResponse applies the host's rules to a 2xx answer: JSON content
// type and a JSON object body (an empty body or null hangs the invocation).
func checkInvokeResponse(contentType string, body []byte) error {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil || mt != "application/json" {
		return fmt.Errorf("response Content-Type %q, the host requires application/json", contentType)
	}
	var obj map[string]json.RawMessage
	if t := bytes.TrimSpace(body); len(t) == 0 || t[0] != '{' || json.Unmarshal(t, &obj) != nil {
		return fmt.Errorf("response body is not a JSON object: %q", string(bytes.TrimSpace(body[:min(len(body), 200)])))
	}
	return nil
}

// transportError is err without the request URL that net/http puts in it.
func transportError(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		if ue.Timeout() {
			return "timeout: " + ue.Err.Error()
		}
		return ue.Err.Error()
	}
	return err.Error()
}

func snippet(body []byte) string {
	const n = 200
	s := string(bytes.TrimSpace(body))
	if s == "" {
		return ""
	}
	if len(s) > n {
		s = s[:n] + "…"
	}
	return strconv.Quote(s)
}
