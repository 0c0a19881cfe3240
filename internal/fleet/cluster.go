package fleet

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Cluster is everything upgradewatch knows about one managed cluster.
//
// Every field is a function of the set of signals applied, not of their order:
// Apply keeps the newest observation of each fact (by event time, then event id)
// and re-derives rolling operations from all the rolling signals of a pool. So
// at-least-once, out-of-order delivery converges on the state of one in-order
// delivery.
type Cluster struct {
	ID ClusterID

	Signals      int64     // accepted signals
	FirstEventAt time.Time // earliest event time seen
	LastEventAt  time.Time // latest event time seen
	// HeardAt is the wall clock at which the newest accepted signal was
	// committed (not its event time): while signals keep arriving, findings
	// are judged on event time; once the cluster has been quiet for
	// findings.Settle, on the wall clock (findings.JudgeTime).
	HeardAt time.Time

	// From managedClusters resource payloads.
	Location             string
	KubernetesVersion    string
	UpgradeChannel       string
	NodeOSUpgradeChannel string
	ProvisioningState    string
	Tags                 map[string]string
	ProfileAt            Stamp // newest profile applied
	Deleted              bool
	Presence             Stamp // newest observation of the cluster existing or deleted
	PoolsListed          Stamp // newest profile that listed the agent pools
	NodesListed          Stamp // newest complete node snapshot

	// DeletionReported is a deletion only the activity log told of, newer
	// than anything seen of the cluster since (derived): evidence, not state,
	// until ARM confirms it (see DeletionReport).
	DeletionReported *DeletionReport

	// From NewKubernetesVersionAvailable.
	Versions   KubernetesVersions
	VersionsAt Stamp

	// From ClusterSupportEnding/Ended.
	Support        string // "", SupportEnding, SupportEnded
	SupportVersion string
	SupportAt      Stamp

	// From ARM reads: the maintenance configurations.
	MaintenanceKnown bool
	Maintenance      []MaintenanceWindow
	MaintenanceAt    Stamp

	// From ARM reads: the cluster's OIDC issuer URL ("" when not enabled),
	// against which node reporters' tokens are verified. Unknown until the
	// app has read the cluster from ARM.
	OIDCIssuerKnown bool
	OIDCIssuer      string
	OIDCIssuerAt    Stamp

	// When the channels last changed to their current values (a newer profile
	// with a different value than the one held); zero when never seen to change.
	NodeOSChannelChangedAt  time.Time
	UpgradeChannelChangedAt time.Time
	// Channels remembers when each channel value was first and last seen, from
	// which the ChangedAt times derive whatever the delivery order.
	Channels []ChannelSpan
	// The changes that set the channels to their current values, with the
	// actor of the write that made them when the activity log said (derived).
	NodeOSChannelChange  *ChannelChange
	UpgradeChannelChange *ChannelChange

	// Activities are the newest activity-log entries about the cluster, its
	// pools and its maintenance configurations, oldest first.
	Activities []ActivityRecord
	// MaintenanceChange is the newest successful maintenance configuration
	// write or delete (derived).
	MaintenanceChange *ActivityRecord

	// Findings are the rules' verdicts (see internal/findings), by Code~Target.
	// They are evaluated at commit time, not by Apply: they depend on policy
	// and the clock, not only on signals.
	Findings map[string]*Finding
	// NextEvaluation is when a time-based rule may next change a finding
	// (a stall deadline, an image going stale, a window ending); the sweep
	// re-evaluates the cluster then. Zero: nothing pending.
	NextEvaluation time.Time

	// Outbox holds the notification steps owed to the sinks (see Intent), by
	// Intent.ID. An intent every sink is done with (Intent.Done) stays here,
	// as it ended, until the change that finished it is committed: the
	// repository then keeps it as a record, outside the state it loads.
	Outbox map[string]*Intent
	// Remediations are the fixes planned for this cluster, by ID; the newest
	// are kept (see internal/remediate).
	Remediations map[string]*Remediation

	Pools     map[string]*Pool           // by lower-case pool name
	Upgrades  map[string]*Upgrade        // by Upgrade.Key
	Scheduled map[string]*ScheduledState // by ScheduledEvent.EventID
}

