package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
	"github.com/upgradewatch/upgradewatch/internal/host"
	"github.com/upgradewatch/upgradewatch/internal/patch"
	"github.com/upgradewatch/upgradewatch/internal/watch"
)

// FunctionStatus is the Status function: GET /api/clusters[/{sub}/{rg}/{name}].
const FunctionStatus = "Status"

// recentUpgrades is how many operations a cluster's status lists.
const recentUpgrades = 25

type clusterJSON struct {
	Key                  string            `json:"key"`
	SubscriptionID       string            `json:"subscriptionId"`
	ResourceGroup        string            `json:"resourceGroup"`
	Name                 string            `json:"name"`
	ResourceID           string            `json:"resourceId"`
	Location             string            `json:"location,omitempty"`
	UpgradeChannel       string            `json:"upgradeChannel"`
	NodeOSUpgradeChannel string            `json:"nodeOSUpgradeChannel"`
	KubernetesVersion    string            `json:"kubernetesVersion"`
	Pools                int               `json:"pools"`
	RollingPools         int               `json:"rollingPools"`
	Deleted              bool              `json:"deleted,omitempty"`
	Support              string            `json:"support,omitempty"`
	SupportVersion       string            `json:"supportVersion,omitempty"`
	Tags                 map[string]string `json:"tags,omitempty"`
	Signals              int64             `json:"signals,omitempty"`
	FirstEventAt         *time.Time        `json:"firstEventAt,omitempty"`
	LastEventAt          *time.Time        `json:"lastEventAt,omitempty"`
	LatestVersions       *versionsJSON     `json:"latestKubernetesVersions,omitempty"`

	// DeletionReported: the activity log said the cluster was deleted; ARM
	// has not confirmed it yet (a read is wanted).
	DeletionReported *fleet.DeletionReport `json:"deletionReported,omitempty"`
}

type versionsJSON struct {
	Supported string `json:"supported,omitempty"`
	Stable    string `json:"stable,omitempty"`
	LowestMin string `json:"lowestMinor,omitempty"`
	Preview   string `json:"preview,omitempty"`
}

type poolJSON struct {
	Name                string     `json:"name"`
	Mode                string     `json:"mode,omitempty"`
	OSType              string     `json:"osType,omitempty"`
	OSSKU               string     `json:"osSku,omitempty"`
	VMSize              string     `json:"vmSize,omitempty"`
	Count               int        `json:"count"`
	NodeImageVersion    string     `json:"nodeImageVersion,omitempty"`
	OrchestratorVersion string     `json:"orchestratorVersion,omitempty"`
	MaxSurge            string     `json:"maxSurge,omitempty"`
	DrainTimeoutMinutes int        `json:"drainTimeoutMinutes,omitempty"`
	RollingState        string     `json:"rollingState"`
	RollingSince        *time.Time `json:"rollingSince,omitempty"`
	LatestUpgrade       string     `json:"latestUpgrade,omitempty"`
	Removed             bool       `json:"removed,omitempty"`
	// DeletionReported: the activity log said the pool was deleted; ARM has
	// not confirmed it yet.
	DeletionReported *fleet.DeletionReport `json:"deletionReported,omitempty"`
	GPU              bool                  `json:"gpu,omitempty"`
	// The newest image AKS offers the pool, from the last ARM read.
	LatestNodeImageVersion string `json:"latestNodeImageVersion,omitempty"`
	// What the pool's nodes run, from the last node snapshot.
	Nodes *poolSpreadOut `json:"nodes,omitempty"`
	// NodesObservedAt is when that snapshot was taken.
	NodesObservedAt *time.Time `json:"nodesObservedAt,omitempty"`
	// Patch is the pool's patch status (live pools; absent when the image
	// catalogue could not be read).
	Patch *patchJSON `json:"patch,omitempty"`
}

// patchJSON is a pool's patch status (docs/patch-status.md).
type patchJSON struct {
	Status      string         `json:"status"`
	BlockedBy   string         `json:"blockedBy,omitempty"`
	Reason      string         `json:"reason"`
	LatestImage string         `json:"latestImage,omitempty"`
	LatestSince *time.Time     `json:"latestSince,omitempty"`
	ReleasedAt  *time.Time     `json:"releasedAt,omitempty"`
	DaysBehind  int            `json:"daysBehind"`
	Compliance  string         `json:"compliance"`
	Evidence    patch.Evidence `json:"evidence"`
}

