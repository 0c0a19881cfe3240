package inventory

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
)

// The times the two kubectl fixtures were taken (see testdata/README.md).
var (
	day1 = time.Date(2026, 10, 5, 8, 0, 0, 0, time.UTC)
	day2 = time.Date(2026, 10, 6, 8, 0, 0, 0, time.UTC)
)

const (
	ubuntu   = "AKSUbuntu-2204gen2containerd-202410.27.0"
	ubuntuSP = "AKSUbuntu-2204gen2containerd-202410.27.0-2024.12.01"
	azlOld   = "AKSAzureLinux-V3gen2-202609.15.0"
	azlNew   = "AKSAzureLinux-V3gen2-202610.02.0"
	windows  = "AKSWindows-2022-containerd-20348.3692.250518"
)

func system(i int, version string) fleet.NodeObservation {
	kernel := "5.15.0-1074-azure"
	if version == ubuntuSP {
		kernel = "5.15.0-1075-azure"
	}
	return fleet.NodeObservation{
		Name: fmt.Sprintf("aks-system-12345678-vmss%06d", i), Pool: "system", NodeImageVersion: version,
		KernelVersion: kernel, OSImage: "Ubuntu 22.04.5 LTS", KubeletVersion: "v1.31.11",
		ContainerRuntime: "containerd://1.7.22-1", OSType: "linux", Ready: "True",
	}
}

func azlinux(i int, version, ready string, quarantined bool) fleet.NodeObservation {
	kernel, runtime := "6.6.96.2-1.azl3", "containerd://1.7.27"
	if version == azlNew {
		kernel, runtime = "6.6.104.2-1.azl3", "containerd://1.7.28"
	}
	return fleet.NodeObservation{
		Name: fmt.Sprintf("aks-azlinux-23456789-vmss%06d", i), Pool: "azlinux", NodeImageVersion: version,
		KernelVersion: kernel, OSImage: "Microsoft Azure Linux 3.0", KubeletVersion: "v1.31.11",
		ContainerRuntime: runtime, OSType: "linux", Quarantined: quarantined, Ready: ready,
		Unschedulable: quarantined, // AKS cordons the nodes it quarantines
	}
}

func win(i int) fleet.NodeObservation {
	return fleet.NodeObservation{
		Name: fmt.Sprintf("akswin%06d", i), Pool: "win", NodeImageVersion: windows,
		KernelVersion: "10.0.20348.3692", OSImage: "Windows Server 2022 Datacenter", KubeletVersion: "v1.31.11",
		ContainerRuntime: "containerd://1.7.20+azure", OSType: "windows", Ready: "True",
	}
}

// The cluster of nodes-older-labels.json and nodes-mixed-generations.json
// (see testdata/README.md): pools created in 2021 carry only agentpool=<pool>.
const (
	legacyUbuntu = "AKSUbuntu-1804gen2containerd-2021.05.19"
	legacyWinImg = "AKSWindows-2019-17763.1577.201111"
	ubuntu2022   = "AKSUbuntu-1804gen2containerd-2022.08.29"
)

var aciSkipped = SkippedNode{Name: "virtual-node-aci-linux", Reason: "virtual node (type=virtual-kubelet), not an AKS agent node"}

func legacy(i int) fleet.NodeObservation {
	return fleet.NodeObservation{
		Name: fmt.Sprintf("aks-agentpool-20474252-vmss%06d", i), Pool: "agentpool", NodeImageVersion: legacyUbuntu,
		KernelVersion: "5.4.0-1047-azure", OSImage: "Ubuntu 18.04.5 LTS", KubeletVersion: "v1.20.7",
		ContainerRuntime: "containerd://1.4.4+azure", OSType: "linux", Ready: "True",
	}
}

func legacyWin() fleet.NodeObservation {
	return fleet.NodeObservation{
		Name: "aksnpwin000000", Pool: "npwin", NodeImageVersion: legacyWinImg, KernelVersion: "10.0.17763.1577",
		OSImage: "Windows Server 2019 Datacenter", KubeletVersion: "v1.20.7", ContainerRuntime: "docker://19.3.14",
		OSType: "windows", Ready: "True",
	}
}

