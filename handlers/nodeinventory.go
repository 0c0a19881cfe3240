package handlers

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
	"github.com/upgradewatch/upgradewatch/internal/inventory"
	"github.com/upgradewatch/upgradewatch/internal/state"
)

// FunctionNodeInventory is the httpTrigger that takes node snapshots:
// POST /api/clusters/{subscriptionId}/{resourceGroup}/{clusterName}/nodes.
const FunctionNodeInventory = "NodeInventory"

// DefaultMaxInventoryBytes bounds a node snapshot: `kubectl get nodes -o json`
// prints 5–10 KiB per node, so 16 MiB holds the raw listing of a large cluster
// (node-reporter's compact form is some 300 bytes a node).
const DefaultMaxInventoryBytes = 16 << 20

type inventoryResult struct {
	Result       string          `json:"result"` // applied|duplicate|stale
	Cluster      string          `json:"cluster"`
	SnapshotID   string          `json:"snapshotId"`
	ObservedAt   string          `json:"observedAt"`
	Complete     bool            `json:"complete"`
	Nodes        int             `json:"nodes"`   // nodes in the snapshot
	Skipped      int             `json:"skipped"` // listed nodes left out of the snapshot
	Changed      int             `json:"changedNodes"`
	History      int             `json:"versionChanges"`
	Transactions int             `json:"transactions"`
	Pools        []poolSpreadOut `json:"pools"`

	// SkippedNodes names the skipped nodes with the reason (at most
	// inventory.MaxNamedSkipped); SkippedNotNamed counts the rest.
	SkippedNodes    []inventory.SkippedNode `json:"skippedNodes,omitempty"`
	SkippedNotNamed int                     `json:"skippedNotNamed,omitempty"`
}

// nodeInventory applies a snapshot to the node rows, then folds its per-pool
// summary into the cluster state as a signal, so both are exactly once: the
// node rows by their inventory mark, the summary by its signal id.
func (s *Server) nodeInventory(w http.ResponseWriter, r *http.Request) {
	id, err := fleet.NewClusterID(r.PathValue("subscriptionId"), r.PathValue("resourceGroup"), r.PathValue("clusterName"))
	if err != nil {
		writeJSON(w, http.StatusBadRequest, errorBody{Error: err.Error()})
		return
	}
	l := s.log.With("function", FunctionNodeInventory, "cluster", id.Key(),
		"invocation_id", r.Header.Get("X-Azure-Functions-InvocationId"))
	if !s.authorizeNodes(w, r, id, l) {
		return
	}
	body, release, ok := s.readBounded(w, r, FunctionNodeInventory, s.maxInventory, l) // under the in-flight budget
	if !ok {
		return
	}
	defer release()
	rej := state.Rejection{Function: FunctionNodeInventory, InvocationID: r.Header.Get("X-Azure-Functions-InvocationId"),
		Source: id.ResourceID(), Subject: r.URL.Path, ReceivedAt: s.now(), Disposition: state.DispositionRejected}
	if int64(len(body)) > s.maxInventory {
		rej.Body, rej.Reason = body[:4096], fmt.Sprintf("node snapshot larger than %d bytes", s.maxInventory)
		s.refuse(r.Context(), w, l, rej, http.StatusRequestEntityTooLarge)
		return
	}
	dec, err := inventory.Decode(body, s.now())
	if err != nil {
		rej.Body, rej.Reason = body, err.Error()
		s.refuse(r.Context(), w, l, rej, http.StatusBadRequest)
		return
	}
	snap := dec.Snapshot
	l = l.With("snapshot", snap.ID)
	named, notNamed := dec.Named(inventory.MaxNamedSkipped)
	if len(named) > 0 {
		l.Warn("nodes left out of the snapshot", "skipped", len(dec.Skipped), "skipped_nodes", named, "skipped_not_named", notNamed)
	}

	out, err := s.store.ApplyNodes(r.Context(), id, snap)
	if err != nil {
		if errors.Is(err, state.ErrRejected) {
			rej.Body, rej.Reason = body, err.Error()
			s.refuse(r.Context(), w, l, rej, http.StatusBadRequest)
			return
		}
		l.Error("node snapshot not stored; the reporter should retry", "error", err)
		unavailable(w)
		return
	}

	// The summary of a complete snapshot is the snapshot itself, so that a
	// redelivery carries the same summary; a partial one is merged with the
	// nodes already known.
	summary := fleet.Summarise(out.Nodes, snap.Complete)
	if snap.Complete {
		own := make([]fleet.Node, len(snap.Nodes))
		for i, n := range snap.Nodes {
			own[i] = fleet.Node{NodeObservation: n}
		}
		summary = fleet.Summarise(own, true)
	}
	sig := fleet.Signal{ID: "nodes:" + snap.ID, Type: fleet.TypeNodeSnapshot, Source: id.ResourceID(),
		Subject: id.ResourceID() + "/nodes", Time: snap.ObservedAt, Cluster: id, Kind: fleet.KindNodesObserved, Inventory: &summary}
	if _, err := s.commit(r.Context(), sig); err != nil {
		if errors.Is(err, state.ErrRejected) {
			rej.Body, rej.Reason = body, err.Error()
			s.refuse(r.Context(), w, l, rej, http.StatusBadRequest)
			return
		}
		l.Error("node rows stored but the pool summary not; the reporter should retry", "error", err)
		unavailable(w)
		return
	}
	l.Info("node snapshot applied", "result", string(out.Result), "changed", out.Changed, "history", out.History,
		"transactions", out.Transactions, "nodes", len(snap.Nodes))
	writeJSON(w, http.StatusOK, inventoryResult{
		Result: string(out.Result), Cluster: id.ResourceID(), SnapshotID: snap.ID,
		ObservedAt: snap.ObservedAt.UTC().Format("2006-01-02T15:04:05.999999999Z07:00"), Complete: snap.Complete,
		Nodes: len(snap.Nodes), Skipped: len(dec.Skipped), SkippedNodes: named, SkippedNotNamed: notNamed,
		Changed: out.Changed, History: out.History,
		Transactions: out.Transactions, Pools: spreadOf(summary),
	})
}

