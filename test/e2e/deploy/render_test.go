package deploy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"

	"github.com/meshguard/meshguard/test/cluster"
)

const (
	namespace   = "meshguard"
	kubeVersion = "v1.36.3"
)

// repoPath returns an absolute path inside the repository.
func repoPath(t testing.TB, elem ...string) string {
	t.Helper()
	root, err := cluster.RepoRoot()
	if err != nil {
		t.Fatalf("find repository root: %v", err)
	}
	return filepath.Join(append([]string{root}, elem...)...)
}

// helmBin returns bin/helm or fails the test with the command that installs it.
func helmBin(t testing.TB) string {
	t.Helper()
	bin := repoPath(t, "bin", "helm")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("%s is missing: run `make helm` (hack/helm.sh) to install helm from the Go module proxy: %v", bin, err)
	}
	return bin
}

// kubectlBin is the kubectl the cluster harness uses: bin/k8s/kubectl (built
// by `make k8s-bin`) when present, else the one on PATH.
func kubectlBin(t testing.TB) string {
	t.Helper()
	if bin := repoPath(t, "bin", "k8s", "kubectl"); fileExists(bin) {
		return bin
	}
	return "kubectl"
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// run executes a command and returns its stdout; a failure carries stderr.
func run(t testing.TB, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %w: %s", filepath.Base(name), strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// packaging is one way of rendering meshguard's manifests.
type packaging struct {
	name      string
	certMode  string // "cert-manager" or "self"
	revision  string // "" for the default revision
	namespace string // "" for the default namespace (meshguard)
	render    func(t testing.TB) string
}

// ns is the namespace the packaging installs into.
func (p packaging) ns() string {
	if p.namespace == "" {
		return namespace
	}
	return p.namespace
}

func helmPackaging(certMode, revision string, extra ...string) packaging {
	name := "helm/" + certMode
	if revision != "" {
		name += "/rev-" + revision
	}
	return packaging{name: name, certMode: certMode, revision: revision, render: func(t testing.TB) string {
		args := []string{"--set", "certMode=" + certMode, "--set", "revision=" + revision}
		return renderHelm(t, append(args, extra...)...)
	}}
}

func kustomizePackaging(overlay, certMode string) packaging {
	return packaging{name: "kustomize/" + overlay, certMode: certMode, render: func(t testing.TB) string {
		out, err := run(t, kubectlBin(t), "kustomize", repoPath(t, "deploy", "kustomize", "overlays", overlay))
		if err != nil {
			t.Fatalf("render overlay %s: %v", overlay, err)
		}
		return out
	}}
}

// packagings are every packaging the tests render, check and apply.
func packagings() []packaging {
	return append([]packaging{
		helmPackaging("cert-manager", ""),
		helmPackaging("self", ""),
		helmPackaging("cert-manager", "canary"),
		kustomizePackaging("cert-manager", "cert-manager"),
		kustomizePackaging("self-managed", "self"),
	}, otherNamespacePackagings()...)
}

// helmTemplate runs `helm template` on the chart in the meshguard namespace.
func helmTemplate(t testing.TB, args ...string) (string, error) {
	t.Helper()
	return helmTemplateIn(t, namespace, args...)
}

// helmTemplateIn renders the chart as release meshguard in namespace ns.
func helmTemplateIn(t testing.TB, ns string, args ...string) (string, error) {
	t.Helper()
	base := []string{"template", "meshguard", repoPath(t, "deploy", "helm", "meshguard"),
		"--namespace", ns, "--kube-version", kubeVersion}
	return run(t, helmBin(t), append(base, args...)...)
}

func renderHelm(t testing.TB, args ...string) string {
	t.Helper()
	out, err := helmTemplate(t, args...)
	if err != nil {
		t.Fatalf("render chart: %v", err)
	}
	return out
}

// manifests is a rendered set of objects, typed where the tests look inside.
type manifests struct {
	all []*unstructured.Unstructured
}

func parse(t testing.TB, rendered string) manifests {
	t.Helper()
	var m manifests
	dec := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(rendered), 4096)
	for {
		u := &unstructured.Unstructured{}
		if err := dec.Decode(&u.Object); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			t.Fatalf("decode rendered manifests: %v", err)
		}
		if len(u.Object) == 0 {
			continue
		}
		m.all = append(m.all, u)
	}
	if len(m.all) == 0 {
		t.Fatal("rendering produced no objects")
	}
	return m
}

