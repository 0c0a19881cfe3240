package state_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
	"github.com/upgradewatch/upgradewatch/internal/state"
)

// maxTags is Azure's most tags on one resource; names hold up to 512
// characters and values up to 256.
func maxTags(n int) map[string]string {
	tags := map[string]string{"upgradewatch.remediate": "off"}
	for i := len(tags); i < n; i++ {
		// Non-ASCII letters: Table storage counts UTF-16 units, not bytes.
		name := fmt.Sprintf("team-%03d-", i) + strings.Repeat("é", 512-9)
		tags[name] = strings.Repeat("v", 250) + fmt.Sprintf("-%05d", i)
	}
	return tags
}

// 50 tags of the maximum length (about 39 000 characters of JSON, over the
// 32 768 a property holds) commit and read back whole.
func TestCommitMaximumTags(t *testing.T) {
	s, svc, prefix := newStore(t)
	sig := notificationOf("tags-50", t0(), 3)
	sig.Profile.Tags = maxTags(50)
	mustCommit(t, s, sig, state.Committed)
	c, err := s.Cluster(context.Background(), aks1)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Tags) != 50 {
		t.Fatalf("read back %d tags, want 50", len(c.Tags))
	}
	for k, v := range sig.Profile.Tags {
		if c.Tags[k] != v {
			t.Fatalf("tag %.20s… read back as %.20q, want %.20q", k, c.Tags[k], v)
		}
	}
	head := rawRows(t, svc, prefix, "RowKey eq 'cluster'")[0]
	var first map[string]string
	if err := json.Unmarshal([]byte(head["Tags"].(string)), &first); err != nil || first["upgradewatch.remediate"] != "off" {
		t.Errorf("Tags column is not a JSON object holding the policy tag first (%v): %.80s", err, head["Tags"])
	}
	if _, ok := head["TagsOverflow"]; !ok {
		t.Error("no TagsOverflow column: the tags cannot all fit in Tags")
	}
}

// More tags than Azure allows (a forged payload) commit too: what does not
// fit is left out, the policy tags kept, and the cluster says so.
func TestCommitTooManyTagsClipped(t *testing.T) {
	s, svc, prefix := newStore(t)
	sig := notificationOf("tags-300", t0(), 3)
	sig.Profile.Tags = maxTags(300)
	mustCommit(t, s, sig, state.Committed)
	c, err := s.Cluster(context.Background(), aks1)
	if err != nil {
		t.Fatal(err)
	}
	if c.Tags["upgradewatch.remediate"] != "off" {
		t.Error("the policy tag was left out")
	}
	var mark string
	for k, v := range c.Tags {
		if strings.Contains(k, "omitted") {
			mark = v
		}
	}
	if !strings.Contains(mark, "tags not stored") || len(c.Tags) >= 300 {
		t.Errorf("read back %d tags with mark %q, want fewer than 300 and a mark", len(c.Tags), mark)
	}
	head := rawRows(t, svc, prefix, "RowKey eq 'cluster'")[0]
	if n, _ := head["TagsOmitted"].(float64); int(n)+len(c.Tags)-1 != 300 {
		t.Errorf("TagsOmitted = %v with %d tags read back, want them to add up to 300", head["TagsOmitted"], len(c.Tags)-1)
	}
	// The next signal rewrites the cluster row from the clipped tags: the
	// mark stays.
	mustCommit(t, s, rolling("after-tags", fleet.KindRollingStarted, "np000", t0().Add(time.Minute)), state.Committed)
	if c, _ := s.Cluster(context.Background(), aks1); len(c.Tags) == 0 || !hasOmittedMark(c.Tags) {
		t.Errorf("mark lost after a rewrite: %d tags", len(c.Tags))
	}
}

func hasOmittedMark(tags map[string]string) bool {
	for k := range tags {
		if strings.Contains(k, "omitted") {
			return true
		}
	}
	return false
}

