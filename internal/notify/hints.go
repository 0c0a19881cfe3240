package notify

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
)

// hints says what to do about each finding code, after docs/findings.md's
// "Do:" lines. Placeholders are filled in from the notification so that
// commands can be pasted: {rg} and {cluster}; {pool} and {config} from the
// target; {desired} from the evidence (the channel the policy wants). One the
// notification does not know stays a <placeholder>.
var hints = map[string]string{
	fleet.CodeChannelDrift:              "Set the node OS channel back (`az aks update -g {rg} -n {cluster} --node-os-upgrade-channel {desired}`), or change the policy if the change was intended. Expect up to 24 h and a reimage.",
	fleet.CodeUpgradeChannelDrift:       "Set the cluster upgrade channel back (`az aks update -g {rg} -n {cluster} --auto-upgrade-channel {desired}`), or adjust the policy.",
	fleet.CodeUnsupportedChannel:        "AKS does not patch this pool through SecurityPatch: use NodeImage for the cluster, or move these workloads to a cluster on NodeImage.",
	fleet.CodeChannelLocked:             "Move the cluster upgrade channel off node-image (it is being deprecated) first, then set the node OS channel.",
	fleet.CodeNoSecurityUpdates:         "Nodes get no OS security updates: choose NodeImage or SecurityPatch (Linux only) with `az aks update -g {rg} -n {cluster} --node-os-upgrade-channel NodeImage`.",
	fleet.CodeRebootsUnmanaged:          "Kernel updates wait for a reboot AKS does not perform: run a reboot manager such as kured, or move to NodeImage or SecurityPatch.",
	fleet.CodeMaintenanceWindowTooShort: "Lengthen the window to at least 4 h: `az aks maintenanceconfiguration update -g {rg} --cluster-name {cluster} -n {config} --duration 6`.",
	fleet.CodeMaintenanceWindowMissing:  "Add an aksManagedNodeOSUpgradeSchedule so node images roll when you choose (`az aks maintenanceconfiguration add -g {rg} --cluster-name {cluster} -n aksManagedNodeOSUpgradeSchedule …`).",
	fleet.CodeChannelChangeNotApplied:   "Check the activity log for failed agentPools/write operations; `az aks update -g {rg} -n {cluster}` with no other arguments reconciles a cluster stuck after a change.",
	fleet.CodeUpgradeStalled:            "Look for pods whose PodDisruptionBudget blocks eviction, surge quota (SKUNotAvailable, AllocationFailed), a full subnet or quarantined nodes; see the pool's activity log.",
	fleet.CodeUpgradeFailed:             "Read the evidence (the message often names the node and the PodDisruptionBudget), fix the blocker, then `az aks nodepool upgrade -g {rg} --cluster-name {cluster} -n {pool} --node-image-only`, or wait for the next window.",
	fleet.CodeImageStale:                "Check for missed windows and failed upgrades, then `az aks nodepool upgrade -g {rg} --cluster-name {cluster} -n {pool} --node-image-only`.",
	fleet.CodeMissedMaintenanceWindow:   "AKS schedules an upgrade only if it estimates it fits in 24 h and the window is at least 4 h: check the window's length, its not-allowed dates, and the pool's size against maxSurge.",
	fleet.CodeVersionSkew:               "Nodes were left behind: `az aks nodepool upgrade -g {rg} --cluster-name {cluster} -n {pool} --node-image-only`; across pools, find out why one pool did not upgrade.",
	fleet.CodeNodeQuarantined:           "AKS could not drain these nodes: fix the PodDisruptionBudget or pod that blocked the drain, then delete or upgrade the nodes.",
	fleet.CodeClusterSupportEnding:      "Node OS auto-upgrade works only on a supported minor version: plan `az aks upgrade -g {rg} -n {cluster} --kubernetes-version <version>`.",
	fleet.CodeClusterSupportEnded:       "Node OS auto-upgrade works only on a supported minor version: `az aks upgrade -g {rg} -n {cluster} --kubernetes-version <version>`.",
	fleet.CodePolicyNotApplicable:       "Fix the cluster's upgradewatch.* tag or the policy; the evidence names the problem.",
}

// hint is what to do about n's finding, or "" for an unknown code.
func hint(n Notification) string {
	h, ok := hints[n.Code]
	if !ok {
		return ""
	}
	pool, config, desired := "<pool>", "<config>", "<channel>"
	if p := poolOf(n.Target); p != "" {
		pool = p
	}
	if c, ok := strings.CutPrefix(n.Target, "maintenance/"); ok && c != "" {
		config = c
	}
	var ev struct {
		Desired string `json:"desired"`
	}
	if raw, err := evidence(n.Evidence); err == nil && raw != nil && json.Unmarshal(raw, &ev) == nil && ev.Desired != "" {
		desired = ev.Desired
	}
	return strings.NewReplacer("{rg}", n.Cluster.ResourceGroup, "{cluster}", n.Cluster.Name,
		"{pool}", pool, "{config}", config, "{desired}", desired).Replace(h)
}

// advice is the "what to do" paragraph for n.
func advice(n Notification) string {
	r := n.Remediation
	switch n.Type {
	case TypeFindingResolved:
		return "Nothing: the condition no longer holds."
	case TypeRemediationPlanned:
		if r != nil && r.DryRun {
			return "Dry run: nothing was changed. To let upgradewatch do this itself, set the cluster tag upgradewatch.remediate=apply (or remediate in the policy); otherwise do it yourself."
		}
		return "Nothing yet: upgradewatch will do this itself and report the outcome."
	case TypeRemediationApplied:
		return "Nothing: upgradewatch made the change. The finding resolves once the effect is observed."
	case TypeRemediationFailed:
		if h := hint(n); h != "" {
			return "upgradewatch could not fix this; do it by hand. " + h
		}
		return "upgradewatch could not fix this; do it by hand."
	}
	return hint(n)
}

