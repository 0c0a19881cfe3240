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
)

// Store is what the dispatcher needs to record what it does (implemented by
// the application layer, watch.App, over the repository's Update): Modify
// runs fn on a copy of the cluster's committed state at the store's now and,
// unless fn returns false, re-runs the rules and commits the result in one
// guarded transaction. After a conflict fn runs again on the state another
// writer left. It returns how many intents the cluster still owes some sink
// after the call. Errors: ErrNotFound (no such cluster), ErrUnavailable
// (transient). Safe for concurrent use.
type Store interface {
	Modify(ctx context.Context, id fleet.ClusterID, fn func(c *fleet.Cluster, now time.Time) bool) (owed int, err error)
}

// Dispatcher sends what clusters' outboxes owe. It is safe for concurrent
// use, and any number of dispatchers (in one process or many) may work on one
// cluster: leases keep them off each other's deliveries. Each sink is
// dispatched on its own and has its own circuit breaker (per process).
type Dispatcher struct {
	store    Store
	sinks    map[string]notify.Sink
	breakers map[string]*breaker
	order    []string
	owner    string
	seq      atomic.Int64
	lease    time.Duration
	batch    int
	status   string // base URL of the Status API ("" = no link)
	log      *slog.Logger
	now      func() time.Time
	// Grouping (group.go): wakeGroups schedules in-process dispatches of
	// groups at their due times.
	wakeGroups bool
	wakes      wakes
}

// Options configure a Dispatcher.
type Options struct {
	// Owner names this dispatcher in leases (host name, process and a random
	// suffix when empty).
	Owner string
	// Lease is how long a claimed delivery is held (DefaultLease when zero).
	// It must outlast a batch of sends: each is bounded by the sink's timeout.
	Lease time.Duration
	// Batch caps the deliveries one dispatch claims per cluster and sink
	// (DefaultBatch).
	Batch int
	// BreakerFailures is how many failed sends in a row (transient failures
	// and timeouts, across clusters) open a sink's circuit breaker
	// (DefaultBreakerFailures when zero).
	BreakerFailures int
	// BreakerCoolOff is how long an open breaker keeps its sink from being
	// called before one probe is let through; it doubles each time the probe
	// fails, up to RetryCap (DefaultBreakerCoolOff when zero).
	BreakerCoolOff time.Duration
	// PublicURL is the app's base URL (https://<app>.azurewebsites.net); the
	// notifications link to its Status API. "" omits the link.
	PublicURL string
	Logger    *slog.Logger
	// Now is the clock for sends' timestamps and the breakers (time.Now when
	// nil); the store's clock stamps what is committed.
	Now func() time.Time
	// WakeGroups makes the dispatcher dispatch a grouped sink again, in
	// this process, when a cluster's group waiting for its GroupWait comes
	// due, rather than leave it to the next Sweep. It needs the store's clock
	// to be the wall clock (cmd/handler sets it; tests on a fake clock
	// sweep instead).
	WakeGroups bool
}

// Defaults.
const (
	DefaultLease           = 3 * time.Minute
	DefaultBatch           = 20
	DefaultBreakerFailures = 5
	DefaultBreakerCoolOff  = time.Minute
	// Retries back off from RetryBase, doubling, to RetryCap.
	RetryBase = 30 * time.Second
	RetryCap  = 30 * time.Minute
)

// NewDispatcher returns a dispatcher sending to sinks.
func NewDispatcher(store Store, sinks []notify.Sink, o Options) *Dispatcher {
	d := &Dispatcher{store: store, sinks: map[string]notify.Sink{}, breakers: map[string]*breaker{}, owner: o.Owner,
		lease: o.Lease, batch: o.Batch, status: o.PublicURL, log: o.Logger, now: o.Now,
		wakeGroups: o.WakeGroups, wakes: wakes{at: map[string]time.Time{}}}
	if d.lease <= 0 {
		d.lease = DefaultLease
	}
	if o.BreakerFailures <= 0 {
		o.BreakerFailures = DefaultBreakerFailures
	}
	if o.BreakerCoolOff <= 0 {
		o.BreakerCoolOff = DefaultBreakerCoolOff
	}
	for _, s := range sinks {
		d.sinks[s.Name()] = s
		d.breakers[s.Name()] = &breaker{threshold: o.BreakerFailures, coolOff: o.BreakerCoolOff, probeFor: d.lease}
		d.order = append(d.order, s.Name())
	}
	if d.owner == "" {
		// Leases are compared as text; the owner's name is only for people.
		host, _ := os.Hostname()
		var b [4]byte
		_, _ = rand.Read(b[:])
		d.owner = fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(b[:]))
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
	Sent   int `json:"sent"`   // deliveries the sinks accepted
	Failed int `json:"failed"` // transient failures, to be retried
	GaveUp int `json:"gaveUp"` // permanent refusals
	// Deferred are deliveries not attempted because their sink's circuit
	// breaker is open: they wait until it lets a probe through.
	Deferred int `json:"deferred,omitempty"`
	Pending  int `json:"pending"` // intents the cluster still owes after the dispatch
}

