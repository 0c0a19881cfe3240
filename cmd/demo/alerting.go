package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// chatTally prints, per cluster, how many Teams and Slack messages the sink
// got and how many steps they carried: grouping makes it one message per
// cluster per dispatch, however many findings moved.
func chatTally(items []sinkItem, w io.Writer) {
	type tally struct{ teams, slack, steps int }
	byCluster := map[string]*tally{}
	for _, it := range items {
		if it.Kind != "teams" && it.Kind != "slack" {
			continue
		}
		name := cmp.Or(it.Cluster, "(no cluster)")
		t := byCluster[name]
		if t == nil {
			t = &tally{}
			byCluster[name] = t
		}
		if it.Kind == "teams" {
			t.teams++
			t.steps += max(it.Steps, 1) // Slack lists the same steps again
		} else {
			t.slack++
		}
	}
	if len(byCluster) == 0 {
		return
	}
	fmt.Fprintf(w, "  Teams and Slack messages per cluster (one per cluster per dispatch; steps they listed):\n")
	for _, name := range slices.Sorted(maps.Keys(byCluster)) {
		t := byCluster[name]
		fmt.Fprintf(w, "    %-20s teams %2d  slack %2d  steps %3d\n", name, t.teams, t.slack, t.steps)
	}
}

// clusterRef is a cluster as the Status API's paths and the silences API's
// match name it: subscriptionId/resourceGroup/clusterName.
type clusterRef struct{ sub, rg, name string }

func parseClusterRef(s string) (clusterRef, error) {
	p := strings.Split(s, "/")
	if len(p) != 3 || p[0] == "" || p[1] == "" || p[2] == "" {
		return clusterRef{}, fmt.Errorf("%w: cluster %q: want subscriptionId/resourceGroup/clusterName", errUsage, s)
	}
	return clusterRef{p[0], p[1], p[2]}, nil
}

func (r clusterRef) String() string { return r.sub + "/" + r.rg + "/" + r.name }

func (r clusterRef) resourceID() string {
	return "/subscriptions/" + r.sub + "/resourceGroups/" + r.rg + "/providers/Microsoft.ContainerService/managedClusters/" + r.name
}

func (r clusterRef) findingsURL(base string) string {
	return strings.TrimRight(base, "/") + "/api/clusters/" + url.PathEscape(r.sub) + "/" + url.PathEscape(r.rg) + "/" +
		url.PathEscape(r.name) + "/findings?status=all"
}

// demoFinding is the part of a Status API finding these steps print.
type demoFinding struct {
	Code         string     `json:"code"`
	Target       string     `json:"target"`
	Severity     string     `json:"severity"`
	Status       string     `json:"status"`
	OpenedAt     time.Time  `json:"openedAt"`
	ResolvedAt   *time.Time `json:"resolvedAt"`
	Announcement string     `json:"announcement"`
	AnnouncedAt  *time.Time `json:"announcedAt"`
	SilencedBy   string     `json:"silencedBy"`
	cluster      clusterRef
}

func (c *client) clusterFindings(ctx context.Context, base string, ref clusterRef) ([]demoFinding, error) {
	var r struct {
		Findings []demoFinding `json:"findings"`
	}
	if err := c.getJSON(ctx, ref.findingsURL(base), &r); err != nil {
		return nil, err
	}
	for i := range r.Findings {
		r.Findings[i].cluster = ref
	}
	return r.Findings, nil
}

// finding returns the cluster's finding of code and target.
func (c *client) finding(ctx context.Context, base string, ref clusterRef, code, target string) (demoFinding, error) {
	list, err := c.clusterFindings(ctx, base, ref)
	if err != nil {
		return demoFinding{}, err
	}
	for _, f := range list {
		if strings.EqualFold(f.Code, code) && f.Target == target {
			return f, nil
		}
	}
	return demoFinding{}, fmt.Errorf("%s has no %s finding on %s", ref.name, code, target)
}

