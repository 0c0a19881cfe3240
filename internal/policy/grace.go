package policy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"
	"time"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
)

// MaxGrace bounds a code's grace: longer, and an alert is no longer one.
const MaxGrace = 7 * 24 * time.Hour

// parseGrace reads the document's "grace": finding code → Go duration
// ("5m", "2h", "0s"), each code one of fleet.Codes, each duration 0 to
// MaxGrace. An absent or null grace leaves every code to its default.
func (s *Set) parseGrace(raw json.RawMessage) error {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	var m map[string]string
	if err := json.Unmarshal(raw, &m); err != nil {
		return fmt.Errorf(`grace: want an object of finding code to duration ("UpgradeFailed": "5m"): %w`, err)
	}
	codes := slices.Collect(maps.Keys(m))
	sort.Strings(codes)
	s.grace = make(map[string]time.Duration, len(m))
	for _, code := range codes {
		if !slices.Contains(fleet.Codes, code) {
			return fmt.Errorf("grace.%s: not a finding code (docs/findings.md lists them)", code)
		}
		d, err := time.ParseDuration(m[code])
		if err != nil {
			return fmt.Errorf("grace.%s %q: not a duration (write 90s, 5m, 2h)", code, m[code])
		}
		if d < 0 || d > MaxGrace {
			return fmt.Errorf("grace.%s %q: out of range (want 0s to %s)", code, m[code], MaxGrace)
		}
		s.grace[code] = d
	}
	return nil
}

// Grace returns the document's grace per finding code (a copy; nil when the
// document sets none): overrides of the defaults (outbox.DefaultGrace).
func (s *Set) Grace() map[string]time.Duration {
	if s == nil {
		return nil
	}
	return maps.Clone(s.grace)
}
