package watch

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/sync/singleflight"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
)

// Bounds of the silences (docs/notifications.md#silences).
const (
	// MaxActiveSilences bounds the silences in force at once: each is
	// matched against every open finding of every evaluation.
	MaxActiveSilences = 1000
	// MaxSilenceAhead bounds a silence's until: a silence is a temporary
	// "known, leave it"; what should never be announced belongs in policy.
	MaxSilenceAhead = 90 * 24 * time.Hour
	// MaxSilenceComment bounds the comment (characters); MaxSilenceField
	// each match field, createdBy and endedBy.
	MaxSilenceComment = 1000
	MaxSilenceField   = 256
	// DefaultSilenceTTL is how long one read of the active silences serves
	// the evaluations of an instance: a silence created or ended on another
	// instance takes effect here within it.
	DefaultSilenceTTL = 30 * time.Second
)

var (
	// ErrSilencesOff: no silence store is configured.
	ErrSilencesOff = errors.New("silences are not configured")
	// ErrTooManySilences: MaxActiveSilences are in force already.
	ErrTooManySilences = fmt.Errorf("too many active silences (at most %d): end some first", MaxActiveSilences)
)

// SilenceStore keeps the silences (implemented by *state.SilenceTable). All
// methods are safe for concurrent use from any number of instances. Errors:
// fleet.ErrUnavailable (transient), fleet.ErrNotFound (an unknown id),
// fleet.ErrRejected (storage refuses the row for good).
type SilenceStore interface {
	// AddSilence inserts a new silence. An id already taken is
	// fleet.ErrUnavailable: a retry makes a new id.
	AddSilence(ctx context.Context, s fleet.Silence) error
	// Silence reads one silence.
	Silence(ctx context.Context, id string) (fleet.Silence, error)
	// Silences lists, in one query and in no order, the silences whose end
	// (fleet.Silence.End) is after since: the active ones and those that
	// ended since.
	Silences(ctx context.Context, since time.Time) ([]fleet.Silence, error)
	// UpdateSilence runs fn on the stored silence and replaces it under its
	// ETag, running fn again on a fresh read when another writer won; fn
	// returning ErrNoChange writes nothing. It answers the silence as stored.
	UpdateSilence(ctx context.Context, id string, fn func(s *fleet.Silence) error) (fleet.Silence, error)
}

// SilenceRequest is a silence to create, as the API takes it.
type SilenceRequest struct {
	Cluster, Code, Target string
	Until                 time.Time
	Comment, CreatedBy    string
}

// invalidSilence is a request that can never be accepted as it is: its
// message is the API's answer, and it is a fleet.ErrRejected.
type invalidSilence string

func (e invalidSilence) Error() string        { return string(e) }
func (e invalidSilence) Is(target error) bool { return target == fleet.ErrRejected }

// silenceIDRE is the shape of the ids newSilenceID makes: sortable by
// creation time, and safe in a Table key and a URL path.
var silenceIDRE = regexp.MustCompile(`^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{8}$`)

// ValidSilenceID reports whether id could name a silence.
func ValidSilenceID(id string) bool { return silenceIDRE.MatchString(id) }

func newSilenceID(now time.Time) string {
	var b [4]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return now.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
}

