package dashboard

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
	"github.com/upgradewatch/upgradewatch/internal/patch"
	"github.com/upgradewatch/upgradewatch/internal/releasenotes"
	"github.com/upgradewatch/upgradewatch/internal/versions"
	"github.com/upgradewatch/upgradewatch/internal/watch"
)

// Bounds of the cluster page's lists.
const (
	pageUpgrades   = 50
	pageActivities = 30
	evidenceChars  = 600
)

// ClusterData is what the cluster page shows: the cluster's state, its patch
// view (nil when the catalogue could not be read) and its nodes (nil when
// they could not be read: NodesErr says so).
type ClusterData struct {
	Cluster  *fleet.Cluster
	Patch    *watch.PatchView
	Nodes    []fleet.Node
	NodesErr bool
}

// ClusterPage is one cluster's page.
func ClusterPage(d ClusterData, q url.Values, now time.Time) (*Page, error) {
	c := d.Cluster
	self := func(kv ...string) string { return href(ClusterHref(c.ID), kv...) }
	s := ParseSorting(q)
	p := &Page{Title: c.ID.Name, Nav: "clusters", Base: Root, AsOf: now, Self: self("sort", s.param(), "table", s.Table),
		Crumbs: []Link{{Text: "Fleet", Href: Root}, {Text: "Clusters", Href: Root + "/clusters"},
			{Text: c.ID.SubscriptionID + " / " + c.ID.ResourceGroup, Href: href(Root+"/clusters", "subscription", c.ID.SubscriptionID, "resourceGroup", c.ID.ResourceGroup)}},
		Lead: c.ID.ResourceID()}
	row := Summarise(c, d.Patch, now)
	p.Figures = clusterFigures(row, len(d.Nodes))
	if d.Patch == nil {
		p.Notes = append(p.Notes, "The image catalogue could not be read: patch statuses are not shown. Reload to try again.")
	}
	if d.NodesErr {
		p.Notes = append(p.Notes, "The node rows could not be read: the nodes table is empty. Reload to try again.")
	}
	p.Sections = append(p.Sections, overview(c, row))
	p.Sections = append(p.Sections, maintenanceSections(c, now)...)
	p.Sections = append(p.Sections, poolsSection(c, d.Patch), nodesSection(d.Nodes, c),
		timelineSection(c, d.Patch, now), historySection(c, d.Patch), findingsSection(c),
		activitySection(c), owedSection(c), remediationsSection(c))
	if err := applySort(p.tables(), s, "pools", self); err != nil {
		return nil, err
	}
	return p, nil
}

func clusterFigures(r ClusterRow, nodes int) []Figure {
	return []Figure{
		{Label: "Status", Value: r.Bucket, Class: "st-" + r.Bucket, Note: "its worst pool's patch status"},
		{Label: "Pools behind", Value: fmt.Sprintf("%d of %d", r.PoolsBehind, r.Pools)},
		{Label: "Nodes", Value: fmt.Sprint(nodes), Note: "from the newest node snapshot"},
		{Label: "Open findings", Value: fmt.Sprint(r.Findings), Class: "st-" + r.Worst, Href: "#findings"},
		{Label: "Last successful upgrade", Value: timeCell(r.LastSuccess, "never seen").Text},
	}
}

func overview(c *fleet.Cluster, r ClusterRow) Section {
	items := []Item{
		{Term: "Location", Text: dash(c.Location)},
		{Term: "Kubernetes", Text: dash(c.KubernetesVersion)},
		{Term: "Upgrade channel", Text: dash(c.UpgradeChannel)},
		{Term: "Node OS upgrade channel", Text: nodeOSCell(r).Text, Class: nodeOSCell(r).Class},
		{Term: "Provisioning state", Text: dash(c.ProvisioningState)},
		{Term: "Signals", Text: fmt.Sprintf("%d, last %s", c.Signals, timeCell(c.LastEventAt, "never").Text)},
	}
	if c.Support != "" {
		items = append(items, Item{Term: "Support", Text: "Kubernetes " + c.SupportVersion + ": support " + strings.ToLower(c.Support), Class: "st-Behind"})
	}
	if c.Deleted {
		items = append(items, Item{Term: "Deleted", Text: "yes", Class: "st-Deleted"})
	}
	if ch := c.NodeOSChannelChange; ch != nil {
		items = append(items, Item{Term: "Node OS channel changed", Text: changeWords(ch)})
	}
	return Section{ID: "overview", Title: "Overview", Items: items}
}

