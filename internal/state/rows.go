package state

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
)

// Row kinds: the value of every row's Kind column.
const (
	KindCluster   = "Cluster"
	KindSequence  = "Sequence"
	KindNodePool  = "NodePool"
	KindUpgrade   = "Upgrade"
	KindScheduled = "ScheduledEvent"
	KindSignal    = "Signal"
	KindInFlight  = "InFlight"
	KindIndexed   = "IndexedCluster"
	KindRejection = "Rejection"
	KindFinding   = "Finding"
	KindOpenIndex = "OpenFinding"
	KindDue       = "Due"
	KindActivity  = "Activity"
	// KindOutbox and KindRemediation: see outbox.go.
)

// RowKeys and prefixes in a cluster's partition of the Fleet table. State rows
// sort before "signal~", so loading a cluster reads `RowKey lt 'signal~'` and
// never the ever-growing audit rows.
const (
	rkActPrefix   = "act~" // act~<time>~<signal id>: the newest activities
	rkCluster     = "cluster"
	rkSeqPrefix   = "seq~"
	rkPoolPrefix  = "pool~"
	rkOpPrefix    = "op~"
	rkSchedPrefix = "sched~"
	rkFindPrefix  = "finding~"
	// A finding that opens again after it was resolved keeps its row; the
	// resolved instance is copied here first, after the node rows, so nothing
	// is ever deleted and loading a cluster never reads the archive.
	rkFindArchive = "zfinding~"
	rkSigPrefix   = "signal~"
	stateRowsEnd  = rkSigPrefix
)

// FleetIndex partitions.
const (
	IndexClusters = "Cluster"
	IndexInFlight = "InFlight"
	IndexFindings = "Finding" // open findings: <cluster key>~<code>~<target>
	IndexDue      = "Due"     // Due~<hour>~<shard>, <time>~<cluster key>: when the sweep must re-evaluate a cluster
)

// row is one entity as our model sees it: column → typed Go value (string,
// int32, int64, bool, time.Time). PartitionKey/RowKey are not in it.
type row map[string]any

func (r row) equal(o row) bool { return reflect.DeepEqual(r, o) }

// marshal encodes a row for aztables with OData type annotations, so that
// dashboards see Edm.DateTime and Edm.Int64 columns.
func (r row) marshal(pk, rk string) ([]byte, error) {
	r = fitRow(maps.Clone(r)) // rowsOf's rows fit already; index and node rows are fitted here
	m := map[string]any{"PartitionKey": pk, "RowKey": rk}
	for k, v := range r {
		switch v := v.(type) {
		case time.Time:
			m[k] = v.UTC().Format("2006-01-02T15:04:05.0000000Z")
			m[k+"@odata.type"] = "Edm.DateTime"
		case int64:
			m[k] = strconv.FormatInt(v, 10)
			m[k+"@odata.type"] = "Edm.Int64"
		default:
			m[k] = v
		}
	}
	return json.Marshal(m)
}

// entity is a row as read back from the service (JSON, minimal metadata).
type entity map[string]any

func decodeEntity(b []byte) (entity, error) {
	var e entity
	if err := json.Unmarshal(b, &e); err != nil {
		return nil, fmt.Errorf("decode entity: %w", err)
	}
	return e, nil
}

func (e entity) str(k string) string {
	if v, ok := e[k].(string); ok {
		return v
	}
	return ""
}

func (e entity) int(k string) int64 {
	switch v := e[k].(type) {
	case float64:
		return int64(v)
	case string:
		n, _ := strconv.ParseInt(v, 10, 64)
		return n
	}
	return 0
}

func (e entity) bool(k string) bool {
	v, _ := e[k].(bool)
	return v
}

func (e entity) time(k string) time.Time {
	s, ok := e[k].(string)
	if !ok || s == "" {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}
	}
	return t.UTC()
}

