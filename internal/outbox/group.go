package outbox

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
	"github.com/upgradewatch/upgradewatch/internal/notify"
)

// Grouping. A sink that can announce several steps at once
// (notify.GroupSender: Teams, Slack) gets one message per cluster per
// dispatch window instead of one per step:
//
//   - its deliveries are recorded to wait Config.GroupWait before their
//     first attempt (deliveries); the cluster's group is due once the oldest
//     of them is due, or once Batch steps wait (the window is full);
//   - a due group is leased whole, under one token: every pending delivery
//     of the sink, up to Batch, so that a second dispatch finds them leased
//     and sends nothing (no step goes out in two messages at once);
//   - it is sent as one message and settled whole: all sent, all refused
//     for good, or all retried together;
//   - a group already leased, or waiting for a retry or for its sink's
//     breaker, holds the later steps back: they join the next group.
//
// The duplicate this cannot exclude is the per-step one of the package
// comment, a group at a time: a message the sink accepted whose answer was
// lost, or a lease that ran out mid-send, is sent again after the lease —
// as the same set (the same notify.Group ID) or, if steps were recorded
// meanwhile, within a larger group, so those steps appear in two messages.

// DefaultGroupWait is how long a chat sink waits for more steps of a
// cluster before it announces them in one message (Config.GroupWait).
const DefaultGroupWait = 30 * time.Second

// GroupedSinks names the sinks that group (notify.GroupSender): the
// Config.Grouped of the outbox that records for them.
func GroupedSinks(sinks []notify.Sink) []string {
	var out []string
	for _, s := range sinks {
		if _, ok := s.(notify.GroupSender); ok {
			out = append(out, s.Name())
		}
	}
	return out
}

// groupOf is the state of a grouped sink's pending deliveries in c.
type groupOf struct {
	pending []*fleet.Intent // not done, in outbox order
	busy    bool            // some are leased, or wait for a retry or a breaker
	dueAt   time.Time       // when the group may be claimed (zero: nothing pending)
}

// group reads the sink's group in c at now.
func (d *Dispatcher) group(c *fleet.Cluster, name string, now time.Time) groupOf {
	var g groupOf
	var earliest, held time.Time
	for _, i := range c.OutboxOrder() {
		dl, ok := i.Deliveries[name]
		if !ok || dl.Done() {
			continue
		}
		g.pending = append(g.pending, i)
		switch {
		case i.LeaseOwner != "" && now.Before(i.LeaseUntil): // leased whole by an older version
			g.busy, held = true, later(held, i.LeaseUntil)
		case dl.Leased(now):
			g.busy, held = true, later(held, dl.LeaseUntil)
		case dl.NextAttempt.After(now) && dl.LastError != "": // a retry's or a breaker's wait
			g.busy, held = true, later(held, dl.NextAttempt)
		}
		if earliest.IsZero() || dl.NextAttempt.Before(earliest) {
			earliest = dl.NextAttempt
		}
	}
	switch {
	case len(g.pending) == 0:
	case g.busy:
		g.dueAt = held
	case len(g.pending) >= d.batch: // the window is full
		g.dueAt = now
	default:
		g.dueAt = earliest
	}
	return g
}

// claimGroup leases the sink's whole group in c under token, if it is due,
// and returns copies of what it leased, oldest first; else nothing, and
// when the group comes due.
func (d *Dispatcher) claimGroup(c *fleet.Cluster, name, token string, now time.Time) ([]*fleet.Intent, time.Time) {
	g := d.group(c, name, now)
	if len(g.pending) == 0 || g.busy || g.dueAt.After(now) {
		return nil, g.dueAt
	}
	var out []*fleet.Intent
	for _, i := range g.pending[:min(len(g.pending), d.batch)] {
		dl := i.Deliveries[name]
		dl.LeaseOwner, dl.LeaseUntil = token, now.Add(d.lease)
		out = append(out, i.Clone())
	}
	return out, time.Time{}
}

