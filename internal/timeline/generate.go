package timeline

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/google/uuid"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
)

// Per pool and week, the outcome of a roll.
const (
	probSucceeded = 0.95
	probFailed    = 0.04 // the remaining 1% never ends
	probNotice    = 0.5  // a Communication Manager lifecycle accompanies an auto-upgrade window
)

var (
	genTeams   = []string{"payments", "checkout", "search", "identity", "analytics", "platform", "orders", "catalog", "billing", "ledger", "ingest", "web", "mobile", "risk", "notify", "ml"}
	genEnvs    = []string{"prod", "prod", "staging", "dev"}
	genRegions = []struct{ name, short string }{
		{"westeurope", "weu"}, {"northeurope", "neu"}, {"eastus", "eus"}, {"eastus2", "eus2"},
		{"westus2", "wus2"}, {"uksouth", "uks"}, {"swedencentral", "sdc"}, {"southeastasia", "sea"},
	}
	genK8s         = []string{"1.32.9", "1.33.5", "1.33.5", "1.34.1"}
	genUpgrade     = []string{"patch", "patch", "stable", "rapid", "none"}
	genNodeOS      = []string{"NodeImage", "NodeImage", "NodeImage", "NodeImage", "SecurityPatch", "SecurityPatch", "Unmanaged", "None"}
	genUserPools   = []string{"apps", "batch", "ingress", "jobs", "cache", "api", "workers", "win22"}
	genLinuxSizes  = []string{"Standard_D4ds_v5", "Standard_D8ds_v5", "Standard_D16ds_v5", "Standard_E8ds_v5", "Standard_F8s_v2"}
	genWindowsSize = "Standard_D4s_v5"
)

// genCluster is a cluster plus its maintenance window and roll state.
type genCluster struct {
	cluster
	day, hour int             // weekly window: days after the week's start, hour of day (UTC)
	stuck     map[string]bool // pools whose roll never ended: AKS starts nothing new on them
}

// Generate returns a fleet-scale synthetic timeline, in time order: o.Clusters
// clusters spread round-robin over ceil(o.Clusters/50) subscriptions, each with
// 2–5 pools and a weekly 4-hour maintenance window. Every cluster's payload
// comes first (in the first half hour); then, every week, each pool rolls once
// inside its cluster's window: Started, then Succeeded (95%), Failed (4%) or no
// end at all (1%; the pool then stays stuck and rolls no more). About half the
// windows of NodeImage/SecurityPatch clusters also carry a Communication Manager
// lifecycle (Scheduled 24 h before, Started, Completed or Failed).
//
// The result depends only on o: the same seed gives the same events, ids and
// bytes.
func Generate(o Options) []Event {
	if o.Clusters <= 0 {
		o.Clusters = 10
	}
	if o.Weeks <= 0 {
		o.Weeks = 4
	}
	if o.Start.IsZero() {
		o.Start = DefaultStart
	}
	o.Start = o.Start.UTC()
	rng := newRand(o.Seed, 0x464c_4545_54)
	s := &stream{ids: ids{prefix: fmt.Sprintf("fleet/%d", o.Seed)}}

	type subscription struct{ id, schema string }
	subs := make([]subscription, (o.Clusters+49)/50)
	for i := range subs {
		subs[i] = subscription{id: randomGUID(rng), schema: pickSchema(o.Schema, rng)}
	}

	clusters := make([]*genCluster, o.Clusters)
	for i := range clusters {
		sub := subs[i%len(subs)]
		team, env := pick(rng, genTeams), pick(rng, genEnvs)
		region := genRegions[rng.IntN(len(genRegions))]
		id, err := fleet.NewClusterID(sub.id, fmt.Sprintf("rg-%s-%s", team, env), fmt.Sprintf("aks-%s-%s-%03d", team, region.short, i+1))
		if err != nil {
			panic("timeline: " + err.Error()) // names are built to be valid
		}
		c := &genCluster{
			cluster: cluster{
				id: id, location: region.name, k8s: pick(rng, genK8s),
				upgradeChannel: pick(rng, genUpgrade), nodeOSChannel: pick(rng, genNodeOS),
				tags:      map[string]string{"env": env, "team": team},
				aksSchema: pickSchema(o.Schema, rng), arnSchema: sub.schema,
				lowerTopic: rng.IntN(5) == 0,
			},
			day: rng.IntN(7), hour: 1 + rng.IntN(20),
			stuck: map[string]bool{},
		}
		c.pools = genPools(rng, o.Start)
		clusters[i] = c
		s.clusterSnapshot(&c.cluster, o.Start.Add(jitter(rng, 30*time.Minute)))
	}

	for w := 0; w < o.Weeks; w++ {
		for _, c := range clusters {
			c.week(s, rng, o.Start.Add(time.Duration(w)*7*24*time.Hour), o.Start)
		}
	}
	return s.sorted()
}

