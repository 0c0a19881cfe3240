package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
)

// showJSON prints a GET's answer indented.
func showJSON(ctx context.Context, c *client, args []string, w io.Writer) error {
	var v json.RawMessage
	if err := c.getJSON(ctx, args[0], &v); err != nil {
		return err
	}
	var b bytes.Buffer
	if err := json.Indent(&b, v, "", "  "); err != nil {
		return err
	}
	_, err := fmt.Fprintln(w, b.String())
	return err
}

// inventoryAnswer is what NodeInventory answers about one snapshot.
type inventoryAnswer struct {
	Result       string `json:"result"`
	Error        string `json:"error"`
	Nodes        int    `json:"nodes"`
	Skipped      int    `json:"skipped"`
	Changed      int    `json:"changedNodes"`
	History      int    `json:"versionChanges"`
	Transactions int    `json:"transactions"`
}

// postNodes posts each node snapshot file to the cluster's nodes route.
func postNodes(ctx context.Context, c *client, args []string, w io.Writer) error {
	url := args[0]
	for _, path := range args[1:] {
		body, err := readFile(path)
		if err != nil {
			return err
		}
		var a inventoryAnswer
		code, err := c.postJSON(ctx, url, body, &a)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "POST %s < %s\n", url, path)
		if code != http.StatusOK {
			return fmt.Errorf("HTTP %d: %s", code, cmp.Or(a.Error, a.Result))
		}
		fmt.Fprintf(w, "  %s: %d nodes (%d skipped), %d node rows written, %d image changes, %d transaction(s)\n",
			a.Result, a.Nodes, a.Skipped, a.Changed, a.History, a.Transactions)
	}
	return nil
}

// nodesAnswer is the part of GET …/nodes the demo prints.
type nodesAnswer struct {
	Pools []struct {
		Pool        string `json:"pool"`
		Nodes       int    `json:"nodes"`
		Ready       int    `json:"ready"`
		Quarantined int    `json:"quarantined"`
		Versions    []struct {
			Version string `json:"version"`
			Nodes   int    `json:"nodes"`
		} `json:"versions"`
	} `json:"pools"`
	History []struct {
		ObservedAt string `json:"observedAt"`
		Node       string `json:"node"`
		From       string `json:"from"`
		To         string `json:"to"`
	} `json:"history"`
}

// showSpread prints each pool's version spread and the image history.
func showSpread(ctx context.Context, c *client, args []string, w io.Writer) error {
	var r nodesAnswer
	if err := c.getJSON(ctx, args[0], &r); err != nil {
		return err
	}
	for _, p := range r.Pools {
		var spread []string
		for _, v := range p.Versions {
			spread = append(spread, fmt.Sprintf("%s x%d", v.Version, v.Nodes))
		}
		fmt.Fprintf(w, "  pool %-8s %d nodes, %d ready, %d quarantined: %s\n",
			p.Pool, p.Nodes, p.Ready, p.Quarantined, strings.Join(spread, ", "))
	}
	for _, h := range r.History {
		fmt.Fprintf(w, "  %s  %s: %s -> %s\n", h.ObservedAt, h.Node, h.From, h.To)
	}
	return nil
}

// postFile posts a file and prints only the status.
func postFile(ctx context.Context, c *client, args []string, w io.Writer) error {
	body, err := readFile(args[1])
	if err != nil {
		return err
	}
	code, out, err := c.do(ctx, http.MethodPost, args[0], body)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "  HTTP %d\n", code)
	if code >= 300 {
		return fmt.Errorf("POST %s: HTTP %d: %s", args[0], code, snippet(out))
	}
	return nil
}

// rolling delivers NodePoolRolling<kind> events (Event Grid schema, now) for
// one pool, one per kind in order, and prints each answer.
func rolling(ctx context.Context, c *client, args []string, w io.Writer) error {
	base, topic, pool := args[0], args[1], args[2]
	name := topic[strings.LastIndex(topic, "/")+1:]
	for _, kind := range args[3:] {
		ev := map[string]any{
			"id": uuid.NewString(), "topic": topic, "subject": name,
			"eventType": "Microsoft.ContainerService.NodePoolRolling" + kind,
			"eventTime": c.now().UTC().Format(time.RFC3339),
			"data":      map[string]string{"nodePoolName": pool}, "dataVersion": "1", "metadataVersion": "1",
		}
		rv, err := c.invoke(ctx, base, "AksEvents", "event", ev)
		if err != nil {
			return err
		}
		fmt.Fprintln(w, "  "+compact(rv))
	}
	return nil
}

// sweep invokes the Sweep function as its timer trigger would.
func sweep(ctx context.Context, c *client, args []string, w io.Writer) error {
	rv, err := c.invoke(ctx, args[0], "Sweep", "timer", map[string]any{"IsPastDue": false})
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(w, "  "+compact(rv))
	return err
}

