package state

import (
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
)

// Connection says how to reach Table storage, following the Functions
// connection conventions: either a connection string (the setting named by the
// connection itself), or identity-based settings `<name>__tableServiceUri` /
// `<name>__accountName` with managed identity (`<name>__clientId` for a
// user-assigned one).
type Connection struct {
	Name             string // the connection's setting name, for messages only
	ConnectionString string
	TableServiceURI  string
	AccountName      string
	ClientID         string
}

// AzuriteConnectionString is Azurite's well-known development account. It is
// public and only ever valid against a local emulator.
const AzuriteConnectionString = "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;" +
	"AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;" +
	"TableEndpoint=http://127.0.0.1:10002/devstoreaccount1;"

// NormalizeConnectionString maps `UseDevelopmentStorage=true` (which the
// Functions host accepts and aztables rejects) to Azurite's explicit account,
// so one app setting serves both.
func NormalizeConnectionString(s string) string {
	t := strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(s), ";"))
	if strings.EqualFold(strings.ReplaceAll(t, " ", ""), "UseDevelopmentStorage=true") {
		return AzuriteConnectionString
	}
	return s
}

// Describe returns a description of the connection that is safe to log: the
// endpoint and the kind of credential, never a key.
func (c Connection) Describe() string {
	switch {
	case c.ConnectionString != "":
		cs := NormalizeConnectionString(c.ConnectionString)
		endpoint, account := "", ""
		for _, part := range strings.Split(cs, ";") {
			k, v, _ := strings.Cut(part, "=")
			switch strings.ToLower(strings.TrimSpace(k)) {
			case "tableendpoint":
				endpoint = v
			case "accountname":
				account = v
			}
		}
		if endpoint == "" {
			endpoint = "account " + account
		}
		return fmt.Sprintf("%s: connection string (%s)", c.Name, endpoint)
	case c.TableServiceURI != "" || c.AccountName != "":
		id := "system-assigned or default identity"
		if c.ClientID != "" {
			id = "user-assigned identity " + c.ClientID
		}
		return fmt.Sprintf("%s: %s (%s)", c.Name, c.serviceURI(), id)
	}
	return c.Name + ": not configured"
}

func (c Connection) serviceURI() string {
	if c.TableServiceURI != "" {
		return c.TableServiceURI
	}
	return "https://" + c.AccountName + ".table.core.windows.net/"
}

// ClientOptions tune the storage client.
type ClientOptions struct {
	// TryTimeout bounds one storage request; MaxRetries the SDK's own retries.
	TryTimeout time.Duration
	MaxRetries int32
	// Counter, if set, is incremented once per HTTP request sent to storage.
	Counter *atomic.Int64
}

// NewServiceClient builds the aztables service client for a connection.
func NewServiceClient(c Connection, o ClientOptions) (*aztables.ServiceClient, error) {
	opts := &aztables.ClientOptions{ClientOptions: azcore.ClientOptions{
		Retry: policy.RetryOptions{
			MaxRetries:    o.MaxRetries,
			TryTimeout:    o.TryTimeout,
			RetryDelay:    200 * time.Millisecond,
			MaxRetryDelay: 2 * time.Second,
		},
		Telemetry: policy.TelemetryOptions{ApplicationID: "upgradewatch"},
	}}
	if o.Counter != nil {
		opts.PerRetryPolicies = append(opts.PerRetryPolicies, countingPolicy{o.Counter})
	}
	switch {
	case c.ConnectionString != "":
		svc, err := aztables.NewServiceClientFromConnectionString(NormalizeConnectionString(c.ConnectionString), opts)
		if err != nil {
			// The SDK's message never includes the key; still, say only which setting.
			return nil, fmt.Errorf("connection %s: invalid connection string: %w", c.Name, err)
		}
		return svc, nil
	case c.TableServiceURI != "" || c.AccountName != "":
		var cred azcore.TokenCredential
		var err error
		if c.ClientID != "" {
			cred, err = azidentity.NewManagedIdentityCredential(&azidentity.ManagedIdentityCredentialOptions{
				ID: azidentity.ClientID(c.ClientID),
			})
		} else {
			cred, err = azidentity.NewDefaultAzureCredential(nil)
		}
		if err != nil {
			return nil, fmt.Errorf("connection %s: credential: %w", c.Name, err)
		}
		return aztables.NewServiceClient(c.serviceURI(), cred, opts)
	}
	return nil, fmt.Errorf("connection %s: set %s to a connection string, or %s__tableServiceUri / %s__accountName for managed identity",
		c.Name, c.Name, c.Name, c.Name)
}

type countingPolicy struct{ n *atomic.Int64 }

func (p countingPolicy) Do(req *policy.Request) (*http.Response, error) {
	p.n.Add(1)
	return req.Next()
}
