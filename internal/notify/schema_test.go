package notify

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// schema is a JSON Schema (draft 2020-12) validator for the keywords the
// schemas in testdata use, and no more. Loading a schema with any other
// keyword fails, so a schema can never ask for a check that is silently
// skipped.
type schema struct {
	root     map[string]any
	patterns map[string]*regexp.Regexp
}

var schemaKeywords = map[string]bool{
	// annotations
	"$schema": true, "$id": true, "$comment": true, "title": true, "description": true, "$defs": true,
	// assertions and applicators
	"$ref": true, "type": true, "const": true, "enum": true, "required": true, "properties": true,
	"additionalProperties": true, "items": true, "minItems": true, "maxItems": true,
	"minLength": true, "maxLength": true, "pattern": true, "oneOf": true, "anyOf": true,
}

func loadSchema(t *testing.T, path string) *schema {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var root map[string]any
	if err := json.Unmarshal(b, &root); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	s := &schema{root: root, patterns: map[string]*regexp.Regexp{}}
	if err := s.compile(root, "#"); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return s
}

// compile checks every keyword is known, every $ref resolves and every
// pattern compiles.
func (s *schema) compile(node map[string]any, at string) error {
	for k, v := range node {
		if !schemaKeywords[k] {
			return fmt.Errorf("%s: unsupported keyword %q", at, k)
		}
		switch k {
		case "properties", "$defs":
			for name, sub := range v.(map[string]any) {
				if err := s.compile(sub.(map[string]any), at+"/"+k+"/"+name); err != nil {
					return err
				}
			}
		case "items", "additionalProperties":
			if sub, ok := v.(map[string]any); ok {
				if err := s.compile(sub, at+"/"+k); err != nil {
					return err
				}
			}
		case "oneOf", "anyOf":
			for i, sub := range v.([]any) {
				if err := s.compile(sub.(map[string]any), fmt.Sprintf("%s/%s/%d", at, k, i)); err != nil {
					return err
				}
			}
		case "$ref":
			if _, err := s.resolve(v.(string)); err != nil {
				return fmt.Errorf("%s: %w", at, err)
			}
		case "pattern":
			re, err := regexp.Compile(v.(string))
			if err != nil {
				return fmt.Errorf("%s: %w", at, err)
			}
			s.patterns[v.(string)] = re
		}
	}
	return nil
}

func (s *schema) resolve(ref string) (map[string]any, error) {
	name, ok := strings.CutPrefix(ref, "#/$defs/")
	if !ok {
		return nil, fmt.Errorf("only local #/$defs/ references are supported: %q", ref)
	}
	defs, _ := s.root["$defs"].(map[string]any)
	def, ok := defs[name].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("unresolved $ref %q", ref)
	}
	return def, nil
}

// Validate returns every violation, each with the JSON pointer of the value.
func (s *schema) Validate(doc []byte) []string {
	var v any
	if err := json.Unmarshal(doc, &v); err != nil {
		return []string{"not JSON: " + err.Error()}
	}
	return s.check(s.root, v, "")
}