// setTime sets a DateTime column only when t is set: a zero time means "unknown".
func setTime(r row, k string, t time.Time) {
	if !t.IsZero() {
		r[k] = t.UTC().Truncate(100 * time.Nanosecond)
	}
}

func setStamp(r row, prefix string, s fleet.Stamp) {
	setTime(r, prefix+"At", s.At)
	if s.SignalID != "" {
		r[prefix+"By"] = s.SignalID
	}
}

// setDeletionReport writes a deletion the activity log reported and ARM has
// not confirmed, for dashboards. It derives from the activities, so it is
// never read back.
func setDeletionReport(r row, d *fleet.DeletionReport) {
	if d != nil {
		setTime(r, "DeletionReportedAt", d.At)
		r["DeletionReportedBy"] = d.Actor
	}
}

func (e entity) stamp(prefix string) fleet.Stamp {
	return fleet.Stamp{At: e.time(prefix + "At"), SignalID: e.str(prefix + "By")}
}

// rowsOf encodes a cluster's state as the rows of its partition (without the
// sequence row and without signal rows), keyed by RowKey: one function per
// row kind. The volatile columns are the pseudo-row rkVolatile, which the
// commit writes on the sequence row (volatile.go).
func rowsOf(c *fleet.Cluster) map[string]row {
	out := make(map[string]row, 3+len(c.Pools)+len(c.Upgrades)+len(c.Scheduled))
	out[rkCluster] = clusterRow(c)
	out[rkVolatile] = volatileRow(c)
	for _, p := range c.Pools {
		out[rkPoolPrefix+p.Name] = poolRow(p)
	}
	for _, u := range c.Upgrades {
		out[rkOpPrefix+u.Key] = upgradeRow(u)
	}
	for _, a := range c.Activities {
		out[activityKey(a)] = activityRow(a)
	}
	for _, f := range c.Findings {
		out[findingKey(f.Code, f.Target)] = findingRow(f)
	}
	for id, i := range c.Outbox {
		if !i.Done() { // done: archived by the commit (see leaving)
			out[rkOutPrefix+safeKey(id)] = intentRow(i)
		}
	}
	for id, m := range c.Remediations {
		out[rkRemPrefix+safeKey(id)] = remediationRow(m)
	}
	for id, s := range c.Scheduled {
		out[rkSchedPrefix+safeKey(id)] = scheduledRow(s)
	}
	for _, r := range out {
		fitRow(r)
	}
	return out
}

// clusterRow is the cluster's head row (RowKey "cluster"), without the
// volatile columns (volatileRow).
func clusterRow(c *fleet.Cluster) row {
	head := row{
		"Kind":                             KindCluster,
		"SubscriptionId":                   c.ID.SubscriptionID,
		"ResourceGroup":                    c.ID.ResourceGroup,
		"ClusterName":                      c.ID.Name,
		"ResourceId":                       c.ID.ResourceID(),
		"Location":                         c.Location,
		"KubernetesVersion":                c.KubernetesVersion,
		"UpgradeChannel":                   c.UpgradeChannel,
		"NodeOSUpgradeChannel":             c.NodeOSUpgradeChannel,
		"ProvisioningState":                c.ProvisioningState,
		"Deleted":                          c.Deleted,
		"Support":                          c.Support,
		"SupportVersion":                   c.SupportVersion,
		"LatestSupportedKubernetesVersion": c.Versions.LatestSupported,
		"LatestStableKubernetesVersion":    c.Versions.LatestStable,
		"LowestMinorKubernetesVersion":     c.Versions.LowestMinor,
		"LatestPreviewKubernetesVersion":   c.Versions.LatestPreview,
	}
	setTime(head, "FirstEventAt", c.FirstEventAt)
	setStamp(head, "Profile", c.ProfileAt)
	setStamp(head, "Presence", c.Presence)
	setStamp(head, "PoolsListed", c.PoolsListed)
	setStamp(head, "Versions", c.VersionsAt)
	setStamp(head, "Support", c.SupportAt)
	setStamp(head, "NodesListed", c.NodesListed)
	setTime(head, "NodeOSChannelChangedAt", c.NodeOSChannelChangedAt)
	setTime(head, "UpgradeChannelChangedAt", c.UpgradeChannelChangedAt)
	tagsColumns(head, c.Tags)
	channelsColumn(head, c.Channels)
	setChange(head, "NodeOSChannel", c.NodeOSChannelChange)
	setChange(head, "UpgradeChannel", c.UpgradeChannelChange)
	if m := c.MaintenanceChange; m != nil {
		head["MaintenanceChangedBy"] = m.Actor
		setTime(head, "MaintenanceChangedAt", m.At)
	}
	if since, ok := c.RefreshWanted(); ok {
		setTime(head, "RefreshWantedSince", since)
	}
	setDeletionReport(head, c.DeletionReported)
	if c.MaintenanceKnown {
		maintenanceColumn(head, c.Maintenance)
		setStamp(head, "Maintenance", c.MaintenanceAt)
	}
	if c.OIDCIssuerKnown {
		// Empty when the cluster has no issuer; OidcIssuerAt says it is known.
		head["OidcIssuer"] = c.OIDCIssuer
		setStamp(head, "OidcIssuer", c.OIDCIssuerAt)
	}
	return head
}

