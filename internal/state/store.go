// Package state keeps upgradewatch's fleet state in Azure Table storage (Azurite
// locally) through aztables.
//
// Store is the repository of the application layer (internal/watch): every
// write goes through its one primitive, Update (update.go), which loads a
// cluster, runs the caller's closure on a copy and commits what changed; the
// store itself never runs a rule. Node snapshots (nodes.go) keep their own
// rows and guard but go through the same retry loop.
//
// Table Fleet holds one partition per cluster. Every accepted signal commits as
// an entity-group transaction in its cluster's partition: the move of the
// partition's sequence row from seq~n to seq~n+1 (the optimistic-concurrency
// guard), the signal's audit row (whose RowKey is the dedupe marker), and every
// state row the signal changed. A change bigger than one transaction holds
// commits in several, each guarded, the dedupe marker in the last (see
// chunks.go). A redelivered signal fails on its audit row and changes nothing;
// two instances racing on one cluster fail on the sequence row, reload and
// retry, and lose nothing. Values that can grow with input are bounded when
// encoded (see limits.go), so storage never refuses a genuine signal's rows. Table FleetIndex lists clusters and the
// operations in flight, so fleet-wide reads never scan Fleet. Table Rejected
// keeps what could not be accepted. docs/tables.md documents every column.
package state

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
)

// Errors: the domain's sentinels (fleet.ErrUnavailable, …), which the store
// maps its failures to; these aliases keep errors.Is(err, state.ErrX) working
// while callers move to the fleet names.
var (
	// ErrUnavailable: storage could not be reached or answered with a transient
	// failure (timeouts, 408, 429, 5xx), or contention did not settle. The same
	// call may succeed later: the event must be redelivered.
	ErrUnavailable = fleet.ErrUnavailable
	// ErrRejected: the signal can never be committed (the transition refused it,
	// or storage refused its rows as invalid). Redelivery would not help.
	ErrRejected = fleet.ErrRejected
	// ErrNotFound: no state for the cluster.
	ErrNotFound = fleet.ErrNotFound
)

// Table base names; Options.TablePrefix is prepended.
const (
	TableFleet    = "Fleet"
	TableIndex    = "FleetIndex"
	TableRejected = "Rejected"
)

// maxBatch is Table storage's limit of operations in one entity-group transaction.
const maxBatch = 100

// commitAttempts bounds the reload-and-retry loop under contention; between
// attempts a writer backs off for a random time that grows with the attempt,
// so that two instances fighting over one cluster stop colliding.
const commitAttempts = 16

// Options configure a Store.
type Options struct {
	TablePrefix string
	CacheSize   int // clusters whose last committed state is kept in memory; 0 disables
	Logger      *slog.Logger
	Now         func() time.Time
	// NodeRetention is how long the row of a node gone from the cluster's
	// snapshots is kept (fleet.DefaultNodeRetention when zero).
	NodeRetention time.Duration
	// IndexLinger is how long in-flight and open-finding entries written
	// behind a signal's commit wait for other commits' entries to share
	// their transaction (DefaultIndexLinger when zero; negative: no wait).
	IndexLinger time.Duration
	// IndexRepairAfter bounds how long such entries can stay wrong when
	// their write is lost (the process dies before it lands): the change
	// files a due entry no later than this from its commit
	// (DefaultIndexRepairAfter when zero).
	IndexRepairAfter time.Duration
}

// Defaults of Options.
const (
	DefaultIndexLinger      = 100 * time.Millisecond
	DefaultIndexRepairAfter = 2 * time.Hour
)

// Store is the Table-storage adapter. It is safe for concurrent use; one
// process serialises work per cluster and other processes are fenced by the
// sequence row.
type Store struct {
	fleet, index, rejected *aztables.Client
	names                  [3]string
	log                    *slog.Logger
	now                    func() time.Time
	cache                  *lru
	locks                  [256]sync.Mutex
	idx                    *indexWriter
	nodeRetention          time.Duration
	repairAfter            time.Duration
	filed                  dueMemo
	// chunkHook, when set (tests only), runs after each transaction but the
	// last of a change committed in several; an error stops the commit there,
	// as a process dying between them would.
	chunkHook func(part int) error
}

