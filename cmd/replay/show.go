package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
)

// Shapes of the handler's status API. Times are RFC 3339 strings, absent when zero.
type clusterList struct {
	Count    int              `json:"count"`
	Clusters []clusterSummary `json:"clusters"`
}

type clusterSummary struct {
	Key                  string            `json:"key"`
	SubscriptionID       string            `json:"subscriptionId"`
	ResourceGroup        string            `json:"resourceGroup"`
	Name                 string            `json:"name"`
	ResourceID           string            `json:"resourceId"`
	UpgradeChannel       string            `json:"upgradeChannel"`
	NodeOSUpgradeChannel string            `json:"nodeOSUpgradeChannel"`
	KubernetesVersion    string            `json:"kubernetesVersion"`
	Pools                int               `json:"pools"`
	RollingPools         int               `json:"rollingPools"`
	LastEventAt          string            `json:"lastEventAt"`
	Tags                 map[string]string `json:"tags"`
	Support              string            `json:"support"`
	SupportVersion       string            `json:"supportVersion"`
	Signals              int64             `json:"signals"`
}

type clusterDetail struct {
	Cluster         clusterSummary    `json:"cluster"`
	Pools           []poolStatus      `json:"pools"`
	Upgrades        []upgradeStatus   `json:"upgrades"`
	ScheduledEvents []scheduledStatus `json:"scheduledEvents"`
}

type poolStatus struct {
	Name             string `json:"name"`
	Mode             string `json:"mode"`
	OSType           string `json:"osType"`
	OSSKU            string `json:"osSku"`
	VMSize           string `json:"vmSize"`
	Count            int    `json:"count"`
	NodeImageVersion string `json:"nodeImageVersion"`
	RollingState     string `json:"rollingState"`
	RollingSince     string `json:"rollingSince"`
	LatestUpgrade    string `json:"latestUpgrade"`
	Removed          bool   `json:"removed"`
}

type upgradeStatus struct {
	Key       string `json:"key"`
	Pool      string `json:"pool"`
	Outcome   string `json:"outcome"`
	StartedAt string `json:"startedAt"`
	EndedAt   string `json:"endedAt"`
	Signals   []struct {
		ID   string `json:"id"`
		Kind string `json:"kind"`
		Time string `json:"time"`
	} `json:"signals"`
}

type scheduledStatus struct {
	EventID        string `json:"eventId"`
	Status         string `json:"status"`
	UpgradeType    string `json:"upgradeType"`
	Source         string `json:"source"`
	Details        string `json:"details"`
	ScheduledTime  string `json:"scheduledTime"`
	StartTime      string `json:"startTime"`
	LastUpdateTime string `json:"lastUpdateTime"`
}

