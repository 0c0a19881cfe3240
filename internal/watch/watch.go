// Package watch holds upgradewatch's use cases: ingesting a signal or a node
// snapshot, refreshing a cluster from ARM, the Sweep, dispatching
// notifications, the remediation pass and recording rejections.
//
// Each use case builds a closure from pure parts (fleet.Apply, the finding
// rules with the outbox's steps, remediate's planner) and runs it through the
// repository's one write primitive, Repository.Update: one guarded commit per
// cluster change, retried by the repository on conflict. The store never
// calls a rule; the HTTP layer (package handlers) only decodes, calls an App
// method and maps the errors below to status codes. Background work (ARM
// reads after events, notification dispatch per sink) is the App's.
package watch

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
	"github.com/upgradewatch/upgradewatch/internal/outbox"
	"github.com/upgradewatch/upgradewatch/internal/patch"
)

// The use cases answer with the domain's sentinels (fleet.ErrUnavailable:
// redeliver; fleet.ErrRejected: record and drop; fleet.ErrNotFound), which
// the adapters translate their failures into, and with these of their own.
var (
	// ErrRefreshOff: ARM reads are switched off (no Enricher).
	ErrRefreshOff = errors.New("ARM enrichment is switched off")
)

// Repository is the cluster state store (implemented by *state.Store).
//
// Update is the one write primitive: load, run fn on a copy, commit the rows
// fn changed in one guarded change, and on conflict reload and run fn again
// (so fn decides from what it is given). mark != nil makes it exactly once
// per mark.ID (Duplicate when already in); without a mark, an unknown cluster
// is fleet.ErrNotFound and a change that writes nothing is Unchanged. fn
// returning ErrNoChange declines the change (Unchanged); any other
// error aborts with nothing written (fleet.ErrRejected unless a sentinel).
// UpdateMany is Update without marks over several clusters with the index
// writes batched. Errors: fleet.ErrRejected (never storable), fleet.ErrUnavailable
// (transient; a Committed result with fleet.ErrUnavailable means the index is
// behind, which a Duplicate or the Sweep repairs). All methods are safe for
// concurrent use, from any number of instances.
type Repository interface {
	Update(ctx context.Context, id fleet.ClusterID, mark *fleet.Signal, fn func(*fleet.Cluster) error) (Change, error)
	UpdateMany(ctx context.Context, ids []fleet.ClusterID, workers int, fn func(i int, c *fleet.Cluster) error) ([]Change, []error, error)
	// UpdateBatch is Update with several marks (signals of one cluster
	// delivered together): one guarded change, each mark exactly once. fn gets
	// the indexes of the marks not committed yet and answers those it
	// applied; results, one per mark: Committed, Duplicate, Unchanged (fn
	// left it out) or "" (undecided: the call failed first).
	UpdateBatch(ctx context.Context, id fleet.ClusterID, marks []*fleet.Signal, fn func(c *fleet.Cluster, pending []int) ([]int, error)) (Change, []Result, error)
	// ApplyNodes applies a node snapshot to the node rows exactly once
	// (duplicates and older snapshots change nothing). fleet.ErrRejected, fleet.ErrUnavailable.
	ApplyNodes(ctx context.Context, id fleet.ClusterID, snap fleet.NodeSnapshot) (NodesOutcome, error)
	// RecordRejection is idempotent; fleet.ErrUnavailable when it could not write.
	RecordRejection(ctx context.Context, r Rejection) error
	// Due lists the clusters due at now, oldest first, at most limit;
	// DropDue removes an entry that no longer matches its cluster;
	// RepairIndex rewrites a cluster's entries from its committed state.
	Due(ctx context.Context, now time.Time, limit int) ([]DueEntry, error)
	DropDue(ctx context.Context, e DueEntry) error
	RepairIndex(ctx context.Context, id fleet.ClusterID) error
	// PruneIndex removes index tombstones that ended long enough before
	// now, returning how many (fleet.ErrUnavailable).
	PruneIndex(ctx context.Context, now time.Time) (int, error)
	Reader
}

