// Package armexec carries out remediations on Azure Resource Manager: the
// executor of the plans internal/remediate's Decide makes, behind the
// application's watch.Executor port. It is an adapter: the only remediation
// code that imports the Azure SDK.
package armexec

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	azarm "github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/containerservice/armcontainerservice/v9"

	"github.com/upgradewatch/upgradewatch/internal/arm"
	"github.com/upgradewatch/upgradewatch/internal/fleet"
	"github.com/upgradewatch/upgradewatch/internal/remediate"
	"github.com/upgradewatch/upgradewatch/internal/watch"
)

// Options configure an Executor. The zero value is usable.
type Options struct {
	// ClientOptions carry the transport (fake servers in tests), the cloud and
	// the retry policy. Zero retry fields take arm.DefaultClientOptions'
	// values; a negative MaxRetries means no retries (azcore's convention).
	ClientOptions *azarm.ClientOptions
	// Now is the clock that checks a remediation's lease; time.Now when nil.
	Now func() time.Time
}

var _ watch.Executor = (*Executor)(nil)

// Executor carries out remediations on Azure Resource Manager. It is safe for
// concurrent use.
type Executor struct {
	clients *arm.Clients
	now     func() time.Time
}

// NewExecutor returns an Executor that authenticates with cred, with the
// pipeline settings the reader uses (arm.DefaultClientOptions). The identity
// needs Microsoft.ContainerService/managedClusters/read and write, and
// agentPools/read and agentPools/upgradeNodeImageVersion/action.
func NewExecutor(cred azcore.TokenCredential, o Options) *Executor {
	now := o.Now
	if now == nil {
		now = time.Now
	}
	return &Executor{clients: arm.NewClients(cred, o.ClientOptions), now: now}
}

// Apply carries out one remediation in apply mode and returns once ARM
// accepted it: the long-running operation started, not finished (rolling
// events and ARM reads report how it goes). It reads before it writes and
// answers Skipped when ARM shows nothing to do. A channel write is
// conditional on the ETag of the read, so it never overwrites a change made
// in between. Errors wrap remediate.ErrTransient or remediate.ErrRefused; a
// remediation that is invalid or not in apply mode is refused without calling
// ARM.
func (x *Executor) Apply(ctx context.Context, id fleet.ClusterID, r fleet.Remediation) (remediate.Result, error) {
	to, err := x.check(id, r)
	if err != nil {
		return remediate.Result{}, err
	}
	f, err := x.clients.For(id.SubscriptionID)
	if err != nil {
		return remediate.Result{}, failure(remediate.ErrRefused, id, r, "client", err)
	}
	if r.Action == fleet.ActionUpgradeNodeImage {
		return upgradeNodeImage(ctx, f.NewAgentPoolsClient(), id, r)
	}
	return setChannel(ctx, f.NewManagedClustersClient(), id, r, to)
}

// check refuses what must not reach ARM, and returns the channel to set in
// the API's spelling.
func (x *Executor) check(id fleet.ClusterID, r fleet.Remediation) (string, error) {
	refuse := func(format string, a ...any) (string, error) {
		return "", failure(remediate.ErrRefused, id, r, fmt.Sprintf(format, a...), nil)
	}
	if r.Mode != fleet.RemediateApply {
		return refuse("mode is %q, not %s", r.Mode, fleet.RemediateApply)
	}
	if id.IsZero() || id.ResourceGroup == "" {
		return refuse("no cluster")
	}
	if !r.LeaseUntil.IsZero() && !x.now().Before(r.LeaseUntil) {
		// Another sweep may retake it now; it will, or this one next time.
		return "", failure(remediate.ErrTransient, id, r, "lease expired before ARM was called", nil)
	}
	var allowed []string
	switch r.Action {
	case fleet.ActionUpgradeNodeImage:
		if !fleet.ValidPoolName(r.Pool) {
			return refuse("invalid pool name %q", r.Pool)
		}
		return "", nil
	case fleet.ActionSetNodeOSChannel:
		for _, v := range armcontainerservice.PossibleNodeOSUpgradeChannelValues() {
			allowed = append(allowed, string(v))
		}
	case fleet.ActionSetUpgradeChannel:
		for _, v := range armcontainerservice.PossibleUpgradeChannelValues() {
			allowed = append(allowed, string(v))
		}
	default:
		return refuse("unknown action")
	}
	for _, v := range allowed {
		if strings.EqualFold(v, strings.TrimSpace(r.To)) {
			return v, nil
		}
	}
	return refuse("%q is not a channel", r.To)
}

