// Package timeline produces realistic, deterministic streams of the events
// upgradewatch consumes, as the raw JSON objects Event Grid would deliver: AKS
// system events (NodePoolRolling*, version and support notices) and Azure
// Resource Notifications (Communication Manager scheduled events, resource
// CreatedOrUpdated/Deleted), in Event Grid or CloudEvents 1.0 schema.
//
// Demo is a small hand-designed scenario for demonstrations and end-to-end
// tests; Generate is a fleet-scale synthetic stream for load and convergence
// tests. Shuffle and WithDuplicates add what at-least-once, unordered delivery
// does to a stream.
//
// The shapes follow the public examples of each event (see
// aks-signals.md §1 and §2); where Azure documents no example (managedClusters
// and agentPools payloads in Resource Notifications) they follow the ARM GET
// representation.
package timeline

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/google/uuid"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
)

// Event is one event of a timeline: the raw object as Event Grid delivers it,
// plus the facts tests and tools need without decoding it.
type Event struct {
	Raw     json.RawMessage // one event object, Event Grid schema or CloudEvents 1.0
	ID      string
	Type    string
	Cluster string // lower-case <subscriptionId>~<resourceGroup>~<clusterName>
	Time    time.Time
}

// Options shape a generated fleet timeline. Zero values take defaults:
// 10 clusters, 4 weeks, SchemaMixed, and a start of 2026-11-02T00:00:00Z.
type Options struct {
	Seed     int64
	Clusters int
	Weeks    int
	Schema   string // SchemaEventGrid, SchemaCloudEvents or SchemaMixed; anything else is SchemaMixed
	Start    time.Time
}

// Event schemas a timeline can be written in. Mixed picks one per topic (per
// cluster for AKS events, per subscription for Resource Notifications), as
// each Event Grid subscription fixes its delivery schema.
const (
	SchemaEventGrid   = "eventgrid"
	SchemaCloudEvents = "cloudevents"
	SchemaMixed       = "mixed"
)

// Event types found in timelines.
const (
	TypeNodePoolRollingStarted        = "Microsoft.ContainerService.NodePoolRollingStarted"
	TypeNodePoolRollingSucceeded      = "Microsoft.ContainerService.NodePoolRollingSucceeded"
	TypeNodePoolRollingFailed         = "Microsoft.ContainerService.NodePoolRollingFailed"
	TypeNewKubernetesVersionAvailable = "Microsoft.ContainerService.NewKubernetesVersionAvailable"
	TypeClusterSupportEnding          = "Microsoft.ContainerService.ClusterSupportEnding"
	TypeClusterSupportEnded           = "Microsoft.ContainerService.ClusterSupportEnded"
	TypeScheduledEventEmitted         = "Microsoft.ResourceNotifications.ContainerServiceEventResources.ScheduledEventEmitted"
	TypeResourceCreatedOrUpdated      = "Microsoft.ResourceNotifications.Resources.CreatedOrUpdated"
	TypeResourceDeleted               = "Microsoft.ResourceNotifications.Resources.Deleted"
	TypeResourceWriteSuccess          = "Microsoft.Resources.ResourceWriteSuccess"
)

// DefaultStart is where Demo begins and where Generate starts by default (a Monday).
var DefaultStart = time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)

// ErrNotEvent reports bytes that are not one Event Grid or CloudEvents event object.
var ErrNotEvent = errors.New("not an event object")