// Support states.
const (
	SupportEnding = "Ending"
	SupportEnded  = "Ended"
)

// Stamp orders observations: by event time, then by event id so that two
// signals with the same time still have one winner whatever the arrival order.
type Stamp struct {
	At       time.Time
	SignalID string
}

// Before reports whether s is older than o. The zero Stamp is older than any other.
func (s Stamp) Before(o Stamp) bool {
	if !s.At.Equal(o.At) {
		return s.At.Before(o.At)
	}
	return s.SignalID < o.SignalID
}

// IsZero reports whether nothing has been observed.
func (s Stamp) IsZero() bool { return s.At.IsZero() && s.SignalID == "" }

// Pool is one agent pool.
//
// What a pool is (Spec) and whether it exists (Removed) are observed
// separately: a newer deletion must not erase an older spec, and an older
// payload must not resurrect a pool a newer one dropped.
type Pool struct {
	Name     string
	Spec     PoolProfile
	SpecAt   Stamp // newest spec applied
	Removed  bool
	Presence Stamp // newest observation of the pool existing or removed
	// DeletionReported is a deletion of the pool only the activity log told
	// of (derived), as for the cluster.
	DeletionReported *DeletionReport

	// The newest image AKS offers the pool (ARM reads only).
	LatestImage   string
	LatestImageAt Stamp

	// From node inventory snapshots: the pool's nodes, counted.
	Nodes   *PoolNodes // nil until a snapshot listed the pool's nodes
	NodesAt Stamp

	// Images remembers which node image versions the pool ran, and when.
	Images []ImageSpan

	// Derived from the pool's upgrades.
	RollingState  string    // RollingIdle|RollingActive|RollingSucceeded|RollingFailed
	RollingSince  time.Time // start of the latest operation (its end if the start is unknown)
	LatestUpgrade string    // Key of the latest operation
}

// Pool rolling states.
const (
	RollingIdle      = "Idle"
	RollingActive    = "Rolling"
	RollingSucceeded = "Succeeded"
	RollingFailed    = "Failed"
)

// Upgrade is one rolling operation of one pool: a Started and its end.
type Upgrade struct {
	Key       string // <pool>~<first signal time>~<hash of first signal id>
	Pool      string
	Outcome   string    // OutcomeInProgress|OutcomeSucceeded|OutcomeFailed|OutcomeCanceled
	StartedAt time.Time // zero when the Started signal has not been seen
	EndedAt   time.Time // zero while in progress
	Signals   []SignalRef

	// The pool's image before the operation started and after it ended, from
	// node snapshots when there are some, else from ARM; "" when not observed.
	ImageBefore string
	ImageAfter  string

	// Who asked for the operation (derived from the activity log): Trigger is
	// TriggerManual, TriggerAutomatic or "" (no request seen).
	Trigger              string
	RequestedBy          string
	RequestedByType      string
	RequestedAt          time.Time
	RequestCorrelationID string
	// ChannelChange is the channel change this operation is the first of its
	// pool's after (derived); nil when none.
	ChannelChange *ChannelChange
	// Failures are the failed activities reported during the operation or
	// shortly after it (derived).
	Failures []ActivityRecord
	// ClosedBy is the activity that ended the operation (an abort, or the
	// failure of the request that started it) when no rolling event did.
	ClosedBy string

	// Time-to-patch of an operation that brought the pool to a newer image
	// (internal/patch): AvailableSince is when ImageAfter became available
	// (first seen in the region, else its release date), TimeToPatch from
	// then to EndedAt in whole seconds. Zero AvailableSince: not known. Set
	// by the application layer when the operation ends; kept while the
	// operation's end and ImageAfter stay as they are.
	AvailableSince time.Time
	TimeToPatch    time.Duration
}

