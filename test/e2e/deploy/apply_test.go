package deploy

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/meshguard/meshguard/test/cluster"
)

// TestApplyToAPIServer applies every rendered object, and the examples, to a
// real kube-apiserver (Istio and cert-manager CRDs installed) with a
// server-side dry run and strict field validation, then applies the RBAC for
// real, asks the API server's authorizer what meshguard's ServiceAccount
// may do and runs meshguard as that ServiceAccount.
func TestApplyToAPIServer(t *testing.T) {
	t.Parallel() // the slow two (a build, a control plane) overlap
	// Render first: a broken chart should not cost a control-plane start.
	type rendered struct {
		p   packaging
		out string
		n   int
	}
	var all []rendered
	for _, p := range packagings() {
		out := p.render(t)
		all = append(all, rendered{p, out, len(parse(t, out).all)})
	}
	var examples []rendered
	for _, f := range []string{"meshconfig-extension-provider.yaml", "authorizationpolicy-custom.yaml"} {
		data, err := os.ReadFile(repoPath(t, "deploy", "examples", f))
		if err != nil {
			t.Fatalf("read example: %v", err)
		}
		examples = append(examples, rendered{packaging{name: "examples/" + f}, string(data), len(parse(t, string(data)).all)})
	}

	canary := renderCanary(t, "cert-manager")

	c := cluster.Start(t)
	for _, ns := range []string{namespace, canaryNamespace, otherNamespace, "demo", "istio-system"} {
		cluster.CreateNamespace(t, c, ns, nil)
	}
	for _, r := range append(all, examples...) {
		t.Run("dry-run/"+r.p.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			out, err := c.Kubectl(ctx, r.out, "apply", "--dry-run=server", "--validate=strict", "-f", "-")
			if err != nil {
				t.Fatalf("server-side dry run rejected the manifests: %v", err)
			}
			if got := strings.Count(out, "created (server dry run)"); got != r.n {
				t.Errorf("%d of %d objects accepted:\n%s", got, r.n, out)
			}
			if strings.Contains(strings.ToLower(out), "warning") {
				t.Errorf("the API server warned:\n%s", out)
			}
		})
	}

	t.Run("dry-run/helm/canary-release", func(t *testing.T) { applyCanary(t, c, canary) })

	// The real RBAC, asked through SubjectAccessReviews (kubectl auth can-i):
	// the chart's, and both packagings' in another namespace (there kustomize
	// needs more than its namespace transformer: the bindings must name the
	// ServiceAccount there).
	for _, r := range all {
		if r.p.revision != "" || !strings.HasPrefix(r.p.name, "helm/") && r.p.namespace == "" {
			continue
		}
		t.Run("rbac/"+r.p.name, func(t *testing.T) {
			applyRBAC(t, c, r.out)
			checkAccess(t, c, r.p)
		})
	}
	// Enough, too: the binary runs as the ServiceAccount, also with the
	// options that add grants (Istio's ConfigMaps, organisation rules).
	options := helmPackaging("cert-manager", "", "--set", "istioConfig.namespace=istio-system",
		"--set", "governance.rulesConfigMapSelector=meshguard.io/rules=true")
	options.name += "/istio-config+rules"
	for _, p := range []packaging{helmPackaging("cert-manager", ""), helmPackaging("self", ""), options} {
		t.Run("serve/"+p.name, func(t *testing.T) { serveUnderRBAC(t, c, p) })
	}
}