// poolRow is a node pool's row (pool~<name>).
func poolRow(p *fleet.Pool) row {
	r := row{
		"Kind":                KindNodePool,
		"Pool":                p.Name,
		"Mode":                p.Spec.Mode,
		"OsType":              p.Spec.OSType,
		"OsSku":               p.Spec.OSSKU,
		"VmSize":              p.Spec.VMSize,
		"Count":               int32(p.Spec.Count),
		"OrchestratorVersion": p.Spec.OrchestratorVersion,
		"NodeImageVersion":    p.Spec.NodeImageVersion,
		"ProvisioningState":   p.Spec.ProvisioningState,
		"MaxSurge":            p.Spec.MaxSurge,
		"MaxUnavailable":      p.Spec.MaxUnavailable,
		"DrainTimeoutMinutes": int32(p.Spec.DrainTimeoutMinutes),
		"NodeSoakMinutes":     int32(p.Spec.NodeSoakMinutes),
		"UndrainableBehavior": p.Spec.UndrainableBehavior,
		"Removed":             p.Removed,
		"RollingState":        p.RollingState,
		"LatestUpgrade":       p.LatestUpgrade,
		"Gpu":                 fleet.IsGPUSize(p.Spec.VMSize),
	}
	setTime(r, "RollingSince", p.RollingSince)
	setStamp(r, "Spec", p.SpecAt)
	setStamp(r, "Presence", p.Presence)
	setDeletionReport(r, p.DeletionReported)
	if p.LatestImage != "" {
		r["LatestNodeImageVersion"] = p.LatestImage
		setStamp(r, "LatestImage", p.LatestImageAt)
	}
	if p.Nodes != nil {
		r["Nodes"] = int32(p.Nodes.Nodes)
		r["NodesReady"] = int32(p.Nodes.Ready)
		r["NodesQuarantined"] = int32(p.Nodes.Quarantined)
		r["NodesCordoned"] = int32(p.Nodes.Cordoned)
		nodeVersionsColumn(r, p.Nodes)
		setStamp(r, "Nodes", p.NodesAt)
	}
	imagesColumn(r, p.Images)
	return r
}

