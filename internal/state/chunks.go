package state

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
)

// A change too big for one entity-group transaction (100 operations, 4 MiB
// of request) commits in several, in this order:
//
//  1. facts: pool, operation, activity and scheduled-event rows, each on its
//     own. Re-applying the signal to a state that already holds them changes
//     nothing (fleet.Apply keeps the newest observation of each fact).
//  2. findings, each with the outbox intents and remediations about it (and
//     their archive rows) in the same transaction, so a finding never commits
//     open without the intent announcing it, nor the reverse: a redelivery
//     that finds the finding open records no second intent.
//  3. last, the cluster row when it changed, the signal's audit row (the
//     dedupe marker; a batch's signals: one each, at most maxMarks, so that
//     they all fit this one transaction), and the sequence row carrying the
//     volatile columns (volatile.go), whose Signals count is not idempotent.
//
// Every transaction moves the partition's sequence row (seq~n → seq~n+1, then
// n+1 → n+2, …): a concurrent writer between two of them makes the next one
// fail its guard, and the writer reloads and retries with what is left. The
// sequence rows written before the last transaction carry Partial = true, so
// whoever loads a partially applied state rewrites the cluster's index
// entries from it (indexOps would miss what earlier transactions changed),
// and the volatile columns the change started from. A
// process that dies between transactions leaves a partially applied state
// without the marker: the redelivery reloads it, applies the signal again and
// commits only the difference.

// chunkBytes bounds the entities of one transaction, under Table storage's
// 4 MiB request limit with room for the multipart framing of 100 operations.
const chunkBytes = 3 << 20

// opOverhead is what one operation adds to a batch request beyond its entity
// (changeset boundary, request line, headers).
const opOverhead = 512

// unit is a group of actions that must commit in one transaction.
type unit struct {
	acts  []aztables.TransactionAction
	bytes int
}

func (u *unit) add(a aztables.TransactionAction) {
	u.acts = append(u.acts, a)
	u.bytes += len(a.Entity) + opOverhead
}

// change is a commit's actions without the guard, grouped as described above.
type change struct {
	facts    []*unit
	findings []*unit
	final    unit
}

// changeBuilder collects a change's actions by row.
type changeBuilder struct {
	pk     string
	ch     change
	groups map[string]*unit // findings phase, by finding key
	err    error
}

func newChangeBuilder(pk string) *changeBuilder {
	return &changeBuilder{pk: pk, groups: map[string]*unit{}}
}

// into returns the unit a row (by its RowKey and content) belongs to.
func (b *changeBuilder) into(rk string, r row) *unit {
	switch {
	case rk == rkCluster || strings.HasPrefix(rk, rkSigPrefix):
		return &b.ch.final
	case strings.HasPrefix(rk, rkFindPrefix), strings.HasPrefix(rk, rkFindArchive):
		return b.group(strings.TrimPrefix(strings.TrimPrefix(rk, rkFindArchive), rkFindPrefix), rk)
	case strings.HasPrefix(rk, rkOutPrefix), strings.HasPrefix(rk, rkOutArchive),
		strings.HasPrefix(rk, rkRemPrefix), strings.HasPrefix(rk, rkRemArchive):
		code, _ := r["Code"].(string)
		target, _ := r["Target"].(string)
		return b.group(strings.TrimPrefix(findingKey(code, target), rkFindPrefix), "")
	}
	u := &unit{}
	b.ch.facts = append(b.ch.facts, u)
	return u
}

// group returns the findings-phase unit of one finding key. A finding archive
// row's key ends in ~<opened time>, which is cut off to find its finding.
func (b *changeBuilder) group(key, rk string) *unit {
	if strings.HasPrefix(rk, rkFindArchive) {
		if i := strings.LastIndexByte(key, '~'); i > 0 {
			key = key[:i]
		}
	}
	u, ok := b.groups[key]
	if !ok {
		u = &unit{}
		b.groups[key] = u
		b.ch.findings = append(b.ch.findings, u)
	}
	return u
}

