package events

import (
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
)

const (
	paySub    = "6f1c2a3b-4d5e-4f60-8a71-92b3c4d5e6f7"
	payKey    = paySub + "~rg-payments-prod~aks-payments-weu"
	payID     = "/subscriptions/" + paySub + "/resourceGroups/rg-payments-prod/providers/Microsoft.ContainerService/managedClusters/aks-payments-weu"
	payCorr   = "0c6b3f1e-2a47-4d59-9b1e-5f2d8a7c4e90"
	pipeApp   = "8d4c2b1a-6e5f-4a7b-9c8d-0e1f2a3b4c5d"
	aliceUPN  = "alice@contoso.com"
	nodeOSCfg = "aksManagedNodeOSUpgradeSchedule"
)

// decodeActivityFixture decodes record idx of an activity fixture with the
// decoder its name calls for: DecodeAlert for alert-*, DecodeExport for
// export-*, Decode for the Event Grid and CloudEvents ones.
func decodeActivityFixture(t *testing.T, name string, idx int) (fleet.Signal, error) {
	t.Helper()
	raw := readFixture(t, filepath.Join("activity", name))
	switch {
	case strings.HasPrefix(name, "alert-") || strings.HasSuffix(name, "-alert.json"):
		return DecodeAlert(raw)
	case strings.HasPrefix(name, "export-") || strings.HasSuffix(name, "-export.json"):
		recs, err := DecodeExport(raw)
		if err != nil {
			t.Fatalf("DecodeExport(%s): got error %v, want none", name, err)
		}
		if idx >= len(recs) {
			t.Fatalf("DecodeExport(%s): got %d records, want more than %d", name, len(recs), idx)
		}
		if recs[idx].Index != idx {
			t.Errorf("record %d: got Index %d", idx, recs[idx].Index)
		}
		return recs[idx].Signal, recs[idx].Err
	default:
		return Decode(raw)
	}
}

func clusterKey(c fleet.ClusterID) string {
	if c.IsZero() {
		return ""
	}
	return c.Key()
}

