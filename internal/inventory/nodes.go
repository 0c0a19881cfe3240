package inventory

import (
	"cmp"
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

// Labels of older AKS nodes and of nodes that are not AKS agent nodes.
const (
	// LabelAgentPoolLegacy names the pool on nodes of clusters created before
	// kubernetes.azure.com/agentpool existed; current nodes carry both.
	LabelAgentPoolLegacy = "agentpool"
	// labelOSBeta is kubernetes.io/os before Kubernetes 1.14.
	labelOSBeta = "beta.kubernetes.io/os"
	// labelType is "virtual-kubelet" on virtual nodes (ACI).
	labelType = "type"
)

// SkippedNode is a node left out of a snapshot, and why. Name is as listed
// (clipped), empty when the node had none.
type SkippedNode struct {
	Name   string `json:"name"`
	Reason string `json:"reason"`
}

// Observe turns Node objects into observations. The pool comes from
// kubernetes.azure.com/agentpool, else from the older agentpool label; the
// image from kubernetes.azure.com/node-image-version (clusters from before
// that label have none, and their nodes are kept without an image). A node
// that cannot be an AKS agent node — a virtual node, one with no pool label,
// a name or pool AKS could not give, a field too long to store — is left out
// and returned in skipped with the reason, in list order, so that nothing is
// dropped without a trace. Whole-snapshot rules (duplicates, counts) are
// Decode's and Encode's.
func Observe(nodes []Node) (obs []fleet.NodeObservation, skipped []SkippedNode) {
	obs = make([]fleet.NodeObservation, 0, len(nodes))
	for i, n := range nodes {
		o, why := observe(n)
		if why != "" {
			if n.Metadata.Name == "" {
				why = fmt.Sprintf("%s (item %d)", why, i)
			}
			skipped = append(skipped, SkippedNode{Name: truncate(n.Metadata.Name), Reason: why})
			continue
		}
		obs = append(obs, o)
	}
	return obs, skipped
}

// FromNodes is Observe for callers that only count what was left out. The
// error is always nil: a node that cannot be observed is skipped, not fatal.
func FromNodes(nodes []Node) (obs []fleet.NodeObservation, skipped int, err error) {
	obs, s := Observe(nodes)
	return obs, len(s), nil
}

// observe makes one observation, or says why the node is not an AKS agent node.
func observe(n Node) (fleet.NodeObservation, string) {
	labels := n.Metadata.Labels
	if labels[labelType] == "virtual-kubelet" {
		return fleet.NodeObservation{}, "virtual node (type=virtual-kubelet), not an AKS agent node"
	}
	pool := labels[fleet.LabelAgentPool]
	if pool == "" {
		pool = labels[LabelAgentPoolLegacy]
	}
	if pool == "" {
		return fleet.NodeObservation{}, fmt.Sprintf("neither the %s nor the %s label: not an AKS agent node", fleet.LabelAgentPool, LabelAgentPoolLegacy)
	}
	o := fleet.NodeObservation{
		Name:             n.Metadata.Name,
		Pool:             strings.ToLower(pool),
		NodeImageVersion: labels[fleet.LabelNodeImageVersion],
		KernelVersion:    n.Status.NodeInfo.KernelVersion,
		OSImage:          n.Status.NodeInfo.OSImage,
		KubeletVersion:   n.Status.NodeInfo.KubeletVersion,
		ContainerRuntime: n.Status.NodeInfo.ContainerRuntimeVersion,
		OSType:           cmp.Or(labels[fleet.LabelOS], labels[labelOSBeta], n.Status.NodeInfo.OperatingSystem),
		Quarantined:      labels[fleet.LabelUpgradeStatus] == fleet.UpgradeStatusQuarantined,
		Unschedulable:    n.Spec.Unschedulable,
	}
	for _, c := range n.Status.Conditions {
		if c.Type == "Ready" {
			o.Ready = c.Status
			break
		}
	}
	return o, nodeProblem(o)
}