// refuse records a request that can never be accepted and answers with its
// reason. If the record cannot be written the caller is asked to retry, so
// nothing it sent is lost without a trace.
func (s *Server) refuse(ctx context.Context, w http.ResponseWriter, l *slog.Logger, rej state.Rejection, status int) {
	l.Warn("request rejected", "reason", rej.Reason)
	if err := s.store.RecordRejection(ctx, rej); err != nil {
		l.Error("could not record the rejected request", "error", err)
		unavailable(w)
		return
	}
	writeJSON(w, status, errorBody{Error: rej.Reason})
}

func unavailable(w http.ResponseWriter) {
	w.Header().Set("Retry-After", "30")
	writeJSON(w, http.StatusServiceUnavailable, errorBody{Error: "state storage unavailable; try again"})
}

type poolSpreadOut struct {
	Pool        string           `json:"pool"`
	Nodes       int              `json:"nodes"`
	Ready       int              `json:"ready"`
	Quarantined int              `json:"quarantined"`
	Cordoned    int              `json:"cordoned"`
	Versions    []versionCountJS `json:"versions"` // most nodes first
}

type versionCountJS struct {
	Version string `json:"version"`
	Nodes   int    `json:"nodes"`
}

func spreadOf(sum fleet.InventorySummary) []poolSpreadOut {
	out := make([]poolSpreadOut, 0, len(sum.Pools))
	for name, p := range sum.Pools {
		out = append(out, poolSpread(name, p))
	}
	slices.SortFunc(out, func(a, b poolSpreadOut) int { return cmp.Compare(a.Pool, b.Pool) })
	return out
}

func poolSpread(name string, p fleet.PoolNodes) poolSpreadOut {
	ps := poolSpreadOut{Pool: name, Nodes: p.Nodes, Ready: p.Ready, Quarantined: p.Quarantined, Cordoned: p.Cordoned, Versions: []versionCountJS{}}
	for v, n := range p.Versions {
		ps.Versions = append(ps.Versions, versionCountJS{Version: v, Nodes: n})
	}
	slices.SortFunc(ps.Versions, func(a, b versionCountJS) int {
		if a.Nodes != b.Nodes {
			return cmp.Compare(b.Nodes, a.Nodes)
		}
		return cmp.Compare(b.Version, a.Version)
	})
	return ps
}