// Upgrade outcomes.
const (
	OutcomeInProgress = "InProgress"
	OutcomeSucceeded  = "Succeeded"
	OutcomeFailed     = "Failed"
	OutcomeCanceled   = "Canceled"
)

// SignalRef is a signal as remembered by the upgrade it drove.
type SignalRef struct {
	ID   string     `json:"id"`
	Kind SignalKind `json:"kind"`
	Time time.Time  `json:"time"`
}

// ScheduledState is the newest notification for one Communication Manager event.
type ScheduledState struct {
	ScheduledEvent
	Observed Stamp
}

// NewCluster returns the empty state of a cluster seen for the first time.
func NewCluster(id ClusterID) *Cluster {
	return &Cluster{
		ID:        id,
		Tags:      map[string]string{},
		Pools:     map[string]*Pool{},
		Upgrades:  map[string]*Upgrade{},
		Scheduled: map[string]*ScheduledState{},
		Findings:  map[string]*Finding{},
	}
}

// Apply folds one signal into the cluster. It is pure: no clock, no I/O. The
// caller guarantees each signal id is applied at most once (the store's dedupe);
// Apply itself also ignores a rolling signal it already holds.
func Apply(c *Cluster, s Signal) error {
	if s.ID == "" {
		return fmt.Errorf("apply: signal has no id")
	}
	at := Stamp{At: s.Time, SignalID: s.ID}
	c.Signals++
	if c.FirstEventAt.IsZero() || s.Time.Before(c.FirstEventAt) {
		c.FirstEventAt = s.Time
	}
	if s.Time.After(c.LastEventAt) {
		c.LastEventAt = s.Time
	}

	switch s.Kind {
	case KindRollingStarted, KindRollingSucceeded, KindRollingFailed:
		if !ValidPoolName(s.Pool) {
			return fmt.Errorf("apply %s: invalid pool name %q", s.Kind, s.Pool)
		}
		p := c.pool(s.Pool)
		for _, u := range c.Upgrades {
			if u.Pool == p.Name && u.hasSignal(s.ID) {
				return nil
			}
		}
		p.observePresence(true, at) // a pool that rolls exists
		c.derivePool(p.Name, &SignalRef{ID: s.ID, Kind: s.Kind, Time: s.Time})
	case KindVersionsAvailable:
		if s.Versions != nil && c.VersionsAt.Before(at) {
			c.Versions, c.VersionsAt = *s.Versions, at
		}
	case KindSupportEnding, KindSupportEnded:
		if s.Support != nil && c.SupportAt.Before(at) {
			c.Support = SupportEnding
			if s.Kind == KindSupportEnded {
				c.Support = SupportEnded
			}
			c.SupportVersion, c.SupportAt = s.Support.KubernetesVersion, at
		}
	case KindScheduledEvent:
		if s.Scheduled == nil {
			return fmt.Errorf("apply %s: no scheduled event", s.Kind)
		}
		c.applyScheduled(*s.Scheduled, at)
	case KindClusterUpdated:
		if s.Profile == nil {
			return fmt.Errorf("apply %s: no profile", s.Kind)
		}
		c.applyProfile(*s.Profile, at)
	case KindClusterDeleted:
		if c.Presence.Before(at) {
			c.Deleted, c.Presence = true, at
		}
	case KindPoolUpdated:
		if s.PoolSpec == nil || !ValidPoolName(s.PoolSpec.Name) {
			return fmt.Errorf("apply %s: missing or invalid pool", s.Kind)
		}
		p := c.pool(s.PoolSpec.Name)
		p.observeSpec(*s.PoolSpec, at)
		p.observePresence(true, at)
		c.derivePool(p.Name, nil)
	case KindPoolDeleted:
		if !ValidPoolName(s.Pool) {
			return fmt.Errorf("apply %s: invalid pool name %q", s.Kind, s.Pool)
		}
		p := c.pool(s.Pool)
		p.observePresence(false, at)
		c.derivePool(p.Name, nil)
	case KindNodesObserved:
		if s.Inventory == nil {
			return fmt.Errorf("apply %s: no inventory", s.Kind)
		}
		c.applyInventory(*s.Inventory, at)
	case KindActivity:
		a := s.Activity
		if a == nil || a.Operation == "" {
			return fmt.Errorf("apply %s: no tracked activity", s.Kind)
		}
		if IsPoolOperation(a.Operation) && !ValidPoolName(a.Pool) {
			return fmt.Errorf("apply %s: invalid pool name %q", s.Kind, a.Pool)
		}
		c.applyActivity(*a, at)
		for name := range c.Pools {
			c.derivePool(name, nil)
		}
	case KindUnsupported, KindIgnored:
		// Recorded by the store (ignored ones are not even sent); nothing to fold in.
	default:
		return fmt.Errorf("apply: unknown signal kind %q", s.Kind)
	}
	c.deriveChanges()
	return nil
}

