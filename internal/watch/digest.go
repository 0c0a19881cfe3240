package watch

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
)

// digestLease is how long a claim of a day's digest to a sink holds before
// another instance takes it over (its owner stopped mid-send).
const digestLease = 5 * time.Minute

// digestWindow is what a digest looks back (opened, resolved) and ahead
// (silences ending) over.
const digestWindow = 24 * time.Hour

// DigestStore keeps the claims of the daily digests (implemented by
// *state.DigestTable): one per local day and sink. Safe for concurrent use
// from any number of instances. Errors: fleet.ErrUnavailable.
type DigestStore interface {
	// ClaimDigest claims day's digest to sink for owner: ClaimMine (send
	// it, then SettleDigest), ClaimDone (settled already) or ClaimHeld
	// (another owner's lease runs). A lapsed or released claim is taken
	// over; of two takers, one wins.
	ClaimDigest(ctx context.Context, day, sink, owner string, now time.Time, lease time.Duration) (DayClaim, error)
	// SettleDigest records owner's send: nil is sent, a fleet.ErrRejected
	// is given up for the day, anything else releases the claim for a
	// later sweep to retry.
	SettleDigest(ctx context.Context, day, sink, owner string, now time.Time, sendErr error) error
}

// ResolvedReader lists the findings that resolved since a time, from the
// index (implemented by *state.Store). Errors: fleet.ErrUnavailable.
type ResolvedReader interface {
	ResolvedFindings(ctx context.Context, since time.Time) ([]FindingEntry, error)
}

// DigestSchedule is when the daily digest goes out: at Hour:Minute in Zone.
type DigestSchedule struct {
	Hour, Minute int
	Zone         *time.Location
}

// day answers the local day the digest at now is for and whether its time
// has come: a day's digest is due from its Hour:Minute until the day ends.
func (s DigestSchedule) day(now time.Time) (string, bool) {
	local := now.In(s.Zone)
	at := time.Date(local.Year(), local.Month(), local.Day(), s.Hour, s.Minute, 0, 0, s.Zone)
	return local.Format("2006-01-02"), !local.Before(at)
}

// DigestSender posts a digest to one chat sink (internal/notify's Teams and
// Slack sinks): one bounded attempt, its failure classified as a sink's send
// is.
type DigestSender interface {
	Name() string
	SendDigest(ctx context.Context, d fleet.Digest) error
}

// Digest configures the daily digest (Options.Digest).
type Digest struct {
	Schedule DigestSchedule
	Store    DigestStore
	Resolved ResolvedReader
	// Sinks are the chat sinks that get it, each once a day.
	Sinks []DigestSender
	// PublicURL is the app's base URL, for the "Open status" link ("" none).
	PublicURL string
}

// DigestReport says what a Sweep's digest pass did.
type DigestReport struct {
	Day    string   `json:"day"`
	Sent   []string `json:"sent,omitempty"`
	Failed []string `json:"failed,omitempty"`
	Done   int      `json:"alreadySent,omitempty"`
	Held   int      `json:"heldElsewhere,omitempty"`
}

// digestPass sends the day's digest to each chat sink not yet known to have
// it, once its time has come: exactly once across instances by the claim
// row, a failed send retried by a later sweep of the same day. The content
// is read (once, only when some sink's claim is won) from the index and
// summary rows, never from the clusters' state.
func (a *App) digestPass(ctx context.Context, l *slog.Logger) (*DigestReport, error) {
	dg := a.digest
	if dg == nil || len(dg.Sinks) == 0 {
		return nil, nil
	}
	now := a.now()
	day, due := dg.Schedule.day(now)
	if !due || a.digestDone(day) {
		return nil, nil
	}
	rep := &DigestReport{Day: day}
	key := strings.ReplaceAll(day, "-", "")
	var content *fleet.Digest
	var failed error
	for _, s := range dg.Sinks {
		claim, err := dg.Store.ClaimDigest(ctx, key, s.Name(), a.cstateOwner(), now, digestLease)
		switch {
		case err != nil:
			failed = err
			continue
		case claim == ClaimDone:
			rep.Done++
			a.noteDigestSent(day, s.Name())
			continue
		case claim == ClaimHeld:
			rep.Held++
			continue
		}
		if content == nil {
			d, err := a.buildDigest(ctx, day, now)
			if err != nil {
				// Release the claim so that the next sweep tries again.
				_ = dg.Store.SettleDigest(ctx, key, s.Name(), a.cstateOwner(), now, err)
				return rep, err
			}
			content = &d
		}
		d := *content
		d.ID = key + "-" + s.Name()
		sendErr := s.SendDigest(ctx, d)
		if err := dg.Store.SettleDigest(ctx, key, s.Name(), a.cstateOwner(), a.now(), sendErr); err != nil {
			l.Warn("digest outcome not recorded", "sink", s.Name(), "error", err)
		}
		if sendErr != nil {
			rep.Failed = append(rep.Failed, s.Name())
			l.Warn("daily digest not sent; a later sweep today tries again", "sink", s.Name(), "day", day, "error", sendErr)
			continue
		}
		rep.Sent = append(rep.Sent, s.Name())
		a.noteDigestSent(day, s.Name())
		l.Info("daily digest sent", "sink", s.Name(), "day", day, "open", d.OpenNow, "opened", d.OpenedTotal, "resolved", d.ResolvedTotal)
	}
	return rep, failed
}