func (r *Report) add(o Report) {
	r.Sent, r.Failed, r.GaveUp, r.Deferred = r.Sent+o.Sent, r.Failed+o.Failed, r.GaveUp+o.GaveUp, r.Deferred+o.Deferred
}

// result is what the sink answered for a claimed intent; an intent claimed
// but not tried (its turn ended, or the breaker opened) has none.
type result struct {
	intent *fleet.Intent
	at     time.Time
	err    error
}

// Dispatch sends what the cluster's outbox owes and is due now to every sink,
// each on its own (see DispatchSink), and adds up what they did. Errors are
// the store's, joined (ErrUnavailable: the sweep tries again; what was
// sent but not committed is sent again after the lease).
func (d *Dispatcher) Dispatch(ctx context.Context, id fleet.ClusterID) (Report, error) {
	return d.eachSink(d.order, Report{}, func(name string) (Report, error) { return d.DispatchSink(ctx, id, name) })
}

// eachSink runs send for every named sink at once, and adds up their
// reports (onto rep) and joins their errors.
func (d *Dispatcher) eachSink(names []string, rep Report, send func(name string) (Report, error)) (Report, error) {
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for _, name := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := send(name)
			mu.Lock()
			defer mu.Unlock()
			rep.add(r)
			rep.Pending = r.Pending // the last to finish saw the others' commits
			errs = append(errs, err)
		}()
	}
	wg.Wait()
	return rep, errors.Join(errs...)
}

// DispatchSink sends what the cluster owes one sink and is due now, and
// commits the answers: it claims the sink's deliveries under a lease of its
// own, so that it never waits for, or holds up, another sink. While the
// sink's breaker is open nothing is sent: what is due is pushed back to when
// the breaker lets a probe through, where the Sweep's Due index finds it.
// Errors are the store's (ErrNotFound for an unknown cluster).
func (d *Dispatcher) DispatchSink(ctx context.Context, id fleet.ClusterID, name string) (Report, error) {
	sink, br := d.sinks[name], d.breakers[name]
	if sink == nil {
		return Report{}, fmt.Errorf("dispatch %s: no sink %q", id.Key(), name)
	}
	if open, until := br.state(d.now()); open {
		return d.holdBack(ctx, id, name, until)
	}
	var lease sinkLease
	var now time.Time
	owed, err := d.store.Modify(ctx, id, func(c *fleet.Cluster, at time.Time) bool {
		lease, now = d.claimSink(c, name, at), at
		return len(lease.intents) > 0
	})
	if err != nil || len(lease.intents) == 0 {
		d.wakeAt(id, name, lease.due, now) // a group still waiting
		return Report{Pending: owed}, err
	}
	return d.deliverSink(ctx, id, name, lease)
}

// Claims are the deliveries one dispatch leased inside a commit of the
// caller's (Claim), one lease token per sink, for Deliver to send and settle.
type Claims struct {
	leases   map[string]sinkLease // by sink: only sinks with something leased
	deferred int                  // held back for an open breaker, in the same commit
}

// sinkLease is what one dispatch leased of one sink's deliveries.
type sinkLease struct {
	token   string
	intents []*fleet.Intent // copies, as leased
	taken   time.Time       // wall clock: sends start no later than taken + lease/2
	due     time.Time       // nothing leased of a grouped sink: when its group comes due
}

// Empty reports whether the claim leased nothing (nothing to Deliver).
func (cl *Claims) Empty() bool { return cl == nil || len(cl.leases) == 0 }