// find returns the objects of one kind.
func (m manifests) find(kind string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, u := range m.all {
		if u.GetKind() == kind {
			out = append(out, u)
		}
	}
	return out
}

// one converts the single object of a kind into its typed form.
func one[T any](t testing.TB, m manifests, kind string) *T {
	t.Helper()
	objs := m.find(kind)
	if len(objs) != 1 {
		t.Fatalf("want exactly one %s, got %d", kind, len(objs))
	}
	return convert[T](t, objs[0])
}

func all[T any](t testing.TB, m manifests, kind string) []*T {
	t.Helper()
	var out []*T
	for _, u := range m.find(kind) {
		out = append(out, convert[T](t, u))
	}
	return out
}

func convert[T any](t testing.TB, u *unstructured.Unstructured) *T {
	t.Helper()
	out := new(T)
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(u.Object, out, true); err != nil {
		t.Fatalf("%s %s: %v", u.GetKind(), u.GetName(), err)
	}
	return out
}

// Typed accessors for the kinds the tests inspect.
func (m manifests) mutating(t testing.TB) *admissionregistrationv1.MutatingWebhookConfiguration {
	return one[admissionregistrationv1.MutatingWebhookConfiguration](t, m, "MutatingWebhookConfiguration")
}

func (m manifests) validating(t testing.TB) *admissionregistrationv1.ValidatingWebhookConfiguration {
	return one[admissionregistrationv1.ValidatingWebhookConfiguration](t, m, "ValidatingWebhookConfiguration")
}

func (m manifests) deployment(t testing.TB) *appsv1.Deployment {
	return one[appsv1.Deployment](t, m, "Deployment")
}

func (m manifests) service(t testing.TB) *corev1.Service { return one[corev1.Service](t, m, "Service") }

func (m manifests) pdb(t testing.TB) *policyv1.PodDisruptionBudget {
	return one[policyv1.PodDisruptionBudget](t, m, "PodDisruptionBudget")
}

func (m manifests) clusterRoles(t testing.TB) []*rbacv1.ClusterRole {
	return all[rbacv1.ClusterRole](t, m, "ClusterRole")
}

func (m manifests) roles(t testing.TB) []*rbacv1.Role { return all[rbacv1.Role](t, m, "Role") }

func (m manifests) configMap(t testing.TB) *corev1.ConfigMap {
	return one[corev1.ConfigMap](t, m, "ConfigMap")
}

// TestChartGuardsLeaderlessReplicas and the webhook-configuration RBAC: a
// release without leader election and more than one replica does not render
// (every replica would rotate the CA, write caBundle and run the audit);
// with one webhook turned off the role still names both configurations, which
// the binary reads whichever it installs (self mode issues no certificate
// while one is forbidden); an enabled audit with a zero interval does not
// render either.
func TestChartGuardsLeaderlessReplicas(t *testing.T) {
	if _, err := helmTemplate(t, "--set", "leaderElection.enabled=false"); err == nil || !strings.Contains(err.Error(), "leaderElection.enabled=false needs replicas: 1") {
		t.Errorf("leaderless release with 2 replicas rendered: %v", err)
	}
	if _, err := helmTemplate(t, "--set", "leaderElection.enabled=false", "--set", "replicas=1"); err != nil {
		t.Errorf("leaderless release with 1 replica: %v", err)
	}
	// --audit-interval=0 disables the audit: an enabled one must not render so.
	for _, iv := range []string{"0s", "0m0s", "0.0h", "00ms"} {
		if _, err := helmTemplate(t, "--set", "governance.audit.enabled=true", "--set", "governance.audit.interval="+iv); err == nil ||
			!strings.Contains(err.Error(), "governance.audit.interval must be above zero") {
			t.Errorf("enabled audit with interval %s rendered: %v", iv, err)
		}
	}
	for _, iv := range []string{"10m", "0.5s", "1h0m"} {
		if _, err := helmTemplate(t, "--set", "governance.audit.enabled=true", "--set", "governance.audit.interval="+iv); err != nil {
			t.Errorf("enabled audit with interval %s: %v", iv, err)
		}
	}
	out := renderHelm(t, "--set", "certMode=self", "--set", "webhooks.validation.enabled=false")
	for _, want := range []string{`resourceNames: ["meshguard-sidecar-injector"]`, `resourceNames: ["meshguard-validator"]`} {
		if !strings.Contains(out, want) {
			t.Errorf("webhook-ca role lacks %s with the validation webhook off", want)
		}
	}
}

