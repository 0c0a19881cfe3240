package remediate

import (
	"encoding/hex"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/upgradewatch/upgradewatch/internal/findings"
	"github.com/upgradewatch/upgradewatch/internal/fleet"
)

var (
	aks = fleet.ClusterID{SubscriptionID: "6f1c2a3b-4d5e-4f60-8a71-92b3c4d5e6f7", ResourceGroup: "rg-analytics-prod", Name: "aks-analytics-weu"}
	// The ARM read the test clusters come from: Sunday 2026-11-22 08:00 UTC.
	readAt = time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)
	// Sunday 2026-11-29 02:30 UTC: inside the Sunday 01:00–05:00 UTC node OS window.
	inWindow = time.Date(2026, 11, 29, 2, 30, 0, 0, time.UTC)
	// Tuesday 2026-11-24 09:00 UTC: between two node OS windows.
	outside = time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
)

const (
	sparkImage   = "AKSUbuntu-2204gen2containerd-202609.10.0"
	latestUbuntu = "AKSUbuntu-2204gen2containerd-202611.17.0"
	azlImage     = "AKSAzureLinux-V3gen2-202611.17.0"
	windowEnd    = "2026-11-29 05:00Z"
)

// The node OS window of the test cluster, as ARM shows a real one, and its
// auto-upgrade schedule, which must not count for node image upgrades.
var (
	sundayNodeOS = fleet.MaintenanceWindow{Name: fleet.MaintenanceNodeOS, DurationHours: 4, StartTime: "01:00", UTCOffset: "+00:00",
		StartDate: "2026-01-04", Schedule: fleet.MaintenanceSchedule{Kind: fleet.ScheduleWeekly, IntervalWeeks: 1, DayOfWeek: "Sunday"}}
	tuesdayAuto = fleet.MaintenanceWindow{Name: fleet.MaintenanceAuto, DurationHours: 8, StartTime: "06:00", UTCOffset: "+01:00",
		StartDate: "2026-03-03", Schedule: fleet.MaintenanceSchedule{Kind: fleet.ScheduleWeekly, IntervalWeeks: 1, DayOfWeek: "Tuesday"}}
)

var prod = fleet.Policy{NodeOSChannel: fleet.ChannelNodeImage, UpgradeChannel: fleet.UpgradePatch, Remediate: fleet.RemediateApply,
	Source: "defaults, rule prod"}