// New returns a Store on svc. Call EnsureTables before first use and Close at the end.
func New(svc *aztables.ServiceClient, o Options) *Store {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	names := [3]string{o.TablePrefix + TableFleet, o.TablePrefix + TableIndex, o.TablePrefix + TableRejected}
	s := &Store{
		fleet:    svc.NewClient(names[0]),
		index:    svc.NewClient(names[1]),
		rejected: svc.NewClient(names[2]),
		names:    names,
		log:      o.Logger,
		now:      o.Now,
		cache:    newLRU(o.CacheSize),
		// Gone nodes' rows are pruned after it (internal/state/nodes.go).
		nodeRetention: o.NodeRetention,
	}
	if s.nodeRetention <= 0 {
		s.nodeRetention = fleet.DefaultNodeRetention
	}
	s.repairAfter = cmp.Or(o.IndexRepairAfter, DefaultIndexRepairAfter)
	s.idx = newIndexWriter(s.index, o.Logger, max(0, cmp.Or(o.IndexLinger, DefaultIndexLinger)))
	return s
}

// Tables returns the names of the tables the store uses.
func (s *Store) Tables() []string { return s.names[:] }

// EnsureTables creates the tables that do not exist yet.
func (s *Store) EnsureTables(ctx context.Context) error {
	for i, c := range []*aztables.Client{s.fleet, s.index, s.rejected} {
		if err := ensureTable(ctx, c, s.names[i]); err != nil {
			return err
		}
	}
	return nil
}

// sideTable is what each table beside Fleet and FleetIndex (the catalogue,
// silences, digest claims) holds: its client, its name and a logger.
type sideTable struct {
	client *aztables.Client
	name   string
	log    *slog.Logger
}

func newSideTable(svc *aztables.ServiceClient, name string, log *slog.Logger) sideTable {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return sideTable{client: svc.NewClient(name), name: name, log: log}
}

// Table is the table's name.
func (t *sideTable) Table() string { return t.name }

// EnsureTable creates the table when it does not exist yet.
func (t *sideTable) EnsureTable(ctx context.Context) error {
	return ensureTable(ctx, t.client, t.name)
}

// ensureTable creates a table unless it exists already.
func ensureTable(ctx context.Context, c *aztables.Client, name string) error {
	if _, err := c.CreateTable(ctx, nil); err != nil && !hasCode(err, aztables.TableAlreadyExists) {
		return fmt.Errorf("create table %s: %w", name, wrapStorage(err))
	}
	return nil
}

// Close writes the index entries still queued and stops the index writer.
// No call may be in flight.
func (s *Store) Close() { s.idx.close() }

// backoff waits a random time that grows with the attempt before a writer
// that lost a race on a partition's guard reloads and tries again, so that
// two instances fighting over one partition stop colliding.
func backoff(ctx context.Context, attempt int) error {
	select {
	case <-time.After(time.Duration(rand.Int64N(int64(attempt) * int64(5*time.Millisecond)))):
		return nil
	case <-ctx.Done():
		return wrapStorage(ctx.Err())
	}
}

// duplicate answers a redelivered signal, repairing the index from the
// committed state in case the first delivery failed between commit and index.
func (s *Store) duplicate(ctx context.Context, id fleet.ClusterID) (Change, error) {
	snap, err := s.load(ctx, id)
	if err != nil {
		return Change{}, err
	}
	s.cache.put(id.Key(), snap)
	out := Change{Result: Duplicate, Seq: snap.seq, Cluster: snap.cluster.Clone()}
	err = s.reconcileIndex(ctx, snap.cluster)
	if err == nil {
		err = s.verifyIndex(ctx, id, snap.seq)
	}
	if err != nil {
		return out, fmt.Errorf("%w: index repair: %v", ErrUnavailable, err)
	}
	return out, nil
}

