// Package inventory decodes the node snapshots a cluster posts to upgradewatch
// into fleet.NodeSnapshot, and encodes the compact form node-reporter sends.
//
// Two shapes are accepted, told apart by their top-level fields:
//
//   - a Kubernetes node list: `kubectl get nodes -o json` as kubectl prints it
//     (kind "List" with Node items) or an API page (kind "NodeList"), so an
//     operator can pipe kubectl into curl without any tool of ours;
//   - the compact form, a small fraction of the size, which node-reporter posts.
//
// The compact form (observedAt defaults to the time of receipt, complete to
// true; snapshotId matches [A-Za-z0-9._:-]{1,128} and, when absent, is a hash
// of the content and time):
//
//	{"schema": "upgradewatch.nodes/v1", "snapshotId": "nr-…",
//	 "observedAt": "2026-10-05T08:00:03Z", "complete": true, "reporter": "node-reporter/0.1.0",
//	 "nodes": [{"name": "aks-system-12345678-vmss000000", "pool": "system",
//	   "nodeImageVersion": "AKSUbuntu-2204gen2containerd-202410.27.0",
//	   "kernelVersion": "5.15.0-1074-azure", "osImage": "Ubuntu 22.04.5 LTS",
//	   "kubeletVersion": "v1.30.5", "containerRuntime": "containerd://1.7.22-1",
//	   "osType": "linux", "quarantined": false, "ready": "True"}]}
//
// Node lists from every AKS label generation are read: the pool comes from
// kubernetes.azure.com/agentpool, else from agentpool (clusters created
// before the newer label existed carry only that one). A listed node that
// cannot be an AKS agent node (a virtual node, no pool label, a name or pool
// AKS could not give) is left out of the snapshot and named, with the reason,
// in Result.Skipped; a complete list with nothing else is refused, naming them.
//
// A complete snapshot lists every node, so a known node missing from it is
// gone. That makes a wrong "complete" costly, and Decode refuses what would do
// damage: an empty complete list, duplicate names, more nodes than AKS allows,
// an observation time from the future (it would outrank every later
// snapshot). An API page that says more pages follow is taken as partial.
// Node image versions are kept verbatim whatever their format: an unknown
// format is a finding for the rules, not a reason to drop the inventory.
package inventory

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
)

// ErrMalformed reports a body that is not an acceptable node snapshot.
// Resending it will not help.
var ErrMalformed = errors.New("malformed node snapshot")

// Schema identifies the compact form.
const Schema = "upgradewatch.nodes/v1"

// MaxNodes is the AKS per-cluster node limit; a larger snapshot is not an
// AKS cluster's.
const MaxNodes = 5000

// MaxClockSkew is how far in the future a compact observedAt may lie: the
// bound every signal path shares.
const MaxClockSkew = fleet.MaxClockSkew

// ReporterKubectl is the Reporter of snapshots posted as a node list.
const ReporterKubectl = "kubectl"

// Forms a snapshot can arrive in (Result.Form).
const (
	FormList     = "List"     // kubectl get nodes -o json
	FormNodeList = "NodeList" // an API page
	FormCompact  = "compact"
)

// maxField bounds the free-text fields; real values are far shorter (label
// values stop at 63), and the state store has per-row limits.
const maxField = 256

var (
	snapshotIDRE = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)
	dnsLabelRE   = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
)

// Result is a decoded snapshot and what was left out of it.
type Result struct {
	Snapshot fleet.NodeSnapshot // nodes sorted by name
	Form     string             // FormList, FormNodeList or FormCompact
	// Skipped names every listed node left out, with the reason (virtual
	// nodes, nodes without a pool label, names AKS could not give), in list
	// order. The compact form has none: its sender already left them out.
	Skipped []SkippedNode
}

// MaxNamedSkipped bounds how many skipped nodes an answer or a log line names;
// the rest are counted (see Named).
const MaxNamedSkipped = 20

// Named returns at most max of the skipped nodes and how many more there are.
func (r Result) Named(max int) ([]SkippedNode, int) {
	if len(r.Skipped) <= max {
		return r.Skipped, 0
	}
	return r.Skipped[:max], len(r.Skipped) - max
}

// compact is the wire shape of the compact form.
type compact struct {
	Schema     string        `json:"schema"`
	SnapshotID string        `json:"snapshotId,omitempty"`
	ObservedAt string        `json:"observedAt,omitempty"`
	Complete   *bool         `json:"complete,omitempty"`
	Reporter   string        `json:"reporter,omitempty"`
	Nodes      []compactNode `json:"nodes"`
}

