package watch_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/upgradewatch/upgradewatch/internal/azuritetest"
	"github.com/upgradewatch/upgradewatch/internal/fleet"
	"github.com/upgradewatch/upgradewatch/internal/state"
	"github.com/upgradewatch/upgradewatch/internal/watch"
)

type silenceClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *silenceClock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *silenceClock) add(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.t = c.t.Add(d) }
func (c *silenceClock) set(t time.Time)     { c.mu.Lock(); defer c.mu.Unlock(); c.t = t }

// silenceApp is an App with silences over tables of its own; requests
// counts the storage requests of the silences table's client.
type silenceApp struct {
	app      *watch.App
	table    *state.SilenceTable
	view     *watch.Silences
	requests *atomic.Int64
}

func newSilenceApp(t *testing.T, clk *silenceClock) *silenceApp {
	t.Helper()
	ep := azuritetest.Endpoint(t)
	var n atomic.Int64
	svc, err := state.NewServiceClient(state.Connection{Name: "test", ConnectionString: azuritetest.ConnectionString(ep)},
		state.ClientOptions{TryTimeout: 5 * time.Second, MaxRetries: 1, Counter: &n})
	if err != nil {
		t.Fatal(err)
	}
	prefix := azuritetest.Prefix(t)
	store := state.New(svc, state.Options{TablePrefix: prefix, CacheSize: 100, Now: clk.now})
	t.Cleanup(store.Close)
	table := state.NewSilences(svc, state.SilenceOptions{TablePrefix: prefix})
	azuritetest.DropTables(t, svc, append(store.Tables(), table.Table())...)
	for _, ensure := range []func(context.Context) error{store.EnsureTables, table.EnsureTable} {
		if err := ensure(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	view := watch.NewSilences(table, watch.SilencesOptions{Now: clk.now})
	app := watch.New(store, watch.Options{Now: clk.now, Silences: view})
	return &silenceApp{app: app, table: table, view: view, requests: &n}
}

var silenceNow = time.Date(2026, 12, 14, 9, 0, 0, 0, time.UTC)

func validRequest() watch.SilenceRequest {
	return watch.SilenceRequest{Cluster: "8f1c2b3a-4d5e-4f60-9a7b-1c2d3e4f5a6b/rg-shops-weu/aks-shop-01", Code: "upgradefailed",
		Target: "pool/*", Until: silenceNow.Add(72 * time.Hour), Comment: "CHG0041872: pool migration, failures expected",
		CreatedBy: "ops-oncall@contoso.example"}
}

// Every rule of a silence request, each with the message the API answers;
// nothing invalid is stored.
func TestCreateSilenceValidates(t *testing.T) {
	clk := &silenceClock{t: silenceNow}
	e := newSilenceApp(t, clk)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		edit func(r *watch.SilenceRequest)
		want string // in the message
	}{
		{"no match", func(r *watch.SilenceRequest) { r.Cluster, r.Code, r.Target = "", "", "" }, "at least one of cluster, code or target"},
		{"until missing", func(r *watch.SilenceRequest) { r.Until = time.Time{} }, "until is required"},
		{"until past", func(r *watch.SilenceRequest) { r.Until = silenceNow.Add(-time.Second) }, "until must be in the future"},
		{"until now", func(r *watch.SilenceRequest) { r.Until = silenceNow }, "until must be in the future"},
		{"until too far", func(r *watch.SilenceRequest) { r.Until = silenceNow.Add(91 * 24 * time.Hour) }, "at most 90 days"},
		{"unknown code", func(r *watch.SilenceRequest) { r.Code = "UpgradeFailure" }, "not a finding code"},
		{"bad cluster glob", func(r *watch.SilenceRequest) { r.Cluster = "*/rg-shops-[weu/*" }, "not a valid glob"},
		{"two parts", func(r *watch.SilenceRequest) { r.Cluster = "rg-shops-weu/aks-shop-01" }, "<subscriptionId>/<resourceGroup>/<clusterName>"},
		{"empty part", func(r *watch.SilenceRequest) { r.Cluster = "8f1c2b3a-4d5e-4f60-9a7b-1c2d3e4f5a6b//aks-shop-01" }, "empty part"},
		{"bad target glob", func(r *watch.SilenceRequest) { r.Target = `pool/\` }, "match.target"},
		{"no creator", func(r *watch.SilenceRequest) { r.CreatedBy = "  " }, "createdBy is required"},
		{"no comment", func(r *watch.SilenceRequest) { r.Comment = "" }, "comment is required"},
		{"comment too long", func(r *watch.SilenceRequest) { r.Comment = strings.Repeat("é", 1001) }, "comment is longer than 1000"},
		{"cluster too long", func(r *watch.SilenceRequest) { r.Cluster = strings.Repeat("a", 257) }, "match.cluster is longer than 256"},
		{"creator too long", func(r *watch.SilenceRequest) { r.CreatedBy = strings.Repeat("a", 257) }, "createdBy is longer than 256"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := validRequest()
			tc.edit(&r)
			_, err := e.app.CreateSilence(ctx, r)
			if !errors.Is(err, fleet.ErrRejected) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want a rejection saying %q", err, tc.want)
			}
		})
	}
	if list, err := e.table.Silences(ctx, silenceNow.Add(-time.Hour)); err != nil || len(list) != 0 {
		t.Fatalf("invalid requests stored %d silences (%v)", len(list), err)
	}

	// The valid one: the code in its canonical case, a sortable id, the
	// cluster name glob form accepted.
	r := validRequest()
	s, err := e.app.CreateSilence(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	if s.Code != fleet.CodeUpgradeFailed || !watch.ValidSilenceID(s.ID) || !strings.HasPrefix(s.ID, "20261214T090000Z-") ||
		!s.CreatedAt.Equal(silenceNow) {
		t.Errorf("created %+v", s)
	}
	r.Cluster, r.Code = "aks-shop-*", ""
	if _, err := e.app.CreateSilence(ctx, r); err != nil {
		t.Errorf("a cluster name glob: %v", err)
	}
}

// At most MaxActiveSilences in force: one more is refused until one ends.
func TestCreateSilenceBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 1,000 rows")
	}
	clk := &silenceClock{t: silenceNow}
	e := newSilenceApp(t, clk)
	ctx := context.Background()
	base := validRequest()
	for i := range watch.MaxActiveSilences {
		s := fleet.Silence{ID: "20261214T090000Z-" + strings.Repeat("0", 4) + hex4(i), Code: fleet.CodeImageStale,
			Until: silenceNow.Add(time.Hour), Comment: "bulk", CreatedBy: "test", CreatedAt: silenceNow}
		if err := e.table.AddSilence(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.app.CreateSilence(ctx, base); !errors.Is(err, watch.ErrTooManySilences) {
		t.Fatalf("silence %d: %v, want ErrTooManySilences", watch.MaxActiveSilences+1, err)
	}
	// An hour on, those have expired: room again.
	clk.add(time.Hour)
	if _, err := e.app.CreateSilence(ctx, base); err != nil {
		t.Errorf("after the others expired: %v", err)
	}
}

func hex4(i int) string {
	const digits = "0123456789abcdef"
	return string([]byte{digits[i>>12&15], digits[i>>8&15], digits[i>>4&15], digits[i&15]})
}

// The evaluations' view reads the table at most once per TTL; a silence
// another instance creates shows once the TTL has passed, one this instance
// creates or ends at once.
func TestSilencesViewCachesAndKnowsItsOwnWrites(t *testing.T) {
	clk := &silenceClock{t: silenceNow}
	e := newSilenceApp(t, clk)
	ctx := context.Background()

	if got := e.view.Active(clk.now()); len(got) != 0 {
		t.Fatalf("empty table: %v", got)
	}
	other := fleet.Silence{ID: "20261214T085900Z-0000beef", Code: fleet.CodeChannelDrift, Until: silenceNow.Add(2 * time.Hour),
		Comment: "another instance's", CreatedBy: "ops", CreatedAt: silenceNow.Add(-time.Minute)}
	if err := e.table.AddSilence(ctx, other); err != nil {
		t.Fatal(err)
	}
	before := e.requests.Load()
	for range 5 {
		if got := e.view.Active(clk.now()); len(got) != 0 {
			t.Fatalf("inside the TTL the view read again: %v", got)
		}
	}
	if n := e.requests.Load() - before; n != 0 {
		t.Errorf("%d storage requests inside the TTL, want 0", n)
	}
	clk.add(watch.DefaultSilenceTTL)
	if got := e.view.Active(clk.now()); len(got) != 1 || got[0].ID != other.ID {
		t.Fatalf("after the TTL: %v, want the other instance's silence", got)
	}

	mine, err := e.app.CreateSilence(ctx, validRequest())
	if err != nil {
		t.Fatal(err)
	}
	if got := e.view.Active(clk.now()); len(got) != 2 {
		t.Errorf("right after this instance created one: %d silences in force, want 2", len(got))
	}
	ended, err := e.app.EndSilence(ctx, other.ID, "jane@contoso.example")
	if err != nil || ended.EndedBy != "jane@contoso.example" || !ended.EndedAt.Equal(clk.now()) {
		t.Fatalf("end: %+v %v", ended, err)
	}
	if got := e.view.Active(clk.now()); len(got) != 1 || got[0].ID != mine.ID {
		t.Errorf("right after this instance ended one: %v, want only %s", got, mine.ID)
	}
	// Ending it again answers it as it is: the first end stays the record.
	clk.add(time.Minute)
	again, err := e.app.EndSilence(ctx, other.ID, "someone-else")
	if err != nil || again.EndedBy != "jane@contoso.example" || !again.EndedAt.Equal(ended.EndedAt) {
		t.Errorf("second end: %+v %v, want the first end kept", again, err)
	}
	if _, err := e.app.EndSilence(ctx, "20261214T090000Z-deadbeef", "x"); !errors.Is(err, fleet.ErrNotFound) {
		t.Errorf("unknown id: %v, want ErrNotFound", err)
	}
	if _, err := e.app.EndSilence(ctx, "../../etc", "x"); !errors.Is(err, fleet.ErrNotFound) {
		t.Errorf("impossible id: %v, want ErrNotFound", err)
	}

	// Past its until a silence is no longer in force, whatever was read.
	clk.set(mine.Until)
	if got := e.view.Active(clk.now()); len(got) != 0 {
		t.Errorf("at its until: %v, want none in force", got)
	}
}

// Without a silence store the use cases say so.
func TestSilencesOff(t *testing.T) {
	var runs atomic.Int64
	app, _ := newApp(t, &runs)
	if _, err := app.CreateSilence(context.Background(), validRequest()); !errors.Is(err, watch.ErrSilencesOff) {
		t.Errorf("create: %v", err)
	}
	if _, err := app.ListSilences(context.Background(), now); !errors.Is(err, watch.ErrSilencesOff) {
		t.Errorf("list: %v", err)
	}
}
