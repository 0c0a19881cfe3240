package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"

	"github.com/upgradewatch/upgradewatch/internal/auth"
)

const manifestDir = "../../infra/k8s"

// manifest is the part of a Kubernetes object these tests read.
type manifest struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name      string            `yaml:"name"`
		Namespace string            `yaml:"namespace"`
		Labels    map[string]string `yaml:"labels"`
	} `yaml:"metadata"`
	Rules           []map[string]any  `yaml:"rules"`
	AggregationRule any               `yaml:"aggregationRule"`
	RoleRef         map[string]string `yaml:"roleRef"`
	Subjects        []struct {
		Kind, Name, Namespace string
	} `yaml:"subjects"`
	StringData map[string]string `yaml:"stringData"`
	Data       map[string]string `yaml:"data"`
	Spec       cronJobSpec       `yaml:"spec"`
	Resources  []string          `yaml:"resources"`
	file       string
}

type cronJobSpec struct {
	Schedule                string `yaml:"schedule"`
	ConcurrencyPolicy       string `yaml:"concurrencyPolicy"`
	StartingDeadlineSeconds *int   `yaml:"startingDeadlineSeconds"`
	JobTemplate             struct {
		Spec struct {
			BackoffLimit          *int `yaml:"backoffLimit"`
			ActiveDeadlineSeconds *int `yaml:"activeDeadlineSeconds"`
			Template              struct {
				Spec podSpec `yaml:"spec"`
			} `yaml:"template"`
		} `yaml:"spec"`
	} `yaml:"jobTemplate"`
}

type podSpec struct {
	ServiceAccountName           string            `yaml:"serviceAccountName"`
	AutomountServiceAccountToken *bool             `yaml:"automountServiceAccountToken"`
	RestartPolicy                string            `yaml:"restartPolicy"`
	NodeSelector                 map[string]string `yaml:"nodeSelector"`
	HostNetwork                  bool              `yaml:"hostNetwork"`
	SecurityContext              struct {
		RunAsNonRoot   *bool `yaml:"runAsNonRoot"`
		RunAsUser      *int  `yaml:"runAsUser"`
		SeccompProfile struct {
			Type string `yaml:"type"`
		} `yaml:"seccompProfile"`
	} `yaml:"securityContext"`
	Containers []struct {
		Name  string `yaml:"name"`
		Image string `yaml:"image"`
		Env   []struct {
			Name      string `yaml:"name"`
			Value     string `yaml:"value"`
			ValueFrom struct {
				SecretKeyRef *struct {
					Name string `yaml:"name"`
					Key  string `yaml:"key"`
				} `yaml:"secretKeyRef"`
			} `yaml:"valueFrom"`
		} `yaml:"env"`
		SecurityContext struct {
			AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
			ReadOnlyRootFilesystem   *bool `yaml:"readOnlyRootFilesystem"`
			Privileged               bool  `yaml:"privileged"`
			Capabilities             struct {
				Drop []string `yaml:"drop"`
				Add  []string `yaml:"add"`
			} `yaml:"capabilities"`
		} `yaml:"securityContext"`
		Resources struct {
			Requests map[string]string `yaml:"requests"`
			Limits   map[string]string `yaml:"limits"`
		} `yaml:"resources"`
		VolumeMounts []struct {
			Name      string `yaml:"name"`
			MountPath string `yaml:"mountPath"`
			ReadOnly  bool   `yaml:"readOnly"`
		} `yaml:"volumeMounts"`
	} `yaml:"containers"`
	Volumes []struct {
		Name      string `yaml:"name"`
		Projected *struct {
			Sources []struct {
				ServiceAccountToken *struct {
					Audience          string `yaml:"audience"`
					ExpirationSeconds int    `yaml:"expirationSeconds"`
					Path              string `yaml:"path"`
				} `yaml:"serviceAccountToken"`
			} `yaml:"sources"`
		} `yaml:"projected"`
	} `yaml:"volumes"`
}

