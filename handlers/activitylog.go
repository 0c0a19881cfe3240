package handlers

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/upgradewatch/upgradewatch/internal/events"
	"github.com/upgradewatch/upgradewatch/internal/fleet"
	"github.com/upgradewatch/upgradewatch/internal/host"
	"github.com/upgradewatch/upgradewatch/internal/watch"
)

// The activity log reaches upgradewatch three ways; all three decode to one
// fleet.Activity whose signal id is the same for the same activity, so an
// activity routed through two of them is committed once.
const (
	// FunctionActivityLogAlert is the httpTrigger an action group webhook
	// posts activity-log alerts to (common alert schema):
	// POST /api/activitylog/alert.
	FunctionActivityLogAlert = "ActivityLogAlert"
	// FunctionActivityLogStream is the eventHubTrigger (cardinality many,
	// dataType string) that takes the diagnostic-settings export: binding
	// `events`, each message {"records":[…]}.
	FunctionActivityLogStream = "ActivityLogStream"
	bindingEvents             = "events"
)

// alertResult is the answer to an action group.
type alertResult struct {
	Result  string `json:"result"` // committed|duplicate|ignored|rejected
	Signal  string `json:"signal,omitempty"`
	Cluster string `json:"cluster,omitempty"`
	Reason  string `json:"reason,omitempty"`
}

// activityLogAlert takes one alert. Action groups retry on 408, 429 and 5xx,
// so only a storage failure answers 503; an alert that can never be read is
// recorded and answered 400 with the reason, and one about something
// upgradewatch does not track is recorded as Unsupported and answered 200.
func (s *Server) activityLogAlert(w http.ResponseWriter, r *http.Request) {
	inv := s.newInvocation(r, FunctionActivityLogAlert)
	inv.recordIgnored = true
	body, err := io.ReadAll(io.LimitReader(r.Body, s.maxBody+1))
	if err != nil {
		inv.log.Warn("could not read alert", "error", err)
		writeJSON(w, http.StatusBadRequest, errorBody{Error: "could not read the request body: " + err.Error()})
		return
	}
	if int64(len(body)) > s.maxBody {
		err := fmt.Errorf("%w: alert is larger than %d bytes", events.ErrMalformed, s.maxBody)
		if rerr := inv.reject(watch.Rejection{Body: body[:s.maxBody]}, err, inv.log); rerr != nil {
			unavailable(w)
			return
		}
		writeJSON(w, http.StatusRequestEntityTooLarge, alertResult{Result: "rejected", Reason: err.Error()})
		return
	}
	if !s.authorizeAlert(w, r, inv, body) {
		return
	}
	sig, derr := events.DecodeAlert(body)
	if err := inv.handle(sig, derr, body); err != nil {
		unavailable(w)
		return
	}
	res := alertResult{Signal: sig.ID}
	if !sig.Cluster.IsZero() {
		res.Cluster = sig.Cluster.Key()
	}
	status := http.StatusOK
	switch {
	case inv.sum.Rejected > 0:
		res.Result, status = "rejected", http.StatusBadRequest
		res.Reason = cmp.Or(inv.rejected, "the alert could not be committed; see the Rejected table")
	case inv.sum.Ignored > 0 || inv.sum.Unsupported > 0:
		res.Result = "ignored"
		res.Reason = "not an activity upgradewatch tracks (recorded as Unsupported)"
	case inv.sum.Duplicates > 0:
		res.Result = "duplicate"
	default:
		res.Result = "committed"
	}
	writeJSON(w, status, res)
}

// streamSummary is ActivityLogStream's ReturnValue.
type streamSummary struct {
	Messages int `json:"messages"`
	Records  int `json:"records"`
	ingestSummary
}

// activityLogStream takes a batch of Event Hub messages. The export carries
// the whole subscription's activity log: records about anything else are
// counted and skipped at once. The records of one cluster commit together in
// one guarded change (App.IngestBatch: each exactly once, applied in time
// order), clusters in parallel; each record still has its own outcome, and
// one the App refuses costs only itself. A transient failure fails the invocation, so the host's retry
// policy (functions/ActivityLogStream/function.json: bounded, exponential)
// delivers the batch again; what was committed is then a duplicate. After the
// policy's last attempt the host moves its checkpoint past the batch whatever
// the answer, so on that attempt (RetryContext) a record that still cannot be
// committed is kept in Rejected with the reason and its body, and the rest of
// the batch goes on: one poison record costs itself, never the export. Only
// when even that cannot be written (storage down) is the batch answered 503.
func (s *Server) activityLogStream(w http.ResponseWriter, r *http.Request) {
	inv := s.newInvocation(r, FunctionActivityLogStream)
	var sum streamSummary
	respond := func(err error) {
		sum.ingestSummary.add(inv.sum)
		host.WriteResponse(w, statusFor(err), host.InvokeResponse{Logs: inv.lines, ReturnValue: sum})
	}
	raw, done, err := inv.binding(r, bindingEvents)
	if done {
		respond(err)
		return
	}
	msgs, err := events.SplitEventHub(raw)
	if err != nil {
		respond(inv.reject(watch.Rejection{Body: raw}, err, inv.log))
		return
	}

	groups, order, transient := inv.groupRecords(msgs, &sum)
	if err := inv.commitGroups(groups, order); err != nil {
		transient = err
	}
	if transient != nil && inv.retry.Last() {
		// The host moves on whatever we answer; the export still holds the
		// records for its retention, to replay from another consumer group.
		inv.log.Error("activity log records lost: not committed or recorded by the last retry", "failed", inv.sum.Failed,
			"retry", inv.retry.Count, "error", transient)
	}
	inv.log.Info("activity log batch done", "messages", sum.Messages, "records", sum.Records, "committed", inv.sum.Committed,
		"duplicates", inv.sum.Duplicates, "ignored", inv.sum.Ignored, "rejected", inv.sum.Rejected, "failed", inv.sum.Failed,
		"retry", inv.retry.Count)
	respond(transient)
}

