package notify

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
)

// The digest's content is the domain's (fleet.Digest), so the application
// layer can build it without importing a sink.
type (
	Digest           = fleet.Digest
	DigestCompliance = fleet.DigestCompliance
	DigestFinding    = fleet.DigestFinding
)

// DigestMaxItems is how many entries of each list a digest shows.
const DigestMaxItems = fleet.DigestMaxItems

// DigestSender is a sink that can post a digest: the chat sinks. It makes
// one bounded attempt and classifies its failure as Send does.
type DigestSender interface {
	Sink
	SendDigest(ctx context.Context, d Digest) error
}

var (
	_ DigestSender = (*TeamsSink)(nil)
	_ DigestSender = (*SlackSink)(nil)
)

// SendDigest posts d as one message (TeamsDigestCard, SlackDigestMessage).
func (c chat) SendDigest(ctx context.Context, d Digest) error {
	render := SlackDigestMessage
	if c.kind == "teams" {
		render = TeamsDigestCard
	}
	body, err := render(d)
	if err != nil {
		return invalid(c.kind, err)
	}
	return c.post(ctx, body)
}

// validateDigest reports what makes d unsendable.
func validateDigest(d Digest) error {
	var errs []error
	if d.ID == "" {
		errs = append(errs, errors.New("no id"))
	}
	if d.Day == "" {
		errs = append(errs, errors.New("no day"))
	}
	if d.Time.IsZero() {
		errs = append(errs, errors.New("no time"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("digest %q: %w", d.ID, err)
	}
	return nil
}

// digestHeadline: "upgradewatch daily digest 2026-12-14 (Europe/Berlin): 3
// open, 2 opened, 1 resolved".
func digestHeadline(d Digest) string {
	return fmt.Sprintf("upgradewatch daily digest %s (%s): %d open, %d opened and %d resolved in 24 h",
		d.Day, d.Zone, d.OpenNow, d.OpenedTotal, d.ResolvedTotal)
}

// complianceLine sums the compliance up in one line.
func complianceLine(c *DigestCompliance) string {
	if c == nil {
		return "not kept (UPGRADEWATCH_COMPLIANCE_EVERY)"
	}
	s := fmt.Sprintf("%.1f%% of pools current · %d clusters · %d pools, %d up to date, %d behind",
		c.PercentPoolsCurrent, c.Clusters, c.Pools, c.UpToDate, c.Behind)
	if c.MaxDaysBehind > 0 {
		s += fmt.Sprintf(" · most behind %d days", c.MaxDaysBehind)
	}
	return s
}

// digestSection is one titled list of a digest, its lines bounded.
type digestSection struct {
	title string
	lines []string
	more  int // entries not listed
	empty string
}

// sections lays the digest out: the same parts for Teams and Slack.
func digestSections(d Digest) []digestSection {
	line := func(f DigestFinding, when string) string {
		s := fmt.Sprintf("[%s] %s on %s %s, %s", f.Severity, f.Code, f.Cluster.Name, describeTarget(f.Target), when)
		if f.SilencedBy != "" {
			s += " (silenced by " + f.SilencedBy + ")"
		}
		return s
	}
	at := func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") }
	var opened, resolved, longest, expiring []string
	for _, f := range bounded(d.Opened) {
		opened = append(opened, line(f, "opened "+at(f.OpenedAt)))
	}
	for _, f := range bounded(d.Resolved) {
		resolved = append(resolved, line(f, "resolved "+at(f.ResolvedAt)))
	}
	for _, f := range bounded(d.Longest) {
		longest = append(longest, line(f, fmt.Sprintf("open since %s (%s)", at(f.OpenedAt), days(d.Time.Sub(f.OpenedAt)))))
	}
	for _, s := range bounded(d.Expiring) {
		expiring = append(expiring, fmt.Sprintf("%s ends %s: %s (%s, by %s)", s.ID, at(s.End()), silenceMatch(s),
			clip(s.Comment, 200), clip(s.CreatedBy, 100)))
	}
	return []digestSection{
		{title: fmt.Sprintf("Opened in the last 24 h (%d)", d.OpenedTotal), lines: opened, more: d.OpenedTotal - len(opened), empty: "Nothing opened."},
		{title: fmt.Sprintf("Resolved in the last 24 h (%d)", d.ResolvedTotal), lines: resolved, more: d.ResolvedTotal - len(resolved), empty: "Nothing resolved."},
		{title: fmt.Sprintf("Open longest (%d open)", d.OpenNow), lines: longest, more: d.OpenNow - len(longest), empty: "Nothing is open."},
		{title: fmt.Sprintf("Silences ending in the next 24 h (%d)", len(d.Expiring)), lines: expiring, more: len(d.Expiring) - len(expiring), empty: "None."},
	}
}

func bounded[T any](s []T) []T { return s[:min(len(s), DigestMaxItems)] }

// days says how long, in days and hours.
func days(d time.Duration) string {
	h := int(d.Hours())
	if h < 24 {
		return fmt.Sprintf("%d h", h)
	}
	return fmt.Sprintf("%d d %d h", h/24, h%24)
}

// silenceMatch names what a silence matches.
func silenceMatch(s fleet.Silence) string {
	var parts []string
	for _, p := range []struct{ k, v string }{{"cluster", s.Cluster}, {"code", s.Code}, {"target", s.Target}} {
		if p.v != "" {
			parts = append(parts, p.k+" "+clip(p.v, 120))
		}
	}
	return strings.Join(parts, ", ")
}

// TeamsDigestCard renders d as one Teams Adaptive Card: the headline, the
// compliance, then each section with at most DigestMaxItems lines and a
// count of the rest, and an "Open status" button.
func TeamsDigestCard(d Digest) ([]byte, error) {
	if err := validateDigest(d); err != nil {
		return nil, err
	}
	head := text(escapeCard(digestHeadline(d)))
	head.Size, head.Weight = "Medium", "Bolder"
	body := []any{head, factSet{Type: "FactSet", Facts: []cardFact{
		{Title: "Compliance", Value: clip(escapeCard(complianceLine(d.Compliance)), teamsFactMax)},
	}}}
	for _, s := range digestSections(d) {
		t := text(escapeCard(s.title))
		t.Weight, t.Separator, t.Spacing = "Bolder", true, "Medium"
		body = append(body, t)
		lines := s.lines
		if len(lines) == 0 {
			lines = []string{s.empty}
		}
		if s.more > 0 {
			lines = append(lines, fmt.Sprintf("… and %d more. The Status API lists them all.", s.more))
		}
		for _, l := range lines {
			body = append(body, text(clip(escapeCard(l), teamsFactMax)))
		}
	}
	foot := text(escapeCard("upgradewatch · digest " + d.ID))
	foot.Size, foot.IsSubtle = "Small", true
	body = append(body, foot)
	card := adaptiveCard{
		Schema: "http://adaptivecards.io/schemas/adaptive-card.json", Type: "AdaptiveCard", Version: "1.4",
		Body: body, MSTeams: &cardTeamsExt{Width: "Full"},
	}
	if d.StatusURL != "" {
		card.Actions = []cardAction{{Type: "Action.OpenUrl", Title: "Open status", URL: d.StatusURL}}
	}
	b, err := marshal(teamsMessage{Type: "message", Attachments: []teamsAttachment{{
		ContentType: "application/vnd.microsoft.card.adaptive", Content: card,
	}}})
	if err != nil {
		return nil, fmt.Errorf("teams card of digest %q: %w", d.ID, err)
	}
	return b, nil
}

// SlackDigestMessage renders d as one Slack message: a header, the
// compliance, a section per part (at most DigestMaxItems lines each and a
// count of the rest), a context line and an "Open status" button: 12
// blocks at most.
func SlackDigestMessage(d Digest) ([]byte, error) {
	if err := validateDigest(d); err != nil {
		return nil, err
	}
	head := digestHeadline(d)
	blocks := []any{
		slackHeader{Type: "header", Text: slackText{Type: "plain_text", Text: clip(head, slackHeaderMax)}},
		mrkdwnSection(clipMrkdwn("*Compliance:* "+escapeMrkdwn(complianceLine(d.Compliance)), slackSectionMax)),
	}
	for _, s := range digestSections(d) {
		b := "*" + escapeMrkdwn(s.title) + "*"
		if len(s.lines) == 0 {
			b += "\n" + escapeMrkdwn(s.empty)
		}
		for _, l := range s.lines {
			b += "\n• " + escapeMrkdwn(clip(l, 350))
		}
		if s.more > 0 {
			b += "\n" + escapeMrkdwn(fmt.Sprintf("… and %d more. The Status API lists them all.", s.more))
		}
		blocks = append(blocks, slackDivider, mrkdwnSection(clipMrkdwn(b, slackSectionMax)))
	}
	blocks = append(blocks, slackContext{Type: "context", Elements: []slackText{{
		Type: "mrkdwn", Text: clipMrkdwn(escapeMrkdwn("upgradewatch · digest "+d.ID), slackSectionMax),
	}}})
	if d.StatusURL != "" && utf8.RuneCountInString(d.StatusURL) <= slackURLMax {
		blocks = append(blocks, slackActions{Type: "actions", Elements: []slackButton{{
			Type: "button", Text: slackText{Type: "plain_text", Text: "Open status"}, URL: d.StatusURL, ActionID: "open_status",
		}}})
	}
	b, err := marshal(slackMessage{Text: clipMrkdwn(escapeMrkdwn(head), slackFallbackMax), Blocks: blocks})
	if err != nil {
		return nil, fmt.Errorf("slack message of digest %q: %w", d.ID, err)
	}
	return b, nil
}
