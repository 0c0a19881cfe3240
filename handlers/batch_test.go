package handlers_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
)

// An Event Grid batch with one event that cannot be decoded: the others
// commit, those of one cluster in one guarded transaction; the bad one is
// kept in Rejected with its body; the redelivered batch is duplicates and the
// same rejection.
func TestAksEventsBatchWithAMalformedEvent(t *testing.T) {
	e := newEnv(t)
	body := readFixture(t, "envelope-batch-one-malformed.json")
	code, resp, sum := e.invoke(t, "AksEvents", body)
	if code != http.StatusOK {
		t.Fatalf("status %d, want 200", code)
	}
	if sum["events"] != float64(5) || sum["committed"] != float64(4) || sum["rejected"] != float64(1) || sum["failed"] != float64(0) {
		t.Fatalf("summary %v, want 5 events: 4 committed, 1 rejected", sum)
	}
	for _, l := range resp.Logs {
		if strings.HasPrefix(l, "committed:") && !strings.HasSuffix(l, "(seq 1)") {
			t.Errorf("log %q: want every event committed at seq 1 (one transaction per cluster)", l)
		}
	}
	payments := fleet.ClusterID{SubscriptionID: "6f1c2a3b-4d5e-4f60-8a71-92b3c4d5e6f7", ResourceGroup: "rg-payments-prod", Name: "aks-payments-weu"}
	search := fleet.ClusterID{SubscriptionID: "0b2d4f6a-8c1e-4a3b-9d5f-7e1a3c5b7d9f", ResourceGroup: "rg-search-prod", Name: "aks-search-eus2"}
	for id, want := range map[fleet.ClusterID]int64{payments: 3, search: 1} {
		c, err := e.store.Cluster(context.Background(), id)
		if err != nil || c.Signals != want {
			t.Fatalf("%s: %+v %v, want %d signals", id.Name, c, err, want)
		}
	}
	rej, err := e.store.Rejections(context.Background(), received)
	if err != nil {
		t.Fatal(err)
	}
	if len(rej) != 1 || rej[0].EventID != "3c4d5e6f-7a8b-4c9d-0e1f-2a3b4c5d6e7f" || !strings.Contains(rej[0].Body, "yesterday") ||
		rej[0].Function != "AksEvents" {
		t.Fatalf("rejections %+v, want the malformed event with its body", rej)
	}

	code, _, sum = e.invoke(t, "AksEvents", body)
	if code != http.StatusOK || sum["duplicates"] != float64(4) || sum["committed"] != float64(0) || sum["rejected"] != float64(1) {
		t.Fatalf("redelivery: %d %v, want 4 duplicates and the rejection again", code, sum)
	}
}
