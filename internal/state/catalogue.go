package state

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
	"golang.org/x/sync/singleflight"

	"github.com/upgradewatch/upgradewatch/internal/patch"
	"github.com/upgradewatch/upgradewatch/internal/versions"
	"github.com/upgradewatch/upgradewatch/internal/watch"
)

// TableCatalogue is the image catalogue's table base name
// (Options.TablePrefix is prepended, as for the others).
const TableCatalogue = "ImageCatalogue"

// KindCatalogueImage is the Kind column of a catalogue row.
const KindCatalogueImage = "CatalogueImage"

// DefaultCatalogueTTL is how long one read of the whole catalogue answers
// Catalogue before storage is read again.
const DefaultCatalogueTTL = time.Minute

// catalogueAttempts bounds the read-compare-replace loop of one version
// under contention; every lost round means another writer stored an earlier
// sighting or the row moved, so a few rounds settle it.
const catalogueAttempts = 8

var _ watch.Catalogue = (*ImageCatalogue)(nil)

// CatalogueOptions configure an ImageCatalogue.
type CatalogueOptions struct {
	TablePrefix string
	Logger      *slog.Logger
	Now         func() time.Time
	// TTL is how long a read of the catalogue serves (DefaultCatalogueTTL
	// when zero).
	TTL time.Duration
}

// ImageCatalogue keeps the fleet's newest-image catalogue in Table storage:
// one row per (image family, region, version) with when the version was
// first seen available there (table <prefix>ImageCatalogue, docs/tables.md).
//
// It remembers in memory what storage is known to hold (the last read of the
// whole table and its own writes since), so an observation that would change
// nothing costs no request: first-seen only ever moves earlier, and the
// versions kept per (family, region) are the newest patch.MaxVersions. Safe
// for concurrent use, from any number of instances: the earliest sighting
// wins through insert-if-absent and replace-under-ETag.
type ImageCatalogue struct {
	sideTable
	now   func() time.Time
	ttl   time.Duration
	reads singleflight.Group

	mu     sync.Mutex
	known  patch.Catalogue // never changed in place: replaced, so callers may hold it
	readAt time.Time       // zero until the first read
}

// NewCatalogue returns the catalogue on svc. Call EnsureTable before first use.
func NewCatalogue(svc *aztables.ServiceClient, o CatalogueOptions) *ImageCatalogue {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.TTL <= 0 {
		o.TTL = DefaultCatalogueTTL
	}
	return &ImageCatalogue{sideTable: newSideTable(svc, o.TablePrefix+TableCatalogue, o.Logger), now: o.Now, ttl: o.TTL}
}

// Catalogue returns the catalogue of the given regions (all when none),
// from one read of the whole table at most every TTL. fleet.ErrUnavailable
// when storage cannot be read.
func (c *ImageCatalogue) Catalogue(ctx context.Context, regions ...string) (patch.Catalogue, error) {
	cat, err := c.fresh(ctx)
	if err != nil || len(regions) == 0 {
		return cat, err
	}
	want := map[string]bool{}
	for _, r := range regions {
		want[patch.NormaliseRegion(r)] = true
	}
	var es []patch.Entry
	for _, e := range cat.Entries() {
		if want[e.Region] {
			es = append(es, e)
		}
	}
	return patch.FromEntries(es), nil
}

// fresh is the known catalogue, read again when older than the TTL.
func (c *ImageCatalogue) fresh(ctx context.Context) (patch.Catalogue, error) {
	c.mu.Lock()
	known, at := c.known, c.readAt
	c.mu.Unlock()
	if !at.IsZero() && c.now().Sub(at) < c.ttl {
		return known, nil
	}
	return c.refresh(ctx)
}