func (s *schema) check(node map[string]any, v any, at string) []string {
	var errs []string
	fail := func(format string, args ...any) {
		errs = append(errs, fmt.Sprintf("%s: ", cmpOr(at, "/"))+fmt.Sprintf(format, args...))
	}
	if ref, ok := node["$ref"].(string); ok {
		def, _ := s.resolve(ref) // compiled
		errs = append(errs, s.check(def, v, at)...)
	}
	if t, ok := node["type"].(string); ok && !hasType(v, t) {
		fail("want %s, got %s", t, jsonType(v))
		return errs // the other keywords would only repeat it
	}
	if c, ok := node["const"]; ok && !reflect.DeepEqual(c, v) {
		fail("want %v, got %v", c, v)
	}
	if e, ok := node["enum"].([]any); ok && !slices.ContainsFunc(e, func(x any) bool { return reflect.DeepEqual(x, v) }) {
		fail("%v is not one of %v", v, e)
	}
	switch v := v.(type) {
	case map[string]any:
		for _, r := range asStrings(node["required"]) {
			if _, ok := v[r]; !ok {
				fail("missing required %q", r)
			}
		}
		props, _ := node["properties"].(map[string]any)
		for name, val := range v {
			if sub, ok := props[name].(map[string]any); ok {
				errs = append(errs, s.check(sub, val, at+"/"+name)...)
				continue
			}
			switch ap := node["additionalProperties"].(type) {
			case bool:
				if !ap {
					fail("property %q is not allowed", name)
				}
			case map[string]any:
				errs = append(errs, s.check(ap, val, at+"/"+name)...)
			}
		}
	case []any:
		if n, ok := node["minItems"].(float64); ok && float64(len(v)) < n {
			fail("%d items, want at least %v", len(v), n)
		}
		if n, ok := node["maxItems"].(float64); ok && float64(len(v)) > n {
			fail("%d items, want at most %v", len(v), n)
		}
		if items, ok := node["items"].(map[string]any); ok {
			for i, item := range v {
				errs = append(errs, s.check(items, item, fmt.Sprintf("%s/%d", at, i))...)
			}
		}
	case string:
		n := utf8.RuneCountInString(v)
		if m, ok := node["minLength"].(float64); ok && float64(n) < m {
			fail("%d characters, want at least %v", n, m)
		}
		if m, ok := node["maxLength"].(float64); ok && float64(n) > m {
			fail("%d characters, want at most %v", n, m)
		}
		if p, ok := node["pattern"].(string); ok && !s.patterns[p].MatchString(v) {
			fail("%q does not match %s", clip(v, 80), p)
		}
	}
	if alts, ok := node["oneOf"].([]any); ok {
		var best []string
		matched := 0
		for _, alt := range alts {
			e := s.check(alt.(map[string]any), v, at)
			if len(e) == 0 {
				matched++
			} else if best == nil || len(e) < len(best) {
				best = e
			}
		}
		switch {
		case matched == 0:
			errs = append(errs, best...) // the closest alternative's complaints
		case matched > 1:
			fail("matches %d alternatives of oneOf, want exactly one", matched)
		}
	}
	if alts, ok := node["anyOf"].([]any); ok {
		if !slices.ContainsFunc(alts, func(alt any) bool { return len(s.check(alt.(map[string]any), v, at)) == 0 }) {
			fail("matches none of anyOf %v", alts)
		}
	}
	return errs
}

func hasType(v any, t string) bool {
	switch t {
	case "integer":
		f, ok := v.(float64)
		return ok && f == math.Trunc(f)
	case "number":
		_, ok := v.(float64)
		return ok
	}
	return jsonType(v) == t
}

func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case float64:
		return "number"
	case string:
		return "string"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

func asStrings(v any) []string {
	var out []string
	for _, x := range asSlice(v) {
		out = append(out, x.(string))
	}
	return out
}