// upgradeRow is an upgrade operation's row (op~<key>).
func upgradeRow(u *fleet.Upgrade) row {
	r := row{
		"Kind":        KindUpgrade,
		"Pool":        u.Pool,
		"Outcome":     u.Outcome,
		"SignalCount": int32(len(u.Signals)),
	}
	signalsColumn(r, u.Signals)
	setTime(r, "StartedAt", u.StartedAt)
	setTime(r, "EndedAt", u.EndedAt)
	if u.ImageBefore != "" {
		r["ImageBefore"] = u.ImageBefore
	}
	if u.ImageAfter != "" {
		r["ImageAfter"] = u.ImageAfter
	}
	if u.Trigger != "" {
		r["Trigger"], r["RequestedBy"], r["RequestedByType"] = u.Trigger, u.RequestedBy, u.RequestedByType
		r["RequestCorrelationId"] = u.RequestCorrelationID
		setTime(r, "RequestedAt", u.RequestedAt)
	}
	if ch := u.ChannelChange; ch != nil {
		r["ChannelChange"] = clipJSONObject(jsonText(channelChangeColOf(ch)), 4096)
		r["ChannelFrom"], r["ChannelTo"], r["ChannelChangedBy"] = ch.From, ch.To, ch.Actor
	}
	if len(u.Failures) > 0 {
		r["Failures"] = jsonText(activityJSON(u.Failures[max(0, len(u.Failures)-10):]))
		r["FailureMessage"] = truncateUTF16(lastFailureMessage(u.Failures), 1024)
	}
	if u.ClosedBy != "" {
		r["ClosedBy"] = u.ClosedBy
	}
	if !u.AvailableSince.IsZero() {
		setTime(r, "AvailableSince", u.AvailableSince)
		r["TimeToPatchSeconds"] = int64(u.TimeToPatch / time.Second)
	}
	return r
}

// scheduledRow is a scheduled event's row (sched~<event id>).
func scheduledRow(s *fleet.ScheduledState) row {
	r := row{
		"Kind":        KindScheduled,
		"EventId":     s.EventID,
		"Status":      s.Status,
		"EventSource": s.Source,
		"Description": s.Description,
		"UpgradeType": s.UpgradeType,
		"Details":     truncateUTF16(s.Details, 8000),
	}
	setTime(r, "ScheduledTime", s.ScheduledTime)
	setTime(r, "StartTime", s.StartTime)
	setTime(r, "LastUpdateTime", s.LastUpdateTime)
	setStamp(r, "Observed", s.Observed)
	return r
}

// clusterOf rebuilds the domain state from the rows of a partition (the
// newest sequence row as rkVolatile): one function per row kind.
func clusterOf(id fleet.ClusterID, rows map[string]entity) (*fleet.Cluster, error) {
	c := fleet.NewCluster(id)
	if head, ok := rows[rkCluster]; ok {
		if err := readClusterRow(c, id, head); err != nil {
			return nil, err
		}
	}
	vol := volatileOf(rows)
	readVolatile(c, vol)
	for rk, e := range rows {
		if err := readRow(c, id, rk, e); err != nil {
			return nil, err
		}
	}
	// What derives from the activities (attribution, channel changes) is
	// derived again rather than read back.
	c.Rederive()
	// Open findings' LastSeenAt is kept once, as FindingsSeenAt (older
	// Finding rows may still hold their own).
	seenTogether(c, vol.time("FindingsSeenAt"))
	return c, nil
}

// readRow adds one state row other than the head to c, by its RowKey's kind.
func readRow(c *fleet.Cluster, id fleet.ClusterID, rk string, e entity) error {
	switch {
	case strings.HasPrefix(rk, rkPoolPrefix):
		p, err := poolOf(id, strings.TrimPrefix(rk, rkPoolPrefix), e)
		if err != nil {
			return err
		}
		c.Pools[p.Name] = p
	case strings.HasPrefix(rk, rkOpPrefix):
		u, err := upgradeOf(id, strings.TrimPrefix(rk, rkOpPrefix), e)
		if err != nil {
			return err
		}
		c.Upgrades[u.Key] = u
	case strings.HasPrefix(rk, rkActPrefix):
		c.Activities = append(c.Activities, activityOf(e))
	case strings.HasPrefix(rk, rkFindPrefix):
		f := findingOf(e)
		c.Findings[f.Key()] = f
	case strings.HasPrefix(rk, rkOutPrefix):
		if c.Outbox == nil {
			c.Outbox = map[string]*fleet.Intent{}
		}
		key := strings.TrimPrefix(rk, rkOutPrefix)
		c.Outbox[key] = intentOf(key, e)
	case strings.HasPrefix(rk, rkRemPrefix):
		if c.Remediations == nil {
			c.Remediations = map[string]*fleet.Remediation{}
		}
		key := strings.TrimPrefix(rk, rkRemPrefix)
		c.Remediations[key] = remediationOf(key, e)
	case strings.HasPrefix(rk, rkSchedPrefix):
		s := scheduledOf(e)
		c.Scheduled[s.EventID] = s
	}
	return nil
}

