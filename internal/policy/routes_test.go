package policy

import (
	"slices"
	"strings"
	"testing"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
)

func routeCluster(sub, rg, name string, tags map[string]string) *fleet.Cluster {
	return &fleet.Cluster{ID: fleet.ClusterID{SubscriptionID: sub, ResourceGroup: rg, Name: name}, Tags: tags}
}

// TestRoute resolves steps against testdata/routes.json: first match wins,
// continue goes on, what no route takes goes to the default route.
func TestRoute(t *testing.T) {
	set := mustLoad(t, "testdata/routes.json")
	payments := routeCluster(prodSub, "rg-payments-prod", "aks-payments-weu", map[string]string{"Team": "Payments"})
	untagged := routeCluster(prodSub, "rg-payments-prod", "aks-payments-neu", nil)
	sandbox := routeCluster(sandboxSub, "rg-sandbox-ml", "aks-analytics-eus", nil)
	tests := []struct {
		name           string
		c              *fleet.Cluster
		code, severity string
		sinks, routes  []string
	}{
		{"payments, a warning: its route only, then no other matches", payments, fleet.CodeImageStale, fleet.SeverityWarning,
			[]string{"payments-teams"}, []string{"payments"}},
		{"payments, a failure: continue reaches the pager route", payments, fleet.CodeUpgradeFailed, fleet.SeverityError,
			[]string{"payments-teams", "pager-webhook", "teams"}, []string{"payments", "failures to the pager"}},
		{"tag key and value compare case-insensitively; without the tag no match", untagged, fleet.CodeImageStale, fleet.SeverityWarning,
			[]string{"teams", "eventgrid"}, nil},
		{"minSeverity is at least: Critical matches Error", untagged, fleet.CodeUpgradeStalled, fleet.SeverityCritical,
			[]string{"pager-webhook", "teams"}, []string{"failures to the pager"}},
		{"below minSeverity: the default route", untagged, fleet.CodeUpgradeStalled, fleet.SeverityWarning,
			[]string{"teams", "eventgrid"}, nil},
		{"codes compare case-insensitively", untagged, "upgradefailed", fleet.SeverityError,
			[]string{"pager-webhook", "teams"}, []string{"failures to the pager"}},
		{"an empty sinks list sends nowhere", sandbox, fleet.CodeChannelDrift, fleet.SeverityWarning,
			[]string{}, []string{"sandbox is quiet"}},
		{"the first match wins over a later one", sandbox, fleet.CodeUpgradeFailed, fleet.SeverityError,
			[]string{"pager-webhook", "teams"}, []string{"failures to the pager"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sinks, routes, all := set.Route(tc.c, tc.code, tc.severity)
			if all || !slices.Equal(sinks, tc.sinks) || !slices.Equal(routes, tc.routes) {
				t.Errorf("got sinks %q via %q (all %v), want %q via %q", sinks, routes, all, tc.sinks, tc.routes)
			}
		})
	}
	if !set.HasRoutes() {
		t.Error("HasRoutes: false")
	}
}

// Without routes, or with routes but no defaultRoute, an unmatched step goes
// to every sink: today's behaviour.
func TestRouteDefaultsToEverySink(t *testing.T) {
	c := routeCluster(prodSub, "rg-payments-prod", "aks-payments-weu", nil)
	for _, doc := range []string{`{}`, `{"routes": [{"name": "x", "match": {"cluster": "aks-other"}, "sinks": ["teams"]}]}`} {
		set, err := Parse([]byte(doc))
		if err != nil {
			t.Fatal(err)
		}
		if sinks, _, all := set.Route(c, fleet.CodeImageStale, fleet.SeverityWarning); !all || sinks != nil {
			t.Errorf("%s: got %q, all %v; want every sink", doc, sinks, all)
		}
	}
	var none *Set
	if _, _, all := none.Route(c, "", ""); !all || none.HasRoutes() || none.CheckSinks(nil) != nil {
		t.Error("a nil Set does not route to every sink")
	}
}

