package state

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
)

// Table storage refuses an entity whose string property exceeds 64 KiB
// (32 768 UTF-16 code units) or whose total size exceeds 1 MiB, and a request
// over 4 MiB (see chunks.go for the last). Values that grow with input are
// bounded when rows are encoded, so storage never refuses a genuine signal's
// rows (it used to answer 400 PropertyValueTooLarge after some rows were
// written):
//
//   - text columns are clipped, on a character boundary, with a visible
//     marker at the end (clippedMark), which stays with the value when it is
//     read back and written again;
//   - JSON columns are bounded by their encoders, which keep what matters
//     most (the newest image spans and channel values, the first and newest
//     signals of an operation, the most common node versions, the
//     upgradewatch.* tags) and say what they left out (…Omitted columns, or
//     TagsOmitted); a JSON value is never cut mid-text, so it always reads
//     back;
//   - the cluster's tags, up to Azure's own limits (50 tags, names of 512 and
//     values of 256 characters: about 39 000 characters of JSON), are kept
//     whole over two columns, Tags and TagsOverflow.
//
// Rows have fixed columns, far fewer than the 252 properties an entity may
// have, so that limit needs no handling.
const (
	// maxStringUnits is the most UTF-16 code units a string property may hold.
	maxStringUnits = 32 * 1024
	// textUnits is what a text column is clipped to: under the limit, with
	// room for the marker.
	textUnits = maxStringUnits - 256
	// maxEntityBytes is the most an entity may weigh (Table storage's
	// accounting: 2 bytes per UTF-16 unit), less a margin.
	maxEntityBytes = 1<<20 - 4<<10
	// jsonUnits bounds a JSON column written by a bounding encoder.
	jsonUnits = 30 * 1024
)

// clippedMark ends a text value that was clipped to fit Table storage.
const clippedMark = " …[clipped by upgradewatch: too long for Table storage]"

// jsonColumns are the columns holding JSON, with the value that stands for
// "nothing kept": fitRow never cuts them, it replaces one that is still too
// big (no encoder lets that happen) by this and says so in the Clipped column.
var jsonColumns = map[string]string{
	"Tags": "{}", "TagsOverflow": "{}", "Channels": "[]", "Maintenance": "[]", "NodeVersions": "{}",
	"Images": "[]", "Signals": "[]", "ChannelChange": "{}", "Failures": "[]", "Evidence": "{}", "Deliveries": "{}",
}

// utf16Len is how many UTF-16 code units s holds: Table storage's measure.
func utf16Len(s string) int {
	n := 0
	for _, r := range s {
		n++
		if r >= 0x10000 {
			n++
		}
	}
	return n
}

// clipText keeps s within n UTF-16 code units, ending it with clippedMark when
// it had to be cut. Clipping a clipped value again changes nothing.
func clipText(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if utf16Len(s) <= n {
		return s
	}
	return truncateUTF16(s, n-utf16Len(clippedMark)) + clippedMark
}

// fitRow bounds every string property of a row and the row's total size. It
// is idempotent, so rows read back compare equal to rows encoded again.
func fitRow(r row) row {
	var clipped []string
	for k, v := range r {
		s, ok := v.(string)
		if !ok || utf16Len(s) <= textUnits {
			continue
		}
		if empty, isJSON := jsonColumns[k]; isJSON {
			if utf16Len(s) > maxStringUnits {
				r[k] = empty
				clipped = append(clipped, k)
			}
			continue
		}
		r[k] = clipText(s, textUnits)
	}
	for entityBytes(r) > maxEntityBytes {
		k := largestText(r)
		if k == "" {
			break
		}
		s := r[k].(string)
		if empty, isJSON := jsonColumns[k]; isJSON {
			r[k] = empty
			clipped = append(clipped, k)
			continue
		}
		r[k] = clipText(s, utf16Len(s)/2)
	}
	if len(clipped) > 0 {
		sort.Strings(clipped)
		r["Clipped"] = strings.Join(clipped, ",")
	}
	return r
}

// entityBytes is an entity's size as Table storage counts it (keys aside,
// which are bounded by construction).
func entityBytes(r row) int {
	n := 4
	for k, v := range r {
		n += 8 + 2*len(k)
		switch v := v.(type) {
		case string:
			n += 4 + 2*utf16Len(v)
		default:
			n += 8
		}
	}
	return n
}

