package outbox

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
	"github.com/upgradewatch/upgradewatch/internal/notify"
	"github.com/upgradewatch/upgradewatch/internal/state"
)

// Store is what the dispatcher needs of the state store (*state.Store):
// a guarded read-modify-write of one cluster.
type Store interface {
	Update(ctx context.Context, id fleet.ClusterID, fn func(c *fleet.Cluster, now time.Time) bool) (state.Evaluated, error)
}

var _ Store = (*state.Store)(nil)

// Dispatcher sends what clusters' outboxes owe. It is safe for concurrent
// use, and any number of dispatchers (in one process or many) may work on one
// cluster: leases keep them off each other's intents.
type Dispatcher struct {
	store  Store
	sinks  map[string]notify.Sink
	order  []string
	owner  string
	seq    atomic.Int64
	lease  time.Duration
	batch  int
	status string // base URL of the Status API ("" = no link)
	log    *slog.Logger
	now    func() time.Time
}

// Options configure a Dispatcher.
type Options struct {
	// Owner names this dispatcher in leases (host name, process and a random
	// suffix when empty).
	Owner string
	// Lease is how long a claimed intent is held (DefaultLease when zero).
	// It must outlast a batch of sends: each is bounded by the sink's timeout.
	Lease time.Duration
	// Batch caps the intents one dispatch claims per cluster (DefaultBatch).
	Batch int
	// PublicURL is the app's base URL (https://<app>.azurewebsites.net); the
	// notifications link to its Status API. "" omits the link.
	PublicURL string
	Logger    *slog.Logger
	// Now is the clock for sends' timestamps (time.Now when nil); the store's
	// clock stamps what is committed.
	Now func() time.Time
}

// Defaults.
const (
	DefaultLease = 3 * time.Minute
	DefaultBatch = 20
	// Retries back off from RetryBase, doubling, to RetryCap.
	RetryBase = 30 * time.Second
	RetryCap  = 30 * time.Minute
)

// NewDispatcher returns a dispatcher sending to sinks.
func NewDispatcher(store Store, sinks []notify.Sink, o Options) *Dispatcher {
	d := &Dispatcher{store: store, sinks: map[string]notify.Sink{}, owner: o.Owner, lease: o.Lease, batch: o.Batch,
		status: o.PublicURL, log: o.Logger, now: o.Now}
	// Leases are compared as text; the owner's name is only for people.
	for _, s := range sinks {
		d.sinks[s.Name()] = s
		d.order = append(d.order, s.Name())
	}
	if d.owner == "" {
		host, _ := os.Hostname()
		var b [4]byte
		_, _ = rand.Read(b[:])
		d.owner = fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(b[:]))
	}
	if d.lease <= 0 {
		d.lease = DefaultLease
	}
	if d.batch <= 0 {
		d.batch = DefaultBatch
	}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	if d.now == nil {
		d.now = time.Now
	}
	return d
}

// Sinks returns the names of the sinks, in configuration order: the
// Config.Sinks the outbox records deliveries for.
func (d *Dispatcher) Sinks() []string { return append([]string(nil), d.order...) }

// Report says what one dispatch did.
type Report struct {
	Sent    int `json:"sent"`    // deliveries the sinks accepted
	Failed  int `json:"failed"`  // transient failures, to be retried
	GaveUp  int `json:"gaveUp"`  // permanent refusals
	Pending int `json:"pending"` // intents the cluster still owes after the dispatch
}

// claim is one delivery a dispatch took: an intent (as it was when claimed)
// for one sink.
type claim struct {
	intent *fleet.Intent
	sink   string
}

// result is what a sink answered for a claim.
type result struct {
	claim
	at  time.Time
	err error
}

// Dispatch sends what the cluster's outbox owes and is due now, and commits
// the answers. Errors are the store's (state.ErrUnavailable: the sweep tries
// again; what was sent but not committed is sent again after the lease).
func (d *Dispatcher) Dispatch(ctx context.Context, id fleet.ClusterID) (Report, error) {
	// Each dispatch holds its leases under its own name: two dispatches of one
	// dispatcher (the sweep's and a background one) must not share them.
	token := fmt.Sprintf("%s/%d", d.owner, d.seq.Add(1))
	var claims []claim
	_, err := d.store.Update(ctx, id, func(c *fleet.Cluster, now time.Time) bool {
		claims = d.claim(c, token, now)
		return len(claims) > 0
	})
	if err != nil || len(claims) == 0 {
		return Report{}, err
	}
	results := d.send(ctx, id, claims)
	var rep Report
	out, err := d.store.Update(context.WithoutCancel(ctx), id, func(c *fleet.Cluster, now time.Time) bool {
		rep = d.settle(c, token, results, now)
		return true
	})
	if err != nil {
		return rep, fmt.Errorf("commit what %d sends answered: %w", len(results), err)
	}
	rep.Pending = out.Outbox
	return rep, nil
}

