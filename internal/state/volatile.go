package state

import (
	"maps"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
)

// The volatile columns change with almost every commit: how many signals the
// cluster has had, when it last heard of one, when the sweep must look at it
// next, when its open findings were last seen. They are kept on the
// partition's newest sequence row, which every commit adds anyway, and not on
// the Cluster row: that row (some 2 KB) is then written only when what it
// holds changes, not by every event.
//
// rowsOf gives them as a pseudo-row, rkVolatile, so that comparing two
// encodings of a state still notices a change of, say, only NextEvaluation
// (the sweep must commit it); changeOf never writes that row, plan hands its
// columns to the guard of a change's last transaction (see guard). A
// transaction before the last carries the values the change started from, so
// a partition left between two of them loads consistent: the Signals count of
// the change lands with its last part, never before.
//
// Partitions last written before issue #13 hold them on the Cluster row and
// a plain sequence row; load reads them from there (volatileOf), and the
// next commit that writes anything rewrites the Cluster row without them
// (snapshot.legacy).

// rkVolatile is the pseudo-row of the volatile columns in rowsOf's map; no
// stored row has this RowKey (sequence rows are seq~<n>).
const rkVolatile = "seq"

// volatileColumns are the columns the pseudo-row holds.
var volatileColumns = []string{"Signals", "LastEventAt", "HeardAt", "NextEvaluation", "FindingsSeenAt"}

// volatileRow is the pseudo-row of c. Signals is always written: its
// presence tells a sequence row that carries the volatile columns from one
// written before.
func volatileRow(c *fleet.Cluster) row {
	r := row{"Signals": c.Signals}
	setTime(r, "LastEventAt", c.LastEventAt)
	setTime(r, "HeardAt", c.HeardAt)
	setTime(r, "NextEvaluation", c.NextEvaluation)
	setTime(r, "FindingsSeenAt", findingsSeenAt(c))
	return r
}

// hasVolatile reports whether a stored row holds any volatile column.
func hasVolatile(e entity) bool {
	for _, k := range volatileColumns {
		if _, ok := e[k]; ok {
			return true
		}
	}
	return false
}

// volatileOf picks the row a load reads the volatile columns from: the
// newest sequence row (rows[rkVolatile]) when it carries them, else the
// Cluster row (a partition not committed to since issue #13, or none at all).
func volatileOf(rows map[string]entity) entity {
	if e, ok := rows[rkVolatile]; ok && hasVolatile(e) {
		return e
	}
	return rows[rkCluster]
}

// readVolatile reads the volatile columns into c; FindingsSeenAt is read by
// clusterOf, once the findings are in.
func readVolatile(c *fleet.Cluster, e entity) {
	c.Signals = e.int("Signals")
	c.LastEventAt = e.time("LastEventAt")
	c.HeardAt = e.time("HeardAt")
	c.NextEvaluation = e.time("NextEvaluation")
}

// sequenceRow is the sequence row seq~<n> of a commit, carrying vol's
// columns.
func sequenceRow(n int64, partial bool, vol row) row {
	r := maps.Clone(vol)
	if r == nil {
		r = row{}
	}
	r["Kind"], r["Seq"] = KindSequence, n
	if partial {
		r["Partial"] = true
	}
	return r
}
