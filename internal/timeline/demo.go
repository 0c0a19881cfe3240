package timeline

import (
	"time"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
)

// Demo subscriptions, tenant and operator.
const (
	demoSubPayments  = "3f2b8c1e-7d4a-4e29-9b6f-0a1c5d8e2f47"
	demoSubAnalytics = "b71d04a9-52e3-4c8f-a6d2-9e13f07c4b58"
	demoTenant       = "8e4c2a71-3b5d-4f6a-9c0e-1d2f3a4b5c6d"
	demoPrincipal    = "5a9e0c3d-2b7f-4e18-8d6a-7c1b0f9e4a23"
	demoOperator     = "alice@contoso.com"
	demoRequester    = "dana@contoso.com"
)

// Demo returns a hand-designed three-week scenario over nine clusters in two
// subscriptions, starting 2026-11-02, in time order. The first four:
//
//   - aks-payments-weu (NodeImage, CloudEvents): weekly Tuesday rolls of
//     system and payments (Azure Linux); the payments image advances after the
//     first roll (agentPools CreatedOrUpdated); a Communication Manager
//     Scheduled → Started → Completed lifecycle in week 2; in week 3 payments
//     starts rolling and never ends.
//   - aks-checkout-neu (SecurityPatch with a Windows pool, Event Grid schema,
//     lower-cased topic provider): weekly Wednesday rolls of system; in week 2
//     the roll fails (scheduled event Failed with JSON-string details) and an
//     operator retry succeeds a day later.
//   - aks-analytics-eus (None, Event Grid schema): support ending for 1.31, a
//     manual node-image upgrade of spark (dana's request in the activity log),
//     and the batch pool deleted (its delete in the activity log). The policy
//     document's analytics-sandbox rule allows it dry-run remediation (its tag
//     upgradewatch.remediate asks for no more), so a Sweep plans, and only
//     announces, putting its node OS channel back to the policy's.
//   - aks-platform-wus2 (Unmanaged, CloudEvents): alice's cluster PUT in the
//     activity log moves the node OS channel to NodeImage (the CreatedOrUpdated
//     it caused says so) and no pool rolls after; new Kubernetes versions
//     available.
//
// Five more clusters, watched from week 2, give the patch status of issue
// #14 a pool in each verdict (docs/patch-status.md). Four are in UK South,
// where aks-search-uks's first payload shows AKSUbuntu-2204gen2containerd-202611.03.0,
// the newest Ubuntu image of the region, from 2026-11-09:
//
//   - aks-search-uks (NodeImage): system already runs it (UpToDate); api
//     stays on 202610.20.0 and no window explains it (Behind once the 7-day
//     grace has passed); ingest's roll ends NodePoolRollingFailed and nothing
//     says why (Failed).
//   - aks-ml-uks (NodeImage) validates images before they roll: its tag
//     upgradewatch.imageGraceDays=90 gives them 90 days (AwaitingWindow).
//   - aks-reports-uks (NodeImage) still runs 1.30, whose support ended
//     (ClusterSupportEnded): node OS auto-upgrade stops (Blocked).
//   - aks-build-uks (Unmanaged): the OS patches itself in place (Unmanaged).
//   - aks-orders-neu has an AKS system topic but has not been written since
//     the watch began, so no resource notification names its channel: only
//     its weekly roll arrives (Unknown).
//
// Resource Notifications arrive per subscription: payments in Event Grid
// schema, analytics in CloudEvents.
func Demo() []Event {
	s := &stream{ids: ids{prefix: "demo"}}
	oct13 := time.Date(2026, 10, 13, 0, 0, 0, 0, time.UTC)

	payments := &cluster{
		id:       mustClusterID(demoSubPayments, "rg-payments-prod", "aks-payments-weu"),
		location: "westeurope", k8s: "1.33.5", upgradeChannel: "patch", nodeOSChannel: "NodeImage",
		tags:      map[string]string{"env": "prod", "team": "payments", "costCenter": "cc-4711"},
		aksSchema: SchemaCloudEvents, arnSchema: SchemaEventGrid,
		pools: []pool{
			{name: "system", mode: "System", osType: "Linux", osSKU: "Ubuntu", vmSize: "Standard_D4ds_v5", count: 3, image: nodeImage("Ubuntu", oct13)},
			{name: "payments", mode: "User", osType: "Linux", osSKU: "AzureLinux", vmSize: "Standard_D8ds_v5", count: 6, image: nodeImage("AzureLinux", oct13)},
		},
	}
	checkout := &cluster{
		id:       mustClusterID(demoSubPayments, "rg-checkout-prod", "aks-checkout-neu"),
		location: "northeurope", k8s: "1.33.5", upgradeChannel: "stable", nodeOSChannel: "SecurityPatch",
		tags:      map[string]string{"env": "prod", "team": "checkout"},
		aksSchema: SchemaEventGrid, arnSchema: SchemaEventGrid, lowerTopic: true,
		pools: []pool{
			{name: "system", mode: "System", osType: "Linux", osSKU: "Ubuntu", vmSize: "Standard_D4ds_v5", count: 3, image: nodeImage("Ubuntu", oct13)},
			{name: "win22", mode: "User", osType: "Windows", osSKU: "Windows2022", vmSize: "Standard_D4s_v5", count: 2, image: "AKSWindows-2022-containerd-20348.4294.251014"},
		},
	}
	analytics := &cluster{
		id:       mustClusterID(demoSubAnalytics, "rg-analytics-dev", "aks-analytics-eus"),
		location: "eastus", k8s: "1.31.13", upgradeChannel: "none", nodeOSChannel: "None",
		tags:      map[string]string{"env": "dev", "team": "analytics", "upgradewatch.remediate": "dry-run"},
		aksSchema: SchemaEventGrid, arnSchema: SchemaCloudEvents,
		pools: []pool{
			{name: "system", mode: "System", osType: "Linux", osSKU: "Ubuntu", vmSize: "Standard_D4ds_v5", count: 3, image: "AKSUbuntu-2204gen2containerd-202608.25.0"},
			{name: "spark", mode: "User", osType: "Linux", osSKU: "Ubuntu", vmSize: "Standard_E8ds_v5", count: 4, image: "AKSUbuntu-2204gen2containerd-202608.25.0"},
			{name: "batch", mode: "User", osType: "Linux", osSKU: "Ubuntu", vmSize: "Standard_D16ds_v5", count: 2, image: "AKSUbuntu-2204gen2containerd-202608.25.0"},
		},
	}
	platform := &cluster{
		id:       mustClusterID(demoSubAnalytics, "rg-platform-shared", "aks-platform-wus2"),
		location: "westus2", k8s: "1.34.1", upgradeChannel: "rapid", nodeOSChannel: "Unmanaged",
		tags:      map[string]string{"env": "shared", "team": "platform"},
		aksSchema: SchemaCloudEvents, arnSchema: SchemaCloudEvents,
		pools: []pool{
			{name: "system", mode: "System", osType: "Linux", osSKU: "Ubuntu", vmSize: "Standard_D4ds_v5", count: 3, image: "AKSUbuntu-2204gen2containerd-202609.22.0"},
			{name: "tools", mode: "User", osType: "Linux", osSKU: "AzureLinux", vmSize: "Standard_D4ds_v5", count: 2, image: "AKSAzureLinux-V3gen2-202609.22.0"},
		},
	}

	// Day 0: the first payload of every cluster.
	s.clusterSnapshot(payments, at("2026-11-02T06:10:41.3301127Z"))
	s.clusterSnapshot(checkout, at("2026-11-02T06:11:05.0917342Z"))
	s.clusterSnapshot(analytics, at("2026-11-02T06:12:19.8843216Z"))
	s.clusterSnapshot(platform, at("2026-11-02T06:12:58.2210454Z"))

	// Week 1.
	s.rolling(payments, TypeNodePoolRollingStarted, "system", at("2026-11-03T01:02:13.4821930Z"))
	s.rolling(payments, TypeNodePoolRollingSucceeded, "system", at("2026-11-03T01:38:47.1093355Z"))
	s.rolling(payments, TypeNodePoolRollingStarted, "payments", at("2026-11-03T01:40:02.7765018Z"))
	s.rolling(payments, TypeNodePoolRollingSucceeded, "payments", at("2026-11-03T02:31:55.6042871Z"))
	pp := payments.pool("payments")
	pp.image = nodeImage("AzureLinux", time.Date(2026, 10, 20, 0, 0, 0, 0, time.UTC))
	s.poolSnapshot(payments, *pp, at("2026-11-03T02:32:30.9015526Z"))

	s.rolling(checkout, TypeNodePoolRollingStarted, "system", at("2026-11-04T02:03:21.2209813Z"))
	s.rolling(checkout, TypeNodePoolRollingSucceeded, "system", at("2026-11-04T02:29:48.5531907Z"))

	s.supportEnding(analytics, "1.31.13", at("2026-11-05T09:00:12.0000000Z"))

	platform.tags["owner"] = "platform-oncall"
	platform.nodeOSChannel = "NodeImage"
	s.writeSuccess(platform, demoTenant, demoOperator, at("2026-11-06T14:22:07.4418632Z"))
	s.clusterSnapshot(platform, at("2026-11-06T14:22:31.0076214Z"))
	// A pipeline's service principal writes the cluster again (nothing changes).
	s.writeSuccess(platform, demoTenant, demoPrincipal, at("2026-11-09T08:15:44.9031876Z"))

	// Week 2. payments: Communication Manager notice 24 h ahead, then the window.
	weekly := "e3a1f6b2-8c47-4d09-a5e1-6b2c9d4f7a10"
	window2 := at("2026-11-10T01:00:00Z")
	s.scheduledEvent(payments, scheduled{eventID: weekly, status: fleet.ScheduledStatusScheduled,
		details: "NodeOSUpgrade scheduled in maintenance window aksManagedNodeOSUpgradeSchedule", planned: window2},
		at("2026-11-09T01:00:03.1187249Z"))
	started := at("2026-11-10T01:00:04.5529013Z")
	s.scheduledEvent(payments, scheduled{eventID: weekly, status: fleet.ScheduledStatusStarted,
		details: "Start to upgrade node image vhd", planned: window2, startedAt: started}, started)
	s.rolling(payments, TypeNodePoolRollingStarted, "system", at("2026-11-10T01:01:30.8810291Z"))
	s.rolling(payments, TypeNodePoolRollingSucceeded, "system", at("2026-11-10T01:36:12.2035516Z"))
	s.rolling(payments, TypeNodePoolRollingStarted, "payments", at("2026-11-10T01:37:40.0938127Z"))
	s.rolling(payments, TypeNodePoolRollingSucceeded, "payments", at("2026-11-10T02:29:03.7316640Z"))
	s.scheduledEvent(payments, scheduled{eventID: weekly, status: fleet.ScheduledStatusCompleted,
		details: "Node image upgrade completed", planned: window2, startedAt: started},
		at("2026-11-10T02:31:20.6651874Z"))

	// checkout: the SecurityPatch roll fails on a PDB, the operator retries the next day.
	patch := "7c0d5e94-3a21-4f8b-9e6d-2f1a8b3c5d72"
	window3 := at("2026-11-11T02:00:00Z")
	pstart := at("2026-11-11T02:00:03.2904418Z")
	s.scheduledEvent(checkout, scheduled{eventID: patch, status: fleet.ScheduledStatusStarted,
		details: "Start to upgrade security vhd", planned: window3, startedAt: pstart}, pstart)
	s.rolling(checkout, TypeNodePoolRollingStarted, "system", at("2026-11-11T02:02:10.6127735Z"))
	s.rolling(checkout, TypeNodePoolRollingFailed, "system", at("2026-11-11T02:41:27.9381102Z"))
	s.scheduledEvent(checkout, scheduled{eventID: patch, status: fleet.ScheduledStatusFailed,
		details: `{"type":2,"upgradeType":"NodeOSUpgrade","message":"Drain of node aks-system-31415926-vmss000002 did not complete within 30 minutes: Cannot evict pod as it would violate the pod's disruption budget"}`,
		planned: window3, startedAt: pstart}, at("2026-11-11T02:42:05.1476630Z"))
	s.rolling(checkout, TypeNodePoolRollingStarted, "system", at("2026-11-12T09:31:44.0215569Z"))
	s.rolling(checkout, TypeNodePoolRollingSucceeded, "system", at("2026-11-12T10:02:18.7753210Z"))

	// analytics: manual node-image upgrade of spark, then batch is deleted.
	s.activity(analytics, "agentPools/spark", "agentPools/upgradeNodeImageVersion/action", "Success", demoRequester, demoTenant,
		at("2026-11-12T15:20:02.8817253Z"))
	s.rolling(analytics, TypeNodePoolRollingStarted, "spark", at("2026-11-12T15:20:09.3317426Z"))
	s.rolling(analytics, TypeNodePoolRollingSucceeded, "spark", at("2026-11-12T15:58:51.0664983Z"))
	analytics.pool("batch").removed = true
	s.activity(analytics, "agentPools/batch", "agentPools/delete", "Success", demoRequester, demoTenant,
		at("2026-11-13T11:05:12.0446712Z"))
	s.poolDeleted(analytics, "batch", at("2026-11-13T11:05:37.5120846Z"))

	s.versionsAvailable(platform, versionsData{
		LatestSupportedKubernetesVersion: "1.34.2", LatestStableKubernetesVersion: "1.33.6",
		LowestMinorKubernetesVersion: "1.32.10", LatestPreviewKubernetesVersion: "1.35.0",
	}, at("2026-11-16T18:00:41.0000000Z"))

	// Week 3: payments starts rolling and never finishes.
	s.rolling(payments, TypeNodePoolRollingStarted, "system", at("2026-11-17T01:02:05.9930218Z"))
	s.rolling(payments, TypeNodePoolRollingSucceeded, "system", at("2026-11-17T01:35:29.4471036Z"))
	s.rolling(payments, TypeNodePoolRollingStarted, "payments", at("2026-11-17T01:36:50.2284607Z"))

	s.rolling(checkout, TypeNodePoolRollingStarted, "system", at("2026-11-18T02:02:37.6603391Z"))
	s.rolling(checkout, TypeNodePoolRollingSucceeded, "system", at("2026-11-18T02:27:14.1180625Z"))

	s.supportEnding(analytics, "1.31.13", at("2026-11-19T09:00:08.0000000Z"))
	s.versionsAvailable(payments, versionsData{
		LatestSupportedKubernetesVersion: "1.34.2", LatestStableKubernetesVersion: "1.33.6",
		LowestMinorKubernetesVersion: "1.32.10", LatestPreviewKubernetesVersion: "1.35.0",
	}, at("2026-11-20T07:45:16.0000000Z"))

	demoPatchStatuses(s)
	return s.sorted()
}

