package arm

import (
	"slices"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/containerservice/armcontainerservice/v9"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
)

// clusterProfile maps a managed cluster. Pools are sorted by name and never
// nil: an ARM read lists every pool, so an empty list means none are left.
func clusterProfile(mc *armcontainerservice.ManagedCluster) *fleet.ClusterProfile {
	p := &fleet.ClusterProfile{
		Location: deref(mc.Location),
		Tags:     tags(mc.Tags),
		Pools:    []fleet.PoolProfile{},
	}
	props := mc.Properties
	if props == nil {
		return p
	}
	p.KubernetesVersion = first(props.CurrentKubernetesVersion, props.KubernetesVersion)
	p.ProvisioningState = deref(props.ProvisioningState)
	if a := props.AutoUpgradeProfile; a != nil {
		p.UpgradeChannel = strings.ToLower(string(deref(a.UpgradeChannel)))
		p.NodeOSUpgradeChannel = nodeOSChannel(deref(a.NodeOSUpgradeChannel))
	}
	// A read always knows the issuer, "" included: a disabled issuer is an
	// answer (node reporters cannot prove the cluster), not a gap.
	p.OIDCIssuerKnown = true
	if o := props.OidcIssuerProfile; o != nil && deref(o.Enabled) {
		p.OIDCIssuerURL = deref(o.IssuerURL)
	}
	for _, ap := range props.AgentPoolProfiles {
		if ap != nil {
			p.Pools = append(p.Pools, poolProfile(ap))
		}
	}
	slices.SortFunc(p.Pools, func(a, b fleet.PoolProfile) int { return strings.Compare(a.Name, b.Name) })
	return p
}

// nodeOSChannel puts a channel in the API's casing, whatever casing the API
// version answered in; an unknown channel is kept as sent.
func nodeOSChannel(c armcontainerservice.NodeOSUpgradeChannel) string {
	for _, v := range armcontainerservice.PossibleNodeOSUpgradeChannelValues() {
		if strings.EqualFold(string(v), string(c)) {
			return string(v)
		}
	}
	return string(c)
}

func poolProfile(ap *armcontainerservice.ManagedClusterAgentPoolProfile) fleet.PoolProfile {
	p := fleet.PoolProfile{
		Name:                strings.ToLower(deref(ap.Name)),
		Mode:                string(deref(ap.Mode)),
		OSType:              string(deref(ap.OSType)),
		OSSKU:               string(deref(ap.OSSKU)),
		VMSize:              deref(ap.VMSize),
		Count:               int(deref(ap.Count)),
		OrchestratorVersion: first(ap.CurrentOrchestratorVersion, ap.OrchestratorVersion),
		NodeImageVersion:    deref(ap.NodeImageVersion),
		ProvisioningState:   deref(ap.ProvisioningState),
	}
	if us := ap.UpgradeSettings; us != nil {
		p.MaxSurge = deref(us.MaxSurge)
		p.MaxUnavailable = deref(us.MaxUnavailable)
		p.DrainTimeoutMinutes = int(deref(us.DrainTimeoutInMinutes))
		p.NodeSoakMinutes = int(deref(us.NodeSoakDurationInMinutes))
		p.UndrainableBehavior = string(deref(us.UndrainableNodeBehavior))
	}
	return p
}

// maintenance maps the configurations, sorted by name. Real answers carry
// null for every schedule kind but one and for unused lists; nil is absent.
func maintenance(configs []*armcontainerservice.MaintenanceConfiguration) []fleet.MaintenanceWindow {
	out := []fleet.MaintenanceWindow{}
	for _, c := range configs {
		if c == nil {
			continue
		}
		w := fleet.MaintenanceWindow{Name: deref(c.Name)}
		if props := c.Properties; props != nil {
			if mw := props.MaintenanceWindow; mw != nil {
				w.Schedule = schedule(mw.Schedule)
				w.DurationHours = int(deref(mw.DurationHours))
				w.UTCOffset = deref(mw.UTCOffset)
				w.StartDate = date(mw.StartDate)
				w.StartTime = deref(mw.StartTime)
				for _, d := range mw.NotAllowedDates {
					if d != nil {
						w.NotAllowed = append(w.NotAllowed, fleet.DateSpan{Start: date(d.Start), End: date(d.End)})
					}
				}
			}
			for _, t := range props.TimeInWeek {
				if t == nil {
					continue
				}
				tw := fleet.TimeInWeek{Day: string(deref(t.Day)), HourSlots: []int{}}
				for _, h := range t.HourSlots {
					if h != nil {
						tw.HourSlots = append(tw.HourSlots, int(*h))
					}
				}
				w.TimeInWeek = append(w.TimeInWeek, tw)
			}
			for _, t := range props.NotAllowedTime {
				if t != nil {
					w.NotAllowedTime = append(w.NotAllowedTime, fleet.TimeSpan{Start: utc(t.Start), End: utc(t.End)})
				}
			}
		}
		out = append(out, w)
	}
	slices.SortFunc(out, func(a, b fleet.MaintenanceWindow) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// schedule takes the one schedule kind set. Should ARM ever set several, the
// first in the order below wins rather than failing the whole read.
func schedule(s *armcontainerservice.Schedule) fleet.MaintenanceSchedule {
	switch {
	case s == nil:
		return fleet.MaintenanceSchedule{}
	case s.Daily != nil:
		return fleet.MaintenanceSchedule{Kind: fleet.ScheduleDaily, IntervalDays: int(deref(s.Daily.IntervalDays))}
	case s.Weekly != nil:
		return fleet.MaintenanceSchedule{
			Kind:          fleet.ScheduleWeekly,
			IntervalWeeks: int(deref(s.Weekly.IntervalWeeks)),
			DayOfWeek:     string(deref(s.Weekly.DayOfWeek)),
		}
	case s.AbsoluteMonthly != nil:
		return fleet.MaintenanceSchedule{
			Kind:           fleet.ScheduleAbsoluteMonthly,
			IntervalMonths: int(deref(s.AbsoluteMonthly.IntervalMonths)),
			DayOfMonth:     int(deref(s.AbsoluteMonthly.DayOfMonth)),
		}
	case s.RelativeMonthly != nil:
		return fleet.MaintenanceSchedule{
			Kind:           fleet.ScheduleRelativeMonthly,
			IntervalMonths: int(deref(s.RelativeMonthly.IntervalMonths)),
			DayOfWeek:      string(deref(s.RelativeMonthly.DayOfWeek)),
			WeekIndex:      string(deref(s.RelativeMonthly.WeekIndex)),
		}
	}
	return fleet.MaintenanceSchedule{}
}

// date formats an ARM plain date as it was sent: the SDK decodes it as
// midnight UTC, so no zone conversion may touch it.
func date(t *time.Time) string {
	if t == nil {
		return ""
	}
	return t.Format(time.DateOnly)
}

func utc(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}

// tags copies resource tags; a null value becomes "". No tags gives nil.
func tags(in map[string]*string) map[string]string {
	if len(in) == 0 {
		return nil
	}
	out := make(map[string]string, len(in))
	for k, v := range in {
		out[k] = deref(v)
	}
	return out
}

// first is the first non-empty value: the current version over the requested one.
func first(vs ...*string) string {
	for _, v := range vs {
		if s := deref(v); s != "" {
			return s
		}
	}
	return ""
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
