package deploy

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/meshguard/meshguard/test/cluster"
)

const (
	canaryNamespace = "meshguard-canary"
	canaryService   = "meshguard-canary"
)

// renderCanary renders a second, revisioned release next to the default one,
// as docs/operations.md describes for canary upgrades.
func renderCanary(t testing.TB, certMode string) string {
	t.Helper()
	out, err := helmTemplateIn(t, canaryNamespace, "--set", "revision=canary", "--set", "serviceName="+canaryService,
		"--set", "certMode="+certMode)
	if err != nil {
		t.Fatalf("render canary release: %v", err)
	}
	return out
}

// TestCanaryReleaseCoexists checks that a second release (another namespace,
// Service name and revision) shares no object with the default release and
// points everything at its own Service, Secrets and namespace.
func TestCanaryReleaseCoexists(t *testing.T) {
	for _, mode := range []string{"cert-manager", "self"} {
		t.Run(mode, func(t *testing.T) {
			main := parse(t, renderHelm(t, "--set", "certMode="+mode))
			canary := parse(t, renderCanary(t, mode))
			key := func(u *unstructured.Unstructured) string {
				return u.GetKind() + "/" + u.GetNamespace() + "/" + u.GetName()
			}
			taken := map[string]bool{}
			for _, u := range main.all {
				taken[key(u)] = true
			}
			for _, u := range canary.all {
				if taken[key(u)] {
					t.Errorf("%s is rendered by both releases", key(u))
				}
				if ns := u.GetNamespace(); ns != "" && ns != canaryNamespace {
					t.Errorf("%s: namespace %q, want %q", key(u), ns, canaryNamespace)
				}
			}
			mwc, vwc := canary.mutating(t), canary.validating(t)
			if vwc.Name != validatingName("canary") || len(vwc.Webhooks) != 1 ||
				vwc.Webhooks[0].ClientConfig.Service == nil || vwc.Webhooks[0].ClientConfig.Service.Name != canaryService {
				t.Errorf("validating configuration %s does not call the canary's Service: %+v", vwc.Name, vwc.Webhooks)
			}
			for _, w := range mwc.Webhooks {
				s := w.ClientConfig.Service
				if s == nil || s.Name != canaryService || s.Namespace != canaryNamespace {
					t.Errorf("webhook %s calls %+v, want Service %s/%s", w.Name, s, canaryNamespace, canaryService)
				}
				if !hasExpression(w.NamespaceSelector, "kubernetes.io/metadata.name", metav1.LabelSelectorOpNotIn, canaryNamespace) {
					t.Errorf("webhook %s does not exclude its own namespace: %v", w.Name, w.NamespaceSelector)
				}
			}
			if want := canaryNamespace + "/" + canaryService + "-ca"; mode == "cert-manager" && mwc.Annotations["cert-manager.io/inject-ca-from"] != want {
				t.Errorf("inject-ca-from %q, want %q", mwc.Annotations["cert-manager.io/inject-ca-from"], want)
			}
			args := canary.deployment(t).Spec.Template.Spec.Containers[0].Args
			for _, want := range []string{"--service-name=" + canaryService, "--cert-name=" + canaryService, "--revision=canary",
				"--leader-election-id=" + canaryService + "-leader"} {
				if !slices.Contains(args, want) {
					t.Errorf("args %v lack %s", args, want)
				}
			}
			// The Secrets it may read are its own.
			for _, r := range canary.roles(t) {
				for _, rule := range r.Rules {
					for _, n := range rule.ResourceNames {
						if !strings.HasPrefix(n, canaryService+"-") {
							t.Errorf("Role %s names Secret %q outside its own prefix", r.Name, n)
						}
					}
				}
			}
			if mode == "self" {
				for _, cr := range all[rbacv1.ClusterRole](t, canary, "ClusterRole") {
					for _, rule := range cr.Rules {
						if !slices.Contains(rule.Verbs, "patch") && !slices.Contains(rule.Verbs, "update") {
							continue // read-only names (the policy CRDs ext_authz watches)
						}
						for _, n := range rule.ResourceNames {
							if n != mwc.Name && n != vwc.Name {
								t.Errorf("ClusterRole %s may patch %q; the canary only owns %s and %s", cr.Name, n, mwc.Name, vwc.Name)
							}
						}
					}
				}
			}
			for _, u := range canary.find("Certificate") {
				if dns, _, _ := unstructured.NestedStringSlice(u.Object, "spec", "dnsNames"); len(dns) > 0 &&
					dns[0] != canaryService+"."+canaryNamespace+".svc" {
					t.Errorf("Certificate %s dnsNames %v", u.GetName(), dns)
				}
			}
		})
	}
}

// applyCanary is used by TestApplyToAPIServer: both releases' objects are
// accepted by the API server side by side.
func applyCanary(t *testing.T, c *cluster.Cluster, rendered string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := c.Kubectl(ctx, rendered, "apply", "--dry-run=server", "--validate=strict", "-f", "-")
	if err != nil {
		t.Fatalf("server-side dry run rejected the canary release: %v", err)
	}
	if got, want := strings.Count(out, "created (server dry run)"), len(parse(t, rendered).all); got != want {
		t.Errorf("%d of %d objects accepted:\n%s", got, want, out)
	}
}
