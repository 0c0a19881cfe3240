package state

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
	"github.com/upgradewatch/upgradewatch/internal/patch"
	"github.com/upgradewatch/upgradewatch/internal/watch"
)

// Table base names of the compliance figures (Options.TablePrefix is
// prepended, as for the others): TableCompliance holds a row per cluster
// (current, and per day), TableComplianceFleet the bounded rows the API
// reads (aggregates, and the fleet's row per day), so that its point reads
// and its history query never pass over per-cluster rows.
const (
	TableCompliance      = "Compliance"
	TableComplianceFleet = "ComplianceFleet"
)

// Partitions and row kinds of the compliance tables (docs/tables.md).
const (
	pkCurrent   = "current" // Compliance: one row per cluster, its current summary
	pkDayPrefix = "day~"    // Compliance: day~YYYYMMDD, the day's claim row and one row per cluster
	rkDayClaim  = "claim"
	rkDayPrefix = "cluster~"
	pkAggregate = "agg" // ComplianceFleet: one row per scope
	pkFleetDay  = "day" // ComplianceFleet: one row per day, RowKey YYYYMMDD

	KindComplianceSummary   = "ComplianceSummary"
	KindComplianceAggregate = "ComplianceAggregate"
	KindComplianceDay       = "ComplianceDay"
	KindComplianceDayClaim  = "ComplianceDayClaim"
)

var _ watch.ComplianceStore = (*ComplianceTable)(nil)

// ComplianceOptions configure a ComplianceTable.
type ComplianceOptions struct {
	TablePrefix string
	Logger      *slog.Logger
}

// ComplianceTable keeps the compliance figures in Table storage (table
// <prefix>Compliance): flat typed columns that dashboards can read, and the
// bounded pool lists as JSON. Safe for concurrent use from any number of
// instances: every write but the day's claim is an upsert of whole rows.
type ComplianceTable struct {
	client, fleet *aztables.Client
	names         [2]string
	log           *slog.Logger
}

// NewCompliance returns the compliance tables on svc. Call EnsureTable before first use.
func NewCompliance(svc *aztables.ServiceClient, o ComplianceOptions) *ComplianceTable {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	names := [2]string{o.TablePrefix + TableCompliance, o.TablePrefix + TableComplianceFleet}
	return &ComplianceTable{client: svc.NewClient(names[0]), fleet: svc.NewClient(names[1]), names: names, log: o.Logger}
}

// Tables are the names of the compliance tables.
func (t *ComplianceTable) Tables() []string { return t.names[:] }

// EnsureTable creates the tables that do not exist yet.
func (t *ComplianceTable) EnsureTable(ctx context.Context) error {
	for i, c := range []*aztables.Client{t.client, t.fleet} {
		if err := ensureTable(ctx, c, t.names[i]); err != nil {
			return err
		}
	}
	return nil
}

// PutSummaries upserts current summary rows, up to 100 per transaction
// (they share the partition current).
func (t *ComplianceTable) PutSummaries(ctx context.Context, sums []watch.ClusterSummary) error {
	acts := make([]aztables.TransactionAction, 0, len(sums))
	for _, s := range sums {
		body, err := complianceSummaryRow(s, KindComplianceSummary).marshalTyped(pkCurrent, s.Cluster.Key())
		if err != nil {
			return fmt.Errorf("%w: encode summary %s: %v", ErrRejected, s.Cluster.Key(), err)
		}
		acts = append(acts, aztables.TransactionAction{ActionType: aztables.TransactionTypeInsertReplace, Entity: body})
	}
	return submit(ctx, t.client, acts, 100)
}

// Summaries reads every current summary row (one paged query).
func (t *ComplianceTable) Summaries(ctx context.Context) ([]watch.ClusterSummary, error) {
	ents, err := listEntities(ctx, t.client, "PartitionKey eq "+odataString(pkCurrent))
	if err != nil {
		return nil, fmt.Errorf("read compliance summaries: %w", err)
	}
	out := make([]watch.ClusterSummary, 0, len(ents))
	for _, e := range ents {
		if s, ok := complianceSummaryOf(e); ok {
			out = append(out, s)
		}
	}
	return out, nil
}