// Route errors name the route (by name, else by position) and the field.
func TestRouteRefusals(t *testing.T) {
	tests := []struct {
		name, doc string
		want      []string
	}{
		{"bad severity", `{"routes": [{"name": "pager", "match": {"minSeverity": "Severe"}, "sinks": ["teams"]}]}`,
			[]string{`route "pager"`, `match.minSeverity "Severe": not a severity (want Info, Warning, Error, Critical)`}},
		{"bad glob", `{"routes": [{"name": "payments", "match": {"cluster": "aks-[payments"}, "sinks": ["teams"]}]}`,
			[]string{`route "payments"`, `match.cluster "aks-[payments": bad glob`}},
		{"empty glob", `{"routes": [{"name": "payments", "match": {"resourceGroup": " "}, "sinks": ["teams"]}]}`,
			[]string{`route "payments"`, `match.resourceGroup: empty pattern`}},
		{"tag without =", `{"routes": [{"name": "payments", "match": {"tag": "team"}, "sinks": ["teams"]}]}`,
			[]string{`route "payments"`, `match.tag "team": want key=value`}},
		{"bad code", `{"routes": [{"name": "stalls", "match": {"codes": ["Upgrade Stalled"]}, "sinks": ["teams"]}]}`,
			[]string{`route "stalls"`, `match.codes "Upgrade Stalled": not a finding code`}},
		{"unknown code", `{"routes": [{"name": "stalls", "match": {"codes": ["UpgradeStuck"]}, "sinks": ["teams"]}]}`,
			[]string{`route "stalls"`, `match.codes "UpgradeStuck": not a finding code`}},
		{"empty codes", `{"routes": [{"name": "stalls", "match": {"codes": []}, "sinks": ["teams"]}]}`,
			[]string{`route "stalls"`, `match.codes: empty list`}},
		{"unknown match field", `{"routes": [{"name": "stalls", "match": {"severity": "Error"}, "sinks": ["teams"]}]}`,
			[]string{`route "stalls"`, `match.severity: unknown field`}},
		{"no sinks", `{"routes": [{"name": "stalls"}]}`, []string{`route "stalls"`, `sinks: missing`}},
		{"sink twice", `{"routes": [{"name": "stalls", "sinks": ["teams", "teams"]}]}`, []string{`route "stalls"`, `sinks: "teams" listed twice`}},
		{"no name", `{"routes": [{"name": "a", "sinks": []}, {"sinks": ["teams"]}]}`, []string{`route #2`, `name: missing`}},
		{"duplicate name", `{"routes": [{"name": "Pager", "sinks": []}, {"name": "pager", "sinks": ["teams"]}]}`,
			[]string{`route "pager"`, `duplicate of route #1`}},
		{"continue not a bool", `{"routes": [{"name": "pager", "sinks": [], "continue": "yes"}]}`, []string{`continue: got JSON string, want true or false`}},
		{"defaultRoute without sinks", `{"defaultRoute": {}}`, []string{`defaultRoute: sinks: missing`}},
		{"defaultRoute unknown field", `{"defaultRoute": {"sinks": [], "continue": true}}`, []string{`defaultRoute.continue: unknown field`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.doc))
			if err == nil {
				t.Fatal("got no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("got %q, want it to contain %q", err, w)
				}
			}
		})
	}
}

// CheckSinks refuses a route to a sink the app does not have, naming the
// route and what is configured.
func TestCheckSinks(t *testing.T) {
	set := mustLoad(t, "testdata/routes.json")
	if err := set.CheckSinks([]string{"teams", "eventgrid", "payments-teams", "pager-webhook"}); err != nil {
		t.Fatalf("every sink configured: %v", err)
	}
	for _, tc := range []struct {
		configured []string
		want       string
	}{
		{[]string{"teams", "eventgrid", "pager-webhook"}, `route "payments": sinks: unknown sink "payments-teams" (configured: teams, eventgrid, pager-webhook)`},
		{[]string{"teams", "payments-teams", "pager-webhook"}, `defaultRoute: sinks: unknown sink "eventgrid"`},
		{nil, `route "payments": sinks: unknown sink "payments-teams" (configured: none)`},
	} {
		if err := set.CheckSinks(tc.configured); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("configured %q: got %v, want %q", tc.configured, err, tc.want)
		}
	}
}

// RoutedSinks lists every sink a route or the defaultRoute names, once, in
// the document's order; without a defaultRoute every sink may be reached.
func TestRoutedSinks(t *testing.T) {
	sinks, all := mustLoad(t, "testdata/routes.json").RoutedSinks()
	if want := []string{"payments-teams", "pager-webhook", "teams", "eventgrid"}; all || !slices.Equal(sinks, want) {
		t.Errorf("got %q (all %v), want %q", sinks, all, want)
	}
	for _, doc := range []string{`{}`, `{"routes": [{"name": "x", "match": {"cluster": "aks-other"}, "sinks": ["teams"]}]}`} {
		set, err := Parse([]byte(doc))
		if err != nil {
			t.Fatal(err)
		}
		if sinks, all := set.RoutedSinks(); !all || sinks != nil {
			t.Errorf("%s: got %q (all %v), want every sink", doc, sinks, all)
		}
	}
}