// readClusterRow reads the head row (RowKey "cluster") into c.
func readClusterRow(c *fleet.Cluster, id fleet.ClusterID, head entity) error {
	c.ID = fleet.ClusterID{SubscriptionID: head.str("SubscriptionId"), ResourceGroup: head.str("ResourceGroup"), Name: head.str("ClusterName")}
	c.FirstEventAt = head.time("FirstEventAt")
	c.Location = head.str("Location")
	c.KubernetesVersion = head.str("KubernetesVersion")
	c.UpgradeChannel = head.str("UpgradeChannel")
	c.NodeOSUpgradeChannel = head.str("NodeOSUpgradeChannel")
	c.ProvisioningState = head.str("ProvisioningState")
	tags, err := readTags(head, id)
	if err != nil {
		return err
	}
	c.Tags = tags
	c.Deleted = head.bool("Deleted")
	c.ProfileAt = head.stamp("Profile")
	c.Presence = head.stamp("Presence")
	c.PoolsListed = head.stamp("PoolsListed")
	c.Support = head.str("Support")
	c.SupportVersion = head.str("SupportVersion")
	c.SupportAt = head.stamp("Support")
	c.Versions = fleet.KubernetesVersions{
		LatestSupported: head.str("LatestSupportedKubernetesVersion"),
		LatestStable:    head.str("LatestStableKubernetesVersion"),
		LowestMinor:     head.str("LowestMinorKubernetesVersion"),
		LatestPreview:   head.str("LatestPreviewKubernetesVersion"),
	}
	c.VersionsAt = head.stamp("Versions")
	c.NodesListed = head.stamp("NodesListed")
	c.NodeOSChannelChangedAt = head.time("NodeOSChannelChangedAt")
	c.UpgradeChannelChangedAt = head.time("UpgradeChannelChangedAt")
	if v, ok := head["Channels"].(string); ok {
		if c.Channels, err = readChannels(v); err != nil {
			return fmt.Errorf("cluster %s: Channels column: %w", id, err)
		}
	}
	if m, ok := head["Maintenance"].(string); ok {
		c.MaintenanceKnown, c.MaintenanceAt = true, head.stamp("Maintenance")
		if c.Maintenance, err = readMaintenance(m); err != nil {
			return fmt.Errorf("cluster %s: Maintenance column: %w", id, err)
		}
	}
	if at := head.stamp("OidcIssuer"); !at.IsZero() {
		c.OIDCIssuerKnown, c.OIDCIssuer, c.OIDCIssuerAt = true, head.str("OidcIssuer"), at
	}
	return nil
}