// digestState is the App's per-process bookkeeping of the digest.
type digestState struct {
	owner string // this process, as a claimer of digests
	mu    sync.Mutex
	day   string          // the local day sent holds
	sent  map[string]bool // sinks known to have day's digest
}

func newDigestState() *digestState {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return &digestState{owner: hex.EncodeToString(b), sent: map[string]bool{}}
}

// cstateOwner names this process as a claimer.
func (a *App) cstateOwner() string { return a.dstate.owner }

// digestDone reports whether this process knows every sink got day's digest.
func (a *App) digestDone(day string) bool {
	a.dstate.mu.Lock()
	defer a.dstate.mu.Unlock()
	return a.dstate.day == day && len(a.dstate.sent) == len(a.digest.Sinks)
}

func (a *App) noteDigestSent(day, sink string) {
	a.dstate.mu.Lock()
	defer a.dstate.mu.Unlock()
	if a.dstate.day != day {
		a.dstate.day, a.dstate.sent = day, map[string]bool{}
	}
	a.dstate.sent[sink] = true
}

// buildDigest reads what the digest shows: the fleet aggregate (one point
// read), the open-finding index and its recent tombstones (one partition
// query each), and the silences (one query).
func (a *App) buildDigest(ctx context.Context, day string, now time.Time) (fleet.Digest, error) {
	dg := a.digest
	d := fleet.Digest{Day: day, Zone: dg.Schedule.Zone.String(), Time: now.UTC()}
	if dg.PublicURL != "" {
		d.StatusURL = strings.TrimRight(dg.PublicURL, "/") + "/api/findings"
	}
	if a.compliance != nil {
		agg, ok, err := a.compliance.Aggregate(ctx, ScopeFleet)
		if err != nil {
			return d, fmt.Errorf("read fleet compliance: %w", err)
		}
		if ok {
			f := agg.Figures
			d.Compliance = &fleet.DigestCompliance{Clusters: agg.Clusters, Pools: f.Pools, UpToDate: f.UpToDate, Behind: f.Behind,
				PercentPoolsCurrent: f.PercentPoolsCurrent, MaxDaysBehind: f.MaxDaysBehind, ComputedAt: agg.ComputedAt}
		}
	}
	open, err := a.repo.OpenFindings(ctx)
	if err != nil {
		return d, fmt.Errorf("list open findings: %w", err)
	}
	resolved, err := dg.Resolved.ResolvedFindings(ctx, now.Add(-digestWindow))
	if err != nil {
		return d, err
	}
	since := now.Add(-digestWindow)
	d.OpenNow = len(open)
	d.Longest = digestFindings(open, func(x, y FindingEntry) int { return x.Finding.OpenedAt.Compare(y.Finding.OpenedAt) }, nil)
	newest := func(x, y FindingEntry) int { return y.Finding.OpenedAt.Compare(x.Finding.OpenedAt) }
	inWindow := func(e FindingEntry) bool { return !e.Finding.OpenedAt.Before(since) }
	d.Opened = digestFindings(append(slices.Clone(open), resolved...), newest, inWindow)
	d.OpenedTotal = countIf(open, inWindow) + countIf(resolved, inWindow)
	d.Resolved = digestFindings(resolved, func(x, y FindingEntry) int { return y.Finding.ResolvedAt.Compare(x.Finding.ResolvedAt) }, nil)
	d.ResolvedTotal = len(resolved)
	if a.silences != nil {
		list, err := a.silences.store.Silences(ctx, now)
		if err != nil {
			return d, fmt.Errorf("list silences: %w", err)
		}
		for _, s := range list {
			if s.ActiveAt(now) && s.End().Sub(now) <= digestWindow {
				d.Expiring = append(d.Expiring, s)
			}
		}
		slices.SortFunc(d.Expiring, func(x, y fleet.Silence) int { return cmp.Or(x.End().Compare(y.End()), strings.Compare(x.ID, y.ID)) })
	}
	return d, nil
}

// digestFindings sorts the entries keep accepts and converts the first
// fleet.DigestMaxItems of them.
func digestFindings(es []FindingEntry, order func(x, y FindingEntry) int, keep func(FindingEntry) bool) []fleet.DigestFinding {
	var sel []FindingEntry
	for _, e := range es {
		if keep == nil || keep(e) {
			sel = append(sel, e)
		}
	}
	slices.SortStableFunc(sel, func(x, y FindingEntry) int {
		return cmp.Or(order(x, y), strings.Compare(x.Cluster.Key()+x.Finding.Code+x.Finding.Target, y.Cluster.Key()+y.Finding.Code+y.Finding.Target))
	})
	sel = sel[:min(len(sel), fleet.DigestMaxItems)]
	out := make([]fleet.DigestFinding, len(sel))
	for i, e := range sel {
		f := e.Finding
		out[i] = fleet.DigestFinding{Cluster: e.Cluster, Code: f.Code, Target: f.Target, Severity: f.Severity,
			OpenedAt: f.OpenedAt, ResolvedAt: f.ResolvedAt, SilencedBy: f.SilencedBy}
	}
	return out
}

func countIf(es []FindingEntry, keep func(FindingEntry) bool) int {
	n := 0
	for _, e := range es {
		if keep(e) {
			n++
		}
	}
	return n
}
