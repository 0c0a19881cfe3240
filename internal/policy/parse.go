package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
)

// Document field names, which are also the tag names after TagPrefix.
const (
	fieldNodeOSChannel          = "nodeOSChannel"
	fieldUpgradeChannel         = "upgradeChannel"
	fieldMaxImageAgeDays        = "maxImageAgeDays"
	fieldImageGraceDays         = "imageGraceDays"
	fieldStallHours             = "stallHours"
	fieldMinWindowHours         = "minWindowHours"
	fieldRequireNodeOSWindow    = "requireNodeOSWindow"
	fieldRemediate              = "remediate"
	fieldRemediateOutsideWindow = "remediateOutsideWindow"
)

// fieldNames is the document order, which is also the order tags apply in.
var fieldNames = []string{
	fieldNodeOSChannel, fieldUpgradeChannel, fieldMaxImageAgeDays, fieldImageGraceDays,
	fieldStallHours, fieldMinWindowHours, fieldRequireNodeOSWindow, fieldRemediate, fieldRemediateOutsideWindow,
}

var fieldByLower = func() map[string]string {
	m := make(map[string]string, len(fieldNames))
	for _, f := range fieldNames {
		m[strings.ToLower(f)] = f
	}
	return m
}()

var (
	nodeOSChannels  = []string{fleet.ChannelNone, fleet.ChannelUnmanaged, fleet.ChannelSecurityPatch, fleet.ChannelNodeImage}
	upgradeChannels = []string{fleet.UpgradeNone, fleet.UpgradePatch, fleet.UpgradeStable, fleet.UpgradeRapid, fleet.UpgradeNodeImage}
	remediateModes  = []string{fleet.RemediateOff, fleet.RemediateDryRun, fleet.RemediateApply}
)

// Pool OS types (agentPoolProfiles osType).
const (
	osLinux   = "Linux"
	osWindows = "Windows"
)

var osTypes = []string{osLinux, osWindows}

// Bounds of the numeric fields. Outside them a value is a typo, not a policy.
var bounds = map[string][2]int{
	fieldMaxImageAgeDays: {1, 365},
	fieldImageGraceDays:  {0, 90},
	fieldStallHours:      {1, 168},
	fieldMinWindowHours:  {1, 24},
}

// fields is one source's settings; nil leaves a field to the earlier sources.
type fields struct {
	NodeOSChannel          *string `json:"nodeOSChannel"`
	UpgradeChannel         *string `json:"upgradeChannel"`
	MaxImageAgeDays        *int    `json:"maxImageAgeDays"`
	ImageGraceDays         *int    `json:"imageGraceDays"`
	StallHours             *int    `json:"stallHours"`
	MinWindowHours         *int    `json:"minWindowHours"`
	RequireNodeOSWindow    *bool   `json:"requireNodeOSWindow"`
	Remediate              *string `json:"remediate"`
	RemediateOutsideWindow *bool   `json:"remediateOutsideWindow"`
}

// fieldError is one field's unusable value.
type fieldError struct {
	field, value, reason string // value as written (quoted when a string)
}

func (e *fieldError) Error() string { return fmt.Sprintf("%s %s: %s", e.field, e.value, e.reason) }

// normalise validates the fields set and rewrites channel and mode values in
// their canonical spelling.
func (f *fields) normalise() *fieldError {
	for _, s := range []struct {
		name    string
		v       *string
		allowed []string
		what    string
	}{
		{fieldNodeOSChannel, f.NodeOSChannel, nodeOSChannels, "a node OS channel"},
		{fieldUpgradeChannel, f.UpgradeChannel, upgradeChannels, "an upgrade channel"},
		{fieldRemediate, f.Remediate, remediateModes, "a remediation mode"},
	} {
		if s.v == nil {
			continue
		}
		c, ok := canonical(*s.v, s.allowed)
		if !ok {
			return &fieldError{s.name, strconv.Quote(*s.v),
				fmt.Sprintf("not %s (want one of %s)", s.what, strings.Join(s.allowed, ", "))}
		}
		*s.v = c
	}
	for _, n := range []struct {
		name string
		v    *int
	}{
		{fieldMaxImageAgeDays, f.MaxImageAgeDays},
		{fieldImageGraceDays, f.ImageGraceDays},
		{fieldStallHours, f.StallHours},
		{fieldMinWindowHours, f.MinWindowHours},
	} {
		if n.v == nil {
			continue
		}
		b := bounds[n.name]
		if *n.v < b[0] || *n.v > b[1] {
			return &fieldError{n.name, strconv.Itoa(*n.v), fmt.Sprintf("out of range (want %d to %d)", b[0], b[1])}
		}
	}
	return nil
}