// snapshot is a cluster's committed state with the rows that encode it.
type snapshot struct {
	cluster *fleet.Cluster
	rows    map[string]row
	seq     int64
	// partial: the sequence row says a change committed in several
	// transactions stopped before its last (see chunks.go).
	partial bool
	// legacy: the stored Cluster row still holds the volatile columns (last
	// written before issue #13); the next commit rewrites it without them.
	legacy bool
}

// snapshot returns the cluster's state from the cache, when this instance
// holds it (cached: it may be stale), else from storage.
func (s *Store) snapshot(ctx context.Context, id fleet.ClusterID) (snap *snapshot, cached bool, err error) {
	if snap, ok := s.cache.get(id.Key()); ok {
		return snap, true, nil
	}
	snap, err = s.load(ctx, id)
	if err != nil {
		return nil, false, err
	}
	// A cluster with no state is never cached: the guard of a partition's
	// first commit is only "add seq~1", which a stale empty view would pass
	// once the partition has moved past seq~2 (seq~1 is gone by then).
	if snap.seq > 0 {
		s.cache.put(id.Key(), snap)
	}
	return snap, false, nil
}

// load reads a cluster's state rows (everything before the audit rows). A
// read that finds state rows but no sequence row saw a transaction half
// applied (the emulator does not isolate a query from a concurrent
// transaction); committing on it would pass the first commit's guard
// (see snapshot), so it is read again.
func (s *Store) load(ctx context.Context, id fleet.ClusterID) (*snapshot, error) {
	for attempt := 1; ; attempt++ {
		snap, stored, err := s.loadOnce(ctx, id)
		if err != nil || snap.seq > 0 || stored == 0 {
			return snap, err
		}
		if attempt >= 3 {
			return nil, fmt.Errorf("%w: load %s: state rows without a sequence row", ErrUnavailable, id.Key())
		}
		s.log.Debug("torn read of a partition; reading again", "cluster", id.Key())
		if err := backoff(ctx, attempt); err != nil {
			return nil, err
		}
	}
}

// loadOnce is one read of load; stored is how many state rows it found.
func (s *Store) loadOnce(ctx context.Context, id fleet.ClusterID) (snap *snapshot, stored int, err error) {
	pk := id.Key()
	filter := fmt.Sprintf("PartitionKey eq %s and RowKey lt %s", odataString(pk), odataString(stateRowsEnd))
	ents, err := s.query(ctx, s.fleet, filter)
	if err != nil {
		return nil, 0, fmt.Errorf("load %s: %w", pk, err)
	}
	rows := map[string]entity{}
	var seq int64
	var newest entity
	for _, e := range ents {
		rk := e.str("RowKey")
		if strings.HasPrefix(rk, rkSeqPrefix) {
			if n := e.int("Seq"); n > seq {
				seq, newest = n, e
			}
			continue
		}
		rows[rk] = e
	}
	stored = len(rows)
	// The volatile columns are on the newest sequence row (volatile.go).
	if newest != nil {
		rows[rkVolatile] = newest
	}
	c, err := clusterOf(id, rows)
	if err != nil {
		return nil, 0, fmt.Errorf("%w: load %s: %v", ErrUnavailable, pk, err)
	}
	head, ok := rows[rkCluster]
	if !ok {
		c.ID = id
	}
	return &snapshot{cluster: c, rows: rowsOf(c), seq: seq, partial: newest.bool("Partial"), legacy: hasVolatile(head)}, stored, nil
}

func (s *Store) query(ctx context.Context, c *aztables.Client, filter string) ([]entity, error) {
	return s.queryLimit(ctx, c, filter, 0)
}

// queryLimit reads at most limit entities (all when limit <= 0).
func (s *Store) queryLimit(ctx context.Context, c *aztables.Client, filter string, limit int) ([]entity, error) {
	return listEntitiesLimit(ctx, c, filter, limit)
}