func apps2022(i int) fleet.NodeObservation {
	return fleet.NodeObservation{
		Name: fmt.Sprintf("aks-apps2022-41526374-vmss%06d", i), Pool: "apps2022", NodeImageVersion: ubuntu2022,
		KernelVersion: "5.4.0-1089-azure", OSImage: "Ubuntu 18.04.6 LTS", KubeletVersion: "v1.22.11",
		ContainerRuntime: "containerd://1.5.13+azure-1", OSType: "linux", Ready: "True",
	}
}

var hashedID = regexp.MustCompile(`^nodes-[0-9a-f]{32}$`)

func read(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeFixtures(t *testing.T) {
	tests := []struct {
		name string
		file string
		now  time.Time
		want Result // Snapshot.ID is checked against wantID
		// wantID is the exact ID, or "hash" for a content hash.
		wantID string
	}{
		{
			name: "kubectl mixed cluster, day 1", file: "nodes-mixed.json", now: day1, wantID: "hash",
			want: Result{Form: FormList, Skipped: []SkippedNode{aciSkipped}, Snapshot: fleet.NodeSnapshot{
				ObservedAt: day1, Complete: true, Reporter: ReporterKubectl,
				Nodes: []fleet.NodeObservation{
					azlinux(3, azlOld, "True", false),
					azlinux(4, azlOld, "True", true),
					azlinux(6, azlNew, "True", false),
					azlinux(7, azlNew, "False", false),
					system(0, ubuntu),
					system(1, ubuntu),
					system(2, ubuntuSP),
					win(0),
					win(1),
				},
			}},
		},
		{
			name: "kubectl mixed cluster, day 2", file: "nodes-mixed-next.json", now: day2, wantID: "hash",
			want: Result{Form: FormList, Skipped: []SkippedNode{aciSkipped}, Snapshot: fleet.NodeSnapshot{
				ObservedAt: day2, Complete: true, Reporter: ReporterKubectl,
				Nodes: []fleet.NodeObservation{
					azlinux(3, azlNew, "True", false),
					azlinux(6, azlNew, "True", false),
					azlinux(7, azlNew, "True", false),
					azlinux(8, azlNew, "True", false),
					system(0, ubuntu),
					system(1, ubuntuSP),
					system(2, ubuntuSP),
					win(0),
					win(1),
				},
			}},
		},
		{
			name: "older labels: pool from agentpool, legacy image versions, Windows on Docker", file: "nodes-older-labels.json", now: day1, wantID: "hash",
			want: Result{Form: FormList, Skipped: []SkippedNode{aciSkipped}, Snapshot: fleet.NodeSnapshot{
				ObservedAt: day1, Complete: true, Reporter: ReporterKubectl,
				Nodes: []fleet.NodeObservation{legacy(0), legacy(1), legacy(2), legacyWin()},
			}},
		},
		{
			name: "mixed label generations: every node kept or named", file: "nodes-mixed-generations.json", now: day1, wantID: "hash",
			want: Result{Form: FormList,
				Skipped: []SkippedNode{
					{Name: "edge-burst-02", Reason: `pool "edge-burst-pool" is not an AKS agent pool name (1 to 12 of a-z 0-9)`},
					{Name: "gpu-selfhosted-01", Reason: "neither the kubernetes.azure.com/agentpool nor the agentpool label: not an AKS agent node"},
					aciSkipped,
				},
				Snapshot: fleet.NodeSnapshot{
					ObservedAt: day1, Complete: true, Reporter: ReporterKubectl,
					Nodes: []fleet.NodeObservation{legacy(0), legacy(1), legacy(2), apps2022(0), apps2022(1), legacyWin()},
				}},
		},
		{
			name: "API page with a continue token is partial", file: "nodelist-page.json", now: day1, wantID: "hash",
			want: Result{Form: FormNodeList, Snapshot: fleet.NodeSnapshot{
				ObservedAt: day1, Complete: false, Reporter: ReporterKubectl,
				Nodes: []fleet.NodeObservation{
					{Name: "aks-nodepool1-31415926-vmss000000", Pool: "nodepool1", NodeImageVersion: "AKSUbuntu-2404gen2containerd-202609.22.0",
						KernelVersion: "6.8.0-1036-azure", OSImage: "Ubuntu 24.04.3 LTS", KubeletVersion: "v1.33.3",
						ContainerRuntime: "containerd://2.1.4-1", OSType: "linux", Ready: "True"},
					{Name: "aks-nodepool1-31415926-vmss000001", Pool: "nodepool1", NodeImageVersion: "AKSUbuntu-2404gen2containerd-202609.22.0",
						KernelVersion: "6.8.0-1036-azure", OSImage: "Ubuntu 24.04.3 LTS", KubeletVersion: "v1.33.3",
						ContainerRuntime: "containerd://2.1.4-1", OSType: "linux", Ready: "True"},
				},
			}},
		},
		{
			name: "compact form", file: "compact.json", now: day1, wantID: "nr-5f0c2a9e7d3b4c1a8e6f0b2d4a6c8e10",
			want: Result{Form: FormCompact, Snapshot: fleet.NodeSnapshot{
				ObservedAt: time.Date(2026, 10, 5, 8, 0, 3, 512e6, time.UTC), Complete: true, Reporter: "node-reporter/0.1.0",
				Nodes: []fleet.NodeObservation{
					{Name: "aks-system-12345678-vmss000000", Pool: "system", NodeImageVersion: ubuntu, KernelVersion: "5.15.0-1074-azure",
						OSImage: "Ubuntu 22.04.5 LTS", KubeletVersion: "v1.30.5", ContainerRuntime: "containerd://1.7.22-1", OSType: "linux", Ready: "True"},
					{Name: "aks-system-12345678-vmss000001", Pool: "system", NodeImageVersion: ubuntuSP, KernelVersion: "5.15.0-1075-azure",
						OSImage: "Ubuntu 22.04.5 LTS", KubeletVersion: "v1.30.5", ContainerRuntime: "containerd://1.7.22-1", OSType: "linux",
						Quarantined: true, Ready: "True"},
					{Name: "akswin000000", Pool: "win", NodeImageVersion: windows, KernelVersion: "10.0.20348.3692",
						OSImage: "Windows Server 2022 Datacenter", KubeletVersion: "v1.30.5", ContainerRuntime: "containerd://1.7.20+azure",
						OSType: "windows", Ready: "Unknown"},
				},
			}},
		},
		{
			name: "compact defaults: complete, now, lower-case pool, unknown version verbatim", file: "compact-minimal.json", now: day1, wantID: "hash",
			want: Result{Form: FormCompact, Snapshot: fleet.NodeSnapshot{
				ObservedAt: day1, Complete: true,
				Nodes: []fleet.NodeObservation{
					{Name: "aks-edge-11223344-vmss000000", Pool: "edge", NodeImageVersion: "CustomUbuntu-2204-nightly"},
					{Name: "aks-edge-11223344-vmss000001", Pool: "edge", OSType: "linux", Ready: "True"},
				},
			}},
		},
		{
			name: "compact partial and empty, observedAt with an offset", file: "compact-partial.json", now: day1, wantID: "hash",
			want: Result{Form: FormCompact, Snapshot: fleet.NodeSnapshot{
				ObservedAt: time.Date(2026, 10, 5, 8, 0, 0, 0, time.UTC), Complete: false, Reporter: "runbook",
				Nodes: []fleet.NodeObservation{},
			}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Decode(read(t, tc.file), tc.now)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if tc.wantID == "hash" {
				if !hashedID.MatchString(got.Snapshot.ID) {
					t.Errorf("ID %q, want nodes-<32 hex>", got.Snapshot.ID)
				}
			} else if got.Snapshot.ID != tc.wantID {
				t.Errorf("ID %q, want %q", got.Snapshot.ID, tc.wantID)
			}
			tc.want.Snapshot.ID = got.Snapshot.ID
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Decode (-want +got):\n%s", diff)
			}
			if loc := got.Snapshot.ObservedAt.Location(); loc != time.UTC {
				t.Errorf("ObservedAt in %v, want UTC", loc)
			}
		})
	}
}

