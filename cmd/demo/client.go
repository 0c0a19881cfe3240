package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

// maxBody bounds what the demo reads of one answer.
const maxBody = 8 << 20

// client speaks to the handler and the sink.
type client struct {
	http *http.Client
	now  func() time.Time
}

// do sends one request and returns the status and body; a transport error is
// an error, any status is not.
func (c *client) do(ctx context.Context, method, url string, body []byte) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	return resp.StatusCode, out, err
}

// getJSON GETs url into v and fails on any status but 200.
func (c *client) getJSON(ctx context.Context, url string, v any) error {
	code, body, err := c.do(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	if code != http.StatusOK {
		return fmt.Errorf("GET %s: HTTP %d: %s", url, code, snippet(body))
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	return nil
}

// postJSON POSTs body and decodes the answer into v whatever its status; the
// status is returned so callers can print it.
func (c *client) postJSON(ctx context.Context, url string, body []byte, v any) (int, error) {
	code, out, err := c.do(ctx, http.MethodPost, url, body)
	if err != nil {
		return 0, err
	}
	if err := json.Unmarshal(out, v); err != nil {
		return code, fmt.Errorf("POST %s: HTTP %d, not JSON: %s", url, code, snippet(out))
	}
	return code, nil
}

// invoke POSTs a custom-handler invocation envelope to BASE/function and
// returns its ReturnValue.
func (c *client) invoke(ctx context.Context, base, function, binding string, value any) (json.RawMessage, error) {
	env := map[string]any{
		"Data": map[string]any{binding: value},
		"Metadata": map[string]any{"sys": map[string]any{
			"MethodName": function, "UtcNow": c.now().UTC().Format(time.RFC3339)}},
	}
	body, err := json.Marshal(env)
	if err != nil {
		return nil, err
	}
	var out struct {
		ReturnValue json.RawMessage
	}
	code, err := c.postJSON(ctx, strings.TrimRight(base, "/")+"/"+function, body, &out)
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("%s: HTTP %d: %s", function, code, snippet(out.ReturnValue))
	}
	return out.ReturnValue, nil
}

func snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

func readFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return b, nil
}

// compact prints raw JSON on one line.
func compact(raw json.RawMessage) string {
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return string(raw)
	}
	return b.String()
}