// PutAggregates upserts the aggregate rows and deletes those of scopes no
// longer in aggs (one query of the partition: a bounded number of rows).
func (t *ComplianceTable) PutAggregates(ctx context.Context, aggs []watch.Aggregate) error {
	keep := map[string]bool{}
	var acts []aztables.TransactionAction
	for _, a := range aggs {
		rk := scopeKey(a.Scope)
		keep[rk] = true
		body, err := aggregateRow(a, KindComplianceAggregate).marshalTyped(pkAggregate, rk)
		if err != nil {
			return fmt.Errorf("%w: encode aggregate %s: %v", ErrRejected, a.Scope, err)
		}
		acts = append(acts, aztables.TransactionAction{ActionType: aztables.TransactionTypeInsertReplace, Entity: body})
	}
	old, err := listEntities(ctx, t.fleet, "PartitionKey eq "+odataString(pkAggregate))
	if err != nil {
		return err
	}
	for _, e := range old {
		if rk := e.str("RowKey"); !keep[rk] {
			body, _ := json.Marshal(map[string]string{"PartitionKey": pkAggregate, "RowKey": rk})
			acts = append(acts, aztables.TransactionAction{ActionType: aztables.TransactionTypeDelete, Entity: body, IfMatch: etagOf(e)})
		}
	}
	// Aggregate rows carry up to ~60 KiB of pool lists: 40 stay well under
	// a transaction's 4 MiB.
	return submit(ctx, t.fleet, acts, 40)
}

