package notify

import (
	"encoding/json"
	"time"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
)

// The notifications tests render and send: one production cluster, as the
// rules in internal/findings describe it.

var payments = fleet.ClusterID{
	SubscriptionID: "6f1c2a3b-4d5e-4f60-8a71-92b3c4d5e6f7",
	ResourceGroup:  "rg-payments-prod",
	Name:           "aks-payments-weu",
}

const (
	paymentsID     = "/subscriptions/6f1c2a3b-4d5e-4f60-8a71-92b3c4d5e6f7/resourceGroups/rg-payments-prod/providers/Microsoft.ContainerService/managedClusters/aks-payments-weu"
	paymentsStatus = "https://func-upgradewatch-prod.azurewebsites.net/api/clusters/6f1c2a3b-4d5e-4f60-8a71-92b3c4d5e6f7/rg-payments-prod/aks-payments-weu"
	appSource      = "https://func-upgradewatch-prod.azurewebsites.net"
)

// pdbMessage is AKS's message for a drain blocked by a PodDisruptionBudget.
const pdbMessage = "Drain node aks-payments-38172645-vmss00000b failed when evicting pod payments-api-7c9d8f6b5-x2kq4 failed with Too Many Requests error. " +
	"This is often caused by a restrictive Pod Disruption Budget (PDB) policy. See http://aka.ms/aks/debugdrainfailures. " +
	"Original error: Cannot evict pod as it would violate the pod's disruption budget.. " +
	"PDB debug info: payments/payments-api-7c9d8f6b5-x2kq4 blocked by pdb payments-api-pdb (MinAvailable: 3) with 0 unready pods."

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v) // map keys sorted, as fleet stores evidence
	if err != nil {
		panic(err)
	}
	return b
}

func upgradeFailedOpened() Notification {
	return Notification{
		ID:       "a3f1c9e27b4d5088b6e1d2c3f4a5b6c7",
		Type:     TypeFindingOpened,
		Time:     at("2026-03-14T02:48:12Z"),
		Cluster:  payments,
		Subject:  paymentsID + "/agentPools/payments",
		Code:     fleet.CodeUpgradeFailed,
		Severity: fleet.SeverityError,
		Target:   "pool/payments",
		Summary:  "the last upgrade of pool payments failed: " + pdbMessage,
		Evidence: mustJSON(map[string]any{
			"rollingState":  "Failed",
			"upgrade":       "payments~2026-03-14T02:00:11Z~3f9a1c07",
			"endedAt":       "2026-03-14T02:47:53Z",
			"trigger":       "Automatic",
			"requestedBy":   "",
			"correlationId": "",
			"failures": []map[string]any{{
				"at":            "2026-03-14T02:47:50Z",
				"operation":     "Microsoft.ContainerService/managedClusters/agentPools/write",
				"status":        "Failed",
				"path":          "agentPools/payments",
				"correlationId": "9b2e4c61-0d7a-4f38-b5e2-6a1c3d8f0e47",
				"message":       pdbMessage,
			}},
		}),
		OpenedAt:  at("2026-03-14T02:48:12Z"),
		StatusURL: paymentsStatus,
	}
}

func imageStaleReminded() Notification {
	return Notification{
		ID:       "0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a",
		Type:     TypeFindingReminded,
		Time:     at("2026-03-16T09:00:00Z"),
		Cluster:  payments,
		Code:     fleet.CodeImageStale,
		Severity: fleet.SeverityWarning,
		Target:   "pool/batch/latest",
		Summary:  "pool batch runs AKSUbuntu-2204gen2containerd-202602.18.0; AKSUbuntu-2204gen2containerd-202603.02.0 has been available since 2026-03-02",
		Evidence: mustJSON(map[string]any{
			"image": "AKSUbuntu-2204gen2containerd-202602.18.0", "latest": "AKSUbuntu-2204gen2containerd-202603.02.0", "graceDays": 7,
		}),
		OpenedAt:  at("2026-03-14T08:55:00Z"),
		Reminder:  2,
		StatusURL: paymentsStatus,
	}
}