// sendGroup sends the claimed steps as one message (steps that cannot be
// rendered are refused on their own) and gives every step the answer.
func (d *Dispatcher) sendGroup(ctx context.Context, id fleet.ClusterID, name string, claims []*fleet.Intent, deadline time.Time) []result {
	gs, br := d.sinks[name].(notify.GroupSender), d.breakers[name]
	if time.Now().After(deadline) || ctx.Err() != nil || !br.allow(d.now()) {
		return nil // not tried: the leases run out, or the breaker holds them
	}
	var out []result
	g := notify.Group{Cluster: id, Time: d.now().UTC()}
	var sent []*fleet.Intent
	for _, i := range claims {
		n := d.notification(id, i)
		if err := n.Validate(); err != nil {
			out = append(out, result{intent: i, at: d.now().UTC(), err: fmt.Errorf("%s: %w: %w", name, notify.ErrPermanent, err)})
			continue
		}
		g.Items = append(g.Items, n)
		sent = append(sent, i)
	}
	if len(g.Items) == 0 {
		return out
	}
	ids := make([]string, len(g.Items))
	for k, n := range g.Items {
		ids[k] = n.ID
	}
	g.ID = notify.GroupID(ids)
	if d.status != "" {
		g.StatusURL = StatusURL(d.status, id)
	}
	err := gs.SendGroup(ctx, g)
	at := d.now().UTC()
	for _, i := range sent {
		out = append(out, result{intent: i, at: at, err: err})
	}
	d.logSent(id, name, "group", g.ID, len(g.Items), err, br)
	return out
}

// logSent records one send's outcome and tells the breaker.
func (d *Dispatcher) logSent(id fleet.ClusterID, name, what, msgID string, steps int, err error, br *breaker) {
	l := d.log.With("cluster", id.Key(), "sink", name, what, msgID, "steps", steps)
	switch {
	case err == nil:
		br.success()
		l.Info("grouped notification sent")
	case errors.Is(err, fleet.ErrRejected):
		br.success()
		l.Error("grouped notification refused for good", "error", err)
	default:
		if opened, until := br.failure(d.now()); opened {
			l.Error("sink failing: circuit breaker open; its notifications wait", "error", err, "until", until.UTC().Format(time.RFC3339))
		} else {
			l.Warn("grouped notification failed; will retry", "error", err)
		}
	}
}

// maxWake bounds how far ahead this process schedules a group's dispatch;
// beyond it the Sweep (every 5 minutes, through the Due index) sends it.
const maxWake = 10 * time.Minute

// wakes are the in-process dispatches scheduled for groups' due times, by
// cluster and sink.
type wakes struct {
	mu sync.Mutex
	at map[string]time.Time
}

// wakeAt schedules, when Options.WakeGroups is set, a dispatch of the
// cluster's group for the sink at its due time (at, on the store's clock
// whose reading is now), so that a group goes out when its wait ends, not
// at the next Sweep. Several instances may schedule one: the lease lets one
// send it. One already scheduled no later is kept.
func (d *Dispatcher) wakeAt(id fleet.ClusterID, name string, at, now time.Time) {
	if !d.wakeGroups || at.IsZero() || at.Sub(now) > maxWake {
		return
	}
	key := id.Key() + "|" + name
	d.wakes.mu.Lock()
	if t, ok := d.wakes.at[key]; ok && !t.After(at) {
		d.wakes.mu.Unlock()
		return
	}
	d.wakes.at[key] = at
	d.wakes.mu.Unlock()
	// A little after the due time: the store's clock and this one differ by
	// the time the commit took.
	time.AfterFunc(max(at.Sub(now), 0)+100*time.Millisecond, func() {
		d.wakes.mu.Lock()
		if d.wakes.at[key].Equal(at) {
			delete(d.wakes.at, key)
		}
		d.wakes.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), d.lease)
		defer cancel()
		if _, err := d.DispatchSink(ctx, id, name); err != nil && !errors.Is(err, fleet.ErrNotFound) {
			d.log.Warn("grouped dispatch failed; the sweep retries", "cluster", id.Key(), "sink", name, "error", err)
		}
	})
}