func TestDecodeActivity(t *testing.T) {
	pool1 := payID + "/agentPools/nodepool1"
	type want struct {
		kind                    fleet.SignalKind
		schema, typ             string
		op, status              string
		pool, maintenance       string
		actor, actorType        string
		corr, msg, resource     string
		cluster, path, delivery string
		time, id                string // id: only checked when set
	}
	tests := []struct {
		file string
		rec  int
		want want
	}{
		// Event Grid and CloudEvents Microsoft.Resources.* events.
		{"eg-cluster-write-success.json", 0, want{kind: fleet.KindActivity, schema: fleet.SchemaEventGrid,
			typ: "Microsoft.Resources.ResourceWriteSuccess", op: fleet.OpClusterWrite, status: fleet.ActivitySucceeded,
			actor: "j.okafor@contoso.com", actorType: fleet.ActorUser, corr: "5a2e9c41-7d3b-4f18-a6e2-0b9c8d7f6e51",
			resource: payID, cluster: payKey, path: fleet.PathEventGrid, delivery: "1c7e4a92-3b5d-4f60-9a1b-2c3d4e5f6a7b",
			time: "2026-11-18T16:42:09.338192Z"}},
		{"ce-cluster-write-success.json", 0, want{kind: fleet.KindActivity, schema: fleet.SchemaCloudEvents,
			typ: "Microsoft.Resources.ResourceWriteSuccess", op: fleet.OpClusterWrite, status: fleet.ActivitySucceeded,
			actor: "j.okafor@contoso.com", actorType: fleet.ActorUser, corr: "5a2e9c41-7d3b-4f18-a6e2-0b9c8d7f6e51",
			resource: payID, cluster: payKey, path: fleet.PathEventGrid, delivery: "2d8f5b03-4c6e-4a71-8b2c-3d4e5f6a7b8c",
			time: "2026-11-18T16:42:09.338192Z"}},
		{"eg-pool-upgrade-node-image-action.json", 0, want{kind: fleet.KindActivity, schema: fleet.SchemaEventGrid,
			typ: "Microsoft.Resources.ResourceActionSuccess", op: fleet.OpPoolUpgradeImage, status: fleet.ActivitySucceeded,
			pool: "nodepool1", actor: pipeApp, actorType: fleet.ActorServicePrincipal, corr: "b3f0a6d2-9c8e-4b71-a5d4-e3f2c1b0a9d8",
			resource: pool1, cluster: payKey, path: fleet.PathEventGrid, delivery: "b0f5c6a2-6a1e-4f7e-9b55-0d2b7a9d1c11",
			time: "2026-11-19T02:05:12.4471093Z"}},
		{"eg-pool-abort-action.json", 0, want{kind: fleet.KindActivity, schema: fleet.SchemaEventGrid,
			typ: "Microsoft.Resources.ResourceActionSuccess", op: fleet.OpPoolAbort, status: fleet.ActivitySucceeded,
			pool: "userpool", actor: aliceUPN, actorType: fleet.ActorUser, corr: "f1e2d3c4-b5a6-4978-8695-a4b3c2d1e0f9",
			resource: payID + "/agentPools/userpool", cluster: payKey, path: fleet.PathEventGrid,
			delivery: "4e9a1c37-8b2d-4f5e-a6c0-7d1e2f3a4b5c", time: "2026-11-19T03:30:47.9120334Z"}},
		{"eg-pool-write-failure.json", 0, want{kind: fleet.KindActivity, schema: fleet.SchemaEventGrid,
			typ: "Microsoft.Resources.ResourceWriteFailure", op: fleet.OpPoolWrite, status: fleet.ActivityFailed,
			pool: "userpool", actor: aliceUPN, actorType: fleet.ActorUser, corr: "a7b8c9d0-e1f2-4a3b-8c4d-5e6f7a8b9c0d",
			resource: payID + "/agentPools/userpool", cluster: payKey, path: fleet.PathEventGrid,
			delivery: "6b2c9d40-1e3f-4a5b-8c7d-9e0f1a2b3c4d", time: "2026-11-19T04:12:55.0046718Z"}},
		{"eg-pool-delete-success.json", 0, want{kind: fleet.KindActivity, schema: fleet.SchemaEventGrid,
			typ: "Microsoft.Resources.ResourceDeleteSuccess", op: fleet.OpPoolDelete, status: fleet.ActivitySucceeded,
			pool: "userpool", actor: aliceUPN, actorType: fleet.ActorUser, corr: "b8c9d0e1-f2a3-4b4c-9d5e-6f7a8b9c0d1e",
			resource: payID + "/agentPools/userpool", cluster: payKey, path: fleet.PathEventGrid,
			delivery: "7c3d0e51-2f4a-4b6c-9d8e-0f1a2b3c4d5e", time: "2026-11-19T05:01:18.5566778Z"}},
		{"eg-cluster-delete-success.json", 0, want{kind: fleet.KindActivity, schema: fleet.SchemaEventGrid,
			typ: "Microsoft.Resources.ResourceDeleteSuccess", op: fleet.OpClusterDelete, status: fleet.ActivitySucceeded,
			// A managed identity: no appid claim, so its object id.
			actor: "d6e5f4a3-b2c1-4d0e-9f8a-7b6c5d4e3f2a", actorType: fleet.ActorServicePrincipal,
			corr: "c9d0e1f2-a3b4-4c5d-8e6f-7a8b9c0d1e2f", resource: payID, cluster: payKey, path: fleet.PathEventGrid,
			delivery: "8d4e1f62-3a5b-4c7d-8e9f-1a2b3c4d5e6f", time: "2026-11-21T18:20:31.778899Z"}},
		{"eg-maintenance-write-success.json", 0, want{kind: fleet.KindActivity, schema: fleet.SchemaEventGrid,
			typ: "Microsoft.Resources.ResourceWriteSuccess", op: fleet.OpMaintenanceWrite, status: fleet.ActivitySucceeded,
			maintenance: nodeOSCfg, actor: aliceUPN, actorType: fleet.ActorUser, corr: "d0e1f2a3-b4c5-4d6e-9f70-8a9b0c1d2e3f",
			resource: payID + "/maintenanceConfigurations/" + nodeOSCfg, cluster: payKey, path: fleet.PathEventGrid,
			delivery: "9e5f2a73-4b6c-4d8e-9fa0-2b3c4d5e6f70", time: "2026-11-19T10:45:02.1234567Z"}},
		{"eg-maintenance-delete-success.json", 0, want{kind: fleet.KindActivity, schema: fleet.SchemaEventGrid,
			typ: "Microsoft.Resources.ResourceDeleteSuccess", op: fleet.OpMaintenanceDelete, status: fleet.ActivitySucceeded,
			maintenance: nodeOSCfg, actor: aliceUPN, actorType: fleet.ActorUser, corr: "e1f2a3b4-c5d6-4e7f-8a91-9b0c1d2e3f40",
			resource: payID + "/maintenanceConfigurations/" + nodeOSCfg, cluster: payKey, path: fleet.PathEventGrid,
			delivery: "af603b84-5c7d-4e9f-a0b1-3c4d5e6f7081", time: "2026-11-22T08:03:44.9876543Z"}},
		{"eg-evidence-array-quirk.json", 0, want{kind: fleet.KindActivity, schema: fleet.SchemaEventGrid,
			typ: "Microsoft.Resources.ResourceWriteCancel", op: fleet.OpClusterWrite, status: fleet.ActivityCanceled,
			corr: "f2a3b4c5-d6e7-4f80-9a1b-0c1d2e3f4a51", resource: payID, cluster: payKey, path: fleet.PathEventGrid,
			delivery: "b0714c95-6d8e-4fa0-b1c2-4d5e6f708192", time: "2026-11-19T11:15:00Z"}},
		{"eg-storage-write-ignored.json", 0, want{kind: fleet.KindIgnored, schema: fleet.SchemaEventGrid,
			typ: "Microsoft.Resources.ResourceWriteSuccess", status: fleet.ActivitySucceeded, actor: aliceUPN,
			actorType: fleet.ActorUser, corr: "0e1f2a3b-4c5d-4e6f-8a7b-9c0d1e2f3a4b",
			resource: "/subscriptions/" + paySub + "/resourcegroups/rg-payments-prod/providers/Microsoft.Storage/storageAccounts/stpaymentsweulogs",
			path:     fleet.PathEventGrid, delivery: "4db48cba-50a2-455a-93b4-de41a3b5b7f6", time: "2026-11-19T12:38:04.6117357Z",
			id: "4db48cba-50a2-455a-93b4-de41a3b5b7f6"}}, // an ignored event keeps its envelope id
		{"eg-lowercase-agentpools.json", 0, want{kind: fleet.KindActivity, schema: fleet.SchemaEventGrid,
			typ: "Microsoft.Resources.ResourceWriteSuccess", op: fleet.OpPoolWrite, status: fleet.ActivitySucceeded,
			pool: "userpool", actor: aliceUPN, actorType: fleet.ActorUser, corr: "1f2a3b4c-5d6e-4f70-8b9c-0d1e2f3a4b5c",
			resource: "/subscriptions/" + paySub + "/resourcegroups/rg-payments-prod/providers/Microsoft.ContainerService/managedClusters/aks-payments-weu/agentpools/userpool",
			cluster:  payKey, path: fleet.PathEventGrid, delivery: "c1825da6-7e9f-4ab1-82d3-5e6f70819203",
			time: "2026-11-19T13:20:11.5Z"}},

		// Activity-log alerts.
		{"alert-pool-upgrade-failed.json", 0, want{kind: fleet.KindActivity, schema: fleet.SchemaCommonAlert,
			typ: TypeActivityLogAlert, op: fleet.OpPoolWrite, status: fleet.ActivityFailed, pool: "nodepool1",
			actor: fleet.AKSCaller, actorType: fleet.ActorAKS, corr: "77777777-7777-7777-7777-777777777777",
			msg:      "Upgrade Failed, error: UpgradeFailed: Drain node aks-nodepool1-12345678-vmss000001 failed when evicting pod",
			resource: pool1, cluster: payKey, path: fleet.PathAlert, delivery: "88888888-8888-8888-8888-888888888888",
			time: "2026-05-03T05:41:09.18Z"}},
		{"alert-cluster-write-numbers.json", 0, want{kind: fleet.KindActivity, schema: fleet.SchemaCommonAlert,
			typ: TypeActivityLogAlert, op: fleet.OpClusterWrite, status: fleet.ActivitySucceeded,
			actor: pipeApp, actorType: fleet.ActorServicePrincipal, corr: "2a3b4c5d-6e7f-4a81-9b2c-3d4e5f6a7b8c",
			resource: payID, cluster: payKey, path: fleet.PathAlert, delivery: "3b4c5d6e-7f80-4a91-8c2d-4e5f6a7b8c9d",
			time: "2026-11-19T07:02:17.441Z"}},
		{"alert-upgrade-node-image-started.json", 0, want{kind: fleet.KindActivity, schema: fleet.SchemaCommonAlert,
			typ: TypeActivityLogAlert, op: fleet.OpPoolUpgradeImage, status: fleet.ActivityStarted, pool: "nodepool1",
			actor: aliceUPN, actorType: fleet.ActorUser, corr: "5d6e7f80-91a2-4bc3-8e4f-6a7b8c9d0e1f",
			resource: pool1, cluster: payKey, path: fleet.PathAlert, delivery: "6e7f8091-a2b3-4cd4-9f50-7b8c9d0e1f2a",
			time: "2026-11-19T02:05:11.903Z"}},
		{"alert-metric-ignored.json", 0, want{kind: fleet.KindIgnored, schema: fleet.SchemaCommonAlert,
			typ: "azureMonitorCommonAlertSchema/Metric", time: "2026-11-19T09:31:07.2291053Z",
			id: "6f1c2a3b-4d5e-4f60-8a71-92b3c4d5e6f7_rg-payments-prod_microsoft.insights_metricalerts_aks-node-cpu-high_-1830417582"}},
		{"alert-vm-restart-ignored.json", 0, want{kind: fleet.KindIgnored, schema: fleet.SchemaCommonAlert,
			typ: TypeActivityLogAlert, status: fleet.ActivitySucceeded, actor: "user@contoso.com", actorType: fleet.ActorUser,
			corr:     "cccc2222-dd33-4444-55ee-666666ffffff",
			resource: "/subscriptions/aaaa0a0a-bb1b-cc2c-dd3d-eeeeee4e4e4e/resourceGroups/test-RG/providers/Microsoft.Compute/virtualMachines/test-VM",
			path:     fleet.PathAlert, delivery: "dddd3333-ee44-5555-66ff-777777aaaaaa", time: "2025-04-15T11:26:21.386Z",
			id: "dddd3333-ee44-5555-66ff-777777aaaaaa"}},

		// The diagnostic-settings export.
		{"export-auto-upgrade.json", 0, want{kind: fleet.KindActivity, schema: fleet.SchemaActivityExport,
			typ: TypeActivityLogRecord, op: fleet.OpPoolUpgradeImage, status: fleet.ActivityStarted, pool: "nodepool1",
			actor: fleet.AKSCaller, actorType: fleet.ActorAKS, corr: "77777777-7777-7777-7777-777777777777",
			resource: pool1, // the scope: the real case, not the upper-cased resourceId
			cluster:  payKey, path: fleet.PathExport, delivery: "99999999-9999-9999-9999-999999999999",
			time: "2026-05-03T02:03:11.52Z"}},
		{"export-auto-upgrade.json", 1, want{kind: fleet.KindActivity, schema: fleet.SchemaActivityExport,
			typ: TypeActivityLogRecord, op: fleet.OpPoolUpgradeImage, status: fleet.ActivitySucceeded, pool: "nodepool1",
			corr:     "77777777-7777-7777-7777-777777777777",
			resource: strings.ToUpper(pool1), // the scope is "…": nothing better than resourceId
			cluster:  payKey, path: fleet.PathExport, delivery: "99999999-9999-9999-9999-999999999999",
			time: "2026-05-03T03:47:52.01Z"}},
		{"export-mixed-batch.json", 0, want{kind: fleet.KindActivity, schema: fleet.SchemaActivityExport,
			typ: TypeActivityLogRecord, op: fleet.OpClusterWrite, status: fleet.ActivitySucceeded,
			actor: "j.okafor@contoso.com", actorType: fleet.ActorUser, corr: "3c4d5e6f-7081-4a92-b3c4-d5e6f7081920",
			resource: payID, cluster: payKey, path: fleet.PathExport, time: "2026-11-19T14:07:33.2816004Z"}},
		{"export-mixed-batch.json", 1, want{kind: fleet.KindIgnored, schema: fleet.SchemaActivityExport,
			typ: TypeActivityLogRecord, status: fleet.ActivitySucceeded, corr: "aaaa6666-bb77-8888-99cc-000000dddddd",
			resource: "/subscriptions/s1/resourceGroups/MSSupportGroup/providers/microsoft.support/supporttickets/123456112305841",
			path:     fleet.PathExport, time: "2019-01-21T22:14:26.9792776Z"}},
		{"export-mixed-batch.json", 2, want{kind: fleet.KindIgnored, schema: fleet.SchemaActivityExport,
			typ: TypeActivityLogRecord, status: "Updated", corr: "0f0cb6b4-804b-4129-b893-70aeeb63997e",
			resource: "/SUBSCRIPTIONS/00000000-0000-0000-0000-000000000000/RESOURCEGROUPS/MY-RESOURCE-GROUP/PROVIDERS/MICROSOFT.COMPUTE/VIRTUALMACHINES/MV-VM-01",
			path:     fleet.PathExport, time: "2020-06-12T13:07:46.766Z"}},
		{"export-mixed-batch.json", 3, want{kind: fleet.KindIgnored, schema: fleet.SchemaActivityExport,
			typ: TypeActivityLogRecord, status: fleet.ActivitySucceeded, corr: "5e6f7081-92a3-4bc4-d5e6-f708192a3b4c",
			resource: strings.ToUpper(payID), cluster: payKey, path: fleet.PathExport, time: "2026-11-19T14:09:02Z"}},
		{"export-storage-lines.jsonl", 1, want{kind: fleet.KindActivity, schema: fleet.SchemaActivityExport,
			typ: TypeActivityLogRecord, op: fleet.OpMaintenanceWrite, status: fleet.ActivitySucceeded,
			maintenance: nodeOSCfg, actor: aliceUPN, actorType: fleet.ActorUser, corr: "d0e1f2a3-b4c5-4d6e-9f70-8a9b0c1d2e3f",
			resource: payID + "/maintenanceConfigurations/" + nodeOSCfg, cluster: payKey, path: fleet.PathExport,
			delivery: "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d", time: "2026-11-19T10:45:02.512Z"}},

		// One activity, three paths (see TestActivitySamePathsOneSignal).
		{"same-activity-eventgrid.json", 0, want{kind: fleet.KindActivity, schema: fleet.SchemaEventGrid,
			typ: "Microsoft.Resources.ResourceWriteSuccess", op: fleet.OpClusterWrite, status: fleet.ActivitySucceeded,
			actor: aliceUPN, actorType: fleet.ActorUser, corr: payCorr, resource: payID, cluster: payKey,
			path: fleet.PathEventGrid, delivery: "5f0a8e2c-7b41-4d93-a6e5-2c8f1b0d9e47", time: "2026-11-20T09:14:03Z"}},
		{"same-activity-alert.json", 0, want{kind: fleet.KindActivity, schema: fleet.SchemaCommonAlert,
			typ: TypeActivityLogAlert, op: fleet.OpClusterWrite, status: fleet.ActivitySucceeded,
			actor: aliceUPN, actorType: fleet.ActorUser, corr: payCorr, resource: payID, cluster: payKey,
			path: fleet.PathAlert, delivery: "8e1c4a7f-3d2b-4e69-9a05-b7c6d5e4f3a2", time: "2026-11-20T09:14:03Z"}},
		{"same-activity-export.json", 0, want{kind: fleet.KindActivity, schema: fleet.SchemaActivityExport,
			typ: TypeActivityLogRecord, op: fleet.OpClusterWrite, status: fleet.ActivitySucceeded,
			actor: aliceUPN, actorType: fleet.ActorUser, corr: payCorr, resource: payID, cluster: payKey,
			path: fleet.PathExport, delivery: "1b2c3d4e-5f60-4718-92a3-b4c5d6e7f809", time: "2026-11-20T09:14:03Z"}},
	}
	for _, tc := range tests {
		t.Run(tc.file+"#"+string(rune('0'+tc.rec)), func(t *testing.T) {
			sig, err := decodeActivityFixture(t, tc.file, tc.rec)
			if err != nil {
				t.Fatalf("got error %v, want none", err)
			}
			w := tc.want
			if sig.Kind != w.kind || sig.Schema != w.schema || sig.Type != w.typ {
				t.Errorf("got Kind %q Schema %q Type %q, want %q %q %q", sig.Kind, sig.Schema, sig.Type, w.kind, w.schema, w.typ)
			}
			if got := clusterKey(sig.Cluster); got != w.cluster {
				t.Errorf("got cluster %q, want %q", got, w.cluster)
			}
			if !sig.Time.Equal(at(t, w.time)) {
				t.Errorf("got Time %v, want %s", sig.Time, w.time)
			}
			if w.kind == fleet.KindActivity && (!strings.HasPrefix(sig.ID, "act-") || sig.Subject != w.resource) {
				t.Errorf("got ID %q Subject %q, want an act- ID and the resource", sig.ID, sig.Subject)
			}
			if w.id != "" && sig.ID != w.id {
				t.Errorf("got ID %q, want %q", sig.ID, w.id)
			}
			a := sig.Activity
			if w.kind == fleet.KindIgnored && w.path == "" {
				if a != nil {
					t.Errorf("got Activity %+v, want none", *a)
				}
				return
			}
			if a == nil {
				t.Fatal("got no Activity")
			}
			if a.Operation != w.op || a.Status != w.status || a.Pool != w.pool || a.Maintenance != w.maintenance {
				t.Errorf("got Operation %q Status %q Pool %q Maintenance %q, want %q %q %q %q",
					a.Operation, a.Status, a.Pool, a.Maintenance, w.op, w.status, w.pool, w.maintenance)
			}
			if a.Actor != w.actor || a.ActorType != w.actorType {
				t.Errorf("got Actor %q (%q), want %q (%q)", a.Actor, a.ActorType, w.actor, w.actorType)
			}
			if a.CorrelationID != w.corr || a.Path != w.path || a.ResourceID != w.resource {
				t.Errorf("got CorrelationID %q Path %q ResourceID %q, want %q %q %q",
					a.CorrelationID, a.Path, a.ResourceID, w.corr, w.path, w.resource)
			}
			if w.delivery != "" && a.DeliveryID != w.delivery {
				t.Errorf("got DeliveryID %q, want %q", a.DeliveryID, w.delivery)
			}
			if !strings.Contains(a.Message, w.msg) || (w.msg == "" && a.Message != "") {
				t.Errorf("got Message %q, want it to contain %q", a.Message, w.msg)
			}
			if a.OperationName == "" {
				t.Error("got no OperationName")
			}
		})
	}
}

