package notify

import (
	"fmt"
	"regexp"

	"github.com/upgradewatch/upgradewatch/internal/releasenotes"
)

// maxImageLinks bounds the release-notes links a message carries.
const maxImageLinks = 4

// imageToken finds node image versions in a message's texts: AKS<family>-
// <sku>-<build>, letters, digits, dots and dashes only, so that a link built
// from one can carry nothing but the version.
var imageToken = regexp.MustCompile(`\bAKS[A-Za-z]+-[A-Za-z0-9.-]*[0-9]`)

// imageLink is a node image version a message shows and its release notes.
type imageLink struct{ version, url string }

// imageLinks are the image versions n shows (summary, evidence, remediation
// detail) that AKS publishes release notes for, in order of appearance,
// each once, at most maxImageLinks.
func imageLinks(ns ...Notification) []imageLink {
	var out []imageLink
	seen := map[string]bool{}
	for _, n := range ns {
		texts := []string{n.Summary, string(n.Evidence)}
		if n.Remediation != nil {
			texts = append(texts, n.Remediation.Detail)
		}
		for _, s := range texts {
			for _, v := range imageToken.FindAllString(s, -1) {
				u := releasenotes.URL(v)
				if u == "" || seen[v] || len(out) == maxImageLinks {
					continue
				}
				seen[v] = true
				out = append(out, imageLink{version: v, url: u})
			}
		}
	}
	return out
}

// teamsReleaseNotes are "Release notes" buttons, one per image, and the
// AKS release tracker's; none when no image has notes. Buttons, not
// Markdown links: every text of a card stays literal (escapeCard).
func teamsReleaseNotes(links []imageLink) []cardAction {
	if len(links) == 0 {
		return nil
	}
	out := make([]cardAction, 0, len(links)+1)
	for _, l := range links {
		out = append(out, cardAction{Type: "Action.OpenUrl", Title: "Release notes " + l.version, URL: l.url})
	}
	return append(out, cardAction{Type: "Action.OpenUrl", Title: "AKS release tracker", URL: releasenotes.TrackerURL})
}

// slackReleaseNotes is the same as Slack buttons (their text clipped to
// Block Kit's 75 characters); nil when no image has notes.
func slackReleaseNotes(links []imageLink) *slackActions {
	if len(links) == 0 {
		return nil
	}
	a := &slackActions{Type: "actions"}
	for i, l := range links {
		a.Elements = append(a.Elements, slackButton{Type: "button", Text: slackText{Type: "plain_text", Text: clip("Release notes "+l.version, slackButtonMax)},
			URL: l.url, ActionID: fmt.Sprintf("release_notes_%d", i+1)})
	}
	a.Elements = append(a.Elements, slackButton{Type: "button", Text: slackText{Type: "plain_text", Text: "AKS release tracker"},
		URL: releasenotes.TrackerURL, ActionID: "release_tracker"})
	return a
}