// announcedAt lists the sink's CloudEvents about this opening of f (its
// cluster, code, target and openedAt), of type typ when typ is not "".
func announcedAt(items []sinkItem, f demoFinding, typ string) []sinkItem {
	var out []sinkItem
	for _, it := range items {
		d := it.Event.Data
		if it.Kind == "cloudevent" && (typ == "" || it.Event.Type == typ) && strings.EqualFold(d.Cluster, f.cluster.resourceID()) &&
			strings.EqualFold(d.Code, f.Code) && d.Target == f.Target && d.OpenedAt.Equal(f.OpenedAt) {
			out = append(out, it)
		}
	}
	return out
}

const openedType = "io.upgradewatch.finding.opened"

// wantStatus fails on any status but want.
func wantStatus(method, url string, code, want int, body []byte) error {
	if code != want {
		return fmt.Errorf("%s %s: HTTP %d, want %d: %s", method, url, code, want, snippet(body))
	}
	return nil
}

// backlog shows what the replay's backlog did not send: every finding that
// opened and resolved before its grace ended (the backlog arrives within
// seconds) is recorded, with announcement "never", and the sink got nothing
// about it. It fails when
// there is no such finding or the sink got something for one.
func backlog(ctx context.Context, c *client, args []string, w io.Writer) error {
	base, sink := args[0], args[1]
	all, err := c.fleetFindings(ctx, base)
	if err != nil {
		return err
	}
	items, err := c.settled(ctx, sink)
	if err != nil {
		return err
	}
	by := map[string]int{}
	var never []demoFinding
	sent := 0
	for _, f := range all {
		by[cmp.Or(f.Announcement, "(none)")]++
		if f.Announcement == "never" && f.ResolvedAt != nil {
			never = append(never, f)
			sent += len(announcedAt(items, f, ""))
		}
	}
	fmt.Fprintf(w, "  %d findings on record, by announcement: %s\n", len(all), counts(by))
	fmt.Fprintf(w, "  %d opened and resolved before their grace ended (the replayed backlog, a node snapshot cured a day later) and were never announced;"+
		" the sink got %d CloudEvent(s) about them\n", len(never), sent)
	slices.SortFunc(never, func(a, b demoFinding) int { return a.OpenedAt.Compare(b.OpenedAt) })
	for _, f := range never[:min(len(never), 5)] {
		fmt.Fprintf(w, "    %-22s %-18s %-16s opened %s, resolved %s later\n", f.Code, f.cluster.name, f.Target,
			f.OpenedAt.UTC().Format(time.RFC3339), f.ResolvedAt.Sub(f.OpenedAt).Round(time.Second))
	}
	switch {
	case len(never) == 0:
		return fmt.Errorf("no finding opened and resolved within the replay: nothing shows that the backlog sends nothing")
	case sent > 0:
		return fmt.Errorf("the sink got %d CloudEvent(s) about findings never announced; see %s/events", sent, sink)
	}
	return nil
}

// fleetFindings lists every finding, open and resolved, of every cluster.
func (c *client) fleetFindings(ctx context.Context, base string) ([]demoFinding, error) {
	var r struct {
		Clusters []struct {
			SubscriptionID string `json:"subscriptionId"`
			ResourceGroup  string `json:"resourceGroup"`
			Name           string `json:"name"`
		} `json:"clusters"`
	}
	if err := c.getJSON(ctx, strings.TrimRight(base, "/")+"/api/clusters", &r); err != nil {
		return nil, err
	}
	var all []demoFinding
	for _, cl := range r.Clusters {
		list, err := c.clusterFindings(ctx, base, clusterRef{cl.SubscriptionID, cl.ResourceGroup, cl.Name})
		if err != nil {
			return nil, err
		}
		all = append(all, list...)
	}
	return all, nil
}