// Claim leases, in c (the caller's working copy of a cluster about to be
// committed), every sink's oldest due deliveries, each sink under a token of
// its own; for a sink whose breaker is open it pushes what is due back to
// when the breaker lets a probe through, as DispatchSink would. It reports
// whether it changed c: the caller then re-runs the rules (so that the
// cluster's next evaluation includes the lease ends) and commits c, and,
// once that commit is in, calls Deliver. A commit that loses to another
// writer must call Claim again on the state it reloads: the winner's leases
// are there, and nothing of theirs is claimed twice. A claim that never
// commits, or whose Deliver never runs (the instance stopped), leaves its
// leases to expire; the cluster's Due entry wakes the Sweep then. Pure but
// for the breakers' state and the token counter.
func (d *Dispatcher) Claim(c *fleet.Cluster, now time.Time) (*Claims, bool) {
	cl := &Claims{leases: map[string]sinkLease{}}
	for _, name := range d.order {
		if open, until := d.breakers[name].state(d.now()); open {
			cl.deferred += holdBackIn(c, name, until, now)
			continue
		}
		if l := d.claimSink(c, name, now); len(l.intents) > 0 {
			cl.leases[name] = l
		} else {
			d.wakeAt(c.ID, name, l.due, now)
		}
	}
	return cl, cl.deferred > 0 || len(cl.leases) > 0
}

// Deliver sends what Claim leased, once the commit holding the leases is in:
// each sink on its own, and each sink's answers committed in a guarded
// transaction of its own (so a slow sink holds up no other's commit). Errors
// are the store's, joined; what was sent but not committed is sent again
// after its lease.
func (d *Dispatcher) Deliver(ctx context.Context, id fleet.ClusterID, cl *Claims) (Report, error) {
	if cl == nil {
		return Report{}, nil
	}
	var leased []string
	for _, name := range d.order {
		if _, ok := cl.leases[name]; ok {
			leased = append(leased, name)
		}
	}
	return d.eachSink(leased, Report{Deferred: cl.deferred}, func(name string) (Report, error) {
		return d.deliverSink(ctx, id, name, cl.leases[name])
	})
}

// claimSink leases the sink's due deliveries in c under a new token.
func (d *Dispatcher) claimSink(c *fleet.Cluster, name string, now time.Time) sinkLease {
	// Each dispatch holds its leases under its own name: two dispatches of one
	// dispatcher (the sweep's and a background one) must not share them.
	token := fmt.Sprintf("%s/%d", d.owner, d.seq.Add(1))
	if _, ok := d.sinks[name].(notify.GroupSender); ok {
		intents, due := d.claimGroup(c, name, token, now)
		return sinkLease{token: token, intents: intents, taken: time.Now(), due: due}
	}
	return sinkLease{token: token, intents: d.claim(c, name, token, now), taken: time.Now()}
}

// deliverSink sends one sink's leased deliveries and commits its answers,
// releasing the leases.
func (d *Dispatcher) deliverSink(ctx context.Context, id fleet.ClusterID, name string, l sinkLease) (Report, error) {
	_, grouped := d.sinks[name].(notify.GroupSender)
	var results []result
	if grouped {
		results = d.sendGroup(ctx, id, name, l.intents, l.taken.Add(d.lease/2))
	} else {
		results = d.send(ctx, id, name, l.intents, l.taken.Add(d.lease/2))
	}
	var rep Report
	var next, at time.Time
	owed, err := d.store.Modify(context.WithoutCancel(ctx), id, func(c *fleet.Cluster, now time.Time) bool {
		rep = d.settle(c, name, l.token, l.intents, results, now)
		if grouped { // steps recorded while this group was out form the next
			next, at = d.group(c, name, now).dueAt, now
		}
		return true
	})
	if err != nil {
		return rep, fmt.Errorf("commit what %d sends to %s answered: %w", len(results), name, err)
	}
	d.wakeAt(id, name, next, at)
	rep.Pending = owed
	return rep, nil
}

// claim leases the run of the sink's oldest due deliveries: a sink receives a
// cluster's steps in order, so a delivery waiting for a retry (or leased
// elsewhere) holds back the later ones, for that sink only.
func (d *Dispatcher) claim(c *fleet.Cluster, name, token string, now time.Time) []*fleet.Intent {
	var out []*fleet.Intent
	for _, i := range c.OutboxOrder() {
		dl, ok := i.Deliveries[name]
		if !ok || dl.Done() {
			continue
		}
		legacy := i.LeaseOwner != "" && now.Before(i.LeaseUntil) // a row leased whole by an older version
		if legacy || dl.Leased(now) || dl.NextAttempt.After(now) || len(out) >= d.batch {
			break
		}
		dl.LeaseOwner, dl.LeaseUntil = token, now.Add(d.lease)
		// Hand the sender a copy: c is the store's working copy.
		out = append(out, i.Clone())
	}
	return out
}

