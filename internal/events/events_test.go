package events

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
)

const (
	weuSub  = "7f3c2a91-5b4e-4d1f-9e8a-2c6b0d4f1a37"
	neuSub  = "c2e8f4a6-91d3-4b7e-a5f0-6d3b9e1c8f24"
	weuID   = "/subscriptions/" + weuSub + "/resourceGroups/rg-aks-weu-prod/providers/Microsoft.ContainerService/managedClusters/aks-weu-prod-01"
	neuID   = "/subscriptions/" + neuSub + "/resourceGroups/Platform-Shared-NEU/providers/Microsoft.ContainerService/managedClusters/aks-neu-shared"
	neuLow  = "/subscriptions/" + neuSub + "/resourcegroups/platform-shared-neu/providers/microsoft.containerservice/managedclusters/aks-neu-shared"
	csType  = "Microsoft.ContainerService."
	seType  = "Microsoft.ResourceNotifications.ContainerServiceEventResources.ScheduledEventEmitted"
	cuType  = "Microsoft.ResourceNotifications.Resources.CreatedOrUpdated"
	delType = "Microsoft.ResourceNotifications.Resources.Deleted"
)

// Clusters in resource groups whose names use what Azure allows beyond ASCII
// letters and hyphens, and the virtual machine and scale set of the maintenance
// fixtures.
const (
	namesSub = "5a8e2c71-3d4b-4f6a-9c0e-1b2d3f4a5c6e"
	mucID    = "/subscriptions/" + namesSub + "/resourceGroups/rg-münchen-prod/providers/Microsoft.ContainerService/managedClusters/aks-muc-prod-01"
	fleetID  = "/subscriptions/" + namesSub + "/resourceGroups/RG.Fleet_(west)-2/providers/Microsoft.ContainerService/managedClusters/aks-fleet-w2"
	vmID     = "/subscriptions/" + weuSub + "/resourcegroups/rg-build-agents-weu/providers/microsoft.compute/virtualmachines/vm-buildagent-07"
	vmssSE   = "/subscriptions/" + weuSub + "/resourceGroups/MC_rg-aks-weu-prod_aks-weu-prod-01_westeurope/providers/Microsoft.Compute/virtualMachineScaleSets/aks-system-12345678-vmss/providers/microsoft.maintenance/scheduledevents/3da1b9aa-5204-4335-8c33-c54e315dcffe"
)

var (
	muc     = fleet.ClusterID{SubscriptionID: namesSub, ResourceGroup: "rg-münchen-prod", Name: "aks-muc-prod-01"}
	fleetW2 = fleet.ClusterID{SubscriptionID: namesSub, ResourceGroup: "RG.Fleet_(west)-2", Name: "aks-fleet-w2"}
)

var (
	weu = fleet.ClusterID{SubscriptionID: weuSub, ResourceGroup: "rg-aks-weu-prod", Name: "aks-weu-prod-01"}
	neu = fleet.ClusterID{SubscriptionID: neuSub, ResourceGroup: "Platform-Shared-NEU", Name: "aks-neu-shared"}
	// Values keep the case they were sent in; only segment names are matched loosely.
	neuLower = fleet.ClusterID{SubscriptionID: neuSub, ResourceGroup: "platform-shared-neu", Name: "aks-neu-shared"}
)

// at parses an expected time written in the test.
func at(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatalf("bad expected time %q: %v", s, err)
	}
	return v
}