// Aggregate reads one aggregate row (a point read).
func (t *ComplianceTable) Aggregate(ctx context.Context, scope string) (watch.Aggregate, bool, error) {
	got, err := t.fleet.GetEntity(ctx, pkAggregate, scopeKey(scope), nil)
	if hasCode(err, aztables.ResourceNotFound) {
		return watch.Aggregate{}, false, nil
	}
	if err != nil {
		return watch.Aggregate{}, false, wrapStorage(err)
	}
	e, err := decodeEntity(got.Value)
	if err != nil {
		return watch.Aggregate{}, false, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return aggregateOf(e), true, nil
}

// ClaimDay inserts the day's claim row if absent (watch.ClaimMine); a claim
// that is done answers watch.ClaimDone, one held by another owner whose
// lease runs watch.ClaimHeld; a lapsed one is taken over under its ETag (so
// of two takers, one wins).
func (t *ComplianceTable) ClaimDay(ctx context.Context, day time.Time, owner string, now time.Time, lease time.Duration) (watch.DayClaim, error) {
	pk := dayPartition(day)
	claim := row{"Kind": KindComplianceDayClaim, "Owner": owner, "Done": false}
	setTime(claim, "LeaseUntil", now.Add(lease))
	got, prev, err := claimLease(ctx, t.client, pk, rkDayClaim, claim, now, nil)
	if got == watch.ClaimMine && prev != nil {
		t.log.Info("compliance day snapshot taken over from a lapsed claim", "day", pk, "previous_owner", prev.str("Owner"))
	}
	return got, err
}

// FinishDay marks the day's snapshot done.
func (t *ComplianceTable) FinishDay(ctx context.Context, day time.Time, owner string) error {
	body, err := row{"Kind": KindComplianceDayClaim, "Owner": owner, "Done": true}.marshalTyped(dayPartition(day), rkDayClaim)
	if err != nil {
		return err
	}
	if _, err := t.client.UpsertEntity(ctx, body, &aztables.UpsertEntityOptions{UpdateMode: aztables.UpdateModeReplace}); err != nil {
		return wrapStorage(err)
	}
	return nil
}

// PutDay writes one row per cluster (upserts of up to 100 rows per
// transaction), then the day's fleet row.
func (t *ComplianceTable) PutDay(ctx context.Context, day time.Time, fleetFigures watch.Aggregate, clusters []watch.ClusterSummary) error {
	pk := dayPartition(day)
	var acts []aztables.TransactionAction
	for _, s := range clusters {
		r := complianceSummaryRow(s, KindComplianceDay)
		delete(r, "NotUpToDatePools") // the day rows are the flat figures
		delete(r, "Latencies")
		delete(r, "Dashboard")
		setTime(r, "Day", day)
		b, err := r.marshalTyped(pk, rkDayPrefix+s.Cluster.Key())
		if err != nil {
			return err
		}
		acts = append(acts, aztables.TransactionAction{ActionType: aztables.TransactionTypeInsertReplace, Entity: b})
	}
	if err := submit(ctx, t.client, acts, 100); err != nil {
		return err
	}
	fr := aggregateRow(fleetFigures, KindComplianceDay)
	setTime(fr, "Day", day)
	body, err := fr.marshalTyped(pkFleetDay, dayKey(day))
	if err != nil {
		return err
	}
	if _, err := t.fleet.UpsertEntity(ctx, body, &aztables.UpsertEntityOptions{UpdateMode: aztables.UpdateModeReplace}); err != nil {
		return wrapStorage(err)
	}
	return nil
}

// History reads the fleet rows of the days from..to: one query of a
// RowKey range in one partition, which reads only those rows.
func (t *ComplianceTable) History(ctx context.Context, from, to time.Time) ([]watch.Aggregate, error) {
	filter := fmt.Sprintf("PartitionKey eq %s and RowKey ge %s and RowKey le %s",
		odataString(pkFleetDay), odataString(dayKey(from)), odataString(dayKey(to)))
	ents, err := listEntities(ctx, t.fleet, filter)
	if err != nil {
		return nil, err
	}
	out := make([]watch.Aggregate, 0, len(ents))
	for _, e := range ents {
		a := aggregateOf(e)
		a.Day = e.time("Day")
		out = append(out, a)
	}
	return out, nil // the service lists rows in key order: oldest first
}

// PruneDays deletes the rows of days before the given one, at most limit
// rows, a transaction per partition and 100 rows: the clusters' rows
// first, then the fleet's.
func (t *ComplianceTable) PruneDays(ctx context.Context, before time.Time, limit int) (int, error) {
	n, err := prune(ctx, t.client, fmt.Sprintf("PartitionKey ge %s and PartitionKey lt %s", odataString(pkDayPrefix),
		odataString(dayPartition(before))), limit)
	if err != nil || n >= limit {
		return n, err
	}
	m, err := prune(ctx, t.fleet, fmt.Sprintf("PartitionKey eq %s and RowKey lt %s", odataString(pkFleetDay), odataString(dayKey(before))), limit-n)
	return n + m, err
}

// prune deletes up to limit rows the filter selects.
func prune(ctx context.Context, client *aztables.Client, filter string, limit int) (int, error) {
	sel := "PartitionKey,RowKey"
	top := int32(min(limit, 1000))
	pager := client.NewListEntitiesPager(&aztables.ListEntitiesOptions{Filter: &filter, Select: &sel, Top: &top})
	byPK := map[string][]aztables.TransactionAction{}
	var order []string
	n := 0
	for pager.More() && n < limit {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return 0, wrapStorage(err)
		}
		for _, b := range page.Entities {
			e, err := decodeEntity(b)
			if err != nil || n >= limit {
				continue
			}
			pk := e.str("PartitionKey")
			body, _ := json.Marshal(map[string]string{"PartitionKey": pk, "RowKey": e.str("RowKey")})
			if byPK[pk] == nil {
				order = append(order, pk)
			}
			star := azcore.ETag("*")
			byPK[pk] = append(byPK[pk], aztables.TransactionAction{ActionType: aztables.TransactionTypeDelete, Entity: body, IfMatch: &star})
			n++
		}
	}
	for _, pk := range order {
		if err := submit(ctx, client, byPK[pk], 100); err != nil {
			return 0, err
		}
	}
	return n, nil
}

// submit sends actions of one partition in transactions of at most size;
// actions of several partitions must not be mixed.
func submit(ctx context.Context, client *aztables.Client, acts []aztables.TransactionAction, size int) error {
	for len(acts) > 0 {
		n := min(size, len(acts))
		if _, err := client.SubmitTransaction(ctx, acts[:n], nil); err != nil {
			if classify(err) == classInvalid {
				return fmt.Errorf("%w: compliance rows refused: %s", ErrRejected, firstLine(err))
			}
			return wrapStorage(err)
		}
		acts = acts[n:]
	}
	return nil
}

func dayPartition(day time.Time) string { return pkDayPrefix + dayKey(day) }

func dayKey(day time.Time) string { return day.UTC().Format("20060102") }