func TestDecodeMalformed(t *testing.T) {
	tests := []struct {
		file string
		want string // part of the error message
	}{
		{"truncated.json", "invalid JSON"},
		{"array.json", "a JSON array, want a JSON object"},
		{"pod-list.json", `kind "PodList" is neither a node list`},
		{"no-kind.json", `neither "kind" (a node list) nor "schema"`},
		{"list-with-pod.json", `item 1 is a "Pod", not a Node`},
		{"unknown-schema.json", `unknown schema "upgradewatch.nodes/v2"`},
		{"node-without-name.json", "complete snapshot with no AKS nodes (1 skipped: a node has no name (item 0))"},
		{"bad-node-name.json", `node name "AKS_System_0" is not a DNS-1123 subdomain`},
		{"bad-pool.json", `no AKS nodes (1 skipped: "aks-systempool01x-12345678-vmss000000": pool "systempool01x" is not an AKS agent pool name`},
		{"duplicate-names.json", `node "aks-system-12345678-vmss000000" is listed twice`},
		{"empty-list.json", "complete snapshot with no nodes: it would mark every known node gone"},
		{"only-virtual-nodes.json", `complete snapshot with no AKS nodes (1 skipped: "virtual-node-aci-linux": virtual node (type=virtual-kubelet), not an AKS agent node)`},
		{"only-unusable-nodes.json", `complete snapshot with no AKS nodes (2 skipped: "gpu-selfhosted-01": neither the kubernetes.azure.com/agentpool nor the agentpool label: not an AKS agent node; "virtual-node-aci-linux": virtual node`},
		{"bad-snapshot-id.json", `snapshotId "snap shot/1"`},
		{"bad-observed-at.json", `observedAt "2026-10-05 08:00:00" is not an RFC 3339 time`},
		{"future-observed-at.json", "observedAt 2031-01-01T00:00:00Z is more than 5m0s after the time of receipt"},
		{"label-not-string.json", "node list: json: cannot unmarshal number"},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			_, err := Decode(read(t, "malformed/"+tc.file), day1)
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v, want ErrMalformed", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to contain %q", err, tc.want)
			}
		})
	}
}