// send delivers the claims in order. The sink's first transient failure ends
// its turn (the rest wait for its retry); so does the breaker opening.
// No send starts after deadline: well before the leases end.
func (d *Dispatcher) send(ctx context.Context, id fleet.ClusterID, name string, claims []*fleet.Intent, deadline time.Time) []result {
	sink, br := d.sinks[name], d.breakers[name]
	var out []result
	for _, i := range claims {
		if time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		if !br.allow(d.now()) {
			break // opened meanwhile, or another dispatch is probing
		}
		n := d.notification(id, i)
		err := sink.Send(ctx, n)
		out = append(out, result{intent: i, at: d.now().UTC(), err: err})
		l := d.log.With("cluster", id.Key(), "sink", name, "id", n.ID, "type", n.Type, "code", n.Code, "target", n.Target)
		switch {
		case err == nil:
			br.success()
			l.Info("notification sent")
		case errors.Is(err, fleet.ErrRejected): // a sink's permanent refusal (notify.ErrPermanent)
			br.success() // the sink answered: it is up, this notification is not for it
			l.Error("notification refused for good", "error", err)
		default:
			if opened, until := br.failure(d.now()); opened {
				l.Error("sink failing: circuit breaker open; its notifications wait", "error", err, "until", until.UTC().Format(time.RFC3339))
			} else {
				l.Warn("notification failed; will retry", "error", err)
			}
			return out
		}
	}
	return out
}

// settle folds the sink's answers into the state: sent, given up, or retried
// later (not before the breaker lets a probe through). It releases this
// dispatch's leases.
func (d *Dispatcher) settle(c *fleet.Cluster, name, token string, claims []*fleet.Intent, results []result, now time.Time) Report {
	var rep Report
	_, reopen := d.breakers[name].state(d.now())
	for _, r := range results {
		i := c.Outbox[r.intent.ID]
		if i == nil {
			continue // expired meanwhile
		}
		dl := i.Deliveries[name]
		if dl == nil || dl.Done() {
			continue
		}
		dl.Attempts++
		switch {
		case r.err == nil:
			dl.SentAt, dl.LastError = r.at, ""
			rep.Sent++
		case errors.Is(r.err, fleet.ErrRejected):
			dl.GaveUp, dl.LastError = true, oneLine(r.err.Error())
			rep.GaveUp++
		default:
			dl.NextAttempt, dl.LastError = later(now.Add(retryAfter(dl.Attempts)), reopen), oneLine(r.err.Error())
			rep.Failed++
		}
	}
	for _, cl := range claims {
		i := c.Outbox[cl.ID]
		if i == nil {
			continue
		}
		if dl := i.Deliveries[name]; dl != nil && dl.LeaseOwner == token {
			dl.LeaseOwner, dl.LeaseUntil = "", time.Time{}
			if !dl.Done() && reopen.After(dl.NextAttempt) {
				dl.NextAttempt = reopen // not tried: the breaker opened
			}
		}
	}
	return rep
}

// holdBack pushes the sink's due deliveries to until, when its open breaker
// lets a probe through, without calling it: they stay owed, and the cluster's
// next evaluation (the Sweep's Due index) comes no earlier than that.
func (d *Dispatcher) holdBack(ctx context.Context, id fleet.ClusterID, name string, until time.Time) (Report, error) {
	var rep Report
	owed, err := d.store.Modify(ctx, id, func(c *fleet.Cluster, now time.Time) bool {
		rep = Report{Deferred: holdBackIn(c, name, until, now)}
		return rep.Deferred > 0
	})
	rep.Pending = owed
	return rep, err
}

// holdBackIn pushes the sink's deliveries due at now back to until, and counts
// them.
func holdBackIn(c *fleet.Cluster, name string, until, now time.Time) int {
	n := 0
	for _, i := range c.Outbox {
		dl, ok := i.Deliveries[name]
		if !ok || dl.Done() || dl.Leased(now) || dl.NextAttempt.After(now) || !until.After(dl.NextAttempt) {
			continue
		}
		dl.NextAttempt = until
		if dl.LastError == "" {
			dl.LastError = name + ": not tried: its circuit breaker is open after repeated failures"
		}
		n++
	}
	return n
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
	sinks := make([]string, 0, len(i.Deliveries))
	for s := range i.Deliveries {
		sinks = append(sinks, s)
	}
	n.GroupKey = notify.GroupKey(id, sinks)
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
