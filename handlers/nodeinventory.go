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
	"github.com/upgradewatch/upgradewatch/internal/watch"
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
	rej := watch.Rejection{Function: FunctionNodeInventory, InvocationID: r.Header.Get("X-Azure-Functions-InvocationId"),
		Source: id.ResourceID(), Subject: r.URL.Path, ReceivedAt: s.now(), Disposition: watch.DispositionRejected}
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

	res, err := s.app.IngestNodes(r.Context(), id, snap)
	switch {
	case errors.Is(err, fleet.ErrRejected):
		rej.Body, rej.Reason = body, err.Error()
		s.refuse(r.Context(), w, l, rej, http.StatusBadRequest)
		return
	case err != nil:
		unavailable(w)
		return
	}
	writeJSON(w, http.StatusOK, inventoryResult{
		Result: res.Result, Cluster: id.ResourceID(), SnapshotID: snap.ID,
		ObservedAt: snap.ObservedAt.UTC().Format("2006-01-02T15:04:05.999999999Z07:00"), Complete: snap.Complete,
		Nodes: len(snap.Nodes), Skipped: len(dec.Skipped), SkippedNodes: named, SkippedNotNamed: notNamed,
		Changed: res.Changed, History: res.History,
		Transactions: res.Transactions, Pools: spreadOf(res.Summary),
	})
}

// refuse records a request that can never be accepted and answers with its
// reason. If the record cannot be written the caller is asked to retry, so
// nothing it sent is lost without a trace.
func (s *Server) refuse(ctx context.Context, w http.ResponseWriter, l *slog.Logger, rej watch.Rejection, status int) {
	l.Warn("request rejected", "reason", rej.Reason)
	if err := s.app.Reject(ctx, rej); err != nil {
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