func channelDriftResolved() Notification {
	return Notification{
		ID:       "5e4d3c2b1a09f8e7d6c5b4a392817065",
		Type:     TypeFindingResolved,
		Time:     at("2026-03-14T15:31:40Z"),
		Cluster:  payments,
		Code:     fleet.CodeChannelDrift,
		Severity: fleet.SeverityWarning,
		Target:   "cluster",
		Summary:  "node OS channel is Unmanaged, policy wants NodeImage",
		Evidence: mustJSON(map[string]any{
			"observed": "Unmanaged", "desired": "NodeImage", "policy": "production-windows", "observedAt": "2026-03-14T10:17:20Z",
			"changedFrom": "NodeImage", "changedAt": "2026-03-14T10:12:03Z",
			"changedBy": "jane.doe@contoso.com", "changeCorrelationId": "c7d1e2f3-4a5b-4c6d-8e9f-0a1b2c3d4e5f",
		}),
		OpenedAt:   at("2026-03-14T10:17:20Z"),
		ResolvedAt: at("2026-03-14T15:31:40Z"),
		StatusURL:  paymentsStatus,
	}
}

func imageStalePlanned() Notification {
	return Notification{
		ID:       "7a6b5c4d3e2f10a9b8c7d6e5f4a3b2c1",
		Type:     TypeRemediationPlanned,
		Time:     at("2026-03-15T00:05:00Z"),
		Cluster:  payments,
		Code:     fleet.CodeImageStale,
		Severity: fleet.SeverityWarning,
		Target:   "pool/payments",
		Summary:  "pool payments runs AKSUbuntu-2204gen2containerd-202602.04.0, 39 days old (limit 14)",
		OpenedAt: at("2026-03-12T06:00:00Z"),
		Remediation: &RemediationStep{
			Action: "upgradeNodeImageVersion",
			DryRun: true,
			Detail: "would upgrade pool payments to AKSUbuntu-2204gen2containerd-202603.09.0 in the next aksManagedNodeOSUpgradeSchedule window (Sun 2026-03-15 01:00–05:00 UTC)",
		},
		StatusURL: paymentsStatus,
	}
}

func channelDriftApplied() Notification {
	return Notification{
		ID:       "f0e1d2c3b4a5968778695a4b3c2d1e0f",
		Type:     TypeRemediationApplied,
		Time:     at("2026-03-14T15:20:09Z"),
		Cluster:  payments,
		Code:     fleet.CodeChannelDrift,
		Severity: fleet.SeverityWarning,
		Target:   "cluster",
		OpenedAt: at("2026-03-14T10:17:20Z"),
		Remediation: &RemediationStep{
			Action: "setNodeOSUpgradeChannel",
			Detail: "autoUpgradeProfile.nodeOSUpgradeChannel Unmanaged → NodeImage (If-Match \"4f00b1e8-0000-0d00-0000-65f2a1b30000\")",
		},
		StatusURL: paymentsStatus,
	}
}

func imageStaleFailed() Notification {
	return Notification{
		ID:       "1b2c3d4e5f60718293a4b5c6d7e8f901",
		Type:     TypeRemediationFailed,
		Time:     at("2026-03-15T01:02:44Z"),
		Cluster:  payments,
		Code:     fleet.CodeImageStale,
		Severity: fleet.SeverityWarning,
		Target:   "pool/payments",
		Summary:  "pool payments runs AKSUbuntu-2204gen2containerd-202602.04.0, 39 days old (limit 14)",
		OpenedAt: at("2026-03-12T06:00:00Z"),
		Remediation: &RemediationStep{
			Action: "upgradeNodeImageVersion",
			Error: "(OperationNotAllowed) Operation is not allowed because there's an in progress upgrade node image version operation " +
				"(started at 2026-03-15T01:00:31Z) on agent pool payments. Please wait for it to finish before starting a new operation.",
		},
		StatusURL: paymentsStatus,
	}
}

// rebootsUnmanagedOpened has neither evidence ("{}", which the rule would
// fill with the channel and the Linux pools) nor a status link.
func rebootsUnmanagedOpened() Notification {
	return Notification{
		ID:       "9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d",
		Type:     TypeFindingOpened,
		Time:     at("2026-03-14T10:17:20Z"),
		Cluster:  payments,
		Code:     fleet.CodeRebootsUnmanaged,
		Severity: fleet.SeverityInfo,
		Target:   "cluster",
		Summary:  "Unmanaged: Linux nodes patch nightly, but reboots need a reboot manager such as kured",
		Evidence: json.RawMessage(`{}`),
		OpenedAt: at("2026-03-14T10:17:20Z"),
	}
}

// allFixtures covers every type.
func allFixtures() map[string]Notification {
	return map[string]Notification{
		"upgrade-failed-opened":    upgradeFailedOpened(),
		"image-stale-reminded":     imageStaleReminded(),
		"channel-drift-resolved":   channelDriftResolved(),
		"image-stale-planned":      imageStalePlanned(),
		"channel-drift-applied":    channelDriftApplied(),
		"image-stale-failed":       imageStaleFailed(),
		"reboots-unmanaged-opened": rebootsUnmanagedOpened(),
	}
}