// largestText is the longest string column that can still shrink (a text
// column longer than its marker, or a JSON column not yet emptied).
func largestText(r row) string {
	best, size := "", 0
	for k, v := range r {
		s, ok := v.(string)
		if !ok {
			continue
		}
		n := utf16Len(s)
		if empty, isJSON := jsonColumns[k]; (isJSON && s == empty) || (!isJSON && n <= 2*utf16Len(clippedMark)) {
			continue
		}
		if n > size {
			best, size = k, n
		}
	}
	return best
}

// jsonBounded encodes items, keeping the last ones (callers order them so
// the ones that matter most come last) whose encoding fits in units. It
// returns the JSON and how many items were left out.
func jsonBounded[T any](items []T, units int) (string, int) {
	kept := 0
	size := 2 // []
	for i := len(items) - 1; i >= 0; i-- {
		b, _ := json.Marshal(items[i])
		n := utf16Len(string(b)) + 1
		if size+n > units {
			break
		}
		size += n
		kept++
	}
	return jsonText(items[len(items)-kept:]), len(items) - kept
}

// tagsColumns encodes a cluster's tags in the Tags column and, when they do
// not fit in it, TagsOverflow. Tags beyond both (more than Azure allows) are
// left out, upgradewatch.* tags last; the entry tagsOmittedKey then says how
// many. A name Azure forbids in tags, it cannot collide with a real one and it
// reads back with the rest, so the mark stays on the cluster until a profile
// with fewer tags replaces them.
func tagsColumns(r row, tags map[string]string) {
	if len(tags) == 0 {
		r["Tags"] = "{}"
		return
	}
	keys := make([]string, 0, len(tags))
	for k := range tags {
		if k != tagsOmittedKey {
			keys = append(keys, k)
		}
	}
	// upgradewatch.* tags first: they are what the policy reads.
	sort.Slice(keys, func(i, j int) bool {
		pi, pj := isPolicyTag(keys[i]), isPolicyTag(keys[j])
		if pi != pj {
			return pi
		}
		return keys[i] < keys[j]
	})
	cols := []map[string]string{{}, {}}
	sizes := []int{2, 2}
	omitted := 0
	for _, k := range keys {
		v := tags[k]
		b, _ := json.Marshal(map[string]string{k: v})
		n := utf16Len(string(b)) - 1 // the pair and a comma
		placed := false
		for i := range cols {
			if sizes[i]+n <= jsonUnits {
				cols[i][k], sizes[i], placed = v, sizes[i]+n, true
				break
			}
		}
		if !placed {
			omitted++
		}
	}
	if omitted > 0 {
		cols[1][tagsOmittedKey] = fmt.Sprintf("%d tags not stored: more than Table storage holds", omitted)
		r["TagsOmitted"] = int32(omitted)
	}
	r["Tags"] = jsonText(cols[0])
	if len(cols[1]) > 0 {
		r["TagsOverflow"] = jsonText(cols[1])
	}
}

// tagsOmittedKey marks a cluster whose tags were not all stored. Azure tag
// names may not contain '<' or '>', so no real tag has it.
const tagsOmittedKey = "<upgradewatch:omitted>"

func isPolicyTag(k string) bool {
	return strings.HasPrefix(strings.ToLower(strings.TrimSpace(k)), "upgradewatch.")
}

// readTags merges the Tags and TagsOverflow columns.
func readTags(e entity, id fleet.ClusterID) (map[string]string, error) {
	tags := map[string]string{}
	for _, col := range []string{"Tags", "TagsOverflow"} {
		if t := e.str(col); t != "" {
			var m map[string]string
			if err := json.Unmarshal([]byte(t), &m); err != nil {
				return nil, fmt.Errorf("cluster %s: %s column: %w", id, col, err)
			}
			for k, v := range m {
				tags[k] = v
			}
		}
	}
	return tags, nil
}

// clipJSONObject keeps a JSON object column within n units. One that does not
// fit is replaced by an object that says so and keeps the start of the text,
// so that readers still get a JSON object.
func clipJSONObject(s string, n int) string {
	if utf16Len(s) <= n {
		return s
	}
	excerpt := truncateUTF16(s, n/2)
	for !utf8.ValidString(excerpt) {
		excerpt = excerpt[:len(excerpt)-1]
	}
	return jsonText(map[string]any{"clipped": fmt.Sprintf("%d characters: too long for Table storage", utf16Len(s)),
		"excerpt": excerpt})
}

