package events

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/eventgrid/azsystemevents"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
	"github.com/upgradewatch/upgradewatch/internal/host"
)

// Azure Resource Notifications arrive on a subscription-scoped topic, so the
// cluster comes from the data (resourceInfo.id), not from topic/source.

// ARM resource types the Resources.* events are decoded for.
const (
	typeManagedCluster = "microsoft.containerservice/managedclusters"
	typeAgentPool      = "microsoft.containerservice/managedclusters/agentpools"
)

// Upgrade types of a scheduled event (fleet.ScheduledEvent.UpgradeType).
const (
	upgradeNodeOS  = "NodeOSUpgrade"
	upgradeK8s     = "K8sVersionUpgrade"
	upgradeEOL     = "EOL"
	upgradeUnknown = "Unknown"
)

const propsPath = "data.resourceInfo.properties"

// candidate is one place an ARN event may name its cluster.
type candidate struct{ field, id string }

// arnCluster sets sig.Cluster from the first candidate that is present; that
// one must be a valid managed cluster ID (a later one is not consulted, so a bad
// resourceInfo.id is never papered over by a subject). It returns the path below
// the cluster, e.g. "agentPools/np1".
func arnCluster(sig *fleet.Signal, cands ...candidate) (string, error) {
	fields := make([]string, 0, len(cands))
	for _, c := range cands {
		fields = append(fields, c.field)
		if strings.TrimSpace(c.id) == "" {
			continue
		}
		id, child, err := fleet.ParseResourceID(c.id)
		if err != nil {
			return "", resourceIDError(c.field, err)
		}
		sig.Cluster = id
		return child, nil
	}
	return "", fmt.Errorf("%w: no managed cluster ID in %s: %w",
		ErrMalformed, strings.Join(fields, ", "), fleet.ErrInvalidResourceID)
}

// fallbackTime takes the resource's event time when the envelope had none.
func fallbackTime(sig *fleet.Signal, op *azsystemevents.ResourceNotificationsOperationalDetails) {
	if sig.Time.IsZero() && op != nil && op.ResourceEventTime != nil {
		sig.Time = op.ResourceEventTime.UTC()
	}
}

// scheduledEvent decodes an AKS Communication Manager notification. The
// MaintenanceResources type is also the live type of virtual machine and scale
// set maintenance (Freeze, Reboot, Redeploy …); such an event is about a
// resource upgradewatch does not track and is accepted as unsupported.
func scheduledEvent(sig *fleet.Signal, env envelope) error {
	if strings.EqualFold(sig.Type, TypeMaintenanceScheduledEventEmitted) && aboutOtherResource(env.data, sig.Subject) {
		return unsupported(sig, env)
	}
	var d azsystemevents.ResourceNotificationsContainerServiceEventResourcesScheduledEventData
	if err := decodeData(env.data, &d); err != nil {
		return err
	}
	fallbackTime(sig, d.OperationalDetails)
	ri := d.ResourceDetails
	if ri == nil {
		return malformed("data.resourceInfo is missing")
	}
	props, serialized, err := remarshal(ri.Properties)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrMalformed, propsPath, clipped{err})
	}

	var r reader
	var firstResource string
	for i, raw := range r.array(propsPath+".resources", get(props, "resources")) {
		if firstResource = r.text(fmt.Sprintf("%s.resources[%d]", propsPath, i), raw); firstResource != "" {
			break
		}
	}
	if _, err := arnCluster(sig,
		candidate{"data.resourceInfo.id", deref(ri.ID)},
		candidate{"subject", sig.Subject},
		candidate{propsPath + ".resources[0]", firstResource},
	); err != nil {
		return err
	}

	se := &fleet.ScheduledEvent{
		EventID:        r.text(propsPath+".eventId", get(props, "eventId")),
		Status:         normaliseStatus(r.text(propsPath+".eventStatus", get(props, "eventStatus"))),
		Source:         r.text(propsPath+".eventSource", get(props, "eventSource")),
		Description:    r.text(propsPath+".description", get(props, "description")),
		ScheduledTime:  looseTime(get(props, "scheduledTime")),
		StartTime:      looseTime(get(props, "startTime")),
		LastUpdateTime: looseTime(get(props, "lastUpdateTime")),
	}
	if r.err != nil {
		return r.err
	}
	if se.EventID == "" {
		se.EventID = deref(ri.Name)
	}
	if se.EventID == "" {
		id := strings.TrimRight(deref(ri.ID), "/")
		se.EventID = id[strings.LastIndex(id, "/")+1:]
	}
	var detailType string
	se.Details, detailType = flattenDetails(get(props, "eventDetails"))
	se.UpgradeType = upgradeType(serialized, se, detailType)

	sig.Kind, sig.Scheduled = fleet.KindScheduledEvent, se
	return nil
}