// honourable refuses a combination AKS itself refuses.
func (f *fields) honourable() *fieldError {
	if f.UpgradeChannel != nil && *f.UpgradeChannel == fleet.UpgradeNodeImage &&
		f.NodeOSChannel != nil && *f.NodeOSChannel != fleet.ChannelNodeImage {
		return &fieldError{fieldNodeOSChannel, strconv.Quote(*f.NodeOSChannel),
			"AKS forces NodeImage when upgradeChannel is node-image"}
	}
	return nil
}

func (f *fields) empty() bool { return *f == fields{} }

func (f *fields) has(name string) bool {
	one := f.only(name)
	return !one.empty()
}

// only returns a copy of f holding just the named field.
func (f *fields) only(name string) fields {
	var o fields
	switch name {
	case fieldNodeOSChannel:
		o.NodeOSChannel = f.NodeOSChannel
	case fieldUpgradeChannel:
		o.UpgradeChannel = f.UpgradeChannel
	case fieldMaxImageAgeDays:
		o.MaxImageAgeDays = f.MaxImageAgeDays
	case fieldImageGraceDays:
		o.ImageGraceDays = f.ImageGraceDays
	case fieldStallHours:
		o.StallHours = f.StallHours
	case fieldMinWindowHours:
		o.MinWindowHours = f.MinWindowHours
	case fieldRequireNodeOSWindow:
		o.RequireNodeOSWindow = f.RequireNodeOSWindow
	case fieldRemediate:
		o.Remediate = f.Remediate
	case fieldRemediateOutsideWindow:
		o.RemediateOutsideWindow = f.RemediateOutsideWindow
	}
	return o
}

// merge sets in f every field o sets.
func (f *fields) merge(o fields) {
	if o.NodeOSChannel != nil {
		f.NodeOSChannel = o.NodeOSChannel
	}
	if o.UpgradeChannel != nil {
		f.UpgradeChannel = o.UpgradeChannel
	}
	if o.MaxImageAgeDays != nil {
		f.MaxImageAgeDays = o.MaxImageAgeDays
	}
	if o.ImageGraceDays != nil {
		f.ImageGraceDays = o.ImageGraceDays
	}
	if o.StallHours != nil {
		f.StallHours = o.StallHours
	}
	if o.MinWindowHours != nil {
		f.MinWindowHours = o.MinWindowHours
	}
	if o.RequireNodeOSWindow != nil {
		f.RequireNodeOSWindow = o.RequireNodeOSWindow
	}
	if o.Remediate != nil {
		f.Remediate = o.Remediate
	}
	if o.RemediateOutsideWindow != nil {
		f.RemediateOutsideWindow = o.RemediateOutsideWindow
	}
}

// parseTag reads one tag value (already trimmed) into the named field.
func parseTag(name, value string) (fields, *fieldError) {
	var f fields
	switch name {
	case fieldNodeOSChannel:
		f.NodeOSChannel = &value
	case fieldUpgradeChannel:
		f.UpgradeChannel = &value
	case fieldRemediate:
		f.Remediate = &value
	case fieldRequireNodeOSWindow, fieldRemediateOutsideWindow:
		b, err := strconv.ParseBool(strings.ToLower(value))
		if err != nil {
			return f, &fieldError{name, strconv.Quote(value), "not true or false"}
		}
		if name == fieldRemediateOutsideWindow {
			f.RemediateOutsideWindow = &b
		} else {
			f.RequireNodeOSWindow = &b
		}
	default:
		n, err := strconv.Atoi(value)
		if err != nil {
			return f, &fieldError{name, strconv.Quote(value), "not a whole number"}
		}
		switch name {
		case fieldMaxImageAgeDays:
			f.MaxImageAgeDays = &n
		case fieldImageGraceDays:
			f.ImageGraceDays = &n
		case fieldStallHours:
			f.StallHours = &n
		case fieldMinWindowHours:
			f.MinWindowHours = &n
		}
	}
	return f, nil
}

