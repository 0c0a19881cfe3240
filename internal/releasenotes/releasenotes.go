// Package releasenotes links a node image version to what AKS publishes
// about it: its release notes in the AgentBaker repository, and the AKS
// release tracker. Pure functions, imported by the dashboard and the chat
// cards alike.
package releasenotes

import (
	"regexp"
	"strings"

	"github.com/upgradewatch/upgradewatch/internal/versions"
)

// root is where AKS publishes what each node image contains: the
// AgentBaker repository's vhdbuilder/release-notes tree, one file per image
// version.
const root = "https://github.com/Azure/AgentBaker/blob/master/vhdbuilder/release-notes/"

// TrackerURL is the AKS release tracker: which release, and so which
// node image, has reached which region.
const TrackerURL = "https://releases.aks.azure.com/"

var (
	// Ubuntu SKUs: <release><gen2?><flavour>, e.g. 2204gen2containerd,
	// 2204gen2arm64containerd, 2204containerd (generation 1).
	ubuntuSKU = regexp.MustCompile(`^(\d{4})(gen2)?([a-z0-9]*containerd)$`)
	// Azure Linux SKUs: V<major><gen2?>, e.g. V3gen2, V2gen2, V3.
	azureLinuxSKU = regexp.MustCompile(`^V([23])(gen2)?$`)
	// Windows SKUs: 2019-containerd, 2022-containerd(-gen2), 2025(-gen2), 23H2(-gen2).
	windowsSKU = regexp.MustCompile(`^(2019|2022|2025|23H2)(-containerd)?(-gen2)?$`)
)

// URL is the link to the release notes of a node image version,
// or "" when AKS publishes none for it in a place this knows. The tree is
// laid out per OS family and version era:
//
//   - Ubuntu:      AKSUbuntu/gen1|gen2/<release><flavour>/<build>.txt, where the
//     folder drops the "gen2" from the SKU (2204gen2arm64containerd →
//     gen2/2204arm64containerd); builds of the YYYYMM.DD.P era only (the
//     older YYYY.MM.DD notes sit in folders of another layout).
//   - Azure Linux: V2 under AKSAzureLinux/gen1|gen2, V3 under
//     AKSAzureLinuxV3/gen1|gen2; other Azure Linux flavours (arm64, CVM,
//     FIPS) and CBL-Mariner are laid out differently and get no link.
//   - Windows:     AKSWindows/<sku>/<build>.txt (2022-containerd-gen2).
//
// SecurityPatch images (a -YYYY.MM.DD suffix) are not AgentBaker builds and
// have no notes there.
func URL(image string) string {
	v := versions.Parse(image)
	if !v.Known || v.Patch != "" {
		return ""
	}
	dir := notesDir(v)
	if dir == "" {
		return ""
	}
	return root + dir + "/" + v.Build + ".txt"
}

func notesDir(v versions.Version) string {
	modern := len(v.Build) >= 6 && !strings.Contains(v.Build[:5], ".") // YYYYMM.DD.P, not YYYY.MM.DD
	switch v.OS {
	case "AKSUbuntu":
		m := ubuntuSKU.FindStringSubmatch(v.SKU)
		if m == nil || !modern {
			return ""
		}
		return "AKSUbuntu/" + gen(m[2]) + "/" + m[1] + m[3]
	case "AKSAzureLinux":
		m := azureLinuxSKU.FindStringSubmatch(v.SKU)
		if m == nil || !modern {
			return ""
		}
		folder := "AKSAzureLinux"
		if m[1] == "3" {
			folder = "AKSAzureLinuxV3"
		}
		return folder + "/" + gen(m[2])
	case "AKSWindows":
		if !windowsSKU.MatchString(v.SKU) {
			return ""
		}
		return "AKSWindows/" + v.SKU
	}
	return ""
}

func gen(g string) string {
	if g == "" {
		return "gen1"
	}
	return "gen2"
}
