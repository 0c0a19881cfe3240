package policy

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
)

// Routes decide which notification sinks each step reaches (the
// Alertmanager routing tree, one level deep):
//
//	"routes": [
//	  {"name": "payments",
//	   "match": {"minSeverity": "Warning", "codes": ["UpgradeFailed", "UpgradeStalled"],
//	             "subscription": "*", "resourceGroup": "rg-payments-*", "cluster": "aks-*",
//	             "tag": "team=payments"},
//	   "sinks": ["payments-teams", "webhook"], "continue": false}
//	],
//	"defaultRoute": {"sinks": ["teams", "webhook"]}
//
// A step goes to the sinks of the first route it matches, and of the routes
// after it while a matching route says "continue": true. A step no route
// matches takes the default route: defaultRoute's sinks if the document has
// one, else every configured sink (so a document without routes sends every
// step everywhere, as before routes existed). Every match field must hold
// (an absent one matches anything): minSeverity is the least severe step
// matched; codes lists finding codes (any of them, each one of
// fleet.Codes); subscription,
// resourceGroup and cluster are path.Match globs; tag is one cluster tag,
// key=value. Names, codes, globs and tags compare case-insensitively. An
// empty sinks list sends what the route takes nowhere (recorded, not sent).

// routing is the document's routes.
type routing struct {
	routes []route
	// defaultSinks is defaultRoute's sinks; nil when the document has no
	// defaultRoute (every configured sink).
	defaultSinks []string
}

// route is one validated routes[] entry.
type route struct {
	name        string
	minSeverity string   // "" matches any
	codes       []string // lower case; nil matches any
	// Lower-case globs; "" matches anything.
	subscription, resourceGroup, cluster string
	tagKey, tagValue                     string // lower case; tagKey "" matches any
	sinks                                []string
	cont                                 bool
}

type routeDoc struct {
	Name     string          `json:"name"`
	Match    json.RawMessage `json:"match"`
	Sinks    *[]string       `json:"sinks"`
	Continue bool            `json:"continue"`
}

type routeMatchDoc struct {
	MinSeverity   *string  `json:"minSeverity"`
	Codes         []string `json:"codes"`
	Subscription  *string  `json:"subscription"`
	ResourceGroup *string  `json:"resourceGroup"`
	Cluster       *string  `json:"cluster"`
	Tag           *string  `json:"tag"`
}

type defaultRouteDoc struct {
	Sinks *[]string `json:"sinks"`
}

var severities = []string{fleet.SeverityInfo, fleet.SeverityWarning, fleet.SeverityError, fleet.SeverityCritical}

// parseRoutes reads routes and defaultRoute into s. Its errors name the
// route (by name, else by position) and the field.
func (s *Set) parseRoutes(raws []json.RawMessage, def json.RawMessage) error {
	names := map[string]int{}
	for i, raw := range raws {
		r, err := parseRoute(raw)
		id := routeID(i, r.name)
		if err != nil {
			return fmt.Errorf("%s: %w", id, err)
		}
		if j, dup := names[strings.ToLower(r.name)]; dup {
			return fmt.Errorf("%s: name: duplicate of route #%d (names are case-insensitive)", id, j+1)
		}
		names[strings.ToLower(r.name)] = i
		s.routing.routes = append(s.routing.routes, r)
	}
	if len(def) == 0 || string(def) == "null" {
		return nil
	}
	var d defaultRouteDoc
	if err := decodeAt("defaultRoute", def, &d); err != nil {
		return err
	}
	if d.Sinks == nil {
		return errors.New("defaultRoute: sinks: missing (an empty list sends what no route takes nowhere)")
	}
	sinks, err := sinkList(*d.Sinks)
	if err != nil {
		return fmt.Errorf("defaultRoute: %w", err)
	}
	s.routing.defaultSinks = sinks
	return nil
}

// routeID names a route in errors: by name, else by its 1-based position.
func routeID(i int, name string) string { return itemID("route", i, name) }

// parseRoute decodes and validates one route. It returns the name it found
// even with an error, so the error can name the route.
func parseRoute(raw json.RawMessage) (route, error) {
	r := route{name: lenientName(raw)}
	var rd routeDoc
	if err := decodeAt("", raw, &rd); err != nil {
		return r, err
	}
	r.name = strings.TrimSpace(rd.Name)
	if err := checkName(r.name); err != nil {
		return r, err
	}
	if err := r.parseMatch(rd.Match); err != nil {
		return r, err
	}
	if rd.Sinks == nil {
		return r, errors.New("sinks: missing (an empty list sends what the route takes nowhere)")
	}
	sinks, err := sinkList(*rd.Sinks)
	if err != nil {
		return r, err
	}
	r.sinks, r.cont = sinks, rd.Continue
	return r, nil
}

