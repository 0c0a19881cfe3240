package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"
)

// plannedType is the CloudEvent type of a remediation plan.
const plannedType = "io.upgradewatch.remediation.planned"

// The handler dispatches in the background: the sink has it all once its
// count stays put for settle, or the deadline passes.
var (
	settle   = time.Second
	deadline = 10 * time.Second
	poll     = 200 * time.Millisecond
)

// sinkItem is an element of bin/sink's GET /events.
type sinkItem struct {
	Path      string     `json:"path"`
	Kind      string     `json:"kind"`
	Duplicate bool       `json:"duplicate"`
	Event     cloudEvent `json:"event"`
	// Teams and Slack: the message's cluster and how many steps it groups.
	Cluster string `json:"cluster"`
	Steps   int    `json:"steps"`
}

type cloudEvent struct {
	ID   string `json:"id"`
	Type string `json:"type"`
	Data struct {
		Code        string    `json:"code"`
		Cluster     string    `json:"cluster"`
		Target      string    `json:"target"`
		OpenedAt    time.Time `json:"openedAt"`
		Remediation *struct {
			DryRun bool `json:"dryRun"`
		} `json:"remediation"`
	} `json:"data"`
	raw json.RawMessage
}

func (e *cloudEvent) UnmarshalJSON(b []byte) error {
	type plain cloudEvent
	if err := json.Unmarshal(b, (*plain)(e)); err != nil {
		return err
	}
	e.raw = append(json.RawMessage(nil), b...)
	return nil
}

func (c *client) sinkItems(ctx context.Context, sink string) ([]sinkItem, error) {
	var items []sinkItem
	err := c.getJSON(ctx, strings.TrimRight(sink, "/")+"/events", &items)
	return items, err
}

// settled polls the sink until its count stops growing.
func (c *client) settled(ctx context.Context, sink string) ([]sinkItem, error) {
	items, err := c.sinkItems(ctx, sink)
	if err != nil {
		return nil, err
	}
	end, stable := c.now().Add(deadline), c.now()
	for c.now().Before(end) {
		if err := sleep(ctx, poll); err != nil {
			return nil, err
		}
		now, err := c.sinkItems(ctx, sink)
		if err != nil {
			return nil, err
		}
		if len(now) != len(items) {
			items, stable = now, c.now()
		} else if len(items) > 0 && c.now().Sub(stable) >= settle {
			break
		}
	}
	return items, nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// received counts what the sink got by kind and type and fails when no
// CloudEvent arrived or anything arrived twice.
func received(ctx context.Context, c *client, args []string, w io.Writer) error {
	sink := args[0]
	items, err := c.settled(ctx, sink)
	if err != nil {
		return err
	}
	kinds, types, paths := map[string]int{}, map[string]int{}, map[string]int{}
	var events []cloudEvent
	dups := 0
	for _, it := range items {
		kinds[it.Kind]++
		paths[it.Path]++
		if it.Duplicate {
			dups++
		}
		if it.Kind == "cloudevent" {
			events = append(events, it.Event)
			types[it.Event.Type]++
		}
	}
	fmt.Fprintf(w, "  %d received: %s\n", len(items), counts(kinds))
	fmt.Fprintf(w, "  by receiver: %s\n", counts(paths))
	chatTally(items, w)
	fmt.Fprintf(w, "  CloudEvents by type: %s\n", counts(types))
	if keep := sample(events, 10); len(keep) > 0 {
		fmt.Fprintf(w, "  a sample of %d (type, code, cluster, target), in the order received:\n", len(keep))
		for _, ev := range keep {
			fmt.Fprintf(w, "    %-21s %-24s %-18s %s\n", strings.TrimPrefix(ev.Type, "io.upgradewatch."),
				cmp.Or(ev.Data.Code, "-"), lastSegment(ev.Data.Cluster), cmp.Or(ev.Data.Target, "-"))
		}
	}
	fmt.Fprintf(w, "  duplicates: %d\n", dups)
	switch {
	case dups > 0:
		return fmt.Errorf("the sink received %d duplicate item(s); see %s/events", dups, sink)
	case len(events) == 0:
		return fmt.Errorf("no CloudEvent reached the sink; is UPGRADEWATCH_NOTIFY_WEBHOOK_URL set?")
	}
	return nil
}

func counts(m map[string]int) string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, fmt.Sprintf("%s %d", k, m[k]))
	}
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, ", ")
}

