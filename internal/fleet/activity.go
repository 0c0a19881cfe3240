package fleet

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"sort"
	"strings"
	"time"
)

// KindActivity is an Azure activity-log entry about a cluster, a pool or a
// maintenance configuration: who asked ARM for what, and how it went. It
// arrives through Event Grid (Microsoft.Resources.* events), an activity-log
// alert, or the diagnostic-settings export; all three decode to one Activity.
const KindActivity SignalKind = "Activity"

// KindIgnored is a well-formed activity upgradewatch does not track (another
// resource provider, or an operation that says nothing about upgrades). It is
// counted and logged by the function that received it, never committed.
const KindIgnored SignalKind = "Ignored"

// Activity operations upgradewatch acts on, normalised from the operation name.
const (
	OpClusterWrite      = "ClusterWrite"      // managedClusters/write
	OpClusterDelete     = "ClusterDelete"     // managedClusters/delete
	OpClusterAbort      = "ClusterAbort"      // managedClusters/abort/action
	OpPoolWrite         = "PoolWrite"         // managedClusters/agentPools/write
	OpPoolDelete        = "PoolDelete"        // managedClusters/agentPools/delete
	OpPoolUpgradeImage  = "PoolUpgradeImage"  // managedClusters/agentPools/upgradeNodeImageVersion/action (or /write)
	OpPoolAbort         = "PoolAbort"         // managedClusters/agentPools/abort/action
	OpMaintenanceWrite  = "MaintenanceWrite"  // managedClusters/maintenanceConfigurations/write
	OpMaintenanceDelete = "MaintenanceDelete" // managedClusters/maintenanceConfigurations/delete
)

// Activity statuses after normalisation (Start → Started, Success → Succeeded,
// Failure → Failed, Cancel/Cancelled → Canceled, Accept → Accepted).
const (
	ActivityStarted   = "Started"
	ActivityAccepted  = "Accepted"
	ActivitySucceeded = "Succeeded"
	ActivityFailed    = "Failed"
	ActivityCanceled  = "Canceled"
)

// Activity paths: where an activity was first received.
const (
	PathEventGrid = "EventGrid"   // Microsoft.Resources.* system topic events
	PathAlert     = "Alert"       // activity-log alert, common alert schema
	PathExport    = "Export"      // diagnostic-settings export (Event Hub)
	PathUnknown   = "Unspecified" // tests and tools
)

// Actor types.
const (
	ActorUser             = "User"
	ActorServicePrincipal = "ServicePrincipal"
	ActorAKS              = "AKS" // AKS itself (the auto-upgrader): caller or spn Microsoft.ContainerService
)

// AKSCaller is how the activity log names AKS acting on its own.
const AKSCaller = "Microsoft.ContainerService"

// Activity is one normalised activity-log entry.
type Activity struct {
	Operation     string // Op*; never empty on a committed signal
	OperationName string // as sent (case varies: agentPools / agentpools / AGENTPOOLS)
	Status        string // Activity* or, for anything else, as sent
	Actor         string // UPN, name, app id or object id, as far as the source says; "" unknown
	ActorType     string // Actor* or ""
	CorrelationID string
	ResourceID    string // the resource the operation was on, in the case the source used
	Pool          string // pool operations
	Maintenance   string // maintenance configuration operations
	Message       string // what went wrong (status message, sub-status), failures mostly
	Path          string // Path*: how it arrived first
	DeliveryID    string // the delivering path's own id (Event Grid id, eventDataId, operationId)
}

// ActivityRecord is an activity as the cluster remembers it.
type ActivityRecord struct {
	Activity
	ID string    // the signal id
	At time.Time // when it happened
}

// ActivityID is the signal id of an activity. It depends only on what every
// path carries alike — correlation id, operation, status and resource — so the
// same activity seen through Event Grid, an alert and the export is one
// signal. Without a correlation id it falls back to the delivery id, which
// still dedupes redeliveries on one path.
func ActivityID(a Activity) string {
	var key string
	if a.CorrelationID != "" {
		key = strings.Join([]string{strings.ToLower(strings.TrimSpace(a.CorrelationID)), a.Operation, a.Status,
			strings.ToLower(strings.Trim(strings.TrimSpace(a.ResourceID), "/"))}, "|")
	} else {
		key = strings.Join([]string{"delivery", a.Path, a.DeliveryID, a.Operation, a.Status}, "|")
	}
	h := sha256.Sum256([]byte(key))
	return "act-" + hex.EncodeToString(h[:16])
}