// show prints every cluster the handler holds: channels and version, pools,
// the three latest upgrades and the latest scheduled event.
func show(ctx context.Context, client *http.Client, base *url.URL, w io.Writer) error {
	var list clusterList
	if err := getJSON(ctx, client, base.JoinPath("api", "clusters"), &list); err != nil {
		return err
	}
	sort.Slice(list.Clusters, func(i, j int) bool { return list.Clusters[i].Key < list.Clusters[j].Key })
	var b strings.Builder
	fmt.Fprintf(&b, "upgradewatch holds %d clusters\n", len(list.Clusters))
	for _, c := range list.Clusters {
		sub, rg, name := c.SubscriptionID, c.ResourceGroup, c.Name
		if sub == "" || rg == "" || name == "" {
			parts := strings.SplitN(c.Key, "~", 3)
			if len(parts) != 3 {
				return fmt.Errorf("cluster %q: no subscription, resource group and name", c.Key)
			}
			sub, rg, name = parts[0], parts[1], parts[2]
		}
		var d clusterDetail
		if err := getJSON(ctx, client, base.JoinPath("api", "clusters", sub, rg, name), &d); err != nil {
			return err
		}
		fillFrom(&d.Cluster, c)
		render(&b, d)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// fillFrom completes a cluster detail with what the list said about it.
func fillFrom(d *clusterSummary, list clusterSummary) {
	for _, f := range []struct {
		dst *string
		src string
	}{
		{&d.Name, list.Name}, {&d.ResourceGroup, list.ResourceGroup}, {&d.SubscriptionID, list.SubscriptionID},
		{&d.UpgradeChannel, list.UpgradeChannel}, {&d.NodeOSUpgradeChannel, list.NodeOSUpgradeChannel},
		{&d.KubernetesVersion, list.KubernetesVersion}, {&d.LastEventAt, list.LastEventAt},
	} {
		if *f.dst == "" {
			*f.dst = f.src
		}
	}
}

func getJSON(ctx context.Context, client *http.Client, u *url.URL, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %s", u.Path, transportError(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("GET %s: HTTP %d %s", u.Path, resp.StatusCode, snippet(body))
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(v); err != nil {
		return fmt.Errorf("GET %s: decode: %w", u.Path, err)
	}
	return nil
}

// Column widths: pool names have at most 12 characters.
const (
	wPool    = 12
	wOS      = 20 // Windows/Windows2022
	wState   = 10
	wTime    = 17
	wOutcome = 10
)

func render(b *strings.Builder, d clusterDetail) {
	c := d.Cluster
	fmt.Fprintf(b, "\n%s  (%s, subscription %s)\n", c.Name, c.ResourceGroup, c.SubscriptionID)
	fmt.Fprintf(b, "  channels    upgrade=%s  node-os=%s\n", orDash(c.UpgradeChannel), orDash(c.NodeOSUpgradeChannel))
	fmt.Fprintf(b, "  kubernetes  %s", orDash(c.KubernetesVersion))
	if c.Support != "" {
		fmt.Fprintf(b, "  (support %s for %s)", c.Support, c.SupportVersion)
	}
	fmt.Fprintf(b, "\n  signals     %d, last event %s\n", c.Signals, shortTime(c.LastEventAt))

	pools := append([]poolStatus(nil), d.Pools...)
	sort.Slice(pools, func(i, j int) bool { return pools[i].Name < pools[j].Name })
	fmt.Fprintf(b, "  %-*s %-*s %-*s %-*s %s\n", wPool, "POOL", wOS, "OS", wState, "STATE", wTime, "SINCE", "NODE IMAGE")
	for _, p := range pools {
		state := orDash(p.RollingState)
		if p.Removed {
			state = "removed"
		}
		os := orDash(p.OSType)
		if p.OSSKU != "" {
			os += "/" + p.OSSKU
		}
		fmt.Fprintf(b, "  %-*s %-*s %-*s %-*s %s\n", wPool, p.Name, wOS, os, wState, state, wTime, shortTime(p.RollingSince), orDash(p.NodeImageVersion))
	}

	ups := append([]upgradeStatus(nil), d.Upgrades...)
	sort.SliceStable(ups, func(i, j int) bool {
		ti, tj := upgradeTime(ups[i]), upgradeTime(ups[j])
		if !ti.Equal(tj) {
			return ti.After(tj)
		}
		return ups[i].Key > ups[j].Key
	})
	if len(ups) > 3 {
		ups = ups[:3]
	}
	if len(ups) == 0 {
		b.WriteString("  no upgrades seen\n")
	} else {
		fmt.Fprintf(b, "  %-*s %-*s %s\n", wPool, "UPGRADE", wOutcome, "OUTCOME", "STARTED → ENDED")
		for _, u := range ups {
			fmt.Fprintf(b, "  %-*s %-*s %s → %s\n", wPool, u.Pool, wOutcome, orDash(u.Outcome), shortTime(u.StartedAt), shortTime(u.EndedAt))
		}
	}

	if s, ok := latestScheduled(d.ScheduledEvents); ok {
		fmt.Fprintf(b, "  scheduled   %s %s, window %s, updated %s\n", orDash(s.Status), orDash(s.UpgradeType),
			shortTime(s.ScheduledTime), shortTime(first(s.LastUpdateTime, s.StartTime)))
	}
}

func upgradeTime(u upgradeStatus) time.Time {
	t, _ := time.Parse(time.RFC3339Nano, first(u.StartedAt, u.EndedAt))
	return t
}

func latestScheduled(evs []scheduledStatus) (scheduledStatus, bool) {
	var best scheduledStatus
	var bestAt time.Time
	for i, s := range evs {
		at, _ := time.Parse(time.RFC3339Nano, first(s.LastUpdateTime, first(s.StartTime, s.ScheduledTime)))
		if i == 0 || at.After(bestAt) {
			best, bestAt = s, at
		}
	}
	return best, len(evs) > 0
}

// shortTime renders an RFC 3339 time to the minute, "-" when absent.
func shortTime(s string) string {
	if s == "" {
		return "-"
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return s
	}
	return t.UTC().Format("2006-01-02 15:04Z")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func first(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