// TestActivityEveryFixture holds every accepted activity fixture to the
// basics, so that one added without a table row is still checked.
func TestActivityEveryFixture(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "activity", "*.json*"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 20 {
		t.Fatalf("got %d activity fixtures, want at least 20", len(files))
	}
	for _, f := range files {
		name := filepath.Base(f)
		raw := readFixture(t, filepath.Join("activity", name))
		var sigs []fleet.Signal
		switch {
		case strings.HasPrefix(name, "eventhub-"):
			continue // TestSplitEventHub
		case strings.HasPrefix(name, "alert-") || strings.HasSuffix(name, "-alert.json"):
			sig, err := DecodeAlert(raw)
			if err != nil {
				t.Errorf("%s: got error %v, want none", name, err)
				continue
			}
			sigs = append(sigs, sig)
		case strings.HasPrefix(name, "export-") || strings.HasSuffix(name, "-export.json"):
			recs, err := DecodeExport(raw)
			if err != nil {
				t.Errorf("%s: got error %v, want none", name, err)
				continue
			}
			for _, r := range recs {
				if r.Err == nil {
					sigs = append(sigs, r.Signal)
				}
			}
		default:
			sig, err := Decode(raw)
			if err != nil {
				t.Errorf("%s: got error %v, want none", name, err)
				continue
			}
			sigs = append(sigs, sig)
		}
		for _, sig := range sigs {
			checkActivity(t, name, sig)
		}
	}
}

