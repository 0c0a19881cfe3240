package findings

import (
	"strings"
	"testing"
	"time"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
)

func activity(op, status, pool, actor, corr, msg string, at time.Time) fleet.Signal {
	a := fleet.Activity{Operation: op, Status: status, Pool: pool, Actor: actor, ActorType: fleet.ActorUser,
		CorrelationID: corr, Message: msg, Path: fleet.PathAlert, ResourceID: aks.ResourceID()}
	if actor == fleet.AKSCaller {
		a.ActorType = fleet.ActorAKS
	}
	return fleet.Signal{ID: fleet.ActivityID(a), Time: at, Cluster: aks, Kind: fleet.KindActivity, Activity: &a}
}

const pdbMessage = "UpgradeFailed: Drain node aks-payments-12345678-vmss000001 failed when evicting pod payments-api-7d9f: Cannot evict pod as it would violate the pod's disruption budget."

// A failure the activity log reports becomes the evidence (and the summary)
// of the UpgradeFailed finding of the operation it ended.
func TestUpgradeFailedCarriesActivityEvidence(t *testing.T) {
	sigs := append(healthy(),
		roll("s1", fleet.KindRollingStarted, "payments", now.Add(-90*time.Minute)),
		activity(fleet.OpPoolWrite, fleet.ActivityFailed, "payments", fleet.AKSCaller, "corr-auto", pdbMessage, now.Add(-20*time.Minute)),
	)
	r := Evaluate(build(t, sigs), nodeImagePolicy, nil, now)
	o, ok := keys(r)[fleet.FindingKey(fleet.CodeUpgradeFailed, "pool/payments")]
	if !ok {
		t.Fatalf("UpgradeFailed not observed: %+v", r.Observations)
	}
	if !strings.Contains(o.Summary, "disruption budget") {
		t.Errorf("summary %q does not say why", o.Summary)
	}
	fs, _ := o.Evidence["failures"].([]map[string]any)
	if len(fs) != 1 || fs[0]["actor"] != fleet.AKSCaller || fs[0]["correlationId"] != "corr-auto" {
		t.Errorf("evidence failures = %+v", o.Evidence["failures"])
	}
	if _, stalled := keys(r)[fleet.FindingKey(fleet.CodeUpgradeStalled, "pool/payments")]; stalled {
		t.Error("the operation the failure ended is still judged as stalled")
	}
}