func patchOut(st patch.PoolStatus) *patchJSON {
	return &patchJSON{Status: st.Status, BlockedBy: st.Blocked, Reason: st.Reason, LatestImage: st.LatestImage,
		LatestSince: timePtr(st.LatestSince), ReleasedAt: timePtr(st.ReleasedAt), DaysBehind: st.DaysBehind,
		Compliance: st.Compliance, Evidence: st.Evidence}
}

type upgradeJSON struct {
	Key       string     `json:"key"`
	Pool      string     `json:"pool"`
	Outcome   string     `json:"outcome"`
	StartedAt *time.Time `json:"startedAt,omitempty"`
	EndedAt   *time.Time `json:"endedAt,omitempty"`
	// The pool's node image before and after the operation ("" when not observed).
	ImageBefore string            `json:"imageBefore,omitempty"`
	ImageAfter  string            `json:"imageAfter,omitempty"`
	Signals     []fleet.SignalRef `json:"signals"`
	// From the activity log: who asked for it, the channel change it
	// followed, what went wrong, and what ended it when no rolling event did.
	Trigger       string               `json:"trigger,omitempty"` // Manual|Automatic
	RequestedBy   string               `json:"requestedBy,omitempty"`
	RequestedAt   *time.Time           `json:"requestedAt,omitempty"`
	CorrelationID string               `json:"correlationId,omitempty"`
	ChannelChange *fleet.ChannelChange `json:"channelChange,omitempty"`
	Failures      []activityJSON       `json:"failures,omitempty"`
	ClosedBy      string               `json:"closedBy,omitempty"`
	// TimeToPatch is, in seconds, from the new image becoming available to
	// the end of the operation that applied it; absent when unknown.
	TimeToPatch *int64 `json:"timeToPatch,omitempty"`
}

// activityJSON is one activity-log entry in the Status API.
type activityJSON struct {
	At            time.Time `json:"at"`
	Operation     string    `json:"operation"`
	OperationName string    `json:"operationName,omitempty"`
	Status        string    `json:"status"`
	Actor         string    `json:"actor,omitempty"`
	ActorType     string    `json:"actorType,omitempty"`
	Pool          string    `json:"pool,omitempty"`
	Maintenance   string    `json:"maintenanceConfiguration,omitempty"`
	CorrelationID string    `json:"correlationId,omitempty"`
	Message       string    `json:"message,omitempty"`
	Path          string    `json:"receivedVia,omitempty"`
	Signal        string    `json:"signal"`
}

func activityOut(a fleet.ActivityRecord) activityJSON {
	return activityJSON{At: a.At, Operation: a.Operation, OperationName: a.OperationName, Status: a.Status, Actor: a.Actor,
		ActorType: a.ActorType, Pool: a.Pool, Maintenance: a.Maintenance, CorrelationID: a.CorrelationID, Message: a.Message,
		Path: a.Path, Signal: a.ID}
}

// recentActivities is how many activity-log entries a cluster's status lists.
const recentActivities = 20