// silence POSTs a silence for one finding (cluster, code, target) until a day
// from now, then lists the silences (GET /api/silences).
func silence(ctx context.Context, c *client, args []string, w io.Writer) error {
	base := strings.TrimRight(args[0], "/")
	ref, err := parseClusterRef(args[1])
	if err != nil {
		return err
	}
	body, err := json.Marshal(map[string]any{
		"match":     map[string]string{"cluster": ref.String(), "code": args[2], "target": args[3]},
		"until":     c.now().Add(24 * time.Hour).UTC().Format(time.RFC3339),
		"comment":   "make demo: known, the checkout team is on it",
		"createdBy": "demo@contoso.com",
	})
	if err != nil {
		return err
	}
	var created struct {
		ID string `json:"id"`
	}
	code, err := c.postJSON(ctx, base+"/api/silences", body, &created)
	if err != nil {
		return err
	}
	if err := wantStatus(http.MethodPost, base+"/api/silences", code, http.StatusCreated, body); err != nil || created.ID == "" {
		return cmp.Or(err, fmt.Errorf("POST %s/api/silences: 201 without an id", base))
	}
	fmt.Fprintf(w, "  POST %s/api/silences: 201, id %s\n", base, created.ID)
	return listSilences(ctx, c, base, w)
}

// silenceJSON is the part of a silence the demo prints.
type silenceJSON struct {
	ID    string `json:"id"`
	Match struct {
		Cluster string `json:"cluster"`
		Code    string `json:"code"`
		Target  string `json:"target"`
	} `json:"match"`
	Until     time.Time `json:"until"`
	Comment   string    `json:"comment"`
	CreatedBy string    `json:"createdBy"`
	State     string    `json:"state"`
	EndedBy   string    `json:"endedBy"`
}

func listSilences(ctx context.Context, c *client, base string, w io.Writer) error {
	var r struct {
		Silences []silenceJSON `json:"silences"`
		Active   int           `json:"active"`
	}
	if err := c.getJSON(ctx, base+"/api/silences", &r); err != nil {
		return err
	}
	fmt.Fprintf(w, "  GET %s/api/silences: %d, %d active\n", base, len(r.Silences), r.Active)
	for _, s := range r.Silences {
		fmt.Fprintf(w, "    %s  %-7s %s %s %s  until %s  by %s: %s\n", s.ID, s.State, lastSegment(s.Match.Cluster),
			cmp.Or(s.Match.Code, "*"), cmp.Or(s.Match.Target, "*"), s.Until.UTC().Format(time.RFC3339), s.CreatedBy, s.Comment)
	}
	return nil
}

// silenced shows the finding open and silenced (silencedBy) and that the sink
// got no opening for it; it fails otherwise.
func silenced(ctx context.Context, c *client, args []string, w io.Writer) error {
	base, sink := args[0], args[1]
	ref, err := parseClusterRef(args[2])
	if err != nil {
		return err
	}
	f, err := c.finding(ctx, base, ref, args[3], args[4])
	if err != nil {
		return err
	}
	items, err := c.settled(ctx, sink)
	if err != nil {
		return err
	}
	got := announcedAt(items, f, "")
	fmt.Fprintf(w, "  %s %s on %s: %s since %s, announcement %s, silencedBy %s; the sink got %d CloudEvent(s) about it\n",
		f.Severity, f.Code, ref.name+" "+f.Target, f.Status, f.OpenedAt.UTC().Format(time.RFC3339),
		cmp.Or(f.Announcement, "-"), cmp.Or(f.SilencedBy, "(none)"), len(got))
	switch {
	case f.Status != "Open":
		return fmt.Errorf("%s on %s is %s, want Open", f.Code, f.Target, f.Status)
	case f.SilencedBy == "":
		return fmt.Errorf("%s on %s is not silenced", f.Code, f.Target)
	case len(got) > 0:
		return fmt.Errorf("the sink got %d CloudEvent(s) about the silenced %s on %s", len(got), f.Code, f.Target)
	}
	return nil
}