// scopeKey is an aggregate's RowKey: the scope with its value escaped.
func scopeKey(scope string) string {
	for _, p := range []string{watch.ScopeLocation, watch.ScopeSubscription, watch.ScopeStatus} {
		if v, ok := cutPrefix(scope, p); ok {
			return p + keyPart(v)
		}
	}
	return keyPart(scope)
}

func cutPrefix(s, p string) (string, bool) {
	if len(s) >= len(p) && s[:len(p)] == p {
		return s[len(p):], true
	}
	return "", false
}

// marshalTyped is marshal with Edm.Double annotations for float columns, so
// that a whole percentage (100) is not read back as an Int32.
func (r row) marshalTyped(pk, rk string) ([]byte, error) {
	b, err := r.marshal(pk, rk)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	for k, v := range r {
		if f, ok := v.(float64); ok {
			m[k] = strconv.FormatFloat(f, 'f', -1, 64)
			m[k+"@odata.type"] = "Edm.Double"
		}
	}
	return json.Marshal(m)
}

func (e entity) float(k string) float64 {
	switch v := e[k].(type) {
	case float64:
		return v
	case string:
		f, err := strconv.ParseFloat(v, 64)
		if err == nil && !math.IsNaN(f) {
			return f
		}
	}
	return 0
}

// figureColumns writes the compliance figures as flat typed columns.
func figureColumns(r row, c patch.Compliance, ttp patch.TimeToPatchFigures) {
	ints := map[string]int{"PoolsTotal": c.Pools, "PoolsCurrent": c.PoolsCurrent, "PoolsWithinPolicy": c.PoolsWithinPolicy,
		"PoolsBehind": c.PoolsBehind, "PoolsUnknown": c.PoolsUnknown, "NodesTotal": c.Nodes, "NodesCurrent": c.NodesCurrent,
		"NodesWithinPolicy": c.NodesWithinPolicy, "NodesBehind": c.NodesBehind, "NodesUnknown": c.NodesUnknown,
		"MaxDaysBehind": c.MaxDaysBehind, "UpToDate": c.UpToDate, "AwaitingWindow": c.AwaitingWindow, "Rolling": c.Rolling,
		"Behind": c.Behind, "Blocked": c.Blocked, "Failed": c.Failed, "Unmanaged": c.Unmanaged, "NotPatched": c.NotPatched,
		"Unknown": c.Unknown, "TimeToPatch30Count": ttp.Last30.Count, "TimeToPatch90Count": ttp.Last90.Count}
	for k, v := range ints {
		r[k] = int32(v)
	}
	r["PercentCurrent"] = c.PercentPoolsCurrent
	r["PercentNodesCurrent"] = c.PercentNodesCurrent
	r["TimeToPatch30P50Seconds"] = int64(ttp.Last30.Median / time.Second)
	r["TimeToPatch30P90Seconds"] = int64(ttp.Last30.P90 / time.Second)
	r["TimeToPatch90P50Seconds"] = int64(ttp.Last90.Median / time.Second)
	r["TimeToPatch90P90Seconds"] = int64(ttp.Last90.P90 / time.Second)
	if c.OldestImage != "" {
		r["OldestImage"] = c.OldestImage
		setTime(r, "OldestImageReleasedAt", c.OldestImageReleasedAt)
	}
}

func figuresOf(e entity) (patch.Compliance, patch.TimeToPatchFigures) {
	i := func(k string) int { return int(e.int(k)) }
	c := patch.Compliance{Pools: i("PoolsTotal"), PoolsCurrent: i("PoolsCurrent"), PoolsWithinPolicy: i("PoolsWithinPolicy"),
		PoolsBehind: i("PoolsBehind"), PoolsUnknown: i("PoolsUnknown"), Nodes: i("NodesTotal"), NodesCurrent: i("NodesCurrent"),
		NodesWithinPolicy: i("NodesWithinPolicy"), NodesBehind: i("NodesBehind"), NodesUnknown: i("NodesUnknown"),
		PercentPoolsCurrent: e.float("PercentCurrent"), PercentNodesCurrent: e.float("PercentNodesCurrent"),
		OldestImage: e.str("OldestImage"), OldestImageReleasedAt: e.time("OldestImageReleasedAt"), MaxDaysBehind: i("MaxDaysBehind"),
		UpToDate: i("UpToDate"), AwaitingWindow: i("AwaitingWindow"), Rolling: i("Rolling"), Behind: i("Behind"), Blocked: i("Blocked"),
		Failed: i("Failed"), Unmanaged: i("Unmanaged"), NotPatched: i("NotPatched"), Unknown: i("Unknown")}
	sec := func(k string) time.Duration { return time.Duration(e.int(k)) * time.Second }
	ttp := patch.TimeToPatchFigures{
		Last30: patch.Stats{Count: i("TimeToPatch30Count"), Median: sec("TimeToPatch30P50Seconds"), P90: sec("TimeToPatch30P90Seconds")},
		Last90: patch.Stats{Count: i("TimeToPatch90Count"), Median: sec("TimeToPatch90P50Seconds"), P90: sec("TimeToPatch90P90Seconds")}}
	return c, ttp
}