// A node snapshot whose pools run thousands of distinct image versions, and
// whose rows together weigh more than a 4 MiB request, commits: each pool
// keeps its most common versions and counts the nodes it does not list.
func TestCommitThousandsOfNodeVersions(t *testing.T) {
	s, svc, prefix := newStore(t)
	inv := &fleet.InventorySummary{Complete: true, Pools: map[string]fleet.PoolNodes{}}
	for p := range 130 {
		pn := fleet.PoolNodes{Versions: map[string]int{}}
		for v := range 1500 {
			n := 1
			if v == 0 {
				n = 40 // the version most nodes run
			}
			pn.Versions[fmt.Sprintf("AKSUbuntu-2204gen2containerd-2026%02d.%02d.%d", 1+v%12, 1+v%28, v)] = n
			pn.Nodes += n
		}
		pn.Ready = pn.Nodes
		inv.Pools[fmt.Sprintf("np%03d", p)] = pn
	}
	sig := fleet.Signal{ID: "snap-1", Type: fleet.TypeNodeSnapshot, Source: "node-reporter", Subject: aks1.ResourceID(),
		Time: t0(), Cluster: aks1, Kind: fleet.KindNodesObserved, Inventory: inv}
	mustCommit(t, s, sig, state.Committed)
	c, err := s.Cluster(context.Background(), aks1)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Pools) != 130 {
		t.Fatalf("pools = %d, want 130", len(c.Pools))
	}
	p := c.Pools["np007"]
	if p.Nodes == nil || p.Nodes.Nodes != 1539 || len(p.Nodes.Versions) >= 1500 || len(p.Nodes.Versions) < 100 {
		t.Fatalf("np007 nodes = %+v versions, want 1539 nodes and a few hundred versions kept", len(p.Nodes.Versions))
	}
	if p.Nodes.Versions["AKSUbuntu-2204gen2containerd-202601.01.0"] != 40 {
		t.Error("the most common version was left out")
	}
	row := rawRows(t, svc, prefix, "RowKey eq 'pool~np007'")[0]
	listed := 0
	for _, n := range p.Nodes.Versions {
		listed += n
	}
	if n, _ := row["NodesUnlisted"].(float64); int(n) != 1539-listed || n == 0 {
		t.Errorf("NodesUnlisted = %v, want %d", row["NodesUnlisted"], 1539-listed)
	}
	mustCommit(t, s, sig, state.Duplicate)
}

// Text longer than a property holds is clipped, with a mark that reads back.
func TestCommitLongTextClipped(t *testing.T) {
	s, _, _ := newStore(t)
	long := strings.Repeat("ü", 40_000)
	sig := notificationOf("long-text", t0(), 2)
	sig.Profile.Pools[0].VMSize = long
	mustCommit(t, s, sig, state.Committed)
	ev := fleet.ScheduledEvent{EventID: "evt-1", Status: fleet.ScheduledStatusScheduled, Source: "AutoUpgrader",
		Description: strings.Repeat("😀", 40_000), UpgradeType: "NodeOSUpgrade", Details: long, ScheduledTime: t0().Add(time.Hour)}
	mustCommit(t, s, fleet.Signal{ID: "sched-1", Type: "Microsoft.ResourceNotifications.ContainerServiceEventResources.ScheduledEventEmitted",
		Source: aks1.ResourceID(), Time: t0(), Cluster: aks1, Kind: fleet.KindScheduledEvent, Scheduled: &ev}, state.Committed)
	c, err := s.Cluster(context.Background(), aks1)
	if err != nil {
		t.Fatal(err)
	}
	if vm := c.Pools["np000"].Spec.VMSize; !hasMark(vm) || len(vm) >= len(long) {
		t.Errorf("VmSize read back %d bytes, mark %v; want clipped and marked", len(vm), hasMark(vm))
	}
	if d := c.Scheduled["evt-1"].Description; !hasMark(d) {
		t.Errorf("Description read back without a mark (%d bytes)", len(d))
	}
	// Clipped values read back and written again stay as they are.
	mustCommit(t, s, rolling("after-clip", fleet.KindRollingStarted, "np001", t0().Add(time.Minute)), state.Committed)
	if c2, _ := s.Cluster(context.Background(), aks1); c2.Pools["np000"].Spec.VMSize != c.Pools["np000"].Spec.VMSize {
		t.Error("a clipped value changed when written again")
	}
}
