package timeline

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
)

// cluster is the generator's model of one managed cluster.
type cluster struct {
	id             fleet.ClusterID
	location       string
	k8s            string
	upgradeChannel string // none|patch|stable|rapid|node-image
	nodeOSChannel  string // None|Unmanaged|SecurityPatch|NodeImage
	tags           map[string]string
	pools          []pool
	aksSchema      string // schema of the cluster's AKS system topic subscription
	arnSchema      string // schema of the subscription's Resource Notifications subscription
	lowerTopic     bool   // AKS topic with a lower-cased provider segment, as the quickstart shows
}

type pool struct {
	name    string
	mode    string // System|User
	osType  string // Linux|Windows
	osSKU   string // Ubuntu|AzureLinux|Windows2022
	vmSize  string
	count   int
	image   string
	removed bool
}

// topic is the AKS system topic (and CloudEvents source): the cluster ARM ID.
func (c *cluster) topic() string {
	if c.lowerTopic {
		return fmt.Sprintf("/subscriptions/%s/resourceGroups/%s/providers/microsoft.containerservice/managedclusters/%s",
			c.id.SubscriptionID, c.id.ResourceGroup, c.id.Name)
	}
	return c.id.ResourceID()
}

func (c *cluster) poolID(name string) string { return c.id.ResourceID() + "/agentPools/" + name }

func (c *cluster) subscription() string { return "/subscriptions/" + c.id.SubscriptionID }

func (c *cluster) pool(name string) *pool {
	for i := range c.pools {
		if c.pools[i].name == name {
			return &c.pools[i]
		}
	}
	panic("timeline: no pool " + name) // a bug in a scenario, not an input error
}

// stream collects the events of a timeline.
type stream struct {
	ids    ids
	events []Event
}

// sorted returns the events in time order; events at the same time keep the
// order they were emitted in.
func (s *stream) sorted() []Event {
	slices.SortStableFunc(s.events, func(a, b Event) int { return a.Time.Compare(b.Time) })
	return s.events
}

// Envelopes. Field order follows the documented examples.
type eventGridEvent struct {
	ID              string `json:"id"`
	Topic           string `json:"topic"`
	Subject         string `json:"subject"`
	EventType       string `json:"eventType"`
	EventTime       string `json:"eventTime"`
	Data            any    `json:"data"`
	DataVersion     string `json:"dataVersion"`
	MetadataVersion string `json:"metadataVersion"`
}

type cloudEvent struct {
	ID          string `json:"id"`
	Source      string `json:"source"`
	Subject     string `json:"subject"`
	Type        string `json:"type"`
	Time        string `json:"time"`
	Data        any    `json:"data"`
	SpecVersion string `json:"specversion"`
}

// emit adds one event. dataVersion only exists in the Event Grid schema.
func (s *stream) emit(c *cluster, schema, id, typ, topic, subject, dataVersion string, t time.Time, data any) {
	t = t.UTC().Truncate(tick)
	var v any
	if schema == SchemaCloudEvents {
		v = cloudEvent{ID: id, Source: topic, Subject: subject, Type: typ, Time: t.Format(layoutEventTime), Data: data, SpecVersion: "1.0"}
	} else {
		v = eventGridEvent{ID: id, Topic: topic, Subject: subject, EventType: typ, EventTime: t.Format(layoutEventTime),
			Data: data, DataVersion: dataVersion, MetadataVersion: "1"}
	}
	s.events = append(s.events, Event{Raw: marshal(v), ID: id, Type: typ, Cluster: c.id.Key(), Time: t})
}

// marshal encodes without HTML escaping, as Azure does, and panics on the
// impossible: every value here is built from plain structs and strings.
func marshal(v any) json.RawMessage {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic("timeline: marshal: " + err.Error())
	}
	return json.RawMessage(bytes.TrimRight(b.Bytes(), "\n"))
}

// AKS system events: topic = cluster ID, subject = cluster name.

func (s *stream) aks(c *cluster, typ string, t time.Time, data any) {
	s.emit(c, c.aksSchema, s.ids.hex40(), typ, c.topic(), c.id.Name, "1", t, data)
}

func (s *stream) rolling(c *cluster, typ, poolName string, t time.Time) {
	s.aks(c, typ, t, struct {
		NodePoolName string `json:"nodePoolName"`
	}{poolName})
}

func (s *stream) supportEnding(c *cluster, version string, t time.Time) {
	s.aks(c, TypeClusterSupportEnding, t, struct {
		KubernetesVersion string `json:"kubernetesVersion"`
	}{version})
}