// A request that failed before anything rolled is a failed upgrade of the
// pool until the pool upgrades successfully.
func TestFailedRequestOpensUntilASuccess(t *testing.T) {
	sigs := append(healthy(),
		activity(fleet.OpPoolUpgradeImage, fleet.ActivityFailed, "system", "bob@contoso.com", "corr-q",
			"QuotaExceeded: Operation could not be completed as it results in exceeding approved standardDDSv5Family Cores quota.",
			now.Add(-time.Hour)))
	c := build(t, sigs)
	o, ok := keys(Evaluate(c, nodeImagePolicy, nil, now))[fleet.FindingKey(fleet.CodeUpgradeFailed, "pool/system")]
	if !ok || !strings.Contains(o.Summary, "bob@contoso.com") || !strings.Contains(o.Summary, "QuotaExceeded") {
		t.Fatalf("UpgradeFailed = %+v, %v; want it naming the requester and the reason", o, ok)
	}
	for _, s := range []fleet.Signal{
		roll("s1", fleet.KindRollingStarted, "system", now.Add(-30*time.Minute)),
		roll("e1", fleet.KindRollingSucceeded, "system", now.Add(-10*time.Minute)),
	} {
		if err := fleet.Apply(c, s); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok := keys(Evaluate(c, nodeImagePolicy, nil, now))[fleet.FindingKey(fleet.CodeUpgradeFailed, "pool/system")]; ok {
		t.Error("UpgradeFailed still observed after a later successful upgrade of the pool")
	}
}

// Drift says who drifted the channel; the not-applied clock starts at the write.
func TestDriftNamesWhoChangedTheChannel(t *testing.T) {
	sigs := []fleet.Signal{
		read("arm-0", now.Add(-30*time.Hour), "NodeImage", "patch", pools(ubuntuFresh), sundayWindow),
		activity(fleet.OpClusterWrite, fleet.ActivitySucceeded, "", "mallory@contoso.com", "corr-w", "", now.Add(-26*time.Hour)),
		read("arm-1", now.Add(-25*time.Hour), "None", "patch", pools(ubuntuFresh), sundayWindow),
	}
	r := Evaluate(build(t, sigs), nodeImagePolicy, nil, now)
	drift, ok := keys(r)[fleet.FindingKey(fleet.CodeChannelDrift, "cluster")]
	if !ok || drift.Evidence["changedBy"] != "mallory@contoso.com" || drift.Evidence["changedFrom"] != "NodeImage" {
		t.Fatalf("ChannelDrift = %+v, want it naming mallory and the channel before", drift.Evidence)
	}
	na, ok := keys(r)[fleet.FindingKey(fleet.CodeChannelChangeNotApplied, "cluster")]
	if !ok || !strings.Contains(na.Summary, "mallory@contoso.com") {
		t.Fatalf("ChannelChangeNotApplied = %+v, %v", na, ok)
	}
	if at, _ := na.Evidence["changedAt"].(time.Time); !at.Equal(now.Add(-26 * time.Hour)) {
		t.Errorf("the clock started at %v, want the write's time", na.Evidence["changedAt"])
	}
}

// A change activity with no ARM read after it wakes the sweep to read the cluster.
func TestChangeActivityWakesTheSweep(t *testing.T) {
	at := now.Add(-time.Minute)
	c := build(t, append(healthy(), activity(fleet.OpMaintenanceDelete, fleet.ActivitySucceeded, "", "carol@contoso.com", "corr-m", "", at)))
	if r := Evaluate(c, nodeImagePolicy, nil, now); !r.Next.Equal(at.Add(refreshGrace)) {
		t.Errorf("next evaluation %v, want %v", r.Next, at.Add(refreshGrace))
	}
	if err := fleet.Apply(c, read("arm-1", now, "NodeImage", "patch", pools(ubuntuFresh))); err != nil {
		t.Fatal(err)
	}
	if r := Evaluate(c, nodeImagePolicy, nil, now); r.Next.Equal(at.Add(refreshGrace)) {
		t.Error("still waking for a refresh after the read")
	}
}

// A deletion only the activity log reports resolves nothing: the findings
// stay open and the sweep wakes to read the cluster from ARM. ARM answering
// 404 resolves everything; ARM finding the cluster keeps them.
func TestClusterDeleteActivityWaitsForARM(t *testing.T) {
	sigs := []fleet.Signal{read("arm-0", now.Add(-2*time.Hour), "None", "patch", pools(ubuntuOld))}
	open := len(Evaluate(build(t, sigs), nodeImagePolicy, nil, now).Observations)
	if open == 0 {
		t.Fatal("setup: expected findings on a cluster on channel None")
	}
	reported := now.Add(-time.Minute)
	sigs = append(sigs, activity(fleet.OpClusterDelete, fleet.ActivitySucceeded, "", "erin@contoso.com", "corr-d", "", reported))
	r := Evaluate(build(t, sigs), nodeImagePolicy, nil, now)
	if len(r.Observations) != open {
		t.Errorf("a reported deletion changed the findings: %d observed, want %d", len(r.Observations), open)
	}
	if !r.Next.Equal(reported.Add(refreshGrace)) {
		t.Errorf("next evaluation %v, want the sweep to ask ARM at %v", r.Next, reported.Add(refreshGrace))
	}

	gone := fleet.Signal{ID: "arm-404", Type: fleet.TypeARMRead, Time: now, Cluster: aks, Kind: fleet.KindClusterDeleted}
	if r := Evaluate(build(t, append(sigs, gone)), nodeImagePolicy, nil, now); len(r.Observations) != 0 || !r.Next.IsZero() {
		t.Errorf("after ARM's 404: %+v, next %v; want nothing open", r.Observations, r.Next)
	}
	there := read("arm-1", now, "None", "patch", pools(ubuntuOld))
	if r := Evaluate(build(t, append(sigs, there)), nodeImagePolicy, nil, now); len(r.Observations) != open || r.Next.Equal(reported.Add(refreshGrace)) {
		t.Errorf("after ARM found the cluster: %d observed, next %v; want the findings and no refresh", len(r.Observations), r.Next)
	}
}

// A pool deletion only the activity log reports keeps the pool's findings
// until an ARM read lists the cluster without it.
func TestPoolDeleteActivityWaitsForARM(t *testing.T) {
	sigs := []fleet.Signal{read("arm-0", now.Add(-2*time.Hour), "NodeImage", "patch", pools(ubuntuOld))}
	key := ""
	for _, o := range Evaluate(build(t, sigs), nodeImagePolicy, nil, now).Observations {
		if strings.HasPrefix(o.Target, "pool/system") {
			key = fleet.FindingKey(o.Code, o.Target)
		}
	}
	if key == "" {
		t.Fatal("setup: expected a finding of the system pool")
	}
	sigs = append(sigs, activity(fleet.OpPoolDelete, fleet.ActivitySucceeded, "system", "erin@contoso.com", "corr-pd", "", now.Add(-time.Minute)))
	if _, ok := keys(Evaluate(build(t, sigs), nodeImagePolicy, nil, now))[key]; !ok {
		t.Errorf("%s resolved on a reported pool deletion", key)
	}
	if _, ok := keys(Evaluate(build(t, append(sigs, read("arm-1", now, "NodeImage", "patch", []fleet.PoolProfile{}))), nodeImagePolicy, nil, now))[key]; ok {
		t.Errorf("%s still open after ARM listed the cluster without the pool", key)
	}
}
