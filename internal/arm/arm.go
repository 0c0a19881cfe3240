// Package arm reads a managed cluster as Azure Resource Manager shows it now:
// the cluster, its pools with the newest node image AKS offers each, and its
// maintenance configurations. Events say that something changed; this read
// says what is true, so it repairs whatever the event stream missed.
//
// A read is one fleet.Signal of kind ClusterUpdated, or ClusterDeleted when ARM
// no longer knows the cluster. Retries are azcore's, never ours.
package arm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	azarm "github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/containerservice/armcontainerservice/v9"

	"github.com/upgradewatch/upgradewatch/internal/fleet"
)

// Errors a read reports besides context: callers decide the retry with errors.Is.
var (
	// ErrUnavailable is transient: throttling, 5xx or a network failure that
	// outlived the pipeline's retries, a deadline, or a cluster that changed
	// under the read. Trying again later is right. It is the domain's
	// fleet.ErrUnavailable (errors.Is matches both), kept apart so that a
	// caller can still tell ARM's unavailability from storage's.
	ErrUnavailable = fmt.Errorf("ARM %w", fleet.ErrUnavailable)
	// ErrForbidden is permanent until an operator acts: the identity lacks a
	// role assignment (401/403) or cannot see the subscription at all. It is
	// the domain's fleet.ErrForbidden (errors.Is matches both).
	ErrForbidden = fmt.Errorf("ARM access %w", fleet.ErrForbidden)
)

// Options configure a Reader. The zero value is usable.
type Options struct {
	// ClientOptions carry the transport (fake servers in tests), the cloud and
	// the retry policy. Zero retry fields take DefaultClientOptions' values;
	// a negative MaxRetries means no retries (azcore's convention).
	ClientOptions *azarm.ClientOptions
	// Now is the clock that stamps reads; time.Now when nil.
	Now func() time.Time
}

// DefaultClientOptions are the pipeline settings a Reader uses unless told
// otherwise. azcore's retry policy retries 408, 429, 500, 502, 503 and 504 and
// network errors with exponential backoff and jitter, honouring Retry-After:
// 4 retries starting at 2 s and capped at 60 s ride out ARM's throttling
// window; a Retry-After beyond the cap ends the retries instead of waiting.
// Each try is cut at 30 s so a stuck connection costs a retry, not the whole
// invocation.
func DefaultClientOptions() azarm.ClientOptions {
	return azarm.ClientOptions{
		ClientOptions: azcore.ClientOptions{
			Retry: policy.RetryOptions{
				MaxRetries:    4,
				RetryDelay:    2 * time.Second,
				MaxRetryDelay: 60 * time.Second,
				TryTimeout:    30 * time.Second,
			},
			Telemetry: policy.TelemetryOptions{ApplicationID: "upgradewatch"},
		},
		DisableRPRegistration: true,
	}
}

// withDefaults fills the zero retry and telemetry fields of o from the
// defaults. It never registers resource providers: a reader has no business
// writing to a subscription.
func withDefaults(o *azarm.ClientOptions) azarm.ClientOptions {
	d := DefaultClientOptions()
	if o == nil {
		return d
	}
	c := *o
	r, dr := &c.Retry, d.Retry
	if r.MaxRetries == 0 {
		r.MaxRetries = dr.MaxRetries
	}
	if r.RetryDelay == 0 {
		r.RetryDelay = dr.RetryDelay
	}
	if r.MaxRetryDelay == 0 {
		r.MaxRetryDelay = dr.MaxRetryDelay
	}
	if r.TryTimeout == 0 {
		r.TryTimeout = dr.TryTimeout
	}
	if c.Telemetry.ApplicationID == "" {
		c.Telemetry.ApplicationID = d.Telemetry.ApplicationID
	}
	c.DisableRPRegistration = true
	return c
}

// Clients keeps one armcontainerservice client factory per subscription, on
// one credential and one set of pipeline options. It is safe for concurrent
// use; the Reader and the remediation executor each hold one.
type Clients struct {
	cred azcore.TokenCredential
	opts azarm.ClientOptions

	mu        sync.Mutex
	factories map[string]*armcontainerservice.ClientFactory // by lower-case subscription
}

// NewClients returns the client cache for cred; o's zero retry fields take
// DefaultClientOptions' values (nil: the defaults).
func NewClients(cred azcore.TokenCredential, o *azarm.ClientOptions) *Clients {
	return &Clients{cred: cred, opts: withDefaults(o), factories: map[string]*armcontainerservice.ClientFactory{}}
}

// For returns the subscription's client factory, made on first use.
func (c *Clients) For(subscription string) (*armcontainerservice.ClientFactory, error) {
	key := strings.ToLower(subscription)
	c.mu.Lock()
	defer c.mu.Unlock()
	if f, ok := c.factories[key]; ok {
		return f, nil
	}
	opts := c.opts
	f, err := armcontainerservice.NewClientFactory(subscription, c.cred, &opts)
	if err != nil {
		return nil, err
	}
	c.factories[key] = f
	return f, nil
}

// Len is how many subscriptions have a factory.
func (c *Clients) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.factories)
}

// Reader reads a managed cluster's upgrade-relevant view from ARM. It is safe
// for concurrent use.
type Reader struct {
	clients *Clients
	now     func() time.Time
}

// NewReader returns a Reader that authenticates with cred.
func NewReader(cred azcore.TokenCredential, o Options) *Reader {
	now := o.Now
	if now == nil {
		now = time.Now
	}
	return &Reader{clients: NewClients(cred, o.ClientOptions), now: now}
}

