package notify

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
)

var allTypes = []string{
	TypeFindingOpened, TypeFindingReminded, TypeFindingResolved,
	TypeRemediationPlanned, TypeRemediationApplied, TypeRemediationFailed,
}

// findingCodes reads the Code* constants from internal/fleet/finding.go, so a
// code added there without a hint here fails TestEveryCodeHasAHint.
func findingCodes(t *testing.T) []string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "../fleet/finding.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var codes []string
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, spec := range g.Specs {
			vs := spec.(*ast.ValueSpec)
			for i, name := range vs.Names {
				if !strings.HasPrefix(name.Name, "Code") || i >= len(vs.Values) {
					continue
				}
				lit, ok := vs.Values[i].(*ast.BasicLit)
				if !ok {
					continue
				}
				v, err := strconv.Unquote(lit.Value)
				if err != nil {
					t.Fatal(err)
				}
				codes = append(codes, v)
			}
		}
	}
	if len(codes) < 18 {
		t.Fatalf("found %d codes in fleet/finding.go, want at least 18", len(codes))
	}
	return codes
}

func TestEveryCodeHasAHint(t *testing.T) {
	codes := findingCodes(t)
	for _, c := range codes {
		if hints[c] == "" {
			t.Errorf("no hint for %s", c)
		}
	}
	for c := range hints {
		if !slices.Contains(codes, c) {
			t.Errorf("hint for %s, which is not a finding code", c)
		}
	}
}

func TestHintFillsIn(t *testing.T) {
	tests := []struct {
		name   string
		change func(n *Notification)
		want   string
	}{
		{"pool from the target", func(n *Notification) {},
			"`az aks nodepool upgrade -g rg-payments-prod --cluster-name aks-payments-weu -n payments --node-image-only`"},
		{"no pool in the target", func(n *Notification) { n.Target = "scheduled/ev-7f3a" }, "-n <pool> --node-image-only"},
		{"channel from the evidence", func(n *Notification) {
			n.Code, n.Target = fleet.CodeChannelDrift, "cluster"
			n.Evidence = mustJSON(map[string]any{"observed": "Unmanaged", "desired": "SecurityPatch"})
		}, "`az aks update -g rg-payments-prod -n aks-payments-weu --node-os-upgrade-channel SecurityPatch`"},
		{"channel unknown", func(n *Notification) {
			n.Code, n.Target, n.Evidence = fleet.CodeUpgradeChannelDrift, "cluster", nil
		}, "--auto-upgrade-channel <channel>`"},
		{"maintenance configuration from the target", func(n *Notification) {
			n.Code, n.Target = fleet.CodeMaintenanceWindowTooShort, "maintenance/aksManagedNodeOSUpgradeSchedule"
		}, "-n aksManagedNodeOSUpgradeSchedule --duration 6`"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := upgradeFailedOpened()
			tc.change(&n)
			if got := hint(n); !strings.Contains(got, tc.want) {
				t.Errorf("got %q, want it to contain %q", got, tc.want)
			}
		})
	}
}

// validateTeams and validateSlack validate a payload against its documented
// schema and fail the test on any violation.
func validateTeams(t *testing.T, s *schema, doc []byte) {
	t.Helper()
	for _, e := range s.Validate(doc) {
		t.Errorf("teams schema: %s", e)
	}
	if len(doc) >= 28<<10 {
		t.Errorf("teams message is %d bytes; Teams refuses 28 KB or more", len(doc))
	}
	v := viewTeams(t, doc)
	for i := range v.texts {
		checkCardText(t, v.text(i))
	}
	for _, f := range v.facts {
		checkCardText(t, f)
	}
}

// cardHazards are the Markdown (and host) constructs no card text may form:
// a link or reference, a tag, autolink or mention, a list item or heading.
// (Emphasis: see checkCardText.)
var cardHazards = []*regexp.Regexp{
	regexp.MustCompile(`\]\s*[(\[:]`),
	regexp.MustCompile(`<[A-Za-z/!?]`),
	regexp.MustCompile(`(?m)^[ \t]*([-+][ \t]|#|[0-9]+[.)]([ \t]|$))`),
}