// TestDecodeInline covers shapes too small to deserve a fixture file.
func TestDecodeInline(t *testing.T) {
	const list = `{"apiVersion":"v1","kind":"List","metadata":{"resourceVersion":""},"items":[%s]}`
	tests := []struct {
		name    string
		body    string
		want    []fleet.NodeObservation // nil: expect an error
		wantErr string
	}{
		{
			name: "null labels and missing status are skipped as non-AKS",
			body: fmt.Sprintf(list, `{"kind":"Node","metadata":{"name":"n1","labels":null}},{"kind":"Node","metadata":{"name":"aks-a-1-vmss000000","labels":{"kubernetes.azure.com/agentpool":"a"}}}`),
			want: []fleet.NodeObservation{{Name: "aks-a-1-vmss000000", Pool: "a"}},
		},
		{
			name: "osType falls back to nodeInfo, upper-case pool is lower-cased, Ready absent is empty",
			body: fmt.Sprintf(list, `{"kind":"Node","metadata":{"name":"aks-np1-1-vmss000000","labels":{"kubernetes.azure.com/agentpool":"NP1","kubernetes.azure.com/upgrade-status":"quarantined"}},
				"status":{"nodeInfo":{"operatingSystem":"linux"},"conditions":[{"type":"MemoryPressure","status":"False"}]}}`),
			want: []fleet.NodeObservation{{Name: "aks-np1-1-vmss000000", Pool: "np1", OSType: "linux"}},
		},
		{
			name: "unknown image version format is kept verbatim",
			body: fmt.Sprintf(list, `{"kind":"Node","metadata":{"name":"aks-a-1-vmss000000","labels":{"kubernetes.azure.com/agentpool":"a","kubernetes.azure.com/node-image-version":"my golden image 7"}}}`),
			want: []fleet.NodeObservation{{Name: "aks-a-1-vmss000000", Pool: "a", NodeImageVersion: "my golden image 7"}},
		},
		{
			name: "NodeList without continue is complete",
			body: `{"kind":"NodeList","apiVersion":"v1","metadata":{"resourceVersion":"5"},"items":[{"metadata":{"name":"aks-a-1-vmss000000","labels":{"kubernetes.azure.com/agentpool":"a"}}}]}`,
			want: []fleet.NodeObservation{{Name: "aks-a-1-vmss000000", Pool: "a"}},
		},
		{name: "empty body", body: "  \n", wantErr: "empty body"},
		{name: "JSON string", body: `"nodes"`, wantErr: "a JSON string, want a JSON object"},
		{name: "compact node without pool", body: `{"schema":"upgradewatch.nodes/v1","nodes":[{"name":"aks-a-1-vmss000000"}]}`, wantErr: `pool "" is not an AKS agent pool name`},
		{name: "name longer than 253", body: `{"schema":"upgradewatch.nodes/v1","nodes":[{"name":"` + strings.Repeat("a.", 127) + `a","pool":"a"}]}`, wantErr: "is not a DNS-1123 subdomain"},
		{name: "field longer than 256", body: `{"schema":"upgradewatch.nodes/v1","nodes":[{"name":"a","pool":"a","osImage":"` + strings.Repeat("x", 257) + `"}]}`, wantErr: "node a: osImage is longer than 256 bytes"},
		{name: "observedAt before 2000", body: `{"schema":"upgradewatch.nodes/v1","observedAt":"0001-01-01T00:00:00Z","nodes":[{"name":"a","pool":"a"}]}`, wantErr: "is before 2000"},
		{name: "schema not a string", body: `{"schema":2,"nodes":[]}`, wantErr: "compact form: json: cannot unmarshal number"},
		{name: "too many nodes", body: manyNodes(MaxNodes + 1), wantErr: "5001 nodes, more than the 5000 an AKS cluster can have"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Decode([]byte(tc.body), day1)
			if tc.wantErr != "" {
				if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want ErrMalformed containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if diff := cmp.Diff(tc.want, got.Snapshot.Nodes); diff != "" {
				t.Errorf("nodes (-want +got):\n%s", diff)
			}
		})
	}
	if _, err := Decode([]byte(manyNodes(MaxNodes)), day1); err != nil {
		t.Errorf("Decode of %d nodes: %v", MaxNodes, err)
	}
}

