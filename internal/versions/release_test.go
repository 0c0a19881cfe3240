package versions

import (
	"strings"
	"testing"
	"time"
)

func TestReleaseDateAndFamily(t *testing.T) {
	cases := []struct {
		in       string
		released time.Time
		family   string
		line     string
	}{
		// Linux YYYYMM.DD.BUILD.
		{"AKSUbuntu-2204gen2containerd-202410.27.0", day(2024, 10, 27), "AKSUbuntu-2204gen2containerd", LineNodeImage},
		{"AKSUbuntu-2204gen2containerd-202410.15.0", day(2024, 10, 15), "AKSUbuntu-2204gen2containerd", LineNodeImage},
		{"AKSUbuntu-2204gen2containerd-202603.18.1", day(2026, 3, 18), "AKSUbuntu-2204gen2containerd", LineNodeImage},
		{"AKSUbuntu-2204containerd-202505.27.0", day(2025, 5, 27), "AKSUbuntu-2204containerd", LineNodeImage},
		{"AKSUbuntu-2404gen2arm64containerd-202604.07.0", day(2026, 4, 7), "AKSUbuntu-2404gen2arm64containerd", LineNodeImage},
		{"AKSAzureLinux-V3gen2-202609.15.0", day(2026, 9, 15), "AKSAzureLinux-V3gen2", LineNodeImage},
		{"AKSAzureLinux-V2gen2-202501.12.0", day(2025, 1, 12), "AKSAzureLinux-V2gen2", LineNodeImage},
		{"AKSCBLMariner-V2gen2-202408.12.0", day(2024, 8, 12), "AKSCBLMariner-V2gen2", LineNodeImage},
		{"AKSFlatcar-flatcargen2-202508.06.0", day(2025, 8, 6), "AKSFlatcar-flatcargen2", LineNodeImage},
		{"AKSUbuntuEdgeZone-2204gen2containerd-202505.27.0", day(2025, 5, 27), "AKSUbuntuEdgeZone-2204gen2containerd", LineNodeImage},
		// Legacy YYYY.MM.DD.
		{"AKSUbuntu-1804gen2containerd-2022.08.29", day(2022, 8, 29), "AKSUbuntu-1804gen2containerd", LineNodeImage},
		{"AKSCBLMariner-V2gen2-2022.12.15", day(2022, 12, 15), "AKSCBLMariner-V2gen2", LineNodeImage},
		// SecurityPatch: the suffix's date, on the patch line.
		{"AKSUbuntu-2204gen2containerd-202410.27.0-2024.12.01", day(2024, 12, 1), "AKSUbuntu-2204gen2containerd+SecurityPatch", LineSecurityPatch},
		{"AKSUbuntu-2204gen2containerd-202605.14.0-2026.06.13", day(2026, 6, 13), "AKSUbuntu-2204gen2containerd+SecurityPatch", LineSecurityPatch},
		// Windows OSBUILD.REV.YYMMDD; the generation is part of the family.
		{"AKSWindows-2022-containerd-20348.3692.250518", day(2025, 5, 18), "AKSWindows-2022-containerd", LineNodeImage},
		{"AKSWindows-2022-containerd-gen2-20348.3692.250518", day(2025, 5, 18), "AKSWindows-2022-containerd-gen2", LineNodeImage},
		{"AKSWindows-2019-containerd-17763.7314.250518", day(2025, 5, 18), "AKSWindows-2019-containerd", LineNodeImage},
		{"AKSWindows-2025-26100.4061.250518", day(2025, 5, 18), "AKSWindows-2025", LineNodeImage},
		{"AKSWindows-23H2-25398.1369.250117", day(2025, 1, 17), "AKSWindows-23H2", LineNodeImage},
		{"AKSWindows-2022-containerd-20348.4294.251014", day(2025, 10, 14), "AKSWindows-2022-containerd", LineNodeImage},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			v := Parse(tc.in)
			got, ok := ReleaseDate(v)
			if !ok || !got.Equal(tc.released) {
				t.Errorf("ReleaseDate = %v, %v; want %v", got, ok, tc.released)
			}
			if f := Family(v); f != tc.family {
				t.Errorf("Family = %q, want %q", f, tc.family)
			}
			if l := Line(v); l != tc.line {
				t.Errorf("Line = %q, want %q", l, tc.line)
			}
		})
	}
}