// Reader is what the Status API reads (implemented by *state.Store). Cluster
// reads storage, never a cache, into a copy the caller owns (fleet.ErrNotFound,
// fleet.ErrUnavailable; App.Cluster adds what is derived, not stored); the others read
// the index or the node rows (fleet.ErrUnavailable).
type Reader interface {
	Cluster(ctx context.Context, id fleet.ClusterID) (*fleet.Cluster, error)
	Clusters(ctx context.Context) ([]ClusterEntry, error)
	OpenFindings(ctx context.Context) ([]FindingEntry, error)
	Nodes(ctx context.Context, id fleet.ClusterID) (fleet.NodeInventory, []fleet.Node, error)
	Node(ctx context.Context, id fleet.ClusterID, name string) (fleet.Node, bool, error)
	NodeHistory(ctx context.Context, id fleet.ClusterID, since time.Time, node string, limit int) ([]fleet.NodeVersionChange, error)
}

// Options configure an App.
type Options struct {
	Logger *slog.Logger
	Now    func() time.Time
	// Rules run on every cluster change before it commits: the finding
	// rules with the outbox's steps (outbox.Evaluator(findings.Evaluator(…))),
	// so findings and the intents announcing them commit with the change
	// that caused them. Pure given now. Nil: no findings (and no Sweep).
	Rules func(c *fleet.Cluster, now time.Time) []fleet.Transition
	// Enricher, if set, reads clusters from ARM after their rolling events
	// and on demand. Nil switches enrichment off.
	Enricher Enricher
	// EnrichTimeout bounds one enrichment, ARM retries included (default 2m).
	EnrichTimeout time.Duration
	// EnrichWorkers is how many enrichments run at once (default 2).
	EnrichWorkers int
	// NewDispatcher, if set, makes the dispatcher of the notifications the
	// outbox records, over the App itself as its store (the dispatcher
	// records its leases and results through App.Modify): in cmd/handler,
	// outbox.NewDispatcher over the configured sinks. The App dispatches in
	// the background after each commit (a lane per sink) and in the Sweep
	// for what is due again. Nil: no sink, nothing is sent.
	NewDispatcher func(store outbox.Store) Dispatcher
	// Remediation, if set, lets the Sweep plan and carry out remediations.
	Remediation *Remediation
	// Catalogue, if set, is the fleet's newest-image catalogue: commits
	// record their image sightings in it, and the patch status and
	// time-to-patch are judged against it. Nil: only each cluster's own
	// sightings count.
	Catalogue Catalogue
	// Policy gives a cluster's policy (the one its finding rules use), for
	// the patch status. Nil: the defaults.
	Policy func(c *fleet.Cluster) fleet.Policy
	// Compliance, if set, keeps the compliance figures: each cluster's
	// summary written after commits that change a verdict (in the
	// background), and the aggregates and day snapshots the Sweep refreshes.
	// Nil: no figures (GET /api/compliance answers 501).
	Compliance ComplianceStore
	// ComplianceEvery is how often the Sweep refreshes the aggregates
	// (DefaultComplianceEvery when zero).
	ComplianceEvery time.Duration
	// Silences, if set, serves the silences API (silences.go); its Active
	// must be the Silences of the outbox.Config the Rules record with, so
	// that what the API creates and ends holds in the evaluations at once.
	// Nil: the API answers 501.
	Silences *Silences
	// Digest, if set, has the Sweep send the daily digest to its chat
	// sinks (digest.go). Nil: no digest.
	Digest *Digest
}

// App runs the use cases. It is safe for concurrent use. Its embedded Reader
// serves the Status API's reads.
type App struct {
	Reader
	repo       Repository
	log        *slog.Logger
	now        func() time.Time
	rules      func(c *fleet.Cluster, now time.Time) []fleet.Transition
	enricher   Enricher
	enrich     *clusterQueue // nil when enrichment is off
	timeout    time.Duration // of one enrichment
	dispatcher Dispatcher    // nil when no sink is configured
	notify     *clusterQueue
	remediate  *Remediation
	catalogue  Catalogue // nil: none
	policyFor  func(c *fleet.Cluster) fleet.Policy
	pruned     atomic.Int64 // unix nanos of this process's last PruneIndex

	compliance      ComplianceStore // nil: no compliance figures
	complianceEvery time.Duration
	summaries       summaryMemo
	summaryQ        *summaryQueue
	cstate          *complianceState
	lastCat         atomic.Pointer[patch.Catalogue] // the catalogue this process read last

	silences *Silences // nil: no silences API

	digest *Digest // nil: no daily digest
	dstate *digestState
}