// refresh reads the whole table (one paged query; concurrent callers share
// it) and folds it into what is known.
func (c *ImageCatalogue) refresh(ctx context.Context) (patch.Catalogue, error) {
	v, err, _ := c.reads.Do("all", func() (any, error) {
		at := c.now()
		ents, err := listEntities(ctx, c.client, "")
		if err != nil {
			return nil, fmt.Errorf("read image catalogue: %w", err)
		}
		es := make([]patch.Entry, 0, len(ents))
		for _, e := range ents {
			if en, ok := entryOf(e); ok {
				es = append(es, en)
			}
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		c.known = patch.Union(c.known, patch.FromEntries(es))
		c.readAt = at
		return c.known, nil
	})
	if err != nil {
		return patch.Catalogue{}, err
	}
	return v.(patch.Catalogue), nil
}

// Observe stores sightings: a version not in the catalogue is inserted; one
// stored with a later first sighting is replaced (under its ETag, so the
// earliest sighting wins under concurrency). Sightings that change nothing
// known (seen before at an earlier time, or older than the newest
// patch.MaxVersions of their family and region) cost no request; so do
// unknown versions and sightings without a region or a time, which say
// nothing comparable. fleet.ErrUnavailable when storage failed; what was
// written before the failure stays.
func (c *ImageCatalogue) Observe(ctx context.Context, obs []patch.Observation) error {
	c.mu.Lock()
	never := c.readAt.IsZero()
	c.mu.Unlock()
	if never {
		// Without a first read every sighting would cost a write attempt.
		if _, err := c.refresh(ctx); err != nil {
			return err
		}
	}
	for _, e := range earliest(obs) {
		if !c.wanted(e) {
			continue
		}
		stored, inserted, err := c.write(ctx, e)
		if err != nil {
			return fmt.Errorf("catalogue %s %s: %w", e.Region, e.Version, err)
		}
		c.learn(patch.Entry{Family: e.Family, Region: e.Region, Seen: stored})
		if inserted {
			c.prune(ctx, e.Family, e.Region)
		}
	}
	return nil
}

// earliest folds sightings into one entry per (family, region, version): the
// earliest, ties broken by source as patch does.
func earliest(obs []patch.Observation) []patch.Entry {
	byKey := map[[2]string]patch.Entry{}
	var order [][2]string
	for _, o := range obs {
		v := versions.Parse(o.Version)
		region := patch.NormaliseRegion(o.Region)
		if !v.Known || region == "" || o.At.IsZero() {
			continue
		}
		rel, _ := versions.ReleaseDate(v)
		e := patch.Entry{Family: versions.Family(v), Region: region, Seen: patch.Seen{Version: o.Version,
			FirstSeen: o.At.UTC().Truncate(100 * time.Nanosecond), Source: o.Source, ReleasedAt: rel}}
		k := [2]string{region, o.Version}
		prev, ok := byKey[k]
		if !ok {
			order = append(order, k)
		}
		if !ok || seenBefore(e.Seen, prev.Seen) {
			byKey[k] = e
		}
	}
	out := make([]patch.Entry, len(order))
	for i, k := range order {
		out[i] = byKey[k]
	}
	return out
}

// seenBefore orders two sightings of one version as patch.Catalogue does:
// by time, then by source name.
func seenBefore(a, b patch.Seen) bool {
	if !a.FirstSeen.Equal(b.FirstSeen) {
		return a.FirstSeen.Before(b.FirstSeen)
	}
	return a.Source < b.Source
}

// wanted reports whether a sighting could change what storage holds.
func (c *ImageCatalogue) wanted(e patch.Entry) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s, ok := c.known.Lookup(e.Version, e.Region); ok {
		return seenBefore(e.Seen, s)
	}
	line := c.known.Versions(e.Family, e.Region)
	if len(line) < patch.MaxVersions {
		return true
	}
	oldest := versions.Parse(line[len(line)-1].Version)
	cmp, err := versions.Compare(versions.Parse(e.Version), oldest)
	return err != nil || cmp > 0
}

func (c *ImageCatalogue) learn(e patch.Entry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.known = patch.Union(c.known, patch.FromEntries([]patch.Entry{e}))
}

