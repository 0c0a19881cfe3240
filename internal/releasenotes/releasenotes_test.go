package releasenotes

import "testing"

// The paths follow the AgentBaker tree as published, checked file by file:
// AKSUbuntu/gen2/2204containerd/202412.04.0.txt,
// AKSAzureLinuxV3/gen2/202510.03.0.txt, AKSWindows/2022-containerd-gen2/20348.3692.250518.txt.
func TestURL(t *testing.T) {
	root := "https://github.com/Azure/AgentBaker/blob/master/vhdbuilder/release-notes/"
	cases := []struct{ image, want string }{
		{"AKSUbuntu-2204gen2containerd-202412.04.0", root + "AKSUbuntu/gen2/2204containerd/202412.04.0.txt"},
		{"AKSUbuntu-2204containerd-202505.27.0", root + "AKSUbuntu/gen1/2204containerd/202505.27.0.txt"},
		{"AKSUbuntu-2204gen2arm64containerd-202604.07.0", root + "AKSUbuntu/gen2/2204arm64containerd/202604.07.0.txt"},
		{"AKSUbuntu-2404gen2containerd-202611.03.0", root + "AKSUbuntu/gen2/2404containerd/202611.03.0.txt"},
		{"AKSAzureLinux-V3gen2-202510.03.0", root + "AKSAzureLinuxV3/gen2/202510.03.0.txt"},
		{"AKSAzureLinux-V2gen2-202501.12.0", root + "AKSAzureLinux/gen2/202501.12.0.txt"},
		{"AKSAzureLinux-V2-202409.16.0", root + "AKSAzureLinux/gen1/202409.16.0.txt"},
		{"AKSWindows-2022-containerd-gen2-20348.3692.250518", root + "AKSWindows/2022-containerd-gen2/20348.3692.250518.txt"},
		{"AKSWindows-2019-containerd-17763.7314.250518", root + "AKSWindows/2019-containerd/17763.7314.250518.txt"},
		// No notes in a known place: SecurityPatch builds, the legacy era,
		// flavours laid out differently, unknown grammar.
		{"AKSUbuntu-2204gen2containerd-202410.27.0-2024.12.01", ""},
		{"AKSUbuntu-1804gen2containerd-2022.08.29", ""},
		{"AKSAzureLinux-V3gen2arm64-202609.15.0", ""},
		{"AKSCBLMariner-V2gen2-202408.12.0", ""},
		{"ubuntu-22.04", ""},
		{"", ""},
		{`AKSUbuntu-2204gen2containerd-202412.04.0"><script>`, ""},
	}
	for _, tc := range cases {
		t.Run(tc.image, func(t *testing.T) {
			if got := URL(tc.image); got != tc.want {
				t.Errorf("URL(%q)\n got %q\nwant %q", tc.image, got, tc.want)
			}
		})
	}
}
