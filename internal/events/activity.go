package events

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
	"github.com/upgradewatch/upgradewatch/internal/host"
)

// Activity-log entries reach upgradewatch three ways: Microsoft.Resources.*
// events on a subscription's Event Grid system topic (resourceActivity, through
// Decode), activity-log alerts posted by an action group (DecodeAlert), and the
// diagnostic-settings export through Event Hub (DecodeExport). Each path has
// its own payload and quirks; all three fill one fleet.Activity the same way,
// so that fleet.ActivityID makes the same activity one signal.

// maxMessage bounds Activity.Message: enough for an ARM error and its hint.
const maxMessage = 1000

// Claim names, in the order they are consulted.
var (
	claimUPN  = []string{"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn", "upn"}
	claimSPN  = []string{"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/spn", "spn"}
	claimApp  = []string{"appid", "azp"}
	claimName = []string{"name"}
	claimOID  = []string{"http://schemas.microsoft.com/identity/claims/objectidentifier", "oid"}
)

// resourceActivity decodes Microsoft.Resources.Resource{Write,Delete,Action}
// {Success,Failure,Cancel}. Its data is read with loose types: real events
// carry "evidence": [] and "claims": [] where the SDK wants string maps.
func resourceActivity(sig *fleet.Signal, env envelope) error {
	var data map[string]json.RawMessage
	if err := decodeData(env.data, &data); err != nil {
		return err
	}
	var r reader
	auth := looseObject(get(data, "authorization"))
	act := fleet.Activity{
		OperationName: operationText(&r, "data.operationName", get(data, "operationName")),
		Status:        fleet.NormaliseActivityStatus(typeOutcome(sig.Type)),
		CorrelationID: r.text("data.correlationId", get(data, "correlationId")),
		ResourceID:    r.text("data.resourceUri", get(data, "resourceUri")),
		Path:          fleet.PathEventGrid,
		DeliveryID:    env.id,
	}
	if r.err != nil {
		return r.err
	}
	if act.Status == "" {
		act.Status = fleet.NormaliseActivityStatus(looseText(get(data, "status")))
	}
	if act.OperationName == "" {
		act.OperationName = looseText(get(auth, "action"))
	}
	field := "data.resourceUri"
	if strings.TrimSpace(act.ResourceID) == "" {
		act.ResourceID, field = sig.Subject, "subject"
	}
	act.Actor, act.ActorType = actorOf("", claimsOf(get(data, "claims")),
		looseText(get(looseObject(get(auth, "evidence")), "principalType")))

	act.Operation = fleet.ClassifyOperation(act.OperationName)
	if act.Operation == "" {
		ignore(sig, act)
		return nil
	}
	c, err := locate(&act, field)
	sig.Cluster = c
	if err != nil {
		return err
	}
	sig.Kind, sig.Activity, sig.Pool = fleet.KindActivity, &act, act.Pool
	sig.ID = fleet.ActivityID(act)
	return nil
}

// jsonObject checks that raw is one JSON object and returns its members;
// what names it in errors.
func jsonObject(what string, raw []byte) (map[string]json.RawMessage, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return nil, malformed("%s is empty", what)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		if json.Valid(raw) {
			return nil, malformed("%s is a JSON %s, want an object", what, jsonKind(raw))
		}
		return nil, fmt.Errorf("%w: %s is not valid JSON: %w", ErrMalformed, what, clipped{err})
	}
	if m == nil {
		return nil, malformed("%s is JSON null, want an object", what)
	}
	return m, nil
}

// typeOutcome is the outcome an event type ends in: Success, Failure or Cancel.
func typeOutcome(typ string) string {
	t := strings.ToLower(typ)
	for _, s := range []string{"Success", "Failure", "Cancel"} {
		if strings.HasSuffix(t, strings.ToLower(s)) {
			return s
		}
	}
	return ""
}

// ignore marks a well-formed activity upgradewatch does not track, keeping
// what was read of it and its cluster, if it names one.
func ignore(sig *fleet.Signal, act fleet.Activity) {
	if c, _, err := fleet.ParseResourceID(act.ResourceID); err == nil {
		sig.Cluster = c
	}
	sig.Kind, sig.Activity = fleet.KindIgnored, &act
}

// locate parses the resource of a tracked activity: the cluster, and the pool
// or maintenance configuration the operation names. field names the resource
// ID in errors.
func locate(act *fleet.Activity, field string) (fleet.ClusterID, error) {
	if strings.TrimSpace(act.ResourceID) == "" {
		return fleet.ClusterID{}, fmt.Errorf("%w: %s is missing: %w", ErrMalformed, field, fleet.ErrInvalidResourceID)
	}
	c, child, err := fleet.ParseResourceID(act.ResourceID)
	if err != nil {
		return fleet.ClusterID{}, fmt.Errorf("%w: %s of %s: %w", ErrMalformed, field, act.Operation, clipped{err})
	}
	segment, name := childOf(child)
	switch {
	case fleet.IsPoolOperation(act.Operation):
		if !strings.EqualFold(segment, "agentPools") {
			return c, malformed("%s %q names no agent pool, want …/agentPools/<name> for %s",
				field, clip(act.ResourceID, maxQuoted), act.Operation)
		}
		// AKS pool names are lower-case; the export upper-cases them.
		pool, err := poolName(field+" agent pool", strings.ToLower(name))
		if err != nil {
			return c, err
		}
		act.Pool = pool
	case fleet.IsMaintenanceOperation(act.Operation):
		if !strings.EqualFold(segment, "maintenanceConfigurations") || strings.TrimSpace(name) == "" {
			return c, malformed("%s %q names no maintenance configuration, want …/maintenanceConfigurations/<name> for %s",
				field, clip(act.ResourceID, maxQuoted), act.Operation)
		}
		act.Maintenance = clip(name, 100)
	}
	return c, nil
}