// NormaliseActivityStatus maps the vocabularies of the three paths onto one.
func NormaliseActivityStatus(s string) string {
	s = strings.TrimSpace(s)
	// The export's resultSignature-like forms: "Succeeded.OK", "Started."
	if i := strings.IndexByte(s, '.'); i > 0 {
		s = s[:i]
	}
	switch strings.ToLower(s) {
	case "start", "started":
		return ActivityStarted
	case "accept", "accepted":
		return ActivityAccepted
	case "success", "succeeded", "succeed":
		return ActivitySucceeded
	case "failure", "failed", "fail":
		return ActivityFailed
	case "cancel", "canceled", "cancelled":
		return ActivityCanceled
	}
	return s
}

// ClassifyOperation maps an ARM operation name to an Op* constant, matching
// case-insensitively; "" when upgradewatch does not track it.
func ClassifyOperation(name string) string {
	n := strings.ToLower(strings.Trim(strings.TrimSpace(name), "/"))
	const mc = "microsoft.containerservice/managedclusters/"
	if !strings.HasPrefix(n, mc) {
		return ""
	}
	switch strings.TrimPrefix(n, mc) {
	case "write":
		return OpClusterWrite
	case "delete":
		return OpClusterDelete
	case "abort/action":
		return OpClusterAbort
	case "agentpools/write":
		return OpPoolWrite
	case "agentpools/delete":
		return OpPoolDelete
	case "agentpools/upgradenodeimageversion/action", "agentpools/upgradenodeimageversion/write":
		return OpPoolUpgradeImage
	case "agentpools/abort/action":
		return OpPoolAbort
	case "maintenanceconfigurations/write":
		return OpMaintenanceWrite
	case "maintenanceconfigurations/delete":
		return OpMaintenanceDelete
	}
	return ""
}

// IsPoolOperation reports whether op acts on one agent pool.
func IsPoolOperation(op string) bool {
	switch op {
	case OpPoolWrite, OpPoolDelete, OpPoolUpgradeImage, OpPoolAbort:
		return true
	}
	return false
}

// IsMaintenanceOperation reports whether op changes a maintenance configuration.
func IsMaintenanceOperation(op string) bool {
	return op == OpMaintenanceWrite || op == OpMaintenanceDelete
}

// Activities kept per cluster: the newest maxActivities, none older than
// activityRetention before the newest. Both bounds are functions of the set of
// activities, so the state stays independent of delivery order.
const (
	maxActivities     = 100
	activityRetention = 60 * 24 * time.Hour
)

// Attribution windows.
const (
	// requestLead: a rolling operation may start a little before the activity
	// of the request that caused it is stamped.
	requestLead = 5 * time.Minute
	// requestReach: a request to upgrade a pool's image starts rolling within
	// minutes; an operation later than this is not the request's.
	requestReach = 6 * time.Hour
	// changeLead: the observation of a new channel (a resource notification)
	// may be stamped a little before the write activity that made it.
	changeLead = 15 * time.Minute
	// failureReach: a failure reported this long after an operation ended is
	// still about it.
	failureReach = 30 * time.Minute
)

func (c *Cluster) applyActivity(a Activity, at Stamp) {
	rec := ActivityRecord{Activity: a, ID: at.SignalID, At: at.At}
	for _, r := range c.Activities {
		if r.ID == rec.ID {
			return
		}
	}
	c.Activities = append(c.Activities, rec)
	sortActivities(c.Activities)
	c.Activities = pruneActivities(c.Activities)

	// A deletion is not applied here: the activity log is second hand (an
	// alert is whatever carries the function key), so a deletion it reports
	// is evidence until ARM or a resource notification confirms it
	// (deriveDeletionReports). Writes only ever add scrutiny, so they count.
	ok := a.Status == ActivitySucceeded
	switch a.Operation {
	case OpClusterWrite:
		if ok && c.Presence.Before(at) {
			c.Deleted, c.Presence = false, at
		}
	case OpPoolWrite, OpPoolUpgradeImage:
		if ok && ValidPoolName(a.Pool) {
			if p := c.secondHandPool(a.Pool); p != nil {
				p.observePresence(true, at)
			}
		}
	}
}

