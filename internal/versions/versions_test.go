package versions

import (
	"sort"
	"testing"
	"time"
)

func day(y, m, d int) time.Time { return time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC) }

func TestParse(t *testing.T) {
	cases := []struct {
		in                    string
		os, sku, build, patch string
		buildDate, patchDate  time.Time
		osSKU                 string
	}{
		{"AKSUbuntu-2204gen2containerd-202410.27.0-2024.12.01", "AKSUbuntu", "2204gen2containerd", "202410.27.0", "2024.12.01", day(2024, 10, 27), day(2024, 12, 1), "Ubuntu"},
		{"AKSUbuntu-2204gen2containerd-202410.27.0", "AKSUbuntu", "2204gen2containerd", "202410.27.0", "", day(2024, 10, 27), time.Time{}, "Ubuntu"},
		{"AKSUbuntu-1804gen2containerd-2022.08.29", "AKSUbuntu", "1804gen2containerd", "2022.08.29", "", day(2022, 8, 29), time.Time{}, "Ubuntu"},
		{"AKSUbuntu-1604-2021.11.06", "AKSUbuntu", "1604", "2021.11.06", "", day(2021, 11, 6), time.Time{}, "Ubuntu"},
		{"AKSAzureLinux-V3gen2-202609.15.0", "AKSAzureLinux", "V3gen2", "202609.15.0", "", day(2026, 9, 15), time.Time{}, "AzureLinux"},
		{"AKSCBLMariner-V2gen2-202501.12.0", "AKSCBLMariner", "V2gen2", "202501.12.0", "", day(2025, 1, 12), time.Time{}, "AzureLinux"},
		{"AKSWindows-2022-containerd-20348.3692.250518", "AKSWindows", "2022-containerd", "20348.3692.250518", "", day(2025, 5, 18), time.Time{}, "Windows2022"},
		{"AKSWindows-2019-containerd-17763.7314.250518", "AKSWindows", "2019-containerd", "17763.7314.250518", "", day(2025, 5, 18), time.Time{}, "Windows2019"},
		{"AKSWindows-2025-gen2-26100.4061.250518", "AKSWindows", "2025-gen2", "26100.4061.250518", "", day(2025, 5, 18), time.Time{}, "Windows2025"},
		{"AKSWindows-23H2-25398.1611.250518", "AKSWindows", "23H2", "25398.1611.250518", "", day(2025, 5, 18), time.Time{}, "WindowsAnnual"},
		{"AKSFlatcar-flatcargen2arm64-202512.18.0", "AKSFlatcar", "flatcargen2arm64", "202512.18.0", "", day(2025, 12, 18), time.Time{}, "Flatcar"},
		{"AKSUbuntuEdgeZone-2204gen2containerd-202505.27.0", "AKSUbuntuEdgeZone", "2204gen2containerd", "202505.27.0", "", day(2025, 5, 27), time.Time{}, "Ubuntu"},
	}
	for _, tc := range cases {
		v := Parse(tc.in)
		if !v.Known || v.OS != tc.os || v.SKU != tc.sku || v.Build != tc.build || v.Patch != tc.patch ||
			!v.BuildDate.Equal(tc.buildDate) || !v.PatchDate.Equal(tc.patchDate) || v.OSSKU() != tc.osSKU {
			t.Errorf("Parse(%q) = %+v (OSSKU %q)", tc.in, v, v.OSSKU())
		}
	}
	if got := Parse(cases[0].in).Base(); got != "AKSUbuntu-2204gen2containerd-202410.27.0" {
		t.Errorf("Base() = %q", got)
	}
	if age := Parse(cases[0].in).Age(day(2024, 12, 8)); age != 7*24*time.Hour {
		t.Errorf("Age = %v, want 7 days from the patch date", age)
	}
}

func TestParseUnknownKeptVerbatim(t *testing.T) {
	for _, in := range []string{"", "AKSUbuntu:1604:2020.03.11", "ubuntu-22.04", "AKSUbuntu-2204gen2containerd", "AKSUbuntu-2204gen2containerd-202413.40.0",
		"AKSWindows-2022-20348.x.250518", "AKSUbuntu--202410.27.0", "AKSUbuntu-2204gen2containerd-2024.02.30"} {
		v := Parse(in)
		if v.Known || v.Raw != in || v.Family() != "" {
			t.Errorf("Parse(%q) = %+v, want unknown, verbatim", in, v)
		}
	}
}