// imagesColumn bounds a pool's image spans: the most recently seen are kept.
func imagesColumn(r row, spans []fleet.ImageSpan) {
	if len(spans) == 0 {
		return
	}
	cols := imageSpanCols(spans)
	sorted := append([]imageSpanCol(nil), cols...)
	for i := range sorted {
		sorted[i].Version = clipText(sorted[i].Version, 256)
	}
	// Oldest first: jsonBounded keeps the end.
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Last.Before(sorted[j].Last) })
	text, omitted := jsonBounded(sorted, jsonUnits)
	if omitted == 0 {
		text = jsonText(cols) // the domain's own order, as before
	}
	r["Images"] = text
	if omitted > 0 {
		r["ImagesOmitted"] = int32(omitted)
	}
}

// nodeVersionsColumn bounds a pool's node version counts: the most common
// versions are kept. NodesUnlisted counts the nodes whose version is not in
// the column, so the mark survives the value being read back.
func nodeVersionsColumn(r row, n *fleet.PoolNodes) {
	type vc struct {
		v string
		n int
	}
	all := make([]vc, 0, len(n.Versions))
	for v, c := range n.Versions {
		all = append(all, vc{v, c})
	}
	// Least common first: the end is kept.
	sort.Slice(all, func(i, j int) bool {
		if all[i].n != all[j].n {
			return all[i].n < all[j].n
		}
		return all[i].v > all[j].v
	})
	kept := map[string]int{}
	size, listed := 2, 0
	for i := len(all) - 1; i >= 0; i-- {
		b, _ := json.Marshal(map[string]int{all[i].v: all[i].n})
		if size+utf16Len(string(b)) > jsonUnits {
			break
		}
		size += utf16Len(string(b))
		kept[all[i].v] = all[i].n
		listed += all[i].n
	}
	r["NodeVersions"] = jsonText(kept)
	if len(kept) < len(all) {
		r["NodesUnlisted"] = int32(max(0, n.Nodes-listed))
		r["NodeVersionsOmitted"] = int32(len(all) - len(kept))
	}
}

// signalsColumn bounds an operation's signals: its first (which keys it) and
// the newest that fit.
func signalsColumn(r row, refs []fleet.SignalRef) {
	cols := signalRefCols(refs)
	text := jsonText(cols)
	if utf16Len(text) > jsonUnits && len(cols) > 1 {
		rest, omitted := jsonBounded(cols[1:], jsonUnits-utf16Len(jsonText(cols[:1])))
		var tail []signalRefCol
		_ = json.Unmarshal([]byte(rest), &tail)
		text = jsonText(append([]signalRefCol{cols[0]}, tail...))
		r["SignalsOmitted"] = int32(omitted)
	}
	r["Signals"] = text
}

// channelsColumn bounds the cluster's channel spans: the most recently seen
// values are kept (the current ones among them).
func channelsColumn(r row, spans []fleet.ChannelSpan) {
	if len(spans) == 0 {
		return
	}
	cols := channelSpanCols(spans)
	text := jsonText(cols)
	if utf16Len(text) > jsonUnits {
		sorted := cols
		for i := range sorted {
			sorted[i].Value = clipText(sorted[i].Value, 256)
		}
		sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Last.Before(sorted[j].Last) })
		var omitted int
		text, omitted = jsonBounded(sorted, jsonUnits)
		r["ChannelsOmitted"] = int32(omitted)
	}
	r["Channels"] = text
}

// maintenanceColumn bounds the maintenance windows: those that fit, in order.
func maintenanceColumn(r row, ws []fleet.MaintenanceWindow) {
	cols := maintenanceCols(ws)
	text := jsonText(cols)
	if utf16Len(text) > jsonUnits {
		// Reversed so that jsonBounded keeps the first windows.
		rev := make([]maintenanceCol, len(cols))
		for i, w := range cols {
			rev[len(cols)-1-i] = w
		}
		t, omitted := jsonBounded(rev, jsonUnits)
		var kept []maintenanceCol
		_ = json.Unmarshal([]byte(t), &kept)
		for i, j := 0, len(kept)-1; i < j; i, j = i+1, j-1 {
			kept[i], kept[j] = kept[j], kept[i]
		}
		text = jsonText(kept)
		r["MaintenanceOmitted"] = int32(omitted)
	}
	r["Maintenance"] = text
}