func (b *changeBuilder) put(typ aztables.TransactionType, rk string, r row) {
	if b.err != nil {
		return
	}
	body, err := r.marshal(b.pk, rk)
	if err != nil {
		b.err = fmt.Errorf("%w: encode row %s: %v", ErrRejected, rk, err)
		return
	}
	b.into(rk, r).add(aztables.TransactionAction{ActionType: typ, Entity: body})
}

// del deletes a row; r is its last content, which says where it belongs.
func (b *changeBuilder) del(rk string, r row) {
	b.into(rk, r).add(deleteAction(b.pk, rk))
}

func deleteAction(pk, rk string) aztables.TransactionAction {
	body, _ := row{}.marshal(pk, rk)
	return aztables.TransactionAction{ActionType: aztables.TransactionTypeDelete, Entity: body, IfMatch: to.Ptr(azcore.ETagAny)}
}

// changeOf builds the change that moves a partition from snap to rows: every
// changed row, and the audit row of each signal (the sweep's re-evaluations
// have none; a batch has several). last holds the final form of rows that
// leave the state in this change (intents every sink is done with: see
// leaving), for the archive. seq is the sequence number the
// signal's row records (the partition's after the commit).
func (s *Store) changeOf(pk string, snap *snapshot, rows, last map[string]row, seq int64, sigs ...*fleet.Signal) (*change, error) {
	b := newChangeBuilder(pk)
	for _, sig := range sigs {
		if sig != nil {
			b.put(aztables.TransactionTypeAdd, signalKey(sig.ID), signalRow(*sig, seq, s.now()))
		}
	}
	keys := make([]string, 0, len(rows))
	for rk := range rows {
		keys = append(keys, rk)
	}
	sort.Strings(keys)
	for _, rk := range keys {
		old, ok := snap.rows[rk]
		// The volatile columns travel on the sequence row (plan); a Cluster
		// row still holding them is rewritten without them.
		if rk == rkVolatile || ok && old.equal(rows[rk]) && !(rk == rkCluster && snap.legacy) {
			continue
		}
		// A resolved finding opening again: keep the resolved instance.
		if ok && old["Kind"] == KindFinding && old["Status"] == fleet.FindingResolved && rows[rk]["Status"] == fleet.FindingOpen {
			opened, _ := old["OpenedAt"].(time.Time)
			b.put(aztables.TransactionTypeInsertReplace, rkFindArchive+strings.TrimPrefix(rk, rkFindPrefix)+"~"+
				opened.UTC().Format(fleet.TimeKeyLayout), old)
		}
		b.put(aztables.TransactionTypeInsertReplace, rk, rows[rk])
	}
	var gone []string
	for rk := range snap.rows {
		if _, ok := rows[rk]; !ok && rk != rkVolatile {
			gone = append(gone, rk)
		}
	}
	sort.Strings(gone)
	for _, rk := range gone {
		r := snap.rows[rk]
		// Delivered notifications and pruned remediations are kept, in the
		// archive.
		if ark := archived(rk); ark != "" {
			if final, ok := last[rk]; ok {
				r = final
			}
			b.put(aztables.TransactionTypeInsertReplace, ark, r)
		}
		b.del(rk, r)
	}
	return &b.ch, b.err
}

// chunks packs a change into transactions of at most maxBatch-2 actions
// (two are the guard) and chunkBytes, in phase order, the final unit in the
// last one. A unit too big for one transaction on its own (no real change
// makes one) is split rather than refused.
func (c *change) chunks() [][]aztables.TransactionAction {
	const room = maxBatch - 2
	var out [][]aztables.TransactionAction
	var cur []aztables.TransactionAction
	curBytes := 0
	flush := func() {
		if len(cur) > 0 {
			out = append(out, cur)
			cur, curBytes = nil, 0
		}
	}
	place := func(u *unit) {
		if len(cur)+len(u.acts) > room || curBytes+u.bytes > chunkBytes {
			flush()
		}
		if len(u.acts) <= room && u.bytes <= chunkBytes {
			cur = append(cur, u.acts...)
			curBytes += u.bytes
			return
		}
		for _, a := range u.acts {
			if len(cur)+1 > room || curBytes+len(a.Entity)+opOverhead > chunkBytes {
				flush()
			}
			cur = append(cur, a)
			curBytes += len(a.Entity) + opOverhead
		}
	}
	for _, u := range c.facts {
		place(u)
	}
	for _, u := range c.findings {
		place(u)
	}
	place(&c.final)
	flush()
	if len(out) == 0 {
		out = [][]aztables.TransactionAction{nil} // the guard alone
	}
	return out
}