// Read returns one signal describing the cluster as ARM shows it now: Kind
// ClusterUpdated with the profile, or ClusterDeleted (and no error) when ARM
// answers 404 for the cluster. Errors wrap ErrUnavailable, ErrForbidden or
// the cause. Calls are sequential, to stay gentle on the subscription's ARM
// read quota, which the whole fleet shares.
func (r *Reader) Read(ctx context.Context, id fleet.ClusterID) (fleet.Signal, error) {
	if id.IsZero() {
		return fleet.Signal{}, fmt.Errorf("read: %w: empty cluster ID", fleet.ErrInvalidResourceID)
	}
	at := r.now().UTC()
	f, err := r.clients.For(id.SubscriptionID)
	if err != nil {
		return fleet.Signal{}, fmt.Errorf("read %s: %w", id, err)
	}
	prof, err := read(ctx, f, id)
	switch {
	case errors.Is(err, errGone):
		return signal(id, at, fleet.KindClusterDeleted, nil), nil
	case err != nil:
		return fleet.Signal{}, readError(id, err)
	}
	return signal(id, at, fleet.KindClusterUpdated, prof), nil
}

// errGone is the 404 of the cluster GET itself, the one 404 that means the
// cluster was deleted.
var errGone = errors.New("cluster not found")

func read(ctx context.Context, f *armcontainerservice.ClientFactory, id fleet.ClusterID) (*fleet.ClusterProfile, error) {
	got, err := f.NewManagedClustersClient().Get(ctx, id.ResourceGroup, id.Name, nil)
	if err != nil {
		if status(err) == http.StatusNotFound && !subscriptionNotFound(err) {
			return nil, errGone
		}
		return nil, fmt.Errorf("get cluster: %w", err)
	}
	prof := clusterProfile(&got.ManagedCluster)

	pools := f.NewAgentPoolsClient()
	for i := range prof.Pools {
		p := &prof.Pools[i]
		up, err := pools.GetUpgradeProfile(ctx, id.ResourceGroup, id.Name, p.Name, nil)
		switch {
		case status(err) == http.StatusNotFound:
			// The pool went between the two calls; the next read will not list it.
			continue
		case err != nil:
			return nil, fmt.Errorf("get upgrade profile of pool %s: %w", p.Name, err)
		}
		if pr := up.Properties; pr != nil {
			p.LatestNodeImageVersion = deref(pr.LatestNodeImageVersion)
		}
	}

	var configs []*armcontainerservice.MaintenanceConfiguration
	pager := f.NewMaintenanceConfigurationsClient().NewListByManagedClusterPager(id.ResourceGroup, id.Name, nil)
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list maintenance configurations: %w", err)
		}
		configs = append(configs, page.Value...)
	}
	prof.MaintenanceKnown = true
	prof.Maintenance = maintenance(configs)
	return prof, nil
}

// signal wraps a read. Its ID is derived from what was read and when, so the
// same read replayed is a duplicate and any difference is a new signal.
func signal(id fleet.ClusterID, at time.Time, kind fleet.SignalKind, prof *fleet.ClusterProfile) fleet.Signal {
	return fleet.Signal{
		ID:      signalID(id, at, prof),
		Type:    fleet.TypeARMRead,
		Source:  id.ResourceID(),
		Subject: id.ResourceID(),
		Time:    at,
		Cluster: id,
		Kind:    kind,
		Profile: prof,
	}
}

func signalID(id fleet.ClusterID, at time.Time, prof *fleet.ClusterProfile) string {
	// encoding/json sorts map keys and the profile's slices are sorted, so
	// equal profiles give equal bytes. It cannot fail on these plain types.
	body, _ := json.Marshal(prof)
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n", id.Key(), at.UTC().Format(time.RFC3339Nano))
	h.Write(body)
	return "arm-" + hex.EncodeToString(h.Sum(nil)[:16])
}

// readError classifies err for callers: the sentinel first, the cause kept.
func readError(id fleet.ClusterID, err error) error {
	if s := sentinel(err); s != nil {
		return fmt.Errorf("read %s: %w: %w", id, s, err)
	}
	return fmt.Errorf("read %s: %w", id, err)
}

func sentinel(err error) error {
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		switch c := re.StatusCode; {
		case c == http.StatusUnauthorized || c == http.StatusForbidden:
			return ErrForbidden
		case c == http.StatusNotFound && subscriptionNotFound(err):
			return ErrForbidden
		case c == http.StatusNotFound:
			// Something below the cluster vanished after its GET: the cluster
			// is being deleted or rebuilt; the next read will say which.
			return ErrUnavailable
		case c == http.StatusRequestTimeout || c == http.StatusTooManyRequests || c >= 500:
			return ErrUnavailable
		}
		return nil
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, io.ErrUnexpectedEOF) || errors.As(err, &ne) {
		return ErrUnavailable
	}
	return nil
}

func status(err error) int {
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		return re.StatusCode
	}
	return 0
}

// subscriptionNotFound tells a subscription the identity cannot see (a typo,
// another tenant) from a deleted cluster: both answer 404, and taking the
// first for the second would mark every cluster in it deleted.
func subscriptionNotFound(err error) bool {
	var re *azcore.ResponseError
	return errors.As(err, &re) && strings.EqualFold(re.ErrorCode, "SubscriptionNotFound")
}
