package watch_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/upgradewatch/upgradewatch/internal/azuritetest"
	"github.com/upgradewatch/upgradewatch/internal/findings"
	"github.com/upgradewatch/upgradewatch/internal/fleet"
	"github.com/upgradewatch/upgradewatch/internal/outbox"
	"github.com/upgradewatch/upgradewatch/internal/state"
	"github.com/upgradewatch/upgradewatch/internal/watch"
)

// volatileEnv is the application layer as cmd/handler wires it (the finding
// rules with the outbox's steps) over a store on tables of its own, at a
// clock the test moves.
type volatileEnv struct {
	svc    *aztables.ServiceClient
	prefix string
	mu     sync.Mutex
	at     time.Time
}

func (e *volatileEnv) now() time.Time { e.mu.Lock(); defer e.mu.Unlock(); return e.at }

func (e *volatileEnv) set(t time.Time) { e.mu.Lock(); defer e.mu.Unlock(); e.at = t }

// open starts an instance (an App over a Store with its own cache) on the
// env's tables.
func (e *volatileEnv) open(t *testing.T) *watch.App {
	t.Helper()
	s := state.New(e.svc, state.Options{TablePrefix: e.prefix, CacheSize: 100, Now: e.now})
	t.Cleanup(s.Close)
	if err := s.EnsureTables(context.Background()); err != nil {
		t.Fatal(err)
	}
	p := fleet.Policy{NodeOSChannel: fleet.ChannelNodeImage, Source: "defaults"}.WithDefaults()
	rules := findings.Evaluator(func(*fleet.Cluster) (fleet.Policy, []string) { return p, nil })
	return watch.New(s, watch.Options{Now: e.now, Rules: outbox.Evaluator(rules, outbox.Config{})})
}

// findingRows reads the cluster's Finding rows as a dashboard would, by RowKey.
func (e *volatileEnv) findingRows(t *testing.T) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	for _, r := range e.rows(t, "RowKey ge 'finding~' and RowKey lt 'finding~~'") {
		out[fmt.Sprint(r["RowKey"])] = r
	}
	return out
}

func (e *volatileEnv) rows(t *testing.T, filter string) []map[string]any {
	t.Helper()
	return azuritetest.Rows(t, e.svc.NewClient(e.prefix+state.TableFleet), "PartitionKey eq '"+aks.Key()+"' and "+filter)
}

// twoPoolRead is an ARM read of aks with a system and a user pool on the given images.
func twoPoolRead(id string, at time.Time, system, user string) fleet.Signal {
	pool := func(name, mode, image string) fleet.PoolProfile {
		return fleet.PoolProfile{Name: name, Mode: mode, OSType: "Linux", OSSKU: "Ubuntu", VMSize: "Standard_D4ds_v5", Count: 3,
			OrchestratorVersion: "1.33.5", NodeImageVersion: image, ProvisioningState: "Succeeded", MaxSurge: "33%", DrainTimeoutMinutes: 30}
	}
	return fleet.Signal{ID: id, Type: fleet.TypeARMRead, Source: aks.ResourceID(), Subject: aks.ResourceID(), Time: at,
		Cluster: aks, Kind: fleet.KindClusterUpdated,
		Profile: &fleet.ClusterProfile{Location: "westeurope", KubernetesVersion: "1.33.5", UpgradeChannel: "patch",
			NodeOSUpgradeChannel: fleet.ChannelNodeImage, ProvisioningState: "Succeeded",
			Pools: []fleet.PoolProfile{pool("system", "System", system), pool("user", "User", user)}}}
}

func poolRolling(id string, kind fleet.SignalKind, pool string, at time.Time) fleet.Signal {
	return fleet.Signal{ID: id, Type: "Microsoft.ContainerService.NodePool" + strings.TrimPrefix(string(kind), "Rolling"),
		Source: aks.ResourceID(), Subject: aks.Name, Time: at, Schema: fleet.SchemaEventGrid, Cluster: aks, Kind: kind, Pool: pool}
}