// loadManifests parses every YAML document under infra/k8s.
func loadManifests(t *testing.T) []manifest {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(manifestDir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in %s: %v", manifestDir, err)
	}
	var out []manifest
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		for {
			var m manifest
			if err := dec.Decode(&m); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			m.file = filepath.Base(f)
			out = append(out, m)
		}
	}
	return out
}

func only(t *testing.T, ms []manifest, kind string) manifest {
	t.Helper()
	var found []manifest
	for _, m := range ms {
		if m.Kind == kind {
			found = append(found, m)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d objects of kind %s, want 1", len(found), kind)
	}
	return found[0]
}

// readSettings returns every environment variable parseConfig reads.
func readSettings(t *testing.T) map[string]bool {
	t.Helper()
	valid := map[string]string{
		"KUBERNETES_SERVICE_HOST":   "10.0.0.1",
		"KUBERNETES_SERVICE_PORT":   "443",
		"UPGRADEWATCH_NODES_URL":    "https://uw.example/api/clusters/s/r/c/nodes",
		"UPGRADEWATCH_FUNCTION_KEY": "k",
		"UPGRADEWATCH_TIMEOUT":      "1m",
		"UPGRADEWATCH_LOG_LEVEL":    "info",
	}
	read := map[string]bool{}
	if _, err := parseConfig(func(k string) string { read[k] = true; return valid[k] }); err != nil {
		t.Fatal(err)
	}
	return read
}

func TestManifestRBAC(t *testing.T) {
	ms := loadManifests(t)
	for _, m := range ms {
		if m.Kind == "Role" || m.Kind == "RoleBinding" {
			t.Errorf("%s: unexpected %s %s: node-reporter needs one ClusterRole", m.file, m.Kind, m.Metadata.Name)
		}
	}
	role := only(t, ms, "ClusterRole")
	want := []map[string]any{{"apiGroups": []any{""}, "resources": []any{"nodes"}, "verbs": []any{"list"}}}
	if diff := cmp.Diff(want, role.Rules); diff != "" {
		t.Errorf("ClusterRole rules (-want +got):\n%s", diff)
	}
	if role.AggregationRule != nil {
		t.Errorf("ClusterRole aggregates other roles")
	}

	sa := only(t, ms, "ServiceAccount")
	binding := only(t, ms, "ClusterRoleBinding")
	if binding.RoleRef["kind"] != "ClusterRole" || binding.RoleRef["name"] != role.Metadata.Name {
		t.Errorf("binding roleRef %v, want ClusterRole %s", binding.RoleRef, role.Metadata.Name)
	}
	if len(binding.Subjects) != 1 || binding.Subjects[0].Kind != "ServiceAccount" ||
		binding.Subjects[0].Name != sa.Metadata.Name || binding.Subjects[0].Namespace != sa.Metadata.Namespace {
		t.Errorf("binding subjects %+v, want only ServiceAccount %s/%s", binding.Subjects, sa.Metadata.Namespace, sa.Metadata.Name)
	}
}

func TestManifestCronJob(t *testing.T) {
	ms := loadManifests(t)
	cj := only(t, ms, "CronJob")
	sa := only(t, ms, "ServiceAccount")
	ns := only(t, ms, "Namespace")
	secret := only(t, ms, "Secret")
	for _, m := range []manifest{cj, sa, secret} {
		if m.Metadata.Namespace != ns.Metadata.Name {
			t.Errorf("%s %s in namespace %q, want %q", m.Kind, m.Metadata.Name, m.Metadata.Namespace, ns.Metadata.Name)
		}
	}
	if ns.Metadata.Name != "upgradewatch" || sa.Metadata.Name != "node-reporter" {
		t.Errorf("namespace %q, service account %q; want upgradewatch, node-reporter", ns.Metadata.Name, sa.Metadata.Name)
	}

	s := cj.Spec
	if s.Schedule != "*/15 * * * *" || s.ConcurrencyPolicy != "Forbid" {
		t.Errorf("schedule %q concurrencyPolicy %q, want */15 * * * * and Forbid", s.Schedule, s.ConcurrencyPolicy)
	}
	job := s.JobTemplate.Spec
	if s.StartingDeadlineSeconds == nil || job.BackoffLimit == nil || job.ActiveDeadlineSeconds == nil {
		t.Fatalf("want startingDeadlineSeconds, backoffLimit and activeDeadlineSeconds set")
	}
	pod := job.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(pod.Containers))
	}
	c := pod.Containers[0]

	// The environment is what the program reads, and holds what it needs.
	read := readSettings(t)
	set := map[string]bool{}
	timeout := 5 * time.Minute
	for _, e := range c.Env {
		set[e.Name] = true
		if !read[e.Name] {
			t.Errorf("env %s is not a setting node-reporter reads", e.Name)
		}
		if strings.HasPrefix(e.Name, "KUBERNETES_") {
			t.Errorf("env %s: the kubelet sets it", e.Name)
		}
		if strings.Contains(e.Name, "KEY") && e.ValueFrom.SecretKeyRef == nil {
			t.Errorf("env %s is not taken from a Secret", e.Name)
		}
		if ref := e.ValueFrom.SecretKeyRef; ref != nil {
			_, ok := secret.StringData[ref.Key]
			if ref.Name != secret.Metadata.Name || !ok {
				t.Errorf("env %s refers to secret %s key %s, which the template does not define", e.Name, ref.Name, ref.Key)
			}
		}
		if e.Name == "UPGRADEWATCH_TIMEOUT" {
			d, err := time.ParseDuration(e.Value)
			if err != nil {
				t.Errorf("UPGRADEWATCH_TIMEOUT=%q: %v", e.Value, err)
			}
			timeout = d
		}
	}
	if !set["UPGRADEWATCH_NODES_URL"] || !(set["UPGRADEWATCH_FUNCTION_KEY"] || set["UPGRADEWATCH_FUNCTION_KEY_FILE"]) {
		t.Errorf("env %v lacks the URL or the function key", set)
	}
	if limit := time.Duration(*job.ActiveDeadlineSeconds) * time.Second; limit < timeout+time.Minute {
		t.Errorf("activeDeadlineSeconds %s leaves the %s retry budget no room", limit, timeout)
	}

	// Security.
	if pod.ServiceAccountName != sa.Metadata.Name || (pod.AutomountServiceAccountToken != nil && !*pod.AutomountServiceAccountToken) {
		t.Errorf("pod runs as %q (automount %v), want %s with its token", pod.ServiceAccountName, pod.AutomountServiceAccountToken, sa.Metadata.Name)
	}
	if pod.RestartPolicy != "Never" || pod.HostNetwork {
		t.Errorf("restartPolicy %q hostNetwork %v, want Never and false", pod.RestartPolicy, pod.HostNetwork)
	}
	if pod.NodeSelector["kubernetes.io/os"] != "linux" {
		t.Errorf("nodeSelector %v, want kubernetes.io/os: linux", pod.NodeSelector)
	}
	psc := pod.SecurityContext
	if psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0 || psc.SeccompProfile.Type != "RuntimeDefault" {
		t.Errorf("pod securityContext: runAsNonRoot %s, runAsUser %s, seccomp %q; want true, non-zero, RuntimeDefault",
			show(psc.RunAsNonRoot), show(psc.RunAsUser), psc.SeccompProfile.Type)
	}
	csc := c.SecurityContext
	if csc.AllowPrivilegeEscalation == nil || *csc.AllowPrivilegeEscalation || csc.ReadOnlyRootFilesystem == nil || !*csc.ReadOnlyRootFilesystem || csc.Privileged {
		t.Errorf("container securityContext: allowPrivilegeEscalation %s, readOnlyRootFilesystem %s, privileged %v; want false, true, false",
			show(csc.AllowPrivilegeEscalation), show(csc.ReadOnlyRootFilesystem), csc.Privileged)
	}
	if !slices.Equal(csc.Capabilities.Drop, []string{"ALL"}) || len(csc.Capabilities.Add) != 0 {
		t.Errorf("capabilities %+v, want drop ALL, add none", csc.Capabilities)
	}
	for _, r := range []string{"cpu", "memory"} {
		if c.Resources.Requests[r] == "" || c.Resources.Limits[r] == "" {
			t.Errorf("%s request %q limit %q, want both", r, c.Resources.Requests[r], c.Resources.Limits[r])
		}
	}

	// The image runs as the same non-root user.
	df, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	if psc.RunAsUser == nil || *psc.RunAsUser != 65532 || !bytes.Contains(df, []byte("\nUSER 65532:65532\n")) {
		t.Errorf("want runAsUser 65532, the Dockerfile's USER 65532:65532")
	}
}