// checkActivity checks what every accepted activity signal must have.
func checkActivity(t *testing.T, name string, sig fleet.Signal) {
	t.Helper()
	switch sig.Kind {
	case fleet.KindIgnored:
	case fleet.KindActivity:
		a := sig.Activity
		if a == nil || !strings.HasPrefix(sig.ID, "act-") || sig.Time.IsZero() || sig.Cluster.IsZero() || a.Operation == "" {
			t.Errorf("%s: incomplete activity signal: ID %q Time %v Cluster %v Activity %+v", name, sig.ID, sig.Time, sig.Cluster, a)
			return
		}
		if sig.ID != fleet.ActivityID(*a) {
			t.Errorf("%s: got ID %q, want fleet.ActivityID %q", name, sig.ID, fleet.ActivityID(*a))
		}
		if fleet.IsPoolOperation(a.Operation) && !fleet.ValidPoolName(a.Pool) {
			t.Errorf("%s: pool operation with pool %q", name, a.Pool)
		}
		if fleet.IsMaintenanceOperation(a.Operation) && a.Maintenance == "" {
			t.Errorf("%s: maintenance operation without a configuration", name)
		}
	default:
		t.Errorf("%s: got Kind %q, want Activity or Ignored", name, sig.Kind)
	}
}

// TestActivitySamePathsOneSignal: one write of the cluster by one user, seen
// through Event Grid, an activity-log alert and the export, is one signal.
func TestActivitySamePathsOneSignal(t *testing.T) {
	files := []string{"same-activity-eventgrid.json", "same-activity-alert.json", "same-activity-export.json"}
	var sigs []fleet.Signal
	for _, f := range files {
		sig, err := decodeActivityFixture(t, f, 0)
		if err != nil {
			t.Fatalf("%s: got error %v, want none", f, err)
		}
		if sig.Kind != fleet.KindActivity || sig.Activity == nil {
			t.Fatalf("%s: got Kind %q, want Activity", f, sig.Kind)
		}
		sigs = append(sigs, sig)
	}
	first, a0 := sigs[0], *sigs[0].Activity
	paths := map[string]bool{}
	for i, sig := range sigs {
		a := *sig.Activity
		paths[a.Path] = true
		if sig.ID != first.ID {
			t.Errorf("%s: got ID %q, want %q (as %s)", files[i], sig.ID, first.ID, files[0])
		}
		if sig.Cluster.Key() != first.Cluster.Key() || !sig.Time.Equal(first.Time) {
			t.Errorf("%s: got cluster %s at %v, want %s at %v", files[i], sig.Cluster.Key(), sig.Time, first.Cluster.Key(), first.Time)
		}
		if a.Operation != a0.Operation || a.Status != a0.Status || a.Actor != a0.Actor || a.ActorType != a0.ActorType ||
			a.CorrelationID != a0.CorrelationID || a.Pool != a0.Pool {
			t.Errorf("%s: got %s/%s by %s (%s), want %s/%s by %s (%s)", files[i], a.Operation, a.Status, a.Actor, a.ActorType,
				a0.Operation, a0.Status, a0.Actor, a0.ActorType)
		}
	}
	if len(paths) != 3 {
		t.Errorf("got paths %v, want three different ones", paths)
	}
	// The same activity in both Event Grid schemas is one signal too.
	eg, err1 := decodeActivityFixture(t, "eg-cluster-write-success.json", 0)
	ce, err2 := decodeActivityFixture(t, "ce-cluster-write-success.json", 0)
	if err1 != nil || err2 != nil || eg.ID != ce.ID {
		t.Errorf("got IDs %q (%v) and %q (%v), want one", eg.ID, err1, ce.ID, err2)
	}
}

