package handlers

import (
	"net/http"
	"strconv"
	"time"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
)

// defaultHistoryDays is how far back the node list reports image changes.
const defaultHistoryDays = 30

type nodeJSON struct {
	fleet.NodeObservation
	FirstSeenAt  time.Time  `json:"firstSeenAt"`
	VersionSince time.Time  `json:"versionSince"`
	ChangedAt    time.Time  `json:"changedAt"`
	Gone         bool       `json:"gone,omitempty"`
	GoneAt       *time.Time `json:"goneAt,omitempty"`
}

func nodeOut(n fleet.Node) nodeJSON {
	j := nodeJSON{NodeObservation: n.NodeObservation, FirstSeenAt: n.FirstSeenAt, VersionSince: n.VersionSince,
		ChangedAt: n.ChangedAt, Gone: n.Gone}
	if n.Gone {
		j.GoneAt = timePtr(n.ChangedAt)
	}
	return j
}

type inventoryJSON struct {
	SnapshotID string     `json:"snapshotId,omitempty"`
	ObservedAt *time.Time `json:"observedAt,omitempty"`
	Complete   bool       `json:"complete"`
	Nodes      int        `json:"nodes"`
}

// getNodes: GET /api/clusters/{sub}/{rg}/{name}/nodes[?historyDays=30&gone=true]
// — every node's versions, each pool's version spread, and recent image changes.
func (s *Server) getNodes(w http.ResponseWriter, r *http.Request) {
	id, err := fleet.NewClusterID(r.PathValue("subscriptionId"), r.PathValue("resourceGroup"), r.PathValue("clusterName"))
	if err != nil {
		writeJSON(w, http.StatusBadRequest, errorBody{Error: err.Error()})
		return
	}
	days := defaultHistoryDays
	if v := r.URL.Query().Get("historyDays"); v != "" {
		if days, err = strconv.Atoi(v); err != nil || days < 0 || days > 3660 {
			writeJSON(w, http.StatusBadRequest, errorBody{Error: "historyDays must be a number of days between 0 and 3660"})
			return
		}
	}
	withGone := r.URL.Query().Get("gone") == "true"
	inv, nodes, err := s.app.Nodes(r.Context(), id)
	if err != nil {
		s.log.Error("read nodes failed", "function", FunctionStatus, "cluster", id.Key(), "error", err)
		unavailable(w)
		return
	}
	if inv.SnapshotID == "" {
		writeJSON(w, http.StatusNotFound, errorBody{Error: "no node snapshot for cluster " + id.ResourceID() +
			" (deploy node-reporter or POST `kubectl get nodes -o json` to this path)"})
		return
	}
	hist, err := s.app.NodeHistory(r.Context(), id, s.now().AddDate(0, 0, -days), "", 0)
	if err != nil {
		s.log.Error("read node history failed", "function", FunctionStatus, "cluster", id.Key(), "error", err)
		unavailable(w)
		return
	}
	out := make([]nodeJSON, 0, len(nodes))
	for _, n := range nodes {
		if n.Gone && !withGone {
			continue
		}
		out = append(out, nodeOut(n))
	}
	if hist == nil {
		hist = []fleet.NodeVersionChange{}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"cluster":   id.ResourceID(),
		"inventory": inventoryJSON{SnapshotID: inv.SnapshotID, ObservedAt: timePtr(inv.ObservedAt), Complete: inv.Complete, Nodes: inv.Nodes},
		"pools":     spreadOf(fleet.Summarise(nodes, false)),
		"nodes":     out,
		"history":   hist,
	})
}

// getNode: GET /api/clusters/{sub}/{rg}/{name}/nodes/{node} — one node and its
// whole image history.
func (s *Server) getNode(w http.ResponseWriter, r *http.Request) {
	id, err := fleet.NewClusterID(r.PathValue("subscriptionId"), r.PathValue("resourceGroup"), r.PathValue("clusterName"))
	if err != nil {
		writeJSON(w, http.StatusBadRequest, errorBody{Error: err.Error()})
		return
	}
	name := r.PathValue("node")
	n, ok, err := s.app.Node(r.Context(), id, name)
	switch {
	case err != nil:
		s.log.Error("read node failed", "function", FunctionStatus, "cluster", id.Key(), "error", err)
		unavailable(w)
		return
	case !ok:
		writeJSON(w, http.StatusNotFound, errorBody{Error: "no node " + name + " in " + id.ResourceID()})
		return
	}
	hist, err := s.app.NodeHistory(r.Context(), id, time.Time{}, name, 0)
	if err != nil {
		unavailable(w)
		return
	}
	if hist == nil {
		hist = []fleet.NodeVersionChange{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"cluster": id.ResourceID(), "node": nodeOut(n), "history": hist})
}