// childOf splits the path below a cluster ("agentPools/np1/…") into its first
// segment and name.
func childOf(child string) (segment, name string) {
	parts := strings.SplitN(child, "/", 3)
	if len(parts) < 2 {
		return child, ""
	}
	return parts[0], parts[1]
}

// operationText reads an operation name: a string, or the REST schema's
// {"value": …, "localizedValue": …}.
func operationText(r *reader, path string, raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '{' {
		m := r.object(path, raw)
		if v := get(m, "value"); !absent(v) && bytes.TrimSpace(v)[0] == '"' {
			return r.text(path+".value", v)
		}
		r.fail(path, "want a string or an object with a string value")
		return ""
	}
	if len(raw) > 0 && raw[0] != '"' && !absent(raw) {
		r.fail(path, "want a string, got a JSON %s", jsonKind(raw))
		return ""
	}
	return r.text(path, raw)
}

// looseObject reads an object, also one JSON-encoded in a string; anything
// else gives nil. For members that only add detail (claims, evidence).
func looseObject(raw json.RawMessage) map[string]json.RawMessage {
	var r reader
	return r.object("", raw)
}

// looseText reads a string, number or boolean as text; anything else gives "".
func looseText(raw json.RawMessage) string {
	var r reader
	s := r.text("", raw)
	if r.err != nil {
		return ""
	}
	return strings.TrimSpace(s)
}

// claims are a token's claims as the activity log repeats them.
type claims map[string]json.RawMessage

// claimsOf reads claims sent as an object, as an object JSON-encoded in a
// string ("{}" in alerts), or as the [] some events carry; nil if unreadable.
func claimsOf(raw json.RawMessage) claims { return looseObject(raw) }

func (c claims) get(names []string) string { return looseText(get(c, names...)) }

// actorOf names who asked ARM for an activity, the same way on every path.
// caller is the activity log's caller (a UPN, an object id, or AKS itself);
// principalType is authorization.evidence.principalType.
func actorOf(caller string, cl claims, principalType string) (actor, actorType string) {
	caller = strings.TrimSpace(caller)
	if strings.EqualFold(caller, fleet.AKSCaller) || strings.EqualFold(cl.get(claimSPN), fleet.AKSCaller) {
		return fleet.AKSCaller, fleet.ActorAKS
	}
	if upn := cl.get(claimUPN); upn != "" {
		return upn, fleet.ActorUser
	}
	if strings.Contains(caller, "@") {
		return caller, fleet.ActorUser
	}
	if un := cl.get([]string{"unique_name"}); strings.Contains(un, "@") {
		return un, fleet.ActorUser
	}
	app := cl.get(claimApp)
	if app != "" || strings.EqualFold(strings.TrimSpace(principalType), "ServicePrincipal") {
		return cmp.Or(app, caller, cl.get(claimOID)), fleet.ActorServicePrincipal
	}
	return cmp.Or(caller, cl.get(claimName), cl.get(claimOID)), ""
}

// readableMessage turns a status message into text a person can act on. It
// may be plain text, JSON (an ARM error, possibly JSON-encoded in a string),
// or text that ends in JSON ("Upgrade Failed, error: {"code":…}"); ARM errors
// become "code: message".
func readableMessage(raw json.RawMessage) string {
	raw = host.Unwrap(raw)
	if absent(raw) {
		return ""
	}
	var s string
	switch raw[0] {
	case '{':
		var m map[string]json.RawMessage
		if json.Unmarshal(raw, &m) != nil {
			return ""
		}
		s = armError(m, 0)
	case '"':
		if json.Unmarshal(raw, &s) != nil {
			return ""
		}
		s = strings.TrimSpace(s)
		if i := strings.IndexByte(s, '{'); i >= 0 {
			var m map[string]json.RawMessage
			if json.NewDecoder(strings.NewReader(s[i:])).Decode(&m) == nil {
				if e := armError(m, 0); e != "" {
					s = strings.TrimSpace(s[:i] + e)
				}
			}
		}
	case '[':
		return ""
	default:
		s = string(raw)
	}
	return clip(strings.TrimSpace(s), maxMessage)
}

// armError reads an ARM error — {"error":{"code","message"}} or {"code",
// "message"} — as "code: message"; "" when m is neither.
func armError(m map[string]json.RawMessage, depth int) string {
	if depth < 3 {
		if e := looseObject(get(m, "error")); e != nil {
			if s := armError(e, depth+1); s != "" {
				return s
			}
		}
	}
	code, msg := looseText(get(m, "code")), looseText(get(m, "message"))
	switch {
	case code != "" && msg != "":
		return code + ": " + msg
	case msg != "":
		return msg
	}
	return code
}