// Parse reads an Event from one raw event object of either schema. The cluster
// is taken from the first of topic/source, subject and data.resourceInfo.id
// that names a managed cluster (or something beneath one); it is empty when
// none does.
func Parse(raw json.RawMessage) (Event, error) {
	var v struct {
		ID        string `json:"id"`
		EventType string `json:"eventType"`
		Type      string `json:"type"`
		EventTime string `json:"eventTime"`
		Time      string `json:"time"`
		Topic     string `json:"topic"`
		Source    string `json:"source"`
		Subject   string `json:"subject"`
		Data      struct {
			ResourceInfo struct {
				ID string `json:"id"`
			} `json:"resourceInfo"`
		} `json:"data"`
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return Event{}, fmt.Errorf("%w: %v", ErrNotEvent, err)
	}
	ev := Event{Raw: raw, ID: v.ID, Type: first(v.EventType, v.Type)}
	if ev.ID == "" || ev.Type == "" {
		return Event{}, fmt.Errorf("%w: no id or type", ErrNotEvent)
	}
	if ts := first(v.EventTime, v.Time); ts != "" {
		t, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			return Event{}, fmt.Errorf("%w: time %q: %v", ErrNotEvent, ts, err)
		}
		ev.Time = t.UTC()
	}
	for _, id := range []string{first(v.Topic, v.Source), v.Subject, v.Data.ResourceInfo.ID} {
		if c, _, err := fleet.ParseResourceID(id); err == nil {
			ev.Cluster = c.Key()
			break
		}
	}
	return ev, nil
}

func first(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// Shuffle returns a new slice holding evs in a random order fixed by seed.
func Shuffle(evs []Event, seed int64) []Event {
	rng := newRand(seed, 0x5348_5546)
	out := make([]Event, len(evs))
	for i, j := range rng.Perm(len(evs)) {
		out[i] = evs[j]
	}
	return out
}

// WithDuplicates returns a new slice with a redelivery (an identical Raw) of
// round(fraction*len(evs)) distinct events, chosen by seed, each placed at a
// random position after its original, as Event Grid redelivers after a
// timeout. fraction is clamped to [0, 1].
func WithDuplicates(evs []Event, fraction float64, seed int64) []Event {
	fraction = math.Max(0, math.Min(1, fraction))
	n := len(evs)
	k := int(math.Round(fraction * float64(n)))
	rng := newRand(seed, 0x4455_5053)
	// before[p] holds the copies that go just before original p (p == n: at the end).
	before := make([][]Event, n+1)
	for _, i := range rng.Perm(n)[:k] {
		p := i + 1 + rng.IntN(n-i)
		dup := evs[i]
		dup.Raw = append(json.RawMessage(nil), evs[i].Raw...)
		before[p] = append(before[p], dup)
	}
	out := make([]Event, 0, n+k)
	for p := 0; p <= n; p++ {
		out = append(out, before[p]...)
		if p < n {
			out = append(out, evs[p])
		}
	}
	return out
}

func newRand(seed int64, stream uint64) *rand.Rand {
	return rand.New(rand.NewPCG(uint64(seed), stream))
}

// Time layouts Azure uses in these events.
const (
	layoutEventTime = "2006-01-02T15:04:05.0000000Z"   // eventTime/time: 7 digits, Z
	layoutNoZone    = "2006-01-02T15:04:05.0000000"    // ARN scheduled resourceEventTime: no Z
	layoutNanos     = "2006-01-02T15:04:05.000000000Z" // scheduledTime: 9 digits
	zeroTime        = "0001-01-01T00:00:00.0000000Z"   // .NET "never"
)

// tick is the resolution of Azure event times (7 fractional digits).
const tick = 100 * time.Nanosecond

// ids hands out deterministic, unique event ids: AKS uses 40-hex strings,
// Resource Notifications GUIDs.
type ids struct {
	prefix string
	seq    int
}

func (g *ids) hex40() string {
	g.seq++
	h := sha256.Sum256([]byte(fmt.Sprintf("%s/%d", g.prefix, g.seq)))
	return fmt.Sprintf("%x", h[:20])
}

func (g *ids) guid() string {
	g.seq++
	return guidOf(fmt.Sprintf("%s/%d", g.prefix, g.seq))
}

// guidOf derives a version-4-looking GUID from key, as Azure's are random v4.
func guidOf(key string) string {
	h := sha256.Sum256([]byte(key))
	var u uuid.UUID
	copy(u[:], h[:16])
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return u.String()
}