type scheduledJSON struct {
	EventID        string     `json:"eventId"`
	Status         string     `json:"status"`
	UpgradeType    string     `json:"upgradeType"`
	Source         string     `json:"source,omitempty"`
	Description    string     `json:"description,omitempty"`
	Details        string     `json:"details,omitempty"`
	ScheduledTime  *time.Time `json:"scheduledTime,omitempty"`
	StartTime      *time.Time `json:"startTime,omitempty"`
	LastUpdateTime *time.Time `json:"lastUpdateTime,omitempty"`
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// listClusters: GET /api/clusters, the fleet from the index.
func (s *Server) listClusters(w http.ResponseWriter, r *http.Request) {
	list, err := s.app.Clusters(r.Context())
	if err != nil {
		s.log.Error("list clusters failed", "function", FunctionStatus, "error", err)
		writeJSON(w, http.StatusServiceUnavailable, errorBody{Error: "state storage unavailable; try again"})
		return
	}
	out := make([]clusterJSON, 0, len(list))
	for _, c := range list {
		out = append(out, clusterJSON{
			Key: c.Key, SubscriptionID: c.SubscriptionID, ResourceGroup: c.ResourceGroup, Name: c.Name,
			ResourceID: c.ResourceID, Location: c.Location, UpgradeChannel: c.UpgradeChannel,
			NodeOSUpgradeChannel: c.NodeOSUpgradeChannel, KubernetesVersion: c.KubernetesVersion,
			Pools: c.Pools, RollingPools: c.RollingPools, Deleted: c.Deleted, Support: c.Support,
		})
	}
	writeJSON(w, http.StatusOK, map[string]any{"count": len(out), "clusters": out})
}

// getCluster: GET /api/clusters/{subscriptionId}/{resourceGroup}/{clusterName}.
func (s *Server) getCluster(w http.ResponseWriter, r *http.Request) {
	id, err := fleet.NewClusterID(r.PathValue("subscriptionId"), r.PathValue("resourceGroup"), r.PathValue("clusterName"))
	if err != nil {
		writeJSON(w, http.StatusBadRequest, errorBody{Error: err.Error()})
		return
	}
	c, err := s.app.Cluster(r.Context(), id)
	if err != nil {
		if !errors.Is(err, fleet.ErrNotFound) {
			s.log.Error("read cluster failed", "function", FunctionStatus, "cluster", id.Key(), "error", err)
		}
		apiError(w, err, id)
		return
	}
	writeJSON(w, http.StatusOK, clusterDetail(c, s.patchView(r.Context(), c)))
}

// patchView is the cluster's patch status, or nil when the image catalogue
// cannot be read: the rest of the status still answers.
func (s *Server) patchView(ctx context.Context, c *fleet.Cluster) *watch.PatchView {
	pv, err := s.app.PatchStatus(ctx, c)
	if err != nil {
		s.log.Warn("patch status unavailable", "function", FunctionStatus, "cluster", c.ID.Key(), "error", err)
		return nil
	}
	return &pv
}

func clusterDetail(c *fleet.Cluster, pv *watch.PatchView) map[string]any {
	pools, live, rolling := poolsOut(c, pv)
	acts := []activityJSON{}
	for i := len(c.Activities) - 1; i >= 0 && len(acts) < recentActivities; i-- {
		acts = append(acts, activityOut(c.Activities[i]))
	}
	sched := []scheduledJSON{}
	for _, e := range sortedScheduled(c) {
		sched = append(sched, scheduledJSON{EventID: e.EventID, Status: e.Status, UpgradeType: e.UpgradeType,
			Source: e.Source, Description: e.Description, Details: e.Details, ScheduledTime: timePtr(e.ScheduledTime),
			StartTime: timePtr(e.StartTime), LastUpdateTime: timePtr(e.LastUpdateTime)})
	}
	cj := clusterJSON{
		Key: c.ID.Key(), SubscriptionID: c.ID.SubscriptionID, ResourceGroup: c.ID.ResourceGroup, Name: c.ID.Name,
		ResourceID: c.ID.ResourceID(), Location: c.Location, UpgradeChannel: c.UpgradeChannel,
		NodeOSUpgradeChannel: c.NodeOSUpgradeChannel, KubernetesVersion: c.KubernetesVersion,
		Pools: live, RollingPools: rolling, Deleted: c.Deleted, DeletionReported: c.DeletionReported,
		Support: c.Support, SupportVersion: c.SupportVersion, Tags: c.Tags, Signals: c.Signals, FirstEventAt: timePtr(c.FirstEventAt), LastEventAt: timePtr(c.LastEventAt),
	}
	if c.Versions != (fleet.KubernetesVersions{}) {
		cj.LatestVersions = &versionsJSON{Supported: c.Versions.LatestSupported, Stable: c.Versions.LatestStable,
			LowestMin: c.Versions.LowestMinor, Preview: c.Versions.LatestPreview}
	}
	detail := map[string]any{"cluster": cj, "pools": pools, "upgrades": upgradesOut(c, pv), "scheduledEvents": sched,
		"findings": clusterFindingList(c, findingFilter{status: "open"}), "activity": acts}
	if pv == nil {
		detail["patchUnavailable"] = "the image catalogue could not be read; try again"
	}
	detailExtras(c, detail)
	return detail
}

// poolsOut lists the cluster's pools, with how many are live and rolling.
func poolsOut(c *fleet.Cluster, pv *watch.PatchView) (pools []poolJSON, live, rolling int) {
	pools = make([]poolJSON, 0, len(c.Pools))
	for _, p := range c.SortedPools() {
		if p.RollingState == fleet.RollingActive {
			rolling++
		}
		if !p.Removed {
			live++
		}
		pj := poolJSON{
			Name: p.Name, Mode: p.Spec.Mode, OSType: p.Spec.OSType, OSSKU: p.Spec.OSSKU, VMSize: p.Spec.VMSize,
			Count: p.Spec.Count, NodeImageVersion: p.Spec.NodeImageVersion, OrchestratorVersion: p.Spec.OrchestratorVersion,
			MaxSurge: p.Spec.MaxSurge, DrainTimeoutMinutes: p.Spec.DrainTimeoutMinutes,
			RollingState: p.RollingState, RollingSince: timePtr(p.RollingSince), LatestUpgrade: p.LatestUpgrade,
			Removed: p.Removed, GPU: fleet.IsGPUSize(p.Spec.VMSize), LatestNodeImageVersion: p.LatestImage,
			DeletionReported: p.DeletionReported,
		}
		if p.Nodes != nil {
			spread := poolSpread(p.Name, *p.Nodes)
			pj.Nodes, pj.NodesObservedAt = &spread, timePtr(p.NodesAt.At)
		}
		if st, ok := pv.Pool(p.Name); ok {
			pj.Patch = patchOut(st)
		}
		pools = append(pools, pj)
	}
	return pools, live, rolling
}

// upgradesOut lists the cluster's recent upgrades.
func upgradesOut(c *fleet.Cluster, pv *watch.PatchView) []upgradeJSON {
	ups := []upgradeJSON{}
	for _, u := range c.RecentUpgrades(recentUpgrades) {
		uj := upgradeJSON{Key: u.Key, Pool: u.Pool, Outcome: u.Outcome,
			StartedAt: timePtr(u.StartedAt), EndedAt: timePtr(u.EndedAt), Signals: u.Signals,
			ImageBefore: u.ImageBefore, ImageAfter: u.ImageAfter,
			Trigger: u.Trigger, RequestedBy: u.RequestedBy, RequestedAt: timePtr(u.RequestedAt),
			CorrelationID: u.RequestCorrelationID, ChannelChange: u.ChannelChange, ClosedBy: u.ClosedBy}
		for _, f := range u.Failures {
			uj.Failures = append(uj.Failures, activityOut(f))
		}
		if d, ok := pv.Latency(u.Key); ok {
			secs := int64(d / time.Second)
			uj.TimeToPatch = &secs
		}
		ups = append(ups, uj)
	}
	return ups
}

// detailExtras adds what a cluster shows only when it has it.
func detailExtras(c *fleet.Cluster, detail map[string]any) {
	changes := map[string]*fleet.ChannelChange{}
	if ch := c.NodeOSChannelChange; ch != nil {
		changes["nodeOS"] = ch
	}
	if ch := c.UpgradeChannelChange; ch != nil {
		changes["upgrade"] = ch
	}
	if len(changes) > 0 {
		detail["channelChanges"] = changes
	}
	if m := c.MaintenanceChange; m != nil {
		detail["maintenanceChange"] = activityOut(*m)
	}
	if since, ok := c.RefreshWanted(); ok {
		detail["refreshWantedSince"] = since
	}
	if !c.NextEvaluation.IsZero() {
		detail["nextEvaluation"] = c.NextEvaluation
	}
	if len(c.Outbox) > 0 {
		detail["notificationsPending"] = pendingOut(c)
	}
	if len(c.Remediations) > 0 {
		detail["remediations"] = remediationsOut(c)
	}
	if c.MaintenanceKnown {
		mw := c.Maintenance
		if mw == nil {
			mw = []fleet.MaintenanceWindow{}
		}
		detail["maintenanceWindows"] = mw
		detail["maintenanceObservedAt"] = c.MaintenanceAt.At
	}
}

func sortedScheduled(c *fleet.Cluster) []*fleet.ScheduledState {
	out := make([]*fleet.ScheduledState, 0, len(c.Scheduled))
	for _, e := range c.Scheduled {
		out = append(out, e)
	}
	// Newest first.
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j-1].Observed.Before(out[j].Observed); j-- {
			out[j-1], out[j] = out[j], out[j-1]
		}
	}
	return out
}