// compactNode is one node in the compact form. The form is this package's
// (the schema Schema names), so its field names are defined here, not by
// the domain's fleet.NodeObservation; their order is part of the content ID
// (contentID), so it stays.
type compactNode struct {
	Name             string `json:"name"`
	Pool             string `json:"pool"`
	NodeImageVersion string `json:"nodeImageVersion,omitempty"`
	KernelVersion    string `json:"kernelVersion,omitempty"`
	OSImage          string `json:"osImage,omitempty"`
	KubeletVersion   string `json:"kubeletVersion,omitempty"`
	ContainerRuntime string `json:"containerRuntime,omitempty"`
	OSType           string `json:"osType,omitempty"`
	Quarantined      bool   `json:"quarantined,omitempty"`
	Unschedulable    bool   `json:"unschedulable,omitempty"`
	Ready            string `json:"ready,omitempty"`
}

// compactNodes is nodes in the compact form; nil stays nil (it hashes as
// null in contentID, as it always has).
func compactNodes(nodes []fleet.NodeObservation) []compactNode {
	if nodes == nil {
		return nil
	}
	out := make([]compactNode, len(nodes))
	for i, n := range nodes {
		out[i] = compactNode(n)
	}
	return out
}

// observations is the domain's view of compact nodes.
func observations(nodes []compactNode) []fleet.NodeObservation {
	if nodes == nil {
		return nil
	}
	out := make([]fleet.NodeObservation, len(nodes))
	for i, n := range nodes {
		out[i] = fleet.NodeObservation(n)
	}
	return out
}

// probe reads only the fields that tell the forms apart.
type probe struct {
	Kind   json.RawMessage `json:"kind"`
	Schema json.RawMessage `json:"schema"`
}

// Decode reads a node snapshot posted to NodeInventory: a node list as kubectl
// prints it or the API returns it, or the compact form. now is the time of
// receipt: the observation time of a list, and of a compact snapshot without
// observedAt. Every error wraps ErrMalformed.
func Decode(body []byte, now time.Time) (Result, error) {
	now = now.UTC()
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return Result{}, fmt.Errorf("%w: empty body", ErrMalformed)
	}
	if body[0] != '{' {
		return Result{}, fmt.Errorf("%w: %s, want a JSON object (a node list or the compact form)", ErrMalformed, jsonKind(body))
	}
	var p probe
	if err := json.Unmarshal(body, &p); err != nil {
		return Result{}, fmt.Errorf("%w: invalid JSON: %v", ErrMalformed, err)
	}
	var kind string
	switch {
	case p.Schema != nil:
		return decodeCompact(body, now)
	case p.Kind != nil && json.Unmarshal(p.Kind, &kind) != nil:
		return Result{}, fmt.Errorf("%w: \"kind\" is %s, not a string", ErrMalformed, jsonKind(p.Kind))
	case kind == FormList || kind == FormNodeList:
		return decodeList(body, now)
	case p.Kind != nil:
		return Result{}, fmt.Errorf("%w: kind %q is neither a node list (List, NodeList) nor the compact form (schema %q)", ErrMalformed, truncate(kind), Schema)
	default:
		return Result{}, fmt.Errorf("%w: an object with neither \"kind\" (a node list) nor \"schema\" (the compact form)", ErrMalformed)
	}
}

func decodeList(body []byte, now time.Time) (Result, error) {
	var l NodeList
	if err := json.Unmarshal(body, &l); err != nil {
		return Result{}, fmt.Errorf("%w: node list: %v", ErrMalformed, err)
	}
	for i, n := range l.Items {
		if n.Kind != "" && n.Kind != "Node" {
			return Result{}, fmt.Errorf("%w: item %d is a %q, not a Node (post `kubectl get nodes -o json` only)", ErrMalformed, i, truncate(n.Kind))
		}
	}
	obs, skipped := Observe(l.Items)
	r := Result{
		Form:    l.Kind,
		Skipped: skipped,
		Snapshot: fleet.NodeSnapshot{
			ObservedAt: now,
			// One page of a longer list is only a partial view.
			Complete: l.Metadata.Continue == "",
			Reporter: ReporterKubectl,
			Nodes:    obs,
		},
	}
	return finish(r)
}

