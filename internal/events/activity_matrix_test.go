package events

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
)

// Every tracked operation decodes alike on every path. The three
// same-activity fixtures are re-aimed at each operation's resource (with the
// case each path uses: Event Grid and alerts as ARM spells it, the export in
// upper case), and each path must give the same operation, pool or
// maintenance configuration, status and signal id.
func TestEveryOperationOnEveryPath(t *testing.T) {
	ops := []struct {
		name, child, want, pool, maint string
	}{
		{"managedClusters/write", "", fleet.OpClusterWrite, "", ""},
		{"managedClusters/delete", "", fleet.OpClusterDelete, "", ""},
		{"managedClusters/abort/action", "", fleet.OpClusterAbort, "", ""},
		{"managedClusters/agentPools/write", "/agentPools/userpool", fleet.OpPoolWrite, "userpool", ""},
		{"managedClusters/agentpools/delete", "/agentPools/userpool", fleet.OpPoolDelete, "userpool", ""},
		{"managedClusters/agentPools/upgradeNodeImageVersion/action", "/agentPools/nodepool1", fleet.OpPoolUpgradeImage, "nodepool1", ""},
		{"managedClusters/agentPools/upgradeNodeImageVersion/write", "/agentPools/nodepool1", fleet.OpPoolUpgradeImage, "nodepool1", ""},
		{"managedClusters/agentPools/abort/action", "/agentPools/nodepool1", fleet.OpPoolAbort, "nodepool1", ""},
		{"managedClusters/maintenanceConfigurations/write", "/maintenanceConfigurations/" + nodeOSCfg, fleet.OpMaintenanceWrite, "", nodeOSCfg},
		{"managedClusters/maintenanceConfigurations/delete", "/maintenanceConfigurations/" + nodeOSCfg, fleet.OpMaintenanceDelete, "", nodeOSCfg},
	}
	paths := []struct {
		fixture string
		aim     func(t *testing.T, raw []byte, op, resource string) []byte
		decode  func(raw []byte) (fleet.Signal, error)
	}{
		{"same-activity-eventgrid.json", aimEventGrid, Decode},
		{"same-activity-alert.json", aimAlert, DecodeAlert},
		{"same-activity-export.json", aimExport, func(raw []byte) (fleet.Signal, error) {
			recs, err := DecodeExport(raw)
			if err != nil || len(recs) != 1 {
				return fleet.Signal{}, err
			}
			return recs[0].Signal, recs[0].Err
		}},
	}
	for _, op := range ops {
		t.Run(op.want+"/"+op.name, func(t *testing.T) {
			opName := "Microsoft.ContainerService/" + op.name
			ids := map[string]bool{}
			for _, p := range paths {
				raw := p.aim(t, readFixture(t, filepath.Join("activity", p.fixture)), opName, payID+op.child)
				sig, err := p.decode(raw)
				if err != nil {
					t.Fatalf("%s: %v", p.fixture, err)
				}
				a := sig.Activity
				if sig.Kind != fleet.KindActivity || a == nil || a.Operation != op.want || a.Pool != op.pool || a.Maintenance != op.maint ||
					a.Status != fleet.ActivitySucceeded || sig.Cluster.Key() != payKey || a.Actor != aliceUPN {
					t.Fatalf("%s: %s %+v on %s", p.fixture, sig.Kind, a, sig.Cluster)
				}
				ids[sig.ID] = true
			}
			if len(ids) != 1 {
				t.Errorf("three paths gave %d signal ids, want one", len(ids))
			}
		})
	}
}

func mustObject(t *testing.T, raw []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func aimEventGrid(t *testing.T, raw []byte, op, resource string) []byte {
	ev := mustObject(t, raw)
	kind := "Write"
	switch {
	case strings.HasSuffix(op, "/action"):
		kind = "Action"
	case strings.HasSuffix(op, "/delete"):
		kind = "Delete"
	}
	ev["eventType"], ev["subject"] = "Microsoft.Resources.Resource"+kind+"Success", resource
	data := ev["data"].(map[string]any)
	data["operationName"], data["resourceUri"] = op, resource
	if auth, ok := data["authorization"].(map[string]any); ok {
		auth["action"], auth["scope"] = op, resource
	}
	return mustJSON(t, ev)
}

func aimAlert(t *testing.T, raw []byte, op, resource string) []byte {
	al := mustObject(t, raw)
	data := al["data"].(map[string]any)
	data["essentials"].(map[string]any)["alertTargetIDs"] = []any{strings.ToLower(resource)}
	ctx := data["alertContext"].(map[string]any)
	ctx["operationName"] = op
	ctx["authorization"] = map[string]any{"action": op, "scope": resource}
	if props, ok := ctx["properties"].(map[string]any); ok {
		props["entity"], props["message"] = resource, op
	}
	return mustJSON(t, al)
}

func aimExport(t *testing.T, raw []byte, op, resource string) []byte {
	msg := mustObject(t, raw)
	rec := msg["records"].([]any)[0].(map[string]any)
	rec["operationName"], rec["resourceId"] = strings.ToUpper(op), strings.ToUpper(resource)
	if id, ok := rec["identity"].(map[string]any); ok {
		id["authorization"] = map[string]any{"action": op, "scope": resource}
	}
	if props, ok := rec["properties"].(map[string]any); ok {
		if _, has := props["entity"]; has {
			props["entity"] = resource
		}
	}
	msg["records"] = []any{rec}
	return mustJSON(t, msg)
}
