package events

import (
	"fmt"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/eventgrid/azsystemevents"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
)

// AKS system events (topic type Microsoft.ContainerService.ManagedClusters) name
// the cluster in topic/source; their subject is the bare cluster name.

// aksCluster sets sig.Cluster from the topic (Event Grid) or source (CloudEvents),
// or from the subject when that is an ARM ID.
func aksCluster(sig *fleet.Signal) error {
	field := "topic"
	if sig.Schema == fleet.SchemaCloudEvents {
		field = "source"
	}
	c, _, err := fleet.ParseResourceID(sig.Source)
	if err == nil {
		sig.Cluster = c
		return nil
	}
	if isARMID(sig.Subject) {
		if c, _, serr := fleet.ParseResourceID(sig.Subject); serr == nil {
			sig.Cluster = c
			return nil
		}
	}
	if strings.TrimSpace(sig.Source) == "" {
		return fmt.Errorf("%w: %s is missing and subject is not a managed cluster ID: %w",
			ErrMalformed, field, fleet.ErrInvalidResourceID)
	}
	return resourceIDError(field, err)
}

// resourceIDError reports a field that should name a managed cluster but does
// not; both ErrMalformed and fleet.ErrInvalidResourceID match it.
func resourceIDError(field string, err error) error {
	return fmt.Errorf("%w: %s: %w", ErrMalformed, field, clipped{err})
}

func isARMID(s string) bool {
	return strings.HasPrefix(strings.ToLower(strings.TrimSpace(s)), "/subscriptions/")
}

// rolling decodes NodePoolRolling{Started,Succeeded,Failed}, whose only data is
// the pool name.
func rolling(kind fleet.SignalKind) handler {
	return func(sig *fleet.Signal, env envelope) error {
		if err := aksCluster(sig); err != nil {
			return err
		}
		var name *string
		var err error
		switch kind {
		case fleet.KindRollingStarted:
			var d azsystemevents.ContainerServiceNodePoolRollingStartedEventData
			err = decodeData(env.data, &d)
			name = d.NodePoolName
		case fleet.KindRollingSucceeded:
			var d azsystemevents.ContainerServiceNodePoolRollingSucceededEventData
			err = decodeData(env.data, &d)
			name = d.NodePoolName
		default:
			var d azsystemevents.ContainerServiceNodePoolRollingFailedEventData
			err = decodeData(env.data, &d)
			name = d.NodePoolName
		}
		if err != nil {
			return err
		}
		pool, err := poolName("data.nodePoolName", deref(name))
		if err != nil {
			return err
		}
		sig.Kind, sig.Pool = kind, pool
		return nil
	}
}

// poolName checks an agent pool name, which becomes part of storage keys.
func poolName(field, name string) (string, error) {
	switch {
	case name == "":
		return "", malformed("%s is missing", field)
	case !fleet.ValidPoolName(name):
		return "", malformed("%s %q is not a valid agent pool name (1-12 letters and digits)", field, clip(name, 40))
	}
	return name, nil
}

func versionsAvailable(sig *fleet.Signal, env envelope) error {
	if err := aksCluster(sig); err != nil {
		return err
	}
	var d azsystemevents.ContainerServiceNewKubernetesVersionAvailableEventData
	if err := decodeData(env.data, &d); err != nil {
		return err
	}
	v := &fleet.KubernetesVersions{
		LatestSupported: deref(d.LatestSupportedKubernetesVersion),
		LatestStable:    deref(d.LatestStableKubernetesVersion),
		LowestMinor:     deref(d.LowestMinorKubernetesVersion),
		LatestPreview:   deref(d.LatestPreviewKubernetesVersion),
	}
	if *v == (fleet.KubernetesVersions{}) {
		return malformed("data carries no Kubernetes version")
	}
	sig.Kind, sig.Versions = fleet.KindVersionsAvailable, v
	return nil
}

// support decodes ClusterSupportEnding / ClusterSupportEnded, which share one shape.
func support(kind fleet.SignalKind) handler {
	return func(sig *fleet.Signal, env envelope) error {
		if err := aksCluster(sig); err != nil {
			return err
		}
		var version *string
		var err error
		if kind == fleet.KindSupportEnding {
			var d azsystemevents.ContainerServiceClusterSupportEndingEventData
			err = decodeData(env.data, &d)
			version = d.KubernetesVersion
		} else {
			var d azsystemevents.ContainerServiceClusterSupportEndedEventData
			err = decodeData(env.data, &d)
			version = d.KubernetesVersion
		}
		if err != nil {
			return err
		}
		if deref(version) == "" {
			return malformed("data.kubernetesVersion is missing")
		}
		sig.Kind, sig.Support = kind, &fleet.SupportNotice{KubernetesVersion: *version}
		return nil
	}
}