// normaliseStatus maps eventStatus onto the fleet.ScheduledStatus* spellings;
// a status AKS may add later is kept as sent.
func normaliseStatus(s string) string {
	t := strings.TrimSpace(s)
	for _, known := range []string{
		fleet.ScheduledStatusScheduled,
		fleet.ScheduledStatusStarted,
		fleet.ScheduledStatusCompleted,
		fleet.ScheduledStatusFailed,
		fleet.ScheduledStatusCanceled,
	} {
		if strings.EqualFold(t, known) {
			return known
		}
	}
	if strings.EqualFold(t, "Cancelled") {
		return fleet.ScheduledStatusCanceled
	}
	return s
}

// flattenDetails turns eventDetails — free text, a JSON object, or a JSON
// object encoded in a string — into text, compact JSON for the structured
// forms. It also returns the object's numeric "type" (1 = Kubernetes, 2 = node
// OS upgrade in Microsoft's own alert queries), if any.
func flattenDetails(raw json.RawMessage) (details, detailType string) {
	raw = host.Unwrap(raw)
	if absent(raw) {
		return "", ""
	}
	if raw[0] != '{' && raw[0] != '[' {
		var r reader
		return r.text("", raw), ""
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return string(raw), ""
	}
	var obj struct {
		Type json.RawMessage `json:"type"`
	}
	if raw[0] == '{' && json.Unmarshal(raw, &obj) == nil {
		var r reader
		detailType = r.text("", obj.Type)
		if n, err := strconv.ParseFloat(detailType, 64); err == nil {
			detailType = strconv.FormatFloat(n, 'f', -1, 64)
		}
	}
	return buf.String(), detailType
}

// upgradeType classifies a scheduled event. The type is not a documented
// property, so this follows Microsoft's own alert queries (substrings of the
// serialized properties, then the numeric detail type), then the EOL
// notifications, then wording about VHDs and node images.
func upgradeType(serialized []byte, se *fleet.ScheduledEvent, detailType string) string {
	props := strings.ToLower(string(serialized))
	text := strings.ToLower(se.Description + " " + se.Details)
	switch {
	case strings.Contains(props, "nodeosupgrade") || detailType == "2":
		return upgradeNodeOS
	case strings.Contains(props, "k8sversionupgrade") || detailType == "1":
		return upgradeK8s
	case strings.EqualFold(strings.TrimSpace(se.Source), "EOLNotification") ||
		hasPrefixFold(se.Description, "KubernetesVersionEOL") ||
		hasPrefixFold(se.Description, "KubernetesVersionOutOfSupport"):
		return upgradeEOL
	case strings.Contains(text, "security vhd") || strings.Contains(text, "node image") || strings.Contains(text, "vhd"):
		return upgradeNodeOS
	}
	return upgradeUnknown
}