func TestFamilySeparatesLinesAndGenerations(t *testing.T) {
	plain := Parse("AKSUbuntu-2204gen2containerd-202410.27.0")
	patched := Parse("AKSUbuntu-2204gen2containerd-202410.27.0-2024.12.01")
	gen1 := Parse("AKSUbuntu-2204containerd-202410.27.0")
	if Family(plain) == Family(patched) {
		t.Errorf("node image and SecurityPatch image share family %q", Family(plain))
	}
	if Family(plain) == Family(gen1) {
		t.Errorf("gen1 and gen2 share family %q", Family(plain))
	}
	// A SecurityPatch pool whose ARM version has no suffix is still on the patch line.
	if got, want := FamilyOn(plain, LineSecurityPatch), Family(patched); got != want {
		t.Errorf("FamilyOn(plain, SecurityPatch) = %q, want %q", got, want)
	}
}

func TestReleaseDateUnknown(t *testing.T) {
	for _, in := range []string{"", "AKSUbuntu:1604:2020.03.11", "AKSUbuntu-2204gen2containerd", "AKSUbuntu-2204gen2containerd-202413.40.0", "ubuntu-22.04"} {
		v := Parse(in)
		if d, ok := ReleaseDate(v); ok || !d.IsZero() {
			t.Errorf("ReleaseDate(%q) = %v, %v; want none", in, d, ok)
		}
		if f, l := Family(v), Line(v); f != "" || l != "" {
			t.Errorf("Family/Line(%q) = %q/%q; want empty", in, f, l)
		}
	}
}

func seedReal(f *testing.F) {
	for _, fam := range ordered {
		for _, s := range fam {
			f.Add(s)
		}
	}
	f.Add("AKSWindows-2022-containerd-gen2-20348.3692.250518")
	f.Add("AKSUbuntu-2204gen2containerd-202410.27.0-2024.12.01")
	f.Add("AKSUbuntu-1604-2021.11.06")
	f.Add("AKSUbuntu-2204gen2containerd-202410.27.0-2024.02.30")
}

func FuzzReleaseDate(f *testing.F) {
	seedReal(f)
	f.Fuzz(func(t *testing.T, s string) {
		v := Parse(s)
		d, ok := ReleaseDate(v)
		if ok != v.Known {
			t.Fatalf("ReleaseDate known = %v, version known = %v", ok, v.Known)
		}
		if !ok {
			return
		}
		if d.Year() < 2015 || d.Year() > 2100 || d.Location() != time.UTC || d != d.Truncate(24*time.Hour) {
			t.Fatalf("release date %v out of range or not a UTC day", d)
		}
		if d.Before(v.BuildDate) || (v.Patch != "" && !d.Equal(v.PatchDate) && d.Before(v.PatchDate)) {
			t.Fatalf("release date %v before the build %v or patch %v", d, v.BuildDate, v.PatchDate)
		}
		// The base's release date is never after the patched image's.
		if b, ok := ReleaseDate(Parse(v.Base())); !ok || b.After(d) {
			t.Fatalf("base released %v (%v), after %v", b, ok, d)
		}
	})
}

func FuzzFamily(f *testing.F) {
	seedReal(f)
	f.Fuzz(func(t *testing.T, s string) {
		v := Parse(s)
		fam := Family(v)
		if (fam != "") != v.Known {
			t.Fatalf("Family = %q for known = %v", fam, v.Known)
		}
		if !v.Known {
			return
		}
		if !strings.HasPrefix(fam, v.Family()) {
			t.Fatalf("Family %q does not start with the OS SKU %q", fam, v.Family())
		}
		if (Line(v) == LineSecurityPatch) != (v.Patch != "") {
			t.Fatalf("Line %q with patch %q", Line(v), v.Patch)
		}
		// The base is on the node image line of the same OS SKU, and the
		// version on its own line is its family.
		if got := Family(Parse(v.Base())); got != FamilyOn(v, LineNodeImage) {
			t.Fatalf("Family(base) = %q, want %q", got, FamilyOn(v, LineNodeImage))
		}
		if FamilyOn(v, Line(v)) != fam {
			t.Fatalf("FamilyOn(v, Line(v)) = %q, want %q", FamilyOn(v, Line(v)), fam)
		}
	})
}
