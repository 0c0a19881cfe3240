package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strings"
)

// fixtures holds the activity-log fixtures the handler's tests use; the demo
// delivers them with the demo fleet's names.
const fixtures = "handlers/testdata/activity"

// The fixtures are about aks-prod-weu; the demo's platform cluster stands in.
var rename = strings.NewReplacer(
	"8f1c2b3a-4d5e-4f60-9a7b-1c2d3e4f5a6b", "b71d04a9-52e3-4c8f-a6d2-9e13f07c4b58",
	"8F1C2B3A-4D5E-4F60-9A7B-1C2D3E4F5A6B", "B71D04A9-52E3-4C8F-A6D2-9E13F07C4B58",
	"rg-platform-weu", "rg-platform-shared", "RG-PLATFORM-WEU", "RG-PLATFORM-SHARED",
	"aks-prod-weu", "aks-platform-wus2", "AKS-PROD-WEU", "AKS-PLATFORM-WUS2",
)

const checkout = "/subscriptions/3f2b8c1e-7d4a-4e29-9b6f-0a1c5d8e2f47/resourceGroups/rg-checkout-prod/providers/Microsoft.ContainerService/managedClusters/aks-checkout-neu"

// demoClusters are the clusters whose activity the show step prints.
var demoClusters = [][2]string{
	{"aks-platform-wus2", "b71d04a9-52e3-4c8f-a6d2-9e13f07c4b58/rg-platform-shared/aks-platform-wus2"},
	{"aks-analytics-eus", "b71d04a9-52e3-4c8f-a6d2-9e13f07c4b58/rg-analytics-dev/aks-analytics-eus"},
	{"aks-checkout-neu", "3f2b8c1e-7d4a-4e29-9b6f-0a1c5d8e2f47/rg-checkout-prod/aks-checkout-neu"},
}

func activity(ctx context.Context, c *client, args []string, w io.Writer) error {
	switch args[1] {
	case "three-paths":
		return threePaths(ctx, c, args[0], w)
	case "aks-failure":
		return aksFailure(ctx, c, args[0], w)
	case "show":
		return showActivity(ctx, c, args[0], w)
	}
	return fmt.Errorf("%w: activity BASE three-paths|aks-failure|show", errUsage)
}

func fixture(name string) ([]byte, error) {
	b, err := readFile(filepath.Join(fixtures, name))
	if err != nil {
		return nil, err
	}
	return []byte(rename.Replace(string(b))), nil
}

// summary is the ReturnValue of the Event Grid and Event Hubs functions.
type summary struct {
	Records    int `json:"records"`
	Committed  int `json:"committed"`
	Duplicates int `json:"duplicates"`
	Ignored    int `json:"ignored"`
}

// stream delivers export messages as the eventHubTrigger (cardinality many,
// dataType string) does: a JSON string holding an array of message strings.
func (c *client) stream(ctx context.Context, base string, messages ...[]byte) (summary, error) {
	var strs []string
	for _, m := range messages {
		var v any
		if err := json.Unmarshal(m, &v); err != nil {
			return summary{}, err
		}
		b, _ := json.Marshal(v)
		strs = append(strs, string(b))
	}
	arr, _ := json.Marshal(strs)
	var s summary
	rv, err := c.invoke(ctx, base, "ActivityLogStream", "events", string(arr))
	if err == nil {
		err = json.Unmarshal(rv, &s)
	}
	return s, err
}

// threePaths delivers one cluster write through Event Grid, an activity-log
// alert and the export: one signal, then two duplicates.
func threePaths(ctx context.Context, c *client, base string, w io.Writer) error {
	eg, err := fixture("eventgrid-cluster-write.json")
	if err != nil {
		return err
	}
	rv, err := c.invoke(ctx, base, "ActivityLog", "event", json.RawMessage(eg))
	if err != nil {
		return err
	}
	var s summary
	if err := json.Unmarshal(rv, &s); err != nil {
		return err
	}
	fmt.Fprintf(w, "  Event Grid  POST /ActivityLog           200  committed %d, duplicates %d\n", s.Committed, s.Duplicates)

	alert, err := fixture("alert-cluster-write.json")
	if err != nil {
		return err
	}
	var a struct{ Result, Signal, Error string }
	code, err := c.postJSON(ctx, strings.TrimRight(base, "/")+"/api/activitylog/alert", alert, &a)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "  alert       POST /api/activitylog/alert %d  %s (signal %s)%s\n", code, a.Result, a.Signal, prefixed(": ", a.Error))

	export, err := fixture("export-cluster-write.json")
	if err != nil {
		return err
	}
	if s, err = c.stream(ctx, base, export); err != nil {
		return err
	}
	fmt.Fprintf(w, "  export      POST /ActivityLogStream     200  %d records: committed %d, duplicates %d, ignored %d (not AKS)\n",
		s.Records, s.Committed, s.Duplicates, s.Ignored)
	return nil
}