// typedScheme knows every kind the chart renders.
func typedScheme(t testing.TB) *runtime.Scheme {
	t.Helper()
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, cmapi.AddToScheme} {
		if err := add(s); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// decodeAllTyped converts every rendered object into its typed form, so a
// name or label value YAML reads as a number or a boolean fails the test.
func decodeAllTyped(t testing.TB, m manifests) []metav1.Object {
	t.Helper()
	s := typedScheme(t)
	var out []metav1.Object
	for _, u := range m.all {
		obj, err := s.New(u.GroupVersionKind())
		if err != nil {
			t.Fatalf("rendered kind %s: %v", u.GroupVersionKind(), err)
		}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(u.Object, obj, true); err != nil {
			t.Errorf("%s %v: %v", u.GetKind(), u.Object["metadata"], err)
			continue
		}
		out = append(out, obj.(metav1.Object))
	}
	return out
}

// TestChartQuotesNames: names, namespaces and label values YAML would read
// as numbers or booleans (revision 123, true, on, 1e3; serviceName on; a
// namespace 123) stay strings in every rendered object.
func TestChartQuotesNames(t *testing.T) {
	cases := []struct {
		ns  string
		set []string
	}{
		{namespace, []string{"revision=123"}},
		{namespace, []string{"revision=true"}},
		{namespace, []string{"revision=on", "certMode=self"}},
		{namespace, []string{"revision=1e3"}},
		{namespace, []string{"revision=0x1f", "istioConfig.namespace=0123"}},
		{namespace, []string{"serviceName=on"}},
		{namespace, []string{"serviceName=null", "certMode=self"}},
		{"123", []string{"serviceName=yes"}},
		{"true", []string{"podDisruptionBudget.maxUnavailable=50%", "image.tag=1.10"}},
	}
	for _, tc := range cases {
		name := tc.ns + "/" + strings.Join(tc.set, ",")
		t.Run(name, func(t *testing.T) {
			var args []string
			for _, s := range tc.set {
				args = append(args, "--set-string", s)
			}
			out, err := helmTemplateIn(t, tc.ns, args...)
			if err != nil {
				t.Fatalf("render: %v", err)
			}
			m := parse(t, out)
			objs := decodeAllTyped(t, m)
			if len(objs) != len(m.all) {
				return
			}
			for _, o := range objs {
				if rev, ok := o.GetLabels()["istio.io/rev"]; ok && strings.HasPrefix(tc.set[0], "revision=") && rev != strings.TrimPrefix(tc.set[0], "revision=") {
					t.Errorf("%s: istio.io/rev %q", o.GetName(), rev)
				}
				if o.GetName() == "" {
					t.Errorf("an object has no name: %#v", o)
				}
			}
			d := m.deployment(t)
			if strings.HasPrefix(tc.set[0], "serviceName=") && d.Name != strings.TrimPrefix(tc.set[0], "serviceName=") {
				t.Errorf("Deployment name %q, want %s", d.Name, tc.set[0])
			}
		})
	}
}

// TestChartLeaderlessUpgradeRecreates: without leader election (one replica)
// an upgrade replaces the pod instead of surging a second one, which would
// run a second leaderless replica rotating the CA, patching caBundle and
// running the audit beside the first; with it, the rollout never drops
// below the desired count.
func TestChartLeaderlessUpgradeRecreates(t *testing.T) {
	d := parse(t, renderHelm(t, "--set", "leaderElection.enabled=false", "--set", "replicas=1")).deployment(t)
	if d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType || d.Spec.Strategy.RollingUpdate != nil {
		t.Errorf("leaderless strategy %+v, want Recreate", d.Spec.Strategy)
	}
	d = parse(t, renderHelm(t)).deployment(t)
	ru := d.Spec.Strategy.RollingUpdate
	if d.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType || ru == nil ||
		ru.MaxSurge.String() != "1" || ru.MaxUnavailable.String() != "0" {
		t.Errorf("leader-elected strategy %+v, want RollingUpdate maxSurge 1 maxUnavailable 0", d.Spec.Strategy)
	}
}