// statusEnvelope serves the Status function when the host does not forward the
// raw request (forwarding off): the request arrives as Data.req and the answer
// goes back as Outputs.res.
func (s *Server) statusEnvelope(w http.ResponseWriter, r *http.Request) {
	req, _, err := host.DecodeRequest(r.Body, s.maxBody)
	if err != nil {
		host.WriteResponse(w, http.StatusOK, host.InvokeResponse{
			Outputs: map[string]any{"res": map[string]any{"statusCode": "400", "body": errorBody{Error: err.Error()},
				"headers": map[string]string{"Content-Type": "application/json"}}}})
		return
	}
	var hr struct {
		URL    string `json:"Url"`
		Method string `json:"Method"`
	}
	raw, err := req.Binding("req")
	if err == nil {
		err = json.Unmarshal(raw, &hr)
	}
	u, perr := url.Parse(hr.URL)
	if err != nil || perr != nil || hr.URL == "" {
		host.WriteResponse(w, http.StatusOK, host.InvokeResponse{
			Outputs: map[string]any{"res": map[string]any{"statusCode": "400",
				"body":    errorBody{Error: "Status invocation carries no request URL"},
				"headers": map[string]string{"Content-Type": "application/json"}}}})
		return
	}
	method := strings.ToUpper(hr.Method)
	if method == "" {
		method = http.MethodGet
	}
	inner := httptest.NewRequestWithContext(r.Context(), method, u.RequestURI(), nil)
	rec := httptest.NewRecorder()
	if strings.HasPrefix(u.Path, "/api/") {
		s.mux.ServeHTTP(rec, inner)
	} else {
		s.apiNotFound(rec, inner)
	}
	var body any
	if json.Unmarshal(rec.Body.Bytes(), &body) != nil {
		body = rec.Body.String()
	}
	host.WriteResponse(w, http.StatusOK, host.InvokeResponse{Outputs: map[string]any{"res": map[string]any{
		"statusCode": strconv.Itoa(rec.Code), "body": body,
		"headers": map[string]string{"Content-Type": "application/json; charset=utf-8"}}}})
}