func manyNodes(n int) string {
	var b strings.Builder
	b.WriteString(`{"schema":"upgradewatch.nodes/v1","nodes":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"name":"aks-user-1-vmss%06d","pool":"user"}`, i)
	}
	b.WriteString("]}")
	return b.String()
}

// TestContentID checks that a derived ID depends on what was observed and
// when, not on node order or on who sent it.
func TestContentID(t *testing.T) {
	body := read(t, "nodes-mixed.json")
	a, err := Decode(body, day1)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := Decode(body, day1)
	if a.Snapshot.ID != again.Snapshot.ID {
		t.Errorf("same body and time gave IDs %q and %q", a.Snapshot.ID, again.Snapshot.ID)
	}
	later, _ := Decode(body, day1.Add(time.Nanosecond))
	if later.Snapshot.ID == a.Snapshot.ID {
		t.Errorf("a different observation time gave the same ID %q", a.Snapshot.ID)
	}

	// The same nodes reversed, as a compact form with another reporter.
	s := a.Snapshot
	s.ID, s.Reporter = "", "someone-else"
	s.Nodes = append([]fleet.NodeObservation(nil), s.Nodes...)
	for i, j := 0, len(s.Nodes)-1; i < j; i, j = i+1, j-1 {
		s.Nodes[i], s.Nodes[j] = s.Nodes[j], s.Nodes[i]
	}
	enc, err := Encode(s)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Decode(enc, day2)
	if err != nil {
		t.Fatal(err)
	}
	if c.Snapshot.ID != a.Snapshot.ID {
		t.Errorf("compact form of the same content gave ID %q, want %q", c.Snapshot.ID, a.Snapshot.ID)
	}
	s.Complete = false
	enc, _ = Encode(s)
	if p, _ := Decode(enc, day2); p.Snapshot.ID == a.Snapshot.ID {
		t.Errorf("a partial snapshot of the same nodes got the complete one's ID %q", a.Snapshot.ID)
	}
}

func TestEncode(t *testing.T) {
	r, err := Decode(read(t, "nodes-mixed.json"), day1)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("round trip", func(t *testing.T) {
		s := r.Snapshot
		s.ID, s.Reporter, s.ObservedAt = "nr-1", "node-reporter/0.1.0", day1.Add(1500*time.Millisecond)
		enc, err := Encode(s)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Decode(enc, day2)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(Result{Form: FormCompact, Snapshot: s}, got); diff != "" {
			t.Errorf("Decode(Encode(s)) (-want +got):\n%s", diff)
		}
	})
	t.Run("wire form", func(t *testing.T) {
		enc, err := Encode(fleet.NodeSnapshot{
			ID: "nr-2", ObservedAt: time.Date(2026, 10, 5, 10, 0, 0, 0, time.FixedZone("CEST", 7200)), Complete: false,
			Nodes: []fleet.NodeObservation{{Name: "b", Pool: "B"}, {Name: "a", Pool: "a", Ready: "True"}},
		})
		if err != nil {
			t.Fatal(err)
		}
		want := `{"schema":"upgradewatch.nodes/v1","snapshotId":"nr-2","observedAt":"2026-10-05T08:00:00Z","complete":false,` +
			`"nodes":[{"name":"a","pool":"a","ready":"True"},{"name":"b","pool":"b"}]}`
		if string(enc) != want {
			t.Errorf("Encode\n got %s\nwant %s", enc, want)
		}
	})
	for _, tc := range []struct {
		name string
		s    fleet.NodeSnapshot
		want string
	}{
		{"empty complete", fleet.NodeSnapshot{Complete: true}, "complete snapshot with no nodes"},
		{"duplicate", fleet.NodeSnapshot{Nodes: []fleet.NodeObservation{{Name: "a", Pool: "a"}, {Name: "a", Pool: "b"}}}, `node "a" is listed twice`},
		{"bad id", fleet.NodeSnapshot{ID: "a b", Nodes: []fleet.NodeObservation{{Name: "a", Pool: "a"}}}, `snapshotId "a b"`},
	} {
		t.Run("refuses "+tc.name, func(t *testing.T) {
			_, err := Encode(tc.s)
			if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want ErrMalformed containing %q", err, tc.want)
			}
		})
	}
}