func decodeCompact(body []byte, now time.Time) (Result, error) {
	var c compact
	if err := json.Unmarshal(body, &c); err != nil {
		return Result{}, fmt.Errorf("%w: compact form: %v", ErrMalformed, err)
	}
	if c.Schema != Schema {
		return Result{}, fmt.Errorf("%w: unknown schema %q, want %q", ErrMalformed, truncate(c.Schema), Schema)
	}
	s := fleet.NodeSnapshot{ID: c.SnapshotID, ObservedAt: now, Complete: true, Reporter: c.Reporter, Nodes: observations(c.Nodes)}
	if c.ObservedAt != "" {
		t, err := time.Parse(time.RFC3339Nano, c.ObservedAt)
		if err != nil {
			return Result{}, fmt.Errorf("%w: observedAt %q is not an RFC 3339 time", ErrMalformed, truncate(c.ObservedAt))
		}
		if t.Year() < 2000 {
			return Result{}, fmt.Errorf("%w: observedAt %s is before 2000", ErrMalformed, c.ObservedAt)
		}
		if t.After(now.Add(MaxClockSkew)) {
			return Result{}, fmt.Errorf("%w: observedAt %s is more than %s after the time of receipt %s (the sender's clock is wrong)",
				ErrMalformed, c.ObservedAt, MaxClockSkew, now.Format(time.RFC3339))
		}
		s.ObservedAt = t.UTC()
	}
	if c.Complete != nil {
		s.Complete = *c.Complete
	}
	for i := range s.Nodes {
		s.Nodes[i].Pool = strings.ToLower(s.Nodes[i].Pool)
	}
	return finish(Result{Form: FormCompact, Snapshot: s})
}

// finish validates the snapshot, sorts its nodes and fills in a missing ID.
func finish(r Result) (Result, error) {
	s := &r.Snapshot
	slices.SortFunc(s.Nodes, func(a, b fleet.NodeObservation) int { return strings.Compare(a.Name, b.Name) })
	if err := validate(*s, r.Skipped); err != nil {
		return Result{}, err
	}
	if s.ID == "" {
		s.ID = contentID(*s)
	}
	return r, nil
}

// validate checks a snapshot whose nodes are sorted by name; skipped are the
// nodes left out of it, named in the refusal of a list that kept none.
func validate(s fleet.NodeSnapshot, skipped []SkippedNode) error {
	if s.ID != "" && !snapshotIDRE.MatchString(s.ID) {
		return fmt.Errorf("%w: snapshotId %q: want 1 to 128 of A-Z a-z 0-9 . _ : -", ErrMalformed, truncate(s.ID))
	}
	if len(s.Reporter) > maxField {
		return fmt.Errorf("%w: reporter is longer than %d bytes", ErrMalformed, maxField)
	}
	if len(s.Nodes) > MaxNodes {
		return fmt.Errorf("%w: %d nodes, more than the %d an AKS cluster can have", ErrMalformed, len(s.Nodes), MaxNodes)
	}
	if s.Complete && len(s.Nodes) == 0 {
		why := "no nodes"
		if len(skipped) > 0 {
			why = "no AKS nodes (" + describeSkipped(skipped) + ")"
		}
		return fmt.Errorf("%w: complete snapshot with %s: it would mark every known node gone; send \"complete\": false to report nothing", ErrMalformed, why)
	}
	for i, n := range s.Nodes {
		if err := validNode(n); err != nil {
			return err
		}
		if i > 0 && s.Nodes[i-1].Name == n.Name {
			return fmt.Errorf("%w: node %q is listed twice", ErrMalformed, n.Name)
		}
	}
	return nil
}

func validNode(n fleet.NodeObservation) error {
	if why := nodeProblem(n); why != "" {
		if n.Name == "" || !validNodeName(n.Name) {
			return fmt.Errorf("%w: %s", ErrMalformed, why)
		}
		return fmt.Errorf("%w: node %s: %s", ErrMalformed, n.Name, why)
	}
	return nil
}