// DeletionReport is a deletion of a cluster or a pool that only the activity
// log told of: who asked, when, and how it arrived. It resolves nothing and
// asks for an ARM read (RefreshWanted); ARM answering 404 for the cluster, a
// listing without the pool, or a resource notification of the deletion makes
// it state, and any newer sign of the resource (an ARM read that finds it, a
// rolling event, a node snapshot, a later write) clears it.
type DeletionReport struct {
	At            time.Time `json:"at"`
	Actor         string    `json:"actor,omitempty"`
	ActorType     string    `json:"actorType,omitempty"`
	CorrelationID string    `json:"correlationId,omitempty"`
	Source        string    `json:"source"` // the path it arrived by first: EventGrid|Alert|Export
	ActivityID    string    `json:"activityId"`
}

// deriveDeletionReports sets the cluster's and the pools' DeletionReported
// from the successful delete activities newer than every observation of the
// resource. It is a function of the activities and the presence stamps, so
// it does not depend on the order signals arrived in.
func (c *Cluster) deriveDeletionReports() {
	c.DeletionReported = nil
	for _, p := range c.Pools {
		p.DeletionReported = nil
	}
	if c.Deleted {
		return // already state: nothing left to confirm
	}
	for i := range c.Activities {
		a := &c.Activities[i] // oldest first: the newest report wins
		if a.Status != ActivitySucceeded {
			continue
		}
		at := Stamp{At: a.At, SignalID: a.ID}
		switch a.Operation {
		case OpClusterDelete:
			if c.Presence.Before(at) && !c.poolSeenAfter(at) {
				c.DeletionReported = deletionReport(a)
			}
		case OpPoolDelete:
			if p := c.Pools[strings.ToLower(a.Pool)]; p != nil && !p.Removed && p.Presence.Before(at) {
				p.DeletionReported = deletionReport(a)
			}
		}
	}
}

// poolSeenAfter reports whether a pool was seen to exist after at: the
// cluster existed then too.
func (c *Cluster) poolSeenAfter(at Stamp) bool {
	for _, p := range c.Pools {
		if !p.Removed && at.Before(p.Presence) {
			return true
		}
	}
	return false
}

func deletionReport(a *ActivityRecord) *DeletionReport {
	return &DeletionReport{At: a.At, Actor: a.Actor, ActorType: a.ActorType, CorrelationID: a.CorrelationID,
		Source: a.Path, ActivityID: a.ID}
}

// Rederive recomputes what derives from the activities and channel spans
// (channel changes, the attribution of operations, reported deletions).
// Stores call it after loading a cluster.
func (c *Cluster) Rederive() {
	sortActivities(c.Activities)
	c.deriveChanges()
}

// sortActivities orders activities by time, then id.
func sortActivities(as []ActivityRecord) {
	sort.Slice(as, func(i, j int) bool {
		if !as[i].At.Equal(as[j].At) {
			return as[i].At.Before(as[j].At)
		}
		return as[i].ID < as[j].ID
	})
}

func pruneActivities(as []ActivityRecord) []ActivityRecord {
	if len(as) > maxActivities {
		as = as[len(as)-maxActivities:]
	}
	if len(as) == 0 {
		return as
	}
	cut := as[len(as)-1].At.Add(-activityRetention)
	i := 0
	for i < len(as) && as[i].At.Before(cut) {
		i++
	}
	return as[i:]
}

// ChannelChange is the change that set a channel to its current value.
type ChannelChange struct {
	Channel       string    `json:"channel"` // "nodeOS" or "upgrade"
	From          string    `json:"from"`
	To            string    `json:"to"`
	At            time.Time `json:"at"` // the write's time when known, else when the new value was first seen
	Actor         string    `json:"actor,omitempty"`
	ActorType     string    `json:"actorType,omitempty"`
	CorrelationID string    `json:"correlationId,omitempty"`
	ActivityID    string    `json:"activityId,omitempty"`
}

// Channel names in ChannelChange.
const (
	ChannelNameNodeOS  = channelNodeOS
	ChannelNameUpgrade = channelUpgrade
)

