package outbox

import (
	"maps"
	"sort"
	"time"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
)

// Grace is how long a finding of each code must have been open, continuously,
// before its opening is announced: Prometheus' `for:`. A finding that
// resolves inside its grace sends nothing at all. The clock starts when
// upgradewatch first held the opening (Finding.NoticedAt), not at its event
// time, so a backlog delivered late has its grace to deliver its cures too.
// A code the map does not name has no grace; a nil Grace has none at all.
type Grace map[string]time.Duration

// DefaultGrace returns the graces cmd/handler starts from (the policy
// document's "grace" overrides them; docs/notifications.md gives the
// reasons): failures are told within minutes, a stall after a short wait
// (its deadline already carries the slack), and conditions a change in
// progress may clear (drift, windows, images, skew) only once they lasted.
func DefaultGrace() Grace {
	return Grace{
		fleet.CodeUpgradeFailed:             5 * time.Minute,
		fleet.CodeUpgradeStalled:            15 * time.Minute,
		fleet.CodeNodeQuarantined:           30 * time.Minute,
		fleet.CodeUnsupportedChannel:        30 * time.Minute,
		fleet.CodeNoSecurityUpdates:         30 * time.Minute,
		fleet.CodeClusterSupportEnded:       30 * time.Minute,
		fleet.CodeClusterSupportEnding:      time.Hour,
		fleet.CodePolicyNotApplicable:       time.Hour,
		fleet.CodeChannelChangeNotApplied:   time.Hour,
		fleet.CodeMissedMaintenanceWindow:   time.Hour,
		fleet.CodeChannelDrift:              2 * time.Hour,
		fleet.CodeUpgradeChannelDrift:       2 * time.Hour,
		fleet.CodeChannelLocked:             2 * time.Hour,
		fleet.CodeRebootsUnmanaged:          2 * time.Hour,
		fleet.CodeMaintenanceWindowTooShort: 2 * time.Hour,
		fleet.CodeMaintenanceWindowMissing:  2 * time.Hour,
		fleet.CodeVersionSkew:               2 * time.Hour,
		fleet.CodeImageStale:                6 * time.Hour,
	}
}

// With returns a copy of g with the codes of o set to o's durations.
func (g Grace) With(o map[string]time.Duration) Grace {
	out := maps.Clone(g)
	if out == nil {
		out = Grace{}
	}
	maps.Copy(out, o)
	return out
}

// For returns the grace of a code.
func (g Grace) For(code string) time.Duration { return g[code] }

// SilenceRecheck bounds how long a finding held by a silence (from the
// Silences API) waits before its cluster is judged again: ending a silence
// re-evaluates the clusters it held on the instance that ended it, and this
// catches one whose finding opened elsewhere meanwhile.
const SilenceRecheck = 10 * time.Minute

func earliest(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// hold brings each open finding's announcement bookkeeping up to date at
// now: the grace it waits for, and the silence that holds it. A silence's
// end wakes the cluster when an announcement waits for it.
func hold(c *fleet.Cluster, now time.Time, cfg Config) {
	var silences []fleet.Silence
	if cfg.Silences != nil {
		silences = cfg.Silences(now)
	}
	tagUntil, tagged := c.TagSilence()
	tagged = tagged && now.Before(tagUntil)
	for _, f := range c.Findings {
		if f.Status != fleet.FindingOpen {
			continue
		}
		if f.NoticedAt.IsZero() {
			// Recorded before announcements were tracked, when every opening
			// was announced as it opened.
			f.NoticedAt, f.GraceUntil, f.AnnouncedAt = f.OpenedAt, f.OpenedAt, f.OpenedAt
		}
		if f.GraceUntil.IsZero() {
			f.GraceUntil = f.NoticedAt.Add(cfg.Grace.For(f.Code)).UTC()
		}
		by, until := "", time.Time{}
		if tagged {
			by, until = "tag "+fleet.SilenceTag, tagUntil
		}
		for i := range silences {
			s := &silences[i]
			if s.ActiveAt(now) && s.Matches(c.ID, f.Code, f.Target) && s.End().After(until) {
				by, until = s.ID, s.End()
			}
		}
		f.SilencedBy = by
		if by != "" && f.AnnouncedAt.IsZero() {
			if !tagged || by != "tag "+fleet.SilenceTag {
				// A silence ended early on another instance reaches this
				// one's cache within a minute; look again well before
				// its planned end so the opening is not held that long.
				until = earliest(until, now.Add(SilenceRecheck))
			}
			wake(c, until)
		}
	}
}

// announce records the opening of each open finding that is due: past its
// grace, neither silenced nor inhibited, severe enough, and not announced
// in this opening yet. The rest wake the cluster at their grace's end (a
// silence's end was woken for by hold; an inhibition ends with a signal).
func announce(c *fleet.Cluster, now time.Time, cfg Config) {
	open := c.OpenFindings()
	sort.SliceStable(open, func(i, j int) bool { return open[i].OpenedAt.Before(open[j].OpenedAt) })
	for _, f := range open {
		if !f.AnnouncedAt.IsZero() || f.Held() || !severe(f.Severity, cfg.MinSeverity) {
			continue
		}
		if now.Before(f.GraceUntil) {
			wake(c, f.GraceUntil)
			continue
		}
		f.AnnouncedAt = now.UTC()
		if cfg.enabled() {
			add(c, findingIntent(c, f, fleet.StepOpened, now, 0, ""), cfg, now)
		}
	}
}