// setChannel reads the cluster and writes it back with the one channel
// changed: managed clusters have no PATCH for the auto-upgrade profile, and
// If-Match makes the write fail (412) rather than undo a change made since
// the read.
func setChannel(ctx context.Context, clusters *armcontainerservice.ManagedClustersClient, id fleet.ClusterID, r fleet.Remediation, to string) (remediate.Result, error) {
	var raw *http.Response
	got, err := clusters.Get(policy.WithCaptureResponse(ctx, &raw), id.ResourceGroup, id.Name, nil)
	if err != nil {
		return remediate.Result{}, failure(kind(err), id, r, "read cluster", err)
	}
	mc := got.ManagedCluster
	if mc.Properties == nil {
		mc.Properties = &armcontainerservice.ManagedClusterProperties{}
	}
	props := mc.Properties
	if state := deref(props.ProvisioningState); !strings.EqualFold(state, "Succeeded") {
		return remediate.Result{}, failure(remediate.ErrTransient, id, r, "cluster is "+orUnknown(state), nil)
	}
	if props.AutoUpgradeProfile == nil {
		props.AutoUpgradeProfile = &armcontainerservice.ManagedClusterAutoUpgradeProfile{}
	}
	aup := props.AutoUpgradeProfile
	field, current := "nodeOSUpgradeChannel", string(deref(aup.NodeOSUpgradeChannel))
	if r.Action == fleet.ActionSetUpgradeChannel {
		field, current = "upgradeChannel", string(deref(aup.UpgradeChannel))
	}
	if strings.EqualFold(current, to) {
		return remediate.Result{Status: fleet.RemediationSkipped, Detail: fmt.Sprintf("%s of %s is already %s", field, id.Name, current)}, nil
	}

	etag := deref(mc.ETag)
	if etag == "" && raw != nil {
		etag = raw.Header.Get("ETag")
	}
	if etag == "" {
		// Without If-Match the write could undo a change made since the read
		// (a pool scaled, a setting changed): not a risk worth a channel.
		return remediate.Result{}, failure(remediate.ErrRefused, id, r, "ARM gave no ETag to write the cluster with If-Match", nil)
	}
	if r.Action == fleet.ActionSetUpgradeChannel {
		v := armcontainerservice.UpgradeChannel(to)
		aup.UpgradeChannel = &v
	} else {
		v := armcontainerservice.NodeOSUpgradeChannel(to)
		aup.NodeOSUpgradeChannel = &v
	}
	if _, err := clusters.BeginCreateOrUpdate(ctx, id.ResourceGroup, id.Name, mc,
		&armcontainerservice.ManagedClustersClientBeginCreateOrUpdateOptions{IfMatch: &etag}); err != nil {
		return remediate.Result{}, failure(kind(err), id, r, "write cluster", err)
	}
	return remediate.Result{Status: fleet.RemediationApplied,
		Detail: fmt.Sprintf("set %s of %s from %s to %s", field, id.Name, orUnknown(current), to)}, nil
}