// Ordered lists of real version strings, oldest first, one per family.
var ordered = [][]string{
	{
		"AKSUbuntu-2204gen2containerd-2022.10.03",
		"AKSUbuntu-2204gen2containerd-202301.12.0",
		"AKSUbuntu-2204gen2containerd-202410.15.0",
		"AKSUbuntu-2204gen2containerd-202410.27.0",
		"AKSUbuntu-2204gen2containerd-202410.27.0-2024.11.20",
		"AKSUbuntu-2204gen2containerd-202410.27.0-2024.12.01",
		"AKSUbuntu-2204gen2containerd-202411.12.0",
		"AKSUbuntu-2204gen2containerd-202505.27.0",
		"AKSUbuntu-2204gen2containerd-202603.18.0",
		"AKSUbuntu-2204gen2containerd-202603.18.1",
		"AKSUbuntu-2204gen2containerd-202604.07.0",
		"AKSUbuntu-2204gen2containerd-202605.14.0-2026.06.13",
	},
	{"AKSUbuntu-2404gen2arm64containerd-202508.20.0", "AKSUbuntu-2404gen2arm64containerd-202509.01.0", "AKSUbuntu-2404gen2arm64containerd-202604.07.0"},
	{"AKSUbuntu-2204gen2fipscontainerd-202501.05.0", "AKSUbuntu-2204gen2fipscontainerd-202502.09.0"},
	{"AKSUbuntu-2204gen2TLcontainerd-202506.02.0", "AKSUbuntu-2204gen2TLcontainerd-202507.21.0"},
	{"AKSUbuntu-2404gen2CVMcontainerd-202510.03.0", "AKSUbuntu-2404gen2CVMcontainerd-202511.11.0"},
	{"AKSAzureLinux-V2gen2-202501.12.0", "AKSAzureLinux-V2gen2-202503.25.0", "AKSAzureLinux-V2gen2-202506.10.0"},
	{"AKSAzureLinux-V3gen2-202604.07.0", "AKSAzureLinux-V3gen2-202609.15.0", "AKSAzureLinux-V3gen2-202610.13.0"},
	{"AKSAzureLinux-V3gen2arm64-202603.18.0", "AKSAzureLinux-V3gen2arm64-202604.07.0"},
	{"AKSCBLMariner-V2gen2-2022.12.15", "AKSCBLMariner-V2gen2-202305.15.0", "AKSCBLMariner-V2gen2-202408.12.0"},
	{"AKSWindows-2019-containerd-17763.6893.250218", "AKSWindows-2019-containerd-17763.7136.250415", "AKSWindows-2019-containerd-17763.7314.250518"},
	{"AKSWindows-2022-containerd-20348.3091.250117", "AKSWindows-2022-containerd-20348.3692.250518", "AKSWindows-2022-containerd-20348.4294.251014"},
	{"AKSWindows-2025-26100.3476.250318", "AKSWindows-2025-26100.4061.250518"},
	{"AKSWindows-23H2-25398.1369.250117", "AKSWindows-23H2-25398.1611.250518"},
	{"AKSFlatcar-flatcargen2-202508.06.0", "AKSFlatcar-flatcargen2-202512.18.0"},
}

func TestOrderRealVersions(t *testing.T) {
	total := 0
	for _, fam := range ordered {
		total += len(fam)
		for i := range fam {
			for j := range fam {
				c, err := Compare(Parse(fam[i]), Parse(fam[j]))
				if err != nil {
					t.Fatalf("Compare(%s, %s): %v", fam[i], fam[j], err)
				}
				want := 0
				if i < j {
					want = -1
				} else if i > j {
					want = 1
				}
				if c != want {
					t.Errorf("Compare(%s, %s) = %d, want %d", fam[i], fam[j], c, want)
				}
			}
		}
		// Sorting a reversed copy restores the order.
		rev := make([]Version, len(fam))
		for i, s := range fam {
			rev[len(fam)-1-i] = Parse(s)
		}
		sort.Slice(rev, func(i, j int) bool { c, _ := Compare(rev[i], rev[j]); return c < 0 })
		for i, v := range rev {
			if v.Raw != fam[i] {
				t.Errorf("sorted[%d] = %s, want %s", i, v.Raw, fam[i])
			}
		}
	}
	if total < 40 {
		t.Errorf("only %d real versions in the order table, want at least 40", total)
	}
}

func TestCompareAcrossFamiliesRefused(t *testing.T) {
	pairs := [][2]string{
		{"AKSUbuntu-2204gen2containerd-202410.27.0", "AKSUbuntu-2404gen2containerd-202410.27.0"},
		{"AKSUbuntu-2204gen2containerd-202410.27.0", "AKSAzureLinux-V3gen2-202410.27.0"},
		{"AKSWindows-2022-containerd-20348.3692.250518", "AKSUbuntu-2204gen2containerd-202410.27.0"},
		{"garbage", "AKSUbuntu-2204gen2containerd-202410.27.0"},
	}
	for _, p := range pairs {
		if _, err := Compare(Parse(p[0]), Parse(p[1])); err == nil {
			t.Errorf("Compare(%s, %s) compared across families", p[0], p[1])
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, fam := range ordered {
		for _, s := range fam {
			f.Add(s)
		}
	}
	f.Add("AKSUbuntu-2204gen2containerd-202410.27.0-2024.12.01")
	f.Add("AKSWindows-2022-containerd-20348.3692.250518")
	f.Fuzz(func(t *testing.T, s string) {
		v := Parse(s)
		if v.Raw != s {
			t.Fatalf("Raw not kept verbatim")
		}
		if !v.Known {
			return
		}
		if v.Family() == "" || v.Build == "" || v.BuildDate.IsZero() {
			t.Fatalf("known version with empty parts: %+v", v)
		}
		if c, err := Compare(v, v); err != nil || c != 0 {
			t.Fatalf("Compare(v, v) = %d, %v", c, err)
		}
		// Re-parsing the base gives the same family and build.
		b := Parse(v.Base())
		if !b.Known || b.Family() != v.Family() || b.Build != v.Build {
			t.Fatalf("Parse(Base()) = %+v, want family %s build %s", b, v.Family(), v.Build)
		}
	})
}
