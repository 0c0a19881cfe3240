package auth

import (
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"
	"golang.org/x/sync/singleflight"
)

// maxKeys bounds the keys taken from one key set; real ones hold two to ten.
const maxKeys = 64

// fetchFailure carries a key fetch's error past go-oidc, which keeps only the
// text of a key set's error and would turn "try later" into "refused".
type fetchFailure struct{ err error }

type fetchFailureKey struct{}

// issuers caches, per issuer URL, where its keys are (OIDC discovery) and the
// keys themselves. It is safe for concurrent use; concurrent requests for one
// issuer share one fetch.
type issuers struct {
	o      Options
	client *http.Client
	group  singleflight.Group

	mu    sync.Mutex
	byURL map[string]*issuerEntry
}

type issuerEntry struct {
	keys         *keySet // nil after a failed discovery
	discoveredAt time.Time
	err          error // the last discovery's failure
	failedAt     time.Time
	used         time.Time
}

func newIssuers(o Options) *issuers {
	o = o.withDefaults()
	return &issuers{o: o, client: newClient(o), byURL: map[string]*issuerEntry{}}
}

// keys returns the issuer's key set, discovering it first if needed. Errors
// wrap ErrUnavailable.
func (is *issuers) keys(ctx context.Context, issuer string) (*keySet, error) {
	now := is.o.Now()
	is.mu.Lock()
	if e := is.byURL[issuer]; e != nil {
		e.used = now
		// A failing issuer is asked again at most every few seconds, however
		// many requests name it; meanwhile a stale location beats none.
		fresh := e.keys != nil && now.Sub(e.discoveredAt) < discoveryTTL
		failing := e.err != nil && now.Sub(e.failedAt) < failedRetry
		if fresh || (failing && e.keys != nil) {
			ks := e.keys
			is.mu.Unlock()
			return ks, nil
		}
		if failing {
			err := e.err
			is.mu.Unlock()
			return nil, err
		}
	}
	is.mu.Unlock()
	ch := is.group.DoChan(issuer, func() (any, error) { return is.discover(issuer) })
	select {
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: discovery of %s: %w", ErrUnavailable, issuer, ctx.Err())
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Val.(*keySet), nil
	}
}

// discover reads the issuer's OpenID configuration (go-oidc checks that it
// names the same issuer) and records where its keys are. It runs detached
// from any one request, bounded by the client's timeout, since every waiting
// request shares it.
func (is *issuers) discover(issuer string) (*keySet, error) {
	ctx := oidc.ClientContext(context.Background(), is.client)
	ks, err := func() (*keySet, error) {
		p, err := oidc.NewProvider(ctx, issuer)
		if err != nil {
			return nil, err
		}
		var meta struct {
			JWKSURI string `json:"jwks_uri"`
		}
		if err := p.Claims(&meta); err != nil || meta.JWKSURI == "" {
			return nil, errors.New("discovery document has no jwks_uri")
		}
		return &keySet{url: meta.JWKSURI, client: is.client, now: is.o.Now}, nil
	}()

	now := is.o.Now()
	is.mu.Lock()
	defer is.mu.Unlock()
	e := is.byURL[issuer]
	if e == nil {
		e = &issuerEntry{}
		is.byURL[issuer] = e
		is.evict(issuer)
	}
	e.used = now
	if err != nil {
		e.err, e.failedAt = fmt.Errorf("%w: discovery of %s: %w", ErrUnavailable, issuer, err), now
		if e.keys != nil {
			return e.keys, nil
		}
		return nil, e.err
	}
	if e.keys != nil && e.keys.url == ks.url {
		ks = e.keys // same location: keep the keys already fetched
	}
	e.keys, e.discoveredAt, e.err = ks, now, nil
	return ks, nil
}

// evict forgets the least recently used issuer but keep beyond the bound.
// mu held.
func (is *issuers) evict(keep string) {
	if len(is.byURL) <= is.o.MaxIssuers {
		return
	}
	var oldest string
	var at time.Time
	for u, e := range is.byURL {
		if u != keep && (oldest == "" || e.used.Before(at)) {
			oldest, at = u, e.used
		}
	}
	delete(is.byURL, oldest)
}

// keySet is one issuer's signing keys, an oidc.KeySet: fetched on first use,
// and again when a token names a key it does not hold, at most once a
// minute, so that tokens with made-up key ids cannot make every request fetch.
// Signatures are checked by go-oidc's StaticKeySet.
type keySet struct {
	url    string
	client *http.Client
	now    func() time.Time
	group  singleflight.Group

	mu        sync.Mutex
	keys      []crypto.PublicKey
	fetchedAt time.Time
	err       error // the last fetch's failure
	failedAt  time.Time
}

var _ oidc.KeySet = (*keySet)(nil)

// VerifySignature implements oidc.KeySet. A failed fetch is also reported
// through the context's fetchFailure, if it has one.
func (k *keySet) VerifySignature(ctx context.Context, jwt string) ([]byte, error) {
	k.mu.Lock()
	keys, at := k.keys, k.fetchedAt
	k.mu.Unlock()
	if len(keys) > 0 {
		payload, err := (&oidc.StaticKeySet{PublicKeys: keys}).VerifySignature(ctx, jwt)
		if err == nil || k.now().Sub(at) < minKeyRefresh {
			return payload, err
		}
	}
	keys, err := k.refresh(ctx)
	if err != nil {
		if f, ok := ctx.Value(fetchFailureKey{}).(*fetchFailure); ok {
			f.err = err
		}
		return nil, err
	}
	return (&oidc.StaticKeySet{PublicKeys: keys}).VerifySignature(ctx, jwt)
}

// refresh fetches the keys, sharing one fetch among concurrent callers.
// Errors wrap ErrUnavailable.
func (k *keySet) refresh(ctx context.Context) ([]crypto.PublicKey, error) {
	k.mu.Lock()
	if k.err != nil && k.now().Sub(k.failedAt) < failedRetry {
		err := k.err
		k.mu.Unlock()
		return nil, err
	}
	k.mu.Unlock()
	ch := k.group.DoChan("keys", func() (any, error) {
		keys, err := k.fetch()
		k.mu.Lock()
		defer k.mu.Unlock()
		if err != nil {
			k.err, k.failedAt = fmt.Errorf("%w: keys of %s: %w", ErrUnavailable, k.url, err), k.now()
			return nil, k.err
		}
		k.keys, k.fetchedAt, k.err = keys, k.now(), nil
		return keys, nil
	})
	select {
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: keys of %s: %w", ErrUnavailable, k.url, ctx.Err())
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Val.([]crypto.PublicKey), nil
	}
}

// fetch reads the JWKS. Keys of a type go-jose does not know, or not meant
// for signatures, are skipped rather than failing the whole set.
func (k *keySet) fetch() ([]crypto.PublicKey, error) {
	req, err := http.NewRequest(http.MethodGet, k.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := k.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("answered %s", resp.Status)
	}
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, fmt.Errorf("key set is not JSON: %w", err)
	}
	var keys []crypto.PublicKey
	for _, raw := range set.Keys {
		var jwk jose.JSONWebKey
		if err := jwk.UnmarshalJSON(raw); err != nil || !jwk.Valid() || !jwk.IsPublic() || (jwk.Use != "" && jwk.Use != "sig") {
			continue
		}
		if keys = append(keys, jwk.Key); len(keys) == maxKeys {
			break
		}
	}
	if len(keys) == 0 {
		return nil, errors.New("key set holds no usable signing key")
	}
	return keys, nil
}