func changeWords(ch *fleet.ChannelChange) string {
	s := fmt.Sprintf("from %s to %s at %s", dash(ch.From), dash(ch.To), timeCell(ch.At, "?").Text)
	if ch.Actor != "" {
		s += " by " + ch.Actor
	}
	return s
}

// maintenanceSections says each maintenance configuration in plain words
// and lists its next occurrences.
func maintenanceSections(c *fleet.Cluster, now time.Time) []Section {
	sec := Section{ID: "maintenance", Title: "Maintenance windows"}
	if !c.MaintenanceKnown {
		sec.Lead = "Not known yet: the maintenance configurations come from ARM reads."
		return []Section{sec}
	}
	if len(c.Maintenance) == 0 {
		sec.Lead = "No maintenance configuration: AKS upgrades the node OS on its own cadence, at any time."
		return []Section{sec}
	}
	t := &Table{ID: "windows", Caption: "Next occurrences", Empty: "none ahead", Columns: []Column{
		{Key: "configuration", Title: "Configuration"}, {Key: "start", Title: "Opens (UTC)"},
		{Key: "local", Title: "Opens (its offset)"}, {Key: "end", Title: "Closes (UTC)"}}}
	for _, w := range c.Maintenance {
		sec.Items = append(sec.Items, Item{Term: w.Name, Text: WindowWords(w)})
		next, err := Next(w, now, upcoming)
		if err != nil {
			sec.Items = append(sec.Items, Item{Term: w.Name + " (invalid)", Text: err.Error(), Class: "st-Blocked"})
		}
		for _, in := range next {
			t.Rows = append(t.Rows, []Cell{C(w.Name), timeCell(in.Start, ""), C(localTime(in.Start, w.UTCOffset)), timeCell(in.End, "")})
		}
	}
	sec.Table = t
	return []Section{sec}
}

func localTime(t time.Time, off string) string {
	if loc := offsetLocation(off); loc != nil {
		return t.In(loc).Format("Mon 2006-01-02 15:04") + " " + offsetWords(off)
	}
	return t.UTC().Format("Mon 2006-01-02 15:04") + " UTC"
}

func poolsSection(c *fleet.Cluster, pv *watch.PatchView) Section {
	t := &Table{ID: "pools", Caption: "Pools: image against the newest, patch status and why", Empty: "no pools known", Columns: []Column{
		{Key: "pool", Title: "Pool"}, {Key: "os", Title: "OS"}, {Key: "image", Title: "Image"},
		{Key: "newest", Title: "Newest image"}, {Key: "status", Title: "Patch status"},
		{Key: "daysBehind", Title: "Days behind", Numeric: true}, {Key: "reason", Title: "Reason"},
		{Key: "nodes", Title: "Nodes", Numeric: true}, {Key: "rolling", Title: "Rolling state"}}}
	for _, p := range c.SortedPools() {
		if p.Removed {
			continue
		}
		st, ok := pv.Pool(p.Name)
		if !ok {
			st = patch.PoolStatus{Status: patch.StatusUnknown, Reason: "no patch status (the image catalogue could not be read)"}
		}
		img := cmpOr(st.Image, p.Spec.NodeImageVersion)
		nodes := p.Spec.Count
		if p.Nodes != nil {
			nodes = p.Nodes.Nodes
		}
		t.Rows = append(t.Rows, []Cell{C(p.Name), C(strings.TrimSpace(p.Spec.OSType + " " + p.Spec.OSSKU)),
			imageCell(img), imageCell(cmpOr(st.LatestImage, p.LatestImage)),
			{Text: statusText(st), Class: "st-" + st.Status, Sort: fmt.Sprintf("%02d", BucketRank(st.Status))},
			num(st.DaysBehind), C(st.Reason), num(nodes), C(p.RollingState)})
	}
	return Section{ID: "pools-s", Title: "Pools", Table: t,
		Links: []Link{{Text: "AKS release tracker: which node image has reached which region", Href: releasenotes.TrackerURL}}}
}

