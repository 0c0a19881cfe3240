package notify

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
)

// Group is the steps of one cluster that one chat message announces
// together: what opened, escalated, was reminded of or resolved (and any
// remediation step) within one dispatch window.
type Group struct {
	// ID is stable for the set of steps (GroupID of their IDs): a resend of
	// the same set is recognisably the same message.
	ID      string
	Cluster fleet.ClusterID
	// Time is when the group was put together (the newest step's time when
	// zero).
	Time time.Time
	// StatusURL links to the Status API for the cluster.
	StatusURL string
	// Items are the steps, in any order; the renderers list them most severe
	// first. Each is a valid Notification of Cluster.
	Items []Notification
}

// GroupSender is a sink that can announce several steps of one cluster in
// one message: the chat sinks (Teams, Slack). SendGroup makes one bounded
// attempt for the whole group and classifies its failure as Send does; the
// caller settles every item of the group alike.
type GroupSender interface {
	Sink
	SendGroup(ctx context.Context, g Group) error
}

var (
	_ GroupSender = (*TeamsSink)(nil)
	_ GroupSender = (*SlackSink)(nil)
)

// GroupID is the id of a group of the given step ids: the same set gives
// the same id, in any order.
func GroupID(ids []string) string {
	s := slices.Clone(ids)
	slices.Sort(s)
	h := sha256.Sum256([]byte(strings.Join(s, "|")))
	return hex.EncodeToString(h[:16])
}

// GroupKey names the group a cluster's step belongs to: the cluster and the
// sinks its route sends it to (in any order). It is the CloudEvents
// extension attribute groupkey, so that a machine can gather what a person
// got in one message.
func GroupKey(c fleet.ClusterID, sinks []string) string {
	s := slices.Clone(sinks)
	slices.Sort(s)
	h := sha256.Sum256([]byte(c.Key() + "|" + strings.Join(s, ",")))
	return hex.EncodeToString(h[:8])
}

// Validate reports what makes g unsendable.
func (g Group) Validate() error {
	var errs []error
	if g.ID == "" {
		errs = append(errs, errors.New("no id"))
	}
	if g.Cluster.IsZero() {
		errs = append(errs, errors.New("no cluster"))
	}
	if len(g.Items) == 0 {
		errs = append(errs, errors.New("no steps"))
	}
	for _, n := range g.Items {
		if err := n.Validate(); err != nil {
			errs = append(errs, err)
		} else if n.Cluster != g.Cluster {
			errs = append(errs, fmt.Errorf("notification %q is about another cluster", n.ID))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("group %q: %w", g.ID, err)
	}
	return nil
}

// groupMaxItems is how many steps a grouped message lists in full; the
// rest are counted by code ("and 7 more: ImageStale 5, VersionSkew 2"), so
// a message stays within Teams' 28 KB and Slack's 50 blocks however many
// steps a window gathers.
const groupMaxItems = 10

// Per-step text limits inside a grouped message, well below the
// single-step ones: ten steps must fit in one card.
const (
	groupSummaryMax = 400
	groupAdviceMax  = 500
)

// sorted returns the items most severe first; at one severity, steps that
// need someone before resolutions, then oldest first, then by id.
func (g Group) sorted() []Notification {
	items := slices.Clone(g.Items)
	slices.SortStableFunc(items, func(a, b Notification) int {
		return cmp.Or(
			cmp.Compare(fleet.SeverityRank(b.Severity), fleet.SeverityRank(a.Severity)),
			cmp.Compare(stepRank(a.Type), stepRank(b.Type)),
			a.Time.Compare(b.Time),
			cmp.Compare(a.ID, b.ID))
	})
	return items
}

// stepRank orders the kinds of step within one severity.
func stepRank(typ string) int {
	switch typ {
	case TypeFindingOpened:
		return 0
	case TypeFindingReminded:
		return 1
	case TypeRemediationFailed:
		return 2
	case TypeRemediationPlanned, TypeRemediationApplied:
		return 3
	}
	return 4 // resolved
}

// groupHeadline sums the group up: "aks-payments-weu: 3 opened, 1
// escalated, 1 resolved".
func groupHeadline(g Group) string {
	var opened, escalated, reminded, resolved, remediation int
	for _, n := range g.Items {
		switch {
		case n.Type == TypeFindingOpened:
			opened++
		case n.Type == TypeFindingReminded && n.EscalatedFrom != "":
			escalated++
		case n.Type == TypeFindingReminded:
			reminded++
		case n.Type == TypeFindingResolved:
			resolved++
		default:
			remediation++
		}
	}
	var parts []string
	for _, p := range []struct {
		n    int
		what string
	}{{opened, "opened"}, {escalated, "escalated"}, {reminded, "still open"}, {resolved, "resolved"}, {remediation, "remediation steps"}} {
		if p.n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", p.n, p.what))
		}
	}
	return g.Cluster.Name + ": " + strings.Join(parts, ", ")
}

// itemLine is one step in a few words: "[Error] UpgradeFailed opened on pool
// payments". The cluster is the group's, so it is left out.
func itemLine(n Notification) string {
	h := headline(n)
	// headline ends " on <where>"; within a group the cluster is known.
	if w := where(n); strings.Contains(h, " on "+w) {
		h = strings.Replace(h, " on "+w, " on "+describeTarget(n.Target), 1)
	}
	return h
}

// rest counts the steps not listed, by code: "ImageStale 5, VersionSkew 2".
func rest(items []Notification) string {
	counts := map[string]int{}
	for _, n := range items {
		counts[cmp.Or(n.Code, "Remediation")]++
	}
	codes := make([]string, 0, len(counts))
	for c := range counts {
		codes = append(codes, c)
	}
	slices.Sort(codes)
	out := make([]string, len(codes))
	for i, c := range codes {
		out[i] = fmt.Sprintf("%s %d", c, counts[c])
	}
	return strings.Join(out, ", ")
}

// groupAdvice is a step's "what to do", or "" for a resolution (nothing to
// do, and the space is better spent on what needs someone).
func groupAdvice(n Notification) string {
	if n.Type == TypeFindingResolved {
		return ""
	}
	return advice(n)
}

// split returns the steps to list in full and the rest.
func (g Group) split() (listed, more []Notification) {
	items := g.sorted()
	if len(items) <= groupMaxItems {
		return items, nil
	}
	return items[:groupMaxItems], items[groupMaxItems:]
}

// groupColor is the colour of the most severe step that needs someone, or
// "Good" when everything resolved.
func groupColor(items []Notification) string {
	for _, n := range items {
		if n.Type != TypeFindingResolved && n.Type != TypeRemediationApplied {
			return teamsColor(n)
		}
	}
	return "Good"
}
