package main

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // the digest's IANA zones, whatever the host's image carries

	"github.com/upgradewatch/upgradewatch/internal/notify"
	"github.com/upgradewatch/upgradewatch/internal/policy"
	"github.com/upgradewatch/upgradewatch/internal/state"
	"github.com/upgradewatch/upgradewatch/internal/watch"
)

// Settings of the daily digest.
const (
	envDigest   = "UPGRADEWATCH_NOTIFY_DIGEST"
	envDigestTZ = "UPGRADEWATCH_NOTIFY_DIGEST_TZ"
)

// DigestConfig is when the daily digest goes out; nil Schedule: never.
type DigestConfig struct {
	// Digest is UPGRADEWATCH_NOTIFY_DIGEST ("daily@08:00") in the zone
	// UPGRADEWATCH_NOTIFY_DIGEST_TZ (an IANA name, default UTC).
	Digest *watch.DigestSchedule
}

var digestRE = regexp.MustCompile(`^daily@([01][0-9]|2[0-3]):([0-5][0-9])$`)

// parseDigest reads UPGRADEWATCH_NOTIFY_DIGEST and UPGRADEWATCH_NOTIFY_DIGEST_TZ.
func parseDigest(getenv func(string) string) (DigestConfig, error) {
	v, tz := strings.TrimSpace(getenv(envDigest)), strings.TrimSpace(getenv(envDigestTZ))
	if v == "" || strings.EqualFold(v, "off") {
		if tz != "" {
			return DigestConfig{}, fmt.Errorf("%s is set without %s", envDigestTZ, envDigest)
		}
		return DigestConfig{}, nil
	}
	m := digestRE.FindStringSubmatch(strings.ToLower(v))
	if m == nil {
		return DigestConfig{}, fmt.Errorf("%s=%q: want daily@HH:MM (24-hour, e.g. daily@08:00) or off", envDigest, v)
	}
	zone := time.UTC
	if tz != "" {
		var err error
		// "Local" would be the host's zone, which differs between instances.
		if zone, err = time.LoadLocation(tz); err != nil || tz == "Local" {
			return DigestConfig{}, fmt.Errorf("%s=%q: not an IANA time zone (e.g. Europe/Berlin, America/New_York, UTC)", envDigestTZ, tz)
		}
	}
	h, _ := strconv.Atoi(m[1])
	mi, _ := strconv.Atoi(m[2])
	return DigestConfig{Digest: &watch.DigestSchedule{Hour: h, Minute: mi, Zone: zone}}, nil
}

// describe is the startup log's value: "daily@08:00 Europe/Berlin" or "off".
func (c DigestConfig) describe() string {
	if c.Digest == nil {
		return "off"
	}
	return fmt.Sprintf("daily@%02d:%02d %s", c.Digest.Hour, c.Digest.Minute, c.Digest.Zone)
}

// digestSinks are the chat sinks a human route sends to: every Teams and
// Slack sink when the policy has no routes (or no defaultRoute), else
// those some route names.
func digestSinks(sinks []notify.Sink, policies *policy.Set) []notify.DigestSender {
	routed, all := policies.RoutedSinks()
	var out []notify.DigestSender
	for _, s := range sinks {
		if d, ok := s.(notify.DigestSender); ok && (all || slices.Contains(routed, s.Name())) {
			out = append(out, d)
		}
	}
	return out
}

// digestOptions is the App's digest, nil when off or when no chat sink
// would get it.
func digestOptions(cfg Config, store *state.Store, table *state.DigestTable, sinks []notify.Sink, policies *policy.Set) *watch.Digest {
	if cfg.Digest.Digest == nil {
		return nil
	}
	var to []watch.DigestSender
	for _, s := range digestSinks(sinks, policies) {
		to = append(to, s)
	}
	if len(to) == 0 {
		return nil
	}
	return &watch.Digest{Schedule: *cfg.Digest.Digest, Store: table, Resolved: store, Sinks: to, PublicURL: cfg.Notify.PublicURL}
}