// demoPatchStatuses adds the clusters that bring the demo's pools to every
// patch status: they share no region with the first four, so those keep the
// verdicts they had.
func demoPatchStatuses(s *stream) {
	nov3 := time.Date(2026, 11, 3, 0, 0, 0, 0, time.UTC)
	oct20 := time.Date(2026, 10, 20, 0, 0, 0, 0, time.UTC)
	ubuntu := func(name, mode string, count int, image time.Time) pool {
		return pool{name: name, mode: mode, osType: "Linux", osSKU: "Ubuntu", vmSize: "Standard_D4ds_v5", count: count, image: nodeImage("Ubuntu", image)}
	}
	uks := func(sub, rg, name, k8s, channel string, tags map[string]string, pools ...pool) *cluster {
		schema := SchemaEventGrid
		if sub == demoSubAnalytics {
			schema = SchemaCloudEvents
		}
		return &cluster{id: mustClusterID(sub, rg, name), location: "uksouth", k8s: k8s, upgradeChannel: "patch",
			nodeOSChannel: channel, tags: tags, aksSchema: schema, arnSchema: schema, pools: pools}
	}
	search := uks(demoSubPayments, "rg-search-prod", "aks-search-uks", "1.33.5", "NodeImage",
		map[string]string{"env": "prod", "team": "search"},
		ubuntu("system", "System", 3, nov3), ubuntu("api", "User", 4, oct20),
		pool{name: "ingest", mode: "User", osType: "Linux", osSKU: "AzureLinux", vmSize: "Standard_D8ds_v5", count: 2, image: nodeImage("AzureLinux", oct20)})
	ml := uks(demoSubAnalytics, "rg-ml-prod", "aks-ml-uks", "1.33.5", "NodeImage",
		map[string]string{"env": "prod", "team": "ml", "upgradewatch.imageGraceDays": "90"},
		ubuntu("system", "System", 3, oct20))
	reports := uks(demoSubAnalytics, "rg-reports-prod", "aks-reports-uks", "1.30.14", "NodeImage",
		map[string]string{"env": "prod", "team": "reports"},
		ubuntu("system", "System", 3, oct20))
	build := uks(demoSubPayments, "rg-build-shared", "aks-build-uks", "1.33.5", "Unmanaged",
		map[string]string{"env": "shared", "team": "build"},
		ubuntu("system", "System", 3, oct20), ubuntu("runners", "User", 6, oct20))
	orders := &cluster{id: mustClusterID(demoSubPayments, "rg-orders-prod", "aks-orders-neu"), location: "northeurope",
		aksSchema: SchemaEventGrid, pools: []pool{{name: "system"}}}

	s.clusterSnapshot(search, at("2026-11-09T06:20:14.5512093Z"))
	s.clusterSnapshot(ml, at("2026-11-09T06:21:37.0248816Z"))
	s.clusterSnapshot(reports, at("2026-11-09T06:22:05.7719342Z"))
	s.clusterSnapshot(build, at("2026-11-09T06:23:48.3306127Z"))
	s.aks(reports, TypeClusterSupportEnded, at("2026-11-10T09:00:07.0000000Z"), struct {
		KubernetesVersion string `json:"kubernetesVersion"`
	}{"1.30.14"})
	s.rolling(search, TypeNodePoolRollingStarted, "ingest", at("2026-11-12T03:05:41.2093317Z"))
	s.rolling(search, TypeNodePoolRollingFailed, "ingest", at("2026-11-12T03:52:19.8840256Z"))
	s.rolling(orders, TypeNodePoolRollingStarted, "system", at("2026-11-14T04:01:12.6638190Z"))
	s.rolling(orders, TypeNodePoolRollingSucceeded, "system", at("2026-11-14T04:33:50.1027745Z"))
}

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic("timeline: bad demo time " + s)
	}
	return t.UTC()
}

func mustClusterID(sub, rg, name string) fleet.ClusterID {
	id, err := fleet.NewClusterID(sub, rg, name)
	if err != nil {
		panic("timeline: " + err.Error())
	}
	return id
}