// checkCardText fails on Teams text that forms any of cardHazards, or has an
// unescaped asterisk, or an unescaped underscore at a word's edge.
func checkCardText(t *testing.T, txt string) {
	t.Helper()
	for _, re := range cardHazards {
		if loc := re.FindStringIndex(txt); loc != nil {
			t.Errorf("teams text forms Markdown (%s) at %q", re, clip(txt[max(0, loc[0]-20):], 60))
		}
	}
	rs := []rune(txt)
	escaped := false
	for i, r := range rs {
		if escaped {
			escaped = false
			continue
		}
		edge := r == '_' && !(isWordRune(runeAt(rs, i-1)) && isWordRune(runeAt(rs, i+1)))
		switch {
		case r == '\\':
			escaped = true
		case r == '*' || edge:
			t.Errorf("teams text has an unescaped %c at %q", r, clip(string(rs[max(0, i-20):]), 60))
		}
	}
}

// unescapeCard undoes escapeCard: what a reader sees.
func unescapeCard(s string) string {
	s = strings.ReplaceAll(s, string(wordJoiner), "")
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) && isASCIIPunct(rune(s[i+1])) {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func validateSlack(t *testing.T, s *schema, doc []byte) {
	t.Helper()
	for _, e := range s.Validate(doc) {
		t.Errorf("slack schema: %s", e)
	}
	for _, txt := range slackMrkdwn(t, doc) {
		checkEscaped(t, txt)
	}
}

// checkEscaped fails on mrkdwn with a raw < or >, or an & that starts no entity.
func checkEscaped(t *testing.T, txt string) {
	t.Helper()
	if strings.ContainsAny(txt, "<>") {
		t.Errorf("mrkdwn has a raw < or >: %q", clip(txt, 200))
	}
	for i := strings.IndexByte(txt, '&'); i >= 0; i = nextAmp(txt, i) {
		rest := txt[i:]
		if !strings.HasPrefix(rest, "&amp;") && !strings.HasPrefix(rest, "&lt;") && !strings.HasPrefix(rest, "&gt;") {
			t.Errorf("mrkdwn has a bare &: %q", clip(rest, 40))
		}
	}
}

func nextAmp(s string, i int) int {
	j := strings.IndexByte(s[i+1:], '&')
	if j < 0 {
		return -1
	}
	return i + 1 + j
}

// Decoded views of the payloads, for assertions.

type teamsView struct {
	texts   []map[string]any // TextBlocks
	facts   map[string]string
	actions []map[string]any
	card    map[string]any
}

func viewTeams(t *testing.T, doc []byte) teamsView {
	t.Helper()
	var m struct {
		Attachments []struct {
			Content map[string]any `json:"content"`
		} `json:"attachments"`
	}
	if err := json.Unmarshal(doc, &m); err != nil || len(m.Attachments) != 1 {
		t.Fatalf("teams message: %v, %d attachments", err, len(m.Attachments))
	}
	v := teamsView{card: m.Attachments[0].Content, facts: map[string]string{}}
	for _, el := range asSlice(v.card["body"]) {
		el := el.(map[string]any)
		switch el["type"] {
		case "TextBlock":
			v.texts = append(v.texts, el)
		case "FactSet":
			for _, f := range asSlice(el["facts"]) {
				f := f.(map[string]any)
				v.facts[f["title"].(string)] = f["value"].(string)
			}
		}
	}
	for _, a := range asSlice(v.card["actions"]) {
		v.actions = append(v.actions, a.(map[string]any))
	}
	return v
}

func (v teamsView) text(i int) string { return v.texts[i]["text"].(string) }

func (v teamsView) has(sub string) bool {
	return slices.ContainsFunc(v.texts, func(tb map[string]any) bool { return strings.Contains(tb["text"].(string), sub) })
}

type slackView struct {
	text   string
	blocks []map[string]any
}

func viewSlack(t *testing.T, doc []byte) slackView {
	t.Helper()
	var m struct {
		Text   string           `json:"text"`
		Blocks []map[string]any `json:"blocks"`
	}
	if err := json.Unmarshal(doc, &m); err != nil {
		t.Fatal(err)
	}
	return slackView{text: m.Text, blocks: m.Blocks}
}

func (v slackView) header() string {
	return v.blocks[0]["text"].(map[string]any)["text"].(string)
}

func (v slackView) block(typ string) map[string]any {
	for _, b := range v.blocks {
		if b["type"] == typ {
			return b
		}
	}
	return nil
}

func (v slackView) sections() []string {
	var out []string
	for _, b := range v.blocks {
		if txt, ok := b["text"].(map[string]any); ok && b["type"] == "section" {
			out = append(out, txt["text"].(string))
		}
	}
	return out
}

func (v slackView) fields() []string {
	var out []string
	for _, b := range v.blocks {
		for _, f := range asSlice(b["fields"]) {
			out = append(out, f.(map[string]any)["text"].(string))
		}
	}
	return out
}

func (v slackView) has(sub string) bool {
	return slices.ContainsFunc(append(v.sections(), v.fields()...), func(s string) bool { return strings.Contains(s, sub) })
}

// slackMrkdwn is every mrkdwn text in a Slack message, the fallback included.
func slackMrkdwn(t *testing.T, doc []byte) []string {
	v := viewSlack(t, doc)
	out := []string{v.text}
	var walk func(x any)
	walk = func(x any) {
		switch x := x.(type) {
		case map[string]any:
			if x["type"] == "mrkdwn" {
				out = append(out, x["text"].(string))
			}
			for _, y := range x {
				walk(y)
			}
		case []any:
			for _, y := range x {
				walk(y)
			}
		}
	}
	for _, b := range v.blocks {
		walk(b)
	}
	return out
}

// forEveryTypeAndCode is one notification per type and finding code, built on
// the fixture closest to it.
func forEveryTypeAndCode(t *testing.T, f func(t *testing.T, n Notification)) {
	for _, typ := range allTypes {
		for _, code := range findingCodes(t) {
			t.Run(typ+"/"+code, func(t *testing.T) {
				var n Notification
				switch typ {
				case TypeFindingOpened:
					n = upgradeFailedOpened()
				case TypeFindingReminded:
					n = imageStaleReminded()
				case TypeFindingResolved:
					n = channelDriftResolved()
				case TypeRemediationPlanned:
					n = imageStalePlanned()
				case TypeRemediationApplied:
					n = channelDriftApplied()
				case TypeRemediationFailed:
					n = imageStaleFailed()
				}
				n.Code = code
				f(t, n)
			})
		}
	}
}

func TestRenderEveryTypeAndCode(t *testing.T) {
	teams := loadSchema(t, "testdata/teams-message.schema.json")
	slack := loadSchema(t, "testdata/slack-message.schema.json")
	forEveryTypeAndCode(t, func(t *testing.T, n Notification) {
		tdoc, err := TeamsCard(n)
		if err != nil {
			t.Fatal(err)
		}
		sdoc, err := SlackMessage(n)
		if err != nil {
			t.Fatal(err)
		}
		validateTeams(t, teams, tdoc)
		validateSlack(t, slack, sdoc)

		tv, sv := viewTeams(t, tdoc), viewSlack(t, sdoc)
		// What happened: severity and code in the headline.
		for _, want := range []string{"[" + n.Severity + "]", n.Code, "aks-payments-weu"} {
			if !strings.Contains(tv.text(0), want) {
				t.Errorf("teams headline %q lacks %q", tv.text(0), want)
			}
			if !strings.Contains(sv.header(), want) {
				t.Errorf("slack header %q lacks %q", sv.header(), want)
			}
		}
		// Where and since when.
		for _, title := range []string{"Cluster", "Target", "Severity", "Since"} {
			if tv.facts[title] == "" {
				t.Errorf("teams: no %s fact", title)
			}
			if !slices.ContainsFunc(sv.fields(), func(f string) bool { return strings.HasPrefix(f, "*"+title+"*\n") }) {
				t.Errorf("slack: no %s field", title)
			}
		}
		// What to do: the code's own hint, while someone has something to do.
		if n.Type == TypeFindingOpened || n.Type == TypeFindingReminded || n.Type == TypeRemediationFailed {
			h := hint(n)
			if !tv.has(escapeCard(h)) {
				t.Errorf("teams: the hint for %s is missing", n.Code)
			}
			if !sv.has(escapeMrkdwn(h)) {
				t.Errorf("slack: the hint for %s is missing", n.Code)
			}
		}
		if h := hints[n.Code]; n.Type == TypeFindingResolved && h != "" && tv.has(h[:20]) {
			t.Error("teams: a resolved finding still says what to do about it")
		}
		// The status link first; any others are release notes (releasenotes_test.go).
		if len(tv.actions) < 1 || tv.actions[0]["url"] != paymentsStatus {
			t.Errorf("teams actions: got %v, want the first opening %s", tv.actions, paymentsStatus)
		}
		for _, a := range tv.actions[min(1, len(tv.actions)):] {
			if u, _ := a["url"].(string); !strings.HasPrefix(u, "https://github.com/Azure/AgentBaker/") && u != "https://releases.aks.azure.com/" {
				t.Errorf("teams action %v: neither the status nor release notes", a)
			}
		}
		if b := sv.block("actions"); b == nil || asSlice(b["elements"])[0].(map[string]any)["url"] != paymentsStatus {
			t.Errorf("slack actions: got %v, want a button opening %s", b, paymentsStatus)
		}
	})
}

func TestRenderFixtures(t *testing.T) {
	teams := loadSchema(t, "testdata/teams-message.schema.json")
	slack := loadSchema(t, "testdata/slack-message.schema.json")
	tests := []struct {
		name        string
		n           Notification
		headline    string
		facts       map[string]string
		teamsHas    []string // in some TextBlock
		slackHas    []string // in some section or field
		noStatusURL bool
	}{
		{
			name:     "upgrade-failed-opened",
			n:        upgradeFailedOpened(),
			headline: "[Error] UpgradeFailed opened on aks-payments-weu, pool payments",
			facts: map[string]string{
				"Cluster": "aks-payments-weu (resource group rg-payments-prod)", "Target": "pool payments",
				"Severity": "Error", "Since": "2026-03-14 02:48 UTC", "Subscription": payments.SubscriptionID,
			},
			teamsHas: []string{"blocked by pdb payments-api-pdb (MinAvailable: 3)",
				"`az aks nodepool upgrade -g rg-payments-prod --cluster-name aks-payments-weu -n payments --node-image-only`",
				`"requestedBy":""`},
			slackHas: []string{"*aks-payments-weu, pool payments*\nthe last upgrade of pool payments failed: Drain node",
				"*What to do*\nRead the evidence", "```{\n  \"correlationId\": \"\",\n"},
		},
		{
			name:     "image-stale-reminded",
			n:        imageStaleReminded(),
			headline: "[Warning] ImageStale still open on aks-payments-weu, pool batch (newest image) (reminder 2)",
			facts:    map[string]string{"Since": "2026-03-14 08:55 UTC (open 2 d 0 h)", "Reminder": "2", "Target": "pool batch (newest image)"},
			teamsHas: []string{"-n batch --node-image-only"},
			slackHas: []string{"*Reminder*\n2"},
		},
		{
			name:     "channel-drift-resolved",
			n:        channelDriftResolved(),
			headline: "[Warning] ChannelDrift resolved on aks-payments-weu",
			facts:    map[string]string{"Target": "the cluster", "Since": "2026-03-14 10:17 UTC", "Resolved": "2026-03-14 15:31 UTC (after 5 h 14 min)"},
			teamsHas: []string{"Nothing: the condition no longer holds."},
			slackHas: []string{"*Resolved*\n2026-03-14 15:31 UTC (after 5 h 14 min)"},
		},
		{
			name:     "image-stale-planned",
			n:        imageStalePlanned(),
			headline: "[Warning] ImageStale: fix planned (dry run) on aks-payments-weu, pool payments",
			facts:    map[string]string{"Action": "upgradeNodeImageVersion", "Mode": "dry run"},
			teamsHas: []string{"would upgrade pool payments to AKSUbuntu-2204gen2containerd-202603.09.0", "Dry run: nothing was changed."},
			slackHas: []string{"*Detail*\nwould upgrade pool payments", "*Mode*\ndry run"},
		},
		{
			name:     "channel-drift-applied",
			n:        channelDriftApplied(),
			headline: "[Warning] ChannelDrift: fix applied on aks-payments-weu",
			facts:    map[string]string{"Action": "setNodeOSUpgradeChannel", "Mode": "apply"},
			teamsHas: []string{"Unmanaged → NodeImage"},
			slackHas: []string{"Unmanaged → NodeImage"},
		},
		{
			name:     "image-stale-failed",
			n:        imageStaleFailed(),
			headline: "[Warning] ImageStale: fix failed on aks-payments-weu, pool payments",
			facts:    map[string]string{"Action": "upgradeNodeImageVersion", "Mode": "apply"},
			teamsHas: []string{"Error: (OperationNotAllowed)", "upgradewatch could not fix this; do it by hand."},
			slackHas: []string{"*Error*\n(OperationNotAllowed)"},
		},
		{
			name:        "reboots-unmanaged-opened",
			n:           rebootsUnmanagedOpened(),
			headline:    "[Info] RebootsUnmanaged opened on aks-payments-weu",
			facts:       map[string]string{"Target": "the cluster", "Severity": "Info"},
			teamsHas:    []string{"run a reboot manager such as kured"},
			slackHas:    []string{"run a reboot manager such as kured"},
			noStatusURL: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tdoc, err := TeamsCard(tc.n)
			if err != nil {
				t.Fatal(err)
			}
			sdoc, err := SlackMessage(tc.n)
			if err != nil {
				t.Fatal(err)
			}
			validateTeams(t, teams, tdoc)
			validateSlack(t, slack, sdoc)
			tv, sv := viewTeams(t, tdoc), viewSlack(t, sdoc)
			if got := tv.text(0); got != tc.headline {
				t.Errorf("teams headline: got %q, want %q", got, tc.headline)
			}
			if got := sv.header(); got != tc.headline {
				t.Errorf("slack header: got %q, want %q", got, tc.headline)
			}
			for title, want := range tc.facts {
				if got := tv.facts[title]; got != want {
					t.Errorf("teams fact %s: got %q, want %q", title, got, want)
				}
				if !slices.Contains(sv.fields(), "*"+title+"*\n"+escapeMrkdwn(want)) {
					t.Errorf("slack: no field %q in %q", "*"+title+"*\n"+want, sv.fields())
				}
			}
			for _, s := range tc.teamsHas {
				if !tv.has(s) {
					t.Errorf("teams: no TextBlock has %q", s)
				}
			}
			for _, s := range tc.slackHas {
				if !sv.has(s) {
					t.Errorf("slack: no section or field has %q", s)
				}
			}
			if tc.noStatusURL {
				if tv.actions != nil || sv.block("actions") != nil {
					t.Error("a status button without a status URL")
				}
				if tv.has("Evidence") || sv.has("*Evidence*") {
					t.Error(`"{}" evidence was rendered`)
				}
			}
		})
	}
}

