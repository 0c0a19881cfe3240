package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
	"github.com/upgradewatch/upgradewatch/internal/inventory"
)

// pageSize is the limit of each list request. A page of 500 full Node
// objects is a few megabytes.
const pageSize = 500

// maxPageBytes bounds one page; far above any real one.
const maxPageBytes = 256 << 20

// maxRestarts bounds how often a list whose continue token expired starts over.
const maxRestarts = 3

// errExpired is the API's 410 Gone for an expired continue token.
var errExpired = errors.New("continue token expired")

// kubeClient lists nodes with the pod's service account.
type kubeClient struct {
	http    *http.Client
	server  string
	token   string // never logged
	backoff Backoff
}

func newKubeClient(cfg Config) (*kubeClient, error) {
	token, err := os.ReadFile(filepath.Join(cfg.ServiceAccountDir, "token"))
	if err != nil {
		return nil, fmt.Errorf("service account token: %w", err)
	}
	if len(strings.TrimSpace(string(token))) == 0 {
		return nil, fmt.Errorf("service account token %s is empty", filepath.Join(cfg.ServiceAccountDir, "token"))
	}
	caFile := filepath.Join(cfg.ServiceAccountDir, "ca.crt")
	ca, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("cluster CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, fmt.Errorf("cluster CA: no PEM certificate in %s", caFile)
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return &kubeClient{
		http:    newHTTPClient(transport, 2*time.Minute),
		server:  cfg.APIServer,
		token:   strings.TrimSpace(string(token)),
		backoff: cfg.Backoff,
	}, nil
}

// listNodes lists every node, page by page, and returns them as a snapshot
// observed when the list began, with the number of non-AKS nodes skipped. A
// list whose continue token expires midway starts over: pages of different
// moments must not be mixed into one complete snapshot.
func (k *kubeClient) listNodes(ctx context.Context, log *slog.Logger) (fleet.NodeSnapshot, int, error) {
	for restart := 0; ; restart++ {
		s, skipped, err := k.listOnce(ctx, log)
		if errors.Is(err, errExpired) && restart < maxRestarts {
			log.Warn("node list expired midway, starting over", "restart", restart+1)
			continue
		}
		return s, skipped, err
	}
}

func (k *kubeClient) listOnce(ctx context.Context, log *slog.Logger) (fleet.NodeSnapshot, int, error) {
	s := fleet.NodeSnapshot{ObservedAt: time.Now().UTC()}
	skipped, cont := 0, ""
	for page := 1; ; page++ {
		var l inventory.NodeList
		err := retry(ctx, log, k.backoff, deadline(ctx), "list nodes", func() error {
			var err error
			l, err = k.page(ctx, cont)
			return err
		})
		if err != nil {
			return s, 0, err
		}
		obs, n, err := inventory.FromNodes(l.Items)
		if err != nil {
			return s, 0, fmt.Errorf("page %d: %w", page, err)
		}
		s.Nodes = append(s.Nodes, obs...)
		skipped += n
		log.Debug("node page read", "page", page, "items", len(l.Items))
		if l.Metadata.Continue == "" {
			return s, skipped, nil
		}
		cont = l.Metadata.Continue
	}
}

// page fetches one page of GET /api/v1/nodes.
func (k *kubeClient) page(ctx context.Context, cont string) (inventory.NodeList, error) {
	q := url.Values{"limit": {fmt.Sprint(pageSize)}}
	if cont != "" {
		q.Set("continue", cont)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.server+"/api/v1/nodes?"+q.Encode(), nil)
	if err != nil {
		return inventory.NodeList{}, err
	}
	req.Header.Set("Authorization", "Bearer "+k.token)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "node-reporter/"+version)
	resp, err := k.http.Do(req)
	if err != nil {
		return inventory.NodeList{}, networkError(err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusOK:
	case resp.StatusCode == http.StatusGone:
		return inventory.NodeList{}, errExpired
	case retryable(resp.StatusCode):
		return inventory.NodeList{}, transient(fmt.Errorf("API server answered %s: %s", resp.Status, statusMessage(resp.Body)), retryAfter(resp.Header, time.Now()))
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return inventory.NodeList{}, fmt.Errorf("API server answered %s: %s (the service account needs list on nodes: apply infra/k8s)", resp.Status, statusMessage(resp.Body))
	default:
		return inventory.NodeList{}, fmt.Errorf("API server answered %s: %s", resp.Status, statusMessage(resp.Body))
	}
	var l inventory.NodeList
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxPageBytes)).Decode(&l); err != nil {
		// A cut connection mid-body is as transient as a failed dial.
		return inventory.NodeList{}, transient(fmt.Errorf("read node list: %w", err), 0)
	}
	if l.Kind != "NodeList" {
		return inventory.NodeList{}, fmt.Errorf("API server sent kind %q, want NodeList", l.Kind)
	}
	return l, nil
}

// statusMessage extracts the message of a Kubernetes Status body, else the
// start of the body.
func statusMessage(r io.Reader) string {
	body := snippet(r)
	var st struct {
		Message string `json:"message"`
	}
	if json.Unmarshal([]byte(body), &st) == nil && st.Message != "" {
		return st.Message
	}
	return body
}