// nodeProblem says why n cannot be stored, or "" when it can.
func nodeProblem(n fleet.NodeObservation) string {
	if n.Name == "" {
		return "a node has no name"
	}
	if !validNodeName(n.Name) {
		return fmt.Sprintf("node name %q is not a DNS-1123 subdomain (lower-case a-z 0-9 - ., at most 253)", truncate(n.Name))
	}
	if !fleet.ValidPoolName(n.Pool) {
		return fmt.Sprintf("pool %q is not an AKS agent pool name (1 to 12 of a-z 0-9)", truncate(n.Pool))
	}
	for _, f := range []struct{ name, value string }{
		{"nodeImageVersion", n.NodeImageVersion}, {"kernelVersion", n.KernelVersion}, {"osImage", n.OSImage},
		{"kubeletVersion", n.KubeletVersion}, {"containerRuntime", n.ContainerRuntime}, {"osType", n.OSType}, {"ready", n.Ready},
	} {
		if len(f.value) > maxField {
			return fmt.Sprintf("%s is longer than %d bytes", f.name, maxField)
		}
	}
	return ""
}

// validNodeName reports whether name is a DNS-1123 subdomain, which the API
// server requires of node names.
func validNodeName(name string) bool {
	if len(name) > 253 {
		return false
	}
	for label := range strings.SplitSeq(name, ".") {
		if len(label) > 63 || !dnsLabelRE.MatchString(label) {
			return false
		}
	}
	return true
}

// contentID derives an ID from what the snapshot says and when, so the same
// post delivered twice is recognised as one snapshot.
func contentID(s fleet.NodeSnapshot) string {
	canonical, err := json.Marshal(struct {
		ObservedAt string        `json:"observedAt"`
		Complete   bool          `json:"complete"`
		Nodes      []compactNode `json:"nodes"`
	}{s.ObservedAt.UTC().Format(time.RFC3339Nano), s.Complete, compactNodes(s.Nodes)})
	if err != nil {
		panic(err) // strings and bools always marshal
	}
	sum := sha256.Sum256(canonical)
	return "nodes-" + hex.EncodeToString(sum[:16])
}

// Encode writes s in the compact form. It refuses a snapshot Decode would
// refuse, so a reporter learns of the problem before it posts.
func Encode(s fleet.NodeSnapshot) ([]byte, error) {
	nodes := slices.Clone(s.Nodes)
	slices.SortFunc(nodes, func(a, b fleet.NodeObservation) int { return strings.Compare(a.Name, b.Name) })
	for i := range nodes {
		nodes[i].Pool = strings.ToLower(nodes[i].Pool)
	}
	sorted := s
	sorted.Nodes = nodes
	if err := validate(sorted, nil); err != nil {
		return nil, err
	}
	out := struct {
		Schema     string        `json:"schema"`
		SnapshotID string        `json:"snapshotId,omitempty"`
		ObservedAt string        `json:"observedAt,omitempty"`
		Complete   bool          `json:"complete"`
		Reporter   string        `json:"reporter,omitempty"`
		Nodes      []compactNode `json:"nodes"`
	}{Schema: Schema, SnapshotID: s.ID, Complete: s.Complete, Reporter: s.Reporter, Nodes: compactNodes(nodes)}
	if !s.ObservedAt.IsZero() {
		out.ObservedAt = s.ObservedAt.UTC().Format(time.RFC3339Nano)
	}
	if out.Nodes == nil {
		out.Nodes = []compactNode{} // "nodes" is an array
	}
	return json.Marshal(out)
}

// jsonKind names the JSON value body starts with, for an error message.
func jsonKind(body []byte) string {
	switch body[0] {
	case '[':
		return "a JSON array"
	case '"':
		return "a JSON string"
	case '{':
		return "a JSON object"
	case 't', 'f':
		return "a JSON boolean"
	case 'n':
		return "JSON null"
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		return "a JSON number"
	}
	return "not JSON"
}

// describeSkipped names the first few skipped nodes and counts the rest.
func describeSkipped(skipped []SkippedNode) string {
	const named = 5
	var b strings.Builder
	fmt.Fprintf(&b, "%d skipped: ", len(skipped))
	for i, n := range skipped {
		if i == named {
			fmt.Fprintf(&b, "; and %d more", len(skipped)-named)
			break
		}
		if i > 0 {
			b.WriteString("; ")
		}
		if n.Name != "" {
			fmt.Fprintf(&b, "%q: ", n.Name)
		}
		b.WriteString(n.Reason)
	}
	return b.String()
}

// truncate bounds a value quoted in an error message, cutting on a rune
// boundary.
func truncate(s string) string {
	const max = 80
	if len(s) <= max {
		return s
	}
	n := max
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
