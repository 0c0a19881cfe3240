package state

import (
	"encoding/json"
	"time"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
)

// The JSON columns' own types. A JSON column's format is the table's schema
// (docs/tables.md; dashboards read it), so it is defined here, beside the
// code that writes the rows, not by tags on the domain's structs: the domain
// can change shape without changing what is stored. The field names and
// their order are those the columns have always had, so rows written before
// read back the same and unchanged rows encode to the same bytes (and are not
// rewritten).

// channelSpanCol is one entry of the cluster row's Channels column.
type channelSpanCol struct {
	Channel string    `json:"c"`
	Value   string    `json:"v"`
	First   time.Time `json:"first"`
	Last    time.Time `json:"last"`
}

func channelSpanCols(spans []fleet.ChannelSpan) []channelSpanCol {
	out := make([]channelSpanCol, len(spans))
	for i, s := range spans {
		out[i] = channelSpanCol{Channel: s.Channel, Value: s.Value, First: s.First, Last: s.Last}
	}
	return out
}

// readChannels decodes a Channels column.
func readChannels(text string) ([]fleet.ChannelSpan, error) {
	var cols []channelSpanCol
	if err := json.Unmarshal([]byte(text), &cols); err != nil || cols == nil {
		return nil, err
	}
	out := make([]fleet.ChannelSpan, len(cols))
	for i, s := range cols {
		out[i] = fleet.ChannelSpan{Channel: s.Channel, Value: s.Value, First: s.First.UTC(), Last: s.Last.UTC()}
	}
	return out, nil
}

// imageSpanCol is one entry of a pool row's Images column.
type imageSpanCol struct {
	Version string    `json:"v"`
	From    string    `json:"from"`
	First   time.Time `json:"first"`
	Last    time.Time `json:"last"`
}

func imageSpanCols(spans []fleet.ImageSpan) []imageSpanCol {
	out := make([]imageSpanCol, len(spans))
	for i, s := range spans {
		out[i] = imageSpanCol{Version: s.Version, From: s.From, First: s.First, Last: s.Last}
	}
	return out
}

// readImages decodes an Images column.
func readImages(text string) ([]fleet.ImageSpan, error) {
	var cols []imageSpanCol
	if err := json.Unmarshal([]byte(text), &cols); err != nil || cols == nil {
		return nil, err
	}
	out := make([]fleet.ImageSpan, len(cols))
	for i, s := range cols {
		out[i] = fleet.ImageSpan{Version: s.Version, From: s.From, First: s.First.UTC(), Last: s.Last.UTC()}
	}
	return out, nil
}

// signalRefCol is one entry of an operation row's Signals column.
type signalRefCol struct {
	ID   string    `json:"id"`
	Kind string    `json:"kind"`
	Time time.Time `json:"time"`
}

func signalRefCols(refs []fleet.SignalRef) []signalRefCol {
	out := make([]signalRefCol, len(refs))
	for i, r := range refs {
		out[i] = signalRefCol{ID: r.ID, Kind: string(r.Kind), Time: r.Time}
	}
	return out
}

// readSignals decodes a Signals column.
func readSignals(text string) ([]fleet.SignalRef, error) {
	var cols []signalRefCol
	if err := json.Unmarshal([]byte(text), &cols); err != nil || cols == nil {
		return nil, err
	}
	out := make([]fleet.SignalRef, len(cols))
	for i, r := range cols {
		out[i] = fleet.SignalRef{ID: r.ID, Kind: fleet.SignalKind(r.Kind), Time: r.Time.UTC()}
	}
	return out, nil
}

// maintenanceCol is one entry of the cluster row's Maintenance column: a
// maintenance configuration as ARM describes it.
type maintenanceCol struct {
	Name           string          `json:"name"`
	Schedule       scheduleCol     `json:"schedule"`
	DurationHours  int             `json:"durationHours,omitempty"`
	UTCOffset      string          `json:"utcOffset,omitempty"`
	StartDate      string          `json:"startDate,omitempty"`
	StartTime      string          `json:"startTime,omitempty"`
	NotAllowed     []dateSpanCol   `json:"notAllowedDates,omitempty"`
	TimeInWeek     []timeInWeekCol `json:"timeInWeek,omitempty"`
	NotAllowedTime []timeSpanCol   `json:"notAllowedTime,omitempty"`
}

type scheduleCol struct {
	Kind           string `json:"kind,omitempty"`
	IntervalDays   int    `json:"intervalDays,omitempty"`
	IntervalWeeks  int    `json:"intervalWeeks,omitempty"`
	IntervalMonths int    `json:"intervalMonths,omitempty"`
	DayOfWeek      string `json:"dayOfWeek,omitempty"`
	DayOfMonth     int    `json:"dayOfMonth,omitempty"`
	WeekIndex      string `json:"weekIndex,omitempty"`
}

type dateSpanCol struct {
	Start string `json:"start"`
	End   string `json:"end"`
}

type timeInWeekCol struct {
	Day       string `json:"day"`
	HourSlots []int  `json:"hourSlots"`
}

type timeSpanCol struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// mapSlice converts a slice element by element, keeping nil nil (a nil
// slice encodes as null, an empty one as []: the columns keep which).
func mapSlice[T, U any](in []T, f func(T) U) []U {
	if in == nil {
		return nil
	}
	out := make([]U, len(in))
	for i, v := range in {
		out[i] = f(v)
	}
	return out
}

