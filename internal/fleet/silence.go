package fleet

import (
	"path"
	"strings"
	"time"
)

// Silence holds back the announcements of the findings it matches until it
// ends: they still open, resolve and show (Finding.SilencedBy), but send
// nothing. When it ends (Until passes, or someone ends it) a finding it held
// that is still open is announced once. Silences are kept after they end, as
// the audit of who silenced what, when and why.
type Silence struct {
	ID string
	// Match: each field empty matches anything. Cluster is
	// "<subscriptionId>/<resourceGroup>/<clusterName>" or a path.Match glob
	// over it ("*/rg-shop-*/*"); a pattern without a slash is matched
	// against the cluster name alone. Code is a finding code; Target a glob
	// over the finding's target ("pool/*"). All compare case-insensitively.
	Cluster string
	Code    string
	Target  string

	Until     time.Time
	Comment   string
	CreatedBy string
	CreatedAt time.Time
	// EndedAt is set when someone ended the silence before Until, EndedBy
	// says who.
	EndedAt time.Time
	EndedBy string
}

// SilenceTag is the cluster tag that silences all of a cluster's findings
// until the RFC 3339 time it holds; Finding.SilencedBy names it so.
const SilenceTag = "upgradewatch.silence"

// ActiveAt reports whether the silence holds at now.
func (s *Silence) ActiveAt(now time.Time) bool {
	return now.Before(s.End())
}

// End is when the silence stops holding: Until, or when it was ended.
func (s *Silence) End() time.Time {
	if !s.EndedAt.IsZero() && s.EndedAt.Before(s.Until) {
		return s.EndedAt
	}
	return s.Until
}

// Matches reports whether the silence's match selects the finding
// (code, target) of cluster id.
func (s *Silence) Matches(id ClusterID, code, target string) bool {
	if s.Code != "" && !strings.EqualFold(s.Code, code) {
		return false
	}
	if s.Target != "" && !globMatch(s.Target, target) {
		return false
	}
	if s.Cluster == "" {
		return true
	}
	if !strings.Contains(s.Cluster, "/") {
		return globMatch(s.Cluster, id.Name)
	}
	return globMatch(s.Cluster, id.SubscriptionID+"/"+id.ResourceGroup+"/"+id.Name)
}

// MatchesCluster reports whether the silence may match some finding of
// cluster id (its cluster pattern selects it).
func (s *Silence) MatchesCluster(id ClusterID) bool {
	c := *s
	c.Code, c.Target = "", ""
	return c.Matches(id, "", "")
}

func globMatch(pattern, s string) bool {
	ok, err := path.Match(strings.ToLower(pattern), strings.ToLower(s))
	return err == nil && ok
}

// TagSilence reads the cluster's SilenceTag: the time it silences the
// cluster until, and whether the tag is set to a valid RFC 3339 time.
func (c *Cluster) TagSilence() (time.Time, bool) {
	for k, v := range c.Tags {
		if !strings.EqualFold(k, SilenceTag) {
			continue
		}
		t, err := time.Parse(time.RFC3339, strings.TrimSpace(v))
		if err != nil {
			return time.Time{}, false
		}
		return t.UTC(), true
	}
	return time.Time{}, false
}