// An open ImageStale finding's row is written when it opens and when it is
// announced, and then not again while only time passes and its pool starts
// and ends a roll: readers still see the inhibition during the roll (derived
// on read) and LastSeenAt advance (kept once, on the Cluster row); a
// finding that resolves keeps the LastSeenAt it had.
func TestFindingRowsNotRewrittenForTimeAlone(t *testing.T) {
	e := &volatileEnv{svc: azuritetest.Service(t, azuritetest.Endpoint(t)), prefix: azuritetest.Prefix(t)}
	azuritetest.DropTables(t, e.svc, e.prefix+state.TableFleet, e.prefix+state.TableIndex, e.prefix+state.TableRejected)
	app := e.open(t)
	ctx := context.Background()
	t0 := time.Date(2026, 11, 2, 2, 0, 0, 0, time.UTC)
	const september, november = "AKSUbuntu-2204gen2containerd-202609.10.0", "AKSUbuntu-2204gen2containerd-202611.01.0"
	system, user := fleet.FindingKey(fleet.CodeImageStale, "pool/system"), fleet.FindingKey(fleet.CodeImageStale, "pool/user")
	ingest := func(sig fleet.Signal) {
		t.Helper()
		e.set(sig.Time.Add(time.Minute)) // delivered a minute after it happened
		if out, err := app.Ingest(ctx, sig); err != nil || out.Result != watch.Committed {
			t.Fatalf("ingest %s: %+v %v", sig.ID, out, err)
		}
	}
	read := func(a *watch.App) *fleet.Cluster {
		t.Helper()
		c, err := a.Cluster(ctx, aks)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}

	ingest(twoPoolRead("arm-1", t0, september, september))
	e.set(t0.Add(24 * time.Hour)) // past the grace: the openings are announced
	if _, err := app.Evaluate(ctx, aks); err != nil {
		t.Fatal(err)
	}
	before := e.findingRows(t)
	if len(before) != 2 {
		t.Fatalf("Finding rows %v, want ImageStale on both pools", before)
	}
	for rk, r := range before {
		for _, col := range []string{"LastSeenAt", "InhibitedBy"} {
			if _, ok := r[col]; ok {
				t.Errorf("open finding's row %s stores %s = %v", rk, col, r[col])
			}
		}
	}
	unchanged := func(when string) {
		t.Helper()
		after := e.findingRows(t)
		for rk, r := range before {
			if a := after[rk]; a == nil || a["odata.etag"] != r["odata.etag"] || a["Timestamp"] != r["Timestamp"] {
				t.Errorf("%s: row %s rewritten (etag %v → %v, summary %q → %q)", when, rk, r["odata.etag"], a["odata.etag"], r["Summary"], a["Summary"])
			}
		}
	}

	// The system pool rolls: its ImageStale shows inhibited, the user
	// pool's does not, and no row was written for it.
	ingest(poolRolling("start-1", fleet.KindRollingStarted, "system", t0.Add(48*time.Hour)))
	c := read(app)
	if got := c.Findings[system].InhibitedBy; got != "pool system rolling" {
		t.Errorf("during the roll: system ImageStale inhibited by %q, want %q", got, "pool system rolling")
	}
	if got := c.Findings[user].InhibitedBy; got != "" {
		t.Errorf("during the roll: user ImageStale inhibited by %q, want nothing", got)
	}
	unchanged("roll started")

	// Another instance, loading cold, sees what the committing one holds.
	e.set(t0.Add(48*time.Hour + 10*time.Minute))
	ch, err := app.Evaluate(ctx, aks)
	if err != nil {
		t.Fatal(err)
	}
	cold := read(e.open(t))
	for _, key := range []string{system, user} {
		hot, got := ch.Cluster.Findings[key], cold.Findings[key]
		if !got.LastSeenAt.Equal(hot.LastSeenAt) || got.InhibitedBy != hot.InhibitedBy {
			t.Errorf("%s loaded cold: LastSeenAt %s, InhibitedBy %q; the committing instance holds %s, %q",
				key, got.LastSeenAt, got.InhibitedBy, hot.LastSeenAt, hot.InhibitedBy)
		}
	}

	ingest(poolRolling("end-1", fleet.KindRollingSucceeded, "system", t0.Add(48*time.Hour+40*time.Minute)))
	if got := read(app).Findings[system].InhibitedBy; got != "" {
		t.Errorf("after the roll: system ImageStale inhibited by %q, want nothing", got)
	}
	unchanged("roll ended")

	// Two days of quiet later, the sweep sees both again.
	seen := t0.Add(96 * time.Hour)
	e.set(seen)
	if _, err := app.Evaluate(ctx, aks); err != nil {
		t.Fatal(err)
	}
	c = read(app)
	for _, key := range []string{system, user} {
		if f := c.Findings[key]; f.Status != fleet.FindingOpen || !f.LastSeenAt.Equal(seen) {
			t.Errorf("%s: %s, last seen %s; want open, last seen %s", key, f.Status, f.LastSeenAt, seen)
		}
	}
	// Kept on the partition's newest sequence row (seq~0 is its birth mark).
	if seq := e.rows(t, "RowKey gt 'seq~000000000000' and RowKey lt 'seq~~'"); len(seq) != 1 || seq[0]["FindingsSeenAt"] != seen.Format("2006-01-02T15:04:05.0000000Z") {
		t.Errorf("sequence rows %v: want one with FindingsSeenAt %s", seq, seen)
	}
	unchanged("days later")

	// The user pool gets a fresh image: its finding resolves and keeps the
	// last time it was seen; the system pool's row is still not touched.
	ingest(twoPoolRead("arm-2", t0.Add(120*time.Hour), september, november))
	for name, a := range map[string]*watch.App{"committing": app, "cold": e.open(t)} {
		c := read(a)
		if f := c.Findings[user]; f.Status != fleet.FindingResolved || !f.LastSeenAt.Equal(seen) || !f.ResolvedAt.Equal(t0.Add(120*time.Hour)) {
			t.Errorf("%s instance: resolved user ImageStale %s, last seen %s, resolved %s; want Resolved, last seen %s",
				name, f.Status, f.LastSeenAt, f.ResolvedAt, seen)
		}
		if f := c.Findings[system]; !f.LastSeenAt.Equal(t0.Add(120 * time.Hour)) {
			t.Errorf("%s instance: open system ImageStale last seen %s, want %s", name, f.LastSeenAt, t0.Add(120*time.Hour))
		}
	}
	after := e.findingRows(t)
	if r := after[keyOfRow(t, after, "pool/user")]; r["LastSeenAt"] != seen.Format("2006-01-02T15:04:05.0000000Z") {
		t.Errorf("resolved row's LastSeenAt = %v, want %s", r["LastSeenAt"], seen)
	}
	delete(before, keyOfRow(t, before, "pool/user"))
	unchanged("another pool's finding resolved")
}

// keyOfRow is the RowKey of the ImageStale row of target.
func keyOfRow(t *testing.T, rows map[string]map[string]any, target string) string {
	t.Helper()
	for rk, r := range rows {
		if r["Code"] == fleet.CodeImageStale && r["Target"] == target {
			return rk
		}
	}
	t.Fatalf("no ImageStale row for %s in %v", target, rows)
	return ""
}