// claim leases, for each sink, the run of its oldest due deliveries: a sink
// receives a cluster's steps in order, so a delivery waiting for a retry (or
// leased elsewhere) holds back the later ones for that sink only.
func (d *Dispatcher) claim(c *fleet.Cluster, token string, now time.Time) []claim {
	var out []claim
	taken := map[string]bool{}
	for _, name := range d.order {
		n := 0
		for _, i := range c.OutboxOrder() {
			dl, ok := i.Deliveries[name]
			if !ok || dl.Done() {
				continue
			}
			leased := i.LeaseOwner != "" && now.Before(i.LeaseUntil)
			if leased || dl.NextAttempt.After(now) || n >= d.batch {
				break
			}
			n++
			taken[i.ID] = true
			out = append(out, claim{intent: i, sink: name})
		}
	}
	for id := range taken {
		i := c.Outbox[id]
		i.LeaseOwner, i.LeaseUntil = token, now.Add(d.lease)
	}
	// Hand the senders copies: c is the store's working copy.
	copies := map[string]*fleet.Intent{}
	for k := range out {
		id := out[k].intent.ID
		if copies[id] == nil {
			copies[id] = out[k].intent.Clone()
		}
		out[k].intent = copies[id]
	}
	return out
}

// send delivers the claims, each sink in its own goroutine and in order; a
// sink's first transient failure ends its turn (the rest wait for its retry).
func (d *Dispatcher) send(ctx context.Context, id fleet.ClusterID, claims []claim) []result {
	bySink := map[string][]claim{}
	for _, cl := range claims {
		bySink[cl.sink] = append(bySink[cl.sink], cl)
	}
	var mu sync.Mutex
	var out []result
	var wg sync.WaitGroup
	deadline := time.Now().Add(d.lease / 2) // stop starting sends well before the lease ends
	for name, cls := range bySink {
		sink := d.sinks[name]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, cl := range cls {
				if time.Now().After(deadline) || ctx.Err() != nil {
					return
				}
				n := d.notification(id, cl.intent)
				err := sink.Send(ctx, n)
				r := result{claim: cl, at: d.now().UTC(), err: err}
				mu.Lock()
				out = append(out, r)
				mu.Unlock()
				l := d.log.With("cluster", id.Key(), "sink", name, "id", n.ID, "type", n.Type, "code", n.Code, "target", n.Target)
				switch {
				case err == nil:
					l.Info("notification sent")
				case errors.Is(err, notify.ErrPermanent):
					l.Error("notification refused for good", "error", err)
				default:
					l.Warn("notification failed; will retry", "error", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	return out
}

// settle folds the answers into the state: sent, given up, or retried later.
// It releases this dispatcher's leases.
func (d *Dispatcher) settle(c *fleet.Cluster, token string, results []result, now time.Time) Report {
	var rep Report
	for _, r := range results {
		i := c.Outbox[r.intent.ID]
		if i == nil {
			continue // expired meanwhile
		}
		dl := i.Deliveries[r.sink]
		if dl == nil || dl.Done() {
			continue
		}
		dl.Attempts++
		switch {
		case r.err == nil:
			dl.SentAt, dl.LastError = r.at, ""
			rep.Sent++
		case errors.Is(r.err, notify.ErrPermanent):
			dl.GaveUp, dl.LastError = true, oneLine(r.err.Error())
			rep.GaveUp++
		default:
			dl.NextAttempt, dl.LastError = now.Add(retryAfter(dl.Attempts)), oneLine(r.err.Error())
			rep.Failed++
		}
	}
	for _, i := range c.Outbox {
		if i.LeaseOwner == token {
			i.LeaseOwner, i.LeaseUntil = "", time.Time{}
		}
	}
	return rep
}

// retryAfter is the backoff before attempt n+1: RetryBase doubling to
// RetryCap, with up to a tenth of jitter so that instances spread out.
func retryAfter(n int) time.Duration {
	wait := RetryCap
	if n < 16 {
		wait = min(RetryBase<<(n-1), RetryCap)
	}
	return wait + time.Duration(mrand.Int64N(int64(wait/10)+1))
}

// oneLine clips a sink's error for the Deliveries column.
func oneLine(s string) string {
	if len(s) > 300 {
		s = strings.ToValidUTF8(s[:300], "") + "…"
	}
	return s
}

// notification is the notify form of an intent.
func (d *Dispatcher) notification(id fleet.ClusterID, i *fleet.Intent) notify.Notification {
	n := notify.Notification{
		ID: i.ID, Type: "io.upgradewatch." + i.Step, Time: i.At, Cluster: id,
		Code: i.Code, Severity: i.Severity, Target: i.Target, Summary: i.Summary,
		OpenedAt: i.OpenedAt, ResolvedAt: i.ResolvedAt, Reminder: i.Reminder,
		EscalatedFrom: i.EscalatedFrom,
	}
	if i.Evidence != "" && json.Valid([]byte(i.Evidence)) {
		n.Evidence = json.RawMessage(i.Evidence)
	}
	if d.status != "" {
		n.StatusURL = StatusURL(d.status, id)
	}
	if r := i.Remediation; r != nil {
		n.Remediation = &notify.RemediationStep{Action: r.Action, DryRun: r.DryRun, Detail: r.Detail, Error: r.Error}
	}
	return n
}

// StatusURL is the Status API's address for a cluster under base.
func StatusURL(base string, id fleet.ClusterID) string {
	return fmt.Sprintf("%s/api/clusters/%s/%s/%s", trimSlash(base), url.PathEscape(id.SubscriptionID),
		url.PathEscape(id.ResourceGroup), url.PathEscape(id.Name))
}

func trimSlash(s string) string {
	for len(s) > 0 && s[len(s)-1] == '/' {
		s = s[:len(s)-1]
	}
	return s
}