func prefixed(p, s string) string {
	if s == "" {
		return ""
	}
	return p + s
}

// aksFailure delivers AKS's own report of the checkout system pool's failed
// upgrade: the export's BeginRequest, then the failure with its message.
func aksFailure(ctx context.Context, c *client, base string, w io.Writer) error {
	const corr = "4e6a8c0e-2b4d-4f6a-8c0e-2b4d6f8a0c2e"
	res := strings.ToUpper(checkout) + "/AGENTPOOLS/SYSTEM"
	scope := checkout + "/agentPools/system"
	const action = "Microsoft.ContainerService/managedClusters/agentPools/write"
	identity := map[string]any{
		"authorization": map[string]string{"scope": scope, "action": action},
		"claims":        map[string]string{"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/spn": "Microsoft.ContainerService"},
	}
	// durationMs is a number in one record and a string in the next, as the
	// export sends it.
	record := func(at, result, signature string, durationMs any, props map[string]any) map[string]any {
		props["eventCategory"], props["entity"] = "Administrative", scope
		return map[string]any{"time": at, "resourceId": res, "operationName": strings.ToUpper(action), "category": "Write",
			"resultType": result, "resultSignature": signature, "durationMs": durationMs, "callerIpAddress": "", "correlationId": corr,
			"identity": identity, "level": cmp.Or(map[string]string{"Failure": "Error"}[result], "Information"),
			"location": "global", "properties": props}
	}
	msg := `Upgrade Failed, error: {"code":"UpgradeFailed","message":"Drain node aks-system-31415926-vmss000002 failed when evicting pod checkout-api-5f7d8c9b4-x2lqp: Cannot evict pod as it would violate the pod's disruption budget."}`
	records := []any{
		record("2026-11-11T02:02:08.1200000Z", "Start", "Started.", 0, map[string]any{"eventName": "BeginRequest"}),
		record("2026-11-11T02:41:09.1800000Z", "Failure", "Failed.InternalServerError", "2341060", map[string]any{
			"eventName": "EndRequest", "statusCode": "InternalServerError", "statusMessage": msg}),
	}
	body, _ := json.Marshal(map[string]any{"records": records})
	s, err := c.stream(ctx, base, body)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "  export      POST /ActivityLogStream     200  committed %d, duplicates %d\n", s.Committed, s.Duplicates)
	return nil
}

// clusterActivity is the part of one cluster's Status the show step prints.
type clusterActivity struct {
	ChannelChanges map[string]struct {
		Channel, From, To, At, Actor string
	} `json:"channelChanges"`
	Upgrades []struct {
		Pool, Outcome, StartedAt, EndedAt, Trigger, RequestedBy string
		ChannelChange                                           *struct{ Actor, From, To string }
		Failures                                                []struct{ Actor, Message, Status string }
	} `json:"upgrades"`
	Activity []struct {
		At, Operation, Status, Actor, ReceivedVia string
	} `json:"activity"`
}

// showActivity prints who did what in the demo's clusters.
func showActivity(ctx context.Context, c *client, base string, w io.Writer) error {
	for _, cl := range demoClusters {
		var d clusterActivity
		if err := c.getJSON(ctx, strings.TrimRight(base, "/")+"/api/clusters/"+cl[1], &d); err != nil {
			return err
		}
		fmt.Fprintln(w, "  "+cl[0])
		for _, ch := range d.ChannelChanges {
			fmt.Fprintf(w, "    %s channel %s -> %s at %s by %s\n", ch.Channel, ch.From, ch.To, ch.At, cmp.Or(ch.Actor, "(unknown)"))
		}
		for _, u := range d.Upgrades {
			var who string
			if u.Trigger != "" {
				who = fmt.Sprintf("%s, asked by %s", u.Trigger, cmp.Or(u.RequestedBy, "?"))
			}
			if ch := u.ChannelChange; ch != nil {
				who += fmt.Sprintf("; first after %s's change %s -> %s", cmp.Or(ch.Actor, "?"), ch.From, ch.To)
			}
			for _, f := range u.Failures {
				who += fmt.Sprintf("; failure by %s: %s", cmp.Or(f.Actor, "?"), clip(cmp.Or(f.Message, f.Status), 110))
			}
			fmt.Fprintf(w, "    %-9s %-9s %s %s\n", u.Pool, u.Outcome, clip(cmp.Or(u.StartedAt, u.EndedAt), 16), who)
		}
		for i, a := range d.Activity {
			if i == 4 {
				break
			}
			fmt.Fprintf(w, "    activity  %s %-17s %-9s %-28s via %s\n", clip(a.At, 19), a.Operation, a.Status, a.Actor, a.ReceivedVia)
		}
	}
	return nil
}