func (s *Store) hasSignal(ctx context.Context, pk, id string) (bool, error) {
	_, err := s.fleet.GetEntity(ctx, pk, signalKey(id), nil)
	switch {
	case err == nil:
		return true, nil
	case hasCode(err, aztables.ResourceNotFound):
		return false, nil
	}
	return false, wrapStorage(err)
}

// Cluster reads one cluster's current state from storage (never the cache:
// another instance may have moved it on).
func (s *Store) Cluster(ctx context.Context, id fleet.ClusterID) (*fleet.Cluster, error) {
	snap, err := s.load(ctx, id)
	if err != nil {
		return nil, err
	}
	if snap.seq == 0 {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, id.Key())
	}
	return snap.cluster, nil
}

func (s *Store) lock(pk string) *sync.Mutex {
	h := fnv.New32a()
	_, _ = h.Write([]byte(pk))
	return &s.locks[h.Sum32()%uint32(len(s.locks))]
}

// odataString quotes a value for an OData filter: the only escape OData string
// literals have is doubling the single quote. Filters are built only through it.
func odataString(v string) string { return "'" + strings.ReplaceAll(v, "'", "''") + "'" }

type errClass int

const (
	classTransient errClass = iota
	classConflict
	classInvalid
)

// Error codes that mean "these rows can never be stored".
var invalidCodes = []string{
	"PropertyValueTooLarge", "EntityTooLarge", "InvalidInput", "InvalidValueType", "OutOfRangeInput",
	"PropertyNameInvalid", "PropertyNameTooLong", "TooManyProperties", "InvalidDuplicateRow",
	"RequestBodyTooLarge", "KeyValueTooLarge", "InvalidXmlDocument",
}

// Error codes that mean "the partition is not as we thought".
var conflictCodes = []string{"EntityAlreadyExists", "ResourceNotFound", "UpdateConditionNotSatisfied"}

// classify sorts a storage error. aztables reports a failed transaction as a
// ResponseError with status 202 and the failing operation's code only in the
// body, so batch errors are classified by the codes the message contains.
func classify(err error) errClass {
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		msg := err.Error()
		switch {
		case re.StatusCode == 408 || re.StatusCode == 429 || re.StatusCode >= 500:
			return classTransient
		case re.StatusCode == 413:
			return classInvalid
		}
		for _, c := range conflictCodes {
			if re.ErrorCode == c || strings.Contains(msg, c) {
				return classConflict
			}
		}
		for _, c := range invalidCodes {
			if re.ErrorCode == c || strings.Contains(msg, c) {
				return classInvalid
			}
		}
		if re.StatusCode == 400 {
			return classInvalid
		}
		if re.StatusCode == 409 || re.StatusCode == 412 || re.StatusCode == 404 {
			return classConflict
		}
		return classTransient
	}
	if strings.Contains(err.Error(), "malformed HTTP response") {
		// Azurite's answer to an over-long changeset; Azure answers 400.
		return classInvalid
	}
	return classTransient
}

func hasCode(err error, code aztables.TableErrorCode) bool {
	var re *azcore.ResponseError
	return errors.As(err, &re) && re.ErrorCode == string(code)
}

// wrapStorage marks an error as transient, keeping its first line (the SDK's
// messages carry whole response bodies).
func wrapStorage(err error) error {
	if errors.Is(err, ErrUnavailable) || errors.Is(err, ErrRejected) {
		return err
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return fmt.Errorf("%w: %s", ErrUnavailable, firstLine(err))
}

func firstLine(err error) string {
	msg := err.Error()
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		code := re.ErrorCode
		if code == "" {
			for _, c := range append(append([]string{}, conflictCodes...), invalidCodes...) {
				if strings.Contains(msg, c) {
					code = c
					break
				}
			}
		}
		return fmt.Sprintf("status %d %s", re.StatusCode, code)
	}
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		msg = msg[:i]
	}
	if len(msg) > 300 {
		msg = msg[:300] + "…"
	}
	return msg
}
