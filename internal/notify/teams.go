package notify

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

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
// button when n.StatusURL is set. Every text that comes from outside (names,
// summaries, facts, details, errors, evidence, and the hints they fill in) is
// escaped for the card's Markdown (escapeCard), so that it shows as written and
// cannot form a link, a mention or formatting; the only link is our own
// button. Texts are JSON strings, never HTML-escaped; long ones are clipped.
func TeamsCard(n Notification) ([]byte, error) {
	if err := n.Validate(); err != nil {
		return nil, err
	}
	head := text(escapeCard(headline(n)))
	head.Size, head.Weight, head.Color = "Medium", "Bolder", teamsColor(n)
	body := []any{head}
	if n.Summary != "" {
		body = append(body, text(clip(escapeCard(n.Summary), teamsSummaryMax)))
	}
	fs := factSet{Type: "FactSet"}
	for _, f := range facts(n) {
		fs.Facts = append(fs.Facts, cardFact{Title: f.title, Value: clip(escapeCard(f.value), teamsFactMax)})
	}
	body = append(body, fs)
	if r := n.Remediation; r != nil {
		if r.Detail != "" {
			body = append(body, text(clip(escapeCard(r.Detail), teamsTextMax)))
		}
		if r.Error != "" {
			e := text(clip("Error: "+escapeCard(r.Error), teamsTextMax))
			e.Color = "Attention"
			body = append(body, e)
		}
	}
	if a := advice(n); a != "" {
		h := text("What to do")
		h.Weight, h.Separator, h.Spacing = "Bolder", true, "Medium"
		body = append(body, h, text(escapeCard(a)))
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
	card.Actions = append(card.Actions, teamsReleaseNotes(imageLinks(n))...)
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
	return clip(escapeCard(string(ev)), limit)
}

// wordJoiner is invisible; put between two characters, it keeps them from
// forming Markdown ("](", "<at").
const wordJoiner = '\u2060'

// escapeCard makes text from outside (summaries, names, facts, errors,
// evidence) literal in a TextBlock or a fact, whose Markdown subset has
// **bold**, _italic_, lists and [links](url), and whose hosts also turn
// <https://…> into links and <at>…</at> into mentions.
//
// Link-forming pairs are split by an invisible word joiner, so that a link
// whose text hides its target, an autolink, a mention or any tag never forms,
// and the text still reads the same on every client. A bare URL is left as
// it is: a client may link it, but it shows where it leads, and AKS's own
// messages carry such links (http://aka.ms/aks/debugdrainfailures).
//
// Emphasis and list markers are backslash-escaped (CommonMark), as only an
// escape stops them: desktop Teams hides the backslash, mobile clients show
// it — the text is literal either way. An underscore inside a word
// (rg_payments_prod) forms no emphasis and is left alone, so that names read,
// and paste, unchanged.
func escapeCard(s string) string {
	rs := []rune(s)
	var b strings.Builder
	b.Grow(len(s) + 8)
	lineStart, escAt := true, -1
	for i, r := range rs {
		prev, next := runeAt(rs, i-1), runeAt(rs, i+1)
		if lineStart {
			escAt = blockMarker(rs, i)
		}
		if i == escAt {
			b.WriteByte('\\')
		}
		switch {
		case r == '\\' && isASCIIPunct(next):
			b.WriteString(`\\`)
		case r == '*':
			b.WriteString(`\*`)
		case r == '_' && !(isWordRune(prev) && isWordRune(next)):
			b.WriteString(`\_`)
		case r == '<':
			b.WriteRune(r)
			b.WriteRune(wordJoiner)
		case r == ']' && opensTarget(rs, i+1):
			b.WriteRune(r)
			b.WriteRune(wordJoiner)
		default:
			b.WriteRune(r)
		}
		switch {
		case r == '\n' || r == '\r':
			lineStart = true
		case r != ' ' && r != '\t':
			lineStart = false
		}
	}
	return b.String()
}

// blockMarker finds, when rs[i] is the first non-blank rune of a line, the
// rune a backslash must precede so that the line starts no list item or
// heading ("- ", "+ ", "#", the dot of "1. " or ")" of "1) "); -1 if none.
// ("* " is escaped with every other asterisk.)
func blockMarker(rs []rune, i int) int {
	switch r := rs[i]; {
	case r == '-' || r == '+':
		if blankOrEnd(runeAt(rs, i+1)) {
			return i
		}
	case r == '#':
		return i
	case r >= '0' && r <= '9':
		j := i
		for j < len(rs) && rs[j] >= '0' && rs[j] <= '9' {
			j++
		}
		if d := runeAt(rs, j); (d == '.' || d == ')') && blankOrEnd(runeAt(rs, j+1)) {
			return j
		}
	}
	return -1
}

// opensTarget reports whether rs[i:], after blanks, starts a link's target or
// reference ("(", "[", ":"): after a "]" that makes a link.
func opensTarget(rs []rune, i int) bool {
	// Any white space, not only blanks: a form feed or a line break between
	// "]" and "(" must not leave a link that some renderer forms.
	for i < len(rs) && unicode.IsSpace(rs[i]) {
		i++
	}
	r := runeAt(rs, i)
	return r == '(' || r == '[' || r == ':'
}

// blankOrEnd reports whether r ends a list marker: a blank, a line's or the
// text's end (runeAt's 0).
func blankOrEnd(r rune) bool { return r == 0 || r == ' ' || r == '\t' || r == '\n' || r == '\r' }

func runeAt(rs []rune, i int) rune {
	if i < 0 || i >= len(rs) {
		return 0
	}
	return rs[i]
}

func isWordRune(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }

// isASCIIPunct is CommonMark's "ASCII punctuation": what a backslash escapes.
func isASCIIPunct(r rune) bool {
	return r > ' ' && r < utf8.RuneSelf && !unicode.IsLetter(r) && !unicode.IsDigit(r)
}
