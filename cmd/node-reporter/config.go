package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// DefaultServiceAccountDir is where Kubernetes mounts a pod's token and CA.
const DefaultServiceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount"

// DefaultTokenFile is where infra/k8s mounts the projected service-account
// token for upgradewatch (audience upgradewatch): the cluster's own proof of
// which cluster is posting.
const DefaultTokenFile = "/var/run/secrets/upgradewatch/token"

// NoToken as UPGRADEWATCH_TOKEN_FILE sends no token, for an upgradewatch in
// key mode (local development).
const NoToken = "none"

// Config is every setting node-reporter reads, all from the environment.
type Config struct {
	APIServer         string   // https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT
	ServiceAccountDir string   // token and ca.crt
	NodesURL          *url.URL // UPGRADEWATCH_NODES_URL
	FunctionKey       string   // never logged
	TokenFile         string   // UPGRADEWATCH_TOKEN_FILE: re-read at every post; "" sends none
	Timeout           time.Duration
	LogLevel          slog.Level
	Backoff           Backoff // not configurable: tests build their own
}

// parseConfig reads the environment; getenv is os.Getenv in production. The
// function key file is read here so that a missing file is a configuration
// error.
func parseConfig(getenv func(string) string) (Config, error) {
	c := Config{
		ServiceAccountDir: DefaultServiceAccountDir,
		Timeout:           5 * time.Minute,
		Backoff:           Backoff{Base: 500 * time.Millisecond, Max: 30 * time.Second},
	}
	if v := getenv("UPGRADEWATCH_LOG_LEVEL"); v != "" {
		if err := c.LogLevel.UnmarshalText([]byte(strings.ToUpper(v))); err != nil {
			return c, fmt.Errorf("UPGRADEWATCH_LOG_LEVEL=%q: want debug, info, warn or error", v)
		}
	}

	host, port := getenv("KUBERNETES_SERVICE_HOST"), getenv("KUBERNETES_SERVICE_PORT")
	if host == "" || port == "" {
		return c, errors.New("KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set: node-reporter runs in a pod")
	}
	c.APIServer = "https://" + net.JoinHostPort(host, port)
	if v := getenv("UPGRADEWATCH_SERVICEACCOUNT_DIR"); v != "" {
		c.ServiceAccountDir = v
	}

	raw := getenv("UPGRADEWATCH_NODES_URL")
	if raw == "" {
		return c, errors.New("UPGRADEWATCH_NODES_URL is not set: want https://<app>.azurewebsites.net/api/clusters/<subscription>/<resource group>/<cluster>/nodes")
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil || u.Host == "" || u.Opaque != "":
		return c, fmt.Errorf("UPGRADEWATCH_NODES_URL=%q is not an absolute URL", raw)
	case u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		// Logs and errors print the URL; a key in it would leak.
		return c, errors.New("UPGRADEWATCH_NODES_URL must not carry credentials, a query or a fragment: put the function key in UPGRADEWATCH_FUNCTION_KEY")
	case u.Scheme == "https":
	case u.Scheme == "http" && isLoopback(u.Hostname()):
		// Local testing only: the key must not cross a network in clear.
	default:
		return c, fmt.Errorf("UPGRADEWATCH_NODES_URL=%q: want https (http only to a loopback address)", raw)
	}
	c.NodesURL = u

	key, file := getenv("UPGRADEWATCH_FUNCTION_KEY"), getenv("UPGRADEWATCH_FUNCTION_KEY_FILE")
	switch {
	case key != "" && file != "":
		return c, errors.New("set UPGRADEWATCH_FUNCTION_KEY or UPGRADEWATCH_FUNCTION_KEY_FILE, not both")
	case file != "":
		b, err := os.ReadFile(filepath.Clean(file))
		if err != nil {
			return c, fmt.Errorf("UPGRADEWATCH_FUNCTION_KEY_FILE: %w", err)
		}
		key = string(b)
	case key == "":
		return c, errors.New("no function key: set UPGRADEWATCH_FUNCTION_KEY or UPGRADEWATCH_FUNCTION_KEY_FILE")
	}
	key = strings.TrimSpace(key)
	if key == "" {
		return c, errors.New("the function key is empty")
	}
	for _, r := range key {
		if r <= ' ' || r > '~' {
			// Say where, never what: the value is a secret.
			return c, errors.New("the function key contains a space or a non-printable character; is it the whole key?")
		}
	}
	c.FunctionKey = key

	switch v := getenv("UPGRADEWATCH_TOKEN_FILE"); v {
	case "":
		c.TokenFile = DefaultTokenFile
	case NoToken:
	default:
		c.TokenFile = filepath.Clean(v)
	}

	if v := getenv("UPGRADEWATCH_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Second || d > time.Hour {
			return c, fmt.Errorf("UPGRADEWATCH_TIMEOUT=%q: want a duration from 1s to 1h", v)
		}
		c.Timeout = d
	}
	return c, nil
}

// readToken reads the projected service-account token. The kubelet
// replaces the file before the token expires, so it is read for every post,
// never kept. Errors say where, never what: the value is a credential.
func readToken(file string) (string, error) {
	if file == "" {
		return "", nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("service-account token for upgradewatch (UPGRADEWATCH_TOKEN_FILE): %w; the CronJob mounts it as a projected volume (infra/k8s)", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" || len(tok) > 16<<10 {
		return "", fmt.Errorf("service-account token %s is empty or oversized", file)
	}
	for _, r := range tok {
		if r <= ' ' || r > '~' {
			return "", fmt.Errorf("service-account token %s contains a space or a non-printable character", file)
		}
	}
	return tok, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