// upgradeNodeImage starts a node image upgrade of one pool, which AKS always
// takes to the latest image it offers the pool.
func upgradeNodeImage(ctx context.Context, pools *armcontainerservice.AgentPoolsClient, id fleet.ClusterID, r fleet.Remediation) (remediate.Result, error) {
	got, err := pools.Get(ctx, id.ResourceGroup, id.Name, r.Pool, nil)
	if err != nil {
		return remediate.Result{}, failure(kind(err), id, r, "read pool "+r.Pool, err)
	}
	var state, current string
	if p := got.Properties; p != nil {
		state, current = deref(p.ProvisioningState), deref(p.NodeImageVersion)
	}
	if !strings.EqualFold(state, "Succeeded") {
		return remediate.Result{}, failure(remediate.ErrTransient, id, r, fmt.Sprintf("pool %s is %s", r.Pool, orUnknown(state)), nil)
	}
	up, err := pools.GetUpgradeProfile(ctx, id.ResourceGroup, id.Name, r.Pool, nil)
	if err != nil {
		return remediate.Result{}, failure(kind(err), id, r, "read upgrade profile of pool "+r.Pool, err)
	}
	latest := ""
	if p := up.Properties; p != nil {
		latest = deref(p.LatestNodeImageVersion)
	}
	if latest != "" && strings.EqualFold(current, latest) {
		return remediate.Result{Status: fleet.RemediationSkipped,
			Detail: fmt.Sprintf("pool %s already runs %s, the latest node image", r.Pool, latest)}, nil
	}
	if _, err := pools.BeginUpgradeNodeImageVersion(ctx, id.ResourceGroup, id.Name, r.Pool, nil); err != nil {
		return remediate.Result{}, failure(kind(err), id, r, "start node image upgrade of pool "+r.Pool, err)
	}
	return remediate.Result{Status: fleet.RemediationApplied,
		Detail: fmt.Sprintf("started upgrading the node image of pool %s from %s to %s", r.Pool, orUnknown(current), cmp.Or(latest, "the latest image"))}, nil
}

// kind classifies an ARM call's error.
func kind(err error) error {
	var re *azcore.ResponseError
	if !errors.As(err, &re) {
		// Network, deadline, token acquisition: nothing ARM refused.
		return remediate.ErrTransient
	}
	switch c := re.StatusCode; {
	case c == http.StatusRequestTimeout, c == http.StatusConflict, c == http.StatusPreconditionFailed,
		c == http.StatusTooManyRequests, c >= 500:
		return remediate.ErrTransient
	}
	return remediate.ErrRefused
}

// applyError reads short (no URL, no response body, nothing from a token)
// but keeps the sentinel and the cause for errors.Is and errors.As.
type applyError struct {
	msg   string
	kind  error
	cause error
}

func (e *applyError) Error() string { return e.msg }

func (e *applyError) Unwrap() []error {
	if e.cause == nil {
		return []error{e.kind}
	}
	return []error{e.kind, e.cause}
}

func failure(k error, id fleet.ClusterID, r fleet.Remediation, step string, cause error) error {
	msg := fmt.Sprintf("%s %s: %s", cmp.Or(r.Action, "remediation"), id.Name, step)
	if cause != nil {
		msg += ": " + short(cause)
	}
	return &applyError{msg: msg + " (" + kindText(k) + ")", kind: k, cause: cause}
}

// kindText ends a failure's message: it is stored with the remediation and
// sent in its notification, so it says what the kind means for the reader.
func kindText(k error) string {
	if errors.Is(k, fleet.ErrUnavailable) {
		return "transient, try again later"
	}
	return "refused"
}

// short is an error as status and ARM error code, or a clipped message.
func short(err error) string {
	var re *azcore.ResponseError
	switch {
	case errors.As(err, &re):
		s := strconv.Itoa(re.StatusCode)
		if re.ErrorCode != "" {
			s += " " + re.ErrorCode
		}
		return s
	case errors.Is(err, context.DeadlineExceeded):
		return "deadline exceeded"
	case errors.Is(err, context.Canceled):
		return "canceled"
	}
	return clip(err.Error(), 160)
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

func orUnknown(s string) string {
	if s == "" {
		return "(unknown)"
	}
	return s
}
