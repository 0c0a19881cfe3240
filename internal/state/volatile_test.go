package state_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/upgradewatch/upgradewatch/internal/azuritetest"
	"github.com/upgradewatch/upgradewatch/internal/fleet"
	"github.com/upgradewatch/upgradewatch/internal/state"
)

// ingest commits a signal exactly once as watch.App's ingest does: applied,
// heard now, judged by the store's rules.
func ingest(ctx context.Context, s *state.Store, sig fleet.Signal) (state.Change, error) {
	r := rulesFor(s)
	return s.Update(ctx, sig.Cluster, &sig, func(c *fleet.Cluster) error {
		if err := fleet.Apply(c, sig); err != nil {
			return err
		}
		c.HeardAt = r.now()
		r.run(c)
		return nil
	})
}

// volatileValues are what a cluster's volatile columns hold.
type volatileValues struct {
	Signals                              int64
	LastEventAt, HeardAt, NextEvaluation time.Time
	FindingsSeenAt                       time.Time // the open findings' LastSeenAt
}

func (v volatileValues) equal(o volatileValues) bool {
	return v.Signals == o.Signals && v.LastEventAt.Equal(o.LastEventAt) && v.HeardAt.Equal(o.HeardAt) &&
		v.NextEvaluation.Equal(o.NextEvaluation) && v.FindingsSeenAt.Equal(o.FindingsSeenAt)
}

func volatileOf(c *fleet.Cluster) volatileValues {
	v := volatileValues{Signals: c.Signals, LastEventAt: c.LastEventAt, HeardAt: c.HeardAt, NextEvaluation: c.NextEvaluation}
	for _, f := range c.Findings {
		if f.Status == fleet.FindingOpen && f.LastSeenAt.After(v.FindingsSeenAt) {
			v.FindingsSeenAt = f.LastSeenAt
		}
	}
	return v
}

// coldVolatile loads aks1 in a store with no cache, as another instance
// would.
func coldVolatile(t *testing.T, svc *aztables.ServiceClient, prefix string) volatileValues {
	t.Helper()
	c, err := open(t, svc, prefix).Cluster(context.Background(), aks1)
	if err != nil {
		t.Fatal(err)
	}
	return volatileOf(c)
}

// headRow is aks1's Cluster row as stored.
func headRow(t *testing.T, svc *aztables.ServiceClient, prefix string) map[string]any {
	t.Helper()
	rows := rawRows(t, svc, prefix, "RowKey eq 'cluster'")
	if len(rows) != 1 {
		t.Fatalf("%d Cluster rows, want 1", len(rows))
	}
	return rows[0]
}

// seqRow is aks1's moving sequence row as stored.
func seqRow(t *testing.T, svc *aztables.ServiceClient, prefix string) map[string]any {
	t.Helper()
	rows := rawRows(t, svc, prefix, movingSeq)
	if len(rows) != 1 {
		t.Fatalf("%d moving sequence rows, want 1", len(rows))
	}
	return rows[0]
}

// volatileColumns are the columns issue #13 moved off the Cluster row.
var volatileColumns = []string{"Signals", "LastEventAt", "HeardAt", "NextEvaluation", "FindingsSeenAt"}