// TestActivityPhasesDiffer: the start and the end of one operation share the
// correlation id but are two signals.
func TestActivityPhasesDiffer(t *testing.T) {
	recs, err := DecodeExport(readFixture(t, filepath.Join("activity", "export-auto-upgrade.json")))
	if err != nil || len(recs) != 2 {
		t.Fatalf("got %d records, error %v; want 2, none", len(recs), err)
	}
	start, end := recs[0].Signal, recs[1].Signal
	if start.Activity.CorrelationID != end.Activity.CorrelationID {
		t.Fatalf("fixture: got correlation ids %q and %q, want one", start.Activity.CorrelationID, end.Activity.CorrelationID)
	}
	if start.ID == end.ID {
		t.Errorf("Started and Succeeded got the same ID %q", start.ID)
	}
	if start.Cluster.Key() != end.Cluster.Key() {
		t.Errorf("got clusters %s and %s, want one (resourceId is upper-cased in one)", start.Cluster.Key(), end.Cluster.Key())
	}

	// Only the status differs here.
	raw := string(readFixture(t, filepath.Join("activity", "same-activity-export.json")))
	started := strings.Replace(strings.Replace(raw, `"resultType": "Success"`, `"resultType": "Start"`, 1),
		`"resultSignature": "Succeeded.OK"`, `"resultSignature": "Started."`, 1)
	a, _ := DecodeExport([]byte(raw))
	b, _ := DecodeExport([]byte(started))
	if len(a) != 1 || len(b) != 1 || a[0].Err != nil || b[0].Err != nil {
		t.Fatalf("got %+v and %+v, want one record each", a, b)
	}
	if b[0].Signal.Activity.Status != fleet.ActivityStarted || a[0].Signal.ID == b[0].Signal.ID {
		t.Errorf("got status %q and IDs %q, %q; want Started and two IDs", b[0].Signal.Activity.Status, a[0].Signal.ID, b[0].Signal.ID)
	}
}

// TestActivityOperationCase: the activity log spells operation names and
// resource IDs in any case; they classify alike and make one ID.
func TestActivityOperationCase(t *testing.T) {
	pool := "/subscriptions/" + paySub + "/resourceGroups/rg-payments-prod/providers/Microsoft.ContainerService/managedClusters/aks-payments-weu/agentPools/userpool"
	variants := []struct{ op, resource string }{
		{"Microsoft.ContainerService/managedClusters/agentPools/write", pool},
		{"Microsoft.ContainerService/managedClusters/agentpools/write", strings.Replace(pool, "agentPools", "agentpools", 1)},
		{"MICROSOFT.CONTAINERSERVICE/MANAGEDCLUSTERS/AGENTPOOLS/WRITE", strings.ToUpper(pool)},
		{"microsoft.containerservice/managedclusters/agentpools/write", strings.ToLower(pool)},
	}
	var id string
	for i, v := range variants {
		rec := `{"time":"2026-11-19T13:20:11Z","resourceId":"` + v.resource + `","operationName":"` + v.op +
			`","resultType":"Success","correlationId":"1f2a3b4c-5d6e-4f70-8b9c-0d1e2f3a4b5c"}`
		recs, err := DecodeExport([]byte(rec))
		if err != nil || len(recs) != 1 || recs[0].Err != nil {
			t.Fatalf("%s: got %+v, %v; want one record", v.op, recs, err)
		}
		sig := recs[0].Signal
		if sig.Kind != fleet.KindActivity || sig.Activity.Operation != fleet.OpPoolWrite || sig.Activity.Pool != "userpool" ||
			sig.Cluster.Key() != payKey {
			t.Errorf("%s: got Kind %q Operation %q Pool %q cluster %s", v.op, sig.Kind, sig.Activity.Operation,
				sig.Activity.Pool, sig.Cluster.Key())
		}
		if i == 0 {
			id = sig.ID
		} else if sig.ID != id {
			t.Errorf("%s: got ID %q, want %q", v.op, sig.ID, id)
		}
	}
}