// applyRBAC applies the ServiceAccount and RBAC objects of a rendering for real.
func applyRBAC(t *testing.T, c *cluster.Cluster, rendered string) {
	t.Helper()
	var docs []string
	for _, u := range parse(t, rendered).all {
		switch u.GetKind() {
		case "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding":
			data, err := u.MarshalJSON()
			if err != nil {
				t.Fatalf("marshal %s %s: %v", u.GetKind(), u.GetName(), err)
			}
			docs = append(docs, string(data))
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if out, err := c.Kubectl(ctx, strings.Join(docs, "\n"), "apply", "--validate=strict", "-f", "-"); err != nil {
		t.Fatalf("apply RBAC: %v\n%s", err, out)
	}
}

// checkAccess asks the authorizer whether meshguard's ServiceAccount may do
// what it needs and nothing close to it that it does not need.
func checkAccess(t *testing.T, c *cluster.Cluster, p packaging) {
	t.Helper()
	self := p.certMode == "self"
	cases := []struct {
		args []string // verb, resource[/name], scope flags
		want bool
	}{
		{[]string{"watch", "pods", "-A"}, true},
		{[]string{"list", "namespaces"}, true},
		{[]string{"list", "services", "-n", "demo"}, true},
		{[]string{"get", "pods", "-n", "demo"}, false},
		{[]string{"list", "virtualservices.networking.istio.io", "-A"}, true},
		{[]string{"watch", "proxyconfigs.networking.istio.io", "-A"}, true},
		{[]string{"watch", "nodes"}, true},
		{[]string{"patch", "nodes"}, false},
		{[]string{"watch", "authorizationpolicies.security.istio.io", "-A"}, true},
		{[]string{"list", "telemetries.telemetry.istio.io", "-A"}, true},
		{[]string{"watch", "wasmplugins.extensions.istio.io", "-A"}, true},
		// --cert-mode=auto asks discovery, not the CRD (certs.DetectMode).
		{[]string{"get", "customresourcedefinitions.apiextensions.k8s.io/certificates.cert-manager.io"}, false},
		{[]string{"watch", "customresourcedefinitions.apiextensions.k8s.io/authorizationpolicies.security.istio.io"}, true},
		{[]string{"list", "customresourcedefinitions.apiextensions.k8s.io/peerauthentications.security.istio.io"}, true},
		{[]string{"watch", "customresourcedefinitions.apiextensions.k8s.io"}, false},
		{[]string{"create", "events", "-n", "demo"}, true},
		{[]string{"update", "leases.coordination.k8s.io", "-n", p.ns()}, true},
		{[]string{"get", "secrets/meshguard-serving-tls", "-n", p.ns()}, !self},
		{[]string{"watch", "secrets/meshguard-ca", "-n", p.ns()}, !self},
		{[]string{"get", "secrets/meshguard-self-tls", "-n", p.ns()}, self},
		{[]string{"update", "secrets/meshguard-self-ca", "-n", p.ns()}, self},
		{[]string{"create", "secrets", "-n", p.ns()}, self},
		{[]string{"create", "certificates.cert-manager.io", "-n", p.ns()}, !self},
		{[]string{"patch", "certificates.cert-manager.io", "-n", p.ns()}, !self},
		{[]string{"patch", "issuers.cert-manager.io", "-n", p.ns()}, !self},
		{[]string{"get", "issuers.cert-manager.io", "-n", p.ns()}, false},
		{[]string{"update", "certificates.cert-manager.io", "--subresource", "status", "-n", p.ns()}, !self},
		{[]string{"get", "mutatingwebhookconfigurations.admissionregistration.k8s.io/meshguard-sidecar-injector"}, true},
		{[]string{"get", "validatingwebhookconfigurations.admissionregistration.k8s.io/meshguard-validator"}, true},
		{[]string{"update", "mutatingwebhookconfigurations.admissionregistration.k8s.io/meshguard-sidecar-injector"}, self},
		{[]string{"update", "validatingwebhookconfigurations.admissionregistration.k8s.io/meshguard-validator"}, self},
		{[]string{"patch", "mutatingwebhookconfigurations.admissionregistration.k8s.io/meshguard-sidecar-injector"}, false},
		// Nothing beyond that.
		{[]string{"get", "secrets/other", "-n", p.ns()}, false},
		{[]string{"update", "secrets/meshguard-serving-tls", "-n", p.ns()}, false},
		{[]string{"get", "secrets/meshguard-ca", "-n", "demo"}, false},
		{[]string{"list", "secrets", "-A"}, false},
		{[]string{"update", "leases.coordination.k8s.io", "-n", "demo"}, false},
		{[]string{"create", "certificates.cert-manager.io", "-n", "demo"}, false},
		{[]string{"patch", "certificates.cert-manager.io", "-n", "demo"}, false},
		{[]string{"update", "mutatingwebhookconfigurations.admissionregistration.k8s.io/istio-sidecar-injector"}, false},
		{[]string{"get", "validatingwebhookconfigurations.admissionregistration.k8s.io/istio-validator-istio-system"}, false},
		{[]string{"list", "mutatingwebhookconfigurations.admissionregistration.k8s.io"}, false},
		{[]string{"delete", "pods", "-n", "demo"}, false},
		{[]string{"create", "pods", "-n", "demo"}, false},
		{[]string{"update", "virtualservices.networking.istio.io", "-n", "demo"}, false},
		{[]string{"delete", "events", "-n", "demo"}, false},
		{[]string{"update", "customresourcedefinitions.apiextensions.k8s.io/certificates.cert-manager.io"}, false},
		{[]string{"create", "clusterrolebindings.rbac.authorization.k8s.io"}, false},
	}
	canI := func(args []string) bool {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		args = append(append([]string{"auth", "can-i"}, args...), "--as", "system:serviceaccount:"+p.ns()+":"+serviceName)
		out, err := c.Kubectl(ctx, "", args...)
		// The answer is the first line; kubectl may add warnings (e.g. about a
		// namespace given for a cluster-scoped resource) after it.
		answer, _, _ := strings.Cut(strings.TrimSpace(out), "\n")
		answer = strings.TrimSpace(answer)
		var kerr *cluster.KubectlError
		if err != nil && !(errors.As(err, &kerr) && answer == "no") {
			t.Fatalf("kubectl %v: %v", args, err)
		}
		if answer != "yes" && answer != "no" {
			t.Fatalf("kubectl %v: unexpected answer %q", args, out)
		}
		return answer == "yes"
	}
	// The authorizer sees RBAC changes through informers: wait until every
	// grant is visible, then check the denials (polling too, for grants a
	// previous mode had and this one drops).
	for _, phase := range []bool{true, false} {
		for _, tc := range cases {
			if tc.want != phase {
				continue
			}
			err := cluster.Eventually(10*time.Second, func() error {
				if canI(tc.args) != tc.want {
					return fmt.Errorf("ServiceAccount can %v = %v, want %v", tc.args, !tc.want, tc.want)
				}
				return nil
			})
			if err != nil {
				t.Error(err)
			}
		}
	}
}