// deriveChanges sets the channel changes, the time each took effect, and the
// cluster-level attribution of operations, from the channel spans and the
// activities. It runs after every signal, so it never depends on order.
func (c *Cluster) deriveChanges() {
	c.NodeOSChannelChange = c.channelChange(channelNodeOS, c.NodeOSUpgradeChannel)
	c.UpgradeChannelChange = c.channelChange(channelUpgrade, c.UpgradeChannel)
	c.NodeOSChannelChangedAt, c.UpgradeChannelChangedAt = time.Time{}, time.Time{}
	if ch := c.NodeOSChannelChange; ch != nil {
		c.NodeOSChannelChangedAt = ch.At
	}
	if ch := c.UpgradeChannelChange; ch != nil {
		c.UpgradeChannelChangedAt = ch.At
	}
	c.MaintenanceChange = nil
	for i := len(c.Activities) - 1; i >= 0; i-- {
		a := c.Activities[i]
		if IsMaintenanceOperation(a.Operation) && a.Status == ActivitySucceeded {
			cp := a
			c.MaintenanceChange = &cp
			break
		}
	}
	c.attributeUpgrades()
	c.deriveDeletionReports()
}

// channelChange finds the change to the current value: from the other value
// seen last before it, at the write activity between the two sightings (the
// latest one before the new value was first seen, else the first one shortly
// after), or at the first sighting when no activity explains it.
func (c *Cluster) channelChange(channel, current string) *ChannelChange {
	var cur *ChannelSpan
	for i := range c.Channels {
		if c.Channels[i].Channel == channel && c.Channels[i].Value == current {
			cur = &c.Channels[i]
		}
	}
	if cur == nil {
		return nil
	}
	var prev *ChannelSpan
	for i := range c.Channels {
		s := &c.Channels[i]
		if s.Channel == channel && s.Value != current && s.Last.Before(cur.Last) && (prev == nil || s.Last.After(prev.Last)) {
			prev = s
		}
	}
	if prev == nil {
		return nil
	}
	ch := &ChannelChange{Channel: channel, From: prev.Value, To: current, At: cur.First}
	if prev.Last.After(ch.At) {
		ch.At = prev.Last
	}
	seen := ch.At
	failed := map[string]bool{}
	for _, a := range c.Activities {
		if a.Operation == OpClusterWrite && (a.Status == ActivityFailed || a.Status == ActivityCanceled) && a.CorrelationID != "" {
			failed[strings.ToLower(a.CorrelationID)] = true
		}
	}
	// Activities are in time order: the latest write before the sighting
	// wins; failing that, the first one shortly after it.
	var best *ActivityRecord
	for i := range c.Activities {
		a := &c.Activities[i]
		if a.Operation != OpClusterWrite || a.Status == ActivityFailed || a.Status == ActivityCanceled ||
			failed[strings.ToLower(a.CorrelationID)] {
			continue
		}
		if !a.At.After(prev.Last) || a.At.After(seen.Add(changeLead)) {
			continue
		}
		if best == nil || !a.At.After(seen) {
			best = a
		}
	}
	if best != nil {
		// Every phase of the same request carries its actor; the earliest
		// phase is when the change was asked for.
		first := best
		for i := range c.Activities {
			a := &c.Activities[i]
			if a.CorrelationID != "" && strings.EqualFold(a.CorrelationID, best.CorrelationID) && a.At.Before(first.At) &&
				a.Operation == OpClusterWrite {
				first = a
			}
		}
		ch.At, ch.Actor, ch.ActorType = first.At, cmp.Or(best.Actor, first.Actor), cmp.Or(best.ActorType, first.ActorType)
		ch.CorrelationID, ch.ActivityID = best.CorrelationID, best.ID
	}
	return ch
}