// pool returns the named pool, creating it if needed. A pool first heard of
// now was absent from the newest pool listing seen so far (else it would be
// known), which is an observation of its removal at that listing's time.
func (c *Cluster) pool(name string) *Pool {
	key := strings.ToLower(name)
	p, ok := c.Pools[key]
	if !ok {
		p = &Pool{Name: key, RollingState: RollingIdle}
		if !c.PoolsListed.IsZero() {
			p.observePresence(false, c.PoolsListed)
		}
		// Likewise it had no nodes in the newest complete node snapshot.
		if !c.NodesListed.IsZero() {
			p.Nodes, p.NodesAt = &PoolNodes{Versions: map[string]int{}}, c.NodesListed
		}
		c.Pools[key] = p
	}
	return p
}

func (p *Pool) observeSpec(spec PoolProfile, at Stamp) {
	p.observeImage(spec.NodeImageVersion, ImageFromARM, at.At)
	if spec.LatestNodeImageVersion != "" && p.LatestImageAt.Before(at) {
		p.LatestImage, p.LatestImageAt = spec.LatestNodeImageVersion, at
	}
	// The latest image has its own stamp: a payload that does not carry it must
	// not erase it.
	spec.LatestNodeImageVersion = ""
	if p.SpecAt.Before(at) {
		p.Spec, p.SpecAt = spec, at
		p.Spec.Name = p.Name
	}
}

func (p *Pool) observePresence(present bool, at Stamp) {
	if p.Presence.Before(at) {
		p.Removed, p.Presence = !present, at
	}
}

func (c *Cluster) applyProfile(pr ClusterProfile, at Stamp) {
	if c.ProfileAt.Before(at) {
		c.ProfileAt = at
		c.Location = pr.Location
		c.KubernetesVersion = pr.KubernetesVersion
		c.UpgradeChannel = pr.UpgradeChannel
		c.NodeOSUpgradeChannel = pr.NodeOSUpgradeChannel
		c.ProvisioningState = pr.ProvisioningState
		c.Tags = map[string]string{}
		for k, v := range pr.Tags {
			c.Tags[k] = v
		}
	}
	if c.Presence.Before(at) {
		c.Deleted, c.Presence = false, at
	}
	c.observeChannel(channelNodeOS, pr.NodeOSUpgradeChannel, at.At)
	c.observeChannel(channelUpgrade, pr.UpgradeChannel, at.At)
	if pr.MaintenanceKnown && c.MaintenanceAt.Before(at) {
		c.MaintenanceKnown, c.MaintenanceAt = true, at
		c.Maintenance = append([]MaintenanceWindow(nil), pr.Maintenance...)
	}
	if pr.OIDCIssuerKnown && c.OIDCIssuerAt.Before(at) {
		c.OIDCIssuerKnown, c.OIDCIssuer, c.OIDCIssuerAt = true, pr.OIDCIssuerURL, at
	}
	if pr.Pools == nil {
		return
	}
	// Pools are observed whatever the age of the payload: each observation
	// only wins over older ones, so arrival order does not matter.
	listed := map[string]bool{}
	for _, spec := range pr.Pools {
		if !ValidPoolName(spec.Name) {
			continue
		}
		p := c.pool(spec.Name)
		listed[p.Name] = true
		p.observeSpec(spec, at)
		p.observePresence(true, at)
	}
	// A cluster payload lists every pool: one that is missing was removed.
	for name, p := range c.Pools {
		if !listed[name] {
			p.observePresence(false, at)
		}
	}
	if c.PoolsListed.Before(at) {
		c.PoolsListed = at
	}
	for name := range c.Pools {
		c.derivePool(name, nil)
	}
}

