package inventory

import (
	"testing"
	"time"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
)

// The compact form is this package's wire format: Encode writes the field
// names the schema has always had, and the content ID of a snapshot (how a
// repost is recognised) stays what it was.
func TestCompactFormAndContentIDAreStable(t *testing.T) {
	s := fleet.NodeSnapshot{ObservedAt: time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC), Complete: true, Reporter: "node-reporter/1.2.0",
		Nodes: []fleet.NodeObservation{
			{Name: "aks-system-38475619-vmss000000", Pool: "system", NodeImageVersion: "AKSUbuntu-2204gen2containerd-202610.13.0",
				KernelVersion: "5.15.0-1075-azure", OSImage: "Ubuntu 22.04.5 LTS", KubeletVersion: "v1.31.9",
				ContainerRuntime: "containerd://1.7.27-1", OSType: "linux", Ready: "True"},
			{Name: "aks-spark-38475619-vmss000001", Pool: "spark", NodeImageVersion: "AKSUbuntu-2204gen2containerd-202610.13.0",
				OSType: "linux", Quarantined: true, Unschedulable: true, Ready: "False"},
		}}
	b, err := Encode(s)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"schema":"upgradewatch.nodes/v1","observedAt":"2026-11-24T09:00:00Z","complete":true,"reporter":"node-reporter/1.2.0","nodes":[` +
		`{"name":"aks-spark-38475619-vmss000001","pool":"spark","nodeImageVersion":"AKSUbuntu-2204gen2containerd-202610.13.0","osType":"linux","quarantined":true,"unschedulable":true,"ready":"False"},` +
		`{"name":"aks-system-38475619-vmss000000","pool":"system","nodeImageVersion":"AKSUbuntu-2204gen2containerd-202610.13.0","kernelVersion":"5.15.0-1075-azure","osImage":"Ubuntu 22.04.5 LTS","kubeletVersion":"v1.31.9","containerRuntime":"containerd://1.7.27-1","osType":"linux","ready":"True"}]}`
	if string(b) != want {
		t.Errorf("compact form:\ngot  %s\nwant %s", b, want)
	}
	if got, want := contentID(s), "nodes-7c542c5d7e9cfc5f28f5cd7ed79f2dc4"; got != want {
		t.Errorf("content ID = %s, want %s (as before the compact form had its own types)", got, want)
	}
	r, err := Decode(b, s.ObservedAt.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Snapshot.Nodes; len(got) != 2 || got[0] != s.Nodes[1] || got[1] != s.Nodes[0] {
		t.Errorf("decoded nodes = %+v, want the encoded ones sorted by name", got)
	}
}