// attributeUpgrades tells, for each rolling operation, who asked for it (a
// node image upgrade request of its pool, or AKS's own), which channel change
// led to it (the first operation of each pool after a change), and which
// failures were reported about it.
func (c *Cluster) attributeUpgrades() {
	byPool := map[string][]*Upgrade{}
	for _, u := range c.Upgrades {
		u.Trigger, u.RequestedBy, u.RequestedByType, u.RequestedAt, u.RequestCorrelationID = "", "", "", time.Time{}, ""
		u.ChannelChange, u.Failures = nil, nil
		byPool[u.Pool] = append(byPool[u.Pool], u)
	}
	for _, ops := range byPool {
		sort.Slice(ops, func(i, j int) bool {
			if ti, tj := ops[i].sortTime(), ops[j].sortTime(); !ti.Equal(tj) {
				return ti.Before(tj)
			}
			return ops[i].Key < ops[j].Key
		})
	}

	// Requests: one per correlation id. A request AKS accepted (Started or
	// Accepted seen) caused the first operation of its pool that started
	// after it; one known only by its success caused the operation running
	// when it succeeded. Requests that only failed caused nothing.
	for _, req := range c.upgradeRequests() {
		if u := req.operation(byPool[req.Pool]); u != nil {
			u.Trigger, u.RequestedAt, u.RequestCorrelationID = TriggerManual, req.At, req.CorrelationID
			u.RequestedBy, u.RequestedByType = req.Actor, req.ActorType
			if req.ActorType == ActorAKS {
				u.Trigger = TriggerAutomatic
			}
		}
	}

	// Channel changes: the first operation of each pool that started after.
	for _, ch := range []*ChannelChange{c.NodeOSChannelChange, c.UpgradeChannelChange} {
		if ch == nil {
			continue
		}
		for _, ops := range byPool {
			for _, u := range ops {
				if !u.sortTime().Before(ch.At) {
					if u.ChannelChange == nil || ch.Channel == channelNodeOS {
						cp := *ch
						u.ChannelChange = &cp
					}
					break
				}
			}
		}
	}

	// Failures: reported about the operation's request, or about its pool
	// (a cluster write: any pool) while it ran or shortly after it ended.
	for _, a := range c.Activities {
		if a.Status != ActivityFailed || (a.Operation != OpPoolUpgradeImage && a.Operation != OpPoolWrite && a.Operation != OpClusterWrite) {
			continue
		}
		for pool, ops := range byPool {
			if a.Pool != "" && !strings.EqualFold(a.Pool, pool) {
				continue
			}
			for _, u := range ops {
				end := u.EndedAt
				if end.IsZero() {
					end = a.At
				}
				sameRequest := u.RequestCorrelationID != "" && strings.EqualFold(u.RequestCorrelationID, a.CorrelationID)
				during := !a.At.Before(u.sortTime().Add(-requestLead)) && !a.At.After(end.Add(failureReach))
				if sameRequest || during {
					u.Failures = append(u.Failures, a)
				}
			}
		}
	}
}

// upgradeRequest is one request to upgrade a pool's node image: the phases
// of one correlation id.
type upgradeRequest struct {
	Pool, Actor, ActorType, CorrelationID string
	At                                    time.Time // earliest phase that did not fail
	Began                                 time.Time // earliest Started or Accepted phase; zero if none seen
}

// operation picks the operation the request caused among a pool's operations
// (in start order) that no earlier request claimed.
func (r upgradeRequest) operation(ops []*Upgrade) *Upgrade {
	began := r.Began
	if began.IsZero() {
		// Only a success seen: the end of the request (the activity log's
		// EndRequest, so the operation running then) or ARM accepting it
		// (Event Grid's ResourceActionSuccess, so the next operation).
		var running *Upgrade
		for _, u := range ops {
			if u.sortTime().After(r.At) {
				break
			}
			if u.EndedAt.IsZero() || !u.EndedAt.Before(r.At.Add(-requestLead)) {
				running = u
			}
		}
		if running != nil {
			if running.Trigger == "" {
				return running
			}
			return nil
		}
		began = r.At
	}
	for _, u := range ops {
		start := u.sortTime()
		if start.Before(began.Add(-requestLead)) {
			continue
		}
		if start.After(began.Add(requestReach)) {
			return nil
		}
		if u.Trigger == "" {
			return u
		}
	}
	return nil
}

func (c *Cluster) upgradeRequests() []upgradeRequest {
	byCorr := map[string]*upgradeRequest{}
	for _, a := range c.Activities {
		if a.Operation != OpPoolUpgradeImage || !ValidPoolName(a.Pool) || a.Status == ActivityFailed || a.Status == ActivityCanceled {
			continue
		}
		key := strings.ToLower(a.CorrelationID)
		if key == "" {
			key = a.ID
		}
		r, ok := byCorr[key]
		if !ok {
			r = &upgradeRequest{Pool: strings.ToLower(a.Pool), CorrelationID: a.CorrelationID, At: a.At}
			byCorr[key] = r
		}
		if a.At.Before(r.At) {
			r.At = a.At
		}
		if (a.Status == ActivityStarted || a.Status == ActivityAccepted) && (r.Began.IsZero() || a.At.Before(r.Began)) {
			r.Began = a.At
		}
		if r.Actor == "" {
			r.Actor, r.ActorType = a.Actor, a.ActorType
		}
	}
	res := make([]upgradeRequest, 0, len(byCorr))
	for _, r := range byCorr {
		res = append(res, *r)
	}
	sort.Slice(res, func(i, j int) bool {
		if !res[i].At.Equal(res[j].At) {
			return res[i].At.Before(res[j].At)
		}
		return res[i].CorrelationID < res[j].CorrelationID
	})
	return res
}

