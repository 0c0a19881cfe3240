package inventory

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzDecode feeds Decode every fixture, accepted and malformed, and their
// mutations: it must never panic, and what it accepts must hold the snapshot
// invariants and survive Encode and Decode unchanged.
func FuzzDecode(f *testing.F) {
	for _, pattern := range []string{"testdata/*", "testdata/malformed/*"} {
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
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := Decode(body, day1)
		if err != nil {
			return
		}
		checkInvariants(t, r, day1)
	})
}
