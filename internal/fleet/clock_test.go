package fleet

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestCheckTime(t *testing.T) {
	now := time.Date(2026, 11, 24, 9, 30, 0, 0, time.UTC)
	forged := time.Date(2099, 1, 1, 0, 0, 0, 0, time.FixedZone("", 2*3600))
	cases := []struct {
		name string
		t    time.Time
		ok   bool
	}{
		{"the past", now.Add(-72 * time.Hour), true},
		{"no time", time.Time{}, true},
		{"now", now, true},
		{"at the skew", now.Add(MaxClockSkew), true},
		{"just beyond the skew", now.Add(MaxClockSkew + time.Millisecond), false},
		{"2099 with an offset", forged, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckTime("event time", tc.t, now)
			if (err == nil) != tc.ok {
				t.Fatalf("CheckTime(%v) = %v, want ok %v", tc.t, err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrFutureTime) {
				t.Errorf("%v does not wrap ErrFutureTime", err)
			}
		})
	}
	err := CheckTime("event time", forged, now)
	for _, want := range []string{"event time 2098-12-31T22:00:00Z", "5m0s", "2026-11-24T09:30:00Z", "future"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q does not say %q", err, want)
		}
	}
}