// findingsAnswer is GET /api/findings.
type findingsAnswer struct {
	Count      int            `json:"count"`
	BySeverity map[string]int `json:"bySeverity"`
	Findings   []struct {
		Severity string `json:"severity"`
		Code     string `json:"code"`
		Cluster  string `json:"cluster"`
		Target   string `json:"target"`
		Summary  string `json:"summary"`
	} `json:"findings"`
}

// findings prints the fleet's open findings.
func findings(ctx context.Context, c *client, args []string, w io.Writer) error {
	var r findingsAnswer
	if err := c.getJSON(ctx, strings.TrimRight(args[0], "/")+"/api/findings", &r); err != nil {
		return err
	}
	sev := make([]string, 0, len(r.BySeverity))
	for _, k := range slices.Sorted(maps.Keys(r.BySeverity)) {
		sev = append(sev, fmt.Sprintf("%s %d", k, r.BySeverity[k]))
	}
	fmt.Fprintf(w, "  %d open: %s\n", r.Count, strings.Join(sev, ", "))
	for _, f := range r.Findings {
		fmt.Fprintf(w, "  %-8s %-26s %-19s %-22s %s\n", f.Severity, f.Code, lastSegment(f.Cluster), f.Target, clip(f.Summary, 90))
	}
	return nil
}

func lastSegment(id string) string {
	if id == "" {
		return "-"
	}
	return id[strings.LastIndex(id, "/")+1:]
}

// clip shortens s to n runes.
func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n])
}

// complianceAnswer is GET /api/compliance.
type complianceAnswer struct {
	AsOf     string         `json:"asOf"`
	Clusters int            `json:"clusters"`
	ByStatus map[string]int `json:"byStatus"`
	Pools    struct {
		Total          int     `json:"total"`
		Current        int     `json:"current"`
		WithinPolicy   int     `json:"withinPolicy"`
		Behind         int     `json:"behind"`
		Unknown        int     `json:"unknown"`
		PercentCurrent float64 `json:"percentCurrent"`
	} `json:"pools"`
	MaxDaysBehind int `json:"maxDaysBehind"`
	TimeToPatch   struct {
		Last90Days struct {
			Count         int   `json:"count"`
			MedianSeconds int64 `json:"medianSeconds"`
		} `json:"last90Days"`
	} `json:"timeToPatch"`
	PoolsNotUpToDate []struct {
		Cluster    string `json:"cluster"`
		Pool       string `json:"pool"`
		Status     string `json:"status"`
		BlockedBy  string `json:"blockedBy"`
		Reason     string `json:"reason"`
		DaysBehind int    `json:"daysBehind"`
	} `json:"poolsNotUpToDate"`
	PoolsOmitted int `json:"poolsOmitted"`
}

// compliance prints the fleet's patch compliance and, for each pool not
// current, its status and reason in one line.
func compliance(ctx context.Context, c *client, args []string, w io.Writer) error {
	var r complianceAnswer
	if err := c.getJSON(ctx, strings.TrimRight(args[0], "/")+"/api/compliance", &r); err != nil {
		return err
	}
	if r.Clusters == 0 {
		return errors.New("the compliance figures hold no cluster")
	}
	st := make([]string, 0, len(r.ByStatus))
	for _, k := range slices.Sorted(maps.Keys(r.ByStatus)) {
		if r.ByStatus[k] > 0 {
			st = append(st, fmt.Sprintf("%s %d", k, r.ByStatus[k]))
		}
	}
	fmt.Fprintf(w, "  %d clusters, %d pools: %.1f%% current, %d within policy, %d behind, %d unknown; most days behind %d (as of %s)\n",
		r.Clusters, r.Pools.Total, r.Pools.PercentCurrent, r.Pools.WithinPolicy, r.Pools.Behind, r.Pools.Unknown, r.MaxDaysBehind, r.AsOf)
	fmt.Fprintf(w, "  by status: %s\n", strings.Join(st, ", "))
	if n := r.TimeToPatch.Last90Days.Count; n > 0 {
		fmt.Fprintf(w, "  time-to-patch, last 90 days: %d operations, median %s\n", n, time.Duration(r.TimeToPatch.Last90Days.MedianSeconds)*time.Second)
	}
	for _, p := range r.PoolsNotUpToDate {
		status := p.Status
		if p.BlockedBy != "" {
			status += "/" + p.BlockedBy
		}
		fmt.Fprintf(w, "  %-36s %-24s %s\n", status, lastSegment(p.Cluster)+"/"+p.Pool, clip(p.Reason, 110))
	}
	if r.PoolsOmitted > 0 {
		fmt.Fprintf(w, "  … and %d more pools not up to date\n", r.PoolsOmitted)
	}
	return nil
}
