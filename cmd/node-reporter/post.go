package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"
)

// poster sends one snapshot to upgradewatch.
type poster struct {
	client   *http.Client
	url      string
	key      string
	token    func() (string, error) // the bearer token, read afresh for each attempt
	agent    string
	backoff  Backoff
	deadline time.Time
}

// post sends body until upgradewatch accepts it, refuses it, or the deadline
// nears. Every attempt sends the same bytes, so the server can drop repeats
// by snapshot id. It returns the accepting status and the start of the reply.
func (p *poster) post(ctx context.Context, body []byte, log *slog.Logger) (int, string, error) {
	var status int
	var reply string
	err := retry(ctx, log, p.backoff, p.deadline, "post snapshot", func() error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url, bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("User-Agent", p.agent)
		req.Header.Set("x-functions-key", p.key)
		if p.token != nil {
			tok, err := p.token()
			if err != nil {
				return err
			}
			if tok != "" {
				req.Header.Set("Authorization", "Bearer "+tok)
			}
		}
		resp, err := p.client.Do(req)
		if err != nil {
			return networkError(err)
		}
		defer resp.Body.Close()
		msg := snippet(resp.Body)
		switch {
		case resp.StatusCode >= 200 && resp.StatusCode < 300:
			status, reply = resp.StatusCode, msg
			return nil
		case retryable(resp.StatusCode):
			return transient(fmt.Errorf("upgradewatch answered %s: %s", resp.Status, msg), retryAfter(resp.Header, time.Now()))
		default:
			return fmt.Errorf("upgradewatch refused the snapshot: %s: %s", resp.Status, msg)
		}
	})
	return status, reply, err
}

// snippet reads the start of a response body for a log line, and drains a
// little more so the connection can be reused.
func snippet(r io.Reader) string {
	b, _ := io.ReadAll(io.LimitReader(r, 2048))
	_, _ = io.Copy(io.Discard, io.LimitReader(r, 64<<10))
	return strings.TrimSpace(string(b))
}