// week emits one maintenance window of c: the pools roll one after another.
func (c *genCluster) week(s *stream, rng *rand.Rand, weekStart, start time.Time) {
	window := weekStart.Add(time.Duration(c.day*24+c.hour) * time.Hour)
	notice := (c.nodeOSChannel == "NodeImage" || c.nodeOSChannel == "SecurityPatch") && rng.Float64() < probNotice
	eventID := randomGUID(rng)
	var noticeStart time.Time
	if notice {
		if ahead := window.Add(-24 * time.Hour).Add(jitter(rng, time.Minute)); ahead.After(start.Add(time.Hour)) {
			s.scheduledEvent(&c.cluster, scheduled{eventID: eventID, status: fleet.ScheduledStatusScheduled,
				details: "NodeOSUpgrade scheduled in maintenance window aksManagedNodeOSUpgradeSchedule", planned: window}, ahead)
		}
		noticeStart = window.Add(jitter(rng, 10*time.Second))
		s.scheduledEvent(&c.cluster, scheduled{eventID: eventID, status: fleet.ScheduledStatusStarted,
			details: "Start to upgrade node image vhd", planned: window, startedAt: noticeStart}, noticeStart)
	}

	t := window.Add(time.Minute + jitter(rng, 4*time.Minute))
	var failed []string
	hung := false
	for _, p := range c.pools {
		if c.stuck[p.name] {
			continue
		}
		s.rolling(&c.cluster, TypeNodePoolRollingStarted, p.name, t)
		// 15–40 minutes a pool, 1–4 minutes between pools: five pools fit in 4 hours.
		t = t.Add(15*time.Minute + jitter(rng, 25*time.Minute))
		switch r := rng.Float64(); {
		case r < probSucceeded:
			s.rolling(&c.cluster, TypeNodePoolRollingSucceeded, p.name, t)
		case r < probSucceeded+probFailed:
			s.rolling(&c.cluster, TypeNodePoolRollingFailed, p.name, t)
			failed = append(failed, p.name)
		default:
			c.stuck[p.name] = true
			hung = true
		}
		t = t.Add(time.Minute + jitter(rng, 3*time.Minute))
	}

	if !notice || hung {
		return // a hung roll leaves the notice at Started
	}
	end := scheduled{eventID: eventID, status: fleet.ScheduledStatusCompleted, details: "Node image upgrade completed",
		planned: window, startedAt: noticeStart}
	if len(failed) > 0 {
		end.status = fleet.ScheduledStatusFailed
		end.details = fmt.Sprintf(`{"type":2,"upgradeType":"NodeOSUpgrade","message":"Upgrade of agent pool %s failed: drain timeout of 30 minutes exceeded"}`, failed[0])
	}
	s.scheduledEvent(&c.cluster, end, t)
}

func genPools(rng *rand.Rand, start time.Time) []pool {
	image := start.AddDate(0, 0, -20) // the image the fleet runs at the start
	pools := []pool{{name: "system", mode: "System", osType: "Linux", osSKU: "Ubuntu", vmSize: "Standard_D4ds_v5",
		count: 3, image: nodeImage("Ubuntu", image)}}
	for _, j := range rng.Perm(len(genUserPools))[:1+rng.IntN(4)] {
		p := pool{name: genUserPools[j], mode: "User", osType: "Linux", osSKU: "Ubuntu",
			vmSize: pick(rng, genLinuxSizes), count: 1 + rng.IntN(20)}
		switch {
		case p.name == "win22":
			p.osType, p.osSKU, p.vmSize = "Windows", "Windows2022", genWindowsSize
		case rng.IntN(10) < 3:
			p.osSKU = "AzureLinux"
		}
		p.image = nodeImage(p.osSKU, image)
		pools = append(pools, p)
	}
	return pools
}

func pickSchema(schema string, rng *rand.Rand) string {
	switch schema {
	case SchemaEventGrid, SchemaCloudEvents:
		return schema
	}
	if rng.IntN(2) == 0 {
		return SchemaEventGrid
	}
	return SchemaCloudEvents
}

func pick(rng *rand.Rand, from []string) string { return from[rng.IntN(len(from))] }

// jitter is a random duration in [0, d), at Azure's 100 ns resolution.
func jitter(rng *rand.Rand, d time.Duration) time.Duration {
	return time.Duration(rng.Int64N(int64(d/tick))) * tick
}

func randomGUID(rng *rand.Rand) string {
	var u uuid.UUID
	for i := range u {
		u[i] = byte(rng.Uint32())
	}
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return u.String()
}