func TestRenderGolden(t *testing.T) {
	for _, name := range []string{"upgrade-failed-opened", "channel-drift-resolved", "image-stale-failed"} {
		t.Run(name, func(t *testing.T) {
			n := allFixtures()[name]
			tdoc, err := TeamsCard(n)
			if err != nil {
				t.Fatal(err)
			}
			sdoc, err := SlackMessage(n)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, name+".teams.json", tdoc)
			golden(t, name+".slack.json", sdoc)
		})
	}
}

func TestRenderLong(t *testing.T) {
	teams := loadSchema(t, "testdata/teams-message.schema.json")
	slack := loadSchema(t, "testdata/slack-message.schema.json")
	// Multi-byte runes and characters Slack escapes, so that a cut can land
	// inside a rune or an entity.
	unit := "é🚀&<>x "
	long := strings.Repeat(unit, 2000) // 14 000 runes
	failures := make([]map[string]any, 200)
	for i := range failures {
		failures[i] = map[string]any{"at": "2026-03-14T02:47:50Z", "message": pdbMessage + " <&>"}
	}
	n := upgradeFailedOpened()
	n.Summary = long
	n.Target = "scheduled/" + strings.Repeat("ev-7f3a", 40)
	n.Evidence = mustJSON(map[string]any{"failures": failures})
	n.Remediation = &RemediationStep{Action: "upgradeNodeImageVersion", Detail: long, Error: long}
	n.Type = TypeRemediationFailed
	n.StatusURL = "https://func-upgradewatch-prod.azurewebsites.net/api/clusters/x?pad=" + strings.Repeat("p", 3000)

	tdoc, err := TeamsCard(n)
	if err != nil {
		t.Fatal(err)
	}
	sdoc, err := SlackMessage(n)
	if err != nil {
		t.Fatal(err)
	}
	validateTeams(t, teams, tdoc)
	validateSlack(t, slack, sdoc)

	for name, doc := range map[string][]byte{"teams": tdoc, "slack": sdoc} {
		if !utf8.Valid(doc) || strings.Contains(string(doc), "\uFFFD") {
			t.Errorf("%s: a rune was cut in two", name)
		}
	}
	tv, sv := viewTeams(t, tdoc), viewSlack(t, sdoc)
	if got := utf8.RuneCountInString(tv.text(1)); got != teamsSummaryMax || !strings.HasSuffix(tv.text(1), "…") {
		t.Errorf("teams summary: %d runes ending %q, want %d ending …", got, tv.text(1)[len(tv.text(1))-8:], teamsSummaryMax)
	}
	if h := sv.header(); utf8.RuneCountInString(h) != slackHeaderMax || !strings.HasSuffix(h, "…") {
		t.Errorf("slack header: %d runes, want %d ending in …", utf8.RuneCountInString(h), slackHeaderMax)
	}
	for _, s := range sv.sections() {
		if strings.HasPrefix(s, "*Evidence*") && !strings.HasSuffix(s, "…```") {
			t.Errorf("slack evidence: not clipped inside its code block: …%q", s[len(s)-20:])
		}
	}
	if sv.block("actions") != nil {
		t.Error("slack: a button for a URL over 3000 characters (it would be refused or broken)")
	}
}