func hasPrefixFold(s, prefix string) bool {
	s = strings.TrimSpace(s)
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// resourceCreatedOrUpdated decodes Resources.CreatedOrUpdated for clusters and
// agent pools; other resource types are accepted as unsupported.
func resourceCreatedOrUpdated(sig *fleet.Signal, env envelope) error {
	if untrackedResource(env) {
		return unsupported(sig, env)
	}
	var d azsystemevents.ResourceNotificationsResourceManagementCreatedOrUpdatedEventData
	if err := decodeData(env.data, &d); err != nil {
		return err
	}
	fallbackTime(sig, d.OperationalDetails)
	ri := d.ResourceDetails
	if ri == nil {
		return malformed("data.resourceInfo is missing")
	}
	child, err := resourceCluster(sig, ri.ID)
	if err != nil {
		return err
	}
	props, _, err := remarshal(ri.Properties)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrMalformed, propsPath, clipped{err})
	}
	var r reader

	if strings.EqualFold(deref(ri.Type), typeAgentPool) {
		name, err := poolFromID(child, deref(ri.Name))
		if err != nil {
			return err
		}
		spec := poolProfile(&r, propsPath, props)
		spec.Name = name
		if r.err != nil {
			return r.err
		}
		sig.Kind, sig.Pool, sig.PoolSpec = fleet.KindPoolUpdated, name, &spec
		return nil
	}

	prof := &fleet.ClusterProfile{
		Location:          deref(ri.Location),
		ProvisioningState: r.text(propsPath+".provisioningState", get(props, "provisioningState")),
		KubernetesVersion: r.text(propsPath+".currentKubernetesVersion", get(props, "currentKubernetesVersion")),
		Tags:              tags(ri.Tags),
	}
	if prof.KubernetesVersion == "" {
		prof.KubernetesVersion = r.text(propsPath+".kubernetesVersion", get(props, "kubernetesVersion"))
	}
	aup := r.object(propsPath+".autoUpgradeProfile", get(props, "autoUpgradeProfile"))
	prof.UpgradeChannel = r.text(propsPath+".autoUpgradeProfile.upgradeChannel", get(aup, "upgradeChannel"))
	prof.NodeOSUpgradeChannel = r.text(propsPath+".autoUpgradeProfile.nodeOSUpgradeChannel",
		get(aup, "nodeOSUpgradeChannel", "nodeOsUpgradeChannel"))

	if pools := get(props, "agentPoolProfiles"); !absent(pools) {
		list := r.array(propsPath+".agentPoolProfiles", pools)
		prof.Pools = make([]fleet.PoolProfile, 0, len(list))
		for i, raw := range list {
			path := fmt.Sprintf("%s.agentPoolProfiles[%d]", propsPath, i)
			pp := poolProfile(&r, path, r.object(path, raw))
			if r.err != nil {
				return r.err
			}
			if _, err := poolName(path+".name", pp.Name); err != nil {
				return err
			}
			prof.Pools = append(prof.Pools, pp)
		}
	}
	if r.err != nil {
		return r.err
	}
	sig.Kind, sig.Profile = fleet.KindClusterUpdated, prof
	return nil
}

// resourceDeleted decodes Resources.Deleted for clusters and agent pools;
// other resource types are accepted as unsupported.
func resourceDeleted(sig *fleet.Signal, env envelope) error {
	if untrackedResource(env) {
		return unsupported(sig, env)
	}
	var d azsystemevents.ResourceNotificationsResourceManagementDeletedEventData
	if err := decodeData(env.data, &d); err != nil {
		return err
	}
	fallbackTime(sig, d.OperationalDetails)
	ri := d.ResourceDetails
	if ri == nil {
		return malformed("data.resourceInfo is missing")
	}
	child, err := resourceCluster(sig, ri.ID)
	if err != nil {
		return err
	}
	if strings.EqualFold(deref(ri.Type), typeAgentPool) {
		name, err := poolFromID(child, deref(ri.Name))
		if err != nil {
			return err
		}
		sig.Kind, sig.Pool = fleet.KindPoolDeleted, name
		return nil
	}
	sig.Kind = fleet.KindClusterDeleted
	return nil
}