// applyInventory folds in a node snapshot's per-pool summary. A pool with
// nodes exists; a complete snapshot that lists no node of a known pool says
// the pool has none (scaled to zero), not that it was removed.
func (c *Cluster) applyInventory(inv InventorySummary, at Stamp) {
	for name, pn := range inv.Pools {
		if !ValidPoolName(name) {
			continue
		}
		p := c.pool(name)
		p.observePresence(true, at)
		p.observeImage(pn.Dominant(), ImageFromNodes, at.At)
		if p.NodesAt.Before(at) {
			cp := pn
			cp.Versions = make(map[string]int, len(pn.Versions))
			for v, n := range pn.Versions {
				cp.Versions[v] = n
			}
			p.Nodes, p.NodesAt = &cp, at
		}
	}
	if inv.Complete {
		if c.NodesListed.Before(at) {
			c.NodesListed = at
		}
		for name, p := range c.Pools {
			if _, ok := inv.Pools[name]; !ok && p.NodesAt.Before(at) {
				p.Nodes, p.NodesAt = &PoolNodes{Versions: map[string]int{}}, at
			}
		}
	}
	for name := range c.Pools {
		c.derivePool(name, nil)
	}
}

func (c *Cluster) applyScheduled(ev ScheduledEvent, at Stamp) {
	cur, ok := c.Scheduled[ev.EventID]
	if ok && !scheduledBefore(cur, ev, at) {
		return
	}
	c.Scheduled[ev.EventID] = &ScheduledState{ScheduledEvent: ev, Observed: at}
}

// scheduledBefore reports whether the held notification is older than the new
// one: by event time, then by lifecycle (a terminal status beats Started beats
// Scheduled), then by signal id.
func scheduledBefore(cur *ScheduledState, ev ScheduledEvent, at Stamp) bool {
	if !cur.Observed.At.Equal(at.At) {
		return cur.Observed.At.Before(at.At)
	}
	if r1, r2 := scheduledRank(cur.Status), scheduledRank(ev.Status); r1 != r2 {
		return r1 < r2
	}
	return cur.Observed.SignalID < at.SignalID
}

func scheduledRank(status string) int {
	switch status {
	case ScheduledStatusScheduled:
		return 1
	case ScheduledStatusStarted:
		return 2
	case ScheduledStatusCompleted, ScheduledStatusFailed, ScheduledStatusCanceled:
		return 3
	}
	return 0
}

