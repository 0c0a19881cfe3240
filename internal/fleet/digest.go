package fleet

import "time"

// Digest is the day's summary one chat sink gets once a day: the fleet's
// patch compliance, what opened and resolved in the last 24 hours, what is
// still open longest and the silences that end within the next 24 hours.
// The lists are the caller's, newest (or longest open, or soonest ending)
// first; the renderers (internal/notify) show at most DigestMaxItems of each
// and count the rest.
type Digest struct {
	// ID names the message: the day and the sink ("20261214-teams").
	ID string
	// Day is the local day the digest is for, Zone its IANA zone name.
	Day  string
	Zone string
	// Time is when the digest was put together.
	Time time.Time
	// StatusURL links to the Status API's findings list ("" none).
	StatusURL string
	// Compliance is the fleet's, nil when the figures are not kept.
	Compliance *DigestCompliance
	// OpenNow counts the findings open at Time.
	OpenNow int
	// Opened and Resolved are the findings that opened, or resolved, in the
	// 24 hours before Time; OpenedTotal and ResolvedTotal count them all
	// (the lists may be cut short by the caller).
	Opened, Resolved           []DigestFinding
	OpenedTotal, ResolvedTotal int
	// Longest are the findings open longest, oldest first.
	Longest []DigestFinding
	// Expiring are the silences that end within the next 24 hours,
	// soonest first.
	Expiring []Silence
}

// DigestCompliance is the fleet compliance a digest shows.
type DigestCompliance struct {
	Clusters, Pools, UpToDate, Behind int
	PercentPoolsCurrent               float64
	MaxDaysBehind                     int
	ComputedAt                        time.Time
}

// DigestFinding is one finding in a digest.
type DigestFinding struct {
	Cluster      ClusterID
	Code, Target string
	Severity     string
	OpenedAt     time.Time
	ResolvedAt   time.Time // zero while open
	SilencedBy   string
}

// DigestMaxItems is how many entries of each list a digest shows; the rest
// are counted, so that a digest stays within Teams' 28 KB and Slack's 50
// blocks however busy the day was.
const DigestMaxItems = 8