// poolOf reads a node pool's row.
func poolOf(id fleet.ClusterID, name string, e entity) (*fleet.Pool, error) {
	p := &fleet.Pool{
		Name: name,
		Spec: fleet.PoolProfile{
			Name: name, Mode: e.str("Mode"), OSType: e.str("OsType"), OSSKU: e.str("OsSku"),
			VMSize: e.str("VmSize"), Count: int(e.int("Count")),
			OrchestratorVersion: e.str("OrchestratorVersion"), NodeImageVersion: e.str("NodeImageVersion"),
			ProvisioningState: e.str("ProvisioningState"), MaxSurge: e.str("MaxSurge"),
			MaxUnavailable: e.str("MaxUnavailable"), DrainTimeoutMinutes: int(e.int("DrainTimeoutMinutes")),
			NodeSoakMinutes: int(e.int("NodeSoakMinutes")), UndrainableBehavior: e.str("UndrainableBehavior"),
		},
		SpecAt:        e.stamp("Spec"),
		Removed:       e.bool("Removed"),
		Presence:      e.stamp("Presence"),
		RollingState:  e.str("RollingState"),
		RollingSince:  e.time("RollingSince"),
		LatestUpgrade: e.str("LatestUpgrade"),
		LatestImage:   e.str("LatestNodeImageVersion"),
		LatestImageAt: e.stamp("LatestImage"),
	}
	if v, ok := e["NodeVersions"].(string); ok {
		p.Nodes = &fleet.PoolNodes{Nodes: int(e.int("Nodes")), Ready: int(e.int("NodesReady")),
			Quarantined: int(e.int("NodesQuarantined")), Cordoned: int(e.int("NodesCordoned"))}
		p.NodesAt = e.stamp("Nodes")
		if err := json.Unmarshal([]byte(v), &p.Nodes.Versions); err != nil {
			return nil, fmt.Errorf("cluster %s: pool %s: NodeVersions column: %w", id, name, err)
		}
		if p.Nodes.Versions == nil {
			p.Nodes.Versions = map[string]int{}
		}
	}
	if v, ok := e["Images"].(string); ok {
		var err error
		if p.Images, err = readImages(v); err != nil {
			return nil, fmt.Errorf("cluster %s: pool %s: Images column: %w", id, name, err)
		}
	}
	return p, nil
}

// upgradeOf reads an upgrade operation's row.
func upgradeOf(id fleet.ClusterID, key string, e entity) (*fleet.Upgrade, error) {
	u := &fleet.Upgrade{
		Key:       key,
		Pool:      e.str("Pool"),
		Outcome:   e.str("Outcome"),
		StartedAt: e.time("StartedAt"),
		EndedAt:   e.time("EndedAt"),

		ImageBefore: e.str("ImageBefore"),
		ImageAfter:  e.str("ImageAfter"),

		ClosedBy: e.str("ClosedBy"),

		AvailableSince: e.time("AvailableSince"),
		TimeToPatch:    time.Duration(e.int("TimeToPatchSeconds")) * time.Second,
	}
	var err error
	if u.Signals, err = readSignals(e.str("Signals")); err != nil || len(u.Signals) == 0 {
		return nil, fmt.Errorf("cluster %s: upgrade %s: unreadable Signals column", id, u.Key)
	}
	return u, nil
}

// scheduledOf reads a scheduled event's row.
func scheduledOf(e entity) *fleet.ScheduledState {
	s := &fleet.ScheduledState{
		ScheduledEvent: fleet.ScheduledEvent{
			EventID: e.str("EventId"), Status: e.str("Status"), Source: e.str("EventSource"),
			Description: e.str("Description"), UpgradeType: e.str("UpgradeType"), Details: e.str("Details"),
			ScheduledTime: e.time("ScheduledTime"), StartTime: e.time("StartTime"),
			LastUpdateTime: e.time("LastUpdateTime"),
		},
		Observed: e.stamp("Observed"),
	}
	return s
}

// findingKey is a finding's RowKey. Targets hold slashes, which RowKeys may
// not: they become colons.
func findingKey(code, target string) string {
	return rkFindPrefix + safeKey(code+"~"+strings.ReplaceAll(target, "/", ":"))
}

