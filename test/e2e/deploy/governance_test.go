package deploy

import (
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/equality"
)

// The chart's governance values: the audit (on by default) adds
// --audit-interval and the PolicyReport grants, a rules ConfigMap selector
// adds --rego-configmap-selector and list/watch of ConfigMaps in meshguard's
// namespace only; `helm template --include-crds` ships the PolicyReport CRD,
// and deploy/kustomize/crds the same one.
func TestChartGovernanceOptions(t *testing.T) {
	grants := func(m manifests) (cluster, ns []string) {
		for _, cr := range m.clusterRoles(t) {
			for _, g := range grantsOf(t, "cluster", cr.Name, cr.Rules) {
				cluster = append(cluster, g.String())
			}
		}
		for _, r := range m.roles(t) {
			for _, g := range grantsOf(t, namespace, r.Name, r.Rules) {
				ns = append(ns, g.String())
			}
		}
		return cluster, ns
	}
	def := parse(t, renderHelm(t))
	args := def.deployment(t).Spec.Template.Spec.Containers[0].Args
	cluster, ns := grants(def)
	if !slices.Contains(args, "--audit-interval=10m") || !slices.Contains(cluster, "cluster update wgpolicyk8s.io/policyreports") {
		t.Errorf("defaults: audit args %v / grants %v", args, cluster)
	}
	if slices.ContainsFunc(ns, func(g string) bool { return strings.Contains(g, "configmaps") }) {
		t.Errorf("defaults grant ConfigMaps: %v", ns)
	}

	m := parse(t, renderHelm(t, "--set", "governance.audit.enabled=false", "--set", "governance.rulesConfigMapSelector=meshguard.io/rules=true"))
	args = m.deployment(t).Spec.Template.Spec.Containers[0].Args
	cluster, ns = grants(m)
	if slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, "--audit-interval") }) ||
		slices.ContainsFunc(cluster, func(g string) bool { return strings.Contains(g, "policyreports") }) {
		t.Errorf("audit disabled: args %v, grants %v", args, cluster)
	}
	if !slices.Contains(args, "--rego-configmap-selector=meshguard.io/rules=true") ||
		!slices.Contains(ns, namespace+" watch /configmaps") || slices.ContainsFunc(cluster, func(g string) bool { return strings.Contains(g, "configmaps") }) {
		t.Errorf("rules selector: args %v, namespace grants %v", args, ns)
	}

	withCRDs := parse(t, renderHelm(t, "--include-crds"))
	found := false
	for _, crd := range withCRDs.find("CustomResourceDefinition") {
		found = found || crd.GetName() == "policyreports.wgpolicyk8s.io"
	}
	if !found {
		t.Error("the chart ships no PolicyReport CRD")
	}
	// The kustomize tree ships the same CRD (deploy/kustomize/crds).
	out, err := run(t, kubectlBin(t), "kustomize", repoPath(t, "deploy", "kustomize", "crds"))
	if err != nil {
		t.Fatalf("kubectl kustomize deploy/kustomize/crds: %v", err)
	}
	kCRDs := parse(t, out).find("CustomResourceDefinition")
	var hCRD any
	for _, crd := range withCRDs.find("CustomResourceDefinition") {
		if crd.GetName() == "policyreports.wgpolicyk8s.io" {
			hCRD = crd.Object
		}
	}
	if len(kCRDs) != 1 || !equality.Semantic.DeepEqual(kCRDs[0].Object, hCRD) {
		t.Errorf("deploy/kustomize/crds renders %d CRDs, want the chart's PolicyReport CRD", len(kCRDs))
	}
	if _, err := helmTemplate(t, "--set", "governance.audit.interval=often"); err == nil {
		t.Error("a non-duration audit interval was accepted")
	}
}
