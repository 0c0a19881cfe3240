package events

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
)

// addActivitySeeds seeds f with the activity fixtures whose names match one
// of the prefixes, accepted and rejected.
func addActivitySeeds(f *testing.F, prefixes ...string) {
	f.Helper()
	for _, pattern := range []string{"testdata/activity/*", "testdata/activity/reject/*"} {
		files, err := filepath.Glob(pattern)
		if err != nil {
			f.Fatal(err)
		}
		for _, file := range files {
			name := filepath.Base(file)
			if info, err := os.Stat(file); err != nil || info.IsDir() || !hasAnyPrefix(name, prefixes) {
				continue
			}
			b, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// checkFuzzedSignal holds an accepted activity-log signal to its invariants.
func checkFuzzedSignal(t *testing.T, sig fleet.Signal) {
	t.Helper()
	switch sig.Kind {
	case fleet.KindIgnored:
	case fleet.KindActivity:
		a := sig.Activity
		if a == nil || !strings.HasPrefix(sig.ID, "act-") || sig.Time.IsZero() || sig.Cluster.IsZero() || a.Operation == "" {
			t.Fatalf("accepted an incomplete activity: ID %q Time %v Cluster %v Activity %+v", sig.ID, sig.Time, sig.Cluster, a)
		}
		if fleet.IsPoolOperation(a.Operation) && !fleet.ValidPoolName(a.Pool) {
			t.Fatalf("accepted a pool operation with pool %q", a.Pool)
		}
	default:
		t.Fatalf("accepted Kind %q, want Activity or Ignored", sig.Kind)
	}
}

func checkFuzzedError(t *testing.T, sig fleet.Signal, err error) {
	t.Helper()
	if !errors.Is(err, ErrMalformed) {
		t.Fatalf("got error %v, want ErrMalformed", err)
	}
	if sig.Kind != "" {
		t.Fatalf("got Kind %q with error %v, want none", sig.Kind, err)
	}
}

func FuzzDecodeAlert(f *testing.F) {
	addActivitySeeds(f, "alert-", "same-activity-alert", "not-json")
	f.Fuzz(func(t *testing.T, raw []byte) {
		sig, err := DecodeAlert(raw)
		if err != nil {
			checkFuzzedError(t, sig, err)
			return
		}
		checkFuzzedSignal(t, sig)
	})
}

func FuzzDecodeExport(f *testing.F) {
	addActivitySeeds(f, "export-", "eventhub-", "same-activity-export", "not-json")
	f.Fuzz(func(t *testing.T, raw []byte) {
		check := func(msg []byte) {
			recs, err := DecodeExport(msg)
			if err != nil {
				if !errors.Is(err, ErrMalformed) || recs != nil {
					t.Fatalf("got %d records and error %v, want none and ErrMalformed", len(recs), err)
				}
				return
			}
			for i, r := range recs {
				if r.Index != i {
					t.Fatalf("record %d has Index %d", i, r.Index)
				}
				if r.Err != nil {
					checkFuzzedError(t, r.Signal, r.Err)
					continue
				}
				checkFuzzedSignal(t, r.Signal)
			}
		}
		check(raw)
		msgs, err := SplitEventHub(raw)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("SplitEventHub: got error %v, want ErrMalformed", err)
			}
			return
		}
		for _, m := range msgs {
			check(m)
		}
	})
}

// FuzzDecodeResourceEvent runs Decode on Microsoft.Resources.* events, which
// the seeds of FuzzDecode do not cover well.
func FuzzDecodeResourceEvent(f *testing.F) {
	addActivitySeeds(f, "eg-", "ce-", "same-activity-eventgrid")
	f.Fuzz(func(t *testing.T, raw []byte) {
		sig, err := Decode(raw)
		if err != nil {
			checkFuzzedError(t, sig, err)
			return
		}
		if sig.ID == "" || sig.Type == "" || sig.Time.IsZero() || sig.Kind == "" {
			t.Fatalf("accepted an incomplete signal: ID %q Type %q Time %v Kind %q", sig.ID, sig.Type, sig.Time, sig.Kind)
		}
		if sig.Kind == fleet.KindActivity || sig.Kind == fleet.KindIgnored {
			checkFuzzedSignal(t, sig)
		}
	})
}
