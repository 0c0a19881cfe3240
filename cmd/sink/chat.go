package main

import (
	"encoding/json"
	"net/url"
	"regexp"
	"strconv"
	"strings"
)

// groupFooter is the footer of a grouped Teams or Slack message
// ("upgradewatch · 5 steps · group <id>"); a single step's card has none.
var groupFooter = regexp.MustCompile(`upgradewatch · (\d+) steps · group `)

// chatFacts reads which cluster a Teams or Slack message is about and how
// many steps it carries, so the tally can count messages per cluster. The
// cluster is the name in the message's "Open status" link
// (…/api/clusters/{subscriptionId}/{resourceGroup}/{clusterName}); "" when the
// message has none. Steps is the grouped footer's count, else 1.
func chatFacts(body []byte) (cluster string, steps int) {
	var v any
	if json.Unmarshal(body, &v) != nil {
		return "", 0
	}
	steps = 1
	walkStrings(v, func(s string) {
		if cluster == "" {
			cluster = clusterOfStatusURL(s)
		}
		if m := groupFooter.FindStringSubmatch(s); m != nil {
			if n, err := strconv.Atoi(m[1]); err == nil && n > 0 {
				steps = n
			}
		}
	})
	return cluster, steps
}

// walkStrings calls f with every string value in v, depth first.
func walkStrings(v any, f func(string)) {
	switch x := v.(type) {
	case string:
		f(x)
	case []any:
		for _, e := range x {
			walkStrings(e, f)
		}
	case map[string]any:
		for _, e := range x {
			walkStrings(e, f)
		}
	}
}

// clusterOfStatusURL returns the cluster name of a Status API link, or "".
func clusterOfStatusURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return ""
	}
	_, rest, ok := strings.Cut(u.Path, "/api/clusters/")
	if !ok {
		return ""
	}
	parts := strings.Split(rest, "/")
	if len(parts) < 3 || parts[2] == "" {
		return ""
	}
	return oneLine(parts[2], 80)
}