type versionsData struct {
	LatestSupportedKubernetesVersion string `json:"latestSupportedKubernetesVersion"`
	LatestStableKubernetesVersion    string `json:"latestStableKubernetesVersion"`
	LowestMinorKubernetesVersion     string `json:"lowestMinorKubernetesVersion"`
	LatestPreviewKubernetesVersion   string `json:"latestPreviewKubernetesVersion,omitempty"`
}

func (s *stream) versionsAvailable(c *cluster, v versionsData, t time.Time) {
	s.aks(c, TypeNewKubernetesVersionAvailable, t, v)
}

// Azure Resource Notifications: topic = subscription, subject = resource ID.

type resourceInfo struct {
	Tags       map[string]string `json:"tags,omitempty"`
	ID         string            `json:"id"`
	Name       string            `json:"name"`
	Type       string            `json:"type"`
	Location   string            `json:"location,omitempty"`
	Properties any               `json:"properties,omitempty"`
}

type operationalInfo struct {
	ResourceEventTime string `json:"resourceEventTime"`
}

type arnData struct {
	ResourceInfo    resourceInfo    `json:"resourceInfo"`
	OperationalInfo operationalInfo `json:"operationalInfo"`
	APIVersion      string          `json:"apiVersion,omitempty"`
}

func (s *stream) arn(c *cluster, typ string, t time.Time, info resourceInfo, apiVersion, eventTimeLayout string) {
	data := arnData{
		ResourceInfo:    info,
		OperationalInfo: operationalInfo{ResourceEventTime: t.UTC().Truncate(tick).Format(eventTimeLayout)},
		APIVersion:      apiVersion,
	}
	s.emit(c, c.arnSchema, s.ids.guid(), typ, c.subscription(), info.ID, "1", t, data)
}

const (
	armAPIVersion       = "2025-10-01"
	scheduledAPIVersion = "2023-11-02-preview"
)

type upgradeSettings struct {
	MaxSurge              string `json:"maxSurge"`
	MaxUnavailable        string `json:"maxUnavailable"`
	DrainTimeoutInMinutes int    `json:"drainTimeoutInMinutes"`
}

type powerState struct {
	Code string `json:"code"`
}

type poolProperties struct {
	Name                       string          `json:"name,omitempty"` // only inside agentPoolProfiles
	Count                      int             `json:"count"`
	VMSize                     string          `json:"vmSize"`
	OSDiskSizeGB               int             `json:"osDiskSizeGB"`
	OSType                     string          `json:"osType"`
	OSSKU                      string          `json:"osSKU"`
	Mode                       string          `json:"mode"`
	Type                       string          `json:"type"`
	OrchestratorVersion        string          `json:"orchestratorVersion"`
	CurrentOrchestratorVersion string          `json:"currentOrchestratorVersion"`
	NodeImageVersion           string          `json:"nodeImageVersion"`
	UpgradeSettings            upgradeSettings `json:"upgradeSettings"`
	ProvisioningState          string          `json:"provisioningState"`
	PowerState                 powerState      `json:"powerState"`
}

func (c *cluster) poolProperties(p pool, withName bool) poolProperties {
	pp := poolProperties{
		Count: p.count, VMSize: p.vmSize, OSDiskSizeGB: 128, OSType: p.osType, OSSKU: p.osSKU, Mode: p.mode,
		Type:                "VirtualMachineScaleSets",
		OrchestratorVersion: c.k8s, CurrentOrchestratorVersion: c.k8s,
		NodeImageVersion:  p.image,
		UpgradeSettings:   upgradeSettings{MaxSurge: "33%", MaxUnavailable: "0", DrainTimeoutInMinutes: 30},
		ProvisioningState: "Succeeded",
		PowerState:        powerState{Code: "Running"},
	}
	if withName {
		pp.Name = p.name
	}
	return pp
}

type autoUpgradeProfile struct {
	UpgradeChannel       string `json:"upgradeChannel"`
	NodeOSUpgradeChannel string `json:"nodeOSUpgradeChannel"`
}

type clusterProperties struct {
	ProvisioningState        string             `json:"provisioningState"`
	PowerState               powerState         `json:"powerState"`
	KubernetesVersion        string             `json:"kubernetesVersion"`
	CurrentKubernetesVersion string             `json:"currentKubernetesVersion"`
	DNSPrefix                string             `json:"dnsPrefix"`
	FQDN                     string             `json:"fqdn"`
	NodeResourceGroup        string             `json:"nodeResourceGroup"`
	AutoUpgradeProfile       autoUpgradeProfile `json:"autoUpgradeProfile"`
	AgentPoolProfiles        []poolProperties   `json:"agentPoolProfiles"`
}