func TestRenderEscaping(t *testing.T) {
	hostile := `<script>alert("x")</script> & <!channel> <https://evil.example|click here> &amp; *bold*`
	n := upgradeFailedOpened()
	n.Code, n.Target = fleet.CodeNoSecurityUpdates, "pool/win22"
	n.Summary = hostile
	n.Evidence = mustJSON(map[string]any{"note": hostile, "fence": "```"})

	sdoc, err := SlackMessage(n)
	if err != nil {
		t.Fatal(err)
	}
	validateSlack(t, loadSchema(t, "testdata/slack-message.schema.json"), sdoc) // checks every mrkdwn text is escaped
	sv := viewSlack(t, sdoc)
	want := `&lt;script&gt;alert("x")&lt;/script&gt; &amp; &lt;!channel&gt; &lt;https://evil.example|click here&gt; &amp;amp; *bold*`
	if !strings.Contains(sv.sections()[0], want) {
		t.Errorf("slack summary: got %q, want it to contain %q", sv.sections()[0], want)
	}
	if !strings.HasSuffix(sv.text, want) {
		t.Errorf("slack fallback text: got %q, want it to end in %q", sv.text, want)
	}
	// The evidence cannot close its code block early.
	for _, s := range sv.sections() {
		if strings.HasPrefix(s, "*Evidence*") && strings.Count(s, "```") != 2 {
			t.Errorf("slack evidence has %d fences, want 2: %q", strings.Count(s, "```"), s)
		}
	}

	tdoc, err := TeamsCard(n)
	if err != nil {
		t.Fatal(err)
	}
	validateTeams(t, loadSchema(t, "testdata/teams-message.schema.json"), tdoc) // checks no text forms Markdown
	// Adaptive Cards are JSON: the text is escaped for Markdown, not for HTML,
	// and the JSON itself does not \u-escape < > & either.
	if got := viewTeams(t, tdoc).text(1); unescapeCard(got) != hostile {
		t.Errorf("teams summary reads %q, want %q", unescapeCard(got), hostile)
	}
	if regexp.MustCompile(`\\u00(3c|3e|26)|&lt;`).Match(tdoc) {
		t.Errorf("teams message is escaped: %s", tdoc)
	}
}

