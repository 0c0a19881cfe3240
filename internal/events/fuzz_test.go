package events

import (
	"os"
	"path/filepath"
	"testing"
)

// addSeeds seeds f with every fixture, accepted and rejected.
func addSeeds(f *testing.F) {
	f.Helper()
	for _, pattern := range []string{"testdata/*", "testdata/reject/*"} {
		files, err := filepath.Glob(pattern)
		if err != nil {
			f.Fatal(err)
		}
		for _, file := range files {
			if info, err := os.Stat(file); err != nil || info.IsDir() {
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

func FuzzDecode(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, raw []byte) {
		sig, err := Decode(raw)
		if err != nil {
			return
		}
		if sig.ID == "" || sig.Type == "" || sig.Time.IsZero() || sig.Kind == "" {
			t.Fatalf("accepted an incomplete signal: ID %q Type %q Time %v Kind %q", sig.ID, sig.Type, sig.Time, sig.Kind)
		}
	})
}

func FuzzSplit(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, raw []byte) {
		items, err := Split(raw)
		if err != nil {
			return
		}
		for _, item := range items {
			_, _ = Decode(item)
		}
	})
}