// cluster is aks-analytics-weu as an ARM read shows it: NodeImage/patch,
// three pools of which spark is behind the latest Ubuntu image, a Sunday
// node OS window. windows replaces the maintenance configurations.
func cluster(t *testing.T, windows ...fleet.MaintenanceWindow) *fleet.Cluster {
	t.Helper()
	if windows == nil {
		windows = []fleet.MaintenanceWindow{tuesdayAuto, sundayNodeOS}
	}
	c := fleet.NewCluster(aks)
	err := fleet.Apply(c, fleet.Signal{ID: "arm-read-1", Type: fleet.TypeARMRead, Time: readAt, Cluster: aks, Kind: fleet.KindClusterUpdated,
		Profile: &fleet.ClusterProfile{
			Location: "westeurope", KubernetesVersion: "1.31.9", ProvisioningState: "Succeeded",
			NodeOSUpgradeChannel: fleet.ChannelNodeImage, UpgradeChannel: fleet.UpgradePatch,
			Pools: []fleet.PoolProfile{
				{Name: "system", Mode: "System", OSType: "Linux", OSSKU: "Ubuntu", VMSize: "Standard_D4ds_v5", Count: 3,
					NodeImageVersion: latestUbuntu, LatestNodeImageVersion: latestUbuntu, ProvisioningState: "Succeeded", MaxSurge: "33%"},
				{Name: "spark", Mode: "User", OSType: "Linux", OSSKU: "Ubuntu", VMSize: "Standard_E16ds_v5", Count: 12,
					NodeImageVersion: sparkImage, LatestNodeImageVersion: latestUbuntu, ProvisioningState: "Succeeded", MaxSurge: "10%"},
				{Name: "payments", Mode: "User", OSType: "Linux", OSSKU: "AzureLinux", VMSize: "Standard_D8ds_v5", Count: 6,
					NodeImageVersion: azlImage, LatestNodeImageVersion: azlImage, ProvisioningState: "Succeeded", MaxSurge: "2"},
			},
			MaintenanceKnown: true, Maintenance: windows,
		}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// open adds an open finding as the rules would have opened it.
func open(c *fleet.Cluster, code, target, severity string, openedAt time.Time, opened int) {
	f := &fleet.Finding{Code: code, Target: target, Severity: severity, Status: fleet.FindingOpen,
		OpenedAt: openedAt, LastSeenAt: openedAt, Opened: opened, Summary: code + " on " + target}
	c.Findings[f.Key()] = f
}

func record(c *fleet.Cluster, r fleet.Remediation) {
	if c.Remediations == nil {
		c.Remediations = map[string]*fleet.Remediation{}
	}
	c.Remediations[r.ID] = &r
}

// Findings every case starts from unless it says otherwise.
func driftedNodeOS(c *fleet.Cluster) {
	c.NodeOSUpgradeChannel = fleet.ChannelUnmanaged
	open(c, fleet.CodeChannelDrift, "cluster", fleet.SeverityWarning, readAt, 1)
}

func staleSpark(c *fleet.Cluster) {
	open(c, fleet.CodeImageStale, "pool/spark/latest", fleet.SeverityWarning, readAt.Add(-72*time.Hour), 1)
}

func setNodeOS(mode string, opened int, at time.Time) *fleet.Remediation {
	return &fleet.Remediation{
		ID:     ID(aks, fleet.CodeChannelDrift, "cluster", opened, fleet.ActionSetNodeOSChannel, mode),
		Action: fleet.ActionSetNodeOSChannel, Code: fleet.CodeChannelDrift, Target: "cluster", Opened: opened,
		From: fleet.ChannelUnmanaged, To: fleet.ChannelNodeImage, Mode: mode, Attempt: 1, PlannedAt: at,
		Detail: "set nodeOSUpgradeChannel from Unmanaged to NodeImage (policy: defaults, rule prod)",
	}
}

func upgradeSpark(code, target, mode, detailSuffix string, at time.Time) *fleet.Remediation {
	verb := "upgrade"
	if code == fleet.CodeUpgradeFailed {
		verb = "retry the failed upgrade of"
	}
	return &fleet.Remediation{
		ID:     ID(aks, code, target, 1, fleet.ActionUpgradeNodeImage, mode),
		Action: fleet.ActionUpgradeNodeImage, Code: code, Target: target, Opened: 1, Pool: "spark",
		From: sparkImage, To: latestUbuntu, Mode: mode, Attempt: 1, PlannedAt: at,
		Detail: verb + " the node image of pool spark from " + sparkImage + " to " + latestUbuntu + detailSuffix,
	}
}

const (
	inWindowDetail = " in the node OS maintenance window open until " + windowEnd
	outsideDetail  = " outside the node OS maintenance window, as the policy allows"
)

func TestDecide(t *testing.T) {
	staleID := ID(aks, fleet.CodeImageStale, "pool/spark/latest", 1, fleet.ActionUpgradeNodeImage, fleet.RemediateApply)
	driftID := ID(aks, fleet.CodeChannelDrift, "cluster", 1, fleet.ActionSetNodeOSChannel, fleet.RemediateApply)
	skipDrift := func(reason string) Skip { return Skip{fleet.CodeChannelDrift, "cluster", reason} }
	skipStale := func(reason string) Skip { return Skip{fleet.CodeImageStale, "pool/spark/latest", reason} }

	cases := []struct {
		name    string
		windows []fleet.MaintenanceWindow // nil: the Sunday node OS window and the Tuesday auto-upgrade one
		arrange func(c *fleet.Cluster)
		policy  func(p *fleet.Policy)
		ceiling string // "" means apply here; the cases that test "" set policy
		now     time.Time
		want    Decision
	}{
		// Opting in.
		{
			name:    "policy off",
			arrange: func(c *fleet.Cluster) { driftedNodeOS(c); staleSpark(c) },
			policy:  func(p *fleet.Policy) { p.Remediate = fleet.RemediateOff },
			now:     inWindow,
			want:    Decision{Mode: fleet.RemediateOff, Skips: []Skip{skipDrift(ReasonNotOptedIn), skipStale(ReasonNotOptedIn)}},
		},
		{
			name:    "policy empty is off",
			arrange: func(c *fleet.Cluster) { driftedNodeOS(c); staleSpark(c) },
			policy:  func(p *fleet.Policy) { p.Remediate = "" },
			now:     inWindow,
			want:    Decision{Mode: fleet.RemediateOff, Skips: []Skip{skipDrift(ReasonNotOptedIn), skipStale(ReasonNotOptedIn)}},
		},
		{
			name:    "ceiling off over an apply tag",
			arrange: func(c *fleet.Cluster) { driftedNodeOS(c) },
			ceiling: fleet.RemediateOff,
			now:     inWindow,
			want:    Decision{Mode: fleet.RemediateOff, Skips: []Skip{skipDrift(ReasonNotOptedIn)}},
		},
		{
			name:    "unknown ceiling is off",
			arrange: func(c *fleet.Cluster) { driftedNodeOS(c) },
			ceiling: "yes",
			now:     inWindow,
			want:    Decision{Mode: fleet.RemediateOff, Skips: []Skip{skipDrift(ReasonNotOptedIn)}},
		},
		{
			name:    "no remediable finding",
			arrange: func(c *fleet.Cluster) {},
			now:     inWindow,
			want:    Decision{Mode: fleet.RemediateApply},
		},

		// Modes.
		{
			name:    "dry-run plans like apply",
			arrange: func(c *fleet.Cluster) { driftedNodeOS(c); staleSpark(c) },
			policy:  func(p *fleet.Policy) { p.Remediate = fleet.RemediateDryRun },
			now:     inWindow,
			want: Decision{Mode: fleet.RemediateDryRun, Next: setNodeOS(fleet.RemediateDryRun, 1, inWindow),
				Skips: []Skip{skipStale(ReasonOneAtATime)}},
		},
		{
			name:    "apply",
			arrange: func(c *fleet.Cluster) { driftedNodeOS(c); staleSpark(c) },
			now:     inWindow,
			want: Decision{Mode: fleet.RemediateApply, Next: setNodeOS(fleet.RemediateApply, 1, inWindow),
				Skips: []Skip{skipStale(ReasonOneAtATime)}},
		},
		{
			name:    "ceiling dry-run over policy apply",
			arrange: func(c *fleet.Cluster) { driftedNodeOS(c) },
			ceiling: fleet.RemediateDryRun,
			now:     inWindow,
			want:    Decision{Mode: fleet.RemediateDryRun, Next: setNodeOS(fleet.RemediateDryRun, 1, inWindow)},
		},
		{
			name:    "modes in any case",
			arrange: func(c *fleet.Cluster) { driftedNodeOS(c) },
			policy:  func(p *fleet.Policy) { p.Remediate = "Apply" },
			ceiling: "DRY-RUN",
			now:     inWindow,
			want:    Decision{Mode: fleet.RemediateDryRun, Next: setNodeOS(fleet.RemediateDryRun, 1, inWindow)},
		},

		// Channels.
		{
			name: "upgrade channel drift",
			arrange: func(c *fleet.Cluster) {
				c.UpgradeChannel = fleet.UpgradeRapid
				open(c, fleet.CodeUpgradeChannelDrift, "cluster", fleet.SeverityWarning, readAt, 2)
			},
			now: outside,
			want: Decision{Mode: fleet.RemediateApply, Next: &fleet.Remediation{
				ID:     ID(aks, fleet.CodeUpgradeChannelDrift, "cluster", 2, fleet.ActionSetUpgradeChannel, fleet.RemediateApply),
				Action: fleet.ActionSetUpgradeChannel, Code: fleet.CodeUpgradeChannelDrift, Target: "cluster", Opened: 2,
				From: fleet.UpgradeRapid, To: fleet.UpgradePatch, Mode: fleet.RemediateApply, Attempt: 1, PlannedAt: outside,
				Detail: "set upgradeChannel from rapid to patch (policy: defaults, rule prod)",
			}},
		},
		{
			name:    "channel writes need no window",
			arrange: func(c *fleet.Cluster) { driftedNodeOS(c); staleSpark(c) },
			now:     outside,
			want: Decision{Mode: fleet.RemediateApply, Next: setNodeOS(fleet.RemediateApply, 1, outside),
				Skips: []Skip{skipStale(ReasonOutsideWindow)}},
		},
		{
			name:    "no policy channel",
			arrange: func(c *fleet.Cluster) { driftedNodeOS(c); staleSpark(c) },
			policy:  func(p *fleet.Policy) { p.NodeOSChannel = "" },
			now:     inWindow,
			want: Decision{Mode: fleet.RemediateApply, Next: upgradeSpark(fleet.CodeImageStale, "pool/spark/latest", fleet.RemediateApply, inWindowDetail, inWindow),
				Skips: []Skip{skipDrift(ReasonNoPolicyChannel)}},
		},

		// Windows.
		{
			name:    "inside the node OS window",
			arrange: staleSpark,
			now:     inWindow,
			want:    Decision{Mode: fleet.RemediateApply, Next: upgradeSpark(fleet.CodeImageStale, "pool/spark/latest", fleet.RemediateApply, inWindowDetail, inWindow)},
		},
		{
			name:    "outside the node OS window",
			arrange: staleSpark,
			now:     outside,
			want:    Decision{Mode: fleet.RemediateApply, Skips: []Skip{skipStale(ReasonOutsideWindow)}},
		},
		{
			name:    "the auto-upgrade window does not count",
			windows: []fleet.MaintenanceWindow{tuesdayAuto},
			arrange: staleSpark,
			now:     time.Date(2026, 11, 24, 7, 0, 0, 0, time.UTC), // inside Tuesday 06:00–14:00 +01:00
			want:    Decision{Mode: fleet.RemediateApply, Skips: []Skip{skipStale(ReasonOutsideWindow)}},
		},
		{
			name:    "no maintenance configuration at all",
			windows: []fleet.MaintenanceWindow{},
			arrange: staleSpark,
			now:     inWindow,
			want:    Decision{Mode: fleet.RemediateApply, Skips: []Skip{skipStale(ReasonOutsideWindow)}},
		},
		{
			name:    "maintenance never read",
			arrange: func(c *fleet.Cluster) { c.MaintenanceKnown, c.Maintenance = false, nil; staleSpark(c) },
			now:     inWindow,
			want:    Decision{Mode: fleet.RemediateApply, Skips: []Skip{skipStale(ReasonOutsideWindow)}},
		},
		{
			name:    "outside the window, policy allows it",
			arrange: staleSpark,
			policy:  func(p *fleet.Policy) { p.RemediateOutsideWindow = true },
			now:     outside,
			want:    Decision{Mode: fleet.RemediateApply, Next: upgradeSpark(fleet.CodeImageStale, "pool/spark/latest", fleet.RemediateApply, outsideDetail, outside)},
		},
		{
			name:    "no window, policy allows it",
			windows: []fleet.MaintenanceWindow{},
			arrange: staleSpark,
			policy:  func(p *fleet.Policy) { p.RemediateOutsideWindow = true },
			now:     outside,
			want:    Decision{Mode: fleet.RemediateApply, Next: upgradeSpark(fleet.CodeImageStale, "pool/spark/latest", fleet.RemediateApply, outsideDetail, outside)},
		},
		{
			name: "missed window, in the next one",
			arrange: func(c *fleet.Cluster) {
				open(c, fleet.CodeMissedMaintenanceWindow, "pool/spark", fleet.SeverityWarning, readAt, 1)
			},
			now: inWindow,
			want: Decision{Mode: fleet.RemediateApply,
				Next: upgradeSpark(fleet.CodeMissedMaintenanceWindow, "pool/spark", fleet.RemediateApply, inWindowDetail, inWindow)},
		},

		// Pools.
		{
			name: "the pool is rolling",
			arrange: func(c *fleet.Cluster) {
				driftedNodeOS(c)
				staleSpark(c)
				c.Pools["spark"].RollingState = fleet.RollingActive
			},
			now:  inWindow,
			want: Decision{Mode: fleet.RemediateApply, Skips: []Skip{skipDrift(ReasonClusterBusy), skipStale(ReasonPoolRolling)}},
		},
		{
			name:    "another pool is rolling",
			arrange: func(c *fleet.Cluster) { staleSpark(c); c.Pools["system"].RollingState = fleet.RollingActive },
			now:     inWindow,
			want:    Decision{Mode: fleet.RemediateApply, Skips: []Skip{skipStale(ReasonClusterBusy)}},
		},
		{
			name: "a removed pool that was rolling does not hold the cluster",
			arrange: func(c *fleet.Cluster) {
				staleSpark(c)
				c.Pools["system"].RollingState, c.Pools["system"].Removed = fleet.RollingActive, true
			},
			now:  inWindow,
			want: Decision{Mode: fleet.RemediateApply, Next: upgradeSpark(fleet.CodeImageStale, "pool/spark/latest", fleet.RemediateApply, inWindowDetail, inWindow)},
		},
		{
			name:    "removed pool",
			arrange: func(c *fleet.Cluster) { staleSpark(c); c.Pools["spark"].Removed = true },
			now:     inWindow,
			want:    Decision{Mode: fleet.RemediateApply, Skips: []Skip{skipStale(ReasonUnknownPool)}},
		},
		{
			name:    "pool never seen",
			arrange: func(c *fleet.Cluster) { open(c, fleet.CodeImageStale, "pool/gpu", fleet.SeverityWarning, readAt, 1) },
			now:     inWindow,
			want:    Decision{Mode: fleet.RemediateApply, Skips: []Skip{{fleet.CodeImageStale, "pool/gpu", ReasonUnknownPool}}},
		},
		{
			name: "pool already on the latest image",
			arrange: func(c *fleet.Cluster) {
				open(c, fleet.CodeImageStale, "pool/system", fleet.SeverityWarning, readAt, 1) // old by age, nothing newer
			},
			now:  inWindow,
			want: Decision{Mode: fleet.RemediateApply, Skips: []Skip{{fleet.CodeImageStale, "pool/system", ReasonNoNewerImage}}},
		},
		{
			name:    "latest image unknown",
			arrange: func(c *fleet.Cluster) { staleSpark(c); c.Pools["spark"].LatestImage = "" },
			now:     inWindow,
			want:    Decision{Mode: fleet.RemediateApply, Skips: []Skip{skipStale(ReasonNoNewerImage)}},
		},
		{
			name: "the image the nodes run wins over a stale ARM view",
			arrange: func(c *fleet.Cluster) {
				staleSpark(c)
				p := c.Pools["spark"]
				p.Nodes = &fleet.PoolNodes{Nodes: 12, Ready: 12, Versions: map[string]int{latestUbuntu: 12}}
				p.NodesAt = fleet.Stamp{At: readAt.Add(time.Hour), SignalID: "nodes-1"}
			},
			now:  inWindow,
			want: Decision{Mode: fleet.RemediateApply, Skips: []Skip{skipStale(ReasonNoNewerImage)}},
		},

		// UpgradeFailed.
		{
			name: "failed upgrade cleared",
			arrange: func(c *fleet.Cluster) {
				open(c, fleet.CodeUpgradeFailed, "pool/spark", fleet.SeverityError, readAt, 1)
				c.Pools["spark"].RollingState = fleet.RollingFailed
			},
			now: inWindow,
			want: Decision{Mode: fleet.RemediateApply,
				Next: upgradeSpark(fleet.CodeUpgradeFailed, "pool/spark", fleet.RemediateApply, inWindowDetail, inWindow)},
		},
		{
			name: "failed upgrade left the pool Failed",
			arrange: func(c *fleet.Cluster) {
				open(c, fleet.CodeUpgradeFailed, "pool/spark", fleet.SeverityError, readAt, 1)
				c.Pools["spark"].RollingState = fleet.RollingFailed
				c.Pools["spark"].Spec.ProvisioningState = "Failed"
			},
			now:  inWindow,
			want: Decision{Mode: fleet.RemediateApply, Skips: []Skip{{fleet.CodeUpgradeFailed, "pool/spark", ReasonFailureNotCleared}}},
		},
		{
			name: "failed upgrade, pool rolling again",
			arrange: func(c *fleet.Cluster) {
				open(c, fleet.CodeUpgradeFailed, "pool/spark", fleet.SeverityError, readAt, 1)
				c.Pools["spark"].RollingState = fleet.RollingActive
			},
			now:  inWindow,
			want: Decision{Mode: fleet.RemediateApply, Skips: []Skip{{fleet.CodeUpgradeFailed, "pool/spark", ReasonFailureNotCleared}}},
		},
		{
			name: "failed upgrade cleared, outside the window",
			arrange: func(c *fleet.Cluster) {
				open(c, fleet.CodeUpgradeFailed, "pool/spark", fleet.SeverityError, readAt, 1)
			},
			now:  outside,
			want: Decision{Mode: fleet.RemediateApply, Skips: []Skip{{fleet.CodeUpgradeFailed, "pool/spark", ReasonOutsideWindow}}},
		},

		// The cluster.
		{
			name:    "cluster updating",
			arrange: func(c *fleet.Cluster) { driftedNodeOS(c); staleSpark(c); c.ProvisioningState = "Updating" },
			now:     inWindow,
			want:    Decision{Mode: fleet.RemediateApply, Skips: []Skip{skipDrift(ReasonClusterBusy), skipStale(ReasonClusterBusy)}},
		},
		{
			name:    "cluster provisioning state unknown",
			arrange: func(c *fleet.Cluster) { driftedNodeOS(c); c.ProvisioningState = "" },
			now:     inWindow,
			want:    Decision{Mode: fleet.RemediateApply, Next: setNodeOS(fleet.RemediateApply, 1, inWindow)},
		},
		{
			name:    "cluster deleted",
			arrange: func(c *fleet.Cluster) { driftedNodeOS(c); c.Deleted = true },
			now:     inWindow,
			want:    Decision{Mode: fleet.RemediateApply, Skips: []Skip{skipDrift(ReasonClusterBusy)}},
		},
		{
			name: "applied within the settle time",
			arrange: func(c *fleet.Cluster) {
				staleSpark(c)
				record(c, fleet.Remediation{ID: "0badc0ffee000001", Action: fleet.ActionSetUpgradeChannel, Status: fleet.RemediationApplied,
					UpdatedAt: inWindow.Add(-SettleTime + time.Minute)})
			},
			now:  inWindow,
			want: Decision{Mode: fleet.RemediateApply, Skips: []Skip{skipStale(ReasonClusterBusy)}},
		},
		{
			name: "applied before the settle time",
			arrange: func(c *fleet.Cluster) {
				staleSpark(c)
				record(c, fleet.Remediation{ID: "0badc0ffee000001", Action: fleet.ActionSetUpgradeChannel, Status: fleet.RemediationApplied,
					UpdatedAt: inWindow.Add(-SettleTime)})
			},
			now:  inWindow,
			want: Decision{Mode: fleet.RemediateApply, Next: upgradeSpark(fleet.CodeImageStale, "pool/spark/latest", fleet.RemediateApply, inWindowDetail, inWindow)},
		},

		// Earlier records of the same finding opening.
		{
			name: "lease live",
			arrange: func(c *fleet.Cluster) {
				driftedNodeOS(c)
				staleSpark(c)
				record(c, fleet.Remediation{ID: staleID, Status: fleet.RemediationApplying, LeaseOwner: "sweep-1", LeaseUntil: inWindow.Add(time.Minute)})
			},
			now:  inWindow,
			want: Decision{Mode: fleet.RemediateApply, Skips: []Skip{skipDrift(ReasonClusterBusy), skipStale(ReasonInProgress)}},
		},
		{
			name: "lease expired: retake",
			arrange: func(c *fleet.Cluster) {
				staleSpark(c)
				r := *upgradeSpark(fleet.CodeImageStale, "pool/spark/latest", fleet.RemediateApply, "", inWindow.Add(-time.Hour))
				r.Status, r.LeaseOwner, r.LeaseUntil, r.Attempt = fleet.RemediationApplying, "sweep-1", inWindow, 2
				r.To = "AKSUbuntu-2204gen2containerd-202611.03.0" // what was latest then
				record(c, r)
			},
			now: inWindow,
			want: Decision{Mode: fleet.RemediateApply, Next: func() *fleet.Remediation {
				r := upgradeSpark(fleet.CodeImageStale, "pool/spark/latest", fleet.RemediateApply, inWindowDetail, inWindow.Add(-time.Hour))
				r.Attempt, r.LeaseOwner, r.LeaseUntil = 3, "sweep-1", inWindow
				return r
			}()},
		},
		{
			name: "retrying, due",
			arrange: func(c *fleet.Cluster) {
				driftedNodeOS(c)
				r := *setNodeOS(fleet.RemediateApply, 1, outside.Add(-2*time.Hour))
				r.Status, r.RetryAt, r.Error, r.Attempt = fleet.RemediationRetrying, outside, "409 OperationNotAllowed", 1
				record(c, r)
			},
			now: outside,
			want: Decision{Mode: fleet.RemediateApply, Next: func() *fleet.Remediation {
				r := setNodeOS(fleet.RemediateApply, 1, outside.Add(-2*time.Hour))
				r.RetryAt, r.Error, r.Attempt = outside, "409 OperationNotAllowed", 2
				return r
			}()},
		},
		{
			name: "retrying later; another finding goes first",
			arrange: func(c *fleet.Cluster) {
				driftedNodeOS(c)
				staleSpark(c)
				record(c, fleet.Remediation{ID: driftID, Status: fleet.RemediationRetrying, RetryAt: inWindow.Add(10 * time.Minute), Attempt: 1})
			},
			now: inWindow,
			want: Decision{Mode: fleet.RemediateApply, Next: upgradeSpark(fleet.CodeImageStale, "pool/spark/latest", fleet.RemediateApply, inWindowDetail, inWindow),
				Skips: []Skip{skipDrift(ReasonInProgress)}},
		},
		{
			name: "done: applied",
			arrange: func(c *fleet.Cluster) {
				driftedNodeOS(c)
				record(c, fleet.Remediation{ID: driftID, Status: fleet.RemediationApplied, UpdatedAt: inWindow.Add(-48 * time.Hour)})
			},
			now:  inWindow,
			want: Decision{Mode: fleet.RemediateApply, Skips: []Skip{skipDrift(ReasonDone)}},
		},
		{
			name: "done: failed, skipped",
			arrange: func(c *fleet.Cluster) {
				driftedNodeOS(c)
				staleSpark(c)
				record(c, fleet.Remediation{ID: driftID, Status: fleet.RemediationFailed, Error: "403 AuthorizationFailed"})
				record(c, fleet.Remediation{ID: staleID, Status: fleet.RemediationSkipped})
			},
			now:  inWindow,
			want: Decision{Mode: fleet.RemediateApply, Skips: []Skip{skipDrift(ReasonDone), skipStale(ReasonDone)}},
		},
		{
			name: "done: announced in dry-run",
			arrange: func(c *fleet.Cluster) {
				driftedNodeOS(c)
				record(c, fleet.Remediation{ID: ID(aks, fleet.CodeChannelDrift, "cluster", 1, fleet.ActionSetNodeOSChannel, fleet.RemediateDryRun),
					Status: fleet.RemediationDryRun})
			},
			policy: func(p *fleet.Policy) { p.Remediate = fleet.RemediateDryRun },
			now:    inWindow,
			want:   Decision{Mode: fleet.RemediateDryRun, Skips: []Skip{skipDrift(ReasonDone)}},
		},
		{
			name: "a dry run does not stand for apply",
			arrange: func(c *fleet.Cluster) {
				driftedNodeOS(c)
				record(c, fleet.Remediation{ID: ID(aks, fleet.CodeChannelDrift, "cluster", 1, fleet.ActionSetNodeOSChannel, fleet.RemediateDryRun),
					Status: fleet.RemediationDryRun})
			},
			now:  inWindow,
			want: Decision{Mode: fleet.RemediateApply, Next: setNodeOS(fleet.RemediateApply, 1, inWindow)},
		},
		{
			name: "a reopened finding is a new remediation",
			arrange: func(c *fleet.Cluster) {
				c.NodeOSUpgradeChannel = fleet.ChannelUnmanaged
				open(c, fleet.CodeChannelDrift, "cluster", fleet.SeverityWarning, readAt, 2)
				record(c, fleet.Remediation{ID: driftID, Status: fleet.RemediationApplied, UpdatedAt: readAt.Add(-30 * 24 * time.Hour)})
			},
			now:  inWindow,
			want: Decision{Mode: fleet.RemediateApply, Next: setNodeOS(fleet.RemediateApply, 2, inWindow)},
		},

		{
			name: "another finding's upgrade of the pool, planned while this one was open, covers it",
			arrange: func(c *fleet.Cluster) {
				staleSpark(c)
				open(c, fleet.CodeMissedMaintenanceWindow, "pool/spark", fleet.SeverityWarning, readAt, 1)
				r := *upgradeSpark(fleet.CodeImageStale, "pool/spark/latest", fleet.RemediateApply, "", readAt.Add(time.Hour))
				r.Status, r.UpdatedAt = fleet.RemediationApplied, readAt.Add(time.Hour)
				record(c, r)
			},
			now: inWindow,
			want: Decision{Mode: fleet.RemediateApply, Skips: []Skip{
				skipStale(ReasonDone),
				{fleet.CodeMissedMaintenanceWindow, "pool/spark", ReasonDone},
			}},
		},
		{
			name: "an upgrade of the pool planned before this finding opened does not cover it",
			arrange: func(c *fleet.Cluster) {
				open(c, fleet.CodeMissedMaintenanceWindow, "pool/spark", fleet.SeverityWarning, readAt, 1)
				r := *upgradeSpark(fleet.CodeImageStale, "pool/spark/latest", fleet.RemediateApply, "", readAt.Add(-30*24*time.Hour))
				r.Status, r.UpdatedAt = fleet.RemediationApplied, readAt.Add(-30*24*time.Hour)
				record(c, r)
			},
			now: inWindow,
			want: Decision{Mode: fleet.RemediateApply,
				Next: upgradeSpark(fleet.CodeMissedMaintenanceWindow, "pool/spark", fleet.RemediateApply, inWindowDetail, inWindow)},
		},

		// Order.
		{
			name: "channels first, then severity, then the oldest, then the key",
			arrange: func(c *fleet.Cluster) {
				c.NodeOSUpgradeChannel, c.UpgradeChannel = fleet.ChannelUnmanaged, fleet.UpgradeRapid
				open(c, fleet.CodeChannelDrift, "cluster", fleet.SeverityWarning, readAt, 1)
				open(c, fleet.CodeUpgradeChannelDrift, "cluster", fleet.SeverityWarning, readAt.Add(-time.Hour), 1)
				open(c, fleet.CodeImageStale, "pool/spark", fleet.SeverityWarning, readAt.Add(-96*time.Hour), 1)
				open(c, fleet.CodeImageStale, "pool/spark/latest", fleet.SeverityWarning, readAt.Add(-96*time.Hour), 1)
				open(c, fleet.CodeMissedMaintenanceWindow, "pool/spark", fleet.SeverityWarning, readAt.Add(-120*time.Hour), 1)
				open(c, fleet.CodeUpgradeFailed, "pool/spark", fleet.SeverityError, readAt, 1)
			},
			now: inWindow,
			want: Decision{Mode: fleet.RemediateApply,
				Next: &fleet.Remediation{
					ID:     ID(aks, fleet.CodeUpgradeChannelDrift, "cluster", 1, fleet.ActionSetUpgradeChannel, fleet.RemediateApply),
					Action: fleet.ActionSetUpgradeChannel, Code: fleet.CodeUpgradeChannelDrift, Target: "cluster", Opened: 1,
					From: fleet.UpgradeRapid, To: fleet.UpgradePatch, Mode: fleet.RemediateApply, Attempt: 1, PlannedAt: inWindow,
					Detail: "set upgradeChannel from rapid to patch (policy: defaults, rule prod)",
				},
				Skips: []Skip{
					skipDrift(ReasonOneAtATime),
					{fleet.CodeUpgradeFailed, "pool/spark", ReasonOneAtATime},
					{fleet.CodeMissedMaintenanceWindow, "pool/spark", ReasonOneAtATime},
					{fleet.CodeImageStale, "pool/spark", ReasonOneAtATime},
					{fleet.CodeImageStale, "pool/spark/latest", ReasonOneAtATime},
				}},
		},
		{
			name: "a channel change that reimages the nodes waits for the window",
			arrange: func(c *fleet.Cluster) {
				c.NodeOSUpgradeChannel = fleet.ChannelNodeImage
				open(c, fleet.CodeChannelDrift, "cluster", fleet.SeverityWarning, readAt, 1)
			},
			policy: func(p *fleet.Policy) { p.NodeOSChannel = fleet.ChannelUnmanaged },
			now:    outside,
			want:   Decision{Mode: fleet.RemediateApply, Skips: []Skip{skipDrift(ReasonOutsideWindow)}},
		},
		{
			name: "a channel change that reimages the nodes goes ahead in the window",
			arrange: func(c *fleet.Cluster) {
				c.NodeOSUpgradeChannel = fleet.ChannelNodeImage
				open(c, fleet.CodeChannelDrift, "cluster", fleet.SeverityWarning, readAt, 1)
			},
			policy: func(p *fleet.Policy) { p.NodeOSChannel = fleet.ChannelUnmanaged },
			now:    inWindow,
			want: Decision{Mode: fleet.RemediateApply, Next: &fleet.Remediation{
				ID:     driftID,
				Action: fleet.ActionSetNodeOSChannel, Code: fleet.CodeChannelDrift, Target: "cluster", Opened: 1,
				From: fleet.ChannelNodeImage, To: fleet.ChannelUnmanaged, Mode: fleet.RemediateApply, Attempt: 1, PlannedAt: inWindow,
				Detail: "set nodeOSUpgradeChannel from NodeImage to Unmanaged (policy: defaults, rule prod)" + inWindowDetail,
			}},
		},
		{
			name: "findings that are not remediable are not listed",
			arrange: func(c *fleet.Cluster) {
				staleSpark(c)
				open(c, fleet.CodeUpgradeStalled, "pool/spark", fleet.SeverityError, readAt, 1)
				open(c, fleet.CodeUpgradeFailed, "scheduled/5c0f7d4e-1a2b-4c3d-9e8f-0a1b2c3d4e5f", fleet.SeverityError, readAt, 1)
				open(c, fleet.CodeNoSecurityUpdates, "cluster", fleet.SeverityError, readAt, 1)
				open(c, fleet.CodeChannelDrift, "pool/spark", fleet.SeverityWarning, readAt, 1)
				c.Findings[fleet.FindingKey(fleet.CodeUpgradeStalled, "pool/spark")].Status = fleet.FindingResolved
				c.NodeOSUpgradeChannel = fleet.ChannelUnmanaged
				open(c, fleet.CodeChannelDrift, "cluster", fleet.SeverityWarning, readAt, 1)
				c.Findings[fleet.FindingKey(fleet.CodeChannelDrift, "cluster")].Status = fleet.FindingResolved
			},
			now:  inWindow,
			want: Decision{Mode: fleet.RemediateApply, Next: upgradeSpark(fleet.CodeImageStale, "pool/spark/latest", fleet.RemediateApply, inWindowDetail, inWindow)},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := cluster(t, tc.windows...)
			tc.arrange(c)
			p := prod
			if tc.policy != nil {
				tc.policy(&p)
			}
			ceiling := tc.ceiling
			if ceiling == "" {
				ceiling = fleet.RemediateApply
			}
			before := c.Clone()
			got := Decide(c, p, ceiling, tc.now)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Decide: got … want … (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(before, c); diff != "" {
				t.Errorf("Decide modified the cluster (-before +after):\n%s", diff)
			}
		})
	}
}

// TestDecideFromEvaluatedFindings runs the real rules on a cluster whose pool
// fell behind, and checks that the finding they open is the one Decide acts on.
func TestDecideFromEvaluatedFindings(t *testing.T) {
	c := cluster(t)
	p := prod
	res := findings.Evaluate(c, p, nil, outside)
	fleet.Reconcile(c, res.Observations, outside)
	var open []string
	for _, f := range c.OpenFindings() {
		open = append(open, f.Key())
	}
	// Too old for NodeImage's weekly cadence, behind the latest image, and on
	// another version than the system pool (not remediable).
	want := []string{"ImageStale~pool/spark", "ImageStale~pool/spark/latest", "VersionSkew~family/AKSUbuntu-2204gen2containerd"}
	if !cmp.Equal(want, open) {
		t.Fatalf("open findings: got %v, want %v", open, want)
	}

	got := Decide(c, p, fleet.RemediateApply, outside)
	wantD := Decision{Mode: fleet.RemediateApply, Skips: []Skip{
		{fleet.CodeImageStale, "pool/spark", ReasonOutsideWindow},
		{fleet.CodeImageStale, "pool/spark/latest", ReasonOutsideWindow},
	}}
	if diff := cmp.Diff(wantD, got); diff != "" {
		t.Errorf("outside the window (-want +got):\n%s", diff)
	}

	got = Decide(c, p, fleet.RemediateApply, inWindow)
	next := upgradeSpark(fleet.CodeImageStale, "pool/spark", fleet.RemediateApply, inWindowDetail, inWindow)
	wantD = Decision{Mode: fleet.RemediateApply, Next: next, Skips: []Skip{{fleet.CodeImageStale, "pool/spark/latest", ReasonOneAtATime}}}
	if diff := cmp.Diff(wantD, got); diff != "" {
		t.Errorf("in the window (-want +got):\n%s", diff)
	}

	// Claimed: the other finding about the pool waits for it.
	claimed := *got.Next
	claimed.Status, claimed.LeaseOwner, claimed.LeaseUntil = fleet.RemediationApplying, "sweep-1", inWindow.Add(5*time.Minute)
	record(c, claimed)
	got = Decide(c, p, fleet.RemediateApply, inWindow.Add(time.Minute))
	wantD = Decision{Mode: fleet.RemediateApply, Skips: []Skip{
		{fleet.CodeImageStale, "pool/spark", ReasonInProgress},
		{fleet.CodeImageStale, "pool/spark/latest", ReasonInProgress},
	}}
	if diff := cmp.Diff(wantD, got); diff != "" {
		t.Errorf("while it is applied (-want +got):\n%s", diff)
	}

	// Applied, it is planned again neither for this opening nor for the
	// other finding about the same pool.
	applied := claimed
	applied.Status, applied.UpdatedAt = fleet.RemediationApplied, inWindow.Add(2*time.Minute)
	record(c, applied)
	got = Decide(c, p, fleet.RemediateApply, inWindow.Add(time.Hour))
	wantD = Decision{Mode: fleet.RemediateApply, Skips: []Skip{
		{fleet.CodeImageStale, "pool/spark", ReasonDone},
		{fleet.CodeImageStale, "pool/spark/latest", ReasonDone},
	}}
	if diff := cmp.Diff(wantD, got); diff != "" {
		t.Errorf("after it was applied (-want +got):\n%s", diff)
	}

	// The upgrade failed, and the failure cleared: that is a new finding,
	// opened after the upgrade, and it is retried.
	res = findings.Evaluate(c, p, nil, inWindow.Add(time.Hour))
	obs := append(res.Observations, fleet.Observation{Code: fleet.CodeUpgradeFailed, Target: "pool/spark", Severity: fleet.SeverityError,
		Summary: "the last upgrade of pool spark failed"})
	fleet.Reconcile(c, obs, inWindow.Add(time.Hour))
	c.Pools["spark"].RollingState = fleet.RollingFailed
	got = Decide(c, p, fleet.RemediateApply, inWindow.Add(time.Hour))
	retry := upgradeSpark(fleet.CodeUpgradeFailed, "pool/spark", fleet.RemediateApply, inWindowDetail, inWindow.Add(time.Hour))
	wantD = Decision{Mode: fleet.RemediateApply, Next: retry, Skips: []Skip{
		{fleet.CodeImageStale, "pool/spark", ReasonDone},
		{fleet.CodeImageStale, "pool/spark/latest", ReasonDone},
	}}
	if diff := cmp.Diff(wantD, got); diff != "" {
		t.Errorf("after the upgrade failed (-want +got):\n%s", diff)
	}
}

func TestID(t *testing.T) {
	base := ID(aks, fleet.CodeImageStale, "pool/spark/latest", 1, fleet.ActionUpgradeNodeImage, fleet.RemediateApply)
	if b, err := hex.DecodeString(base); err != nil || len(b) != 8 {
		t.Fatalf("got ID %q, want 16 hex digits", base)
	}
	upper := fleet.ClusterID{SubscriptionID: "6F1C2A3B-4D5E-4F60-8A71-92B3C4D5E6F7", ResourceGroup: "RG-Analytics-Prod", Name: "AKS-Analytics-WEU"}
	cases := []struct {
		name  string
		id    string
		equal bool
	}{
		{"same inputs", ID(aks, fleet.CodeImageStale, "pool/spark/latest", 1, fleet.ActionUpgradeNodeImage, fleet.RemediateApply), true},
		{"cluster ID in another case", ID(upper, fleet.CodeImageStale, "pool/spark/latest", 1, fleet.ActionUpgradeNodeImage, fleet.RemediateApply), true},
		{"another cluster", ID(fleet.ClusterID{SubscriptionID: aks.SubscriptionID, ResourceGroup: aks.ResourceGroup, Name: "aks-analytics-neu"},
			fleet.CodeImageStale, "pool/spark/latest", 1, fleet.ActionUpgradeNodeImage, fleet.RemediateApply), false},
		{"another code", ID(aks, fleet.CodeMissedMaintenanceWindow, "pool/spark/latest", 1, fleet.ActionUpgradeNodeImage, fleet.RemediateApply), false},
		{"another target", ID(aks, fleet.CodeImageStale, "pool/spark", 1, fleet.ActionUpgradeNodeImage, fleet.RemediateApply), false},
		{"reopened", ID(aks, fleet.CodeImageStale, "pool/spark/latest", 2, fleet.ActionUpgradeNodeImage, fleet.RemediateApply), false},
		{"another action", ID(aks, fleet.CodeImageStale, "pool/spark/latest", 1, fleet.ActionSetNodeOSChannel, fleet.RemediateApply), false},
		{"another mode", ID(aks, fleet.CodeImageStale, "pool/spark/latest", 1, fleet.ActionUpgradeNodeImage, fleet.RemediateDryRun), false},
		{"fields do not run into each other", ID(aks, fleet.CodeImageStale, "pool/spark/latest1", 1, fleet.ActionUpgradeNodeImage, fleet.RemediateApply), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if (tc.id == base) != tc.equal {
				t.Errorf("got ID %s against %s: equal %t, want %t", tc.id, base, tc.id == base, tc.equal)
			}
		})
	}

	t.Run("Decide is deterministic", func(t *testing.T) {
		c := cluster(t)
		staleSpark(c)
		first := Decide(c, prod, fleet.RemediateApply, inWindow)
		again := Decide(c.Clone(), prod, fleet.RemediateApply, inWindow.Add(time.Hour))
		if first.Next == nil || again.Next == nil || first.Next.ID != again.Next.ID || first.Next.ID != base {
			t.Errorf("got IDs %v and %v, want both %s", first.Next, again.Next, base)
		}
	})
}
