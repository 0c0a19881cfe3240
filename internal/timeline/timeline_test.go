package timeline

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
)

var (
	hex40RE     = regexp.MustCompile(`^[0-9a-f]{40}$`)
	guidRE      = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	eventTimeRE = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z$`)
)

// envelope is an event decoded independently of Parse, to check what the
// generator claims about each Raw.
type envelope struct {
	ID, EventType, Type, EventTime, Time, Topic, Source, Subject string
	SpecVersion                                                  string `json:"specversion"`
	DataVersion, MetadataVersion                                 string
	Data                                                         struct {
		NodePoolName string `json:"nodePoolName"`
		ResourceInfo *struct {
			ID         string          `json:"id"`
			Name       string          `json:"name"`
			Type       string          `json:"type"`
			Properties json.RawMessage `json:"properties"`
		} `json:"resourceInfo"`
		OperationalInfo *struct {
			ResourceEventTime string `json:"resourceEventTime"`
		} `json:"operationalInfo"`
	} `json:"data"`
	Raw map[string]json.RawMessage `json:"-"`
}

func decode(t *testing.T, raw json.RawMessage) envelope {
	t.Helper()
	var e envelope
	if err := json.Unmarshal(raw, &e); err != nil {
		t.Fatalf("Raw is not an event object: %v\n%s", err, raw)
	}
	if err := json.Unmarshal(raw, &e.Raw); err != nil {
		t.Fatalf("Raw is not a JSON object: %v", err)
	}
	return e
}

func (e envelope) cloudEvents() bool { return e.SpecVersion != "" }

func (e envelope) typ() string {
	if e.cloudEvents() {
		return e.Type
	}
	return e.EventType
}

func (e envelope) topic() string {
	if e.cloudEvents() {
		return e.Source
	}
	return e.Topic
}

func (e envelope) time() string {
	if e.cloudEvents() {
		return e.Time
	}
	return e.EventTime
}

// checkEvent asserts that ev.Raw has the documented shape of its schema and
// type and carries the id, type, time and cluster ev claims.
func checkEvent(t *testing.T, ev Event) {
	t.Helper()
	e := decode(t, ev.Raw)
	if e.ID != ev.ID {
		t.Errorf("%s: raw id %q", ev.ID, e.ID)
	}
	if e.typ() != ev.Type {
		t.Errorf("%s: raw type %q, Event says %q", ev.ID, e.typ(), ev.Type)
	}
	if !eventTimeRE.MatchString(e.time()) {
		t.Errorf("%s: time %q is not 7-digit UTC", ev.ID, e.time())
	}
	if got, err := time.Parse(time.RFC3339Nano, e.time()); err != nil || !got.Equal(ev.Time) {
		t.Errorf("%s: raw time %s, Event says %s", ev.ID, e.time(), ev.Time.Format(time.RFC3339Nano))
	}

	// Envelope fields of each schema, and nothing of the other.
	if e.cloudEvents() {
		for _, k := range []string{"id", "source", "subject", "type", "time", "data", "specversion"} {
			if _, ok := e.Raw[k]; !ok {
				t.Errorf("%s: CloudEvent without %q", ev.ID, k)
			}
		}
		for _, k := range []string{"topic", "eventType", "eventTime", "dataVersion", "metadataVersion"} {
			if _, ok := e.Raw[k]; ok {
				t.Errorf("%s: CloudEvent with Event Grid field %q", ev.ID, k)
			}
		}
		if e.SpecVersion != "1.0" {
			t.Errorf("%s: specversion %q", ev.ID, e.SpecVersion)
		}
	} else {
		for _, k := range []string{"id", "topic", "subject", "eventType", "eventTime", "data", "dataVersion", "metadataVersion"} {
			if _, ok := e.Raw[k]; !ok {
				t.Errorf("%s: Event Grid event without %q", ev.ID, k)
			}
		}
		if _, ok := e.Raw["specversion"]; ok {
			t.Errorf("%s: Event Grid event with specversion", ev.ID)
		}
	}

	var clusterFrom string
	switch {
	case strings.HasPrefix(ev.Type, "Microsoft.ContainerService."):
		// AKS: 40-hex id, topic = cluster ID, subject = cluster name.
		if !hex40RE.MatchString(ev.ID) {
			t.Errorf("AKS event id %q is not 40 hex", ev.ID)
		}
		clusterFrom = e.topic()
		id, _, err := fleet.ParseResourceID(clusterFrom)
		if err == nil && e.Subject != id.Name {
			t.Errorf("%s: subject %q, want the cluster name %q", ev.ID, e.Subject, id.Name)
		}
		if !e.cloudEvents() && e.DataVersion != "1" {
			t.Errorf("%s: dataVersion %q", ev.ID, e.DataVersion)
		}
	case strings.HasPrefix(ev.Type, "Microsoft.ResourceNotifications."):
		// ARN: GUID id, topic = subscription, subject = resourceInfo.id.
		if !guidRE.MatchString(ev.ID) {
			t.Errorf("ARN event id %q is not a GUID", ev.ID)
		}
		ri := e.Data.ResourceInfo
		if ri == nil || e.Data.OperationalInfo == nil {
			t.Fatalf("%s: ARN event without resourceInfo/operationalInfo", ev.ID)
		}
		if e.Subject != ri.ID {
			t.Errorf("%s: subject %q != resourceInfo.id %q", ev.ID, e.Subject, ri.ID)
		}
		if !strings.HasSuffix(ri.ID, "/"+ri.Name) || ri.Type == "" {
			t.Errorf("%s: resourceInfo id/name/type %q %q %q", ev.ID, ri.ID, ri.Name, ri.Type)
		}
		clusterFrom = ri.ID
		sub, _, _ := fleet.ParseResourceID(ri.ID)
		if want := "/subscriptions/" + sub.SubscriptionID; e.topic() != want {
			t.Errorf("%s: topic %q, want %q", ev.ID, e.topic(), want)
		}
	case strings.HasPrefix(ev.Type, "Microsoft.Resources.Resource"):
		// Activity-log events: the subject is the resource the request was
		// on, the cluster or something below it.
		if !guidRE.MatchString(ev.ID) || e.DataVersion != "2" {
			t.Errorf("%s: %s id/dataVersion %q", ev.ID, ev.Type, e.DataVersion)
		}
		clusterFrom = e.Subject
	default:
		t.Errorf("%s: unexpected event type %q", ev.ID, ev.Type)
	}
	id, _, err := fleet.ParseResourceID(clusterFrom)
	if err != nil {
		t.Errorf("%s: %v", ev.ID, err)
	} else if id.Key() != ev.Cluster {
		t.Errorf("%s: raw names cluster %q, Event says %q", ev.ID, id.Key(), ev.Cluster)
	}
}

// firstDifference returns the index of the first event that differs between a
// and b (len of the shorter one if one is a prefix), or -1 if they are equal.
func firstDifference(a, b []Event) int {
	for i := range min(len(a), len(b)) {
		x, y := a[i], b[i]
		if x.ID != y.ID || x.Type != y.Type || x.Cluster != y.Cluster || !x.Time.Equal(y.Time) || !bytes.Equal(x.Raw, y.Raw) {
			return i
		}
	}
	if len(a) != len(b) {
		return min(len(a), len(b))
	}
	return -1
}

func checkOrderAndIDs(t *testing.T, evs []Event) {
	t.Helper()
	seen := map[string]bool{}
	for i, ev := range evs {
		if seen[ev.ID] {
			t.Errorf("duplicate id %s", ev.ID)
		}
		seen[ev.ID] = true
		if i > 0 && ev.Time.Before(evs[i-1].Time) {
			t.Errorf("event %d (%s) at %s is before event %d at %s", i, ev.ID, ev.Time, i-1, evs[i-1].Time)
		}
	}
}

func TestDemoShape(t *testing.T) {
	evs := Demo()
	if len(evs) < 30 {
		t.Fatalf("got %d demo events, want a scenario of at least 30", len(evs))
	}
	checkOrderAndIDs(t, evs)
	for _, ev := range evs {
		checkEvent(t, ev)
	}
	if first, last := evs[0].Time, evs[len(evs)-1].Time; !first.After(DefaultStart) || last.Sub(first) < 17*24*time.Hour || last.Sub(first) > 22*24*time.Hour {
		t.Errorf("demo spans %s → %s, want about three weeks from %s", first, last, DefaultStart)
	}
	if i := firstDifference(evs, Demo()); i >= 0 {
		t.Errorf("Demo is not deterministic: differs from event %d", i)
	}
}

// poolsOf lists the pools of every payload.
func poolsOf(ps []clusterPayload) []poolPayload {
	var out []poolPayload
	for _, p := range ps {
		out = append(out, p.AgentPoolProfiles...)
	}
	return out
}

// clusterPayload is the part of a managedClusters/agentPools payload the coverage test reads.
type clusterPayload struct {
	AutoUpgradeProfile struct{ UpgradeChannel, NodeOSUpgradeChannel string }
	AgentPoolProfiles  []poolPayload
}

type poolPayload struct {
	Name, Mode, OSType, OSSKU, VMSize, NodeImageVersion string
	Count                                               int
	UpgradeSettings                                     struct {
		MaxSurge              string
		DrainTimeoutInMinutes int
	}
}

type scheduledPayload struct {
	EventID, EventStatus, EventSource string
	EventDetails                      json.RawMessage
}

func TestDemoCoverage(t *testing.T) {
	evs := Demo()
	types := map[string]int{}
	clusters, subs := map[string]bool{}, map[string]bool{}
	schemas := map[bool]int{}
	lowerTopic := false
	channels := map[string][]clusterPayload{} // nodeOS channel → payloads
	images := map[string]string{}             // cluster/pool → nodeImageVersion
	rolls := map[string][]Event{}             // cluster/pool → rolling events
	var imageChangedAfterRoll, poolDeleted bool
	scheduled := map[string][]scheduledPayload{} // status → notices

	for _, ev := range evs {
		e := decode(t, ev.Raw)
		types[ev.Type]++
		clusters[ev.Cluster] = true
		subs[strings.SplitN(ev.Cluster, "~", 2)[0]] = true
		schemas[e.cloudEvents()]++
		if strings.Contains(e.topic(), "/providers/microsoft.containerservice/managedclusters/") {
			lowerTopic = true
		}
		switch ev.Type {
		case TypeNodePoolRollingStarted, TypeNodePoolRollingSucceeded, TypeNodePoolRollingFailed:
			k := ev.Cluster + "/" + e.Data.NodePoolName
			rolls[k] = append(rolls[k], ev)
		case TypeResourceCreatedOrUpdated:
			ri := e.Data.ResourceInfo
			switch ri.Type {
			case "Microsoft.ContainerService/managedClusters":
				var p clusterPayload
				if err := json.Unmarshal(ri.Properties, &p); err != nil {
					t.Fatal(err)
				}
				channels[p.AutoUpgradeProfile.NodeOSUpgradeChannel] = append(channels[p.AutoUpgradeProfile.NodeOSUpgradeChannel], p)
				for _, pool := range p.AgentPoolProfiles {
					images[ev.Cluster+"/"+pool.Name] = pool.NodeImageVersion
				}
			case "Microsoft.ContainerService/managedClusters/agentPools":
				var p poolPayload
				if err := json.Unmarshal(ri.Properties, &p); err != nil {
					t.Fatal(err)
				}
				k := ev.Cluster + "/" + ri.Name
				r := rolls[k]
				if old := images[k]; old != "" && old != p.NodeImageVersion && len(r) > 0 && r[len(r)-1].Type == TypeNodePoolRollingSucceeded {
					imageChangedAfterRoll = true
				}
				images[k] = p.NodeImageVersion
			}
		case TypeResourceDeleted:
			poolDeleted = poolDeleted || e.Data.ResourceInfo.Type == "Microsoft.ContainerService/managedClusters/agentPools"
		case TypeScheduledEventEmitted:
			var p scheduledPayload
			if err := json.Unmarshal(e.Data.ResourceInfo.Properties, &p); err != nil {
				t.Fatal(err)
			}
			scheduled[p.EventStatus] = append(scheduled[p.EventStatus], p)
		}
	}

	for _, typ := range []string{
		TypeNodePoolRollingStarted, TypeNodePoolRollingSucceeded, TypeNodePoolRollingFailed,
		TypeNewKubernetesVersionAvailable, TypeClusterSupportEnding, TypeClusterSupportEnded, TypeScheduledEventEmitted,
		TypeResourceCreatedOrUpdated, TypeResourceDeleted, TypeResourceWriteSuccess,
	} {
		if types[typ] == 0 {
			t.Errorf("demo has no %s", typ)
		}
	}
	if len(clusters) != 9 || len(subs) != 2 {
		t.Errorf("got %d clusters in %d subscriptions, want 9 in 2", len(clusters), len(subs))
	}
	if schemas[true] == 0 || schemas[false] == 0 {
		t.Errorf("schemas not mixed: %d CloudEvents, %d Event Grid", schemas[true], schemas[false])
	}
	if !lowerTopic {
		t.Error("no AKS topic with a lower-cased provider segment")
	}
	for _, ch := range []string{"NodeImage", "SecurityPatch", "None", "Unmanaged"} {
		if _, ok := channels[ch]; !ok {
			t.Errorf("no cluster on node OS channel %s", ch)
		}
	}
	var win22, azureLinuxUser bool
	for ch, ps := range channels {
		for _, pool := range poolsOf(ps) {
			if pool.Name == "win22" && pool.OSType == "Windows" && ch == "SecurityPatch" {
				win22 = true
			}
			if pool.OSSKU == "AzureLinux" && pool.Mode == "User" {
				azureLinuxUser = true
			}
			if pool.Mode == "System" && pool.OSSKU != "Ubuntu" {
				t.Errorf("system pool %s runs %s, want Ubuntu", pool.Name, pool.OSSKU)
			}
			if pool.UpgradeSettings.MaxSurge != "33%" || pool.UpgradeSettings.DrainTimeoutInMinutes != 30 || pool.VMSize == "" || pool.Count == 0 {
				t.Errorf("pool %s: incomplete profile %+v", pool.Name, pool)
			}
			if !regexp.MustCompile(`^AKS(Ubuntu-2204gen2containerd-\d{6}\.\d\d\.\d|AzureLinux-V3gen2-\d{6}\.\d\d\.\d|Windows-2022-containerd-20348\.\d+\.\d{6})$`).MatchString(pool.NodeImageVersion) {
				t.Errorf("pool %s: unrealistic nodeImageVersion %q", pool.Name, pool.NodeImageVersion)
			}
		}
	}
	if !win22 || !azureLinuxUser {
		t.Errorf("want a Windows pool win22 on the SecurityPatch cluster (%v) and an Azure Linux user pool (%v)", win22, azureLinuxUser)
	}
	if !imageChangedAfterRoll {
		t.Error("no agentPools CreatedOrUpdated changing nodeImageVersion after a successful roll")
	}
	if !poolDeleted {
		t.Error("no Resources.Deleted for an agent pool")
	}

	// Rolling: weekly pairs, a failure retried about a day later, one roll that never ends.
	var pairs, retried, open int
	for k, r := range rolls {
		for i := 0; i < len(r); i++ {
			if r[i].Type != TypeNodePoolRollingStarted {
				t.Errorf("%s: %s without a Started before it", k, r[i].Type)
				continue
			}
			if i+1 == len(r) {
				open++
				continue
			}
			end := r[i+1]
			i++
			if end.Type == TypeNodePoolRollingSucceeded {
				pairs++
			}
			if end.Type == TypeNodePoolRollingFailed && i+2 < len(r) &&
				r[i+1].Type == TypeNodePoolRollingStarted && r[i+2].Type == TypeNodePoolRollingSucceeded {
				if gap := r[i+1].Time.Sub(end.Time); gap > 12*time.Hour && gap < 36*time.Hour {
					retried++
				}
			}
		}
	}
	if pairs < 8 || retried != 1 || open != 1 {
		t.Errorf("got %d Started→Succeeded pairs, %d failures retried a day later, %d rolls without end; want ≥8, 1, 1", pairs, retried, open)
	}

	// Communication Manager: a Scheduled → Started → Completed lifecycle with
	// text details, and a Failed whose details are a JSON string.
	lifecycle := map[string]map[string]bool{}
	for status, ps := range scheduled {
		for _, p := range ps {
			if lifecycle[p.EventID] == nil {
				lifecycle[p.EventID] = map[string]bool{}
			}
			lifecycle[p.EventID][status] = true
			var text string
			if err := json.Unmarshal(p.EventDetails, &text); err != nil {
				t.Errorf("eventDetails %s is not a string", p.EventDetails)
			}
			switch status {
			case fleet.ScheduledStatusFailed:
				var obj map[string]any
				if err := json.Unmarshal([]byte(text), &obj); err != nil || obj["upgradeType"] != "NodeOSUpgrade" {
					t.Errorf("Failed eventDetails %q is not a JSON-encoded NodeOSUpgrade object", text)
				}
			default:
				if json.Valid([]byte(text)) {
					t.Errorf("%s eventDetails %q should be free text", status, text)
				}
			}
		}
	}
	var full bool
	for _, st := range lifecycle {
		full = full || st[fleet.ScheduledStatusScheduled] && st[fleet.ScheduledStatusStarted] && st[fleet.ScheduledStatusCompleted]
	}
	if !full || len(scheduled[fleet.ScheduledStatusFailed]) != 1 {
		t.Errorf("want a Scheduled→Started→Completed lifecycle (%v) and one Failed (got %d)", full, len(scheduled[fleet.ScheduledStatusFailed]))
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		raw     string
		want    Event
		wantErr error
	}{{
		name: "AKS Event Grid, lower-cased provider",
		raw:  `{"topic":"/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg1/providers/microsoft.containerservice/managedclusters/MyAKS","subject":"MyAKS","eventType":"Microsoft.ContainerService.NodePoolRollingFailed","id":"1234567890abcdef1234567890abcdef12345678","data":{"nodePoolName":"nodepool1"},"dataVersion":"1","metadataVersion":"1","eventTime":"2023-03-29T18:00:00.0000000Z"}`,
		want: Event{ID: "1234567890abcdef1234567890abcdef12345678", Type: TypeNodePoolRollingFailed,
			Cluster: "00000000-0000-0000-0000-000000000000~rg1~myaks", Time: time.Date(2023, 3, 29, 18, 0, 0, 0, time.UTC)},
	}, {
		name: "ARN scheduled event, CloudEvents",
		raw:  `{"id":"5bdb52cf-5489-4845-86c8-7fe94a4fc6c1","source":"/subscriptions/00000000-0000-0000-0000-000000000000","subject":"/subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups/rg1/providers/Microsoft.ContainerService/managedClusters/aks1/scheduledEvents/e1","data":{},"type":"Microsoft.ResourceNotifications.ContainerServiceEventResources.ScheduledEventEmitted","specversion":"1.0","time":"2024-04-16T22:17:12.1032748Z"}`,
		want: Event{ID: "5bdb52cf-5489-4845-86c8-7fe94a4fc6c1", Type: TypeScheduledEventEmitted,
			Cluster: "00000000-0000-0000-0000-000000000000~rg1~aks1", Time: time.Date(2024, 4, 16, 22, 17, 12, 103274800, time.UTC)},
	}, {
		name: "placeholder ids name no cluster",
		raw:  `{"topic":"/subscriptions/{subscription-id}/resourceGroups/{resource-group}/providers/Microsoft.ContainerService/managedClusters/{cluster}","subject":"{cluster}","eventType":"Microsoft.ContainerService.ClusterSupportEnding","eventTime":"2023-03-29T18:00:00.0000000Z","id":"x1","data":{"kubernetesVersion":"1.23.15"}}`,
		want: Event{ID: "x1", Type: TypeClusterSupportEnding, Time: time.Date(2023, 3, 29, 18, 0, 0, 0, time.UTC)},
	}, {
		name: "not JSON", raw: `{"id":`, wantErr: ErrNotEvent,
	}, {
		name: "no type", raw: `{"id":"a","time":"2024-01-01T00:00:00Z"}`, wantErr: ErrNotEvent,
	}, {
		name: "bad time", raw: `{"id":"a","type":"T","time":"yesterday"}`, wantErr: ErrNotEvent,
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse(json.RawMessage(tc.raw))
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("got error %v, want %v", err, tc.wantErr)
			}
			if tc.wantErr != nil {
				return
			}
			tc.want.Raw = json.RawMessage(tc.raw)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Parse (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("round trip of the demo", func(t *testing.T) {
		for _, ev := range Demo() {
			got, err := Parse(ev.Raw)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(ev, got); diff != "" {
				t.Errorf("Parse(%s) (-want +got):\n%s", ev.ID, diff)
			}
		}
	})
}

func TestGenerate(t *testing.T) {
	o := Options{Seed: 42, Clusters: 100, Weeks: 6, Schema: SchemaMixed}
	evs := Generate(o)
	checkOrderAndIDs(t, evs)

	t.Run("shape", func(t *testing.T) {
		for _, ev := range evs {
			checkEvent(t, ev)
			if t.Failed() {
				t.FailNow() // one broken event is enough to read
			}
		}
	})

	t.Run("deterministic", func(t *testing.T) {
		if i := firstDifference(evs, Generate(o)); i >= 0 {
			t.Errorf("same seed, different timeline from event %d", i)
		}
		other := o
		other.Seed = 43
		if firstDifference(evs, Generate(other)) < 0 {
			t.Error("seeds 42 and 43 gave the same timeline")
		}
	})

	t.Run("fleet", func(t *testing.T) {
		clusters, subs := map[string]bool{}, map[string]bool{}
		firstType := map[string]string{}
		pools := map[string]int{}
		for _, ev := range evs {
			clusters[ev.Cluster] = true
			subs[strings.SplitN(ev.Cluster, "~", 2)[0]] = true
			if _, ok := firstType[ev.Cluster]; !ok {
				firstType[ev.Cluster] = ev.Type
				var p struct {
					Data struct {
						ResourceInfo struct{ Properties clusterPayload }
					}
				}
				_ = json.Unmarshal(ev.Raw, &p)
				pools[ev.Cluster] = len(p.Data.ResourceInfo.Properties.AgentPoolProfiles)
			}
		}
		if len(clusters) != o.Clusters || len(subs) != 2 {
			t.Errorf("got %d clusters in %d subscriptions, want %d in 2", len(clusters), len(subs), o.Clusters)
		}
		for c, typ := range firstType {
			if typ != TypeResourceCreatedOrUpdated || pools[c] < 2 || pools[c] > 5 {
				t.Errorf("cluster %s starts with %s listing %d pools, want a CreatedOrUpdated with 2–5", c, typ, pools[c])
			}
		}
	})

	t.Run("rolls", func(t *testing.T) {
		type key struct {
			cluster string
			week    int
		}
		first, last := map[key]time.Time{}, map[key]time.Time{}
		count := map[string]int{}
		for _, ev := range evs {
			if !strings.Contains(ev.Type, "NodePoolRolling") {
				continue
			}
			count[ev.Type]++
			k := key{ev.Cluster, int(ev.Time.Sub(DefaultStart) / (7 * 24 * time.Hour))}
			if f, ok := first[k]; !ok || ev.Time.Before(f) {
				first[k] = ev.Time
			}
			if ev.Time.After(last[k]) {
				last[k] = ev.Time
			}
		}
		for k := range first {
			if span := last[k].Sub(first[k]); span > 4*time.Hour {
				t.Errorf("cluster %s week %d rolls over %s, outside a 4-hour window", k.cluster, k.week, span)
			}
		}
		starts := float64(count[TypeNodePoolRollingStarted])
		succeeded := float64(count[TypeNodePoolRollingSucceeded]) / starts
		failed := float64(count[TypeNodePoolRollingFailed]) / starts
		open := 1 - succeeded - failed
		if starts < 1000 || math.Abs(succeeded-0.95) > 0.02 || math.Abs(failed-0.04) > 0.015 || open <= 0 || open > 0.025 {
			t.Errorf("over %.0f rolls: %.3f succeeded, %.3f failed, %.3f open; want about .95/.04/.01", starts, succeeded, failed, open)
		}
	})

	t.Run("schemas", func(t *testing.T) {
		for _, tc := range []struct {
			schema string
			wantCE bool
			wantEG bool
		}{
			{SchemaEventGrid, false, true},
			{SchemaCloudEvents, true, false},
			{SchemaMixed, true, true},
		} {
			var ce, eg bool
			for _, ev := range Generate(Options{Seed: 7, Clusters: 8, Weeks: 1, Schema: tc.schema}) {
				if strings.HasPrefix(ev.Type, "Microsoft.Resources.Resource") {
					continue
				}
				if bytes.Contains(ev.Raw, []byte(`"specversion":"1.0"`)) {
					ce = true
				} else {
					eg = true
				}
			}
			if ce != tc.wantCE || eg != tc.wantEG {
				t.Errorf("schema %s: CloudEvents %v, Event Grid %v; want %v, %v", tc.schema, ce, eg, tc.wantCE, tc.wantEG)
			}
		}
	})
}

func TestGenerateStart(t *testing.T) {
	// A start between Azure's 100 ns ticks: the raw times and Event.Time still agree.
	start := time.Date(2027, 2, 1, 8, 30, 15, 123456789, time.FixedZone("CET", 3600))
	evs := Generate(Options{Seed: 1, Clusters: 51, Weeks: 1, Start: start})
	checkOrderAndIDs(t, evs)
	subs := map[string]bool{}
	for _, ev := range evs {
		checkEvent(t, ev)
		subs[strings.SplitN(ev.Cluster, "~", 2)[0]] = true
		if ev.Time.Before(start) || ev.Time.After(start.AddDate(0, 0, 7)) {
			t.Errorf("%s at %s, outside the week from %s", ev.ID, ev.Time, start)
		}
	}
	if len(subs) != 2 {
		t.Errorf("51 clusters in %d subscriptions, want 2", len(subs))
	}
}

func TestGenerateDefaults(t *testing.T) {
	evs := Generate(Options{})
	clusters := map[string]bool{}
	for _, ev := range evs {
		clusters[ev.Cluster] = true
	}
	if len(clusters) != 10 || evs[0].Time.Before(DefaultStart) || evs[len(evs)-1].Time.After(DefaultStart.AddDate(0, 0, 28)) {
		t.Errorf("zero Options: %d clusters from %s to %s; want 10 over 4 weeks from %s",
			len(clusters), evs[0].Time, evs[len(evs)-1].Time, DefaultStart)
	}
}

func TestWithDuplicates(t *testing.T) {
	orig := Demo()
	n := len(orig)
	for _, tc := range []struct {
		name     string
		fraction float64
		want     int
	}{
		{"none", 0, 0},
		{"a tenth", 0.1, int(math.Round(0.1 * float64(n)))},
		{"a third", 1.0 / 3, int(math.Round(float64(n) / 3))},
		{"all", 1, n},
		{"clamped", 2.5, n},
		{"negative", -1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := WithDuplicates(orig, tc.fraction, 99)
			if len(got) != n+tc.want {
				t.Fatalf("got %d events, want %d + %d", len(got), n, tc.want)
			}
			// First occurrences are the originals in their order; every later
			// one is a byte-identical redelivery of one of them.
			seen := map[string]Event{}
			var firsts []string
			dups := 0
			for _, ev := range got {
				o, ok := seen[ev.ID]
				if !ok {
					seen[ev.ID] = ev
					firsts = append(firsts, ev.ID)
					continue
				}
				dups++
				if !bytes.Equal(o.Raw, ev.Raw) || !o.Time.Equal(ev.Time) || o.Type != ev.Type {
					t.Errorf("redelivery of %s differs from the original", ev.ID)
				}
			}
			if dups != tc.want {
				t.Errorf("got %d redeliveries, want %d", dups, tc.want)
			}
			var want []string
			for _, ev := range orig {
				want = append(want, ev.ID)
			}
			if diff := cmp.Diff(want, firsts); diff != "" {
				t.Errorf("originals moved (-want +got):\n%s", diff)
			}
			if i := firstDifference(got, WithDuplicates(orig, tc.fraction, 99)); i >= 0 {
				t.Errorf("not deterministic for a seed: differs from event %d", i)
			}
		})
	}
	t.Run("seed matters", func(t *testing.T) {
		a, b := WithDuplicates(orig, 0.3, 1), WithDuplicates(orig, 0.3, 2)
		if firstDifference(a, b) < 0 {
			t.Error("seeds 1 and 2 placed the same redeliveries")
		}
	})
	t.Run("empty", func(t *testing.T) {
		if got := WithDuplicates(nil, 0.5, 1); len(got) != 0 {
			t.Errorf("got %d events from none", len(got))
		}
	})
}

func TestShuffle(t *testing.T) {
	orig := Demo()
	before := append([]Event(nil), orig...)
	got := Shuffle(orig, 5)
	if diff := cmp.Diff(before, orig); diff != "" {
		t.Fatalf("Shuffle modified its input:\n%s", diff)
	}
	if len(got) != len(orig) {
		t.Fatalf("got %d events, want %d", len(got), len(orig))
	}
	count := map[string]int{}
	for _, ev := range orig {
		count[ev.ID]++
	}
	for _, ev := range got {
		count[ev.ID]--
	}
	for id, c := range count {
		if c != 0 {
			t.Errorf("event %s: count off by %d", id, c)
		}
	}
	if firstDifference(got, orig) < 0 {
		t.Error("Shuffle kept the order")
	}
	if firstDifference(got, Shuffle(orig, 5)) >= 0 || firstDifference(got, Shuffle(orig, 6)) < 0 {
		t.Error("Shuffle is not a function of its seed")
	}
}