// An escalation is a reminder that says from which severity it rose, in the
// CloudEvent data and in both chat payloads.
func TestRenderEscalation(t *testing.T) {
	n := imageStaleReminded()
	n.Code, n.Target, n.Severity, n.EscalatedFrom = fleet.CodeUpgradeStalled, "pool/batch", fleet.SeverityError, fleet.SeverityWarning
	n.Summary = "pool batch has been upgrading for 26h (expected at most 24h)"
	ev, err := n.CloudEvent("")
	if err != nil {
		t.Fatal(err)
	}
	var data map[string]any
	if err := json.Unmarshal(ev.Data(), &data); err != nil || data["escalatedFrom"] != "Warning" || data["severity"] != "Error" {
		t.Fatalf("data = %s (%v), want escalatedFrom Warning and severity Error", ev.Data(), err)
	}
	tdoc, err := TeamsCard(n)
	if err != nil {
		t.Fatal(err)
	}
	sdoc, err := SlackMessage(n)
	if err != nil {
		t.Fatal(err)
	}
	validateTeams(t, loadSchema(t, "testdata/teams-message.schema.json"), tdoc)
	validateSlack(t, loadSchema(t, "testdata/slack-message.schema.json"), sdoc)
	tv, sv := viewTeams(t, tdoc), viewSlack(t, sdoc)
	if h := tv.text(0); !strings.Contains(h, "UpgradeStalled escalated from Warning") {
		t.Errorf("teams headline %q", h)
	}
	if h := sv.header(); !strings.Contains(h, "escalated from Warning") {
		t.Errorf("slack header %q", h)
	}
	if got := tv.facts["Escalated"]; got != "Warning → Error" {
		t.Errorf("teams Escalated fact = %q", got)
	}
}