// plan is the change from snap to rows as guarded transactions, with the
// sequence number the partition reaches after the last one.
func (s *Store) plan(pk string, snap *snapshot, rows, last map[string]row, sigs ...*fleet.Signal) ([][]aztables.TransactionAction, int64, error) {
	ch, err := s.changeOf(pk, snap, rows, last, snap.seq+1, sigs...)
	if err != nil {
		return nil, 0, err
	}
	chunks := ch.chunks()
	if n := int64(len(chunks)); n > 1 && len(sigs) > 0 {
		// The audit rows record the sequence the signals complete at.
		if ch, err = s.changeOf(pk, snap, rows, last, snap.seq+n, sigs...); err != nil {
			return nil, 0, err
		}
		chunks = ch.chunks()
	}
	out := make([][]aztables.TransactionAction, len(chunks))
	seq := snap.seq
	for i, acts := range chunks {
		// Only the last transaction, the one that completes the change,
		// moves the volatile columns on.
		vol, partial := rows[rkVolatile], i < len(chunks)-1
		if partial {
			vol = snap.rows[rkVolatile]
		}
		g, err := guard(pk, seq, partial, vol)
		if err != nil {
			return nil, 0, err
		}
		out[i] = append(g, acts...)
		seq++
	}
	return out, seq, nil
}

// guard moves the sequence row from seq~n to seq~n+1: deleting seq~n fails if
// another writer already moved past n; adding seq~n+1 fails if one got to n+1
// first. A partition's first commit (n = 0) has no row to delete, and seq~1
// is gone once the partition passed seq~2, so it also adds seq~0, which no
// commit ever deletes: a writer that saw the partition empty before another
// created it fails there instead of committing on an empty view. seq~n+1
// carries vol, the volatile columns (volatile.go).
func guard(pk string, n int64, partial bool, vol row) ([]aztables.TransactionAction, error) {
	var acts []aztables.TransactionAction
	if n > 0 {
		acts = append(acts, deleteAction(pk, seqKey(n)))
	} else {
		born, err := row{"Kind": KindSequence, "Seq": int64(0)}.marshal(pk, seqKey(0))
		if err != nil {
			return nil, err
		}
		acts = append(acts, aztables.TransactionAction{ActionType: aztables.TransactionTypeAdd, Entity: born})
	}
	body, err := sequenceRow(n+1, partial, vol).marshal(pk, seqKey(n+1))
	if err != nil {
		return nil, err
	}
	return append(acts, aztables.TransactionAction{ActionType: aztables.TransactionTypeAdd, Entity: body}), nil
}

// submit commits the transactions of a plan in order. It returns the
// sequence number reached (from, if none committed) and the first error.
func (s *Store) submit(ctx context.Context, pk string, from int64, chunks [][]aztables.TransactionAction) (int64, error) {
	seq := from
	for i, acts := range chunks {
		if _, err := s.fleet.SubmitTransaction(ctx, acts, nil); err != nil {
			return seq, err
		}
		seq++
		if i < len(chunks)-1 {
			if s.chunkHook != nil {
				if err := s.chunkHook(i); err != nil {
					return seq, err
				}
			}
			s.log.Debug("committed part of a change", "cluster", pk, "part", i+1, "parts", len(chunks))
		}
	}
	return seq, nil
}
