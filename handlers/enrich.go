package handlers

import (
	"net/http"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
)

// FunctionRefresh is the httpTrigger that enriches one cluster on demand:
// POST /api/clusters/{subscriptionId}/{resourceGroup}/{clusterName}/refresh.
const FunctionRefresh = "Refresh"

// refresh is the on-demand enrichment: read now, answer with the new state.
func (s *Server) refresh(w http.ResponseWriter, r *http.Request) {
	id, err := fleet.NewClusterID(r.PathValue("subscriptionId"), r.PathValue("resourceGroup"), r.PathValue("clusterName"))
	if err != nil {
		writeJSON(w, http.StatusBadRequest, errorBody{Error: err.Error()})
		return
	}
	c, err := s.app.Refresh(r.Context(), id)
	if err != nil {
		apiError(w, err, id)
		return
	}
	writeJSON(w, http.StatusOK, clusterDetail(c, s.patchView(r.Context(), c)))
}
