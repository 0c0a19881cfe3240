package fleet

import (
	"testing"
	"time"
)

// The issuer comes from ARM reads only, the newest read wins whatever the
// order, and a resource notification's profile never touches it.
func TestApplyProfileOIDCIssuer(t *testing.T) {
	id := ClusterID{SubscriptionID: "8f1c2b3a-4d5e-4f60-9a7b-1c2d3e4f5a6b", ResourceGroup: "rg-platform-weu", Name: "aks-prod-weu"}
	t0 := time.Date(2026, 10, 5, 8, 0, 0, 0, time.UTC)
	const old, cur = "https://westeurope.oic.prod-aks.azure.com/t/old/", "https://westeurope.oic.prod-aks.azure.com/t/new/"
	read := func(sid string, at time.Time, issuer string) Signal {
		return Signal{ID: sid, Time: at, Cluster: id, Kind: KindClusterUpdated, Type: TypeARMRead,
			Profile: &ClusterProfile{OIDCIssuerKnown: true, OIDCIssuerURL: issuer}}
	}
	notification := Signal{ID: "arn-1", Time: t0.Add(3 * time.Hour), Cluster: id, Kind: KindClusterUpdated,
		Profile: &ClusterProfile{OIDCIssuerURL: "https://attacker.example/"}}

	for _, order := range [][]Signal{
		{read("arm-1", t0, old), read("arm-2", t0.Add(time.Hour), cur), notification},
		{notification, read("arm-2", t0.Add(time.Hour), cur), read("arm-1", t0, old)},
	} {
		c := NewCluster(id)
		if c.OIDCIssuerKnown {
			t.Fatal("a new cluster knows its issuer")
		}
		for _, s := range order {
			if err := Apply(c, s); err != nil {
				t.Fatal(err)
			}
		}
		if !c.OIDCIssuerKnown || c.OIDCIssuer != cur || c.OIDCIssuerAt.SignalID != "arm-2" {
			t.Errorf("order %s…: issuer %q known %v from %s, want %q from arm-2", order[0].ID, c.OIDCIssuer, c.OIDCIssuerKnown, c.OIDCIssuerAt.SignalID, cur)
		}
	}

	// A newer read of a cluster whose issuer was disabled clears it.
	c := NewCluster(id)
	for _, s := range []Signal{read("arm-1", t0, cur), read("arm-2", t0.Add(time.Hour), "")} {
		if err := Apply(c, s); err != nil {
			t.Fatal(err)
		}
	}
	if !c.OIDCIssuerKnown || c.OIDCIssuer != "" {
		t.Errorf("issuer %q known %v after it was disabled, want known and empty", c.OIDCIssuer, c.OIDCIssuerKnown)
	}
}