// derivePool rebuilds the rolling operations of one pool from all its rolling
// signals (plus extra, if not nil) and sets the pool's derived fields.
//
// Signals are taken in event-time order: Started opens an operation (a second
// Started while one is open joins it: AKS retried, nothing ended); Succeeded or
// Failed closes the open one, or stands alone as an operation whose start was
// not (yet) seen. A pool removed while an operation was open cancels it.
func (c *Cluster) derivePool(pool string, extra *SignalRef) {
	var refs []SignalRef
	prev := map[string]*Upgrade{}
	for key, u := range c.Upgrades {
		if u.Pool == pool {
			refs = append(refs, u.Signals...)
			prev[key] = u
			delete(c.Upgrades, key)
		}
	}
	if extra != nil {
		refs = append(refs, *extra)
	}
	closers := c.closers(pool)
	for _, cl := range closers {
		refs = append(refs, SignalRef{ID: cl.id, Kind: KindActivity, Time: cl.at})
	}
	sort.Slice(refs, func(i, j int) bool { return refBefore(refs[i], refs[j]) })

	var ops []*Upgrade
	var open, closed *Upgrade // closed: the last operation an activity ended
	for _, r := range refs {
		switch r.Kind {
		case KindRollingStarted:
			if open == nil {
				open = &Upgrade{Pool: pool, Outcome: OutcomeInProgress, StartedAt: r.Time}
				ops = append(ops, open)
			}
			open.Signals = append(open.Signals, r)
		case KindRollingSucceeded, KindRollingFailed:
			u := open
			if u == nil && closed != nil && !r.Time.After(closed.EndedAt.Add(failureReach)) {
				// The rolling end of an operation an abort or a failed
				// request already ended: it joins it, keeping its outcome
				// unless the rolling one says it failed.
				closed.Signals = append(closed.Signals, r)
				if r.Kind == KindRollingFailed && closed.Outcome != OutcomeCanceled {
					closed.Outcome = OutcomeFailed
				}
				continue
			}
			if u == nil {
				u = &Upgrade{Pool: pool}
				ops = append(ops, u)
			}
			u.Signals = append(u.Signals, r)
			u.EndedAt = r.Time
			u.Outcome = OutcomeSucceeded
			if r.Kind == KindRollingFailed {
				u.Outcome = OutcomeFailed
			}
			open, closed = nil, nil
		case KindActivity:
			cl := closers[r.ID]
			if open == nil || !cl.ends(open) {
				continue
			}
			open.EndedAt, open.Outcome, open.ClosedBy = r.Time, cl.outcome, r.ID
			open, closed = nil, open
		}
	}
	p := c.Pools[pool]
	if open != nil && p.Removed && open.StartedAt.Before(p.Presence.At) {
		open.Outcome, open.EndedAt = OutcomeCanceled, p.Presence.At
	}

	p.RollingState, p.RollingSince, p.LatestUpgrade = RollingIdle, time.Time{}, ""
	for _, u := range ops {
		first := u.Signals[0]
		u.Key = upgradeKey(pool, first)
		p.setImages(u)
		u.keepTimeToPatch(prev[u.Key])
		c.Upgrades[u.Key] = u
	}
	if len(ops) > 0 {
		last := ops[len(ops)-1]
		p.LatestUpgrade = last.Key
		p.RollingSince = last.StartedAt
		if p.RollingSince.IsZero() {
			p.RollingSince = last.EndedAt
		}
		switch last.Outcome {
		case OutcomeInProgress:
			p.RollingState = RollingActive
		case OutcomeSucceeded:
			p.RollingState = RollingSucceeded
		case OutcomeFailed:
			p.RollingState = RollingFailed
		}
	}
}

// keepTimeToPatch carries the time-to-patch over from the operation as it
// was derived before, while what it was measured on has not changed.
func (u *Upgrade) keepTimeToPatch(prev *Upgrade) {
	if prev != nil && prev.Outcome == u.Outcome && prev.EndedAt.Equal(u.EndedAt) && prev.ImageAfter == u.ImageAfter {
		u.AvailableSince, u.TimeToPatch = prev.AvailableSince, prev.TimeToPatch
	}
}

func (u *Upgrade) hasSignal(id string) bool {
	for _, r := range u.Signals {
		if r.ID == id && r.Kind != KindActivity {
			return true
		}
	}
	return false
}

// refBefore orders rolling signals: by time; at equal times a start comes before
// an end; then by id.
func refBefore(a, b SignalRef) bool {
	if !a.Time.Equal(b.Time) {
		return a.Time.Before(b.Time)
	}
	if ra, rb := a.Kind == KindRollingStarted, b.Kind == KindRollingStarted; ra != rb {
		return ra
	}
	return a.ID < b.ID
}

// TimeKeyLayout formats times inside keys: fixed width, so keys sort in time order.
const TimeKeyLayout = "20060102T150405.0000000Z"

func upgradeKey(pool string, first SignalRef) string {
	h := sha256.Sum256([]byte(first.ID))
	return pool + "~" + first.Time.UTC().Format(TimeKeyLayout) + "~" + hex.EncodeToString(h[:4])
}

