package handlers

import (
	"errors"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/upgradewatch/upgradewatch/internal/patch"
	"github.com/upgradewatch/upgradewatch/internal/watch"
)

// FunctionCompliance is the httpTrigger GET /api/compliance: the fleet's
// patch compliance, from the aggregate rows the Sweep refreshes.
const FunctionCompliance = "Compliance"

// FunctionComplianceHistory is the httpTrigger GET /api/compliance/history:
// the fleet's daily snapshots.
const FunctionComplianceHistory = "ComplianceHistory"

// Bounds of the history's days parameter.
const (
	defaultComplianceDays = 90
	maxHistoryDays        = watch.HistoryDays
)

var (
	subscriptionRE = regexp.MustCompile(`^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$`)
	locationRE     = regexp.MustCompile(`^[A-Za-z0-9 ]{1,64}$`)
)

type countsJSON struct {
	Total          int     `json:"total"`
	Current        int     `json:"current"`
	WithinPolicy   int     `json:"withinPolicy"`
	Behind         int     `json:"behind"`
	Unknown        int     `json:"unknown"`
	PercentCurrent float64 `json:"percentCurrent"`
}

type statsJSON struct {
	Count         int   `json:"count"`
	MedianSeconds int64 `json:"medianSeconds"`
	P90Seconds    int64 `json:"p90Seconds"`
}

type timeToPatchJSON struct {
	Last30Days statsJSON `json:"last30Days"`
	Last90Days statsJSON `json:"last90Days"`
}

type oldestJSON struct {
	Image      string    `json:"image"`
	ReleasedAt time.Time `json:"releasedAt,omitzero"`
}

// figuresJSON is one scope's figures, in the compliance answer and each day
// of the history.
type figuresJSON struct {
	Clusters      int             `json:"clusters"`
	Pools         countsJSON      `json:"pools"`
	Nodes         countsJSON      `json:"nodes"`
	ByStatus      map[string]int  `json:"byStatus"`
	OldestImage   *oldestJSON     `json:"oldestImage,omitempty"`
	MaxDaysBehind int             `json:"maxDaysBehind"`
	TimeToPatch   timeToPatchJSON `json:"timeToPatch"`
}

func figuresOut(a watch.Aggregate) figuresJSON {
	c := a.Figures
	f := figuresJSON{Clusters: a.Clusters, MaxDaysBehind: c.MaxDaysBehind, ByStatus: map[string]int{},
		Pools: countsJSON{Total: c.Pools, Current: c.PoolsCurrent, WithinPolicy: c.PoolsWithinPolicy, Behind: c.PoolsBehind,
			Unknown: c.PoolsUnknown, PercentCurrent: c.PercentPoolsCurrent},
		Nodes: countsJSON{Total: c.Nodes, Current: c.NodesCurrent, WithinPolicy: c.NodesWithinPolicy, Behind: c.NodesBehind,
			Unknown: c.NodesUnknown, PercentCurrent: c.PercentNodesCurrent},
		TimeToPatch: timeToPatchJSON{Last30Days: statsOut(a.TimeToPatch.Last30), Last90Days: statsOut(a.TimeToPatch.Last90)}}
	for _, st := range watch.Statuses {
		f.ByStatus[st] = watch.StatusCount(c, st)
	}
	if c.OldestImage != "" {
		f.OldestImage = &oldestJSON{Image: c.OldestImage, ReleasedAt: c.OldestImageReleasedAt}
	}
	return f
}

func statsOut(s patch.Stats) statsJSON {
	return statsJSON{Count: s.Count, MedianSeconds: int64(s.Median / time.Second), P90Seconds: int64(s.P90 / time.Second)}
}

type complianceJSON struct {
	AsOf    *time.Time        `json:"asOf"`
	Scope   string            `json:"scope"`
	Filters map[string]string `json:"filters,omitempty"`
	figuresJSON
	PoolsNotUpToDate []watch.PoolBrief `json:"poolsNotUpToDate"`
	PoolsOmitted     int               `json:"poolsOmitted"`
	PoolsBounded     bool              `json:"poolsBounded"`
	Note             string            `json:"note,omitempty"`
}

