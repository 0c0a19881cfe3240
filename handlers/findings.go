package handlers

import (
	"encoding/json"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
)

// FunctionFindings is the httpTrigger GET /api/findings: the fleet's open findings.
const FunctionFindings = "Findings"

type findingJSON struct {
	Cluster    string          `json:"cluster,omitempty"` // ARM ID (fleet-wide lists)
	Code       string          `json:"code"`
	Target     string          `json:"target"`
	Severity   string          `json:"severity"`
	Status     string          `json:"status"`
	Summary    string          `json:"summary"`
	Evidence   json.RawMessage `json:"evidence,omitempty"`
	OpenedAt   time.Time       `json:"openedAt"`
	LastSeenAt time.Time       `json:"lastSeenAt"`
	ResolvedAt *time.Time      `json:"resolvedAt,omitempty"`
	Opened     int             `json:"timesOpened"`
	// What was announced (docs/notifications.md): sent, pending or never;
	// when it was first noticed, when its grace ends and what holds it.
	Announcement string     `json:"announcement,omitempty"`
	NoticedAt    *time.Time `json:"noticedAt,omitempty"`
	GraceUntil   *time.Time `json:"graceUntil,omitempty"`
	AnnouncedAt  *time.Time `json:"announcedAt,omitempty"`
	SilencedBy   string     `json:"silencedBy,omitempty"`
	InhibitedBy  string     `json:"inhibitedBy,omitempty"`
}

func findingOut(f fleet.Finding, cluster string) findingJSON {
	j := findingJSON{Cluster: cluster, Code: f.Code, Target: f.Target, Severity: f.Severity, Status: f.Status,
		Summary: f.Summary, OpenedAt: f.OpenedAt, LastSeenAt: f.LastSeenAt, ResolvedAt: timePtr(f.ResolvedAt), Opened: f.Opened,
		NoticedAt: timePtr(f.NoticedAt), GraceUntil: timePtr(f.GraceUntil), AnnouncedAt: timePtr(f.AnnouncedAt),
		SilencedBy: f.SilencedBy, InhibitedBy: f.InhibitedBy}
	if !f.NoticedAt.IsZero() || !f.AnnouncedAt.IsZero() {
		j.Announcement = f.Announcement()
	}
	if json.Valid([]byte(f.Evidence)) && f.Evidence != "" {
		j.Evidence = json.RawMessage(f.Evidence)
	}
	return j
}

// findingFilter is the query of a findings list: code (repeatable or comma
// separated), severity (exact) or minSeverity, status (open|resolved|all).
type findingFilter struct {
	codes       map[string]bool
	severity    string
	minSeverity int
	status      string
}

func parseFindingFilter(r *http.Request, defaultStatus string) (findingFilter, string) {
	q := r.URL.Query()
	f := findingFilter{codes: map[string]bool{}, status: strings.ToLower(q.Get("status"))}
	for _, v := range q["code"] {
		for _, c := range strings.Split(v, ",") {
			if c = strings.TrimSpace(c); c != "" {
				f.codes[strings.ToLower(c)] = true
			}
		}
	}
	if v := q.Get("severity"); v != "" {
		f.severity = canonicalSeverity(v)
		if f.severity == "" {
			return f, "severity must be Info, Warning, Error or Critical"
		}
	}
	if v := q.Get("minSeverity"); v != "" {
		if f.minSeverity = fleet.SeverityRank(canonicalSeverity(v)); f.minSeverity == 0 {
			return f, "minSeverity must be Info, Warning, Error or Critical"
		}
	}
	if f.status == "" {
		f.status = defaultStatus
	}
	switch f.status {
	case "open", "resolved", "all":
	default:
		return f, "status must be open, resolved or all"
	}
	return f, ""
}

func canonicalSeverity(s string) string {
	for _, v := range []string{fleet.SeverityInfo, fleet.SeverityWarning, fleet.SeverityError, fleet.SeverityCritical} {
		if strings.EqualFold(s, v) {
			return v
		}
	}
	return ""
}

func (f findingFilter) keep(x fleet.Finding) bool {
	switch {
	case len(f.codes) > 0 && !f.codes[strings.ToLower(x.Code)]:
		return false
	case f.severity != "" && x.Severity != f.severity:
		return false
	case f.minSeverity > 0 && fleet.SeverityRank(x.Severity) < f.minSeverity:
		return false
	case f.status == "open" && x.Status != fleet.FindingOpen:
		return false
	case f.status == "resolved" && x.Status != fleet.FindingResolved:
		return false
	}
	return true
}

func sortFindings(out []findingJSON) {
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if ra, rb := fleet.SeverityRank(a.Severity), fleet.SeverityRank(b.Severity); ra != rb {
			return ra > rb
		}
		if !a.OpenedAt.Equal(b.OpenedAt) {
			return a.OpenedAt.Before(b.OpenedAt)
		}
		return a.Cluster+a.Code+a.Target < b.Cluster+b.Code+b.Target
	})
}

// listFindings: GET /api/findings[?code=&severity=&minSeverity=&status=open] —
// the whole fleet's open findings, from the index (one partition query).
// Resolved findings are listed per cluster.
func (s *Server) listFindings(w http.ResponseWriter, r *http.Request) {
	f, bad := parseFindingFilter(r, "open")
	if bad == "" && f.status != "open" {
		bad = "the fleet-wide list holds open findings; resolved ones are listed per cluster: /api/clusters/{subscriptionId}/{resourceGroup}/{clusterName}/findings?status=all"
	}
	if bad != "" {
		writeJSON(w, http.StatusBadRequest, errorBody{Error: bad})
		return
	}
	if !s.app.HasRules() {
		writeJSON(w, http.StatusNotImplemented, errorBody{Error: "finding rules are not configured"})
		return
	}
	list, err := s.app.OpenFindings(r.Context())
	if err != nil {
		s.log.Error("list findings failed", "function", FunctionFindings, "error", err)
		unavailable(w)
		return
	}
	out := []findingJSON{}
	bySeverity := map[string]int{}
	for _, e := range list {
		if f.keep(e.Finding) {
			out = append(out, findingOut(e.Finding, e.Resource))
			bySeverity[e.Finding.Severity]++
		}
	}
	sortFindings(out)
	writeJSON(w, http.StatusOK, map[string]any{"count": len(out), "bySeverity": bySeverity, "findings": out})
}

// clusterFindings: GET /api/clusters/{sub}/{rg}/{name}/findings[?status=open|resolved|all&code=&severity=]
// with evidence.
func (s *Server) clusterFindings(w http.ResponseWriter, r *http.Request) {
	id, err := fleet.NewClusterID(r.PathValue("subscriptionId"), r.PathValue("resourceGroup"), r.PathValue("clusterName"))
	if err != nil {
		writeJSON(w, http.StatusBadRequest, errorBody{Error: err.Error()})
		return
	}
	f, bad := parseFindingFilter(r, "open")
	if bad != "" {
		writeJSON(w, http.StatusBadRequest, errorBody{Error: bad})
		return
	}
	c, err := s.app.Cluster(r.Context(), id)
	if err != nil {
		apiError(w, err, id)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"cluster": id.ResourceID(), "findings": clusterFindingList(c, f)})
}

func clusterFindingList(c *fleet.Cluster, f findingFilter) []findingJSON {
	out := []findingJSON{}
	for _, x := range c.Findings {
		if f.keep(*x) {
			out = append(out, findingOut(*x, ""))
		}
	}
	sortFindings(out)
	return out
}