func TestActivityRejects(t *testing.T) {
	tests := []struct {
		file      string
		decoder   string // "decode", "alert", "export" or "split"
		wantIs    []error
		wantInMsg string
	}{
		{file: "not-json.txt", decoder: "alert", wantInMsg: "alert is not valid JSON"},
		{file: "not-json.txt", decoder: "export", wantInMsg: "message is not valid JSON"},
		{file: "not-json.txt", decoder: "split", wantInMsg: "Event Hub binding value is not valid JSON"},
		{file: "alert-no-alert-context.json", decoder: "alert", wantInMsg: "data.alertContext is missing"},
		{file: "alert-legacy-schema.json", decoder: "alert",
			wantInMsg: `schemaId "Microsoft.Insights/activityLogs": configure the action group's webhook with the common alert schema`},
		{file: "alert-no-operation-name.json", decoder: "alert",
			wantInMsg: "data.alertContext.operationName is missing and so is data.alertContext.authorization.action"},
		{file: "alert-no-time.json", decoder: "alert",
			wantInMsg: "data.alertContext.eventTimestamp is missing and so is data.essentials.firedDateTime"},
		{file: "alert-pool-op-on-cluster.json", decoder: "alert",
			wantInMsg: "names no agent pool, want …/agentPools/<name> for PoolUpgradeImage"},
		{file: "alert-array.json", decoder: "alert", wantInMsg: "alert is a JSON array, want an object"},
		{file: "eg-cluster-write-on-vm.json", decoder: "decode", wantIs: []error{fleet.ErrInvalidResourceID},
			wantInMsg: "data.resourceUri of ClusterWrite: not a managed cluster resource ID"},
		{file: "eg-pool-name-invalid.json", decoder: "decode", wantInMsg: `"user_pool-1" is not a valid agent pool name`},
		{file: "ce-data-array.json", decoder: "decode", wantInMsg: "data is a JSON array, want an object"},
		{file: "export-records-object.json", decoder: "export", wantInMsg: "records is a JSON object, want an array"},
		{file: "export-array.json", decoder: "export", wantInMsg: "message is a JSON array"},
	}
	for _, tc := range tests {
		t.Run(tc.decoder+"/"+tc.file, func(t *testing.T) {
			raw := readFixture(t, filepath.Join("activity", "reject", tc.file))
			var err error
			var sig fleet.Signal
			switch tc.decoder {
			case "decode":
				sig, err = Decode(raw)
			case "alert":
				sig, err = DecodeAlert(raw)
			case "export":
				var recs []ExportRecord
				recs, err = DecodeExport(raw)
				if err == nil {
					t.Fatalf("got %d records, want an error", len(recs))
				}
			case "split":
				_, err = SplitEventHub(raw)
			}
			if err == nil {
				t.Fatalf("got no error, want one (signal %+v)", sig)
			}
			for _, target := range append([]error{ErrMalformed}, tc.wantIs...) {
				if !errors.Is(err, target) {
					t.Errorf("got error %q, want it to match %q", err, target)
				}
			}
			if !strings.Contains(err.Error(), tc.wantInMsg) {
				t.Errorf("got error %q, want it to contain %q", err, tc.wantInMsg)
			}
			if sig.Kind != "" {
				t.Errorf("got Kind %q on a rejected input, want none", sig.Kind)
			}
		})
	}
}

// TestDecodeAlertPartial: a rejected alert still says what it was.
func TestDecodeAlertPartial(t *testing.T) {
	sig, err := DecodeAlert(readFixture(t, filepath.Join("activity", "reject", "alert-pool-op-on-cluster.json")))
	if !errors.Is(err, ErrMalformed) {
		t.Fatalf("got error %v, want ErrMalformed", err)
	}
	if sig.Schema != fleet.SchemaCommonAlert || sig.Type != TypeActivityLogAlert || !strings.HasSuffix(sig.Source, "/aks-node-image-upgrade") ||
		sig.Subject != payID || sig.Cluster.Key() != payKey {
		t.Errorf("got Schema %q Type %q Source %q Subject %q Cluster %v", sig.Schema, sig.Type, sig.Source, sig.Subject, sig.Cluster)
	}
}

func TestSplitEventHub(t *testing.T) {
	record := `{"records":[{"time":"2026-11-19T13:20:11Z","operationName":"Microsoft.Storage/storageAccounts/write"}]}`
	quoted, _ := json.Marshal(record)
	tests := []struct {
		name    string
		in      string
		want    []string // the messages, compacted
		wantErr string
	}{
		{name: "array of strings", in: `[` + string(quoted) + `,` + string(quoted) + `]`, want: []string{record, record}},
		{name: "array of objects", in: `[` + record + `, {"records":[]}]`, want: []string{record, `{"records":[]}`}},
		{name: "single object", in: record, want: []string{record}},
		{name: "string holding an object", in: string(quoted), want: []string{record}},
		{name: "empty array", in: `[]`, want: []string{}},
		{name: "number", in: `42`, wantErr: "a JSON number"},
		{name: "text", in: `"Records arrived"`, wantErr: "a JSON string"},
		{name: "null", in: `null`, wantErr: "a JSON null"},
		{name: "empty", in: ``, wantErr: "empty"},
		{name: "broken", in: `[{"records":[}`, wantErr: "not valid JSON"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := SplitEventHub([]byte(tc.in))
			if tc.wantErr != "" {
				if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got error %v, want ErrMalformed containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("got error %v, want none", err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d messages, want %d", len(got), len(tc.want))
			}
			for i := range got {
				if compact(t, got[i]) != compact(t, []byte(tc.want[i])) {
					t.Errorf("message %d: got %s, want %s", i, got[i], tc.want[i])
				}
			}
		})
	}

	// As the host sends it: a JSON string holding an array of message strings.
	msgs, err := SplitEventHub(readFixture(t, filepath.Join("activity", "eventhub-binding-string.json")))
	if err != nil || len(msgs) != 2 {
		t.Fatalf("got %d messages, error %v; want 2, none", len(msgs), err)
	}
	var kinds []fleet.SignalKind
	for i, m := range msgs {
		recs, err := DecodeExport(m)
		if err != nil || len(recs) != 1 || recs[0].Err != nil {
			t.Fatalf("message %d: got %+v, %v; want one record", i, recs, err)
		}
		kinds = append(kinds, recs[0].Signal.Kind)
	}
	if kinds[0] != fleet.KindActivity || kinds[1] != fleet.KindIgnored {
		t.Errorf("got kinds %v, want [Activity Ignored]", kinds)
	}
}

