// Package versions parses and orders AKS node image versions.
//
// A node image version names a family (OS and SKU, e.g. AKSUbuntu-2204gen2containerd)
// and a build within it:
//
//	Linux:   <OS>-<SKU>-YYYYMM.DD.BUILD        AKSUbuntu-2204gen2containerd-202410.27.0
//	legacy:  <OS>-<SKU>-YYYY.MM.DD             AKSUbuntu-1804gen2containerd-2022.08.29
//	Windows: AKSWindows-<SKU>-OSBUILD.REV.YYMMDD  AKSWindows-2022-containerd-20348.3692.250518
//
// optionally followed by a SecurityPatch suffix -YYYY.MM.DD (node labels carry it:
// AKSUbuntu-2204gen2containerd-202410.27.0-2024.12.01). Versions are ordered only
// within one family; a change of family is not an upgrade. Unknown formats are
// kept verbatim and flagged, never a panic.
package versions

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Version is a parsed node image version.
type Version struct {
	Raw       string
	Known     bool   // false: the string did not match any known grammar; only Raw is set
	OS        string // AKSUbuntu, AKSAzureLinux, AKSCBLMariner, AKSWindows, AKSFlatcar, AKSUbuntuEdgeZone, …
	SKU       string // 2204gen2containerd, V3gen2, 2022-containerd, flatcargen2, …
	Build     string // 202410.27.0, 2022.08.29, 20348.3692.250518
	Patch     string // SecurityPatch date suffix (YYYY.MM.DD), empty when none
	BuildDate time.Time
	PatchDate time.Time
	nums      []int // the build's numeric segments, for ordering
}

// Family is the image family: <OS>-<SKU>. Only versions of one family compare.
func (v Version) Family() string {
	if !v.Known {
		return ""
	}
	return v.OS + "-" + v.SKU
}

// Base is the version without its SecurityPatch suffix.
func (v Version) Base() string {
	if !v.Known {
		return v.Raw
	}
	return v.Family() + "-" + v.Build
}

// IsWindows reports whether the image is a Windows image.
func (v Version) IsWindows() bool { return v.OS == "AKSWindows" }

// OSSKU maps the family to the agent pool osSku it serves.
func (v Version) OSSKU() string {
	switch v.OS {
	case "AKSUbuntu", "AKSUbuntuEdgeZone":
		return "Ubuntu"
	case "AKSAzureLinux", "AKSCBLMariner":
		return "AzureLinux"
	case "AKSFlatcar":
		return "Flatcar"
	case "AKSWindows":
		switch {
		case strings.HasPrefix(v.SKU, "2019"):
			return "Windows2019"
		case strings.HasPrefix(v.SKU, "2022"):
			return "Windows2022"
		case strings.HasPrefix(v.SKU, "2025"):
			return "Windows2025"
		case strings.HasPrefix(v.SKU, "23H2"):
			return "WindowsAnnual"
		}
	}
	return ""
}

// Age is how old the newest content of the image is at now: from its patch
// date when it has one, else its build date. Zero for unknown versions.
func (v Version) Age(now time.Time) time.Duration {
	d := v.BuildDate
	if v.PatchDate.After(d) {
		d = v.PatchDate
	}
	if d.IsZero() {
		return 0
	}
	return now.Sub(d)
}

// Parse parses a node image version. It never fails: an unknown format comes
// back with Known = false.
func Parse(s string) Version {
	v := Version{Raw: s}
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, "AKS") {
		return v
	}
	parts := strings.Split(s, "-")
	if len(parts) < 3 {
		return v
	}
	// A trailing YYYY.MM.DD after a YYYYMM.DD.B build is the SecurityPatch suffix.
	if n := len(parts); n >= 4 {
		if pd, ok := ymd(parts[n-1]); ok {
			if _, _, ok := linuxBuild(parts[n-2]); ok {
				v.Patch, v.PatchDate = parts[n-1], pd
				parts = parts[:n-1]
			}
		}
	}
	build := parts[len(parts)-1]
	v.OS = parts[0]
	v.SKU = strings.Join(parts[1:len(parts)-1], "-")
	if v.SKU == "" {
		return Version{Raw: v.Raw}
	}
	switch {
	case v.OS == "AKSWindows":
		d, nums, ok := windowsBuild(build)
		if !ok {
			return Version{Raw: v.Raw}
		}
		v.BuildDate, v.nums = d, nums
	default:
		if d, nums, ok := linuxBuild(build); ok {
			v.BuildDate, v.nums = d, nums
		} else if d, ok := ymd(build); ok {
			v.BuildDate = d
			v.nums = []int{d.Year(), int(d.Month()), d.Day()}
		} else {
			return Version{Raw: v.Raw}
		}
	}
	v.Build, v.Known = build, true
	return v
}