func TestFromNodes(t *testing.T) {
	var l NodeList
	if err := json.Unmarshal(read(t, "nodes-mixed.json"), &l); err != nil {
		t.Fatal(err)
	}
	obs, skipped, err := FromNodes(l.Items)
	if err != nil {
		t.Fatal(err)
	}
	if len(obs) != 9 || skipped != 1 {
		t.Errorf("got %d observations and %d skipped, want 9 and 1", len(obs), skipped)
	}
	// A pool AKS could not have is skipped and named, not fatal to the rest.
	l.Items[2].Metadata.Labels[fleet.LabelAgentPool] = "no_such_pool"
	obs, named := Observe(l.Items)
	want := []SkippedNode{
		{Name: l.Items[2].Metadata.Name, Reason: `pool "no_such_pool" is not an AKS agent pool name (1 to 12 of a-z 0-9)`},
		aciSkipped,
	}
	if diff := cmp.Diff(want, named); diff != "" || len(obs) != 8 {
		t.Errorf("got %d observations, skipped (-want +got):\n%s", len(obs), diff)
	}
}

// TestObserveLabelGenerations covers each label generation and skip reason on
// single nodes.
func TestObserveLabelGenerations(t *testing.T) {
	node := func(name string, labels map[string]string) Node {
		var n Node
		n.Metadata.Name, n.Metadata.Labels = name, labels
		return n
	}
	tests := []struct {
		name     string
		node     Node
		wantPool string
		wantOS   string
		wantImg  string
		skipped  string // the reason, when the node is skipped
	}{
		{name: "current: both pool labels", node: node("aks-a-1-vmss000000", map[string]string{
			fleet.LabelAgentPool: "np1", LabelAgentPoolLegacy: "np1", fleet.LabelNodeImageVersion: "AKSUbuntu-2204gen2containerd-202410.27.0", fleet.LabelOS: "linux"}),
			wantPool: "np1", wantOS: "linux", wantImg: "AKSUbuntu-2204gen2containerd-202410.27.0"},
		{name: "newer label wins over the older", node: node("aks-a-1-vmss000000", map[string]string{
			fleet.LabelAgentPool: "np1", LabelAgentPoolLegacy: "other"}), wantPool: "np1"},
		{name: "2020-2021: agentpool only, legacy version", node: node("aks-nodepool1-1-vmss000000", map[string]string{
			LabelAgentPoolLegacy: "NodePool1", fleet.LabelNodeImageVersion: "AKSUbuntu-1604-2020.03.05", fleet.LabelOS: "linux"}),
			wantPool: "nodepool1", wantOS: "linux", wantImg: "AKSUbuntu-1604-2020.03.05"},
		{name: "2019: agentpool and beta.kubernetes.io/os only, no image label", node: node("aks-agentpool-1-0", map[string]string{
			LabelAgentPoolLegacy: "agentpool", labelOSBeta: "linux"}), wantPool: "agentpool", wantOS: "linux"},
		{name: "virtual node", node: node("virtual-node-aci-linux", map[string]string{labelType: "virtual-kubelet", LabelAgentPoolLegacy: "x"}),
			skipped: "virtual node (type=virtual-kubelet), not an AKS agent node"},
		{name: "no pool label", node: node("byo-1", map[string]string{fleet.LabelOS: "linux"}),
			skipped: "neither the kubernetes.azure.com/agentpool nor the agentpool label: not an AKS agent node"},
		{name: "name AKS could not give", node: node("Byo_1", map[string]string{LabelAgentPoolLegacy: "np1"}),
			skipped: `node name "Byo_1" is not a DNS-1123 subdomain (lower-case a-z 0-9 - ., at most 253)`},
		{name: "no name", node: node("", map[string]string{LabelAgentPoolLegacy: "np1"}), skipped: "a node has no name (item 0)"},
		{name: "field too long", node: node("aks-a-1-vmss000000", map[string]string{LabelAgentPoolLegacy: "np1", fleet.LabelNodeImageVersion: strings.Repeat("v", 300)}),
			skipped: "nodeImageVersion is longer than 256 bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			obs, skipped := Observe([]Node{tc.node})
			if tc.skipped != "" {
				want := []SkippedNode{{Name: tc.node.Metadata.Name, Reason: tc.skipped}}
				if diff := cmp.Diff(want, skipped); diff != "" || len(obs) != 0 {
					t.Errorf("got %d observations; skipped (-want +got):\n%s", len(obs), diff)
				}
				return
			}
			if len(obs) != 1 || len(skipped) != 0 {
				t.Fatalf("got %v and skipped %v, want one observation", obs, skipped)
			}
			if o := obs[0]; o.Pool != tc.wantPool || o.OSType != tc.wantOS || o.NodeImageVersion != tc.wantImg {
				t.Errorf("got pool %q os %q image %q, want %q %q %q", o.Pool, o.OSType, o.NodeImageVersion, tc.wantPool, tc.wantOS, tc.wantImg)
			}
		})
	}
}