// CheckSilence validates a request at now and answers the silence it makes
// (no id yet): canonical code, trimmed fields, times in UTC. The error is a
// fleet.ErrRejected whose message says what is wrong.
func CheckSilence(r SilenceRequest, now time.Time) (fleet.Silence, error) {
	s := fleet.Silence{Cluster: strings.TrimSpace(r.Cluster), Code: strings.TrimSpace(r.Code), Target: strings.TrimSpace(r.Target),
		Until: r.Until.UTC().Truncate(time.Millisecond), Comment: strings.TrimSpace(r.Comment), CreatedBy: strings.TrimSpace(r.CreatedBy),
		CreatedAt: now.UTC().Truncate(time.Millisecond)}
	if s.Cluster == "" && s.Code == "" && s.Target == "" {
		return s, invalidSilence("match must name at least one of cluster, code or target")
	}
	for _, f := range []struct{ name, v string }{{"match.cluster", s.Cluster}, {"match.code", s.Code}, {"match.target", s.Target}, {"createdBy", s.CreatedBy}} {
		if utf8.RuneCountInString(f.v) > MaxSilenceField {
			return s, invalidSilence(fmt.Sprintf("%s is longer than %d characters", f.name, MaxSilenceField))
		}
	}
	if err := checkClusterPattern(s.Cluster); err != nil {
		return s, err
	}
	if s.Code != "" {
		i := slices.IndexFunc(fleet.Codes, func(c string) bool { return strings.EqualFold(c, s.Code) })
		if i < 0 {
			return s, invalidSilence(fmt.Sprintf("match.code %q is not a finding code (one of %s)", s.Code, strings.Join(fleet.Codes, ", ")))
		}
		s.Code = fleet.Codes[i]
	}
	if _, err := path.Match(s.Target, ""); err != nil {
		return s, invalidSilence(fmt.Sprintf("match.target %q is not a valid glob (*, ?, [a-z], \\ escapes)", s.Target))
	}
	switch {
	case r.Until.IsZero():
		return s, invalidSilence("until is required: an RFC 3339 time")
	case !s.Until.After(now):
		return s, invalidSilence("until must be in the future")
	case s.Until.Sub(now) > MaxSilenceAhead:
		return s, invalidSilence(fmt.Sprintf("until may be at most %d days ahead", int(MaxSilenceAhead/(24*time.Hour))))
	case s.CreatedBy == "":
		return s, invalidSilence("createdBy is required: who silences (or sign in: X-MS-CLIENT-PRINCIPAL-NAME)")
	case s.Comment == "":
		return s, invalidSilence("comment is required: why")
	case utf8.RuneCountInString(s.Comment) > MaxSilenceComment:
		return s, invalidSilence(fmt.Sprintf("comment is longer than %d characters", MaxSilenceComment))
	}
	return s, nil
}

// checkClusterPattern accepts "" (any cluster), a glob over the cluster
// name (no slash), or three globs "<subscriptionId>/<resourceGroup>/<clusterName>".
func checkClusterPattern(p string) error {
	if p == "" {
		return nil
	}
	parts := strings.Split(p, "/")
	if len(parts) != 1 && len(parts) != 3 {
		return invalidSilence(fmt.Sprintf("match.cluster %q must be <subscriptionId>/<resourceGroup>/<clusterName> (each may be a glob) or a cluster name glob", p))
	}
	for _, part := range parts {
		if part == "" {
			return invalidSilence(fmt.Sprintf("match.cluster %q has an empty part (use * for any)", p))
		}
		if _, err := path.Match(part, ""); err != nil {
			return invalidSilence(fmt.Sprintf("match.cluster %q is not a valid glob (*, ?, [a-z], \\ escapes)", p))
		}
	}
	return nil
}

// CreateSilence stores a new silence and brings the clusters with open
// findings it matches up to date, so that the Status API shows them held at
// once. Errors: fleet.ErrRejected (an invalid request: the message says
// why), ErrTooManySilences, ErrSilencesOff, fleet.ErrUnavailable.
func (a *App) CreateSilence(ctx context.Context, r SilenceRequest) (fleet.Silence, error) {
	if a.silences == nil {
		return fleet.Silence{}, ErrSilencesOff
	}
	now := a.now()
	s, err := CheckSilence(r, now)
	if err != nil {
		return s, err
	}
	// The bound is checked before the insert: instances creating at the
	// same moment may pass it by a few, which costs nothing real.
	active, err := a.silences.store.Silences(ctx, now)
	if err != nil {
		return s, fmt.Errorf("count active silences: %w", err)
	}
	if len(active) >= MaxActiveSilences {
		return s, ErrTooManySilences
	}
	s.ID = newSilenceID(now)
	if err := a.silences.store.AddSilence(ctx, s); err != nil {
		return s, fmt.Errorf("store silence: %w", err)
	}
	a.silences.remember(s)
	a.log.Info("silence created", "silence", s.ID, "match_cluster", s.Cluster, "match_code", s.Code,
		"match_target", s.Target, "until", s.Until, "created_by", s.CreatedBy)
	if _, err := a.reconsider(ctx, s, "silence created"); err != nil {
		// The silence holds anyway: every evaluation reads it. Only the
		// Status API's silencedBy waits for the clusters' next evaluation.
		a.log.Warn("silence stored; its clusters show it at their next evaluation", "silence", s.ID, "error", err)
	}
	return s, nil
}

// SilenceList is what ListSilences found: newest first, as of At.
type SilenceList struct {
	Silences []fleet.Silence
	At       time.Time
	// Since: silences that ended before it are left out.
	Since time.Time
}

