package fleet

import (
	"errors"
	"strings"
	"testing"
)

// TestNewClusterIDResourceGroupNames holds NewClusterID to Azure's rules for
// resource group names: 1 to 90 letters (any script), digits, _ ( ) - . and
// no period at the end.
func TestNewClusterIDResourceGroupNames(t *testing.T) {
	const sub = "6f1c2a3b-4d5e-4f60-8a71-92b3c4d5e6f7"
	cases := []struct {
		rg string
		ok bool
	}{
		{"rg-münchen-prod", true},
		{"rg-mu\u0308nchen-prod", true}, // decomposed ü: u + combining diaeresis (.NET \w takes Mn)
		{"RG.Fleet_(west)-2", true},
		{"(rg)", true},
		{"_rg_", true},
		{"rg-東京-prod", true},
		{"грп-прод", true},
		{"rg-٣", true}, // Arabic-Indic digit three: a decimal digit
		{"a", true},
		{strings.Repeat("r", 90), true},
		{strings.Repeat("ü", 90), true}, // 90 characters, 180 bytes
		{strings.Repeat("r", 91), false},
		{"", false},
		{"rg.", false},
		{"rg-prod.", false},
		{"rg prod", false},
		{"rg~prod", false},
		{"rg'prod", false},
		{"rg/prod", false},
		{"rg#1", false},
		{"rg?1", false},
		{"rg%C3%BC", false},
		{"rg-²", false}, // a superscript is a number but not a decimal digit
		{"rg-\u200bx", false},
	}
	for _, tc := range cases {
		c, err := NewClusterID(sub, tc.rg, "aks1")
		if (err == nil) != tc.ok {
			t.Errorf("NewClusterID(rg %q): error %v, want ok=%v", tc.rg, err, tc.ok)
			continue
		}
		if err != nil {
			if !errors.Is(err, ErrInvalidResourceID) || !strings.Contains(err.Error(), "resource group") {
				t.Errorf("NewClusterID(rg %q): error %q, want ErrInvalidResourceID naming the resource group", tc.rg, err)
			}
			continue
		}
		if c.ResourceGroup != tc.rg {
			t.Errorf("NewClusterID(rg %q) kept %q", tc.rg, c.ResourceGroup)
		}
	}
}

// TestParseResourceIDNames checks that the names Azure allows survive
// ParseResourceID unchanged, that a percent-encoded ID names the same cluster,
// and that a refusal quotes the ID as it was sent.
func TestParseResourceIDNames(t *testing.T) {
	const sub = "6f1c2a3b-4d5e-4f60-8a71-92b3c4d5e6f7"
	id := func(rg, name string) string {
		return "/subscriptions/" + sub + "/resourceGroups/" + rg + "/providers/Microsoft.ContainerService/managedClusters/" + name
	}
	cases := []struct {
		in      string
		wantRG  string
		wantKey string
		wantErr string // part of the error; empty: accepted
	}{
		{in: id("rg-münchen-prod", "aks-muc-1"), wantRG: "rg-münchen-prod", wantKey: sub + "~rg-münchen-prod~aks-muc-1"},
		{in: id("rg-m%C3%BCnchen-prod", "aks-muc-1"), wantRG: "rg-münchen-prod", wantKey: sub + "~rg-münchen-prod~aks-muc-1"},
		{in: id("RG.Fleet_(west)-2", "aks-fleet-w2"), wantRG: "RG.Fleet_(west)-2", wantKey: sub + "~rg.fleet_(west)-2~aks-fleet-w2"},
		{in: id("RG.Fleet_%28west%29-2", "aks-fleet-w2"), wantRG: "RG.Fleet_(west)-2", wantKey: sub + "~rg.fleet_(west)-2~aks-fleet-w2"},
		{in: id("rg-münchen.", "aks1"), wantErr: `invalid resource group name "rg-münchen."`},
		{in: id("rg-m%C3%BCnchen.", "aks1"), wantErr: `invalid resource group name "rg-m%C3%BCnchen."`},
		{in: id("rg-%2Fx", "aks1"), wantErr: `invalid resource group name "rg-%2Fx"`},
		{in: id("rg-%zz", "aks1"), wantErr: `invalid resource group name "rg-%zz"`},
	}
	for _, tc := range cases {
		c, _, err := ParseResourceID(tc.in)
		if tc.wantErr != "" {
			if !errors.Is(err, ErrInvalidResourceID) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ParseResourceID(%q): error %v, want one containing %s", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseResourceID(%q): %v", tc.in, err)
			continue
		}
		if c.ResourceGroup != tc.wantRG || c.Key() != tc.wantKey {
			t.Errorf("ParseResourceID(%q) = rg %q key %q, want %q %q", tc.in, c.ResourceGroup, c.Key(), tc.wantRG, tc.wantKey)
		}
	}
}