// canonical returns the allowed spelling of v, compared case-insensitively.
func canonical(v string, allowed []string) (string, bool) {
	v = strings.TrimSpace(v)
	for _, a := range allowed {
		if strings.EqualFold(v, a) {
			return a, true
		}
	}
	return "", false
}

// The document as decoded; rules and their parts are decoded one by one so
// that an error can name the rule.
type document struct {
	Defaults json.RawMessage   `json:"defaults"`
	Rules    []json.RawMessage `json:"rules"`
	// Routes and DefaultRoute: where notifications go (routes.go).
	Routes       []json.RawMessage `json:"routes"`
	DefaultRoute json.RawMessage   `json:"defaultRoute"`
	// Grace: how long each code's findings wait before they are announced (grace.go).
	Grace json.RawMessage `json:"grace"`
}

type ruleDoc struct {
	Name   string          `json:"name"`
	Match  json.RawMessage `json:"match"`
	Policy json.RawMessage `json:"policy"`
}

type matchDoc struct {
	Subscription  *string  `json:"subscription"`
	ResourceGroup *string  `json:"resourceGroup"`
	Cluster       *string  `json:"cluster"`
	OSTypes       []string `json:"osTypes"`
}

// Parse reads a policy document (see the package comment). It refuses the
// whole document, with an error naming the rule and field, on unknown fields,
// invalid channel or mode names, numbers out of range, bad globs, missing or
// duplicate rule names, rules that set nothing, and policies AKS cannot
// honour: upgradeChannel node-image with a nodeOSChannel other than NodeImage,
// and nodeOSChannel SecurityPatch in a rule matching Windows pools.
func Parse(doc []byte) (*Set, error) {
	trimmed := bytes.TrimSpace(doc)
	if len(trimmed) == 0 {
		return nil, errors.New("policy document is empty")
	}
	if trimmed[0] != '{' {
		return nil, errors.New("policy document is not a JSON object")
	}
	var d document
	if err := decodeAt("", trimmed, &d); err != nil {
		return nil, describe(err, trimmed)
	}

	s := &Set{}
	if err := decodeFields("defaults", d.Defaults, &s.defaults); err != nil {
		return nil, err
	}
	names := map[string]int{}
	for i, raw := range d.Rules {
		r, err := parseRule(raw)
		id := ruleID(i, r.name)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", id, err)
		}
		if j, dup := names[strings.ToLower(r.name)]; dup {
			return nil, fmt.Errorf("%s: name: duplicate of rule #%d (names are case-insensitive)", id, j+1)
		}
		names[strings.ToLower(r.name)] = i
		s.rules = append(s.rules, r)
	}
	if err := s.parseRoutes(d.Routes, d.DefaultRoute); err != nil {
		return nil, err
	}
	if err := s.parseGrace(d.Grace); err != nil {
		return nil, err
	}
	return s, nil
}

// ruleID names a rule in errors: by name, else by its 1-based position.
func ruleID(i int, name string) string { return itemID("rule", i, name) }

// itemID names a rule or route in errors: by name, else by its 1-based
// position.
func itemID(kind string, i int, name string) string {
	if name == "" {
		return fmt.Sprintf("%s #%d", kind, i+1)
	}
	return fmt.Sprintf("%s %q", kind, name)
}

// lenientName reads an item's name from its raw JSON, best effort: for the
// error message of an item that does not decode.
func lenientName(raw json.RawMessage) string {
	var lenient struct {
		Name string `json:"name"`
	}
	_ = json.Unmarshal(raw, &lenient)
	return strings.TrimSpace(lenient.Name)
}

// checkName refuses a missing name or one an error list could not show.
func checkName(name string) error {
	if name == "" {
		return errors.New("name: missing")
	}
	if strings.ContainsFunc(name, func(c rune) bool { return c < ' ' || c == ',' || c == 0x7f }) {
		return errors.New("name: must not contain commas or control characters")
	}
	return nil
}

// scopeGlobs validates a match's subscription, resource-group and cluster
// globs (src, nil when absent) and stores each, trimmed and lower-cased, in
// its dst. Rules and routes share it, and so their error messages.
func scopeGlobs(src, dst [3]*string) error {
	for i, name := range [3]string{"subscription", "resourceGroup", "cluster"} {
		if src[i] == nil {
			continue
		}
		p := strings.ToLower(strings.TrimSpace(*src[i]))
		if p == "" {
			return fmt.Errorf("match.%s: empty pattern (leave the field out to match any)", name)
		}
		if _, err := path.Match(p, ""); err != nil {
			return fmt.Errorf("match.%s %q: bad glob: %w", name, *src[i], err)
		}
		*dst[i] = p
	}
	return nil
}