// poolOf is the pool a target names ("pool/<name>[/…]"), or "".
func poolOf(target string) string {
	rest, ok := strings.CutPrefix(target, "pool/")
	if !ok {
		return ""
	}
	pool, _, _ := strings.Cut(rest, "/")
	return pool
}

// describeTarget names a finding target for people.
func describeTarget(target string) string {
	kind, name, ok := strings.Cut(target, "/")
	if !ok {
		if target == "cluster" || target == "" {
			return "the cluster"
		}
		return target
	}
	switch kind {
	case "pool":
		if pool, rest, ok := strings.Cut(name, "/"); ok && rest == "latest" {
			return "pool " + pool + " (newest image)"
		}
		return "pool " + name
	case "node":
		return "node " + name
	case "maintenance":
		return "maintenance configuration " + name
	case "scheduled":
		return "scheduled event " + name
	case "family":
		return "image family " + name
	case "ossku":
		return "OS SKU " + name
	}
	return target
}

// where is the cluster and target in a few words: "aks-payments-weu, pool payments".
func where(n Notification) string {
	if n.Target == "" || n.Target == "cluster" {
		return n.Cluster.Name
	}
	return n.Cluster.Name + ", " + describeTarget(n.Target)
}

// headline is what happened, in one line: severity, code, step, where.
func headline(n Notification) string {
	var b strings.Builder
	if n.Severity != "" {
		b.WriteString("[" + n.Severity + "] ")
	}
	code := n.Code
	if code == "" {
		code = "Remediation"
	}
	b.WriteString(code)
	switch n.Type {
	case TypeFindingOpened:
		b.WriteString(" opened")
	case TypeFindingReminded:
		if n.EscalatedFrom != "" {
			b.WriteString(" escalated from " + n.EscalatedFrom)
		} else {
			b.WriteString(" still open")
		}
	case TypeFindingResolved:
		b.WriteString(" resolved")
	case TypeRemediationPlanned:
		if n.Remediation != nil && n.Remediation.DryRun {
			b.WriteString(": fix planned (dry run)")
		} else {
			b.WriteString(": fix planned")
		}
	case TypeRemediationApplied:
		b.WriteString(": fix applied")
	case TypeRemediationFailed:
		b.WriteString(": fix failed")
	}
	b.WriteString(" on " + where(n))
	if n.Type == TypeFindingReminded && n.Reminder > 0 {
		fmt.Fprintf(&b, " (reminder %d)", n.Reminder)
	}
	return b.String()
}

// fact is one labelled value of a notification, rendered as a Teams fact or a
// Slack field.
type fact struct{ title, value string }

// facts are the labelled values of n, in reading order.
func facts(n Notification) []fact {
	out := []fact{
		{"Cluster", n.Cluster.Name + " (resource group " + n.Cluster.ResourceGroup + ")"},
		{"Target", describeTarget(n.Target)},
	}
	if n.Severity != "" {
		out = append(out, fact{"Severity", n.Severity})
	}
	if !n.OpenedAt.IsZero() {
		since := stamp(n.OpenedAt)
		if n.ResolvedAt.IsZero() && n.Time.After(n.OpenedAt) {
			since += " (open " + human(n.Time.Sub(n.OpenedAt)) + ")"
		}
		out = append(out, fact{"Since", since})
	}
	if !n.ResolvedAt.IsZero() {
		resolved := stamp(n.ResolvedAt)
		if !n.OpenedAt.IsZero() && n.ResolvedAt.After(n.OpenedAt) {
			resolved += " (after " + human(n.ResolvedAt.Sub(n.OpenedAt)) + ")"
		}
		out = append(out, fact{"Resolved", resolved})
	}
	if n.Type == TypeFindingReminded && n.Reminder > 0 {
		out = append(out, fact{"Reminder", fmt.Sprint(n.Reminder)})
	}
	if n.EscalatedFrom != "" {
		out = append(out, fact{"Escalated", n.EscalatedFrom + " → " + n.Severity})
	}
	if r := n.Remediation; r != nil {
		mode := "apply"
		if r.DryRun {
			mode = "dry run"
		}
		out = append(out, fact{"Action", r.Action}, fact{"Mode", mode})
	}
	out = append(out, fact{"Subscription", n.Cluster.SubscriptionID})
	return out
}

// stamp formats t for people, in UTC.
func stamp(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 MST") }

// human formats a duration as "3 d 4 h", "5 h 12 min", "7 min".
func human(d time.Duration) string {
	switch {
	case d < time.Minute:
		return "under a minute"
	case d < time.Hour:
		return fmt.Sprintf("%d min", int(d/time.Minute))
	case d < 24*time.Hour:
		return fmt.Sprintf("%d h %d min", int(d/time.Hour), int(d%time.Hour/time.Minute))
	}
	return fmt.Sprintf("%d d %d h", int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour))
}

// clip cuts s to at most n runes, ending in "…" when cut.
func clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// evidenceText is the evidence, indented for reading, clipped to limit runes; ""
// when there is none.
func evidenceText(n Notification, limit int) string {
	ev, err := evidence(n.Evidence)
	if err != nil || ev == nil {
		return ""
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, ev, "", "  "); err != nil {
		return ""
	}
	return clip(strings.TrimSpace(buf.String()), limit)
}