// A hostile status message, name or error shows in a Teams card as the text
// it is: no link, autolink, mention, emphasis or list forms, the only link is
// our own button, and the card still validates.
func TestTeamsCardKeepsInputLiteral(t *testing.T) {
	hostile := []string{
		"[click](https://evil.example)",
		"Upgrade now: [aka.ms/fix](https://evil.example/phish \"Microsoft\")",
		"<https://evil.example>",
		"<at>Adele Vance</at> <at>General</at>",
		"**urgent** _now_ *really* __now__",
		"- item\n+ item\n* item\n1. first\n2) second\n# Heading",
		`\[click\](https://evil.example) \*x\*`,
		"[ref]: https://evil.example\n[click][ref]",
		"<script>alert(1)</script> &lt;b&gt; &amp;",
	}
	teams := loadSchema(t, "testdata/teams-message.schema.json")
	for _, h := range hostile {
		t.Run(h, func(t *testing.T) {
			n := upgradeFailedOpened()
			n.Type, n.Summary = TypeRemediationFailed, h
			n.Cluster.ResourceGroup = h
			n.Target = "scheduled/" + h
			n.Evidence = mustJSON(map[string]any{"message": h})
			n.Remediation = &RemediationStep{Action: "upgradeNodeImageVersion", Detail: h, Error: h}
			doc, err := TeamsCard(n)
			if err != nil {
				t.Fatal(err)
			}
			validateTeams(t, teams, doc) // and no text forms Markdown
			v := viewTeams(t, doc)
			if got := unescapeCard(v.text(1)); got != h {
				t.Errorf("summary reads %q, want %q", got, h)
			}
			if got := unescapeCard(v.facts["Cluster"]); !strings.Contains(got, h) {
				t.Errorf("cluster fact reads %q, want it to contain %q", got, h)
			}
			if !slices.ContainsFunc(v.texts, func(tb map[string]any) bool { return unescapeCard(tb["text"].(string)) == "Error: "+h }) {
				t.Errorf("no error text reading %q", "Error: "+h)
			}
			if len(v.actions) != 1 || v.actions[0]["url"] != paymentsStatus {
				t.Errorf("actions = %v, want only our status button", v.actions)
			}
		})
	}
}