func asSlice(v any) []any { s, _ := v.([]any); return s }

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// TestSchemaValidatorCatches proves the validator and the schemas can fail:
// each case breaks one documented rule in an otherwise valid payload.
func TestSchemaValidatorCatches(t *testing.T) {
	teams := loadSchema(t, "testdata/teams-message.schema.json")
	slack := loadSchema(t, "testdata/slack-message.schema.json")
	n := upgradeFailedOpened()
	teamsDoc, err := TeamsCard(n)
	if err != nil {
		t.Fatal(err)
	}
	slackDoc, err := SlackMessage(n)
	if err != nil {
		t.Fatal(err)
	}
	if errs := teams.Validate(teamsDoc); len(errs) > 0 {
		t.Fatalf("the unbroken Teams card is invalid: %v", errs)
	}
	if errs := slack.Validate(slackDoc); len(errs) > 0 {
		t.Fatalf("the unbroken Slack message is invalid: %v", errs)
	}
	card := func(m map[string]any) map[string]any {
		return m["attachments"].([]any)[0].(map[string]any)["content"].(map[string]any)
	}
	body := func(m map[string]any) []any { return card(m)["body"].([]any) }
	blocks := func(m map[string]any) []any { return m["blocks"].([]any) }
	block := func(m map[string]any, typ string) map[string]any {
		for _, b := range blocks(m) {
			if b := b.(map[string]any); b["type"] == typ {
				return b
			}
		}
		t.Fatalf("no %s block", typ)
		return nil
	}
	fieldsBlock := func(m map[string]any) map[string]any {
		for _, b := range blocks(m) {
			if b := b.(map[string]any); b["fields"] != nil {
				return b
			}
		}
		t.Fatal("no fields section")
		return nil
	}
	long := strings.Repeat("x", 3001)

	tests := []struct {
		name   string
		schema *schema
		doc    []byte
		breaks func(m map[string]any)
		want   string // in one of the errors
	}{
		{"teams: envelope type", teams, teamsDoc, func(m map[string]any) { m["type"] = "card" }, "/type"},
		{"teams: contentType", teams, teamsDoc, func(m map[string]any) {
			m["attachments"].([]any)[0].(map[string]any)["contentType"] = "application/json"
		}, "/attachments/0/contentType"},
		{"teams: contentUrl not null", teams, teamsDoc, func(m map[string]any) {
			m["attachments"].([]any)[0].(map[string]any)["contentUrl"] = "https://example.com/card.json"
		}, "want null"},
		{"teams: card version 1.6", teams, teamsDoc, func(m map[string]any) { card(m)["version"] = "1.6" }, "/version"},
		{"teams: no body", teams, teamsDoc, func(m map[string]any) { delete(card(m), "body") }, `missing required "body"`},
		{"teams: unknown element type", teams, teamsDoc, func(m map[string]any) {
			body(m)[0].(map[string]any)["type"] = "RichTextBlock"
		}, "/body/0/type"},
		{"teams: wrap missing", teams, teamsDoc, func(m map[string]any) { delete(body(m)[0].(map[string]any), "wrap") }, `missing required "wrap"`},
		{"teams: wrap a string", teams, teamsDoc, func(m map[string]any) { body(m)[0].(map[string]any)["wrap"] = "true" }, "/body/0/wrap"},
		{"teams: wrap false", teams, teamsDoc, func(m map[string]any) { body(m)[0].(map[string]any)["wrap"] = false }, "/body/0/wrap"},
		{"teams: misspelt property", teams, teamsDoc, func(m map[string]any) { body(m)[0].(map[string]any)["colour"] = "Good" }, `"colour" is not allowed`},
		{"teams: bad color", teams, teamsDoc, func(m map[string]any) { body(m)[0].(map[string]any)["color"] = "Red" }, "/body/0/color"},
		{"teams: fact value a number", teams, teamsDoc, func(m map[string]any) {
			for _, el := range body(m) {
				if el := el.(map[string]any); el["type"] == "FactSet" {
					el["facts"].([]any)[0].(map[string]any)["value"] = 3
				}
			}
		}, "/facts/0/value"},
		{"teams: fact without title", teams, teamsDoc, func(m map[string]any) {
			for _, el := range body(m) {
				if el := el.(map[string]any); el["type"] == "FactSet" {
					delete(el["facts"].([]any)[0].(map[string]any), "title")
				}
			}
		}, `missing required "title"`},
		{"teams: OpenUrl without url", teams, teamsDoc, func(m map[string]any) {
			delete(card(m)["actions"].([]any)[0].(map[string]any), "url")
		}, `missing required "url"`},
		{"teams: OpenUrl url not http", teams, teamsDoc, func(m map[string]any) {
			card(m)["actions"].([]any)[0].(map[string]any)["url"] = "javascript:alert(1)"
		}, "does not match"},
		{"teams: Action.Submit", teams, teamsDoc, func(m map[string]any) {
			card(m)["actions"].([]any)[0].(map[string]any)["type"] = "Action.Submit"
		}, "/actions/0/type"},

		{"slack: no text", slack, slackDoc, func(m map[string]any) { delete(m, "text") }, `missing required "text"`},
		{"slack: 51 blocks", slack, slackDoc, func(m map[string]any) {
			bs := blocks(m)
			for len(bs) < 51 {
				bs = append(bs, map[string]any{"type": "divider"})
			}
			m["blocks"] = bs
		}, "want at most 50"},
		{"slack: unknown block type", slack, slackDoc, func(m map[string]any) { blocks(m)[0].(map[string]any)["type"] = "rich_text" }, "/blocks/0"},
		{"slack: header 151", slack, slackDoc, func(m map[string]any) {
			block(m, "header")["text"].(map[string]any)["text"] = strings.Repeat("h", 151)
		}, "want at most 150"},
		{"slack: header mrkdwn", slack, slackDoc, func(m map[string]any) {
			block(m, "header")["text"].(map[string]any)["type"] = "mrkdwn"
		}, "/blocks/0/text/type"},
		{"slack: section text 3001", slack, slackDoc, func(m map[string]any) {
			blocks(m)[1].(map[string]any)["text"].(map[string]any)["text"] = long
		}, "want at most 3000"},
		{"slack: section empty", slack, slackDoc, func(m map[string]any) {
			delete(blocks(m)[1].(map[string]any), "text")
		}, "anyOf"},
		{"slack: 11 fields", slack, slackDoc, func(m map[string]any) {
			b := fieldsBlock(m)
			fs := b["fields"].([]any)
			for len(fs) < 11 {
				fs = append(fs, map[string]any{"type": "mrkdwn", "text": "*x*\ny"})
			}
			b["fields"] = fs
		}, "want at most 10"},
		{"slack: field 2001", slack, slackDoc, func(m map[string]any) {
			fieldsBlock(m)["fields"].([]any)[0].(map[string]any)["text"] = strings.Repeat("f", 2001)
		}, "want at most 2000"},
		{"slack: button text 76", slack, slackDoc, func(m map[string]any) {
			block(m, "actions")["elements"].([]any)[0].(map[string]any)["text"].(map[string]any)["text"] = strings.Repeat("b", 76)
		}, "want at most 75"},
		{"slack: button url 3001", slack, slackDoc, func(m map[string]any) {
			block(m, "actions")["elements"].([]any)[0].(map[string]any)["url"] = "https://example.com/" + long
		}, "want at most 3000"},
		{"slack: text object without type", slack, slackDoc, func(m map[string]any) {
			delete(block(m, "context")["elements"].([]any)[0].(map[string]any), "type")
		}, `missing required "type"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var m map[string]any
			if err := json.Unmarshal(tc.doc, &m); err != nil {
				t.Fatal(err)
			}
			tc.breaks(m)
			broken, err := json.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			errs := tc.schema.Validate(broken)
			if len(errs) == 0 {
				t.Fatalf("got no violation, want one mentioning %q", tc.want)
			}
			if !slices.ContainsFunc(errs, func(e string) bool { return strings.Contains(e, tc.want) }) {
				t.Errorf("got %q, want a violation mentioning %q", errs, tc.want)
			}
		})
	}
}

func TestSchemaRefusesUnknownKeywords(t *testing.T) {
	s := &schema{patterns: map[string]*regexp.Regexp{}}
	s.root = map[string]any{"type": "object", "properties": map[string]any{"x": map[string]any{"format": "uri"}}}
	if err := s.compile(s.root, "#"); err == nil || !strings.Contains(err.Error(), `"format"`) {
		t.Errorf("got %v, want an error naming the unsupported keyword", err)
	}
}