// complianceSummaryRow is a cluster summary's columns (kind: current or day row).
func complianceSummaryRow(s watch.ClusterSummary, kind string) row {
	r := row{"Kind": kind, "SubscriptionId": s.Cluster.SubscriptionID, "ResourceGroup": s.Cluster.ResourceGroup,
		"ClusterName": s.Cluster.Name, "Location": s.Location, "Deleted": s.Deleted, "Seq": s.Seq}
	figureColumns(r, s.Figures, s.TimeToPatch)
	pools, omitted := poolsJSON(s.Pools, s.PoolsOmitted)
	r["NotUpToDatePools"], r["PoolsOmitted"] = pools, int32(omitted)
	r["Latencies"] = jsonText(s.Latencies)
	dashColumns(r, s)
	setTime(r, "ComputedAt", s.ComputedAt)
	return r
}

func complianceSummaryOf(e entity) (watch.ClusterSummary, bool) {
	id := fleet.ClusterID{SubscriptionID: e.str("SubscriptionId"), ResourceGroup: e.str("ResourceGroup"), Name: e.str("ClusterName")}
	if id.SubscriptionID == "" || id.Name == "" {
		return watch.ClusterSummary{}, false
	}
	s := watch.ClusterSummary{Cluster: id, Location: e.str("Location"), Deleted: e.bool("Deleted"),
		PoolsOmitted: int(e.int("PoolsOmitted")), ComputedAt: e.time("ComputedAt"), Seq: e.int("Seq")}
	s.Figures, s.TimeToPatch = figuresOf(e)
	_ = json.Unmarshal([]byte(e.str("NotUpToDatePools")), &s.Pools)
	_ = json.Unmarshal([]byte(e.str("Latencies")), &s.Latencies)
	s.Dash = dashOf(e)
	return s, true
}

func aggregateRow(a watch.Aggregate, kind string) row {
	r := row{"Kind": kind, "Scope": a.Scope, "Clusters": int32(a.Clusters)}
	figureColumns(r, a.Figures, a.TimeToPatch)
	pools, omitted := poolsJSON(a.Pools, a.PoolsOmitted)
	r["NotUpToDatePools"], r["PoolsOmitted"] = pools, int32(omitted)
	if kind == KindComplianceAggregate {
		viewColumns(r, a.View) // the fleet's row only; day rows are the figures
	}
	setTime(r, "ComputedAt", a.ComputedAt)
	return r
}

func aggregateOf(e entity) watch.Aggregate {
	a := watch.Aggregate{Scope: e.str("Scope"), Clusters: int(e.int("Clusters")), PoolsOmitted: int(e.int("PoolsOmitted")),
		ComputedAt: e.time("ComputedAt")}
	a.Figures, a.TimeToPatch = figuresOf(e)
	_ = json.Unmarshal([]byte(e.str("NotUpToDatePools")), &a.Pools)
	a.View = viewOf(e)
	return a
}

// poolsJSON encodes a pool list within jsonUnits, dropping pools from the
// end (the least behind) and counting them as omitted.
func poolsJSON(ps []watch.PoolBrief, omitted int) (string, int) {
	if ps == nil {
		ps = []watch.PoolBrief{}
	}
	for {
		s := jsonText(ps)
		if utf16Len(s) <= jsonUnits || len(ps) == 0 {
			return s, omitted
		}
		ps, omitted = ps[:len(ps)-1], omitted+1
	}
}
