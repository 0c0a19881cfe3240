package state

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/upgradewatch/upgradewatch/internal/fleet"
)

// The JSON columns are the table's schema (docs/tables.md): encoding the
// domain through the adapter's column types writes exactly the text rows
// have always held (the want strings were captured from the encoder of the
// domain structs' former tags), so existing rows read back the same and
// unchanged rows are not rewritten; and what is written reads back equal.
func TestJSONColumnsKeepTheirFormat(t *testing.T) {
	at := time.Date(2026, 11, 2, 2, 0, 0, 123456700, time.UTC)
	channels := []fleet.ChannelSpan{{Channel: "nodeOS", Value: "NodeImage", First: at, Last: at.Add(time.Hour)},
		{Channel: "upgrade", Value: "patch", First: at, Last: at}}
	images := []fleet.ImageSpan{{Version: "AKSUbuntu-2204gen2containerd-202610.13.0", From: fleet.ImageFromARM, First: at, Last: at.Add(time.Hour)}}
	signals := []fleet.SignalRef{{ID: "s1", Kind: fleet.KindRollingStarted, Time: at}}
	windows := []fleet.MaintenanceWindow{
		{Name: fleet.MaintenanceNodeOS, DurationHours: 4, UTCOffset: "+01:00", StartDate: "2026-01-01", StartTime: "01:00",
			Schedule:   fleet.MaintenanceSchedule{Kind: fleet.ScheduleRelativeMonthly, IntervalMonths: 1, DayOfWeek: "Sunday", WeekIndex: "First"},
			NotAllowed: []fleet.DateSpan{{Start: "2026-12-23", End: "2027-01-02"}}},
		{Name: fleet.MaintenanceDefault, TimeInWeek: []fleet.TimeInWeek{{Day: "Sunday", HourSlots: []int{1, 2, 3}}, {Day: "Monday"}},
			NotAllowedTime: []fleet.TimeSpan{{Start: at, End: at.Add(time.Hour)}}},
	}
	deliveries := map[string]*fleet.Delivery{
		"teams":   {Attempts: 2, NextAttempt: at, LastError: "teams: status 503", LeaseOwner: "i1/3", LeaseUntil: at.Add(time.Minute)},
		"webhook": {Attempts: 1, SentAt: at}, "slack": {GaveUp: true, LastError: "x"}, "eventgrid": {}}
	r := row{}
	channelsColumn(r, channels)
	imagesColumn(r, images)
	signalsColumn(r, signals)
	maintenanceColumn(r, windows)
	for _, tc := range []struct{ name, got, want string }{
		{"Channels", r["Channels"].(string), "[{\"c\":\"nodeOS\",\"v\":\"NodeImage\",\"first\":\"2026-11-02T02:00:00.1234567Z\",\"last\":\"2026-11-02T03:00:00.1234567Z\"},{\"c\":\"upgrade\",\"v\":\"patch\",\"first\":\"2026-11-02T02:00:00.1234567Z\",\"last\":\"2026-11-02T02:00:00.1234567Z\"}]"},
		{"Images", r["Images"].(string), "[{\"v\":\"AKSUbuntu-2204gen2containerd-202610.13.0\",\"from\":\"arm\",\"first\":\"2026-11-02T02:00:00.1234567Z\",\"last\":\"2026-11-02T03:00:00.1234567Z\"}]"},
		{"Signals", r["Signals"].(string), "[{\"id\":\"s1\",\"kind\":\"RollingStarted\",\"time\":\"2026-11-02T02:00:00.1234567Z\"}]"},
		{"Maintenance", r["Maintenance"].(string), "[{\"name\":\"aksManagedNodeOSUpgradeSchedule\",\"schedule\":{\"kind\":\"RelativeMonthly\",\"intervalMonths\":1,\"dayOfWeek\":\"Sunday\",\"weekIndex\":\"First\"},\"durationHours\":4,\"utcOffset\":\"+01:00\",\"startDate\":\"2026-01-01\",\"startTime\":\"01:00\",\"notAllowedDates\":[{\"start\":\"2026-12-23\",\"end\":\"2027-01-02\"}]},{\"name\":\"default\",\"schedule\":{},\"timeInWeek\":[{\"day\":\"Sunday\",\"hourSlots\":[1,2,3]},{\"day\":\"Monday\",\"hourSlots\":null}],\"notAllowedTime\":[{\"start\":\"2026-11-02T02:00:00.1234567Z\",\"end\":\"2026-11-02T03:00:00.1234567Z\"}]}]"},
		{"ChannelChange", jsonText(channelChangeColOf(&fleet.ChannelChange{Channel: "nodeOS", From: "Unmanaged", To: "NodeImage", At: at,
			Actor: "alice@contoso.com", ActorType: "User", CorrelationID: "c1", ActivityID: "a1"})), "{\"channel\":\"nodeOS\",\"from\":\"Unmanaged\",\"to\":\"NodeImage\",\"at\":\"2026-11-02T02:00:00.1234567Z\",\"actor\":\"alice@contoso.com\",\"actorType\":\"User\",\"correlationId\":\"c1\",\"activityId\":\"a1\"}"},
		{"ChannelChange without actor", jsonText(channelChangeColOf(&fleet.ChannelChange{Channel: "upgrade", To: "patch", At: at})), "{\"channel\":\"upgrade\",\"from\":\"\",\"to\":\"patch\",\"at\":\"2026-11-02T02:00:00.1234567Z\"}"},
		{"Deliveries", deliveriesText(deliveries), "{\"eventgrid\":{},\"slack\":{\"gaveUp\":true,\"error\":\"x\"},\"teams\":{\"attempts\":2,\"next\":\"2026-11-02T02:00:00.1234567Z\",\"error\":\"teams: status 503\",\"lease\":\"i1/3\",\"leaseUntil\":\"2026-11-02T02:01:00.1234567Z\"},\"webhook\":{\"attempts\":1,\"sent\":\"2026-11-02T02:00:00.1234567Z\"}}"},
		{"Deliveries none", deliveriesText(nil), "null"},
		{"Maintenance none", jsonText(maintenanceCols(nil)), "null"},
	} {
		if tc.got != tc.want {
			t.Errorf("%s column:\ngot  %s\nwant %s", tc.name, tc.got, tc.want)
		}
	}

	gotChannels, err := readChannels(r["Channels"].(string))
	if err != nil {
		t.Fatal(err)
	}
	gotImages, err := readImages(r["Images"].(string))
	if err != nil {
		t.Fatal(err)
	}
	gotSignals, err := readSignals(r["Signals"].(string))
	if err != nil {
		t.Fatal(err)
	}
	gotWindows, err := readMaintenance(r["Maintenance"].(string))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		got, want any
	}{
		{"Channels", gotChannels, channels}, {"Images", gotImages, images}, {"Signals", gotSignals, signals},
		{"Maintenance", gotWindows, windows}, {"Deliveries", readDeliveries(deliveriesText(deliveries)), deliveries},
	} {
		if diff := cmp.Diff(tc.want, tc.got); diff != "" {
			t.Errorf("%s read back (-want +got):\n%s", tc.name, diff)
		}
	}
}