// parseMatch validates a route's match into r.
func (r *route) parseMatch(raw json.RawMessage) error {
	var m routeMatchDoc
	if err := decodeAt("match", raw, &m); err != nil {
		return err
	}
	if m.MinSeverity != nil {
		sev, ok := canonical(*m.MinSeverity, severities)
		if !ok {
			return fmt.Errorf("match.minSeverity %q: not a severity (want %s)", *m.MinSeverity, strings.Join(severities, ", "))
		}
		r.minSeverity = sev
	}
	if m.Codes != nil {
		if len(m.Codes) == 0 {
			return errors.New("match.codes: empty list (leave the field out to match any)")
		}
		for _, c := range m.Codes {
			code, ok := canonical(c, fleet.Codes)
			if !ok {
				return fmt.Errorf("match.codes %q: not a finding code (docs/findings.md lists them)", c)
			}
			r.codes = append(r.codes, strings.ToLower(code))
		}
	}
	if err := scopeGlobs([3]*string{m.Subscription, m.ResourceGroup, m.Cluster}, [3]*string{&r.subscription, &r.resourceGroup, &r.cluster}); err != nil {
		return err
	}
	if m.Tag != nil {
		k, v, ok := strings.Cut(*m.Tag, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || k == "" {
			return fmt.Errorf("match.tag %q: want key=value, e.g. team=payments", *m.Tag)
		}
		r.tagKey, r.tagValue = strings.ToLower(k), strings.ToLower(v)
	}
	return nil
}

// sinkList validates a route's sink names: non-empty, each once.
func sinkList(names []string) ([]string, error) {
	out := []string{}
	for _, n := range names {
		n = strings.TrimSpace(n)
		if n == "" {
			return nil, errors.New("sinks: an empty sink name")
		}
		if slices.Contains(out, n) {
			return nil, fmt.Errorf("sinks: %q listed twice", n)
		}
		out = append(out, n)
	}
	return out, nil
}

// HasRoutes reports whether the document routes notifications (routes or a
// defaultRoute).
func (s *Set) HasRoutes() bool {
	return s != nil && (len(s.routing.routes) > 0 || s.routing.defaultSinks != nil)
}

// CheckSinks refuses routes naming a sink not among configured (the names
// of the sinks the app built), with an error naming the route. The start
// calls it once the sinks are known: a route to nowhere is a typo.
func (s *Set) CheckSinks(configured []string) error {
	if s == nil {
		return nil
	}
	check := func(id string, sinks []string) error {
		for _, n := range sinks {
			if !slices.Contains(configured, n) {
				have := "none"
				if len(configured) > 0 {
					have = strings.Join(configured, ", ")
				}
				return fmt.Errorf("%s: sinks: unknown sink %q (configured: %s)", id, n, have)
			}
		}
		return nil
	}
	for i, r := range s.routing.routes {
		if err := check(routeID(i, r.name), r.sinks); err != nil {
			return err
		}
	}
	return check("defaultRoute", s.routing.defaultSinks)
}

// RoutedSinks lists the sinks some route (or the defaultRoute) sends to, in
// the document's order; all is true when a step may take the default route
// to every configured sink (no routes, or no defaultRoute). The daily digest
// goes to the chat sinks among them.
func (s *Set) RoutedSinks() (sinks []string, all bool) {
	if !s.HasRoutes() || s.routing.defaultSinks == nil {
		return nil, true
	}
	for _, r := range append(slices.Clone(s.routing.routes), route{sinks: s.routing.defaultSinks}) {
		for _, n := range r.sinks {
			if !slices.Contains(sinks, n) {
				sinks = append(sinks, n)
			}
		}
	}
	return sinks, false
}

// Route returns the sinks a step (a finding code and severity) of cluster c
// goes to, and the routes that sent it there (nil for the default route).
// all is true when the step takes the default route and the document names
// no defaultRoute: it goes to every configured sink.
func (s *Set) Route(c *fleet.Cluster, code, severity string) (sinks, routes []string, all bool) {
	if s == nil {
		return nil, nil, true
	}
	matched := false
	for _, r := range s.routing.routes {
		if !r.matches(c, code, severity) {
			continue
		}
		matched = true
		routes = append(routes, r.name)
		for _, n := range r.sinks {
			if !slices.Contains(sinks, n) {
				sinks = append(sinks, n)
			}
		}
		if !r.cont {
			break
		}
	}
	switch {
	case matched:
		return sinks, routes, false
	case s.routing.defaultSinks != nil:
		return slices.Clone(s.routing.defaultSinks), nil, false
	}
	return nil, nil, true
}

func (r *route) matches(c *fleet.Cluster, code, severity string) bool {
	if r.minSeverity != "" && fleet.SeverityRank(severity) < fleet.SeverityRank(r.minSeverity) {
		return false
	}
	if r.codes != nil && !slices.Contains(r.codes, strings.ToLower(code)) {
		return false
	}
	if c == nil {
		c = &fleet.Cluster{}
	}
	if !glob(r.subscription, c.ID.SubscriptionID) || !glob(r.resourceGroup, c.ID.ResourceGroup) || !glob(r.cluster, c.ID.Name) {
		return false
	}
	if r.tagKey == "" {
		return true
	}
	for k, v := range c.Tags {
		if strings.EqualFold(strings.TrimSpace(k), r.tagKey) && strings.EqualFold(strings.TrimSpace(v), r.tagValue) {
			return true
		}
	}
	return false
}
