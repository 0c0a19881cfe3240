package state_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
	"github.com/upgradewatch/upgradewatch/internal/state"
)

// An intent stays a state row (out~<id>) while a sink owes it; the change
// that makes it done (every sink sent or gave up) moves it, as it ended, to
// the archive (zout~<id>), where loading never reads it. Neither the cache
// nor a fresh load holds it afterwards, and later changes leave the archive
// row alone.
func TestDoneIntentMovesToTheArchiveAsItEnded(t *testing.T) {
	ctx := context.Background()
	s, svc, prefix := newStore(t)
	mustCommit(t, s, rolling("rs-1", fleet.KindRollingStarted, "system", t0()), state.Committed)

	const id = "4f1d2c3b4a5968778695a4b3c2d1e0f9"
	at := t0().Add(time.Minute)
	update := func(fn func(c *fleet.Cluster)) state.Change {
		t.Helper()
		ch, err := s.Update(ctx, aks1, nil, func(c *fleet.Cluster) error { fn(c); return nil })
		if err != nil {
			t.Fatal(err)
		}
		return ch
	}
	update(func(c *fleet.Cluster) {
		c.Outbox = map[string]*fleet.Intent{id: {ID: id, Step: fleet.StepOpened, At: at, Code: fleet.CodeUpgradeStalled,
			Target: "pool/system", Severity: fleet.SeverityWarning, Summary: "pool system has been upgrading for 26h", Evidence: `{"hours":26}`,
			OpenedAt: at, Opened: 1, Deliveries: map[string]*fleet.Delivery{"webhook": {NextAttempt: at}, "teams": {NextAttempt: at}}}}
	})
	rowsOf := func(filter string) []map[string]any { return rawRows(t, svc, prefix, filter) }
	if got := rowsOf("RowKey eq 'out~" + id + "'"); len(got) != 1 {
		t.Fatalf("pending intent: %d out~ rows, want 1", len(got))
	}

	sentWebhook, sentTeams := at.Add(2*time.Second), at.Add(3*time.Second)
	update(func(c *fleet.Cluster) { c.Outbox[id].Deliveries["webhook"].SentAt = sentWebhook })
	if got := rowsOf("RowKey eq 'zout~" + id + "'"); len(got) != 0 {
		t.Fatalf("intent archived while teams still owes it: %v", got)
	}
	ch := update(func(c *fleet.Cluster) {
		d := c.Outbox[id].Deliveries["teams"]
		d.SentAt, d.Attempts = sentTeams, 2
	})
	if n := len(ch.Cluster.Outbox); n != 0 {
		t.Errorf("committed state holds %d intents, want none (the done one is archived)", n)
	}
	if got := rowsOf("RowKey eq 'out~" + id + "'"); len(got) != 0 {
		t.Errorf("done intent still has its state row: %v", got)
	}
	arch := rowsOf("RowKey eq 'zout~" + id + "'")
	if len(arch) != 1 {
		t.Fatalf("archive rows = %d, want 1", len(arch))
	}
	var ds map[string]struct {
		Attempts int       `json:"attempts"`
		SentAt   time.Time `json:"sent"`
	}
	if err := json.Unmarshal([]byte(arch[0]["Deliveries"].(string)), &ds); err != nil {
		t.Fatal(err)
	}
	if !ds["webhook"].SentAt.Equal(sentWebhook) || !ds["teams"].SentAt.Equal(sentTeams) || ds["teams"].Attempts != 2 {
		t.Errorf("archived deliveries = %+v, want both sent as the final change recorded", ds)
	}
	if arch[0]["Kind"] != state.KindOutbox || arch[0]["Code"] != fleet.CodeUpgradeStalled {
		t.Errorf("archive row = %v, want the intent's row", arch[0])
	}

	// A later change from the cache and a load by another instance agree:
	// the intent is gone from the state, and the archive row is untouched.
	stamp := arch[0]["Timestamp"]
	ch = update(func(c *fleet.Cluster) { c.NextEvaluation = t0().Add(time.Hour) })
	if ch.Result != state.Committed || len(ch.Cluster.Outbox) != 0 {
		t.Errorf("later change: %s with %d intents, want committed with none", ch.Result, len(ch.Cluster.Outbox))
	}
	if again := rowsOf("RowKey eq 'zout~" + id + "'"); len(again) != 1 || again[0]["Timestamp"] != stamp {
		t.Errorf("archive row after a later change = %v, want it untouched", again)
	}
	loaded, err := open(t, svc, prefix).Cluster(ctx, aks1)
	if err != nil {
		t.Fatal(err)
	}
	if len(loaded.Outbox) != 0 {
		t.Errorf("a fresh load holds %d intents, want none", len(loaded.Outbox))
	}
}