// InFlight returns the operations still in progress, ordered by key.
func (c *Cluster) InFlight() []*Upgrade {
	var out []*Upgrade
	for _, u := range c.Upgrades {
		if u.Outcome == OutcomeInProgress {
			out = append(out, u)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// SortedPools returns the pools ordered by name.
func (c *Cluster) SortedPools() []*Pool {
	out := make([]*Pool, 0, len(c.Pools))
	for _, p := range c.Pools {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// RecentUpgrades returns up to n operations, the latest first (by start, or end
// when the start is unknown).
func (c *Cluster) RecentUpgrades(n int) []*Upgrade {
	out := make([]*Upgrade, 0, len(c.Upgrades))
	for _, u := range c.Upgrades {
		out = append(out, u)
	}
	sort.Slice(out, func(i, j int) bool {
		ti, tj := out[i].sortTime(), out[j].sortTime()
		if !ti.Equal(tj) {
			return ti.After(tj)
		}
		return out[i].Key < out[j].Key
	})
	if n >= 0 && len(out) > n {
		out = out[:n]
	}
	return out
}

func (u *Upgrade) sortTime() time.Time {
	if !u.StartedAt.IsZero() {
		return u.StartedAt
	}
	return u.EndedAt
}

// Clone returns a deep copy, so a transition can be tried and thrown away.
func (c *Cluster) Clone() *Cluster {
	n := *c
	n.Tags = make(map[string]string, len(c.Tags))
	for k, v := range c.Tags {
		n.Tags[k] = v
	}
	n.Pools = make(map[string]*Pool, len(c.Pools))
	for k, p := range c.Pools {
		cp := *p
		cp.Images = append([]ImageSpan(nil), p.Images...)
		if p.Nodes != nil {
			nodes := *p.Nodes
			nodes.Versions = make(map[string]int, len(p.Nodes.Versions))
			for v, count := range p.Nodes.Versions {
				nodes.Versions[v] = count
			}
			cp.Nodes = &nodes
		}
		n.Pools[k] = &cp
	}
	n.Maintenance = append([]MaintenanceWindow(nil), c.Maintenance...)
	n.Channels = append([]ChannelSpan(nil), c.Channels...)
	n.Activities = append([]ActivityRecord(nil), c.Activities...)
	n.NodeOSChannelChange = cloneChange(c.NodeOSChannelChange)
	n.UpgradeChannelChange = cloneChange(c.UpgradeChannelChange)
	if c.MaintenanceChange != nil {
		m := *c.MaintenanceChange
		n.MaintenanceChange = &m
	}
	if c.Outbox != nil {
		n.Outbox = make(map[string]*Intent, len(c.Outbox))
		for k, i := range c.Outbox {
			n.Outbox[k] = i.Clone()
		}
	}
	if c.Remediations != nil {
		n.Remediations = make(map[string]*Remediation, len(c.Remediations))
		for k, r := range c.Remediations {
			cr := *r
			n.Remediations[k] = &cr
		}
	}
	n.Findings = make(map[string]*Finding, len(c.Findings))
	for k, f := range c.Findings {
		cf := *f
		n.Findings[k] = &cf
	}
	n.Upgrades = make(map[string]*Upgrade, len(c.Upgrades))
	for k, u := range c.Upgrades {
		cu := *u
		cu.Signals = append([]SignalRef(nil), u.Signals...)
		cu.Failures = append([]ActivityRecord(nil), u.Failures...)
		cu.ChannelChange = cloneChange(u.ChannelChange)
		n.Upgrades[k] = &cu
	}
	n.Scheduled = make(map[string]*ScheduledState, len(c.Scheduled))
	for k, s := range c.Scheduled {
		cs := *s
		n.Scheduled[k] = &cs
	}
	return &n
}

func cloneChange(ch *ChannelChange) *ChannelChange {
	if ch == nil {
		return nil
	}
	cp := *ch
	return &cp
}