// pendingJSON is a notification the cluster still owes a sink.
type pendingJSON struct {
	ID         string                     `json:"id"`
	Type       string                     `json:"type"`
	Code       string                     `json:"code,omitempty"`
	Target     string                     `json:"target,omitempty"`
	At         time.Time                  `json:"at"`
	Deliveries map[string]*fleet.Delivery `json:"deliveries"`
}

func pendingOut(c *fleet.Cluster) []pendingJSON {
	var out []pendingJSON
	for _, i := range c.OutboxOrder() {
		out = append(out, pendingJSON{ID: i.ID, Type: "io.upgradewatch." + i.Step, Code: i.Code, Target: i.Target, At: i.At,
			Deliveries: i.Deliveries})
	}
	return out
}

type remediationJSON struct {
	ID        string     `json:"id"`
	Action    string     `json:"action"`
	Code      string     `json:"code"`
	Target    string     `json:"target"`
	Mode      string     `json:"mode"`
	Status    string     `json:"status"`
	From      string     `json:"from,omitempty"`
	To        string     `json:"to,omitempty"`
	Detail    string     `json:"detail,omitempty"`
	Error     string     `json:"error,omitempty"`
	Attempt   int        `json:"attempt"`
	PlannedAt time.Time  `json:"plannedAt"`
	UpdatedAt time.Time  `json:"updatedAt"`
	RetryAt   *time.Time `json:"retryAt,omitempty"`
}

// remediationsOut lists the cluster's remediations, newest first.
func remediationsOut(c *fleet.Cluster) []remediationJSON {
	out := make([]remediationJSON, 0, len(c.Remediations))
	for _, r := range c.Remediations {
		out = append(out, remediationJSON{ID: r.ID, Action: r.Action, Code: r.Code, Target: r.Target, Mode: r.Mode,
			Status: r.Status, From: r.From, To: r.To, Detail: r.Detail, Error: r.Error, Attempt: r.Attempt,
			PlannedAt: r.PlannedAt, UpdatedAt: r.UpdatedAt, RetryAt: timePtr(r.RetryAt)})
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].PlannedAt.Equal(out[j].PlannedAt) {
			return out[i].PlannedAt.After(out[j].PlannedAt)
		}
		return out[i].ID < out[j].ID
	})
	return out
}
