package state

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
	"github.com/upgradewatch/upgradewatch/internal/watch"
)

// TableSilences is the silences table's base name (Options.TablePrefix is
// prepended, as for the others).
const TableSilences = "Silences"

// KindSilence is the Kind column of a silence row.
const KindSilence = "Silence"

// pkSilence is the one partition: silences are few (at most
// watch.MaxActiveSilences in force), and one partition lists them in one query.
const pkSilence = "silence"

// silenceAttempts bounds the read-modify-replace loop of one silence; only
// two writers racing to end it contend, and one round settles that.
const silenceAttempts = 5

var _ watch.SilenceStore = (*SilenceTable)(nil)

// SilenceOptions configure a SilenceTable.
type SilenceOptions struct {
	TablePrefix string
	Logger      *slog.Logger
}

// SilenceTable keeps the silences in Table storage (table <prefix>Silences,
// docs/tables.md): one row per silence, kept after it ends as the audit of
// who silenced what, when and why. Safe for concurrent use from any number
// of instances: rows are inserted once and replaced only under their ETag.
type SilenceTable struct {
	sideTable
}

// NewSilences returns the silences table on svc. Call EnsureTable before first use.
func NewSilences(svc *aztables.ServiceClient, o SilenceOptions) *SilenceTable {
	return &SilenceTable{newSideTable(svc, o.TablePrefix+TableSilences, o.Logger)}
}

// AddSilence inserts a new silence row. An id already taken is
// ErrUnavailable (a retry makes a new id); an id that cannot be a key,
// ErrRejected.
func (t *SilenceTable) AddSilence(ctx context.Context, s fleet.Silence) error {
	if !silenceKey(s.ID) {
		return fmt.Errorf("%w: silence id %q cannot be a row key", ErrRejected, s.ID)
	}
	body, err := silenceRow(s).marshal(pkSilence, s.ID)
	if err != nil {
		return fmt.Errorf("%w: encode silence %s: %v", ErrRejected, s.ID, err)
	}
	if _, err := t.client.AddEntity(ctx, body, nil); err != nil {
		if hasCode(err, aztables.EntityAlreadyExists) {
			return fmt.Errorf("%w: silence id %s taken", ErrUnavailable, s.ID)
		}
		return fmt.Errorf("add silence %s: %w", s.ID, t.wrap(err))
	}
	return nil
}

// Silence reads one silence (ErrNotFound, ErrUnavailable).
func (t *SilenceTable) Silence(ctx context.Context, id string) (fleet.Silence, error) {
	s, _, err := t.get(ctx, id)
	return s, err
}

func (t *SilenceTable) get(ctx context.Context, id string) (fleet.Silence, *aztables.GetEntityResponse, error) {
	if !silenceKey(id) {
		return fleet.Silence{}, nil, fmt.Errorf("silence %q: %w", id, ErrNotFound)
	}
	got, err := t.client.GetEntity(ctx, pkSilence, id, nil)
	if hasCode(err, aztables.ResourceNotFound) {
		return fleet.Silence{}, nil, fmt.Errorf("silence %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return fleet.Silence{}, nil, fmt.Errorf("read silence %s: %w", id, t.wrap(err))
	}
	e, err := decodeEntity(got.Value)
	if err != nil {
		return fleet.Silence{}, nil, fmt.Errorf("%w: silence %s: %v", ErrUnavailable, id, err)
	}
	return silenceOf(e), &got, nil
}

// Silences lists the silences whose end is after since, in one query of the
// partition filtered on EndsAt.
func (t *SilenceTable) Silences(ctx context.Context, since time.Time) ([]fleet.Silence, error) {
	filter := "PartitionKey eq " + odataString(pkSilence) + " and EndsAt gt datetime'" +
		since.UTC().Format("2006-01-02T15:04:05.0000000Z") + "'"
	ents, err := listEntities(ctx, t.client, filter)
	if err != nil {
		return nil, fmt.Errorf("list silences: %w", err)
	}
	out := make([]fleet.Silence, 0, len(ents))
	for _, e := range ents {
		if e.str("Kind") == KindSilence {
			out = append(out, silenceOf(e))
		}
	}
	return out, nil
}

// UpdateSilence runs fn on the stored silence and replaces the row under
// its ETag, reading again when another writer won. fn returning
// watch.ErrNoChange writes nothing; any other error is returned as it is.
func (t *SilenceTable) UpdateSilence(ctx context.Context, id string, fn func(s *fleet.Silence) error) (fleet.Silence, error) {
	for range silenceAttempts {
		s, got, err := t.get(ctx, id)
		if err != nil {
			return s, err
		}
		before := s
		if err := fn(&s); errors.Is(err, watch.ErrNoChange) {
			return before, nil
		} else if err != nil {
			return before, err
		}
		s.ID = id // the key is not fn's to change
		body, err := silenceRow(s).marshal(pkSilence, id)
		if err != nil {
			return before, fmt.Errorf("%w: encode silence %s: %v", ErrRejected, id, err)
		}
		etag := got.ETag
		_, err = t.client.UpdateEntity(ctx, body, &aztables.UpdateEntityOptions{IfMatch: &etag, UpdateMode: aztables.UpdateModeReplace})
		switch {
		case err == nil:
			return s, nil
		case hasCode(err, aztables.UpdateConditionNotSatisfied):
			continue
		case hasCode(err, aztables.ResourceNotFound):
			return before, fmt.Errorf("silence %s: %w", id, ErrNotFound)
		}
		return before, fmt.Errorf("update silence %s: %w", id, t.wrap(err))
	}
	return fleet.Silence{}, fmt.Errorf("%w: contention on silence %s did not settle", ErrUnavailable, id)
}

// wrap translates a storage failure: a missing table is transient (the
// app creates it at start), the rest as wrapStorage says.
func (t *SilenceTable) wrap(err error) error {
	if hasCode(err, aztables.TableNotFound) {
		return fmt.Errorf("%w: table %s missing (was EnsureTable run?)", ErrUnavailable, t.name)
	}
	return wrapStorage(err)
}

// silenceKey reports whether id can be a RowKey as it is: the ids the app
// makes always can; anything else names no silence.
func silenceKey(id string) bool {
	if id == "" || len(id) > 255 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if ch := id[i]; ch < 0x20 || ch >= 0x7f || strings.IndexByte(`/\#?`, ch) >= 0 {
			return false
		}
	}
	return true
}

// silenceRow is a silence row's columns. EndsAt (Until, or EndedAt when it
// ended early) is derived, for the query of the silences in force.
func silenceRow(s fleet.Silence) row {
	r := row{"Kind": KindSilence, "Comment": s.Comment, "CreatedBy": s.CreatedBy}
	for k, v := range map[string]string{"MatchCluster": s.Cluster, "MatchCode": s.Code, "MatchTarget": s.Target, "EndedBy": s.EndedBy} {
		if v != "" {
			r[k] = v
		}
	}
	setTime(r, "Until", s.Until)
	setTime(r, "CreatedAt", s.CreatedAt)
	setTime(r, "EndedAt", s.EndedAt)
	setTime(r, "EndsAt", s.End())
	return r
}

func silenceOf(e entity) fleet.Silence {
	return fleet.Silence{ID: e.str("RowKey"), Cluster: e.str("MatchCluster"), Code: e.str("MatchCode"), Target: e.str("MatchTarget"),
		Until: e.time("Until"), Comment: e.str("Comment"), CreatedBy: e.str("CreatedBy"), CreatedAt: e.time("CreatedAt"),
		EndedAt: e.time("EndedAt"), EndedBy: e.str("EndedBy")}
}