func maintenanceCols(ws []fleet.MaintenanceWindow) []maintenanceCol {
	return mapSlice(ws, func(w fleet.MaintenanceWindow) maintenanceCol {
		s := w.Schedule
		return maintenanceCol{
			Name: w.Name, DurationHours: w.DurationHours, UTCOffset: w.UTCOffset, StartDate: w.StartDate, StartTime: w.StartTime,
			Schedule: scheduleCol{Kind: s.Kind, IntervalDays: s.IntervalDays, IntervalWeeks: s.IntervalWeeks,
				IntervalMonths: s.IntervalMonths, DayOfWeek: s.DayOfWeek, DayOfMonth: s.DayOfMonth, WeekIndex: s.WeekIndex},
			NotAllowed: mapSlice(w.NotAllowed, func(d fleet.DateSpan) dateSpanCol { return dateSpanCol{Start: d.Start, End: d.End} }),
			TimeInWeek: mapSlice(w.TimeInWeek, func(t fleet.TimeInWeek) timeInWeekCol {
				return timeInWeekCol{Day: t.Day, HourSlots: t.HourSlots}
			}),
			NotAllowedTime: mapSlice(w.NotAllowedTime, func(t fleet.TimeSpan) timeSpanCol { return timeSpanCol{Start: t.Start, End: t.End} }),
		}
	})
}

func maintenanceOf(cols []maintenanceCol) []fleet.MaintenanceWindow {
	return mapSlice(cols, func(w maintenanceCol) fleet.MaintenanceWindow {
		s := w.Schedule
		return fleet.MaintenanceWindow{
			Name: w.Name, DurationHours: w.DurationHours, UTCOffset: w.UTCOffset, StartDate: w.StartDate, StartTime: w.StartTime,
			Schedule: fleet.MaintenanceSchedule{Kind: s.Kind, IntervalDays: s.IntervalDays, IntervalWeeks: s.IntervalWeeks,
				IntervalMonths: s.IntervalMonths, DayOfWeek: s.DayOfWeek, DayOfMonth: s.DayOfMonth, WeekIndex: s.WeekIndex},
			NotAllowed: mapSlice(w.NotAllowed, func(d dateSpanCol) fleet.DateSpan { return fleet.DateSpan{Start: d.Start, End: d.End} }),
			TimeInWeek: mapSlice(w.TimeInWeek, func(t timeInWeekCol) fleet.TimeInWeek {
				return fleet.TimeInWeek{Day: t.Day, HourSlots: t.HourSlots}
			}),
			NotAllowedTime: mapSlice(w.NotAllowedTime, func(t timeSpanCol) fleet.TimeSpan { return fleet.TimeSpan{Start: t.Start, End: t.End} }),
		}
	})
}

// readMaintenance decodes a Maintenance column.
func readMaintenance(text string) ([]fleet.MaintenanceWindow, error) {
	var cols []maintenanceCol
	if err := json.Unmarshal([]byte(text), &cols); err != nil {
		return nil, err
	}
	return maintenanceOf(cols), nil
}

// channelChangeCol is an operation row's ChannelChange column (written for
// dashboards, never read back: it derives from the activities).
type channelChangeCol struct {
	Channel       string    `json:"channel"`
	From          string    `json:"from"`
	To            string    `json:"to"`
	At            time.Time `json:"at"`
	Actor         string    `json:"actor,omitempty"`
	ActorType     string    `json:"actorType,omitempty"`
	CorrelationID string    `json:"correlationId,omitempty"`
	ActivityID    string    `json:"activityId,omitempty"`
}

func channelChangeColOf(ch *fleet.ChannelChange) channelChangeCol {
	return channelChangeCol{Channel: ch.Channel, From: ch.From, To: ch.To, At: ch.At, Actor: ch.Actor,
		ActorType: ch.ActorType, CorrelationID: ch.CorrelationID, ActivityID: ch.ActivityID}
}

// deliveryCol is one sink's entry of an outbox row's Deliveries column.
type deliveryCol struct {
	Attempts    int       `json:"attempts,omitempty"`
	NextAttempt time.Time `json:"next,omitzero"`
	SentAt      time.Time `json:"sent,omitzero"`
	GaveUp      bool      `json:"gaveUp,omitempty"`
	LastError   string    `json:"error,omitempty"`
	LeaseOwner  string    `json:"lease,omitempty"`
	LeaseUntil  time.Time `json:"leaseUntil,omitzero"`
}

// deliveriesText encodes a Deliveries column.
func deliveriesText(ds map[string]*fleet.Delivery) string {
	if ds == nil {
		return jsonText(nil)
	}
	cols := make(map[string]deliveryCol, len(ds))
	for sink, d := range ds {
		cols[sink] = deliveryCol{Attempts: d.Attempts, NextAttempt: d.NextAttempt, SentAt: d.SentAt, GaveUp: d.GaveUp,
			LastError: d.LastError, LeaseOwner: d.LeaseOwner, LeaseUntil: d.LeaseUntil}
	}
	return jsonText(cols)
}

// readDeliveries decodes a Deliveries column. An unreadable one (truncated
// by hand, say) owes nothing: losing a notification is better than failing
// the cluster's every commit.
func readDeliveries(text string) map[string]*fleet.Delivery {
	var cols map[string]deliveryCol
	_ = json.Unmarshal([]byte(text), &cols)
	out := make(map[string]*fleet.Delivery, len(cols))
	for sink, d := range cols {
		out[sink] = &fleet.Delivery{Attempts: d.Attempts, NextAttempt: d.NextAttempt.UTC(), SentAt: d.SentAt.UTC(),
			GaveUp: d.GaveUp, LastError: d.LastError, LeaseOwner: d.LeaseOwner, LeaseUntil: d.LeaseUntil}
	}
	return out
}
