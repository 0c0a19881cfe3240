package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
)

// Kinds of Table storage request the counting proxy tells apart.
const (
	kindGuarded  = "guarded transaction" // an entity-group transaction that moves a sequence guard (seq~ rows)
	kindBatch    = "other transaction"   // an entity-group transaction without a guard (the index, archive rows)
	kindPoint    = "point read"          // GET of one entity
	kindQuery    = "query"               // GET of a table with a filter (range reads, the due index)
	kindWrite    = "single-entity write" // insert, update, merge or delete of one entity
	kindTableOps = "table operation"     // create, delete or list tables
)

// requestKinds is the order kinds are reported in.
var requestKinds = []string{kindGuarded, kindBatch, kindPoint, kindQuery, kindWrite, kindTableOps}

// classify tells what one Table storage request is from its method, URL path
// and (for $batch) body. A transaction is guarded when it writes a seq~ row:
// every guarded commit adds the partition's next sequence row.
func classify(method, path string, body []byte) string {
	last := path[strings.LastIndex(path, "/")+1:]
	switch {
	case last == "$batch":
		if bytes.Contains(body, []byte(`"RowKey":"seq~`)) || bytes.Contains(body, []byte(`RowKey='seq~`)) ||
			bytes.Contains(body, []byte(`RowKey='seq%7E`)) {
			return kindGuarded
		}
		return kindBatch
	case last == "Tables" || strings.HasPrefix(last, "Tables("):
		return kindTableOps
	case method == http.MethodGet && strings.Contains(last, "PartitionKey="):
		return kindPoint
	case method == http.MethodGet:
		return kindQuery
	}
	return kindWrite
}

// countingProxy forwards the handler's storage requests to Azurite and counts
// them by kind, so a figure can name transactions rather than requests.
type countingProxy struct {
	endpoint string // what to give the handler as its table endpoint
	srv      *http.Server
	mu       sync.Mutex
	counts   map[string]int64
}

// newCountingProxy listens on a free loopback port in front of the Azurite
// table endpoint (scheme://host:port/account).
func newCountingProxy(endpoint string) (*countingProxy, error) {
	target, err := url.Parse(endpoint)
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &countingProxy{counts: map[string]int64{},
		endpoint: fmt.Sprintf("http://%s%s", l.Addr(), target.Path)}
	origin := &url.URL{Scheme: target.Scheme, Host: target.Host}
	rp := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) { r.SetURL(origin) }}
	p.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body []byte
		if strings.HasSuffix(r.URL.Path, "$batch") {
			body, _ = io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		p.mu.Lock()
		p.counts[classify(r.Method, r.URL.Path, body)]++
		p.mu.Unlock()
		rp.ServeHTTP(w, r)
	})}
	go func() { _ = p.srv.Serve(l) }()
	return p, nil
}

// snapshot copies the counts so far.
func (p *countingProxy) snapshot() map[string]int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]int64, len(p.counts))
	for k, v := range p.counts {
		out[k] = v
	}
	return out
}

func (p *countingProxy) close() { _ = p.srv.Close() }

// diffCounts is after minus before, kind by kind, and the total.
func diffCounts(before, after map[string]int64) (map[string]int64, int64) {
	out := map[string]int64{}
	var total int64
	for k, v := range after {
		if d := v - before[k]; d != 0 {
			out[k] = d
			total += d
		}
	}
	return out, total
}