func findingRow(f *fleet.Finding) row {
	r := row{
		"Kind":     KindFinding,
		"Code":     f.Code,
		"Target":   f.Target,
		"Severity": f.Severity,
		"Status":   f.Status,
		"Summary":  truncateUTF16(f.Summary, 1024),
		"Evidence": clipJSONObject(f.Evidence, 16000),
		"Opened":   int32(f.Opened),
	}
	if f.Reminded > 0 {
		r["Reminded"] = int32(f.Reminded)
	}
	setTime(r, "OpenedAt", f.OpenedAt)
	if f.Status != fleet.FindingOpen {
		// Frozen at resolution. An open finding's is the sequence row's
		// FindingsSeenAt (see findingsSeenAt): a row per finding would be
		// rewritten every time the cluster is evaluated.
		setTime(r, "LastSeenAt", f.LastSeenAt)
	}
	setTime(r, "ResolvedAt", f.ResolvedAt)
	setTime(r, "NoticedAt", f.NoticedAt)
	setTime(r, "GraceUntil", f.GraceUntil)
	setTime(r, "AnnouncedAt", f.AnnouncedAt)
	if f.SilencedBy != "" {
		r["SilencedBy"] = truncateUTF16(f.SilencedBy, 256)
	}
	// InhibitedBy is not stored: it derives from the cluster's state
	// (fleet.Cluster.MarkInhibited), and a row per finding would be
	// rewritten every time a pool starts or ends rolling.
	return r
}

func findingOf(e entity) *fleet.Finding {
	return &fleet.Finding{
		Code: e.str("Code"), Target: e.str("Target"), Severity: e.str("Severity"), Status: e.str("Status"),
		Summary: e.str("Summary"), Evidence: e.str("Evidence"), Opened: int(e.int("Opened")),
		Reminded: int(e.int("Reminded")),
		OpenedAt: e.time("OpenedAt"), LastSeenAt: e.time("LastSeenAt"), ResolvedAt: e.time("ResolvedAt"),
		NoticedAt: e.time("NoticedAt"), GraceUntil: e.time("GraceUntil"), AnnouncedAt: e.time("AnnouncedAt"),
		SilencedBy: e.str("SilencedBy"), // an older row's InhibitedBy is ignored: it is derived
	}
}

// findingsSeenAt is the latest LastSeenAt of the cluster's open findings
// (zero when none is open): the FindingsSeenAt column (volatileRow).
func findingsSeenAt(c *fleet.Cluster) time.Time {
	var at time.Time
	for _, f := range c.Findings {
		if f.Status == fleet.FindingOpen && f.LastSeenAt.After(at) {
			at = f.LastSeenAt
		}
	}
	return at
}

// seenTogether gives every open finding the latest LastSeenAt of them all
// (and at least floor). Every evaluation sees every open finding (one it no
// longer sees resolves), so the last time any of them was seen is the last
// time each was: that is what storage keeps, and what a cluster read from
// storage and one kept in memory both show.
func seenTogether(c *fleet.Cluster, floor time.Time) {
	at := findingsSeenAt(c)
	if floor.After(at) {
		at = floor
	}
	for _, f := range c.Findings {
		if f.Status == fleet.FindingOpen {
			f.LastSeenAt = at
		}
	}
}

// signalRow is the audit row of one accepted signal; its RowKey is the dedupe marker.
func signalRow(s fleet.Signal, seq int64, receivedAt time.Time) row {
	r := row{
		"Kind":       KindSignal,
		"EventId":    truncateUTF16(s.ID, 1024),
		"EventType":  truncateUTF16(s.Type, 1024),
		"Source":     truncateUTF16(s.Source, 2048),
		"Subject":    truncateUTF16(s.Subject, 2048),
		"Schema":     s.Schema,
		"SignalKind": string(s.Kind),
		"Pool":       s.Pool,
		"AppliedSeq": seq,
	}
	setTime(r, "EventTime", s.Time)
	setTime(r, "ReceivedAt", receivedAt)
	return r
}

// signalKey is the RowKey of a signal's dedupe/audit row. Ids that are short and
// made of safe characters are kept readable; anything else is hashed.
func signalKey(id string) string { return rkSigPrefix + safeKey(id) }

