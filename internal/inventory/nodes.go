package inventory

import (
	"fmt"
	"strings"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
)

// NodeList is a page of GET /api/v1/nodes (kind NodeList) or the output of
// `kubectl get nodes -o json` (kind List). Only what inventory reads is
// declared; everything else a Node carries is skipped while decoding.
type NodeList struct {
	Kind       string   `json:"kind"`
	APIVersion string   `json:"apiVersion"`
	Metadata   ListMeta `json:"metadata"`
	Items      []Node   `json:"items"`
}

// ListMeta is the list's metadata; Continue is set when more pages follow.
type ListMeta struct {
	Continue        string `json:"continue,omitempty"`
	ResourceVersion string `json:"resourceVersion,omitempty"`
}

// Node is the part of a Kubernetes Node object an observation is made of.
type Node struct {
	Kind     string `json:"kind,omitempty"` // "Node" from kubectl, empty in API list items
	Metadata struct {
		Name   string            `json:"name"`
		Labels map[string]string `json:"labels"`
	} `json:"metadata"`
	Spec struct {
		Unschedulable bool `json:"unschedulable"`
	} `json:"spec"`
	Status struct {
		NodeInfo struct {
			KernelVersion           string `json:"kernelVersion"`
			OSImage                 string `json:"osImage"`
			ContainerRuntimeVersion string `json:"containerRuntimeVersion"`
			KubeletVersion          string `json:"kubeletVersion"`
			OperatingSystem         string `json:"operatingSystem"`
		} `json:"nodeInfo"`
		Conditions []struct {
			Type   string `json:"type"`
			Status string `json:"status"`
		} `json:"conditions"`
	} `json:"status"`
}

// FromNodes turns Node objects into observations. Nodes without an agent pool
// label are not AKS agent nodes (virtual nodes such as ACI virtual-kubelet);
// they are left out and counted in skipped. A node with a name or pool AKS
// could not have is an error wrapping ErrMalformed. Names and pools only are
// checked here; whole-snapshot rules (duplicates, counts) are Decode's and
// Encode's.
func FromNodes(nodes []Node) (obs []fleet.NodeObservation, skipped int, err error) {
	obs = make([]fleet.NodeObservation, 0, len(nodes))
	for i, n := range nodes {
		pool := strings.ToLower(n.Metadata.Labels[fleet.LabelAgentPool])
		if pool == "" {
			skipped++
			continue
		}
		o := fleet.NodeObservation{
			Name:             n.Metadata.Name,
			Pool:             pool,
			NodeImageVersion: n.Metadata.Labels[fleet.LabelNodeImageVersion],
			KernelVersion:    n.Status.NodeInfo.KernelVersion,
			OSImage:          n.Status.NodeInfo.OSImage,
			KubeletVersion:   n.Status.NodeInfo.KubeletVersion,
			ContainerRuntime: n.Status.NodeInfo.ContainerRuntimeVersion,
			OSType:           n.Metadata.Labels[fleet.LabelOS],
			Quarantined:      n.Metadata.Labels[fleet.LabelUpgradeStatus] == fleet.UpgradeStatusQuarantined,
			Unschedulable:    n.Spec.Unschedulable,
		}
		if o.OSType == "" {
			o.OSType = n.Status.NodeInfo.OperatingSystem
		}
		for _, c := range n.Status.Conditions {
			if c.Type == "Ready" {
				o.Ready = c.Status
				break
			}
		}
		if err := validNode(o); err != nil {
			return nil, 0, fmt.Errorf("%w (item %d)", err, i)
		}
		obs = append(obs, o)
	}
	return obs, skipped, nil
}
