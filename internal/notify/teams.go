package notify

import (
	"fmt"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
)

// Teams limits: a message must stay under 28 KB; each text is clipped well
// below that so that the whole card does.
const (
	teamsSummaryMax  = 2000
	teamsTextMax     = 1000 // remediation detail and error
	teamsEvidenceMax = 1000
	teamsFactMax     = 500
)

// The Adaptive Card 1.4 message accepted by Teams Workflows ("when a Teams
// webhook request is received") and by incoming webhooks. Only the elements
// used here are modelled; testdata/teams-message.schema.json is their schema.
type teamsMessage struct {
	Type        string            `json:"type"` // "message"
	Attachments []teamsAttachment `json:"attachments"`
}

type teamsAttachment struct {
	ContentType string       `json:"contentType"`
	ContentURL  *string      `json:"contentUrl"` // always null: the card is inline
	Content     adaptiveCard `json:"content"`
}

type adaptiveCard struct {
	Schema  string        `json:"$schema"`
	Type    string        `json:"type"`
	Version string        `json:"version"`
	Body    []any         `json:"body"`
	Actions []cardAction  `json:"actions,omitempty"`
	MSTeams *cardTeamsExt `json:"msteams,omitempty"`
}

// cardTeamsExt widens the card to the channel's width, which evidence needs.
type cardTeamsExt struct {
	Width string `json:"width"`
}

type textBlock struct {
	Type      string `json:"type"` // "TextBlock"
	Text      string `json:"text"`
	Wrap      bool   `json:"wrap"` // always true: unwrapped text is cut at one line
	Size      string `json:"size,omitempty"`
	Weight    string `json:"weight,omitempty"`
	Color     string `json:"color,omitempty"`
	IsSubtle  bool   `json:"isSubtle,omitempty"`
	FontType  string `json:"fontType,omitempty"`
	Spacing   string `json:"spacing,omitempty"`
	Separator bool   `json:"separator,omitempty"`
}

type factSet struct {
	Type  string     `json:"type"` // "FactSet"
	Facts []cardFact `json:"facts"`
}

type cardFact struct {
	Title string `json:"title"`
	Value string `json:"value"`
}

type cardAction struct {
	Type  string `json:"type"` // "Action.OpenUrl"
	Title string `json:"title"`
	URL   string `json:"url"`
}

func text(s string) textBlock { return textBlock{Type: "TextBlock", Text: s, Wrap: true} }

// TeamsCard renders n as a Teams message holding one Adaptive Card 1.4: a
// headline (severity, code, step, where), the summary, the facts (cluster,
// target, since, severity, …), what to do, the evidence, and an "Open status"
// button when n.StatusURL is set. Texts are JSON strings, never HTML-escaped;
// long ones are clipped.
func TeamsCard(n Notification) ([]byte, error) {
	if err := n.Validate(); err != nil {
		return nil, err
	}
	head := text(headline(n))
	head.Size, head.Weight, head.Color = "Medium", "Bolder", teamsColor(n)
	body := []any{head}
	if n.Summary != "" {
		body = append(body, text(clip(n.Summary, teamsSummaryMax)))
	}
	fs := factSet{Type: "FactSet"}
	for _, f := range facts(n) {
		fs.Facts = append(fs.Facts, cardFact{Title: f.title, Value: clip(f.value, teamsFactMax)})
	}
	body = append(body, fs)
	if r := n.Remediation; r != nil {
		if r.Detail != "" {
			body = append(body, text(clip(r.Detail, teamsTextMax)))
		}
		if r.Error != "" {
			e := text(clip("Error: "+r.Error, teamsTextMax))
			e.Color = "Attention"
			body = append(body, e)
		}
	}
	if a := advice(n); a != "" {
		h := text("What to do")
		h.Weight, h.Separator, h.Spacing = "Bolder", true, "Medium"
		body = append(body, h, text(a))
	}
	if ev := compactEvidence(n, teamsEvidenceMax); ev != "" {
		h := text("Evidence")
		h.Weight, h.IsSubtle = "Bolder", true
		e := text(ev)
		e.FontType, e.Size, e.IsSubtle = "Monospace", "Small", true
		body = append(body, h, e)
	}
	card := adaptiveCard{
		Schema:  "http://adaptivecards.io/schemas/adaptive-card.json",
		Type:    "AdaptiveCard",
		Version: "1.4",
		Body:    body,
		MSTeams: &cardTeamsExt{Width: "Full"},
	}
	if n.StatusURL != "" {
		card.Actions = []cardAction{{Type: "Action.OpenUrl", Title: "Open status", URL: n.StatusURL}}
	}
	msg := teamsMessage{
		Type: "message",
		Attachments: []teamsAttachment{{
			ContentType: "application/vnd.microsoft.card.adaptive",
			Content:     card,
		}},
	}
	b, err := marshal(msg)
	if err != nil {
		return nil, fmt.Errorf("teams card %q: %w", n.ID, err)
	}
	return b, nil
}

// teamsColor colours the headline: red for what needs someone, amber for
// warnings, green for good news.
func teamsColor(n Notification) string {
	switch n.Type {
	case TypeFindingResolved, TypeRemediationApplied:
		return "Good"
	case TypeRemediationFailed:
		return "Attention"
	}
	switch n.Severity {
	case fleet.SeverityCritical, fleet.SeverityError:
		return "Attention"
	case fleet.SeverityWarning:
		return "Warning"
	}
	return "Accent"
}

// compactEvidence is the evidence on one line: Teams clients disagree on line
// breaks inside a TextBlock.
func compactEvidence(n Notification, limit int) string {
	ev, err := evidence(n.Evidence)
	if err != nil || ev == nil {
		return ""
	}
	return clip(string(ev), limit)
}
