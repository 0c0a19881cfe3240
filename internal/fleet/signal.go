// Package fleet is upgradewatch's domain: the clusters it watches, the signals that
// change them, and the pure transition from (old state, signal) to new state.
//
// It imports no Azure SDK. Decoding outside bytes into a Signal is the job of
// internal/events; storing a Cluster is the job of internal/state.
package fleet

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// SignalKind says what a signal means for the state, whatever its transport.
type SignalKind string

// Signal kinds. Each names a distinct effect on the state.
const (
	KindRollingStarted    SignalKind = "RollingStarted"
	KindRollingSucceeded  SignalKind = "RollingSucceeded"
	KindRollingFailed     SignalKind = "RollingFailed"
	KindVersionsAvailable SignalKind = "KubernetesVersionsAvailable"
	KindSupportEnding     SignalKind = "ClusterSupportEnding"
	KindSupportEnded      SignalKind = "ClusterSupportEnded"
	KindScheduledEvent    SignalKind = "ScheduledEvent"
	KindClusterUpdated    SignalKind = "ClusterUpdated"
	KindClusterDeleted    SignalKind = "ClusterDeleted"
	KindPoolUpdated       SignalKind = "PoolUpdated"
	KindPoolDeleted       SignalKind = "PoolDeleted"
	KindNodesObserved     SignalKind = "NodesObserved" // a node inventory snapshot's per-pool summary
	KindUnsupported       SignalKind = "Unsupported"   // accepted and recorded, no state change
)

// Types of the signals upgradewatch makes itself (Signal.Type).
const (
	// TypeARMRead is an ARM read of a cluster, its pools, their latest images and
	// its maintenance configurations (Kind ClusterUpdated).
	TypeARMRead = "io.upgradewatch.arm.ClusterRead"
	// TypeNodeSnapshot is a node inventory snapshot (Kind NodesObserved).
	TypeNodeSnapshot = "io.upgradewatch.nodes.Snapshot"
)

// Signal is one accepted input, normalised. Exactly one of the payload pointers
// is set, according to Kind (none for rolling and unsupported kinds).
type Signal struct {
	ID      string    // the event id (Event Grid id / CloudEvents id)
	Type    string    // the event type as sent
	Source  string    // topic (Event Grid) or source (CloudEvents)
	Subject string    // as sent
	Time    time.Time // when the event happened (eventTime / time), UTC
	Schema  string    // SchemaEventGrid or SchemaCloudEvents
	Cluster ClusterID
	Kind    SignalKind

	Pool      string              // rolling and pool kinds
	Versions  *KubernetesVersions // KindVersionsAvailable
	Support   *SupportNotice      // KindSupportEnding, KindSupportEnded
	Scheduled *ScheduledEvent     // KindScheduledEvent
	Profile   *ClusterProfile     // KindClusterUpdated
	PoolSpec  *PoolProfile        // KindPoolUpdated
	Inventory *InventorySummary   // KindNodesObserved
	Activity  *Activity           // KindActivity (and KindIgnored, as far as it was read)
}

// Event schemas a signal can arrive in.
const (
	SchemaEventGrid   = "EventGridSchema"
	SchemaCloudEvents = "CloudEventSchemaV1_0"
	// SchemaCommonAlert is Azure Monitor's common alert schema (activity-log alerts).
	SchemaCommonAlert = "azureMonitorCommonAlertSchema"
	// SchemaActivityExport is a diagnostic-settings export record.
	SchemaActivityExport = "ActivityLogExport"
)

// KubernetesVersions is the data of NewKubernetesVersionAvailable.
type KubernetesVersions struct {
	LatestSupported string
	LatestStable    string
	LowestMinor     string
	LatestPreview   string
}

// SupportNotice is the data of ClusterSupportEnding / ClusterSupportEnded.
type SupportNotice struct {
	KubernetesVersion string
}

// ScheduledEvent is one AKS Communication Manager notification.
type ScheduledEvent struct {
	EventID        string // properties.eventId, else resourceInfo.name
	Status         string // normalised: Scheduled|Started|Completed|Failed|Canceled
	Source         string // eventSource as sent (AutoUpgrader, EOLNotification, …)
	Description    string
	UpgradeType    string // NodeOSUpgrade|K8sVersionUpgrade|EOL|Unknown
	Details        string // eventDetails flattened to text (JSON when it was structured)
	ScheduledTime  time.Time
	StartTime      time.Time // zero when AKS sent its zero sentinel
	LastUpdateTime time.Time
}

// Scheduled-event statuses after normalisation (Cancelled → Canceled).
const (
	ScheduledStatusScheduled = "Scheduled"
	ScheduledStatusStarted   = "Started"
	ScheduledStatusCompleted = "Completed"
	ScheduledStatusFailed    = "Failed"
	ScheduledStatusCanceled  = "Canceled"
)

// ClusterProfile is what a managedClusters resource payload says about a cluster.
type ClusterProfile struct {
	Location             string
	KubernetesVersion    string
	UpgradeChannel       string // none|patch|stable|rapid|node-image ("" when absent)
	NodeOSUpgradeChannel string // None|Unmanaged|SecurityPatch|NodeImage ("" when absent)
	ProvisioningState    string
	Tags                 map[string]string
	Pools                []PoolProfile // agentPoolProfiles; nil when the payload had none

	// Maintenance holds the cluster's maintenance configurations when the source
	// read them (an ARM read does; resource notifications do not).
	MaintenanceKnown bool
	Maintenance      []MaintenanceWindow

	// OIDCIssuerURL is the cluster's OIDC issuer (oidcIssuerProfile.issuerURL;
	// "" when the issuer is not enabled), the only issuer whose tokens may
	// write the cluster's nodes. Only the app's own ARM read sets it
	// (OIDCIssuerKnown): whoever can deliver an event must not choose it.
	OIDCIssuerKnown bool
	OIDCIssuerURL   string
}

