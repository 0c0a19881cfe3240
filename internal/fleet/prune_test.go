package fleet

import (
	"slices"
	"testing"
	"time"
)

// TestPruneGone: only nodes gone for at least the retention at the snapshot's
// time go, by name, at most limit; the result depends on nothing else.
func TestPruneGone(t *testing.T) {
	at := time.Date(2026, 12, 2, 2, 0, 0, 0, time.UTC)
	gone := func(ago time.Duration) Node { return Node{Gone: true, ChangedAt: at.Add(-ago)} }
	nodes := map[string]Node{
		"aks-user-vmss000003": gone(31 * 24 * time.Hour),
		"aks-user-vmss000001": gone(30 * 24 * time.Hour), // exactly the retention: due
		"aks-user-vmss000002": gone(30*24*time.Hour - time.Second),
		"aks-user-vmss000004": {ChangedAt: at.Add(-90 * 24 * time.Hour)}, // present, unchanged for long
		"aks-user-vmss000000": gone(400 * 24 * time.Hour),
	}
	cases := []struct {
		name      string
		retention time.Duration
		limit     int
		want      []string
	}{
		{"due ones by name", DefaultNodeRetention, 10, []string{"aks-user-vmss000000", "aks-user-vmss000001", "aks-user-vmss000003"}},
		{"limit keeps the first by name", DefaultNodeRetention, 2, []string{"aks-user-vmss000000", "aks-user-vmss000001"}},
		{"no retention prunes nothing", 0, 10, nil},
		{"no room prunes nothing", DefaultNodeRetention, 0, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for range 3 { // map order must not matter
				if got := PruneGone(nodes, at, tc.retention, tc.limit); !slices.Equal(got, tc.want) {
					t.Fatalf("got %v, want %v", got, tc.want)
				}
			}
		})
	}
}