// Upgrade triggers.
const (
	TriggerManual    = "Manual"    // someone asked ARM to upgrade the pool's node image
	TriggerAutomatic = "Automatic" // AKS asked (the node OS auto-upgrader)
)

// RefreshWanted reports whether an activity changed the cluster's channels or
// maintenance configurations after the newest view of them, or reported a
// deletion not yet confirmed: the cluster should be read from ARM again. It
// returns the newest such activity's time.
func (c *Cluster) RefreshWanted() (time.Time, bool) {
	var since time.Time
	for _, r := range c.deletionReports() {
		if r.At.After(since) {
			since = r.At
		}
	}
	for i := len(c.Activities) - 1; i >= 0; i-- {
		a := c.Activities[i]
		if a.Status != ActivitySucceeded && a.Status != ActivityAccepted {
			continue
		}
		change := (a.Operation == OpClusterWrite && c.ProfileAt.At.Before(a.At)) ||
			(IsMaintenanceOperation(a.Operation) && c.MaintenanceAt.At.Before(a.At))
		if change {
			if a.At.After(since) {
				since = a.At
			}
			break
		}
	}
	return since, !since.IsZero()
}

// deletionReports lists the cluster's and its pools' reported deletions.
func (c *Cluster) deletionReports() []*DeletionReport {
	var out []*DeletionReport
	if c.DeletionReported != nil {
		out = append(out, c.DeletionReported)
	}
	for _, p := range c.Pools {
		if p.DeletionReported != nil {
			out = append(out, p.DeletionReported)
		}
	}
	return out
}

// closer is an activity that ends a pool's open operation when no rolling
// event did: an abort, or the failure of the request that started it.
type closer struct {
	id      string
	at      time.Time
	outcome string
	began   time.Time // the failed request's Started/Accepted phase; zero if none seen
	aks     bool      // AKS reported the failure of its own operation
}

// ends reports whether the closer ends u, the pool's open operation.
func (cl closer) ends(u *Upgrade) bool {
	if cl.outcome == OutcomeCanceled || cl.aks {
		return true
	}
	// A failed request ends the operation it started, not one that was
	// already running when ARM refused it.
	return !cl.began.IsZero() && !u.StartedAt.Before(cl.began.Add(-requestLead)) && !u.StartedAt.After(cl.began.Add(requestReach))
}

func (c *Cluster) closers(pool string) map[string]closer {
	out := map[string]closer{}
	began := map[string]time.Time{} // correlation id → earliest Started/Accepted phase
	for _, a := range c.Activities {
		if (a.Status == ActivityStarted || a.Status == ActivityAccepted) && a.CorrelationID != "" {
			k := strings.ToLower(a.CorrelationID)
			if t, ok := began[k]; !ok || a.At.Before(t) {
				began[k] = a.At
			}
		}
	}
	for _, a := range c.Activities {
		mine := strings.EqualFold(a.Pool, pool)
		done := a.Status == ActivitySucceeded || a.Status == ActivityAccepted
		switch {
		case a.Operation == OpPoolAbort && mine && done, a.Operation == OpClusterAbort && done:
			out[a.ID] = closer{id: a.ID, at: a.At, outcome: OutcomeCanceled}
		case (a.Operation == OpPoolUpgradeImage || a.Operation == OpPoolWrite) && mine && a.Status == ActivityFailed:
			cl := closer{id: a.ID, at: a.At, outcome: OutcomeFailed, aks: a.ActorType == ActorAKS}
			if a.CorrelationID != "" {
				cl.began = began[strings.ToLower(a.CorrelationID)]
			}
			out[a.ID] = cl
		}
	}
	return out
}
