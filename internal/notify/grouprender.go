package notify

import (
	"fmt"
	"unicode/utf8"
)

// TeamsGroupCard renders g as one Teams message: a headline counting what
// opened, escalated and resolved on the cluster, the cluster's facts, then
// each step most severe first (its line, summary and what to do), at most
// groupMaxItems of them and a count of the rest by code, and an "Open
// status" button. A group of one is TeamsCard of its step, with every
// detail. Texts from outside are escaped as in TeamsCard.
func TeamsGroupCard(g Group) ([]byte, error) {
	if err := g.Validate(); err != nil {
		return nil, err
	}
	if len(g.Items) == 1 {
		return TeamsCard(withStatus(g.Items[0], g.StatusURL))
	}
	listed, more := g.split()
	head := text(escapeCard(groupHeadline(g)))
	head.Size, head.Weight, head.Color = "Medium", "Bolder", groupColor(listed)
	body := []any{head, factSet{Type: "FactSet", Facts: []cardFact{
		{Title: "Cluster", Value: clip(escapeCard(g.Cluster.Name+" (resource group "+g.Cluster.ResourceGroup+")"), teamsFactMax)},
		{Title: "Subscription", Value: clip(escapeCard(g.Cluster.SubscriptionID), teamsFactMax)},
	}}}
	for _, n := range listed {
		line := text(clip(escapeCard(itemLine(n)), teamsFactMax))
		line.Weight, line.Color, line.Separator, line.Spacing = "Bolder", teamsColor(n), true, "Medium"
		body = append(body, line)
		if n.Summary != "" {
			body = append(body, text(clip(escapeCard(n.Summary), groupSummaryMax)))
		}
		if a := groupAdvice(n); a != "" {
			t := text(clip("What to do: "+escapeCard(a), groupAdviceMax))
			t.IsSubtle = true
			body = append(body, t)
		}
	}
	if len(more) > 0 {
		t := text(escapeCard(fmt.Sprintf("… and %d more: %s. The Status API lists them all.", len(more), rest(more))))
		t.Separator, t.Spacing = true, "Medium"
		body = append(body, t)
	}
	foot := text(escapeCard(fmt.Sprintf("upgradewatch · %d steps · group %s", len(g.Items), g.ID)))
	foot.Size, foot.IsSubtle = "Small", true
	body = append(body, foot)
	card := adaptiveCard{
		Schema: "http://adaptivecards.io/schemas/adaptive-card.json", Type: "AdaptiveCard", Version: "1.4",
		Body: body, MSTeams: &cardTeamsExt{Width: "Full"},
	}
	if g.StatusURL != "" {
		card.Actions = []cardAction{{Type: "Action.OpenUrl", Title: "Open status", URL: g.StatusURL}}
	}
	card.Actions = append(card.Actions, teamsReleaseNotes(imageLinks(listed...))...)
	b, err := marshal(teamsMessage{Type: "message", Attachments: []teamsAttachment{{
		ContentType: "application/vnd.microsoft.card.adaptive", Content: card,
	}}})
	if err != nil {
		return nil, fmt.Errorf("teams card of group %q: %w", g.ID, err)
	}
	return b, nil
}

// SlackGroupMessage renders g as one Slack message: a header counting what
// opened, escalated and resolved, a section per step most severe first (its
// line, summary and what to do), at most groupMaxItems of them and a count
// of the rest, a context line and an "Open status" button; well inside
// Block Kit's 50 blocks. A group of one is SlackMessage of its step.
func SlackGroupMessage(g Group) ([]byte, error) {
	if err := g.Validate(); err != nil {
		return nil, err
	}
	if len(g.Items) == 1 {
		return SlackMessage(withStatus(g.Items[0], g.StatusURL))
	}
	listed, more := g.split()
	head := groupHeadline(g)
	blocks := []any{
		slackHeader{Type: "header", Text: slackText{Type: "plain_text", Text: clip(head, slackHeaderMax)}},
		mrkdwnSection(clipMrkdwn(escapeMrkdwn(g.Cluster.Name+" · resource group "+g.Cluster.ResourceGroup+" · subscription "+g.Cluster.SubscriptionID), slackSectionMax)),
	}
	for _, n := range listed {
		s := "*" + escapeMrkdwn(clip(itemLine(n), slackHeaderMax)) + "*"
		if n.Summary != "" {
			s += "\n" + escapeMrkdwn(clip(n.Summary, groupSummaryMax))
		}
		if a := groupAdvice(n); a != "" {
			s += "\n_What to do:_ " + escapeMrkdwn(clip(a, groupAdviceMax))
		}
		blocks = append(blocks, slackDivider, mrkdwnSection(clipMrkdwn(s, slackSectionMax)))
	}
	if len(more) > 0 {
		blocks = append(blocks, slackDivider, mrkdwnSection(clipMrkdwn(escapeMrkdwn(
			fmt.Sprintf("… and %d more: %s. The Status API lists them all.", len(more), rest(more))), slackSectionMax)))
	}
	blocks = append(blocks, slackContext{Type: "context", Elements: []slackText{{
		Type: "mrkdwn", Text: clipMrkdwn(escapeMrkdwn(fmt.Sprintf("upgradewatch · %d steps · group %s", len(g.Items), g.ID)), slackSectionMax),
	}}})
	if g.StatusURL != "" && utf8.RuneCountInString(g.StatusURL) <= slackURLMax {
		blocks = append(blocks, slackActions{Type: "actions", Elements: []slackButton{{
			Type: "button", Text: slackText{Type: "plain_text", Text: "Open status"}, URL: g.StatusURL, ActionID: "open_status",
		}}})
	}
	if rn := slackReleaseNotes(imageLinks(listed...)); rn != nil {
		blocks = append(blocks, rn)
	}
	b, err := marshal(slackMessage{Text: clipMrkdwn(escapeMrkdwn(head), slackFallbackMax), Blocks: blocks})
	if err != nil {
		return nil, fmt.Errorf("slack message of group %q: %w", g.ID, err)
	}
	return b, nil
}

// slackDivider separates the steps of a grouped message.
var slackDivider = struct {
	Type string `json:"type"`
}{Type: "divider"}

// withStatus gives n the group's status link when it has none.
func withStatus(n Notification, url string) Notification {
	if n.StatusURL == "" {
		n.StatusURL = url
	}
	return n
}
