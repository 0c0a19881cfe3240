package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
	"github.com/upgradewatch/upgradewatch/internal/notify"
)

// checkout is a second cluster, so that the tally has two to tell apart.
var checkout = fleet.ClusterID{
	SubscriptionID: "3f2b8c1e-7d4a-4e29-9b6f-0a1c5d8e2f47",
	ResourceGroup:  "rg-checkout-prod",
	Name:           "aks-checkout-neu",
}

const checkoutStatus = "https://func-upgradewatch-prod.azurewebsites.net/api/clusters/3f2b8c1e-7d4a-4e29-9b6f-0a1c5d8e2f47/rg-checkout-prod/aks-checkout-neu"

func paymentsGroup() notify.Group {
	items := []notify.Notification{upgradeFailedOpened(), imageStalePlanned(), channelDriftResolved()}
	ids := make([]string, len(items))
	for i, n := range items {
		ids[i] = n.ID
	}
	return notify.Group{ID: notify.GroupID(ids), Cluster: payments, StatusURL: paymentsStatus, Items: items}
}

func checkoutOpened() notify.Notification {
	n := upgradeFailedOpened()
	n.ID, n.Cluster, n.StatusURL = "0c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f", checkout, checkoutStatus
	n.Subject = "/subscriptions/3f2b8c1e-7d4a-4e29-9b6f-0a1c5d8e2f47/resourceGroups/rg-checkout-prod/providers/Microsoft.ContainerService/managedClusters/aks-checkout-neu/agentPools/payments"
	return n
}

// A grouped Teams or Slack message is counted once for its cluster, with the
// number of steps it carries; a single step's card counts as one step.
func TestChatTallyPerCluster(t *testing.T) {
	ts := startSink(t, options{})
	ctx := context.Background()
	for _, kind := range []string{kindTeams, kindSlack} {
		s := newNotifySink(t, kind, ts.URL+"/"+kind)
		g, ok := s.(notify.GroupSender)
		if !ok {
			t.Fatalf("%s sink is not a GroupSender", kind)
		}
		if err := g.SendGroup(ctx, paymentsGroup()); err != nil {
			t.Fatalf("%s SendGroup: %v", kind, err)
		}
		if err := s.Send(ctx, checkoutOpened()); err != nil {
			t.Fatalf("%s Send: %v", kind, err)
		}
	}
	got := ts.raw(t)
	want := []chatListed{
		{kindTeams, "aks-payments-weu", 3}, {kindTeams, "aks-checkout-neu", 1},
		{kindSlack, "aks-payments-weu", 3}, {kindSlack, "aks-checkout-neu", 1},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("GET /events kind, cluster, steps (-want +got):\n%s", diff)
	}
	sum := ts.srv.summary()
	for _, w := range []string{
		"; slack messages by cluster: aks-checkout-neu 1, aks-payments-weu 1",
		"; teams messages by cluster: aks-checkout-neu 1, aks-payments-weu 1",
		"; 0 duplicates;",
	} {
		if !strings.Contains(sum, w) {
			t.Errorf("summary %q lacks %q", sum, w)
		}
	}
}

// /oncall is a receiver of its own: the step the webhook sink sent to
// /events, sent again to /oncall by a second (routed) webhook sink, is no
// duplicate; sent twice to /oncall it is.
func TestOncallReceiver(t *testing.T) {
	ts := startSink(t, options{})
	n := upgradeFailedOpened()
	for _, path := range []string{"/events", "/oncall", "/oncall"} {
		if err := newNotifySink(t, kindCloudEvent, ts.URL+path).Send(context.Background(), n); err != nil {
			t.Fatalf("Send to %s: %v", path, err)
		}
	}
	var got []view
	for _, v := range ts.views(t) {
		got = append(got, view{Path: v.Path, Duplicate: v.Duplicate, ID: v.ID})
	}
	want := []view{{Path: "/events", ID: n.ID}, {Path: "/oncall", ID: n.ID}, {Path: "/oncall", ID: n.ID, Duplicate: true}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("GET /events path, id, duplicate (-want +got):\n%s", diff)
	}
	if s := ts.srv.summary(); !strings.Contains(s, "(/events 1, /oncall 2)") || !strings.Contains(s, "; 1 duplicate;") {
		t.Errorf("got summary %q, want /events 1, /oncall 2 and 1 duplicate", s)
	}
	if status, _ := ts.post(t, "/oncall", map[string]string{"Content-Type": "application/json"}, []byte(`{"text":"hi"}`)); status != http.StatusBadRequest {
		t.Errorf("a Slack message to /oncall: got status %d, want 400", status)
	}
}

func TestClusterOfStatusURL(t *testing.T) {
	for in, want := range map[string]string{
		checkoutStatus: "aks-checkout-neu",
		"http://127.0.0.1:8089/api/clusters/sub/rg/aks-a/findings": "aks-a",
		"http://127.0.0.1:8089/api/clusters/sub/rg":                "",
		"https://github.com/Azure/AgentBaker/blob/master/x":        "",
		"/api/clusters/sub/rg/aks-a":                               "", // no host: not a link
		"aks-payments-weu":                                         "",
	} {
		if got := clusterOfStatusURL(in); got != want {
			t.Errorf("clusterOfStatusURL(%q) = %q, want %q", in, got, want)
		}
	}
}

// chatListed is the tally part of an item of GET /events.
type chatListed struct {
	Kind    string `json:"kind"`
	Cluster string `json:"cluster"`
	Steps   int    `json:"steps"`
}

func (ts *testSink) raw(t *testing.T) []chatListed {
	t.Helper()
	resp, err := http.Get(ts.URL + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out []chatListed
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("GET /events: %v", err)
	}
	return out
}