// show prints an optional manifest value.
func show[T any](p *T) string {
	if p == nil {
		return "unset"
	}
	return fmt.Sprint(*p)
}

// TestManifestSecretTemplate keeps the template a template: placeholders only,
// and out of the kustomization so applying it never clobbers the real Secret.
func TestManifestSecretTemplate(t *testing.T) {
	ms := loadManifests(t)
	secret := only(t, ms, "Secret")
	if len(secret.Data) != 0 {
		t.Errorf("the Secret template has data; use stringData placeholders")
	}
	for k, v := range secret.StringData {
		if !strings.Contains(v, "<") || !strings.Contains(v, ">") {
			t.Errorf("stringData %s = %q is not a <placeholder>", k, v)
		}
	}
	k := only(t, ms, "Kustomization")
	var yamls []string
	for _, m := range ms {
		if m.Kind != "Kustomization" && m.Kind != "Secret" && !slices.Contains(yamls, m.file) {
			yamls = append(yamls, m.file)
		}
	}
	slices.Sort(yamls)
	got := slices.Sorted(slices.Values(k.Resources))
	if diff := cmp.Diff(yamls, got); diff != "" {
		t.Errorf("kustomization resources (-want +got): every manifest but the Secret template\n%s", diff)
	}
}

// TestManifestProjectedToken: the pod gets a short-lived token of its service
// account for upgradewatch's audience, mounted read-only where
// UPGRADEWATCH_TOKEN_FILE says, and the service account is the subject
// upgradewatch expects by default.
func TestManifestProjectedToken(t *testing.T) {
	ms := loadManifests(t)
	cj := only(t, ms, "CronJob")
	sa := only(t, ms, "ServiceAccount")
	if got := "system:serviceaccount:" + sa.Metadata.Namespace + ":" + sa.Metadata.Name; got != auth.DefaultSubject {
		t.Errorf("service account %s, upgradewatch expects %s (UPGRADEWATCH_NODE_TOKEN_SUBJECT)", got, auth.DefaultSubject)
	}
	pod := cj.Spec.JobTemplate.Spec.Template.Spec
	c := pod.Containers[0]
	file := DefaultTokenFile
	for _, e := range c.Env {
		if e.Name == "UPGRADEWATCH_TOKEN_FILE" {
			file = e.Value
		}
	}
	var mounted string
	for _, m := range c.VolumeMounts {
		if m.MountPath == filepath.Dir(file) {
			if !m.ReadOnly {
				t.Errorf("volume %s is mounted writable", m.Name)
			}
			mounted = m.Name
		}
	}
	if mounted == "" {
		t.Fatalf("nothing mounted at %s, where node-reporter reads its token", filepath.Dir(file))
	}
	var found bool
	for _, v := range pod.Volumes {
		if v.Name != mounted || v.Projected == nil {
			continue
		}
		for _, src := range v.Projected.Sources {
			tok := src.ServiceAccountToken
			if tok == nil {
				continue
			}
			found = true
			if tok.Audience != auth.DefaultAudience || tok.Path != filepath.Base(file) {
				t.Errorf("projected token audience %q path %q, want %q and %q", tok.Audience, tok.Path, auth.DefaultAudience, filepath.Base(file))
			}
			// Kubernetes' minimum is 600 s; a run lasts at most activeDeadlineSeconds.
			if tok.ExpirationSeconds < 600 || tok.ExpirationSeconds > 3600 {
				t.Errorf("expirationSeconds %d, want short-lived (600 to 3600)", tok.ExpirationSeconds)
			}
		}
	}
	if !found {
		t.Errorf("volume %s is not a projected serviceAccountToken", mounted)
	}
}