// aboutOtherResource reports whether a scheduled event names, in
// data.resourceInfo.id or else the subject, a resource ID under a resource
// provider other than managed clusters (Microsoft.Compute/virtualMachines,
// …/virtualMachineScaleSets, …). An ID that does name a managed cluster, or
// no ID at all, is left to the scheduled event decoder, which judges it.
func aboutOtherResource(data []byte, subject string) bool {
	id := probeARN(data).id
	if strings.TrimSpace(id) == "" {
		id = subject
	}
	parts := strings.Split(strings.Trim(strings.TrimSpace(id), "/"), "/")
	if len(parts) < 7 || !strings.EqualFold(parts[0], "subscriptions") ||
		!strings.EqualFold(parts[2], "resourceGroups") || !strings.EqualFold(parts[4], "providers") {
		return false
	}
	return !strings.EqualFold(parts[5], "Microsoft.ContainerService") || !strings.EqualFold(parts[6], "managedClusters")
}

// untrackedResource reports whether a Resources.* event is about a resource
// type upgradewatch does not track (anything but clusters and agent pools).
func untrackedResource(env envelope) bool {
	p := probeARN(env.data)
	rt := strings.ToLower(strings.TrimSpace(p.typ))
	return p.ok && rt != typeManagedCluster && rt != typeAgentPool
}

// resourceCluster finds the cluster of a Resources.* event from
// resourceInfo.id, else the subject, and returns the path below the cluster.
func resourceCluster(sig *fleet.Signal, id *string) (string, error) {
	return arnCluster(sig,
		candidate{"data.resourceInfo.id", deref(id)},
		candidate{"subject", sig.Subject})
}

// poolFromID takes the pool name from the ID's "agentPools/<name>" tail, else
// from resourceInfo.name.
func poolFromID(child, name string) (string, error) {
	parts := strings.Split(child, "/")
	if len(parts) == 2 && strings.EqualFold(parts[0], "agentPools") {
		return poolName("data.resourceInfo.id", parts[1])
	}
	return poolName("data.resourceInfo.name", name)
}

// poolProfile reads an agent pool's properties: an agentPoolProfiles entry or
// the properties of an agentPools resource.
func poolProfile(r *reader, path string, m map[string]json.RawMessage) fleet.PoolProfile {
	p := fleet.PoolProfile{
		Name:                r.text(path+".name", get(m, "name")),
		Mode:                r.text(path+".mode", get(m, "mode")),
		OSType:              r.text(path+".osType", get(m, "osType")),
		OSSKU:               r.text(path+".osSKU", get(m, "osSKU")),
		VMSize:              r.text(path+".vmSize", get(m, "vmSize")),
		Count:               r.integer(path+".count", get(m, "count")),
		OrchestratorVersion: r.text(path+".currentOrchestratorVersion", get(m, "currentOrchestratorVersion")),
		NodeImageVersion:    r.text(path+".nodeImageVersion", get(m, "nodeImageVersion")),
		ProvisioningState:   r.text(path+".provisioningState", get(m, "provisioningState")),
	}
	if p.OrchestratorVersion == "" {
		p.OrchestratorVersion = r.text(path+".orchestratorVersion", get(m, "orchestratorVersion"))
	}
	us := r.object(path+".upgradeSettings", get(m, "upgradeSettings"))
	p.MaxSurge = r.text(path+".upgradeSettings.maxSurge", get(us, "maxSurge"))
	p.MaxUnavailable = r.text(path+".upgradeSettings.maxUnavailable", get(us, "maxUnavailable"))
	p.DrainTimeoutMinutes = r.integer(path+".upgradeSettings.drainTimeoutInMinutes", get(us, "drainTimeoutInMinutes"))
	p.NodeSoakMinutes = r.integer(path+".upgradeSettings.nodeSoakDurationInMinutes", get(us, "nodeSoakDurationInMinutes"))
	p.UndrainableBehavior = r.text(path+".upgradeSettings.undrainableNodeBehavior", get(us, "undrainableNodeBehavior"))
	return p
}

// tags copies resource tags; a null value becomes "". No tags gives nil.
func tags(in map[string]*string) map[string]string {
	if len(in) == 0 {
		return nil
	}
	out := make(map[string]string, len(in))
	for k, v := range in {
		out[k] = deref(v)
	}
	return out
}
