package events

import (
	"cmp"
	"strings"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
	"github.com/upgradewatch/upgradewatch/internal/host"
)

// TypeActivityLogAlert is the Signal.Type of an activity-log alert.
const TypeActivityLogAlert = "Microsoft.Insights.ActivityLogAlert"

// signalTypeActivityLog is essentials.signalType of an activity-log alert.
const signalTypeActivityLog = "Activity Log"

// DecodeAlert turns the body an action group's webhook posts for an
// activity-log alert, in Azure Monitor's common alert schema, into a
// fleet.Signal of Kind fleet.KindActivity.
//
// Alerts of another signal type (metric, log search) and activities
// upgradewatch does not track are accepted with Kind fleet.KindIgnored and the
// alert's own id (eventDataId, else originAlertId); an ignored alert of another
// signal type has Type "azureMonitorCommonAlertSchema/<signalType>". Anything that cannot be
// decoded — another schemaId, no alertContext, no operation or time, a
// resource that is not a managed cluster — yields an error wrapping
// ErrMalformed (and fleet.ErrInvalidResourceID when the resource is at fault)
// with the partially filled Signal, Kind empty.
//
// The alert context is read loosely: claims arrive JSON-encoded in a string,
// channels, eventSource and level as numbers or strings, and the status
// message as text, JSON, or text ending in JSON.
//
// An alert is whatever carries the function key (or the action group's
// token), so nothing in it is taken on trust beyond its shape: the time is
// decoded as sent, and the handler refuses one beyond fleet.MaxClockSkew
// before anything commits (fleet.CheckTime); a deletion it reports is
// evidence until ARM confirms it (fleet.DeletionReport).
func DecodeAlert(body []byte) (fleet.Signal, error) {
	sig := fleet.Signal{Schema: fleet.SchemaCommonAlert, Type: TypeActivityLogAlert}
	top, err := jsonObject("alert", host.Unwrap(body))
	if err != nil {
		return sig, err
	}
	var r reader
	schemaID := strings.TrimSpace(r.text("schemaId", get(top, "schemaId")))
	if r.err != nil {
		return sig, r.err
	}
	if !strings.EqualFold(schemaID, fleet.SchemaCommonAlert) {
		return sig, malformed("schemaId %q: configure the action group's webhook with the common alert schema", clip(schemaID, 80))
	}
	data := r.object("data", get(top, "data"))
	ess := r.object("data.essentials", get(data, "essentials"))
	sig.Source = r.text("data.essentials.alertId", get(ess, "alertId"))
	signalType := strings.TrimSpace(r.text("data.essentials.signalType", get(ess, "signalType")))
	fired := looseTime(get(ess, "firedDateTime"))
	origin := looseText(get(ess, "originAlertId"))
	switch {
	case r.err != nil:
		return sig, r.err
	case data == nil:
		return sig, malformed("data is missing")
	case ess == nil:
		return sig, malformed("data.essentials is missing")
	case signalType == "":
		return sig, malformed("data.essentials.signalType is missing")
	case !strings.EqualFold(signalType, signalTypeActivityLog):
		sig.Type = fleet.SchemaCommonAlert + "/" + clip(signalType, 60)
		sig.ID, sig.Kind, sig.Time = origin, fleet.KindIgnored, fired
		return sig, nil
	}

	const cp = "data.alertContext."
	ctx := r.object("data.alertContext", get(data, "alertContext"))
	if r.err != nil {
		return sig, r.err
	}
	if ctx == nil {
		return sig, malformed("data.alertContext is missing")
	}
	auth := looseObject(get(ctx, "authorization"))
	props := looseObject(get(ctx, "properties"))
	act := fleet.Activity{
		OperationName: operationText(&r, cp+"operationName", get(ctx, "operationName")),
		Status:        fleet.NormaliseActivityStatus(r.text(cp+"status", get(ctx, "status"))),
		CorrelationID: r.text(cp+"correlationId", get(ctx, "correlationId")),
		Path:          fleet.PathAlert,
		DeliveryID:    looseText(get(ctx, "eventDataId")),
	}
	stamp := r.text(cp+"eventTimestamp", get(ctx, "eventTimestamp"))
	if r.err != nil {
		return sig, r.err
	}
	if act.OperationName == "" {
		act.OperationName = looseText(get(auth, "action"))
	}
	if act.OperationName == "" {
		return sig, malformed(cp + "operationName is missing and so is " + cp + "authorization.action")
	}

	var target string
	var lr reader // alertTargetIDs only help when the others are missing
	if ids := lr.array("", get(ess, "alertTargetIDs")); len(ids) > 0 {
		target = looseText(ids[0])
	}
	var field string
	act.ResourceID, field = pickResource(
		candidate{cp + "authorization.scope", looseText(get(auth, "scope"))},
		candidate{cp + "properties.entity", looseText(get(props, "entity"))},
		candidate{"data.essentials.alertTargetIDs[0]", target},
	)
	sig.Subject = act.ResourceID

	act.Actor, act.ActorType = actorOf(looseText(get(ctx, "caller")), claimsOf(get(ctx, "claims")),
		looseText(get(looseObject(get(auth, "evidence")), "principalType")))
	act.Message = readableMessage(get(props, "statusMessage"))
	if act.Message == "" && (act.Status == fleet.ActivityFailed || act.Status == fleet.ActivityCanceled) {
		act.Message = clip(looseText(get(ctx, "subStatus")), maxMessage)
	}

	sig.Time = fired
	if strings.TrimSpace(stamp) != "" {
		t, err := host.ParseTime(stamp)
		switch {
		case err == nil && !t.IsZero():
			sig.Time = t
		case fired.IsZero():
			return sig, malformed(cp+"eventTimestamp %q is not an RFC 3339 time", clip(stamp, 64))
		}
	}

	act.Operation = fleet.ClassifyOperation(act.OperationName)
	if act.Operation == "" {
		sig.ID = cmp.Or(act.DeliveryID, origin)
		ignore(&sig, act)
		return sig, nil
	}
	if sig.Time.IsZero() {
		return sig, malformed(cp + "eventTimestamp is missing and so is data.essentials.firedDateTime")
	}
	c, err := locate(&act, field)
	if err != nil {
		sig.Cluster = c
		return sig, err
	}
	sig.Cluster, sig.Kind, sig.Activity, sig.Pool = c, fleet.KindActivity, &act, act.Pool
	sig.ID = fleet.ActivityID(act)
	return sig, nil
}

// pickResource chooses, of the places an activity names its resource, the
// first that is a managed cluster ID, else the first present; it returns the
// ID and the field it came from.
func pickResource(cands ...candidate) (id, field string) {
	for _, c := range cands {
		if _, _, err := fleet.ParseResourceID(c.id); err == nil {
			return strings.TrimSpace(c.id), c.field
		}
	}
	for _, c := range cands {
		if strings.TrimSpace(c.id) != "" {
			return strings.TrimSpace(c.id), c.field
		}
	}
	if len(cands) > 0 {
		field = cands[0].field
	}
	return "", field
}