// ListSilences lists the silences in force and those that ended after
// since, newest first. Errors: ErrSilencesOff, fleet.ErrUnavailable.
func (a *App) ListSilences(ctx context.Context, since time.Time) (SilenceList, error) {
	if a.silences == nil {
		return SilenceList{}, ErrSilencesOff
	}
	list, err := a.silences.store.Silences(ctx, since)
	if err != nil {
		return SilenceList{}, fmt.Errorf("list silences: %w", err)
	}
	slices.SortFunc(list, func(x, y fleet.Silence) int {
		if c := y.CreatedAt.Compare(x.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(y.ID, x.ID)
	})
	return SilenceList{Silences: list, At: a.now(), Since: since}, nil
}

// Silence reads one silence. Errors: fleet.ErrNotFound (also for an id no
// silence could have), ErrSilencesOff, fleet.ErrUnavailable.
func (a *App) Silence(ctx context.Context, id string) (fleet.Silence, error) {
	if a.silences == nil {
		return fleet.Silence{}, ErrSilencesOff
	}
	if !ValidSilenceID(id) {
		return fleet.Silence{}, fmt.Errorf("silence %q: %w", id, fleet.ErrNotFound)
	}
	return a.silences.store.Silence(ctx, id)
}

// EndSilence ends a silence now, recording who ended it, and re-evaluates
// at once the clusters with open findings it matched, so that a finding it
// held that is still open is announced now rather than at the silence's
// until. A silence that has ended or expired already is answered as it is,
// and its clusters are re-evaluated again: a call that failed half-way is
// completed by its retry. Errors: fleet.ErrNotFound, fleet.ErrRejected (by
// too long), ErrSilencesOff, fleet.ErrUnavailable (the silence may have
// ended: retry).
func (a *App) EndSilence(ctx context.Context, id, by string) (fleet.Silence, error) {
	if a.silences == nil {
		return fleet.Silence{}, ErrSilencesOff
	}
	if !ValidSilenceID(id) {
		return fleet.Silence{}, fmt.Errorf("silence %q: %w", id, fleet.ErrNotFound)
	}
	if utf8.RuneCountInString(by) > MaxSilenceField {
		return fleet.Silence{}, invalidSilence(fmt.Sprintf("endedBy is longer than %d characters", MaxSilenceField))
	}
	now := a.now()
	s, err := a.silences.store.UpdateSilence(ctx, id, func(s *fleet.Silence) error {
		if !s.ActiveAt(now) {
			return ErrNoChange
		}
		s.EndedAt, s.EndedBy = now.UTC().Truncate(time.Millisecond), by
		return nil
	})
	if err != nil {
		return s, err
	}
	a.silences.remember(s)
	a.log.Info("silence ended", "silence", s.ID, "ended_by", s.EndedBy, "ended_at", s.EndedAt)
	n, err := a.reconsider(ctx, s, "silence ended")
	if err != nil {
		return s, fmt.Errorf("silence %s ended, its clusters not all re-evaluated (retry): %w", s.ID, err)
	}
	if n > 0 {
		a.log.Info("clusters re-evaluated after a silence ended", "silence", s.ID, "clusters", n)
	}
	return s, nil
}

// reconsider re-evaluates the clusters with an open finding the silence
// matches (from the index: one partition read) and sends what they now owe
// in the background. It answers how many it re-evaluated.
func (a *App) reconsider(ctx context.Context, s fleet.Silence, reason string) (int, error) {
	if a.rules == nil {
		return 0, nil
	}
	open, err := a.repo.OpenFindings(ctx)
	if err != nil {
		return 0, fmt.Errorf("list open findings: %w", err)
	}
	seen := map[string]bool{}
	var ids []fleet.ClusterID
	for _, e := range open {
		if k := e.Cluster.Key(); !seen[k] && s.Matches(e.Cluster, e.Finding.Code, e.Finding.Target) {
			seen[k] = true
			ids = append(ids, e.Cluster)
		}
	}
	if len(ids) == 0 {
		return 0, nil
	}
	outs, errs, idxErr := a.repo.UpdateMany(ctx, ids, sweepWorkers, func(_ int, c *fleet.Cluster) error {
		a.evaluate(c, a.now())
		return nil
	})
	var failed error
	for i, id := range ids {
		switch {
		case errors.Is(errs[i], fleet.ErrNotFound):
		case errs[i] != nil:
			failed = errs[i]
		case outs[i].Result == Committed:
			a.dispatchLater(id, len(outs[i].Cluster.Outbox), reason)
		}
	}
	if idxErr != nil {
		// The commits stand; the Sweep repairs the index.
		a.log.Warn("silence's clusters re-evaluated, the index not updated", "silence", s.ID, "error", idxErr)
	}
	return len(ids), failed
}

// SilencesOptions configure a Silences.
type SilencesOptions struct {
	Logger *slog.Logger
	Now    func() time.Time
	// TTL is how long one read serves (DefaultSilenceTTL when zero).
	TTL time.Duration
	// ReadTimeout bounds one read of the table (5 s when zero).
	ReadTimeout time.Duration
}

// Silences is an instance's view of the silences in force, for the
// evaluations (Active is outbox.Config.Silences) and the silences API
// (Options.Silences). It reads the store at most once per TTL and knows its
// own instance's creations and ends at once. Safe for concurrent use.
type Silences struct {
	store   SilenceStore
	log     *slog.Logger
	now     func() time.Time
	ttl     time.Duration
	timeout time.Duration
	reads   singleflight.Group

	mu       sync.Mutex
	read     []fleet.Silence         // the last read: in force when read
	readAt   time.Time               // zero until the first read
	failedAt time.Time               // the last failed read
	local    map[string]localSilence // this instance's writes, by id
}

type localSilence struct {
	s  fleet.Silence
	at time.Time
}

// silenceRetry is how long a failed read is not repeated: the evaluations
// meanwhile use the last list read.
const silenceRetry = 5 * time.Second

// NewSilences returns the view of the silences in store.
func NewSilences(store SilenceStore, o SilencesOptions) *Silences {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.TTL <= 0 {
		o.TTL = DefaultSilenceTTL
	}
	if o.ReadTimeout <= 0 {
		o.ReadTimeout = 5 * time.Second
	}
	return &Silences{store: store, log: o.Logger, now: o.Now, ttl: o.TTL, timeout: o.ReadTimeout, local: map[string]localSilence{}}
}

// Active answers the silences in force at now, reading the store when the
// last read is older than the TTL. It is called inside the evaluation's
// commit, so it takes no context; a read that fails leaves the last list in
// use (storage that cannot be read fails the commit too, nearly always).
func (v *Silences) Active(now time.Time) []fleet.Silence {
	v.mu.Lock()
	stale := v.readAt.IsZero() || v.now().Sub(v.readAt) >= v.ttl
	backoff := !v.failedAt.IsZero() && v.now().Sub(v.failedAt) < silenceRetry
	v.mu.Unlock()
	if stale && !backoff {
		v.refresh()
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	byID := make(map[string]fleet.Silence, len(v.read)+len(v.local))
	for _, s := range v.read {
		byID[s.ID] = s
	}
	for id, l := range v.local {
		// A silence only ever moves from in force to ended: the ended
		// version is the newer, whichever source has it.
		if old, ok := byID[id]; !ok || old.EndedAt.IsZero() {
			byID[id] = l.s
		}
	}
	var out []fleet.Silence
	for _, s := range byID {
		if s.ActiveAt(now) {
			out = append(out, s)
		}
	}
	slices.SortFunc(out, func(x, y fleet.Silence) int { return strings.Compare(x.ID, y.ID) })
	return out
}

// refresh reads the silences in force (one query; concurrent callers share it).
func (v *Silences) refresh() {
	_, _, _ = v.reads.Do("active", func() (any, error) {
		start := v.now()
		ctx, cancel := context.WithTimeout(context.Background(), v.timeout)
		defer cancel()
		list, err := v.store.Silences(ctx, start)
		v.mu.Lock()
		defer v.mu.Unlock()
		if err != nil {
			v.failedAt = start
			v.log.Warn("silences not read; the last list read stays in use", "error", err)
			return nil, err
		}
		v.read, v.readAt, v.failedAt = list, start, time.Time{}
		for id, l := range v.local {
			// Written before this read began: the read has it.
			if l.at.Before(start) {
				delete(v.local, id)
			}
		}
		return nil, nil
	})
}

// remember makes this instance's own write count at once.
func (v *Silences) remember(s fleet.Silence) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.local[s.ID] = localSilence{s: s, at: v.now()}
}