func compact(t *testing.T, b []byte) string {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("not JSON: %s", b)
	}
	out, _ := json.Marshal(v)
	return string(out)
}

func TestDecodeExportBatch(t *testing.T) {
	recs, err := DecodeExport(readFixture(t, filepath.Join("activity", "export-mixed-batch.json")))
	if err != nil {
		t.Fatalf("got error %v, want none", err)
	}
	count := map[fleet.SignalKind]int{}
	var bad []ExportRecord
	for i, r := range recs {
		if r.Index != i || len(r.Raw) == 0 {
			t.Errorf("record %d: got Index %d and %d raw bytes", i, r.Index, len(r.Raw))
		}
		if r.Err != nil {
			bad = append(bad, r)
			continue
		}
		count[r.Signal.Kind]++
	}
	if count[fleet.KindActivity] != 1 || count[fleet.KindIgnored] < 2 || len(bad) != 1 {
		t.Fatalf("got %v and %d errors, want 1 activity, 2+ ignored, 1 error", count, len(bad))
	}
	e := bad[0]
	if !errors.Is(e.Err, ErrMalformed) || !strings.Contains(e.Err.Error(), "time is missing") {
		t.Errorf("got error %v, want ErrMalformed naming the missing time", e.Err)
	}
	if e.Signal.Kind != "" || e.Signal.Type != TypeActivityLogRecord || e.Signal.Subject == "" {
		t.Errorf("got rejection Kind %q Type %q Subject %q, want none, the record type, the resource", e.Signal.Kind, e.Signal.Type, e.Signal.Subject)
	}
}

func TestDecodeExportForms(t *testing.T) {
	aks := `{"time":"2026-11-19T13:20:11Z","resourceId":"` + strings.ToUpper(payID) + `/AGENTPOOLS/USERPOOL",` +
		`"operationName":"MICROSOFT.CONTAINERSERVICE/MANAGEDCLUSTERS/AGENTPOOLS/DELETE","resultType":"Success",` +
		`"correlationId":"1f2a3b4c-5d6e-4f70-8b9c-0d1e2f3a4b5c","durationMs":"812"}`
	other := `{"time":"2026-11-19T13:20:12Z","resourceId":"/subscriptions/` + paySub + `","operationName":"Microsoft.Resources/deployments/write","resultType":"Start"}`
	tests := []struct {
		name    string
		in      string
		want    []string // per record: a Kind, or "error: <text>"
		wantErr string
	}{
		{name: "records", in: `{"records":[` + aks + `,` + other + `]}`, want: []string{"Activity", "Ignored"}},
		{name: "records in a string", in: `{"records":` + quote(`[`+aks+`]`) + `}`, want: []string{"Activity"}},
		{name: "one record", in: aks, want: []string{"Activity"}},
		{name: "message in a string", in: quote(`{"records":[` + other + `]}`), want: []string{"Ignored"}},
		{name: "JSON Lines", in: other + "\n" + aks + "\r\n\n", want: []string{"Ignored", "Activity"}},
		{name: "JSON Lines with a bad line", in: other + "\n{\"time\":\n" + aks + "\n",
			want: []string{"Ignored", "error: record is not valid JSON", "Activity"}},
		{name: "record not an object", in: `{"records":[42,` + aks + `]}`,
			want: []string{"error: record is a JSON number, want an object", "Activity"}},
		{name: "operationName an object", in: `{"records":[{"time":"2026-11-19T13:20:11Z","operationName":{"value":7}}]}`,
			want: []string{"error: operationName: want a string or an object with a string value"}},
		{name: "REST operationName", in: `{"records":[{"time":"2026-11-19T13:20:11Z","resourceId":"` + payID +
			`","operationName":{"value":"Microsoft.ContainerService/managedClusters/write"},"resultType":"Success"}]}`,
			want: []string{"Activity"}},
		{name: "operation from identity", in: `{"records":[{"time":"2026-11-19T13:20:11Z","resourceId":"` + payID +
			`","identity":{"authorization":{"action":"Microsoft.ContainerService/managedClusters/delete"}},"resultType":"Success"}]}`,
			want: []string{"Activity"}},
		{name: "bad time", in: `{"records":[{"time":"soon","resourceId":"` + payID + `","operationName":"Microsoft.ContainerService/managedClusters/write"}]}`,
			want: []string{`error: time "soon" is not an RFC 3339 time`}},
		{name: "not a cluster", in: `{"records":[{"time":"2026-11-19T13:20:11Z","resourceId":"/subscriptions/` + paySub +
			`/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1","operationName":"Microsoft.ContainerService/managedClusters/write"}]}`,
			want: []string{"error: resourceId of ClusterWrite: not a managed cluster resource ID"}},
		{name: "empty records", in: `{"records":[]}`, want: []string{}},
		{name: "garbage lines", in: "this is\nnot JSON\n", wantErr: "message is not valid JSON"},
		{name: "empty", in: "", wantErr: "message is empty"},
		{name: "number", in: "7", wantErr: "message is a JSON number"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			recs, err := DecodeExport([]byte(tc.in))
			if tc.wantErr != "" {
				if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got error %v, want ErrMalformed containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("got error %v, want none", err)
			}
			if len(recs) != len(tc.want) {
				t.Fatalf("got %d records, want %d", len(recs), len(tc.want))
			}
			for i, r := range recs {
				if msg, ok := strings.CutPrefix(tc.want[i], "error: "); ok {
					if !errors.Is(r.Err, ErrMalformed) || !strings.Contains(r.Err.Error(), msg) || r.Signal.Kind != "" {
						t.Errorf("record %d: got Kind %q error %v, want ErrMalformed containing %q", i, r.Signal.Kind, r.Err, msg)
					}
					continue
				}
				if r.Err != nil || string(r.Signal.Kind) != tc.want[i] {
					t.Errorf("record %d: got Kind %q error %v, want %s", i, r.Signal.Kind, r.Err, tc.want[i])
					continue
				}
				checkActivity(t, tc.name, r.Signal)
			}
		})
	}
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func TestActorOf(t *testing.T) {
	c := func(s string) claims { return claimsOf(json.RawMessage(s)) }
	tests := []struct {
		name, caller, claims, principalType string
		want, wantType                      string
	}{
		{"AKS as caller", "microsoft.containerservice", `{}`, "", fleet.AKSCaller, fleet.ActorAKS},
		{"AKS as spn claim", "", `{"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/spn":"Microsoft.ContainerService"}`, "",
			fleet.AKSCaller, fleet.ActorAKS},
		{"upn claim wins over appid", "", `{"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn":"alice@contoso.com","appid":"` + pipeApp + `"}`,
			"User", aliceUPN, fleet.ActorUser},
		{"short upn claim", "", `{"upn":"bob@contoso.com"}`, "", "bob@contoso.com", fleet.ActorUser},
		{"claims in a string", "", quote(`{"upn":"bob@contoso.com"}`), "", "bob@contoso.com", fleet.ActorUser},
		{"caller UPN, empty claims", aliceUPN, `"{}"`, "", aliceUPN, fleet.ActorUser},
		{"caller UPN, claims an array", aliceUPN, `[]`, "", aliceUPN, fleet.ActorUser},
		{"unique_name", "", `{"unique_name":"carol@contoso.com"}`, "", "carol@contoso.com", fleet.ActorUser},
		{"app id", "1e2d3c4b-0000-4000-8000-000000000001", `{"appid":"` + pipeApp + `"}`, "", pipeApp, fleet.ActorServicePrincipal},
		{"principal type, caller", "1e2d3c4b-0000-4000-8000-000000000001", `""`, "ServicePrincipal",
			"1e2d3c4b-0000-4000-8000-000000000001", fleet.ActorServicePrincipal},
		{"object id only", "", `{"http://schemas.microsoft.com/identity/claims/objectidentifier":"1e2d3c4b-0000-4000-8000-000000000002"}`, "",
			"1e2d3c4b-0000-4000-8000-000000000002", ""},
		{"name only", "", `{"name":"Release Pipeline"}`, "", "Release Pipeline", ""},
		{"nothing", "", `{}`, "", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, gotType := actorOf(tc.caller, c(tc.claims), tc.principalType)
			if got != tc.want || gotType != tc.wantType {
				t.Errorf("got %q (%q), want %q (%q)", got, gotType, tc.want, tc.wantType)
			}
		})
	}
}