func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecode(t *testing.T) {
	seWEU := "/subscriptions/" + weuSub + "/resourcegroups/rg-aks-weu-prod/providers/Microsoft.ContainerService/managedClusters/aks-weu-prod-01/scheduledEvents/"
	seNEULow := "/subscriptions/" + neuSub + "/resourcegroups/platform-shared-neu/providers/Microsoft.ContainerService/managedClusters/aks-neu-shared/scheduledEvents/"
	seNEU := "/subscriptions/" + neuSub + "/resourcegroups/Platform-Shared-NEU/providers/Microsoft.ContainerService/managedClusters/aks-neu-shared/scheduledEvents/"
	storage := "/subscriptions/" + weuSub + "/resourcegroups/rg-data-weu/providers/Microsoft.Storage/storageAccounts/stweuprodlogs01"

	startedText := func(t *testing.T) *fleet.ScheduledEvent {
		return &fleet.ScheduledEvent{
			EventID:       "bbe82027-0444-4f73-897a-0bbfe3af66f1",
			Status:        "Started",
			Source:        "AutoUprader",
			Description:   "ScheduledEvents",
			UpgradeType:   "NodeOSUpgrade",
			Details:       "Start to upgrade security vhd",
			ScheduledTime: at(t, "2026-05-10T01:00:00.103268606Z"),
		}
	}
	eol := func(t *testing.T) *fleet.ScheduledEvent {
		return &fleet.ScheduledEvent{
			EventID:     "f47ac10b-58cc-4372-a567-0e02b2c3d479",
			Status:      "Scheduled",
			Source:      "EOLNotification",
			Description: "KubernetesVersionEOLOneWeek",
			UpgradeType: "EOL",
			// Re-marshalled from the SDK's map: keys come out sorted.
			Details:       `{"daysUntilEOL":5,"eolDate":"2026-03-01T00:00:00Z","kubernetesVersion":"1.32.3","region":"northeurope","supportType":"Community"}`,
			ScheduledTime: at(t, "2026-03-01T00:00:00Z"),
		}
	}
	failedNodeOS := func(t *testing.T) *fleet.ScheduledEvent {
		return &fleet.ScheduledEvent{
			EventID:        "6a1d9c7e-1111-4222-8333-444455556666",
			Status:         "Failed",
			Source:         "AutoUpgrader",
			Description:    "ScheduledEvents",
			UpgradeType:    "NodeOSUpgrade",
			Details:        `{"type":2,"upgradeType":"NodeOSUpgrade","message":"drain of node aks-userazl-31415926-vmss000004 timed out after 30m: Cannot evict pod as it would violate the pod's disruption budget"}`,
			ScheduledTime:  at(t, "2026-05-03T02:00:00Z"),
			StartTime:      at(t, "2026-05-03T02:03:11.52Z"),
			LastUpdateTime: at(t, "2026-05-03T05:41:09.18Z"),
		}
	}
	cancelled := func(t *testing.T) *fleet.ScheduledEvent {
		return &fleet.ScheduledEvent{
			EventID:        "2c9e7b5a-3d1f-4e8b-a6c4-9f0e1d2c3b4a",
			Status:         "Canceled",
			Source:         "AutoUpgrader",
			Description:    "ScheduledEvents",
			UpgradeType:    "K8sVersionUpgrade",
			Details:        "Cluster auto-upgrade (K8sVersionUpgrade to 1.33.5) cancelled: the planned maintenance window ended before the upgrade could start",
			ScheduledTime:  at(t, "2026-05-09T22:00:00Z"),
			LastUpdateTime: at(t, "2026-05-10T02:00:00.4518763Z"),
		}
	}
	historic := func(t *testing.T) *fleet.ScheduledEvent {
		return &fleet.ScheduledEvent{
			EventID:       "4b5c6d7e-8f9a-4b0c-9d1e-2f3a4b5c6d7e",
			Status:        "Scheduled",
			Source:        "AutoUpgrader",
			Description:   "ScheduledEvents",
			UpgradeType:   "NodeOSUpgrade",
			Details:       "NodeOSUpgrade scheduled in the next aksManagedNodeOSUpgradeSchedule window",
			ScheduledTime: at(t, "2026-05-03T02:00:00Z"),
		}
	}

	tests := []struct {
		file string
		want func(t *testing.T) fleet.Signal
	}{
		// AKS system events.
		{"eg-nodepool-rolling-started.json", func(t *testing.T) fleet.Signal {
			return fleet.Signal{ID: "3e5c1f0a9b7d4e2f8a6c0b1d2e3f4a5b6c7d8e9f", Type: csType + "NodePoolRollingStarted",
				Source: weuID, Subject: "aks-weu-prod-01", Time: at(t, "2026-05-03T02:03:11.52Z"), Schema: fleet.SchemaEventGrid,
				Cluster: weu, Kind: fleet.KindRollingStarted, Pool: "system"}
		}},
		{"host-string-wrapped-event.json", func(t *testing.T) fleet.Signal {
			return fleet.Signal{ID: "3e5c1f0a9b7d4e2f8a6c0b1d2e3f4a5b6c7d8e9f", Type: csType + "NodePoolRollingStarted",
				Source: weuID, Subject: "aks-weu-prod-01", Time: at(t, "2026-05-03T02:03:11.52Z"), Schema: fleet.SchemaEventGrid,
				Cluster: weu, Kind: fleet.KindRollingStarted, Pool: "system"}
		}},
		{"ce-nodepool-rolling-started.json", func(t *testing.T) fleet.Signal {
			return fleet.Signal{ID: "9c1e5b7a2d3f4e6081a9b2c3d4e5f60718293a4b", Type: csType + "NodePoolRollingStarted",
				Source: weuID, Subject: "aks-weu-prod-01", Time: at(t, "2026-05-03T02:41:27.0731256Z"), Schema: fleet.SchemaCloudEvents,
				Cluster: weu, Kind: fleet.KindRollingStarted, Pool: "userazl"}
		}},
		{"eg-nodepool-rolling-succeeded.json", func(t *testing.T) fleet.Signal {
			return fleet.Signal{ID: "a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5", Type: csType + "NodePoolRollingSucceeded",
				Source: weuID, Subject: "aks-weu-prod-01", Time: at(t, "2026-05-03T02:39:54.8812345Z"), Schema: fleet.SchemaEventGrid,
				Cluster: weu, Kind: fleet.KindRollingSucceeded, Pool: "system"}
		}},
		{"ce-nodepool-rolling-succeeded.json", func(t *testing.T) fleet.Signal {
			return fleet.Signal{ID: "0f1e2d3c4b5a69788796a5b4c3d2e1f0a1b2c3d4", Type: csType + "NodePoolRollingSucceeded",
				Source: neuID, Subject: "aks-neu-shared", Time: at(t, "2026-05-04T03:15:02.1Z"), Schema: fleet.SchemaCloudEvents,
				Cluster: neu, Kind: fleet.KindRollingSucceeded, Pool: "win22"}
		}},
		{"eg-nodepool-rolling-failed-lowercase-topic.json", func(t *testing.T) fleet.Signal {
			return fleet.Signal{ID: "5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f80", Type: csType + "NodePoolRollingFailed",
				Source: neuLow, Subject: "aks-neu-shared", Time: at(t, "2026-05-04T05:41:09.18Z"), Schema: fleet.SchemaEventGrid,
				Cluster: neuLower, Kind: fleet.KindRollingFailed, Pool: "userpool1"}
		}},
		{"ce-nodepool-rolling-failed.json", func(t *testing.T) fleet.Signal {
			return fleet.Signal{ID: "b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6", Type: csType + "NodePoolRollingFailed",
				Source: weuID, Subject: "aks-weu-prod-01", Time: at(t, "2026-05-03T05:41:09.18Z"), Schema: fleet.SchemaCloudEvents,
				Cluster: weu, Kind: fleet.KindRollingFailed, Pool: "userazl"}
		}},
		{"eg-new-kubernetes-version-available.json", func(t *testing.T) fleet.Signal {
			return fleet.Signal{ID: "1234abcd5678ef901234abcd5678ef901234abcd", Type: csType + "NewKubernetesVersionAvailable",
				Source: weuID, Subject: "aks-weu-prod-01", Time: at(t, "2026-04-28T04:52:57Z"), Schema: fleet.SchemaEventGrid,
				Cluster: weu, Kind: fleet.KindVersionsAvailable,
				Versions: &fleet.KubernetesVersions{LatestSupported: "1.34.2", LatestStable: "1.33.5", LowestMinor: "1.32.9", LatestPreview: "1.35.0"}}
		}},
		{"ce-new-kubernetes-version-available.json", func(t *testing.T) fleet.Signal {
			return fleet.Signal{ID: "fedcba9876543210fedcba9876543210fedcba98", Type: csType + "NewKubernetesVersionAvailable",
				Source: neuID, Subject: "aks-neu-shared", Time: at(t, "2026-04-28T04:53:01.2345678Z"), Schema: fleet.SchemaCloudEvents,
				Cluster: neu, Kind: fleet.KindVersionsAvailable,
				Versions: &fleet.KubernetesVersions{LatestSupported: "1.34.2", LatestStable: "1.33.5", LowestMinor: "1.32.9"}}
		}},
		{"eg-cluster-support-ending.json", func(t *testing.T) fleet.Signal {
			return fleet.Signal{ID: "c0ffee00c0ffee00c0ffee00c0ffee00c0ffee01", Type: csType + "ClusterSupportEnding",
				Source: neuID, Subject: "aks-neu-shared", Time: at(t, "2026-03-29T18:00:00Z"), Schema: fleet.SchemaEventGrid,
				Cluster: neu, Kind: fleet.KindSupportEnding, Support: &fleet.SupportNotice{KubernetesVersion: "1.31.11"}}
		}},
		{"ce-cluster-support-ending.json", func(t *testing.T) fleet.Signal {
			return fleet.Signal{ID: "c0ffee00c0ffee00c0ffee00c0ffee00c0ffee02", Type: csType + "ClusterSupportEnding",
				Source: neuID, Subject: "aks-neu-shared", Time: at(t, "2026-03-29T18:00:00Z"), Schema: fleet.SchemaCloudEvents,
				Cluster: neu, Kind: fleet.KindSupportEnding, Support: &fleet.SupportNotice{KubernetesVersion: "1.31.11"}}
		}},
		{"eg-cluster-support-ended.json", func(t *testing.T) fleet.Signal {
			return fleet.Signal{ID: "d00dfeedd00dfeedd00dfeedd00dfeedd00dfee1", Type: csType + "ClusterSupportEnded",
				Source: neuID, Subject: "aks-neu-shared", Time: at(t, "2026-04-30T18:00:00Z"), Schema: fleet.SchemaEventGrid,
				Cluster: neu, Kind: fleet.KindSupportEnded, Support: &fleet.SupportNotice{KubernetesVersion: "1.31.11"}}
		}},
		{"ce-cluster-support-ended.json", func(t *testing.T) fleet.Signal {
			return fleet.Signal{ID: "d00dfeedd00dfeedd00dfeedd00dfeedd00dfee2", Type: csType + "ClusterSupportEnded",
				Source: neuID, Subject: "aks-neu-shared", Time: at(t, "2026-04-30T18:00:00Z"), Schema: fleet.SchemaCloudEvents,
				Cluster: neu, Kind: fleet.KindSupportEnded, Support: &fleet.SupportNotice{KubernetesVersion: "1.31.11"}}
		}},

		// AKS Communication Manager scheduled events.
		{"eg-scheduled-started-text.json", func(t *testing.T) fleet.Signal {
			return fleet.Signal{ID: "5bdb52cf-5489-4845-86c8-7fe94a4fc6c1", Type: seType, Source: "/subscriptions/" + weuSub,
				Subject: seWEU + "8d2f6b1c-3a4e-4f5d-9b7a-1c2d3e4f5a6b", Time: at(t, "2026-05-10T01:00:04.1032748Z"),
				Schema: fleet.SchemaEventGrid, Cluster: weu, Kind: fleet.KindScheduledEvent, Scheduled: startedText(t)}
		}},
		{"ce-scheduled-started-text.json", func(t *testing.T) fleet.Signal {
			return fleet.Signal{ID: "6cec63d0-659a-4956-97d9-8f5b5c7e2d01", Type: seType, Source: "/subscriptions/" + weuSub,
				Subject: seWEU + "8d2f6b1c-3a4e-4f5d-9b7a-1c2d3e4f5a6b", Time: at(t, "2026-05-10T01:00:04.1032748Z"),
				Schema: fleet.SchemaCloudEvents, Cluster: weu, Kind: fleet.KindScheduledEvent, Scheduled: startedText(t)}
		}},
		{"eg-scheduled-eol-object.json", func(t *testing.T) fleet.Signal {
			return fleet.Signal{ID: "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d", Type: seType, Source: "/subscriptions/" + neuSub,
				Subject: seNEULow + "f47ac10b-58cc-4372-a567-0e02b2c3d479", Time: at(t, "2026-02-24T00:00:03.4567891Z"),
				Schema: fleet.SchemaEventGrid, Cluster: neuLower, Kind: fleet.KindScheduledEvent, Scheduled: eol(t)}
		}},
		{"ce-scheduled-eol-object.json", func(t *testing.T) fleet.Signal {
			return fleet.Signal{ID: "1b2c3d4e-5f6a-4b7c-8d9e-0f1a2b3c4d5e", Type: seType, Source: "/subscriptions/" + neuSub,
				Subject: seNEULow + "f47ac10b-58cc-4372-a567-0e02b2c3d479", Time: at(t, "2026-02-24T00:00:03.4567891Z"),
				Schema: fleet.SchemaCloudEvents, Cluster: neuLower, Kind: fleet.KindScheduledEvent, Scheduled: eol(t)}
		}},
		{"eg-scheduled-failed-nodeos-json-string.json", func(t *testing.T) fleet.Signal {
			return fleet.Signal{ID: "0c6f3f1e-2f7c-4b0e-9f1a-3b8c1d2e4f50", Type: seType, Source: "/subscriptions/" + weuSub,
				Subject: seWEU + "6a1d9c7e-1111-4222-8333-444455556666", Time: at(t, "2026-05-03T05:41:09.18Z"),
				Schema: fleet.SchemaEventGrid, Cluster: weu, Kind: fleet.KindScheduledEvent, Scheduled: failedNodeOS(t)}
		}},
		{"ce-scheduled-failed-nodeos-json-string.json", func(t *testing.T) fleet.Signal {
			return fleet.Signal{ID: "1d7a4b2f-3a8d-4c1f-a02b-4c9d2e3f5a61", Type: seType, Source: "/subscriptions/" + weuSub,
				Subject: seWEU + "6a1d9c7e-1111-4222-8333-444455556666", Time: at(t, "2026-05-03T05:41:09.18Z"),
				Schema: fleet.SchemaCloudEvents, Cluster: weu, Kind: fleet.KindScheduledEvent, Scheduled: failedNodeOS(t)}
		}},
		{"eg-scheduled-cancelled.json", func(t *testing.T) fleet.Signal {
			return fleet.Signal{ID: "7e8f9a0b-1c2d-4e3f-8a4b-5c6d7e8f9a0b", Type: seType, Source: "/subscriptions/" + neuSub,
				Subject: seNEU + "2c9e7b5a-3d1f-4e8b-a6c4-9f0e1d2c3b4a", Time: at(t, "2026-05-10T02:00:00.4518763Z"),
				Schema: fleet.SchemaEventGrid, Cluster: neu, Kind: fleet.KindScheduledEvent, Scheduled: cancelled(t)}
		}},
		{"ce-scheduled-cancelled.json", func(t *testing.T) fleet.Signal {
			return fleet.Signal{ID: "8f9a0b1c-2d3e-4f4a-9b5c-6d7e8f9a0b1c", Type: seType, Source: "/subscriptions/" + neuSub,
				Subject: seNEU + "2c9e7b5a-3d1f-4e8b-a6c4-9f0e1d2c3b4a", Time: at(t, "2026-05-10T02:00:00.4518763Z"),
				Schema: fleet.SchemaCloudEvents, Cluster: neu, Kind: fleet.KindScheduledEvent, Scheduled: cancelled(t)}
		}},
		{"eg-maintenance-scheduled-historic.json", func(t *testing.T) fleet.Signal {
			return fleet.Signal{ID: "3a4b5c6d-7e8f-4a9b-8c0d-1e2f3a4b5c6d", Type: TypeMaintenanceScheduledEventEmitted,
				Source: "/subscriptions/" + weuSub, Subject: seWEU + "4b5c6d7e-8f9a-4b0c-9d1e-2f3a4b5c6d7e",
				Time: at(t, "2026-04-26T02:00:01.5551234Z"), Schema: fleet.SchemaEventGrid, Cluster: weu,
				Kind: fleet.KindScheduledEvent, Scheduled: historic(t)}
		}},
		{"ce-maintenance-scheduled-historic-no-time.json", func(t *testing.T) fleet.Signal {
			// No envelope time: operationalInfo.resourceEventTime (sent without Z) stands in.
			return fleet.Signal{ID: "9b0c1d2e-3f4a-4b5c-8d6e-7f8a9b0c1d2e", Type: TypeMaintenanceScheduledEventEmitted,
				Source: "/subscriptions/" + weuSub, Subject: seWEU + "4b5c6d7e-8f9a-4b0c-9d1e-2f3a4b5c6d7e",
				Time: at(t, "2026-04-26T02:00:01.5551234Z"), Schema: fleet.SchemaCloudEvents, Cluster: weu,
				Kind: fleet.KindScheduledEvent, Scheduled: historic(t)}
		}},

		// Virtual machine and scale set maintenance shares the historic type:
		// accepted as unsupported, no cluster (an AKS node pool's own scale set
		// included: the event names the scale set, never the cluster).
		{"eg-maintenance-vm-freeze-completed.json", func(t *testing.T) fleet.Signal {
			return fleet.Signal{ID: "6e9f8439-8bf5-48f1-805d-ad8ab7cd1951", Type: TypeMaintenanceScheduledEventEmitted,
				Source: "/subscriptions/" + weuSub, Subject: vmID, Time: at(t, "2026-06-04T18:01:13.2675752Z"),
				Schema: fleet.SchemaEventGrid, Kind: fleet.KindUnsupported}
		}},
		{"ce-maintenance-vm-reboot-scheduled.json", func(t *testing.T) fleet.Signal {
			return fleet.Signal{ID: "a1c3e5f7-2b4d-4f6a-8c0e-1a3c5e7f9b2d", Type: TypeMaintenanceScheduledEventEmitted,
				Source: "/subscriptions/" + weuSub, Subject: vmID, Time: at(t, "2026-06-09T07:44:20.5512346Z"),
				Schema: fleet.SchemaCloudEvents, Kind: fleet.KindUnsupported}
		}},
		{"eg-maintenance-vmss-freeze-started.json", func(t *testing.T) fleet.Signal {
			return fleet.Signal{ID: "3da1b9aa-5204-4335-8c33-c54e315dcffe", Type: TypeMaintenanceScheduledEventEmitted,
				Source: "/subscriptions/" + weuSub, Subject: vmssSE, Time: at(t, "2026-06-11T18:29:52.9584103Z"),
				Schema: fleet.SchemaEventGrid, Kind: fleet.KindUnsupported}
		}},
		{"ce-maintenance-vmss-freeze-started.json", func(t *testing.T) fleet.Signal {
			return fleet.Signal{ID: "7c2e4a6b-8d0f-4b1c-9e3a-5f7b9d1c3e5a", Type: TypeMaintenanceScheduledEventEmitted,
				Source: "/subscriptions/" + weuSub, Subject: vmssSE, Time: at(t, "2026-06-11T18:29:52.9584103Z"),
				Schema: fleet.SchemaCloudEvents, Kind: fleet.KindUnsupported}
		}},

		// Resource group names Azure allows, in both schemas: the source is
		// kept as sent, never percent-escaped.
		{"eg-nodepool-rolling-started-rg-munich.json", func(t *testing.T) fleet.Signal {
			return fleet.Signal{ID: "4f2a9c1e7b3d5e8f0a6c2b4d1e3f5a7b9c0d2e4f", Type: csType + "NodePoolRollingStarted",
				Source: mucID, Subject: "aks-muc-prod-01", Time: at(t, "2026-06-02T01:17:43.9012345Z"), Schema: fleet.SchemaEventGrid,
				Cluster: muc, Kind: fleet.KindRollingStarted, Pool: "system"}
		}},
		{"ce-nodepool-rolling-started-rg-munich.json", func(t *testing.T) fleet.Signal {
			return fleet.Signal{ID: "4f2a9c1e7b3d5e8f0a6c2b4d1e3f5a7b9c0d2e4f", Type: csType + "NodePoolRollingStarted",
				Source: mucID, Subject: "aks-muc-prod-01", Time: at(t, "2026-06-02T01:17:43.9012345Z"), Schema: fleet.SchemaCloudEvents,
				Cluster: muc, Kind: fleet.KindRollingStarted, Pool: "system"}
		}},
		{"ce-nodepool-rolling-started-rg-munich-escaped.json", func(t *testing.T) fleet.Signal {
			// Sent percent-encoded: kept so in Source, decoded in the cluster.
			return fleet.Signal{ID: "4f2a9c1e7b3d5e8f0a6c2b4d1e3f5a7b9c0d2e4f", Type: csType + "NodePoolRollingStarted",
				Source: strings.Replace(mucID, "münchen", "m%C3%BCnchen", 1), Subject: "aks-muc-prod-01",
				Time: at(t, "2026-06-02T01:17:43.9012345Z"), Schema: fleet.SchemaCloudEvents,
				Cluster: muc, Kind: fleet.KindRollingStarted, Pool: "system"}
		}},
		{"eg-nodepool-rolling-started-rg-fleet-west.json", func(t *testing.T) fleet.Signal {
			return fleet.Signal{ID: "8b0d2f4a6c8e0a2c4e6a8c0e2a4c6e8a0c2e4a6c", Type: csType + "NodePoolRollingStarted",
				Source: fleetID, Subject: "aks-fleet-w2", Time: at(t, "2026-06-02T03:05:12.3456789Z"), Schema: fleet.SchemaEventGrid,
				Cluster: fleetW2, Kind: fleet.KindRollingStarted, Pool: "spot01"}
		}},
		{"ce-nodepool-rolling-started-rg-fleet-west.json", func(t *testing.T) fleet.Signal {
			return fleet.Signal{ID: "8b0d2f4a6c8e0a2c4e6a8c0e2a4c6e8a0c2e4a6c", Type: csType + "NodePoolRollingStarted",
				Source: fleetID, Subject: "aks-fleet-w2", Time: at(t, "2026-06-02T03:05:12.3456789Z"), Schema: fleet.SchemaCloudEvents,
				Cluster: fleetW2, Kind: fleet.KindRollingStarted, Pool: "spot01"}
		}},
		{"ce-new-kubernetes-version-available-specVersion.json", func(t *testing.T) fleet.Signal {
			// Azure's published sample spells specVersion.
			return fleet.Signal{ID: "0a9b8c7d6e5f40312a3b4c5d6e7f8091a2b3c4d5", Type: csType + "NewKubernetesVersionAvailable",
				Source: neuID, Subject: "aks-neu-shared", Time: at(t, "2026-05-19T04:52:57Z"), Schema: fleet.SchemaCloudEvents,
				Cluster: neu, Kind: fleet.KindVersionsAvailable,
				Versions: &fleet.KubernetesVersions{LatestSupported: "1.34.2", LatestStable: "1.33.5", LowestMinor: "1.32.9", LatestPreview: "1.35.0"}}
		}},

		// Resource Notifications for clusters and pools.
		{"eg-cluster-created-or-updated.json", func(t *testing.T) fleet.Signal {
			return fleet.Signal{ID: "4eef929a-a65c-47dd-93e2-46b8c17c6c17", Type: cuType, Source: "/subscriptions/" + weuSub,
				Subject: weuID, Time: at(t, "2026-05-03T05:41:09.18Z"), Schema: fleet.SchemaEventGrid, Cluster: weu,
				Kind: fleet.KindClusterUpdated, Profile: &fleet.ClusterProfile{
					Location:             "westeurope",
					KubernetesVersion:    "1.33.5",
					UpgradeChannel:       "patch",
					NodeOSUpgradeChannel: "NodeImage",
					ProvisioningState:    "Succeeded",
					Tags:                 map[string]string{"env": "prod", "owner": "platform-team"},
					Pools: []fleet.PoolProfile{
						{Name: "system", Mode: "System", OSType: "Linux", OSSKU: "Ubuntu", VMSize: "Standard_D4ds_v5", Count: 3,
							OrchestratorVersion: "1.33.5", NodeImageVersion: "AKSUbuntu-2204gen2containerd-202604.07.0",
							ProvisioningState: "Succeeded", MaxSurge: "33%", MaxUnavailable: "0", DrainTimeoutMinutes: 30,
							UndrainableBehavior: "Schedule"},
						{Name: "userazl", Mode: "User", OSType: "Linux", OSSKU: "AzureLinux", VMSize: "Standard_D8ds_v5", Count: 5,
							OrchestratorVersion: "1.33.5", NodeImageVersion: "AKSAzureLinux-V3gen2-202604.07.0",
							ProvisioningState: "UpgradingNodeImageVersion", MaxSurge: "2", MaxUnavailable: "1",
							DrainTimeoutMinutes: 45, NodeSoakMinutes: 5, UndrainableBehavior: "Cordon"},
						{Name: "win22", Mode: "User", OSType: "Windows", OSSKU: "Windows2022", VMSize: "Standard_D4s_v5", Count: 2,
							OrchestratorVersion: "1.33.5", NodeImageVersion: "AKSWindows-2022-containerd-20348.3932.250705",
							ProvisioningState: "Succeeded", MaxSurge: "1"},
					},
				}}
		}},
		{"ce-cluster-created-or-updated.json", func(t *testing.T) fleet.Signal {
			return fleet.Signal{ID: "5ffa030b-b76d-48ee-a4f3-57c9d28d7d28", Type: cuType, Source: "/subscriptions/" + neuSub,
				Subject: neuID, Time: at(t, "2026-05-04T07:12:45.6789012Z"), Schema: fleet.SchemaCloudEvents, Cluster: neu,
				Kind: fleet.KindClusterUpdated, Profile: &fleet.ClusterProfile{
					Location:             "northeurope",
					KubernetesVersion:    "1.32.7",
					UpgradeChannel:       "stable",
					NodeOSUpgradeChannel: "SecurityPatch",
					ProvisioningState:    "Updating",
					Tags:                 map[string]string{"env": "shared", "costCenter": ""},
				}}
		}},
		{"eg-agentpool-created-or-updated.json", func(t *testing.T) fleet.Signal {
			return fleet.Signal{ID: "6a0b1c2d-3e4f-4a5b-9c6d-7e8f9a0b1c2d", Type: cuType, Source: "/subscriptions/" + weuSub,
				Subject: weuID + "/agentPools/userazl", Time: at(t, "2026-05-03T06:02:17.3141593Z"), Schema: fleet.SchemaEventGrid,
				Cluster: weu, Kind: fleet.KindPoolUpdated, Pool: "userazl", PoolSpec: &fleet.PoolProfile{
					Name: "userazl", Mode: "User", OSType: "Linux", OSSKU: "AzureLinux", VMSize: "Standard_D8ds_v5", Count: 3,
					OrchestratorVersion: "1.33.5", NodeImageVersion: "AKSAzureLinux-V3gen2-202604.21.0", ProvisioningState: "Succeeded",
					MaxSurge: "1", MaxUnavailable: "0", DrainTimeoutMinutes: 30,
				}}
		}},
		{"ce-agentpool-created-or-updated.json", func(t *testing.T) fleet.Signal {
			return fleet.Signal{ID: "7b1c2d3e-4f5a-4b6c-8d7e-8f9a0b1c2d3e", Type: cuType, Source: "/subscriptions/" + neuSub,
				Subject: neuLow + "/agentpools/win22", Time: at(t, "2026-05-04T03:00:12.7182818Z"), Schema: fleet.SchemaCloudEvents,
				Cluster: neuLower, Kind: fleet.KindPoolUpdated, Pool: "win22", PoolSpec: &fleet.PoolProfile{
					Name: "win22", Mode: "User", OSType: "Windows", OSSKU: "Windows2022", VMSize: "Standard_D4s_v5", Count: 2,
					OrchestratorVersion: "1.33.5", NodeImageVersion: "AKSWindows-2022-containerd-20348.3932.250705",
					ProvisioningState: "UpgradingNodeImageVersion", MaxSurge: "50%", DrainTimeoutMinutes: 60, NodeSoakMinutes: 10,
					UndrainableBehavior: "Cordon",
				}}
		}},
		{"eg-cluster-deleted.json", func(t *testing.T) fleet.Signal {
			return fleet.Signal{ID: "8c2d3e4f-5a6b-4c7d-9e8f-9a0b1c2d3e4f", Type: delType, Source: "/subscriptions/" + neuSub,
				Subject: neuID, Time: at(t, "2026-05-20T11:30:00.1234567Z"), Schema: fleet.SchemaEventGrid, Cluster: neu,
				Kind: fleet.KindClusterDeleted}
		}},
		{"ce-cluster-deleted.json", func(t *testing.T) fleet.Signal {
			return fleet.Signal{ID: "9d3e4f5a-6b7c-4d8e-8f9a-0b1c2d3e4f5a", Type: delType, Source: "/subscriptions/" + neuSub,
				Subject: neuID, Time: at(t, "2026-05-20T11:30:00.1234567Z"), Schema: fleet.SchemaCloudEvents, Cluster: neu,
				Kind: fleet.KindClusterDeleted}
		}},
		{"eg-agentpool-deleted.json", func(t *testing.T) fleet.Signal {
			return fleet.Signal{ID: "ae4f5a6b-7c8d-4e9f-9a0b-1c2d3e4f5a6b", Type: delType, Source: "/subscriptions/" + weuSub,
				Subject: weuID + "/agentPools/win22", Time: at(t, "2026-05-21T09:14:33.9876543Z"), Schema: fleet.SchemaEventGrid,
				Cluster: weu, Kind: fleet.KindPoolDeleted, Pool: "win22"}
		}},
		{"ce-agentpool-deleted.json", func(t *testing.T) fleet.Signal {
			return fleet.Signal{ID: "bf5a6b7c-8d9e-4f0a-8b1c-2d3e4f5a6b7c", Type: delType, Source: "/subscriptions/" + weuSub,
				Subject: weuID + "/agentPools/win22", Time: at(t, "2026-05-21T09:14:33.9876543Z"), Schema: fleet.SchemaCloudEvents,
				Cluster: weu, Kind: fleet.KindPoolDeleted, Pool: "win22"}
		}},

		// Accepted but not acted on.
		{"eg-storage-blob-created.json", func(t *testing.T) fleet.Signal {
			return fleet.Signal{ID: "9aeb0fdf-c01e-0131-0922-9eb54906e209", Type: "Microsoft.Storage.BlobCreated",
				Source:  "/subscriptions/" + weuSub + "/resourceGroups/rg-data-weu/providers/Microsoft.Storage/storageAccounts/stweuprodlogs01",
				Subject: "/blobServices/default/containers/aks-logs/blobs/2026/05/03/system.log",
				Time:    at(t, "2026-05-03T06:10:44.3157812Z"), Schema: fleet.SchemaEventGrid, Kind: fleet.KindUnsupported}
		}},
		{"ce-storage-blob-created.json", func(t *testing.T) fleet.Signal {
			return fleet.Signal{ID: "9aeb0fdf-c01e-0131-0922-9eb54906e20a", Type: "Microsoft.Storage.BlobCreated",
				Source:  "/subscriptions/" + weuSub + "/resourceGroups/rg-data-weu/providers/Microsoft.Storage/storageAccounts/stweuprodlogs01",
				Subject: "/blobServices/default/containers/aks-logs/blobs/2026/05/03/system.log",
				Time:    at(t, "2026-05-03T06:10:44.3157812Z"), Schema: fleet.SchemaCloudEvents, Kind: fleet.KindUnsupported}
		}},
		{"eg-resource-write-success-storage.json", func(t *testing.T) fleet.Signal {
			// Another provider's activity: ignored, keeping its envelope id.
			return fleet.Signal{ID: "4db48cba-50a2-455a-93b4-de41a3b5b7f6", Type: "Microsoft.Resources.ResourceWriteSuccess",
				Source: "/subscriptions/" + weuSub, Subject: storage, Time: at(t, "2026-05-03T07:38:04.6117357Z"),
				Schema: fleet.SchemaEventGrid, Kind: fleet.KindIgnored, Activity: &fleet.Activity{
					OperationName: "Microsoft.Storage/storageAccounts/write", Status: fleet.ActivitySucceeded,
					CorrelationID: "e7d6c5b4-a392-4810-9f8e-7d6c5b4a3928", ResourceID: storage,
					Path: fleet.PathEventGrid, DeliveryID: "4db48cba-50a2-455a-93b4-de41a3b5b7f6",
				}}
		}},
		{"eg-storage-created-or-updated.json", func(t *testing.T) fleet.Signal {
			return fleet.Signal{ID: "1f2e3d4c-5b6a-4798-8a9b-0c1d2e3f4a5b", Type: cuType,
				Source: "/subscriptions/" + weuSub, Subject: storage, Time: at(t, "2026-05-03T07:38:05.0011223Z"),
				Schema: fleet.SchemaEventGrid, Kind: fleet.KindUnsupported}
		}},
		{"eg-resource-action-success-aks.json", func(t *testing.T) fleet.Signal {
			// An activity: its id is the activity's, shared by every path.
			a := &fleet.Activity{Operation: fleet.OpPoolUpgradeImage,
				OperationName: "Microsoft.ContainerService/managedClusters/agentPools/upgradeNodeImageVersion/action",
				Status:        fleet.ActivitySucceeded, Actor: "2b7c6d5e-4f3a-4b2c-9d1e-0f9a8b7c6d5e",
				ActorType: fleet.ActorServicePrincipal, CorrelationID: "3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f",
				ResourceID: weuID + "/agentPools/system", Pool: "system", Path: fleet.PathEventGrid,
				DeliveryID: "b0f5c6a2-6a1e-4f7e-9b55-0d2b7a9d1c11"}
			return fleet.Signal{ID: fleet.ActivityID(*a), Type: "Microsoft.Resources.ResourceActionSuccess",
				Source: "/subscriptions/" + weuSub, Subject: weuID + "/agentPools/system", Time: at(t, "2026-05-03T09:12:44.1234567Z"),
				Schema: fleet.SchemaEventGrid, Cluster: weu, Kind: fleet.KindActivity, Activity: a, Pool: "system"}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			got, err := Decode(readFixture(t, tc.file))
			if err != nil {
				t.Fatalf("Decode: got error %v, want none", err)
			}
			if diff := cmp.Diff(tc.want(t), got); diff != "" {
				t.Errorf("Decode mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestDecodeEveryFixture decodes every top-level fixture but the batches, so
// that a fixture added without a TestDecode row is still held to the basics.
func TestDecodeEveryFixture(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		name := filepath.Base(f)
		if strings.HasPrefix(name, "host-") && strings.Contains(name, "batch") {
			continue // Split's business; see TestSplit
		}
		sig, err := Decode(readFixture(t, name))
		if err != nil {
			t.Errorf("%s: got error %v, want none", name, err)
			continue
		}
		if sig.ID == "" || sig.Type == "" || sig.Kind == "" || sig.Time.IsZero() {
			t.Errorf("%s: got ID %q Type %q Kind %q Time %v, want all set", name, sig.ID, sig.Type, sig.Kind, sig.Time)
		}
	}
}

func TestDecodeRejects(t *testing.T) {
	tests := []struct {
		file      string
		wantID    string
		wantType  string
		wantIs    []error // ErrMalformed is always checked
		wantInMsg string
	}{
		{file: "not-json.txt", wantInMsg: "not valid JSON"},
		{file: "array.json", wantInMsg: "JSON array, want an object"},
		{file: "eg-missing-id.json", wantType: csType + "NodePoolRollingStarted", wantInMsg: "id is missing"},
		{file: "ce-missing-source.json", wantID: "9c1e5b7a2d3f4e6081a9b2c3d4e5f60718293a4b",
			wantType: csType + "NodePoolRollingStarted", wantInMsg: "source: REQUIRED"},
		{file: "ce-missing-specversion.json", wantID: "9c1e5b7a2d3f4e6081a9b2c3d4e5f60718293a4b",
			wantType: csType + "NodePoolRollingStarted", wantInMsg: "neither specversion"},
		{file: "ce-v03-empty-datacontentencoding.json", wantID: "6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192",
			wantType: csType + "NodePoolRollingStarted", wantInMsg: "CloudEvents SDK failed"},
		{file: "ce-data-base64-number.json", wantID: "5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7081",
			wantType: csType + "NodePoolRollingStarted", wantInMsg: "CloudEvents SDK failed"},
		{file: "eg-bad-time.json", wantID: "3e5c1f0a9b7d4e2f8a6c0b1d2e3f4a5b6c7d8e9f",
			wantType: csType + "NodePoolRollingStarted", wantInMsg: `eventTime "2026-13-45T25:61:00.0000000Z" is not an RFC 3339 time`},
		{file: "ce-bad-time.json", wantID: "9c1e5b7a2d3f4e6081a9b2c3d4e5f60718293a4b",
			wantType: csType + "NodePoolRollingStarted", wantInMsg: "yesterday at noon"},
		{file: "eg-doc-typo-topic.json", wantID: "1234567890abcdef1234567890abcdef12345678",
			wantType: csType + "NewKubernetesVersionAvailable", wantIs: []error{fleet.ErrInvalidResourceID},
			wantInMsg: "topic: not a managed cluster resource ID"},
		{file: "eg-cluster-name-quote.json", wantID: "2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f",
			wantType: csType + "NodePoolRollingStarted", wantIs: []error{fleet.ErrInvalidResourceID},
			wantInMsg: `invalid cluster name "aks'1"`},
		{file: "eg-scheduled-cluster-name-quote.json", wantID: "5bdb52cf-5489-4845-86c8-7fe94a4fc6c2",
			wantType: seType, wantIs: []error{fleet.ErrInvalidResourceID},
			wantInMsg: `data.resourceInfo.id: not a managed cluster resource ID: invalid cluster name "aks'1"`},
		{file: "eg-pool-name-quote.json", wantID: "3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60",
			wantType: csType + "NodePoolRollingFailed", wantInMsg: `data.nodePoolName "np'1" is not a valid agent pool name`},
		{file: "ce-nodepool-name-missing.json", wantID: "4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f6071",
			wantType: csType + "NodePoolRollingSucceeded", wantInMsg: "data.nodePoolName is missing"},
		{file: "eg-agentpool-count-not-a-number.json", wantID: "6a0b1c2d-3e4f-4a5b-9c6d-7e8f9a0b1c2e",
			wantType: cuType, wantInMsg: `data.resourceInfo.properties.count: want an integer, got "three"`},
		{file: "ce-specversion-twice-different.json", wantID: "1b9c8d7e6f5a40312a3b4c5d6e7f8091a2b3c4d6",
			wantType:  csType + "NewKubernetesVersionAvailable",
			wantInMsg: `attribute "specversion" is sent twice, as "specVersion" and "specversion", with different values`},
		{file: "ce-rg-ends-with-period.json", wantID: "5e3b0d2f8c4e6f9a1b7d3c5e2f4a6b8c0d1e3f5a",
			wantType: csType + "NodePoolRollingStarted", wantIs: []error{fleet.ErrInvalidResourceID},
			wantInMsg: `source: not a managed cluster resource ID: invalid resource group name "rg-münchen-prod."`},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			sig, err := Decode(readFixture(t, filepath.Join("reject", tc.file)))
			if err == nil {
				t.Fatalf("Decode: got no error, want one (signal %+v)", sig)
			}
			for _, target := range append([]error{ErrMalformed}, tc.wantIs...) {
				if !errors.Is(err, target) {
					t.Errorf("got error %q, want it to match %q", err, target)
				}
			}
			if !strings.Contains(err.Error(), tc.wantInMsg) {
				t.Errorf("got error %q, want it to contain %q", err, tc.wantInMsg)
			}
			if sig.ID != tc.wantID || sig.Type != tc.wantType {
				t.Errorf("got partial ID %q Type %q, want %q %q", sig.ID, sig.Type, tc.wantID, tc.wantType)
			}
			if sig.Kind != "" {
				t.Errorf("got Kind %q on a rejected event, want none", sig.Kind)
			}
		})
	}
}

// TestDecodeEdges covers tolerances and rejections too small to merit a fixture.
func TestDecodeEdges(t *testing.T) {
	const rolling = `"eventType":"Microsoft.ContainerService.NodePoolRollingStarted","id":"e1","subject":"aks-weu-prod-01","data":{"nodePoolName":"system"}`
	tests := []struct {
		name     string
		in       string
		wantErr  bool
		wantKind fleet.SignalKind
		check    func(t *testing.T, sig fleet.Signal)
	}{
		{
			name:     "numeric dataVersion falls back to the tolerant envelope",
			in:       `{"topic":"` + weuID + `",` + rolling + `,"eventTime":"2026-05-03T02:03:11.5200000Z","dataVersion":1}`,
			wantKind: fleet.KindRollingStarted,
		},
		{
			name:     "eventTime without an offset is UTC",
			in:       `{"topic":"` + weuID + `",` + rolling + `,"eventTime":"2026-05-03T02:03:11.5200000"}`,
			wantKind: fleet.KindRollingStarted,
			check: func(t *testing.T, sig fleet.Signal) {
				if want := at(t, "2026-05-03T02:03:11.52Z"); !sig.Time.Equal(want) || sig.Time.Location() != time.UTC {
					t.Errorf("got Time %v, want %v UTC", sig.Time, want)
				}
			},
		},
		{
			name:     "no topic, ARM ID in subject",
			in:       `{"eventType":"Microsoft.ContainerService.ClusterSupportEnded","id":"e2","subject":"` + weuID + `","data":{"kubernetesVersion":"1.31.11"},"eventTime":"2026-04-30T18:00:00Z"}`,
			wantKind: fleet.KindSupportEnded,
			check: func(t *testing.T, sig fleet.Signal) {
				if sig.Cluster != weu {
					t.Errorf("got Cluster %v, want %v", sig.Cluster, weu)
				}
			},
		},
		{
			name:    "no topic, bare cluster name in subject",
			in:      `{` + rolling + `,"eventTime":"2026-05-03T02:03:11.52Z"}`,
			wantErr: true,
		},
		{
			name:    "missing eventTime on an AKS event",
			in:      `{"topic":"` + weuID + `",` + rolling + `}`,
			wantErr: true,
		},
		{
			name:    "zero-sentinel eventTime on an AKS event",
			in:      `{"topic":"` + weuID + `",` + rolling + `,"eventTime":"0001-01-01T00:00:00.0000000Z"}`,
			wantErr: true,
		},
		{
			name:    "missing subject",
			in:      `{"topic":"` + weuID + `","eventType":"Microsoft.ContainerService.NodePoolRollingStarted","id":"e3","data":{"nodePoolName":"system"},"eventTime":"2026-05-03T02:03:11.52Z"}`,
			wantErr: true,
		},
		{
			name:    "data of the wrong shape",
			in:      `{"topic":"` + weuID + `",` + strings.Replace(rolling, `{"nodePoolName":"system"}`, `{"nodePoolName":7}`, 1) + `,"eventTime":"2026-05-03T02:03:11.52Z"}`,
			wantErr: true,
		},
		{
			name:    "data not an object",
			in:      `{"topic":"` + weuID + `",` + strings.Replace(rolling, `{"nodePoolName":"system"}`, `["system"]`, 1) + `,"eventTime":"2026-05-03T02:03:11.52Z"}`,
			wantErr: true,
		},
		{
			name:    "support event without a version",
			in:      `{"topic":"` + weuID + `","eventType":"Microsoft.ContainerService.ClusterSupportEnding","id":"e4","subject":"c","data":{},"eventTime":"2026-04-30T18:00:00Z"}`,
			wantErr: true,
		},
		{
			name:    "CloudEvents 0.3 is not CloudEvents 1.0",
			in:      `{"specversion":"0.3","id":"e5","source":"` + weuID + `","type":"Microsoft.ContainerService.NodePoolRollingStarted","time":"2026-05-03T02:03:11.52Z","data":{"nodePoolName":"system"}}`,
			wantErr: true,
		},
		{
			name:    "CloudEvent without a time",
			in:      `{"specversion":"1.0","id":"e6","source":"` + weuID + `","type":"Microsoft.ContainerService.NodePoolRollingStarted","data":{"nodePoolName":"system"}}`,
			wantErr: true,
		},
		{
			name:     "CloudEvent data in data_base64",
			in:       `{"specversion":"1.0","id":"e7","source":"` + weuID + `","type":"Microsoft.ContainerService.NodePoolRollingStarted","time":"2026-05-03T02:03:11.52Z","data_base64":"eyJub2RlUG9vbE5hbWUiOiJzeXN0ZW0ifQ=="}`,
			wantKind: fleet.KindRollingStarted,
			check: func(t *testing.T, sig fleet.Signal) {
				if sig.Pool != "system" {
					t.Errorf("got Pool %q, want system", sig.Pool)
				}
			},
		},
		{
			name:    "JSON null",
			in:      `null`,
			wantErr: true,
		},
		{
			name:    "empty subject is rejected, the validation handshake included",
			in:      `{"id":"2d1781af-3a4c-4d7c-bd0c-e34b19da4e66","topic":"/subscriptions/` + weuSub + `","subject":"","data":{"validationCode":"512d38b6-c7b8-40c8-89fe-f46f9e9622b6"},"eventType":"Microsoft.EventGrid.SubscriptionValidationEvent","eventTime":"2026-05-03T00:00:00Z"}`,
			wantErr: true, // the Functions host answers the handshake itself
		},
		{
			name:     "Resources.Deleted of a pool without agentPools in the ID falls back to resourceInfo.name",
			in:       `{"id":"e8","topic":"/subscriptions/` + weuSub + `","subject":"` + weuID + `","eventType":"` + delType + `","eventTime":"2026-05-21T09:14:33Z","data":{"resourceInfo":{"id":"` + weuID + `","name":"np2","type":"Microsoft.ContainerService/managedClusters/agentPools"}}}`,
			wantKind: fleet.KindPoolDeleted,
			check: func(t *testing.T, sig fleet.Signal) {
				if sig.Pool != "np2" {
					t.Errorf("got Pool %q, want np2", sig.Pool)
				}
			},
		},
		{
			name:    "cluster profile with an invalid pool name",
			in:      `{"id":"e9","topic":"/subscriptions/` + weuSub + `","subject":"` + weuID + `","eventType":"` + cuType + `","eventTime":"2026-05-21T09:14:33Z","data":{"resourceInfo":{"id":"` + weuID + `","name":"aks-weu-prod-01","type":"Microsoft.ContainerService/managedClusters","properties":{"agentPoolProfiles":[{"name":"bad\"pool"}]}}}}`,
			wantErr: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sig, err := Decode([]byte(tc.in))
			if tc.wantErr {
				if !errors.Is(err, ErrMalformed) {
					t.Fatalf("got error %v, want ErrMalformed", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("got error %v, want none", err)
			}
			if sig.Kind != tc.wantKind {
				t.Errorf("got Kind %q, want %q", sig.Kind, tc.wantKind)
			}
			if tc.check != nil {
				tc.check(t, sig)
			}
		})
	}
}

// TestDecodeErrorLength checks that an error never repeats more than a couple
// of hundred characters of a hostile input.
func TestDecodeErrorLength(t *testing.T) {
	long := strings.Repeat("x", 10000)
	inputs := []string{
		`{"topic":"/subscriptions/` + long + `","eventType":"Microsoft.ContainerService.NodePoolRollingStarted","id":"e","subject":"s","data":{"nodePoolName":"p"},"eventTime":"2026-05-03T02:03:11Z"}`,
		`{"specversion":"1.0","source":"` + weuID + `","type":"Microsoft.ContainerService.NodePoolRollingStarted","id":"e","time":"2026-05-03T02:03:11Z","data":{"nodePoolName":"` + long + `"}}`,
		`{"specversion":"1.0","source":"` + weuID + `","type":"t","id":"e","time":"` + long + `"}`,
		`{"eventType":"t","id":"e","subject":"s","eventTime":"` + long + `"}`,
		`{"eventType":"` + cuType + `","id":"e","subject":"s","eventTime":"2026-05-03T02:03:11Z","data":{"resourceInfo":{"id":"` + weuID + `/agentPools/` + long + `","type":"Microsoft.ContainerService/managedClusters/agentPools"}}}`,
	}
	for i, in := range inputs {
		_, err := Decode([]byte(in))
		if err == nil {
			t.Errorf("input %d: got no error, want one", i)
			continue
		}
		if n := len(err.Error()); n > 400 {
			t.Errorf("input %d: got a %d-byte error message, want at most 400: %.120s…", i, n, err)
		}
	}
}

func TestNormaliseStatus(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Scheduled", "Scheduled"},
		{"started", "Started"},
		{"COMPLETED", "Completed"},
		{"Failed", "Failed"},
		{"Canceled", "Canceled"},
		{"Cancelled", "Canceled"},
		{" cancelled ", "Canceled"},
		{"InProgress", "InProgress"},
		{"", ""},
	}
	for _, tc := range tests {
		if got := normaliseStatus(tc.in); got != tc.want {
			t.Errorf("normaliseStatus(%q): got %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestUpgradeType(t *testing.T) {
	tests := []struct {
		name       string
		serialized string
		se         fleet.ScheduledEvent
		detailType string
		want       string
	}{
		{"NodeOSUpgrade in properties", `{"eventDetails":"NodeOSUpgrade started"}`, fleet.ScheduledEvent{}, "", "NodeOSUpgrade"},
		{"K8sVersionUpgrade in properties", `{"eventDetails":"K8sVersionUpgrade"}`, fleet.ScheduledEvent{}, "", "K8sVersionUpgrade"},
		{"numeric type 2", `{}`, fleet.ScheduledEvent{}, "2", "NodeOSUpgrade"},
		{"numeric type 1", `{}`, fleet.ScheduledEvent{}, "1", "K8sVersionUpgrade"},
		{"EOL by source", `{}`, fleet.ScheduledEvent{Source: "EOLNotification"}, "", "EOL"},
		{"EOL by description", `{}`, fleet.ScheduledEvent{Description: "KubernetesVersionOutOfSupport"}, "", "EOL"},
		{"EOL two weeks", `{}`, fleet.ScheduledEvent{Description: "KubernetesVersionEOLTwoWeeks"}, "", "EOL"},
		{"security vhd", `{}`, fleet.ScheduledEvent{Details: "Start to upgrade security vhd"}, "", "NodeOSUpgrade"},
		{"node image", `{}`, fleet.ScheduledEvent{Details: "Upgrading node image"}, "", "NodeOSUpgrade"},
		{"unknown", `{}`, fleet.ScheduledEvent{Description: "ScheduledEvents", Details: "Konnectivity tunnel switch"}, "", "Unknown"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := upgradeType([]byte(tc.serialized), &tc.se, tc.detailType); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestFlattenDetails(t *testing.T) {
	tests := []struct {
		name, in, want, wantType string
	}{
		{"absent", ``, "", ""},
		{"null", `null`, "", ""},
		{"text", `"Start to upgrade security vhd"`, "Start to upgrade security vhd", ""},
		{"object", `{ "type": 1, "message": "a <b>" }`, `{"type":1,"message":"a <b>"}`, "1"},
		{"object in a string", `"{\"type\": 2}"`, `{"type":2}`, "2"},
		{"string type", `{"type":"2"}`, `{"type":"2"}`, "2"},
		{"number", `5`, "5", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, gotType := flattenDetails([]byte(tc.in))
			if got != tc.want || gotType != tc.wantType {
				t.Errorf("got %q, %q; want %q, %q", got, gotType, tc.want, tc.wantType)
			}
		})
	}
}

func TestReaderInteger(t *testing.T) {
	tests := []struct {
		in      string
		want    int
		wantErr bool
	}{
		{`3`, 3, false},
		{`"3"`, 3, false},
		{`" 30 "`, 30, false},
		{`3.0`, 3, false},
		{`1`, 1, false},
		{`true`, 1, false},
		{`false`, 0, false},
		{`null`, 0, false},
		{`""`, 0, false},
		{`"three"`, 0, true},
		{`2.5`, 0, true},
		{`{}`, 0, true},
	}
	for _, tc := range tests {
		var r reader
		got := r.integer("count", []byte(tc.in))
		if got != tc.want || (r.err != nil) != tc.wantErr {
			t.Errorf("integer(%s): got %d, %v; want %d, error %v", tc.in, got, r.err, tc.want, tc.wantErr)
		}
	}
}

// TestDecodeSameEventBothSchemas decodes one event as Event Grid and as
// CloudEvents deliver it: apart from the schema, the signals are the same, so
// they land on the same cluster key (the partition) and dedupe as one.
func TestDecodeSameEventBothSchemas(t *testing.T) {
	pairs := []struct{ eg, ce, wantKey string }{
		{"eg-nodepool-rolling-started-rg-munich.json", "ce-nodepool-rolling-started-rg-munich.json", namesSub + "~rg-münchen-prod~aks-muc-prod-01"},
		{"eg-nodepool-rolling-started-rg-munich.json", "ce-nodepool-rolling-started-rg-munich-escaped.json", namesSub + "~rg-münchen-prod~aks-muc-prod-01"},
		{"eg-nodepool-rolling-started-rg-fleet-west.json", "ce-nodepool-rolling-started-rg-fleet-west.json", namesSub + "~rg.fleet_(west)-2~aks-fleet-w2"},
	}
	for _, p := range pairs {
		t.Run(p.ce, func(t *testing.T) {
			eg, err := Decode(readFixture(t, p.eg))
			if err != nil {
				t.Fatalf("%s: %v", p.eg, err)
			}
			ce, err := Decode(readFixture(t, p.ce))
			if err != nil {
				t.Fatalf("%s: %v", p.ce, err)
			}
			if eg.Cluster.Key() != p.wantKey || ce.Cluster.Key() != p.wantKey {
				t.Errorf("keys %q (Event Grid) and %q (CloudEvents), want both %q", eg.Cluster.Key(), ce.Cluster.Key(), p.wantKey)
			}
			eg.Schema, ce.Schema, ce.Source = "", "", eg.Source
			if diff := cmp.Diff(eg, ce); diff != "" {
				t.Errorf("Event Grid and CloudEvents signals differ (-eg +ce):\n%s", diff)
			}
		})
	}
}

// TestDecodeQuotesInputAsSent checks that a refusal, and the partial signal a
// rejection is recorded from, carry the source as it was sent: never the
// percent-escaped form the CloudEvents SDK gives back.
func TestDecodeQuotesInputAsSent(t *testing.T) {
	const bad = "/subscriptions/" + namesSub + "/resourceGroups/rg-münchen-prod./providers/Microsoft.ContainerService/managedClusters/aks-muc-prod-01"
	ce := readFixture(t, "reject/ce-rg-ends-with-period.json")
	eg := []byte(`{"topic":"` + bad + `","subject":"aks-muc-prod-01","eventType":"Microsoft.ContainerService.NodePoolRollingStarted",` +
		`"id":"5e3b0d2f8c4e6f9a1b7d3c5e2f4a6b8c0d1e3f5a","data":{"nodePoolName":"system"},"dataVersion":"1","metadataVersion":"1","eventTime":"2026-06-02T01:17:43.9012345Z"}`)
	for name, raw := range map[string][]byte{"CloudEvents": ce, "Event Grid": eg} {
		sig, err := Decode(raw)
		if err == nil {
			t.Fatalf("%s: accepted a resource group ending in a period", name)
		}
		if !strings.Contains(err.Error(), `"rg-münchen-prod."`) || strings.Contains(err.Error(), "%C3") {
			t.Errorf("%s: error %q, want it to quote rg-münchen-prod. as sent", name, err)
		}
		if sig.Source != bad {
			t.Errorf("%s: partial Source %q, want %q as sent", name, sig.Source, bad)
		}
	}
}

// TestDecodeAttributeCase covers CloudEvents attribute names in other cases.
func TestDecodeAttributeCase(t *testing.T) {
	const data = `"data":{"nodePoolName":"system"}`
	tests := []struct {
		name    string
		in      string
		wantErr string // empty: accepted
	}{
		{name: "every attribute in camel case",
			in: `{"SpecVersion":"1.0","ID":"e1","Source":"` + weuID + `","Type":"Microsoft.ContainerService.NodePoolRollingStarted","Time":"2026-05-03T02:03:11.52Z","Subject":"aks-weu-prod-01",` + data + `}`},
		{name: "both spellings with the same value",
			in: `{"specversion":"1.0","specVersion":"1.0","id":"e2","source":"` + weuID + `","type":"Microsoft.ContainerService.NodePoolRollingStarted","time":"2026-05-03T02:03:11.52Z",` + data + `}`},
		{name: "both spellings of source with different values",
			in:      `{"specVersion":"1.0","id":"e3","source":"` + weuID + `","Source":"` + neuID + `","type":"Microsoft.ContainerService.NodePoolRollingStarted","time":"2026-05-03T02:03:11.52Z",` + data + `}`,
			wantErr: `attribute "source" is sent twice, as "Source" and "source", with different values`},
		{name: "upper-case data is still the data",
			in: `{"specversion":"1.0","id":"e4","source":"` + weuID + `","type":"Microsoft.ContainerService.NodePoolRollingStarted","time":"2026-05-03T02:03:11.52Z","Data":{"nodePoolName":"system"}}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sig, err := Decode([]byte(tc.in))
			if tc.wantErr != "" {
				if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got error %v, want ErrMalformed containing %q", err, tc.wantErr)
				}
				if sig.ID != "e3" || sig.Type == "" {
					t.Errorf("partial signal %+v, want its id and type for the rejection record", sig)
				}
				return
			}
			if err != nil {
				t.Fatalf("got error %v, want none", err)
			}
			if sig.Schema != fleet.SchemaCloudEvents || sig.Cluster != weu || sig.Kind != fleet.KindRollingStarted || sig.Pool != "system" {
				t.Errorf("got %+v, want a CloudEvents rolling start of pool system on %v", sig, weu)
			}
		})
	}
}

// TestDecodeMaintenanceAboutCluster checks that the historic type still
// rejects a malformed cluster ID rather than taking it for another resource.
func TestDecodeMaintenanceAboutCluster(t *testing.T) {
	b := readFixture(t, "eg-maintenance-scheduled-historic.json")
	b = []byte(strings.ReplaceAll(string(b), "managedClusters/aks-weu-prod-01", "managedClusters/aks'weu"))
	_, err := Decode(b)
	if !errors.Is(err, fleet.ErrInvalidResourceID) || !strings.Contains(err.Error(), `invalid cluster name "aks'weu"`) {
		t.Errorf("got error %v, want an invalid cluster name", err)
	}
}
