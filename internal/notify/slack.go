package notify

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Block Kit limits (api.slack.com/reference/block-kit/blocks): a message holds
// at most 50 blocks; a header's text at most 150 characters; a section's text
// 3000; a section at most 10 fields of 2000; a button's text 75 and its url
// 3000.
const (
	slackHeaderMax   = 150
	slackSectionMax  = 3000
	slackFieldsMax   = 10
	slackFieldMax    = 2000
	slackButtonMax   = 75
	slackURLMax      = 3000
	slackFallbackMax = 3000 // Slack allows 40 000; a notification preview needs far less
	slackEvidenceMax = 1500
)

type slackMessage struct {
	Text   string `json:"text"` // fallback for notifications and old clients
	Blocks []any  `json:"blocks"`
}

type slackText struct {
	Type string `json:"type"` // "plain_text" or "mrkdwn"
	Text string `json:"text"`
}

type slackHeader struct {
	Type string    `json:"type"` // "header"
	Text slackText `json:"text"`
}

type slackSection struct {
	Type   string      `json:"type"` // "section"
	Text   *slackText  `json:"text,omitempty"`
	Fields []slackText `json:"fields,omitempty"`
}

type slackContext struct {
	Type     string      `json:"type"` // "context"
	Elements []slackText `json:"elements"`
}

type slackActions struct {
	Type     string        `json:"type"` // "actions"
	Elements []slackButton `json:"elements"`
}

type slackButton struct {
	Type     string    `json:"type"` // "button"
	Text     slackText `json:"text"`
	URL      string    `json:"url"`
	ActionID string    `json:"action_id"`
}

func mrkdwnSection(s string) slackSection {
	return slackSection{Type: "section", Text: &slackText{Type: "mrkdwn", Text: s}}
}

// SlackMessage renders n as a Slack incoming-webhook message in Block Kit: a
// header (severity, code, step, where), the summary, the facts as fields, what
// to do, the evidence, a context line and an "Open status" button when
// n.StatusURL is set (and fits). Everything from outside is escaped for mrkdwn
// (&, <, >), so a summary cannot mention @channel or forge a link; texts are
// clipped to Block Kit's limits.
func SlackMessage(n Notification) ([]byte, error) {
	if err := n.Validate(); err != nil {
		return nil, err
	}
	head := headline(n)
	blocks := []any{slackHeader{Type: "header", Text: slackText{Type: "plain_text", Text: clip(head, slackHeaderMax)}}}

	lead := "*" + escapeMrkdwn(where(n)) + "*"
	if n.Summary != "" {
		lead += "\n" + escapeMrkdwn(n.Summary)
	}
	blocks = append(blocks, mrkdwnSection(clipMrkdwn(lead, slackSectionMax)))

	fs := facts(n)
	if len(fs) > slackFieldsMax {
		fs = fs[:slackFieldsMax]
	}
	fields := make([]slackText, 0, len(fs))
	for _, f := range fs {
		fields = append(fields, slackText{Type: "mrkdwn", Text: clipMrkdwn("*"+f.title+"*\n"+escapeMrkdwn(f.value), slackFieldMax)})
	}
	blocks = append(blocks, slackSection{Type: "section", Fields: fields})

	if r := n.Remediation; r != nil {
		if r.Detail != "" {
			blocks = append(blocks, mrkdwnSection(clipMrkdwn("*Detail*\n"+escapeMrkdwn(r.Detail), slackSectionMax)))
		}
		if r.Error != "" {
			blocks = append(blocks, mrkdwnSection(clipMrkdwn("*Error*\n"+escapeMrkdwn(r.Error), slackSectionMax)))
		}
	}
	if a := advice(n); a != "" {
		blocks = append(blocks, mrkdwnSection(clipMrkdwn("*What to do*\n"+escapeMrkdwn(a), slackSectionMax)))
	}
	if ev := evidenceText(n, slackSectionMax); ev != "" {
		// A code block keeps the evidence's indentation; "```" inside it would
		// end the block early, so it is broken up.
		ev = strings.ReplaceAll(escapeMrkdwn(ev), "```", "`\u200b``")
		blocks = append(blocks, mrkdwnSection("*Evidence*\n```"+clipMrkdwn(ev, slackEvidenceMax)+"```"))
	}
	blocks = append(blocks, slackContext{Type: "context", Elements: []slackText{{
		Type: "mrkdwn",
		Text: clipMrkdwn(escapeMrkdwn("upgradewatch · "+n.Type+" · "+n.ID), slackSectionMax),
	}}})
	if n.StatusURL != "" && utf8.RuneCountInString(n.StatusURL) <= slackURLMax {
		// A clipped URL would be a broken link: one too long gets no button.
		blocks = append(blocks, slackActions{Type: "actions", Elements: []slackButton{{
			Type:     "button",
			Text:     slackText{Type: "plain_text", Text: clip("Open status", slackButtonMax)},
			URL:      n.StatusURL,
			ActionID: "open_status",
		}}})
	}

	if rn := slackReleaseNotes(imageLinks(n)); rn != nil {
		blocks = append(blocks, rn)
	}
	fallback := head
	if n.Summary != "" {
		fallback += ": " + n.Summary
	}
	msg := slackMessage{Text: clipMrkdwn(escapeMrkdwn(fallback), slackFallbackMax), Blocks: blocks}
	b, err := marshal(msg)
	if err != nil {
		return nil, fmt.Errorf("slack message %q: %w", n.ID, err)
	}
	return b, nil
}

// escapeMrkdwn escapes the three characters Slack reserves for its control
// sequences (<@U…>, <!channel>, <url|text>). Nothing else is escaped.
var escapeMrkdwn = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace

// clipMrkdwn clips escaped mrkdwn to at most n characters without cutting an
// entity (&amp; &lt; &gt;) in two.
func clipMrkdwn(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	cut := string([]rune(s)[:n-1])
	if i := strings.LastIndexByte(cut, '&'); i >= 0 && !strings.Contains(cut[i:], ";") {
		cut = cut[:i]
	}
	return cut + "…"
}