// clusterSnapshot emits the cluster's current ARM payload as a Resource
// Notifications CreatedOrUpdated.
func (s *stream) clusterSnapshot(c *cluster, t time.Time) {
	props := clusterProperties{
		ProvisioningState: "Succeeded", PowerState: powerState{Code: "Running"},
		KubernetesVersion: c.k8s, CurrentKubernetesVersion: c.k8s,
		DNSPrefix:          c.id.Name + "-dns",
		FQDN:               fmt.Sprintf("%s-dns-%s.hcp.%s.azmk8s.io", c.id.Name, guidOf(c.id.Key())[:8], c.location),
		NodeResourceGroup:  fmt.Sprintf("MC_%s_%s_%s", c.id.ResourceGroup, c.id.Name, c.location),
		AutoUpgradeProfile: autoUpgradeProfile{UpgradeChannel: c.upgradeChannel, NodeOSUpgradeChannel: c.nodeOSChannel},
	}
	for _, p := range c.pools {
		if !p.removed {
			props.AgentPoolProfiles = append(props.AgentPoolProfiles, c.poolProperties(p, true))
		}
	}
	tags := map[string]string{}
	for k, v := range c.tags {
		tags[k] = v
	}
	s.arn(c, TypeResourceCreatedOrUpdated, t, resourceInfo{
		Tags: tags, ID: c.id.ResourceID(), Name: c.id.Name, Type: "Microsoft.ContainerService/managedClusters",
		Location: c.location, Properties: props,
	}, armAPIVersion, layoutEventTime)
}

// poolSnapshot emits one agent pool's ARM payload as a CreatedOrUpdated. Agent
// pools are sub-resources: no location, no tags.
func (s *stream) poolSnapshot(c *cluster, p pool, t time.Time) {
	s.arn(c, TypeResourceCreatedOrUpdated, t, resourceInfo{
		ID: c.poolID(p.name), Name: p.name, Type: "Microsoft.ContainerService/managedClusters/agentPools",
		Properties: c.poolProperties(p, false),
	}, armAPIVersion, layoutEventTime)
}

// poolDeleted emits a Resource Notifications Deleted for a pool: id, name and
// type only.
func (s *stream) poolDeleted(c *cluster, name string, t time.Time) {
	s.arn(c, TypeResourceDeleted, t, resourceInfo{
		ID: c.poolID(name), Name: name, Type: "Microsoft.ContainerService/managedClusters/agentPools",
	}, "", layoutEventTime)
}

// scheduled is one notification of an AKS Communication Manager event.
type scheduled struct {
	eventID   string
	status    string // Scheduled|Started|Completed|Failed|Canceled
	details   string // eventDetails: free text, or JSON text for a JSON-string detail
	planned   time.Time
	startedAt time.Time // zero: sent as the .NET zero value
}

type scheduledProperties struct {
	Description    string   `json:"description"`
	EventID        string   `json:"eventId"`
	EventSource    string   `json:"eventSource"`
	EventStatus    string   `json:"eventStatus"`
	EventDetails   string   `json:"eventDetails"`
	ScheduledTime  string   `json:"scheduledTime"`
	StartTime      string   `json:"startTime"`
	LastUpdateTime string   `json:"lastUpdateTime"`
	Resources      []string `json:"resources"`
	ResourceType   string   `json:"resourceType"`
}

func (s *stream) scheduledEvent(c *cluster, se scheduled, t time.Time) {
	// The documented example writes the ID with a lower-case resourcegroups segment.
	clusterID := fmt.Sprintf("/subscriptions/%s/resourcegroups/%s/providers/Microsoft.ContainerService/managedClusters/%s",
		c.id.SubscriptionID, c.id.ResourceGroup, c.id.Name)
	props := scheduledProperties{
		Description: "ScheduledEvents", EventID: se.eventID, EventSource: "AutoUpgrader", EventStatus: se.status,
		EventDetails:  se.details,
		ScheduledTime: se.planned.UTC().Format(layoutNanos),
		StartTime:     zeroTime, LastUpdateTime: zeroTime,
		Resources:    []string{clusterID},
		ResourceType: "ManagedCluster",
	}
	if !se.startedAt.IsZero() {
		props.StartTime = se.startedAt.UTC().Truncate(tick).Format(time.RFC3339Nano)
		props.LastUpdateTime = t.UTC().Truncate(tick).Format(time.RFC3339Nano)
	}
	info := resourceInfo{
		ID: clusterID + "/scheduledEvents/" + se.eventID, Name: se.eventID,
		Type: "Microsoft.ContainerService/managedClusters/scheduledEvents", Location: c.location, Properties: props,
	}
	if c.arnSchema == SchemaCloudEvents {
		info.Location = "" // the CloudEvents example carries no location
	}
	s.arn(c, TypeScheduledEventEmitted, t, info, scheduledAPIVersion, layoutNoZone)
}

