package notify

import (
	"encoding/json"
	"strings"
	"testing"
)

const (
	notesFeb = "https://github.com/Azure/AgentBaker/blob/master/vhdbuilder/release-notes/AKSUbuntu/gen2/2204containerd/202602.18.0.txt"
	notesMar = "https://github.com/Azure/AgentBaker/blob/master/vhdbuilder/release-notes/AKSUbuntu/gen2/2204containerd/202603.02.0.txt"
	tracker  = "https://releases.aks.azure.com/"
)

// Every image version a card shows links to its release notes (and the
// card to the AKS release tracker), after the status button; a version
// without published notes, a SecurityPatch build, gets none.
func TestCardsLinkImagesToReleaseNotes(t *testing.T) {
	n := imageStaleReminded()
	n.Evidence = mustJSON(map[string]any{"image": "AKSUbuntu-2204gen2containerd-202602.18.0",
		"latest": "AKSUbuntu-2204gen2containerd-202603.02.0", "patched": "AKSUbuntu-2204gen2containerd-202602.18.0-2026.03.05"})
	want := []string{paymentsStatus, notesFeb, notesMar, tracker}

	tdoc, terr := TeamsCard(n)
	sdoc, serr := SlackMessage(n)
	checkLinks(t, "", tdoc, terr, sdoc, serr, want)
}

// A grouped message links the images of the steps it lists.
func TestGroupCardsLinkImagesToReleaseNotes(t *testing.T) {
	g := Group{ID: "7e57a11a7e57a11a7e57a11a7e57a11a", Cluster: payments, StatusURL: paymentsStatus,
		Items: []Notification{upgradeFailedOpened(), imageStaleReminded()}}
	want := []string{paymentsStatus, notesFeb, notesMar, tracker}
	tdoc, terr := TeamsGroupCard(g)
	sdoc, serr := SlackGroupMessage(g)
	checkLinks(t, "group ", tdoc, terr, sdoc, serr, want)
}

// checkLinks validates a Teams card and a Slack message against their
// schemas and checks that their buttons open want, in order.
func checkLinks(t *testing.T, what string, tdoc []byte, terr error, sdoc []byte, serr error, want []string) {
	t.Helper()
	if terr != nil || serr != nil {
		t.Fatalf("teams: %v; slack: %v", terr, serr)
	}
	validateTeams(t, loadSchema(t, "testdata/teams-message.schema.json"), tdoc)
	var got []string
	for _, a := range viewTeams(t, tdoc).actions {
		got = append(got, a["url"].(string))
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("teams %sactions open\n%v\nwant\n%v", what, got, want)
	}
	validateSlack(t, loadSchema(t, "testdata/slack-message.schema.json"), sdoc)
	if got := slackButtonURLs(t, sdoc); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("slack %sbuttons open\n%v\nwant\n%v", what, got, want)
	}
}

// A message showing no image carries no release-notes button, and at most
// maxImageLinks versions are linked however many a message names.
func TestImageLinksBounded(t *testing.T) {
	if l := imageLinks(upgradeFailedOpened()); len(l) != 0 {
		t.Errorf("imageLinks of a message without images = %v", l)
	}
	n := imageStaleReminded()
	var vs []string
	for d := 10; d < 20; d++ {
		vs = append(vs, "AKSUbuntu-2204gen2containerd-202603."+string(rune('0'+d/10))+string(rune('0'+d%10))+".0")
	}
	n.Summary = strings.Join(vs, ", ") + `, AKSUbuntu-2204gen2containerd-202603.20.0"><script>`
	l := imageLinks(n)
	if len(l) != maxImageLinks || l[0].version != vs[0] {
		t.Fatalf("imageLinks = %v, want the first %d of %v", l, maxImageLinks, vs)
	}
}

func slackButtonURLs(t *testing.T, doc []byte) []string {
	t.Helper()
	var m struct {
		Blocks []struct {
			Type     string `json:"type"`
			Elements []struct {
				URL string `json:"url"`
			} `json:"elements"`
		} `json:"blocks"`
	}
	if err := json.Unmarshal(doc, &m); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, b := range m.Blocks {
		if b.Type == "actions" {
			for _, e := range b.Elements {
				out = append(out, e.URL)
			}
		}
	}
	return out
}