// After a cluster's first event, signals that change only its volatile
// columns (how many signals, when last heard of, the next deadline) leave
// the Cluster row as it is: they travel on the sequence row the commit adds
// anyway. Another instance loading cold sees what the committing one holds.
func TestVolatileColumnsLeaveClusterRowAlone(t *testing.T) {
	svc := azuritetest.Service(t, azuritetest.Endpoint(t))
	prefix := azuritetest.Prefix(t)
	clk := &clock{t: t0()}
	s := evalStore(t, clk, prefix, nil)
	azuritetest.DropTables(t, svc, s.Tables()...)
	if err := s.EnsureTables(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := ingest(ctx, s, profileSignal("p1", t0(), "NodeImage")); err != nil {
		t.Fatal(err)
	}
	head := headRow(t, svc, prefix)
	for _, k := range volatileColumns {
		if _, ok := head[k]; ok {
			t.Errorf("Cluster row holds %s", k)
		}
	}
	for i, sig := range []fleet.Signal{
		rolling("r1", fleet.KindRollingStarted, "system", t0().Add(time.Hour)),
		rolling("r2", fleet.KindRollingSucceeded, "system", t0().Add(2*time.Hour)),
		rolling("r3", fleet.KindRollingStarted, "system", t0().Add(26*time.Hour)),
	} {
		clk.set(sig.Time.Add(time.Minute))
		out, err := ingest(ctx, s, sig)
		if err != nil || out.Result != state.Committed {
			t.Fatalf("%s: %+v %v", sig.ID, out, err)
		}
		if got := headRow(t, svc, prefix); got["odata.etag"] != head["odata.etag"] || got["Timestamp"] != head["Timestamp"] {
			t.Errorf("%s rewrote the Cluster row (ETag %v → %v)", sig.ID, head["odata.etag"], got["odata.etag"])
		}
		hot := volatileOf(out.Cluster)
		if hot.Signals != int64(i+2) || !hot.LastEventAt.Equal(sig.Time) || !hot.HeardAt.Equal(clk.now()) || hot.NextEvaluation.IsZero() {
			t.Fatalf("%s: committing instance holds %+v, want Signals %d, LastEventAt %s, HeardAt %s and a deadline",
				sig.ID, hot, i+2, sig.Time, clk.now())
		}
		if cold := coldVolatile(t, svc, prefix); !cold.equal(hot) {
			t.Errorf("%s: loaded cold %+v, the committing instance holds %+v", sig.ID, cold, hot)
		}
		if got := seqRow(t, svc, prefix)["Signals"]; got != strconv.Itoa(i+2) {
			t.Errorf("%s: sequence row Signals = %v, want %d", sig.ID, got, i+2)
		}
	}
}

// deadlineRules stand for a rule whose verdict may change an hour after
// each evaluation: a sweep that evaluates moves only NextEvaluation.
func deadlineRules(c *fleet.Cluster, now time.Time) []fleet.Transition {
	c.NextEvaluation = now.Add(time.Hour).UTC()
	return nil
}

// A sweep evaluation that only moves the next deadline commits it (the
// sequence moves on, the Cluster row stays), and a cold load sees it.
func TestSweepMovingOnlyTheDeadlineCommits(t *testing.T) {
	_, svc, prefix := newStore(t)
	clk := &clock{t: t0()}
	s := newWithRules(svc, state.Options{TablePrefix: prefix, CacheSize: 100, Now: clk.now}, deadlineRules)
	t.Cleanup(s.Close)
	ctx := context.Background()
	first, err := ingest(ctx, s, rolling("d1", fleet.KindRollingStarted, "system", t0()))
	if err != nil {
		t.Fatal(err)
	}
	head := headRow(t, svc, prefix)

	out, err := evaluate(ctx, s, aks1)
	if err != nil || out.Result != state.Unchanged || out.Seq != first.Seq {
		t.Fatalf("evaluation at the same time: %+v %v, want unchanged at seq %d", out, err, first.Seq)
	}
	clk.set(t0().Add(90 * time.Minute))
	out, err = evaluate(ctx, s, aks1)
	if err != nil || out.Result != state.Committed || out.Seq != first.Seq+1 {
		t.Fatalf("evaluation that moves the deadline: %+v %v, want committed at seq %d", out, err, first.Seq+1)
	}
	want := t0().Add(150 * time.Minute)
	if got := coldVolatile(t, svc, prefix); !got.NextEvaluation.Equal(want) || !got.equal(volatileOf(out.Cluster)) {
		t.Errorf("loaded cold: %+v, want NextEvaluation %s as committed (%+v)", got, want, volatileOf(out.Cluster))
	}
	if got := headRow(t, svc, prefix); got["odata.etag"] != head["odata.etag"] {
		t.Errorf("the evaluation rewrote the Cluster row (ETag %v → %v)", head["odata.etag"], got["odata.etag"])
	}
}

// putRaw writes an entity as a writer of an older version would have.
func putRaw(t *testing.T, svc *aztables.ServiceClient, prefix string, e map[string]any) {
	t.Helper()
	e["PartitionKey"] = aks1.Key()
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.NewClient(prefix+state.TableFleet).AddEntity(context.Background(), b, nil); err != nil {
		t.Fatal(err)
	}
}

// findingRowKey is the RowKey state gives a finding: its code and target,
// hashed (they hold characters keys are not written with).
func findingRowKey(code, target string) string {
	h := sha256.Sum256([]byte(code + "~" + strings.ReplaceAll(target, "/", ":")))
	return "finding~h-" + hex.EncodeToString(h[:16])
}

// edmTime is a DateTime column's value as Table storage keeps it.
func edmTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.0000000Z") }

// A partition last written before issue #13 (the volatile columns on the
// Cluster row, a plain sequence row) loads with its values; an evaluation
// that changes nothing writes nothing; the next commit moves them to the
// sequence row and rewrites the Cluster row without them.
func TestOlderPartitionLoadsAndMovesVolatileColumns(t *testing.T) {
	s, svc, prefix := newStore(t)
	ctx := context.Background()
	last, heard, next, seen := t0().Add(3*time.Hour), t0().Add(3*time.Hour+time.Minute), t0().Add(27*time.Hour), t0().Add(2*time.Hour)
	putRaw(t, svc, prefix, map[string]any{"RowKey": "cluster", "Kind": "Cluster",
		"SubscriptionId": aks1.SubscriptionID, "ResourceGroup": aks1.ResourceGroup, "ClusterName": aks1.Name,
		"ResourceId": aks1.ResourceID(), "Location": "westeurope", "KubernetesVersion": "1.33.5",
		"Signals": "7", "Signals@odata.type": "Edm.Int64",
		"FirstEventAt": edmTime(t0()), "FirstEventAt@odata.type": "Edm.DateTime",
		"LastEventAt": edmTime(last), "LastEventAt@odata.type": "Edm.DateTime",
		"HeardAt": edmTime(heard), "HeardAt@odata.type": "Edm.DateTime",
		"NextEvaluation": edmTime(next), "NextEvaluation@odata.type": "Edm.DateTime",
		"FindingsSeenAt": edmTime(seen), "FindingsSeenAt@odata.type": "Edm.DateTime"})
	putRaw(t, svc, prefix, map[string]any{"RowKey": findingRowKey(fleet.CodeImageStale, "pool/system"), "Kind": "Finding",
		"Code": fleet.CodeImageStale, "Target": "pool/system", "Severity": fleet.SeverityWarning, "Status": fleet.FindingOpen,
		"Summary": "node image is stale", "Evidence": "{}", "Opened": 1,
		"OpenedAt": edmTime(t0().Add(time.Hour)), "OpenedAt@odata.type": "Edm.DateTime"})
	for _, n := range []int{0, 3} {
		putRaw(t, svc, prefix, map[string]any{"RowKey": fmt.Sprintf("seq~%012d", n), "Kind": "Sequence",
			"Seq": strconv.Itoa(n), "Seq@odata.type": "Edm.Int64"})
	}

	old := volatileValues{Signals: 7, LastEventAt: last, HeardAt: heard, NextEvaluation: next, FindingsSeenAt: seen}
	if got := coldVolatile(t, svc, prefix); !got.equal(old) {
		t.Fatalf("older partition loaded as %+v, want %+v", got, old)
	}
	out, err := s.Update(ctx, aks1, nil, func(*fleet.Cluster) error { return nil })
	if err != nil || out.Result != state.Unchanged || out.Seq != 3 {
		t.Fatalf("update that changes nothing: %+v %v, want unchanged at seq 3", out, err)
	}

	sig := rolling("after-13", fleet.KindRollingStarted, "system", t0().Add(4*time.Hour))
	out, err = commit(ctx, s, sig)
	if err != nil || out.Result != state.Committed || out.Seq != 4 {
		t.Fatalf("next commit: %+v %v, want committed at seq 4", out, err)
	}
	now := old
	now.Signals, now.LastEventAt = 8, sig.Time
	if got := coldVolatile(t, svc, prefix); !got.equal(now) || !volatileOf(out.Cluster).equal(now) {
		t.Errorf("after the next commit: loaded cold %+v, committed %+v; want %+v", got, volatileOf(out.Cluster), now)
	}
	seq := seqRow(t, svc, prefix)
	want := map[string]any{"Signals": "8", "LastEventAt": edmTime(sig.Time), "HeardAt": edmTime(heard),
		"NextEvaluation": edmTime(next), "FindingsSeenAt": edmTime(seen)}
	for k, v := range want {
		if seq[k] != v {
			t.Errorf("sequence row %s = %v, want %v", k, seq[k], v)
		}
	}
	head := headRow(t, svc, prefix)
	for _, k := range volatileColumns {
		if v, ok := head[k]; ok {
			t.Errorf("Cluster row still holds %s (%v)", k, v)
		}
	}
	if head["Location"] != "westeurope" || head["KubernetesVersion"] != "1.33.5" {
		t.Errorf("Cluster row rewritten without its other columns: %v", head)
	}
}

// A change committed in several transactions and interrupted between them
// leaves the partition with the volatile values it had before the change
// (on the Partial sequence row); the redelivery completes it exactly once.
func TestInterruptedChangeKeepsPreviousVolatileValues(t *testing.T) {
	for _, die := range []int{0, 3} {
		t.Run(fmt.Sprintf("after part %d", die+1), func(t *testing.T) {
			_, svc, prefix := newStore(t)
			dying := openWithRules(t, svc, prefix)
			ctx := context.Background()
			before, err := ingest(ctx, dying, notificationOf("rn-3", evalNow.Add(-2*time.Hour), 3))
			if err != nil {
				t.Fatal(err)
			}
			prev := volatileOf(before.Cluster)
			if prev.Signals != 1 || prev.FindingsSeenAt.IsZero() {
				t.Fatalf("setup: %+v, want one signal and open findings", prev)
			}

			died := errors.New("instance stopped")
			state.SetChunkHook(dying, func(part int) error {
				if part == die {
					return died
				}
				return nil
			})
			big := notificationOf("rn-150", evalNow.Add(-time.Hour), 150)
			if _, err := ingest(ctx, dying, big); !errors.Is(err, state.ErrUnavailable) {
				t.Fatalf("commit that died: %v, want ErrUnavailable", err)
			}
			if seq := seqRow(t, svc, prefix); seq["Partial"] != true || seq["Signals"] != "1" ||
				seq["LastEventAt"] != edmTime(prev.LastEventAt) {
				t.Fatalf("sequence row after dying = %v, want Partial with the previous Signals and LastEventAt", seq)
			}
			if got := coldVolatile(t, svc, prefix); !got.equal(prev) {
				t.Errorf("partly applied state loaded as %+v, want the previous values %+v", got, prev)
			}

			other := openWithRules(t, svc, prefix)
			out, err := ingest(ctx, other, big)
			if err != nil || out.Result != state.Committed {
				t.Fatalf("redelivery: %+v %v", out, err)
			}
			checkOnce(t, other, 150, 2)
			mustCommit(t, dying, big, state.Duplicate)
			hot := volatileOf(out.Cluster)
			if !hot.LastEventAt.Equal(big.Time) {
				t.Errorf("LastEventAt after the redelivery = %s, want %s", hot.LastEventAt, big.Time)
			}
			if got := coldVolatile(t, svc, prefix); !got.equal(hot) {
				t.Errorf("loaded cold %+v, the committing instance holds %+v", got, hot)
			}
			if seq := seqRow(t, svc, prefix); seq["Partial"] == true || seq["Signals"] != "2" {
				t.Errorf("sequence row after the redelivery = %v, want complete with Signals 2", seq)
			}
		})
	}
}