// groupRecords decodes every message first, handling at once the records
// that belong to no cluster (ignored, rejected, unsupported) and grouping
// the rest by cluster, in batch order. transient is the last failure to
// record something, which asks for the batch again.
func (inv *invocation) groupRecords(msgs []json.RawMessage, sum *streamSummary) (groups map[string][]events.ExportRecord, order []string, transient error) {
	groups = map[string][]events.ExportRecord{}
	for _, msg := range msgs {
		sum.Messages++
		recs, err := events.DecodeExport(msg)
		if err != nil {
			if rerr := inv.reject(watch.Rejection{Body: msg}, err, inv.log); rerr != nil {
				transient = rerr
			}
			continue
		}
		for _, rec := range recs {
			sum.Records++
			sig := rec.Signal
			switch {
			case rec.Err == nil && sig.Kind == fleet.KindIgnored:
				inv.sum.Ignored++
				continue
			case rec.Err != nil || sig.Cluster.IsZero():
				// Rejections are recorded here; they belong to no cluster.
				inv.sum.Events++
				if err := inv.handle(sig, rec.Err, rec.Raw); err != nil {
					inv.sum.Failed++
					transient = err
				}
				continue
			}
			key := sig.Cluster.Key()
			if _, ok := groups[key]; !ok {
				order = append(order, key)
			}
			groups[key] = append(groups[key], rec)
		}
	}
	return groups, order, transient
}

// commitGroups commits the records of the clusters in order through the
// App, each cluster's together in one guarded change (clusters in parallel,
// each record still exactly once), then answers them cluster by cluster in
// batch order. The error says records could not be committed.
func (inv *invocation) commitGroups(groups map[string][]events.ExportRecord, order []string) error {
	var recs []events.ExportRecord
	for _, k := range order {
		recs = append(recs, groups[k]...)
	}
	if len(recs) == 0 {
		return nil
	}
	sigs := make([]fleet.Signal, len(recs))
	for i, rec := range recs {
		sigs[i] = rec.Signal
	}
	outs, errs := inv.s.app.IngestBatch(inv.ctx, sigs)
	failed, at := 0, 0
	for _, k := range order {
		end := at + len(groups[k])
		if !inv.answerRecords(recs[at:end], outs[at:end], errs[at:end]) {
			failed++
		}
		at = end
	}
	if failed > 0 {
		return fmt.Errorf("%w: the records of %d cluster(s) could not be committed", fleet.ErrUnavailable, failed)
	}
	return nil
}

// errPoison marks a record that still fails at the retry policy's last
// attempt: retrying it would only stall the export.
var errPoison = errors.New("poison record")

// answerRecords answers one cluster's records in batch order, given what the
// App made of them. Records the App refused (unreadable, refused by the
// transition, dated ahead, or that panicked) are kept in Rejected and cost
// only themselves. A record that failed for a storage reason stops the
// answer: the rest of the cluster shares its change and waits for the host's
// retry with it, unless this is the retry policy's last attempt: then the
// record is kept in Rejected, with why and its body, and the rest go on. Only
// a record that cannot even be kept counts as failed; then it answers false.
func (inv *invocation) answerRecords(recs []events.ExportRecord, outs []watch.Outcome, errs []error) bool {
	for i, rec := range recs {
		inv.sum.Events++
		err := inv.answer(rec.Signal, rec.Raw, outs[i], errs[i])
		if err == nil {
			continue
		}
		l := inv.log.With("event_id", rec.Signal.ID, "cluster", rec.Signal.Cluster.Key())
		if inv.retry.Last() {
			reason := fmt.Errorf("%w: not committed by the last of %d attempts: %w", errPoison, inv.retry.Max+1, err)
			rej := watch.Rejection{EventID: rec.Signal.ID, EventType: rec.Signal.Type, Source: rec.Signal.Source,
				Subject: rec.Signal.Subject, Body: rec.Raw}
			if inv.reject(rej, reason, l) == nil {
				continue
			}
		}
		l.Warn("activity record not committed; the batch will be retried", "retry", inv.retry.Count, "error", err)
		inv.sum.Failed++
		inv.lines = append(inv.lines, "failed: "+err.Error())
		return false
	}
	return true
}