var safeKeyRE = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,200}$`)

func safeKey(s string) string {
	if safeKeyRE.MatchString(s) {
		return s
	}
	h := sha256.Sum256([]byte(s))
	return "h-" + hex.EncodeToString(h[:16])
}

func seqKey(n int64) string { return fmt.Sprintf("%s%012d", rkSeqPrefix, n) }

// jsonText encodes a value for a JSON column. encoding/json sorts map keys, so
// equal values give equal text and unchanged rows are not rewritten.
func jsonText(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// truncateUTF16 keeps a string within n UTF-16 code units (Table storage
// measures string properties that way) and valid UTF-8.
func truncateUTF16(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	units := 0
	for i, r := range s {
		w := 1
		if r >= 0x10000 {
			w = 2
		}
		if units+w > n {
			return s[:i]
		}
		units += w
	}
	return s
}

// setChange writes a channel change as <prefix>ChangedFrom/To/By columns
// (<prefix>ChangedAt is the cluster's <Channel>ChangedAt, written with it).
func setChange(r row, prefix string, ch *fleet.ChannelChange) {
	if ch == nil {
		return
	}
	r[prefix+"ChangedFrom"], r[prefix+"ChangedTo"] = ch.From, ch.To
	if ch.Actor != "" {
		r[prefix+"ChangedBy"] = ch.Actor
	}
}

// activityKey orders activity rows by time: act~<time>~<signal id>.
func activityKey(a fleet.ActivityRecord) string {
	return rkActPrefix + a.At.UTC().Format(fleet.TimeKeyLayout) + "~" + safeKey(a.ID)
}

func activityRow(a fleet.ActivityRecord) row {
	r := row{
		"Kind":          KindActivity,
		"SignalId":      a.ID,
		"Operation":     a.Operation,
		"OperationName": truncateUTF16(a.OperationName, 512),
		"Status":        a.Status,
		"Actor":         truncateUTF16(a.Actor, 512),
		"ActorType":     a.ActorType,
		"CorrelationId": truncateUTF16(a.CorrelationID, 256),
		"ResourceId":    truncateUTF16(a.ResourceID, 2048),
		"Pool":          a.Pool,
		"Maintenance":   truncateUTF16(a.Maintenance, 256),
		"Message":       truncateUTF16(a.Message, 2048),
		"Path":          a.Path,
		"DeliveryId":    truncateUTF16(a.DeliveryID, 256),
	}
	setTime(r, "EventTime", a.At)
	return r
}

func activityOf(e entity) fleet.ActivityRecord {
	return fleet.ActivityRecord{
		ID: e.str("SignalId"), At: e.time("EventTime"),
		Activity: fleet.Activity{
			Operation: e.str("Operation"), OperationName: e.str("OperationName"), Status: e.str("Status"),
			Actor: e.str("Actor"), ActorType: e.str("ActorType"), CorrelationID: e.str("CorrelationId"),
			ResourceID: e.str("ResourceId"), Pool: e.str("Pool"), Maintenance: e.str("Maintenance"),
			Message: e.str("Message"), Path: e.str("Path"), DeliveryID: e.str("DeliveryId"),
		},
	}
}

// activityView is an activity in a JSON column (an upgrade's failures).
type activityView struct {
	At            time.Time `json:"at"`
	Operation     string    `json:"operation"`
	Status        string    `json:"status"`
	Actor         string    `json:"actor,omitempty"`
	CorrelationID string    `json:"correlationId,omitempty"`
	Message       string    `json:"message,omitempty"`
}

func activityJSON(as []fleet.ActivityRecord) []activityView {
	out := make([]activityView, len(as))
	for i, a := range as {
		out[i] = activityView{At: a.At, Operation: truncateUTF16(a.Operation, 256), Status: truncateUTF16(a.Status, 256),
			Actor: truncateUTF16(a.Actor, 512), CorrelationID: truncateUTF16(a.CorrelationID, 256), Message: truncateUTF16(a.Message, 1024)}
	}
	return out
}

func lastFailureMessage(as []fleet.ActivityRecord) string {
	for i := len(as) - 1; i >= 0; i-- {
		if as[i].Message != "" {
			return as[i].Message
		}
	}
	return ""
}