// write stores a sighting unless an earlier one is stored: it answers the
// sighting that is stored afterwards and whether the row is new.
func (c *ImageCatalogue) write(ctx context.Context, e patch.Entry) (patch.Seen, bool, error) {
	pk, rk := catalogueKeys(e.Family, e.Region, e.Version)
	body, err := catalogueRow(e).marshal(pk, rk)
	if err != nil {
		return patch.Seen{}, false, fmt.Errorf("%w: encode: %v", ErrRejected, err)
	}
	for range catalogueAttempts {
		_, err := c.client.AddEntity(ctx, body, nil)
		if err == nil {
			return e.Seen, true, nil
		}
		if !hasCode(err, aztables.EntityAlreadyExists) {
			return patch.Seen{}, false, wrapStorage(err)
		}
		got, err := c.client.GetEntity(ctx, pk, rk, nil)
		if hasCode(err, aztables.ResourceNotFound) {
			continue // pruned between the two: insert again
		}
		if err != nil {
			return patch.Seen{}, false, wrapStorage(err)
		}
		ent, err := decodeEntity(got.Value)
		if err != nil {
			return patch.Seen{}, false, fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
		stored, ok := entryOf(ent)
		if ok && !seenBefore(e.Seen, stored.Seen) {
			return stored.Seen, false, nil
		}
		etag := got.ETag
		_, err = c.client.UpdateEntity(ctx, body, &aztables.UpdateEntityOptions{IfMatch: &etag, UpdateMode: aztables.UpdateModeReplace})
		switch {
		case err == nil:
			return e.Seen, false, nil
		case hasCode(err, aztables.UpdateConditionNotSatisfied), hasCode(err, aztables.ResourceNotFound):
			continue // another writer moved the row: read it again
		}
		return patch.Seen{}, false, wrapStorage(err)
	}
	return patch.Seen{}, false, fmt.Errorf("%w: contention on the catalogue row did not settle", ErrUnavailable)
}

// prune deletes the rows of a (family, region) beyond its newest
// patch.MaxVersions. Best effort: a row left behind is only read and
// dropped again by patch.FromEntries, and the next insert retries.
func (c *ImageCatalogue) prune(ctx context.Context, family, region string) {
	pk, _ := catalogueKeys(family, region, "")
	ents, err := listEntities(ctx, c.client, "PartitionKey eq "+odataString(pk))
	if err != nil || len(ents) <= patch.MaxVersions {
		return
	}
	sort.Slice(ents, func(i, j int) bool { return newerVersion(ents[i].str("Version"), ents[j].str("Version")) })
	for _, e := range ents[patch.MaxVersions:] {
		if _, err := c.client.DeleteEntity(ctx, pk, e.str("RowKey"), &aztables.DeleteEntityOptions{IfMatch: etagOf(e)}); err != nil &&
			!hasCode(err, aztables.ResourceNotFound) {
			c.log.Warn("catalogue row beyond the newest versions not deleted", "family", family, "region", region,
				"version", e.str("Version"), "error", firstLine(err))
		}
	}
}

// newerVersion orders versions of one family newest first; versions that do
// not compare (they should not share a family) by text.
func newerVersion(a, b string) bool {
	cmp, err := versions.Compare(versions.Parse(a), versions.Parse(b))
	if err != nil || cmp == 0 {
		return a > b
	}
	return cmp > 0
}

func etagOf(e entity) *azcore.ETag {
	t := azcore.ETag("*")
	if s := e.str("odata.etag"); s != "" {
		t = azcore.ETag(s)
	}
	return &t
}

// catalogueRow is a catalogue row's columns.
func catalogueRow(e patch.Entry) row {
	r := row{"Kind": KindCatalogueImage, "Family": e.Family, "Region": e.Region, "Version": e.Version, "Source": e.Source}
	setTime(r, "FirstSeen", e.FirstSeen)
	setTime(r, "ReleasedAt", e.ReleasedAt)
	return r
}

// entryOf reads a catalogue row; false for a row that says nothing usable.
func entryOf(e entity) (patch.Entry, bool) {
	en := patch.Entry{Family: e.str("Family"), Region: e.str("Region"), Seen: patch.Seen{Version: e.str("Version"),
		FirstSeen: e.time("FirstSeen"), Source: e.str("Source"), ReleasedAt: e.time("ReleasedAt")}}
	return en, en.Family != "" && en.Region != "" && en.Version != "" && !en.FirstSeen.IsZero()
}

// catalogueKeys are a version's PartitionKey (<family>~<region>) and RowKey
// (the version), escaped so that any family, region or version makes valid,
// distinct keys.
func catalogueKeys(family, region, version string) (pk, rk string) {
	return keyPart(family) + "~" + keyPart(region), keyPart(version)
}

// maxKeyPart bounds an escaped key part: keys may hold 1 KiB, and a PK has
// two parts.
const maxKeyPart = 250

// keyPart escapes what Table keys may not hold (/ \ # ? and control
// characters), the separator ~, the escape % itself and anything beyond
// ASCII, as %XX per byte; an escaped part too long for a key becomes a hash.
// Distinct inputs give distinct parts; the columns keep the values as seen.
func keyPart(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if ch < 0x20 || ch >= 0x7f || strings.IndexByte(`/\#?~%`, ch) >= 0 {
			fmt.Fprintf(&b, "%%%02X", ch)
			continue
		}
		b.WriteByte(ch)
	}
	if b.Len() > maxKeyPart {
		h := sha256.Sum256([]byte(s))
		return "h-" + hex.EncodeToString(h[:16])
	}
	return b.String()
}

// listEntities reads every entity the filter selects ("" for all).
func listEntities(ctx context.Context, c *aztables.Client, filter string) ([]entity, error) {
	return listEntitiesLimit(ctx, c, filter, 0)
}

// listEntitiesLimit reads at most limit entities the filter selects ("" for
// all; limit <= 0 for no limit). A missing table or an undecodable entity is
// ErrUnavailable, like any storage failure: the caller's input is redelivered.
func listEntitiesLimit(ctx context.Context, c *aztables.Client, filter string, limit int) ([]entity, error) {
	opts := &aztables.ListEntitiesOptions{}
	if filter != "" {
		opts.Filter = &filter
	}
	if limit > 0 && limit < 1000 {
		opts.Top = to.Ptr(int32(limit))
	}
	pager := c.NewListEntitiesPager(opts)
	var out []entity
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			if hasCode(err, aztables.TableNotFound) {
				return nil, fmt.Errorf("%w: table missing (was EnsureTables run?): %v", ErrUnavailable, firstLine(err))
			}
			return nil, wrapStorage(err)
		}
		for _, b := range page.Entities {
			e, err := decodeEntity(b)
			if err != nil {
				return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
			}
			out = append(out, e)
			if limit > 0 && len(out) >= limit {
				return out, nil
			}
		}
	}
	return out, nil
}