func TestEscapeCard(t *testing.T) {
	tests := []struct{ in, want string }{
		{"aks-payments-weu in rg_payments_prod", "aks-payments-weu in rg_payments_prod"},
		{"[click](https://evil.example)", "[click]\u2060(https://evil.example)"},
		{"<at>x</at>", "<\u2060at>x<\u2060/at>"},
		{"**b** _i_", `\*\*b\*\* \_i\_`},
		{"- a\n  12. b\n# c", "\\- a\n  12\\. b\n\\# c"},
		{"pool 1.31.9 - see http://aka.ms/x", "pool 1.31.9 - see http://aka.ms/x"},
		{`a\*b`, `a\\\*b`},
		{`C:\path`, `C:\path`},
	}
	for _, tc := range tests {
		if got := escapeCard(tc.in); got != tc.want {
			t.Errorf("escapeCard(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if got := unescapeCard(escapeCard(tc.in)); got != tc.in {
			t.Errorf("escapeCard(%q) reads %q", tc.in, got)
		}
	}
}

// FuzzEscapeCard: whatever a status message holds, the Teams text reads as
// written and forms no Markdown.
func FuzzEscapeCard(f *testing.F) {
	for _, s := range []string{"[click](https://evil.example)", "<at>x</at>", "**b** _i_", "- a\n1. b\n# c", `\*x\*`, pdbMessage,
		"rg_payments_prod", "]\u2060(", "9.\n\r-\t"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			return
		}
		got := escapeCard(s)
		if unescapeCard(got) != strings.ReplaceAll(s, string(wordJoiner), "") {
			t.Fatalf("escapeCard(%q) = %q reads %q", s, got, unescapeCard(got))
		}
		checkCardText(t, got)
	})
}