// parseRule decodes and validates one rule. It returns the name it found even
// with an error, so the error can name the rule.
func parseRule(raw json.RawMessage) (rule, error) {
	r := rule{name: lenientName(raw)}
	var rd ruleDoc
	if err := decodeAt("", raw, &rd); err != nil {
		return r, err
	}
	r.name = strings.TrimSpace(rd.Name)
	if err := checkName(r.name); err != nil {
		return r, err
	}

	var m matchDoc
	if err := decodeAt("match", rd.Match, &m); err != nil {
		return r, err
	}
	if err := scopeGlobs([3]*string{m.Subscription, m.ResourceGroup, m.Cluster}, [3]*string{&r.subscription, &r.resourceGroup, &r.cluster}); err != nil {
		return r, err
	}
	if m.OSTypes != nil {
		if len(m.OSTypes) == 0 {
			return r, errors.New("match.osTypes: empty list (leave the field out to match any)")
		}
		r.osTypes = []string{}
		for _, t := range m.OSTypes {
			c, ok := canonical(t, osTypes)
			if !ok {
				return r, fmt.Errorf("match.osTypes %q: not an OS type (want Linux or Windows)", t)
			}
			r.osTypes = append(r.osTypes, c)
		}
	}

	if err := decodeFields("policy", rd.Policy, &r.set); err != nil {
		return r, err
	}
	if r.set.empty() {
		return r, errors.New("policy: sets nothing")
	}
	if r.set.NodeOSChannel != nil && *r.set.NodeOSChannel == fleet.ChannelSecurityPatch && slices.Contains(r.osTypes, osWindows) {
		return r, errors.New(`policy.nodeOSChannel "SecurityPatch": AKS does not support SecurityPatch on Windows pools, which match.osTypes selects`)
	}
	return r, nil
}

// decodeFields decodes and validates the defaults or a rule's policy.
func decodeFields(where string, raw json.RawMessage, f *fields) error {
	if err := decodeAt(where, raw, f); err != nil {
		return err
	}
	if fe := f.normalise(); fe != nil {
		return fmt.Errorf("%s.%w", where, fe)
	}
	if fe := f.honourable(); fe != nil {
		return fmt.Errorf("%s.%w", where, fe)
	}
	return nil
}

// decodeAt decodes the object at where ("" for the top level; absent or null
// is an empty object), refusing unknown fields and anything after the object.
// Its errors name the offending field by its path.
func decodeAt(where string, raw []byte, v any) error {
	at := func(field string) string {
		if where == "" {
			return field
		}
		return where + "." + field
	}
	raw = bytes.TrimSpace(raw)
	switch {
	case len(raw) == 0 || string(raw) == "null":
		raw = []byte("{}")
	case raw[0] != '{':
		if where == "" {
			return errors.New("must be an object")
		}
		return fmt.Errorf("%s: must be an object", where)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	var te *json.UnmarshalTypeError
	switch {
	case err == nil:
	case errors.As(err, &te) && te.Field != "":
		return fmt.Errorf("%s: got JSON %s, want %s", at(te.Field), te.Value, want(te.Type.String()))
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return fmt.Errorf("%s: unknown field", at(field))
	default:
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("unexpected data after the document")
	}
	return nil
}

// describe adds the line and column to a syntax error of the whole document.
func describe(err error, doc []byte) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		line, col := position(doc, se.Offset)
		return fmt.Errorf("invalid JSON at line %d, column %d: %s", line, col, se.Error())
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return errors.New("invalid JSON: unexpected end of document")
	}
	return err
}

func position(doc []byte, offset int64) (line, col int) {
	if offset > int64(len(doc)) {
		offset = int64(len(doc))
	}
	before := doc[:offset]
	line = bytes.Count(before, []byte("\n")) + 1
	return line, len(before) - bytes.LastIndexByte(before, '\n')
}

func want(goType string) string {
	switch goType {
	case "int":
		return "a whole number"
	case "bool":
		return "true or false"
	case "string":
		return "a string"
	case "[]string":
		return "a list of strings"
	case "[]json.RawMessage":
		return "a list"
	case "json.RawMessage":
		return "an object"
	}
	return goType
}
