package handlers

import (
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
	"github.com/upgradewatch/upgradewatch/internal/watch"
)

// A silence request from outside bytes either is refused with a message or
// makes a silence within every bound: never a panic, never an unbounded or
// unmatchable silence. The fixtures are the seeds.
func FuzzDecodeSilence(f *testing.F) {
	files, _ := filepath.Glob("testdata/silences/*.json")
	if len(files) == 0 {
		f.Fatal("no seeds in testdata/silences")
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, "")
	}
	f.Add([]byte(`{"match": {"cluster": "a/b/[c"}, "until": "2026-12-18T17:00:00Z", "comment": "x", "createdBy": "y"}`), "jane")
	now := time.Date(2026, 12, 14, 9, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, body []byte, principal string) {
		req := httptest.NewRequest("POST", "/api/silences", strings.NewReader(string(body)))
		r, bad := decodeSilenceRequest(req, principal)
		if bad != "" {
			return
		}
		s, err := watch.CheckSilence(r, now)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("a refusal without a message")
			}
			return
		}
		checkAccepted(t, s, now)
	})
}

func checkAccepted(t *testing.T, s fleet.Silence, now time.Time) {
	t.Helper()
	switch {
	case s.Cluster == "" && s.Code == "" && s.Target == "":
		t.Fatal("accepted a silence that matches everything")
	case !s.Until.After(now) || s.Until.Sub(now) > watch.MaxSilenceAhead:
		t.Fatalf("accepted until %v", s.Until)
	case s.Code != "" && !slices.Contains(fleet.Codes, s.Code):
		t.Fatalf("accepted code %q", s.Code)
	case s.Comment == "" || s.CreatedBy == "" || utf8.RuneCountInString(s.Comment) > watch.MaxSilenceComment:
		t.Fatalf("accepted comment %q by %q", s.Comment, s.CreatedBy)
	}
	for _, v := range []string{s.Cluster, s.Target, s.CreatedBy} {
		if utf8.RuneCountInString(v) > watch.MaxSilenceField {
			t.Fatalf("accepted a field of %d characters", utf8.RuneCountInString(v))
		}
	}
	if n := strings.Count(s.Cluster, "/"); n != 0 && n != 2 {
		t.Fatalf("accepted cluster %q", s.Cluster)
	}
	for _, p := range append(strings.Split(s.Cluster, "/"), s.Target) {
		if _, err := path.Match(p, ""); err != nil {
			t.Fatalf("accepted glob %q: %v", p, err)
		}
	}
}