// TestNamed bounds the skipped nodes an answer names.
func TestNamed(t *testing.T) {
	r := Result{Skipped: make([]SkippedNode, 25)}
	if named, more := r.Named(MaxNamedSkipped); len(named) != 20 || more != 5 {
		t.Errorf("Named(20) of 25: %d named, %d more; want 20 and 5", len(named), more)
	}
	r.Skipped = r.Skipped[:3]
	if named, more := r.Named(MaxNamedSkipped); len(named) != 3 || more != 0 {
		t.Errorf("Named(20) of 3: %d named, %d more; want 3 and 0", len(named), more)
	}
}

// checkInvariants fails t unless r is a snapshot Decode may return.
func checkInvariants(t *testing.T, r Result, now time.Time) {
	t.Helper()
	s := r.Snapshot
	if !snapshotIDRE.MatchString(s.ID) {
		t.Fatalf("ID %q", s.ID)
	}
	if s.ObservedAt.IsZero() || s.ObservedAt.Location() != time.UTC || s.ObservedAt.After(now.Add(MaxClockSkew)) {
		t.Fatalf("ObservedAt %v", s.ObservedAt)
	}
	if len(s.Nodes) > MaxNodes || (s.Complete && len(s.Nodes) == 0) {
		t.Fatalf("%d nodes, complete %v", len(s.Nodes), s.Complete)
	}
	if r.Form == FormCompact && len(r.Skipped) > 0 {
		t.Fatalf("the compact form skipped %d nodes", len(r.Skipped))
	}
	for _, sk := range r.Skipped {
		if sk.Reason == "" || len(sk.Name) > 84 {
			t.Fatalf("skipped node %+v: want a reason and a clipped name", sk)
		}
	}
	switch r.Form {
	case FormList, FormNodeList, FormCompact:
	default:
		t.Fatalf("Form %q", r.Form)
	}
	for i, n := range s.Nodes {
		if i > 0 && s.Nodes[i-1].Name >= n.Name {
			t.Fatalf("nodes not strictly sorted: %q then %q", s.Nodes[i-1].Name, n.Name)
		}
		if !validNodeName(n.Name) || !fleet.ValidPoolName(n.Pool) || n.Pool != strings.ToLower(n.Pool) {
			t.Fatalf("node %q pool %q", n.Name, n.Pool)
		}
	}
	// What was accepted can be forwarded unchanged.
	enc, err := Encode(s)
	if err != nil {
		t.Fatalf("Encode of an accepted snapshot: %v", err)
	}
	back, err := Decode(enc, now)
	if err != nil {
		t.Fatalf("Decode(Encode(s)): %v", err)
	}
	if diff := cmp.Diff(s, back.Snapshot, cmpopts.EquateEmpty()); diff != "" {
		t.Fatalf("Decode(Encode(s)) (-want +got):\n%s", diff)
	}
}