// Compare orders two versions of one family: -1, 0 or +1. It returns an error
// when they are not comparable (unknown format or different families).
func Compare(a, b Version) (int, error) {
	if !a.Known || !b.Known {
		return 0, fmt.Errorf("compare %q and %q: unknown version format", a.Raw, b.Raw)
	}
	if a.Family() != b.Family() {
		return 0, fmt.Errorf("compare %q and %q: different image families", a.Raw, b.Raw)
	}
	if c := compareNums(a.nums, b.nums); c != 0 {
		return c, nil
	}
	switch {
	case a.PatchDate.Before(b.PatchDate):
		return -1, nil
	case a.PatchDate.After(b.PatchDate):
		return 1, nil
	}
	return 0, nil
}

// compareNums compares numerically segment by segment. A legacy YYYY.MM.DD
// build sorts before any YYYYMM.DD.B one because 2022 < 202201.
func compareNums(a, b []int) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			if a[i] < b[i] {
				return -1
			}
			return 1
		}
	}
	switch {
	case len(a) < len(b):
		return -1
	case len(a) > len(b):
		return 1
	}
	return 0
}

func atoiAll(parts []string) ([]int, bool) {
	out := make([]int, len(parts))
	for i, p := range parts {
		if p == "" || len(p) > 9 {
			return nil, false
		}
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return nil, false
		}
		out[i] = n
	}
	return out, true
}

// linuxBuild parses YYYYMM.DD.BUILD.
func linuxBuild(s string) (time.Time, []int, bool) {
	p := strings.Split(s, ".")
	if len(p) != 3 || len(p[0]) != 6 || len(p[1]) != 2 {
		return time.Time{}, nil, false
	}
	nums, ok := atoiAll(p)
	if !ok {
		return time.Time{}, nil, false
	}
	d, ok := date(nums[0]/100, nums[0]%100, nums[1])
	return d, nums, ok
}

// windowsBuild parses OSBUILD.REV.YYMMDD.
func windowsBuild(s string) (time.Time, []int, bool) {
	p := strings.Split(s, ".")
	if len(p) != 3 || len(p[2]) != 6 {
		return time.Time{}, nil, false
	}
	nums, ok := atoiAll(p)
	if !ok {
		return time.Time{}, nil, false
	}
	d, ok := date(2000+nums[2]/10000, nums[2]/100%100, nums[2]%100)
	// Order Windows builds by release date first, then OS build and revision.
	return d, []int{nums[2], nums[0], nums[1]}, ok
}

// ymd parses YYYY.MM.DD.
func ymd(s string) (time.Time, bool) {
	p := strings.Split(s, ".")
	if len(p) != 3 || len(p[0]) != 4 || len(p[1]) != 2 || len(p[2]) != 2 {
		return time.Time{}, false
	}
	nums, ok := atoiAll(p)
	if !ok {
		return time.Time{}, false
	}
	return date(nums[0], nums[1], nums[2])
}

func date(y, m, d int) (time.Time, bool) {
	if y < 2015 || y > 2100 || m < 1 || m > 12 || d < 1 || d > 31 {
		return time.Time{}, false
	}
	t := time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC)
	if t.Day() != d {
		return time.Time{}, false
	}
	return t, true
}

// Image lines. AKS publishes two series of images per OS SKU: node images
// (NodeImage channel, weekly) and security-patched images, whose versions
// carry a -YYYY.MM.DD suffix (SecurityPatch channel). They are built and
// rolled out separately, so a pool is only ever behind an image of its own
// line.
const (
	LineNodeImage     = "NodeImage"
	LineSecurityPatch = "SecurityPatch"
)

// familyLineSep separates the OS SKU from the line in a SecurityPatch family.
const familyLineSep = "+"

// Line is the image line a version belongs to: LineSecurityPatch when it
// carries a SecurityPatch suffix, else LineNodeImage; "" when unknown.
func Line(v Version) string {
	switch {
	case !v.Known:
		return ""
	case v.Patch != "":
		return LineSecurityPatch
	}
	return LineNodeImage
}

// Family is the image family a version is compared within: its OS and SKU
// (which carries the generation, architecture and flavour: 2204gen2containerd,
// V3gen2arm64, 2022-containerd-gen2) and, for a SecurityPatch image, the
// patch line: AKSUbuntu-2204gen2containerd+SecurityPatch. "" when the version
// is unknown. Unlike the Family method it separates the two lines.
func Family(v Version) string { return FamilyOn(v, Line(v)) }

// FamilyOn is the family of v's OS and SKU on the given line: the family a
// pool on the SecurityPatch channel is compared in even when the version it
// reports carries no suffix (ARM may leave it out).
func FamilyOn(v Version, line string) string {
	if !v.Known {
		return ""
	}
	if line == LineSecurityPatch {
		return v.Family() + familyLineSep + LineSecurityPatch
	}
	return v.Family()
}

// ReleaseDate is when the image was released, read from the version itself:
// the SecurityPatch suffix's date when it has one (the patched image is
// newer than its base), else the build's date (YYYYMM.DD, legacy
// YYYY.MM.DD, or Windows' YYMMDD). False for an unknown version.
func ReleaseDate(v Version) (time.Time, bool) {
	if !v.Known {
		return time.Time{}, false
	}
	d := v.BuildDate
	if v.PatchDate.After(d) {
		d = v.PatchDate
	}
	return d, !d.IsZero()
}