func TestReadableMessage(t *testing.T) {
	long := strings.Repeat("x", 3000)
	tests := []struct{ name, in, want string }{
		{"absent", ``, ""},
		{"plain text", `"Operation was canceled by the user."`, "Operation was canceled by the user."},
		{"ARM error in a string", quote(`{"status":"Failed","error":{"code":"QuotaExceeded","message":"Operation could not be completed as it results in exceeding approved standardDSv5Family Cores quota."}}`),
			"QuotaExceeded: Operation could not be completed as it results in exceeding approved standardDSv5Family Cores quota."},
		{"code and message object", `{"code":"OperationNotAllowed","message":"Another operation is in progress"}`,
			"OperationNotAllowed: Another operation is in progress"},
		{"text ending in JSON", quote(`Upgrade Failed, error: {"code":"UpgradeFailed","message":"Drain node failed"}`),
			"Upgrade Failed, error: UpgradeFailed: Drain node failed"},
		{"text with braces but no JSON", `"pods {a,b} not ready"`, "pods {a,b} not ready"},
		{"JSON without an error", quote(`{"status":"Succeeded"}`), ""},
		{"number", `404`, "404"},
		{"long", quote(long), long[:maxMessage] + "…"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := readableMessage(json.RawMessage(tc.in)); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// TestActivityErrorLength checks that errors repeat at most a few hundred
// bytes of a hostile input.
func TestActivityErrorLength(t *testing.T) {
	long := strings.Repeat("y", 10000)
	alert := func(ctx string) []byte {
		return []byte(`{"schemaId":"azureMonitorCommonAlertSchema","data":{"essentials":{"signalType":"Activity Log","alertId":"a"},"alertContext":` + ctx + `}}`)
	}
	errs := []func() error{
		func() error { _, err := DecodeAlert([]byte(`{"schemaId":"` + long + `"}`)); return err },
		func() error {
			_, err := DecodeAlert(alert(`{"operationName":"Microsoft.ContainerService/managedClusters/write","eventTimestamp":"` + long + `"}`))
			return err
		},
		func() error {
			_, err := DecodeAlert(alert(`{"operationName":"Microsoft.ContainerService/managedClusters/write","eventTimestamp":"2026-11-19T13:20:11Z","authorization":{"scope":"/subscriptions/` + long + `"}}`))
			return err
		},
		func() error {
			recs, _ := DecodeExport([]byte(`{"time":"` + long + `","resourceId":"` + payID + `","operationName":"Microsoft.ContainerService/managedClusters/write"}`))
			return recs[0].Err
		},
		func() error {
			recs, _ := DecodeExport([]byte(`{"time":"2026-11-19T13:20:11Z","resourceId":"` + payID + `/agentPools/` + long + `","operationName":"Microsoft.ContainerService/managedClusters/agentPools/write"}`))
			return recs[0].Err
		},
	}
	for i, f := range errs {
		err := f()
		if err == nil {
			t.Errorf("input %d: got no error, want one", i)
			continue
		}
		if n := len(err.Error()); n > 500 {
			t.Errorf("input %d: got a %d-byte error message, want at most 500: %.120s…", i, n, err)
		}
	}
}