// New returns an App over repo. Call Shutdown at the end.
func New(repo Repository, o Options) *App {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.EnrichTimeout <= 0 {
		o.EnrichTimeout = 2 * time.Minute
	}
	a := &App{Reader: repo, repo: repo, log: o.Logger, now: o.Now, rules: o.Rules, remediate: o.Remediation,
		timeout: o.EnrichTimeout, catalogue: o.Catalogue, policyFor: o.Policy, silences: o.Silences}
	if o.Digest != nil {
		a.digest, a.dstate = o.Digest, newDigestState()
	}
	if o.Compliance != nil {
		a.compliance, a.complianceEvery, a.cstate = o.Compliance, cmp.Or(o.ComplianceEvery, DefaultComplianceEvery), newComplianceState()
		a.summaryQ = newSummaryQueue(o.Compliance, &a.summaries, a.log)
	}
	if o.Enricher != nil {
		a.enricher = o.Enricher
		a.enrich = newClusterQueue(a.log, "enrichment", func(ctx context.Context, id fleet.ClusterID) error {
			_, err := a.enrichNow(ctx, id)
			return err
		}, o.EnrichWorkers, o.EnrichTimeout)
	}
	if o.NewDispatcher != nil {
		d := o.NewDispatcher(a)
		a.dispatcher = d
		a.notify = newLaneQueue(a.log, "dispatch", d.Sinks(), a.dispatchNow, dispatchWorkers, 5*time.Minute)
	}
	return a
}

// HasRules reports whether finding rules are configured (the Sweep and the
// findings list need them).
func (a *App) HasRules() bool { return a.rules != nil }

// Enriching reports whether ARM reads are on.
func (a *App) Enriching() bool { return a.enrich != nil }

// EnrichStats counts the background enrichments done and failed.
func (a *App) EnrichStats() (ok, failed int64) {
	if a.enrich == nil {
		return 0, 0
	}
	return a.enrich.counts()
}

// Shutdown stops background work (enrichments, then the notifications they
// caused), letting queued work finish until ctx ends.
func (a *App) Shutdown(ctx context.Context) error {
	var errs []error
	for _, q := range []*clusterQueue{a.enrich, a.notify} {
		if q != nil {
			errs = append(errs, q.shutdown(ctx))
		}
	}
	if a.summaryQ != nil {
		errs = append(errs, a.summaryQ.shutdown(ctx))
	}
	return errors.Join(errs...)
}

// WaitIdle waits until no enrichment or dispatch is queued or running
// (tests, benchmarks). Enrichments first: their commits queue dispatches.
func (a *App) WaitIdle(ctx context.Context) error {
	for _, q := range []*clusterQueue{a.enrich, a.notify} {
		if q != nil {
			if err := q.idle(ctx); err != nil {
				return err
			}
		}
	}
	if a.summaryQ != nil {
		return a.summaryQ.idle(ctx)
	}
	return nil
}

// Reject records an input that could not be accepted (Disposition and
// Reason set by the caller). fleet.ErrUnavailable when it could not be written:
// the input must then be redelivered, so nothing is lost without a trace.
func (a *App) Reject(ctx context.Context, r Rejection) error {
	if r.ReceivedAt.IsZero() {
		r.ReceivedAt = a.now()
	}
	return a.repo.RecordRejection(ctx, r)
}

// evaluate runs the rules on a cluster about to be committed, and brings
// its next evaluation forward to the next change of a patch verdict.
func (a *App) evaluate(c *fleet.Cluster, now time.Time) []fleet.Transition {
	if a.rules == nil {
		return nil
	}
	trans := a.rules(c, now)
	a.patchWake(c, now)
	return trans
}

// Modify runs fn on a copy of the cluster's committed state at the App's now
// and, when fn reports a change, the rules after it, committing the result in
// one guarded change (outbox.Store: how the dispatcher records what it does).
// It returns how many intents the cluster still owes. Errors: fleet.ErrNotFound,
// fleet.ErrUnavailable, fleet.ErrRejected.
func (a *App) Modify(ctx context.Context, id fleet.ClusterID, fn func(c *fleet.Cluster, now time.Time) bool) (int, error) {
	ch, err := a.modify(ctx, id, fn)
	if ch.Cluster == nil {
		return 0, err
	}
	return len(ch.Cluster.Outbox), err
}

var _ outbox.Store = (*App)(nil)

// modify is Modify returning the repository's Change.
func (a *App) modify(ctx context.Context, id fleet.ClusterID, fn func(c *fleet.Cluster, now time.Time) bool) (Change, error) {
	return a.repo.Update(ctx, id, nil, func(c *fleet.Cluster) error {
		now := a.now()
		if !fn(c, now) {
			return ErrNoChange
		}
		a.evaluate(c, now)
		return nil
	})
}