// sample picks up to n events, one per (type, code, cluster, target), taking
// each type in turn, the rarest first, and returns them in the order received.
func sample(events []cloudEvent, n int) []cloudEvent {
	type key struct{ typ, code, cluster, target string }
	seen := map[key]bool{}
	byType := map[string][]int{}
	for i, ev := range events {
		k := key{ev.Type, ev.Data.Code, ev.Data.Cluster, ev.Data.Target}
		if !seen[k] {
			seen[k] = true
			byType[ev.Type] = append(byType[ev.Type], i)
		}
	}
	queues := slices.Collect(maps.Values(byType))
	slices.SortStableFunc(queues, func(a, b []int) int {
		return cmp.Or(cmp.Compare(len(a), len(b)), cmp.Compare(a[0], b[0]))
	})
	var keep []int
	for len(keep) < n {
		took := false
		for i := range queues {
			if len(queues[i]) > 0 && len(keep) < n {
				keep, queues[i], took = append(keep, queues[i][0]), queues[i][1:], true
			}
		}
		if !took {
			break
		}
	}
	slices.Sort(keep)
	out := make([]cloudEvent, len(keep))
	for i, k := range keep {
		out[i] = events[k]
	}
	return out
}

// clusterStatus is the part of one cluster's Status the plan step prints.
type clusterStatus struct {
	Cluster struct {
		Name       string            `json:"name"`
		ResourceID string            `json:"resourceId"`
		Tags       map[string]string `json:"tags"`
	} `json:"cluster"`
	Remediations []struct {
		Action    string `json:"action"`
		Status    string `json:"status"`
		Code      string `json:"code"`
		Target    string `json:"target"`
		From      string `json:"from"`
		To        string `json:"to"`
		PlannedAt string `json:"plannedAt"`
		Detail    string `json:"detail"`
	} `json:"remediations"`
}

// plan prints a cluster's dry-run remediations and the planned CloudEvent the
// sink got for it; it fails when either is missing.
func plan(ctx context.Context, c *client, args []string, w io.Writer) error {
	sink, statusURL := args[0], args[1]
	var st clusterStatus
	if err := c.getJSON(ctx, statusURL, &st); err != nil {
		return err
	}
	name := st.Cluster.Name
	fmt.Fprintf(w, "  %s (the policy document allows it dry runs; its tag upgradewatch.remediate=%s); its remediations (Status API):\n",
		name, cmp.Or(st.Cluster.Tags["upgradewatch.remediate"], "(none)"))
	dry := false
	for _, r := range st.Remediations {
		fmt.Fprintf(w, "    %s  %s  %s on %s  %s -> %s  planned %s\n", r.Action, r.Status, r.Code, r.Target,
			cmp.Or(r.From, "(unknown)"), cmp.Or(r.To, "-"), r.PlannedAt)
		fmt.Fprintln(w, "      "+r.Detail)
		dry = dry || r.Status == "DryRun"
	}
	if !dry {
		return fmt.Errorf("no dry-run remediation recorded for %s; see %s", name, statusURL)
	}
	ev, err := c.plannedEvent(ctx, sink, st.Cluster.ResourceID)
	if err != nil {
		return err
	}
	if ev == nil {
		return fmt.Errorf("the sink got no %s CloudEvent with dryRun true for %s", plannedType, name)
	}
	fmt.Fprintf(w, "  %s received by bin/sink:\n", plannedType)
	var pretty strings.Builder
	enc := json.NewEncoder(&pretty)
	enc.SetIndent("    ", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(ev.raw); err != nil {
		return err
	}
	_, err = fmt.Fprint(w, "    "+pretty.String())
	return err
}

// plannedEvent waits a little for the background dispatch of the cluster's
// dry-run plan and returns the newest one the sink got.
func (c *client) plannedEvent(ctx context.Context, sink, resourceID string) (*cloudEvent, error) {
	end := c.now().Add(deadline)
	for {
		items, err := c.sinkItems(ctx, sink)
		if err != nil {
			return nil, err
		}
		for i := len(items) - 1; i >= 0; i-- {
			ev := items[i].Event
			if items[i].Kind == "cloudevent" && ev.Type == plannedType && strings.EqualFold(ev.Data.Cluster, resourceID) &&
				ev.Data.Remediation != nil && ev.Data.Remediation.DryRun {
				return &ev, nil
			}
		}
		if !c.now().Before(end) {
			return nil, nil
		}
		if err := sleep(ctx, poll); err != nil {
			return nil, err
		}
	}
}