// unsilence ends the silence holding the finding (DELETE /api/silences/{id})
// and waits for its opening to reach the sink: ending a silence re-evaluates
// the cluster at once.
func unsilence(ctx context.Context, c *client, args []string, w io.Writer) error {
	base, sink := strings.TrimRight(args[0], "/"), args[1]
	ref, err := parseClusterRef(args[2])
	if err != nil {
		return err
	}
	f, err := c.finding(ctx, base, ref, args[3], args[4])
	if err != nil {
		return err
	}
	if f.SilencedBy == "" {
		return fmt.Errorf("%s on %s is not silenced", f.Code, f.Target)
	}
	u := base + "/api/silences/" + url.PathEscape(f.SilencedBy) + "?endedBy=demo@contoso.com"
	code, body, err := c.do(ctx, http.MethodDelete, u, nil)
	if err != nil {
		return err
	}
	if err := wantStatus(http.MethodDelete, u, code, http.StatusOK, body); err != nil {
		return err
	}
	var ended silenceJSON
	if err := json.Unmarshal(body, &ended); err != nil {
		return fmt.Errorf("DELETE %s: %w", u, err)
	}
	fmt.Fprintf(w, "  DELETE /api/silences/%s: 200, %s by %s\n", ended.ID, ended.State, ended.EndedBy)
	got, err := c.awaitOpening(ctx, sink, f)
	if err != nil {
		return err
	}
	if len(got) == 0 {
		return fmt.Errorf("no %s CloudEvent for %s on %s reached the sink within %s", openedType, f.Code, f.Target, deadline)
	}
	paths := map[string]int{}
	for _, it := range got {
		paths[it.Path]++
	}
	fmt.Fprintf(w, "  the opening reached the sink: %s %s on %s, id %s, at %s\n", strings.TrimPrefix(openedType, "io.upgradewatch."),
		f.Code, ref.name+" "+f.Target, got[0].Event.ID, counts(paths))
	if f, err = c.finding(ctx, base, ref, f.Code, f.Target); err != nil {
		return err
	}
	fmt.Fprintf(w, "  now: announcement %s, silencedBy %s\n", cmp.Or(f.Announcement, "-"), cmp.Or(f.SilencedBy, "(none)"))
	return nil
}

// awaitOpening waits for the finding's opening to reach the sink, then for
// the sink to settle, and returns the openings it got.
func (c *client) awaitOpening(ctx context.Context, sink string, f demoFinding) ([]sinkItem, error) {
	end := c.now().Add(deadline)
	for {
		items, err := c.sinkItems(ctx, sink)
		if err != nil {
			return nil, err
		}
		if got := announcedAt(items, f, openedType); len(got) > 0 || !c.now().Before(end) {
			if len(got) == 0 {
				return nil, nil
			}
			if items, err = c.settled(ctx, sink); err != nil {
				return nil, err
			}
			return announcedAt(items, f, openedType), nil
		}
		if err := sleep(ctx, poll); err != nil {
			return nil, err
		}
	}
}

// maxGraceWait bounds waitGrace: the demo policy's grace is seconds, not hours.
var maxGraceWait = 2 * time.Minute

// waitGrace waits until every open finding still waiting for its grace
// (announcement pending) has outlived it, so that the next sweep announces
// them all at once; silenced ones too, so that ending their silence
// announces at once.
func waitGrace(ctx context.Context, c *client, args []string, w io.Writer) error {
	var r struct {
		Findings []struct {
			Announcement string     `json:"announcement"`
			GraceUntil   *time.Time `json:"graceUntil"`
		} `json:"findings"`
	}
	if err := c.getJSON(ctx, strings.TrimRight(args[0], "/")+"/api/findings", &r); err != nil {
		return err
	}
	var last time.Time
	waiting := 0
	for _, f := range r.Findings {
		if f.Announcement == "pending" && f.GraceUntil != nil {
			waiting++
			if f.GraceUntil.After(last) {
				last = *f.GraceUntil
			}
		}
	}
	d := last.Sub(c.now()) + time.Second // the handler's clock may be a little ahead
	if waiting == 0 || d < 0 {
		d = 0
	}
	if d > maxGraceWait {
		return fmt.Errorf("the last grace ends at %s, more than %s away", last.UTC().Format(time.RFC3339), maxGraceWait)
	}
	fmt.Fprintf(w, "  %d open findings wait for their grace, the last until %s: waiting %s\n", waiting,
		cmp.Or(formatTime(last), "-"), d.Round(100*time.Millisecond))
	return sleep(ctx, d)
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}