func statusText(st patch.PoolStatus) string {
	if st.Blocked != "" {
		return st.Status + " (" + st.Blocked + ")"
	}
	return st.Status
}

// imageCell shows an image version, linked to its release notes when AKS
// publishes them.
func imageCell(v string) Cell {
	if v == "" {
		return C("—")
	}
	return Cell{Text: v, Href: releasenotes.URL(v)}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func nodesSection(nodes []fleet.Node, c *fleet.Cluster) Section {
	t := &Table{ID: "nodes", Caption: "Nodes, from the newest node snapshot", Empty: "no node snapshot yet (node-reporter or kubectl get nodes -o json)",
		Columns: []Column{{Key: "node", Title: "Node"}, {Key: "pool", Title: "Pool"}, {Key: "image", Title: "Image"},
			{Key: "securityPatch", Title: "Security patch"}, {Key: "kernel", Title: "Kernel"}, {Key: "ready", Title: "Ready"},
			{Key: "quarantined", Title: "Quarantined"}, {Key: "since", Title: "On this image since"}, {Key: "changed", Title: "Last change"}}}
	for _, n := range nodes {
		if n.Gone {
			continue
		}
		t.Rows = append(t.Rows, []Cell{C(n.Name), C(n.Pool), imageCell(n.NodeImageVersion), C(securityPatch(n.NodeImageVersion)),
			C(dash(n.KernelVersion)), readyCell(n.Ready), yesNo(n.Quarantined), timeCell(n.VersionSince, "—"), timeCell(n.ChangedAt, "—")})
	}
	return Section{ID: "nodes-s", Title: "Nodes", Table: t}
}

// securityPatch is the SecurityPatch date an image carries, or "none".
func securityPatch(image string) string {
	if v := versions.Parse(image); v.Patch != "" {
		return v.Patch
	}
	return "none"
}

func readyCell(r string) Cell {
	c := C(dash(r))
	if r != "" && r != "True" {
		c.Class = "st-Failed"
	}
	return c
}

func yesNo(b bool) Cell {
	if b {
		return Cell{Text: "yes", Class: "st-Blocked"}
	}
	return C("no")
}

func historySection(c *fleet.Cluster, pv *watch.PatchView) Section {
	t := &Table{ID: "history", Caption: "Operations, newest first", Empty: "no rolling operation seen", Columns: []Column{
		{Key: "pool", Title: "Pool"}, {Key: "started", Title: "Started"}, {Key: "change", Title: "From → to"},
		{Key: "duration", Title: "Duration (min)", Numeric: true}, {Key: "outcome", Title: "Outcome"},
		{Key: "trigger", Title: "Manual or automatic"}, {Key: "by", Title: "Who asked"},
		{Key: "ttp", Title: "Time to patch (h)", Numeric: true}, {Key: "failure", Title: "Failure"}}}
	for _, u := range c.RecentUpgrades(pageUpgrades) {
		t.Rows = append(t.Rows, []Cell{C(u.Pool), timeCell(cmpTime(u.StartedAt, u.EndedAt), "—"),
			C(dash(u.ImageBefore) + " → " + dash(u.ImageAfter)), durationCell(u), {Text: u.Outcome, Class: outcomeClass(u.Outcome)},
			C(dash(u.Trigger)), C(dash(u.RequestedBy)), ttpCell(pv, u.Key), C(failureText(u))})
	}
	return Section{ID: "history-s", Title: "Operation history", Table: t}
}

func cmpTime(a, b time.Time) time.Time {
	if a.IsZero() {
		return b
	}
	return a
}

func durationCell(u *fleet.Upgrade) Cell {
	if u.StartedAt.IsZero() || u.EndedAt.IsZero() {
		return C("")
	}
	return num(int(u.EndedAt.Sub(u.StartedAt).Minutes()))
}

func ttpCell(pv *watch.PatchView, key string) Cell {
	d, ok := pv.Latency(key)
	if !ok {
		return C("")
	}
	h := fmt.Sprintf("%.1f", d.Hours())
	return Cell{Text: h, Sort: h}
}

func outcomeClass(o string) string {
	switch o {
	case fleet.OutcomeFailed:
		return "st-Failed"
	case fleet.OutcomeSucceeded:
		return "st-UpToDate"
	}
	return "st-Rolling"
}

func failureText(u *fleet.Upgrade) string {
	var msgs []string
	for _, f := range u.Failures {
		if f.Message != "" {
			msgs = append(msgs, f.Message)
		}
	}
	return strings.Join(msgs, " · ")
}

func findingsSection(c *fleet.Cluster) Section {
	t := &Table{ID: "findings", Caption: "Open findings, most severe first", Empty: "no open finding", Columns: findingColumns(false)}
	var open []fleet.Finding
	for _, f := range c.Findings {
		if f.Status == fleet.FindingOpen {
			open = append(open, *f)
		}
	}
	sortFindings(open)
	for _, f := range open {
		t.Rows = append(t.Rows, findingRow(f, nil, true))
	}
	return Section{ID: "findings-s", Title: "Findings", Table: t}
}

func activitySection(c *fleet.Cluster) Section {
	t := &Table{ID: "activity", Caption: "Activity log, newest first", Empty: "no activity seen", Columns: []Column{
		{Key: "at", Title: "At"}, {Key: "operation", Title: "Operation"}, {Key: "status", Title: "Status"},
		{Key: "who", Title: "Who"}, {Key: "what", Title: "On"}, {Key: "message", Title: "Message"}}}
	acts := slices.Clone(c.Activities)
	slices.Reverse(acts)
	for i, a := range acts {
		if i == pageActivities {
			break
		}
		on := cmpOr(a.Pool, a.Maintenance)
		t.Rows = append(t.Rows, []Cell{timeCell(a.At, ""), C(a.Operation), C(a.Status), C(dash(a.Actor)), C(dash(on)), C(a.Message)})
	}
	return Section{ID: "activity-s", Title: "Activity: who changed what", Table: t}
}

func owedSection(c *fleet.Cluster) Section {
	t := &Table{ID: "owed", Caption: "Notifications still owed", Empty: "nothing owed", Columns: []Column{
		{Key: "step", Title: "Step"}, {Key: "code", Title: "Finding"}, {Key: "target", Title: "Target"},
		{Key: "at", Title: "Since"}, {Key: "deliveries", Title: "Deliveries (sink: attempts, last error)"}}}
	for _, i := range c.OutboxOrder() {
		var ds []string
		for _, sink := range sortedKeys(i.Deliveries) {
			d := i.Deliveries[sink]
			s := fmt.Sprintf("%s: %d", sink, d.Attempts)
			if d.LastError != "" {
				s += ", " + d.LastError
			}
			ds = append(ds, s)
		}
		t.Rows = append(t.Rows, []Cell{C(i.Step), C(i.Code), C(i.Target), timeCell(i.At, ""), C(strings.Join(ds, "; "))})
	}
	return Section{ID: "owed-s", Title: "Notifications owed", Table: t}
}

func remediationsSection(c *fleet.Cluster) Section {
	t := &Table{ID: "remediations", Caption: "Remediations, newest first", Empty: "none planned", Columns: []Column{
		{Key: "planned", Title: "Planned"}, {Key: "action", Title: "Action"}, {Key: "finding", Title: "For"},
		{Key: "change", Title: "From → to"}, {Key: "mode", Title: "Mode"}, {Key: "status", Title: "Status"}, {Key: "detail", Title: "Detail"}}}
	rs := make([]*fleet.Remediation, 0, len(c.Remediations))
	for _, r := range c.Remediations {
		rs = append(rs, r)
	}
	slices.SortFunc(rs, func(a, b *fleet.Remediation) int { return b.PlannedAt.Compare(a.PlannedAt) })
	for _, r := range rs {
		t.Rows = append(t.Rows, []Cell{timeCell(r.PlannedAt, ""), C(r.Action), C(r.Code + " " + r.Target),
			C(dash(r.From) + " → " + dash(r.To)), C(r.Mode), C(r.Status), C(strings.TrimSpace(r.Detail + " " + r.Error))})
	}
	return Section{ID: "remediations-s", Title: "Remediations", Table: t}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