// PoolProfile is what an agent pool payload (or a cluster's agentPoolProfiles entry) says.
type PoolProfile struct {
	Name                string
	Mode                string // System|User
	OSType              string // Linux|Windows
	OSSKU               string // Ubuntu|AzureLinux|Windows2022|…
	VMSize              string
	Count               int
	OrchestratorVersion string
	NodeImageVersion    string
	ProvisioningState   string
	MaxSurge            string
	MaxUnavailable      string
	DrainTimeoutMinutes int
	NodeSoakMinutes     int
	UndrainableBehavior string

	// LatestNodeImageVersion is the newest image AKS offers the pool (agent pool
	// upgrade profile); "" when the source did not read it.
	LatestNodeImageVersion string
}

// ClusterID identifies a managed cluster. Comparisons are case-insensitive:
// Key is the canonical lower-case form.
type ClusterID struct {
	SubscriptionID string
	ResourceGroup  string
	Name           string
}

// ErrInvalidResourceID reports an ARM ID that does not name a managed cluster.
var ErrInvalidResourceID = errors.New("not a managed cluster resource ID")

var (
	subscriptionRE = regexp.MustCompile(`^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$`)
	// Resource group names, 1 to 90 characters: what ARM's own pattern
	// ^[-\w\._\(\)]+$ allows (.NET's \w: letters of any script, combining
	// marks, decimal digits, connector punctuation such as _) plus the
	// documented Char.IsLetterOrDigit; not ending in a period.
	resourceGroupRE = regexp.MustCompile(`^[\p{L}\p{Mn}\p{Nd}\p{Pc}()\-.]{0,89}[\p{L}\p{Mn}\p{Nd}\p{Pc}()\-]$`)
	clusterNameRE   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$`)
	poolNameRE      = regexp.MustCompile(`^[A-Za-z0-9]{1,12}$`)
)

// NewClusterID validates the three parts against Azure's naming rules, which also
// guarantees that none contains a quote, a key separator or a character Table
// storage forbids in keys.
func NewClusterID(subscriptionID, resourceGroup, name string) (ClusterID, error) {
	switch {
	case !subscriptionRE.MatchString(subscriptionID):
		return ClusterID{}, fmt.Errorf("%w: subscription %q is not a GUID", ErrInvalidResourceID, subscriptionID)
	case !resourceGroupRE.MatchString(resourceGroup):
		return ClusterID{}, fmt.Errorf("%w: invalid resource group name %q", ErrInvalidResourceID, resourceGroup)
	case !clusterNameRE.MatchString(name):
		return ClusterID{}, fmt.Errorf("%w: invalid cluster name %q", ErrInvalidResourceID, name)
	}
	return ClusterID{SubscriptionID: subscriptionID, ResourceGroup: resourceGroup, Name: name}, nil
}

// ValidPoolName reports whether name is a possible AKS agent pool name.
func ValidPoolName(name string) bool { return poolNameRE.MatchString(name) }

// ParseResourceID extracts the managed cluster from an ARM ID of the cluster or
// of anything beneath it (agentPools/x, scheduledEvents/y, …). Segment names are
// matched case-insensitively; the values keep their case. It also returns the
// child path below the cluster ("agentPools/np1"), if any.
func ParseResourceID(id string) (ClusterID, string, error) {
	parts := strings.Split(strings.Trim(strings.TrimSpace(id), "/"), "/")
	// subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.ContainerService/managedClusters/{name}
	if len(parts) < 8 ||
		!strings.EqualFold(parts[0], "subscriptions") ||
		!strings.EqualFold(parts[2], "resourceGroups") ||
		!strings.EqualFold(parts[4], "providers") ||
		!strings.EqualFold(parts[5], "Microsoft.ContainerService") ||
		!strings.EqualFold(parts[6], "managedClusters") {
		return ClusterID{}, "", fmt.Errorf("%w: %q", ErrInvalidResourceID, truncate(id, 300))
	}
	c, err := NewClusterID(parts[1], parts[3], parts[7])
	if err != nil {
		// A sender that treats the ID as a URI may percent-encode a name
		// (rg-m%C3%BCnchen-prod); no valid name contains '%', so decoding
		// cannot make two different resources one. The error quotes the
		// input as sent when even the decoded names are invalid.
		dc, derr := NewClusterID(unescape(parts[1]), unescape(parts[3]), unescape(parts[7]))
		if derr != nil {
			return ClusterID{}, "", err
		}
		c = dc
	}
	return c, strings.Join(parts[8:], "/"), nil
}

// unescape percent-decodes one ID segment, leaving it as it is when it holds
// no escape or an invalid one.
func unescape(seg string) string {
	if !strings.Contains(seg, "%") {
		return seg
	}
	if u, err := url.PathUnescape(seg); err == nil {
		return u
	}
	return seg
}

// Key is the canonical, lower-case identity: <subscription>~<resourceGroup>~<name>.
func (c ClusterID) Key() string {
	return strings.ToLower(c.SubscriptionID + "~" + c.ResourceGroup + "~" + c.Name)
}

// ResourceID is the ARM ID of the cluster, in the case it was first seen.
func (c ClusterID) ResourceID() string {
	return "/subscriptions/" + c.SubscriptionID + "/resourceGroups/" + c.ResourceGroup +
		"/providers/Microsoft.ContainerService/managedClusters/" + c.Name
}

// IsZero reports whether c is unset.
func (c ClusterID) IsZero() bool { return c.SubscriptionID == "" && c.Name == "" }

func (c ClusterID) String() string { return c.Key() }

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