// activity emits an activity-log Microsoft.Resources event (subscription
// topic, Event Grid schema, dataVersion 2) for an ARM request on the cluster
// or below it (child: "", "agentPools/<pool>", "maintenanceConfigurations/<name>"):
// op is the operation below managedClusters ("write", "agentPools/delete",
// "agentPools/upgradeNodeImageVersion/action", …) and outcome Success,
// Failure or Cancel. A caller with an "@" is a user, anything else a
// service principal's object id.
func (s *stream) activity(c *cluster, child, op, outcome, caller, tenant string, t time.Time) {
	id := s.ids.guid()
	scope := c.id.ResourceID()
	if child != "" {
		scope += "/" + child
	}
	action := "Microsoft.ContainerService/managedClusters/" + op
	kind := "Write"
	switch {
	case strings.HasSuffix(op, "/action"):
		kind = "Action"
	case strings.HasSuffix(op, "delete"):
		kind = "Delete"
	}
	method := map[string]string{"Write": "PUT", "Action": "POST", "Delete": "DELETE"}[kind]
	principal, principalType := caller, "ServicePrincipal"
	claims := map[string]string{
		"aud": "https://management.core.windows.net/", "iss": "https://sts.windows.net/" + tenant + "/",
		"appidacr": "2", "ver": "1.0",
		"http://schemas.microsoft.com/identity/claims/tenantid": tenant,
	}
	if strings.Contains(caller, "@") {
		principal, principalType = guidOf(caller), "User"
		claims["http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn"] = caller
		claims["http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name"] = caller
		claims["appid"], claims["appidacr"] = "04b07795-8ddb-461a-bbee-02f9e1bf7b46", "0" // Azure CLI
	} else {
		claims["appid"] = guidOf(principal + "/app")
	}
	claims["http://schemas.microsoft.com/identity/claims/objectidentifier"] = principal
	status := map[string]string{"Success": "Succeeded", "Failure": "Failed", "Cancel": "Canceled"}[outcome]
	data := map[string]any{
		"authorization": map[string]any{
			"scope":  scope,
			"action": action,
			"evidence": map[string]string{
				"role": "Azure Kubernetes Service Contributor Role", "roleAssignmentScope": "/subscriptions/" + c.id.SubscriptionID,
				"roleAssignmentId": guidOf(id + "/ra"), "roleDefinitionId": strings.ReplaceAll(guidOf("role/aks-contributor"), "-", ""),
				"principalId": principal, "principalType": principalType,
			},
		},
		"claims":        claims,
		"correlationId": guidOf(id + "/correlation"),
		"httpRequest": map[string]string{
			"clientRequestId": guidOf(id + "/request"), "clientIpAddress": "203.0.113.24", "method": method,
			"url": "https://management.azure.com" + scope + "?api-version=" + armAPIVersion,
		},
		"resourceProvider": "Microsoft.ContainerService",
		"resourceUri":      scope,
		"operationName":    action,
		"status":           status,
		"subscriptionId":   c.id.SubscriptionID,
		"tenantId":         tenant,
	}
	s.emit(c, SchemaEventGrid, id, "Microsoft.Resources.Resource"+kind+outcome, c.subscription(), scope, "2", t, data)
}

// writeSuccess emits the activity-log event of a successful PUT of the cluster.
func (s *stream) writeSuccess(c *cluster, tenant, caller string, t time.Time) {
	s.activity(c, "", "write", "Success", caller, tenant, t)
}

// imageVersion formats a Linux node image version (YYYYMM.DD.BUILD) for the
// image released on day d.
func imageVersion(d time.Time) string { return d.Format("200601.02") + ".0" }

// nodeImage returns the full node image name of a pool's OS for the Linux
// image released on day d (Windows images carry their own build numbers).
func nodeImage(osSKU string, d time.Time) string {
	switch osSKU {
	case "AzureLinux":
		return "AKSAzureLinux-V3gen2-" + imageVersion(d)
	case "Windows2022":
		// <OS build>.<revision>.<YYMMDD>; the revision advances monthly.
		months := (d.Year()-2026)*12 + int(d.Month()) - 10
		rev := max(1, 4294+50*months)
		return fmt.Sprintf("AKSWindows-2022-containerd-20348.%d.%s", rev, d.Format("060102"))
	default:
		return "AKSUbuntu-2204gen2containerd-" + imageVersion(d)
	}
}
