package fleet

import (
	"sort"
	"time"
)

// ChannelSpan is when one value of one channel was first and last observed.
type ChannelSpan struct {
	Channel string // channelNodeOS or channelUpgrade
	Value   string
	First   time.Time
	Last    time.Time
}

const (
	channelNodeOS  = "nodeOS"
	channelUpgrade = "upgrade"
)

func (c *Cluster) observeChannel(channel, value string, at time.Time) {
	if value == "" || at.IsZero() {
		return
	}
	found := false
	for i := range c.Channels {
		s := &c.Channels[i]
		if s.Channel == channel && s.Value == value {
			if at.Before(s.First) {
				s.First = at
			}
			if at.After(s.Last) {
				s.Last = at
			}
			found = true
		}
	}
	if !found {
		c.Channels = append(c.Channels, ChannelSpan{Channel: channel, Value: value, First: at, Last: at})
	}
	sort.Slice(c.Channels, func(i, j int) bool {
		a, b := c.Channels[i], c.Channels[j]
		if a.Channel != b.Channel {
			return a.Channel < b.Channel
		}
		return a.Value < b.Value
	})
}