// parseComplianceQuery checks the filters: one value each, bounded, of
// the shape Azure gives them; status in any case.
func parseComplianceQuery(r *http.Request) (watch.ComplianceQuery, map[string]string, string) {
	q := r.URL.Query()
	var out watch.ComplianceQuery
	shown := map[string]string{}
	for key, vs := range q {
		switch key {
		case "status", "subscriptionId", "location":
		default:
			return out, nil, "unknown parameter " + strconv.Quote(clipParam(key)) + ": use status, subscriptionId or location"
		}
		if len(vs) != 1 {
			return out, nil, key + " may be given once"
		}
	}
	if v := q.Get("status"); v != "" {
		for _, st := range watch.Statuses {
			if strings.EqualFold(v, st) {
				out.Status = st
			}
		}
		if out.Status == "" {
			return out, nil, "status must be one of " + strings.Join(watch.Statuses, ", ")
		}
		shown["status"] = out.Status
	}
	if v := q.Get("subscriptionId"); v != "" {
		if !subscriptionRE.MatchString(v) {
			return out, nil, "subscriptionId must be a subscription GUID"
		}
		out.SubscriptionID = strings.ToLower(v)
		shown["subscriptionId"] = out.SubscriptionID
	}
	if v := q.Get("location"); v != "" {
		if !locationRE.MatchString(v) {
			return out, nil, "location must be an Azure region name (letters, digits and spaces, at most 64)"
		}
		out.Location = patch.NormaliseRegion(v)
		shown["location"] = out.Location
	}
	return out, shown, ""
}

func clipParam(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// compliance: GET /api/compliance[?status=&subscriptionId=&location=] —
// answered from one aggregate row per filter, never by scanning the fleet.
func (s *Server) compliance(w http.ResponseWriter, r *http.Request) {
	q, shown, bad := parseComplianceQuery(r)
	if bad != "" {
		writeJSON(w, http.StatusBadRequest, errorBody{Error: bad})
		return
	}
	v, err := s.app.Compliance(r.Context(), q)
	if err != nil {
		s.complianceError(w, err, FunctionCompliance)
		return
	}
	out := complianceJSON{Scope: v.Scope, Filters: shown, figuresJSON: figuresOut(v.Aggregate), PoolsNotUpToDate: v.Pools,
		PoolsOmitted: v.PoolsOmitted, PoolsBounded: true}
	if out.PoolsNotUpToDate == nil {
		out.PoolsNotUpToDate = []watch.PoolBrief{}
	}
	if !v.ComputedAt.IsZero() {
		out.AsOf = &v.ComputedAt
	}
	switch {
	case !v.Found:
		out.Note = "no cluster matches the filter"
	case v.Filtered:
		out.Note = "figures are those of scope " + v.Scope + " (the most selective filter); the pool list is its bounded list (the " +
			strconv.Itoa(watch.MaxAggregatePools) + " most days behind) filtered by the other filters, so it may miss pools"
	default:
		out.Note = "the pool list holds the " + strconv.Itoa(watch.MaxAggregatePools) + " pools most days behind; poolsOmitted counts the others"
	}
	writeJSON(w, http.StatusOK, out)
}

type historyDayJSON struct {
	Day string `json:"day"`
	figuresJSON
	ComputedAt time.Time `json:"computedAt"`
}

// complianceHistory: GET /api/compliance/history[?days=90] — the fleet's
// day rows of the last days (1 to 400), oldest first.
func (s *Server) complianceHistory(w http.ResponseWriter, r *http.Request) {
	days := defaultComplianceDays
	if v := r.URL.Query().Get("days"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxHistoryDays {
			writeJSON(w, http.StatusBadRequest, errorBody{Error: "days must be a whole number from 1 to " + strconv.Itoa(maxHistoryDays)})
			return
		}
		days = n
	}
	list, err := s.app.ComplianceHistory(r.Context(), days)
	if err != nil {
		s.complianceError(w, err, FunctionComplianceHistory)
		return
	}
	out := make([]historyDayJSON, 0, len(list))
	for _, a := range list {
		out = append(out, historyDayJSON{Day: a.Day.Format(time.DateOnly), figuresJSON: figuresOut(a), ComputedAt: a.ComputedAt})
	}
	writeJSON(w, http.StatusOK, map[string]any{"days": days, "count": len(out), "history": out})
}

func (s *Server) complianceError(w http.ResponseWriter, err error, function string) {
	if errors.Is(err, watch.ErrComplianceOff) {
		writeJSON(w, http.StatusNotImplemented, errorBody{Error: "compliance figures are not kept (no compliance table configured)"})
		return
	}
	s.log.Error("compliance read failed", "function", function, "error", err)
	unavailable(w)
}
