package deploy

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"github.com/meshguard/meshguard/test/cluster"
)

const (
	serviceName     = "meshguard"
	servingCertName = "meshguard-serving"
	caCertName      = "meshguard-ca"
)

func validatingName(revision string) string {
	if revision == "" {
		return "meshguard-validator"
	}
	return "meshguard-validator-" + revision
}

func mutatingName(revision string) string {
	if revision == "" {
		return "meshguard-sidecar-injector"
	}
	return "meshguard-sidecar-injector-" + revision
}

// TestRenderedManifests checks every packaging for the objects and settings
// docs/operations.md lists ("What gets installed", "Permissions").
func TestRenderedManifests(t *testing.T) {
	for _, p := range packagings() {
		t.Run(p.name, func(t *testing.T) {
			m := parse(t, p.render(t))
			checkInventory(t, m, p)
			checkMutating(t, m, p)
			checkValidating(t, m, p)
			checkRBAC(t, m, p)
			checkDeployment(t, m, p)
			checkService(t, m)
			checkCertManager(t, m, p)
		})
	}
}

// TestChartCertManagerDurations: durations set in the chart's values reach
// both the Certificates and the flags the leader applies them with.
func TestChartCertManagerDurations(t *testing.T) {
	p := helmPackaging("cert-manager", "", "--set", "certManager.caDuration=8760h",
		"--set", "certManager.servingDuration=720h", "--set", "certManager.servingRenewBefore=240h")
	checkDeployment(t, parse(t, p.render(t)), p)
}

func checkInventory(t *testing.T, m manifests, p packaging) {
	t.Helper()
	want := map[string]int{
		"ServiceAccount": 1, "ClusterRole": 2, "ClusterRoleBinding": 2, "Role": 1, "RoleBinding": 1,
		"ConfigMap": 1, "Service": 1, "Deployment": 1, "PodDisruptionBudget": 1,
		"MutatingWebhookConfiguration": 1, "ValidatingWebhookConfiguration": 1,
	}
	if p.certMode == "cert-manager" {
		want["Issuer"], want["Certificate"] = 2, 2
	}
	got := map[string]int{}
	for _, u := range m.all {
		got[u.GetKind()]++
		clusterScoped := strings.HasPrefix(u.GetKind(), "Cluster") || strings.HasSuffix(u.GetKind(), "WebhookConfiguration")
		if clusterScoped && u.GetNamespace() != "" {
			t.Errorf("%s %s: cluster-scoped object has namespace %q", u.GetKind(), u.GetName(), u.GetNamespace())
		}
		if !clusterScoped && u.GetNamespace() != p.ns() {
			t.Errorf("%s %s: namespace %q, want %q", u.GetKind(), u.GetName(), u.GetNamespace(), p.ns())
		}
	}
	for kind, n := range want {
		if got[kind] != n {
			t.Errorf("%d %s objects, want %d", got[kind], kind, n)
		}
	}
	for kind := range got {
		if _, ok := want[kind]; !ok {
			t.Errorf("unexpected kind %s", kind)
		}
	}
}

func checkMutating(t *testing.T, m manifests, p packaging) {
	t.Helper()
	mwc := m.mutating(t)
	if mwc.Name != mutatingName(p.revision) {
		t.Errorf("MutatingWebhookConfiguration name %q, want %q", mwc.Name, mutatingName(p.revision))
	}
	wantNames := []string{"rev.namespace.sidecar-injector.meshguard.io", "rev.object.sidecar-injector.meshguard.io"}
	if p.revision == "" {
		wantNames = append(wantNames, "namespace.sidecar-injector.meshguard.io", "object.sidecar-injector.meshguard.io")
	}
	var gotNames []string
	for _, w := range mwc.Webhooks {
		gotNames = append(gotNames, w.Name)
		where := fmt.Sprintf("%s webhook %s", mwc.Name, w.Name)
		checkClientConfig(t, where, w.ClientConfig, p.ns(), "/inject")
		checkPolicy(t, where, w.FailurePolicy, w.SideEffects, w.TimeoutSeconds)
		if !slices.Equal(w.AdmissionReviewVersions, []string{"v1"}) {
			t.Errorf("%s: admissionReviewVersions %v, want [v1]", where, w.AdmissionReviewVersions)
		}
		if w.ReinvocationPolicy == nil || *w.ReinvocationPolicy != admissionregistrationv1.IfNeededReinvocationPolicy {
			t.Errorf("%s: reinvocationPolicy %v, want IfNeeded", where, w.ReinvocationPolicy)
		}
		wantRule := admissionregistrationv1.RuleWithOperations{
			Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
			Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}},
		}
		if len(w.Rules) != 1 || !slices.Equal(w.Rules[0].Operations, wantRule.Operations) ||
			!slices.Equal(w.Rules[0].APIGroups, wantRule.APIGroups) || !slices.Equal(w.Rules[0].APIVersions, wantRule.APIVersions) ||
			!slices.Equal(w.Rules[0].Resources, wantRule.Resources) {
			t.Errorf("%s: rules %+v, want only CREATE of core/v1 pods", where, w.Rules)
		}
		if !hasExpression(w.NamespaceSelector, "kubernetes.io/metadata.name", metav1.LabelSelectorOpNotIn, p.ns()) {
			t.Errorf("%s: namespaceSelector %v does not exclude meshguard's own namespace", where, w.NamespaceSelector)
		}
		if !hasExpression(w.ObjectSelector, "sidecar.istio.io/inject", metav1.LabelSelectorOpNotIn, "false") &&
			!hasExpression(w.ObjectSelector, "sidecar.istio.io/inject", metav1.LabelSelectorOpIn, "true") {
			t.Errorf("%s: objectSelector %v ignores the sidecar.istio.io/inject label", where, w.ObjectSelector)
		}
	}
	if !slices.Equal(gotNames, wantNames) {
		t.Errorf("mutating webhook entries %v, want %v", gotNames, wantNames)
	}
	checkCAAnnotation(t, "MutatingWebhookConfiguration "+mwc.Name, mwc.Annotations, p)
}

func checkValidating(t *testing.T, m manifests, p packaging) {
	t.Helper()
	vwc := m.validating(t)
	if vwc.Name != validatingName(p.revision) {
		t.Errorf("ValidatingWebhookConfiguration name %q, want %q", vwc.Name, validatingName(p.revision))
	}
	if len(vwc.Webhooks) != 1 {
		t.Fatalf("%s: %d webhooks, want 1", vwc.Name, len(vwc.Webhooks))
	}
	// istiod's validation controller (Istio's pkg/webhooks/validation/controller,
	// updateValidatingWebhookConfiguration) sets its own CA as the caBundle of every
	// webhook of every configuration labelled istio.io/rev=<its revision>: with
	// that label, an istiod of the same revision broke meshguard's TLS to /validate.
	if rev, ok := vwc.Labels["istio.io/rev"]; ok {
		t.Errorf("%s: labelled istio.io/rev=%s, which istiod's validation controller selects to patch", vwc.Name, rev)
	}
	w := vwc.Webhooks[0]
	where := fmt.Sprintf("%s webhook %s", vwc.Name, w.Name)
	checkClientConfig(t, where, w.ClientConfig, p.ns(), "/validate")
	checkPolicy(t, where, w.FailurePolicy, w.SideEffects, w.TimeoutSeconds)
	if !slices.Contains(w.AdmissionReviewVersions, "v1") {
		t.Errorf("%s: admissionReviewVersions %v lack v1", where, w.AdmissionReviewVersions)
	}
	if !hasExpression(w.NamespaceSelector, "kubernetes.io/metadata.name", metav1.LabelSelectorOpNotIn, p.ns()) {
		t.Errorf("%s: namespaceSelector %v does not exclude meshguard's own namespace", where, w.NamespaceSelector)
	}
	if len(w.Rules) != 1 {
		t.Fatalf("%s: %d rules, want 1", where, len(w.Rules))
	}
	r := w.Rules[0]
	groups := slices.Sorted(slices.Values(r.APIGroups))
	wantGroups := []string{"extensions.istio.io", "networking.istio.io", "security.istio.io", "telemetry.istio.io"}
	if !slices.Equal(groups, wantGroups) {
		t.Errorf("%s: apiGroups %v, want %v", where, groups, wantGroups)
	}
	wantOps := []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update}
	if !slices.Equal(r.Operations, wantOps) {
		t.Errorf("%s: operations %v, want %v", where, r.Operations, wantOps)
	}
	if !slices.Equal(r.Resources, []string{"*"}) || !slices.Equal(r.APIVersions, []string{"*"}) {
		t.Errorf("%s: resources %v versions %v, want every resource (no subresources) of every version", where, r.Resources, r.APIVersions)
	}
	// The default revision validates every object; a revision only its own.
	for _, obj := range []labels.Set{{}, {"istio.io/rev": "default"}, {"istio.io/rev": "canary"}, {"app": "x"}} {
		want := p.revision == "" || obj["istio.io/rev"] == p.revision
		if got := selects(t, w.ObjectSelector, obj); got != want {
			t.Errorf("%s: objectSelector %v selects an object labelled %v = %v, want %v", where, w.ObjectSelector, obj, got, want)
		}
	}
	checkCAAnnotation(t, "ValidatingWebhookConfiguration "+vwc.Name, vwc.Annotations, p)
}

func checkClientConfig(t *testing.T, where string, cc admissionregistrationv1.WebhookClientConfig, ns, path string) {
	t.Helper()
	s := cc.Service
	if cc.URL != nil || s == nil {
		t.Fatalf("%s: clientConfig %+v, want a Service reference", where, cc)
	}
	if s.Name != serviceName || s.Namespace != ns || s.Path == nil || *s.Path != path || s.Port == nil || *s.Port != 443 {
		t.Errorf("%s: service %s/%s path %v port %v, want %s/%s %s 443", where, s.Namespace, s.Name, s.Path, s.Port, ns, serviceName, path)
	}
	if len(cc.CABundle) != 0 {
		t.Errorf("%s: caBundle must be left to cert-manager or meshguard, got %d bytes", where, len(cc.CABundle))
	}
}

func checkPolicy(t *testing.T, where string, fp *admissionregistrationv1.FailurePolicyType, se *admissionregistrationv1.SideEffectClass,
	timeout *int32,
) {
	t.Helper()
	if fp == nil || *fp != admissionregistrationv1.Fail {
		t.Errorf("%s: failurePolicy %v, want Fail", where, fp)
	}
	if se == nil || *se != admissionregistrationv1.SideEffectClassNone {
		t.Errorf("%s: sideEffects %v, want None", where, se)
	}
	if timeout == nil || *timeout != 10 {
		t.Errorf("%s: timeoutSeconds %v, want an explicit 10", where, timeout)
	}
}

func checkCAAnnotation(t *testing.T, where string, annotations map[string]string, p packaging) {
	t.Helper()
	got, ok := annotations["cert-manager.io/inject-ca-from"]
	switch {
	case p.certMode == "cert-manager" && got != p.ns()+"/"+caCertName:
		t.Errorf("%s: cert-manager.io/inject-ca-from %q, want the CA Certificate %q", where, got, p.ns()+"/"+caCertName)
	case p.certMode == "self" && ok:
		t.Errorf("%s: certMode self must not ask cainjector for the caBundle (meshguard patches it), got %q", where, got)
	}
}

func hasExpression(sel *metav1.LabelSelector, key string, op metav1.LabelSelectorOperator, value string) bool {
	if sel == nil {
		return false
	}
	for _, e := range sel.MatchExpressions {
		if e.Key == key && e.Operator == op && slices.Contains(e.Values, value) {
			return true
		}
	}
	return false
}

// TestInjectionSelectors evaluates the rendered selectors the way the API
// server does: for every namespace/pod labelling at most one entry may call
// /inject (no double injection), and the one that does follows Istio's
// enable matrix (Istio's mutatingwebhook.yaml) plus the own-namespace exclusion.
func TestInjectionSelectors(t *testing.T) {
	type labelsMap = map[string]string
	cases := []struct {
		name      string
		ns        string
		nsLabels  labelsMap
		podLabels labelsMap
		// entry (without ".sidecar-injector.meshguard.io") that calls /inject, "" for none
		wantDefault, wantCanary string
	}{
		{"injection-enabled namespace", "apps", labelsMap{"istio-injection": "enabled"}, nil, "namespace", ""},
		{"pod opts out by label", "apps", labelsMap{"istio-injection": "enabled"}, labelsMap{"sidecar.istio.io/inject": "false"}, "", ""},
		{"namespace disabled beats pod opt-in", "apps", labelsMap{"istio-injection": "disabled"}, labelsMap{"sidecar.istio.io/inject": "true"}, "", ""},
		{"unlabelled namespace and pod", "apps", nil, nil, "", ""},
		{"pod opt-in in unlabelled namespace", "apps", nil, labelsMap{"sidecar.istio.io/inject": "true"}, "object", ""},
		{"namespace on default revision", "apps", labelsMap{"istio.io/rev": "default"}, nil, "rev.namespace", ""},
		{"namespace on canary revision", "apps", labelsMap{"istio.io/rev": "canary"}, nil, "", "rev.namespace"},
		{"canary namespace, pod opts out", "apps", labelsMap{"istio.io/rev": "canary"}, labelsMap{"sidecar.istio.io/inject": "false"}, "", ""},
		{"pod on default revision", "apps", nil, labelsMap{"istio.io/rev": "default"}, "rev.object", ""},
		{"pod on default revision and opted in", "apps", nil, labelsMap{"istio.io/rev": "default", "sidecar.istio.io/inject": "true"}, "rev.object", ""},
		{"pod on canary revision and opted in", "apps", nil, labelsMap{"istio.io/rev": "canary", "sidecar.istio.io/inject": "true"}, "", "rev.object"},
		{"istio-injection wins over namespace rev", "apps", labelsMap{"istio-injection": "enabled", "istio.io/rev": "canary"}, nil, "namespace", ""},
		{"istio-injection wins over pod rev", "apps", labelsMap{"istio-injection": "enabled"}, labelsMap{"istio.io/rev": "canary"}, "namespace", ""},
		{"namespace rev wins over pod rev", "apps", labelsMap{"istio.io/rev": "canary"}, labelsMap{"istio.io/rev": "default"}, "", "rev.namespace"},
		{"own namespace labelled for injection", namespace, labelsMap{"istio-injection": "enabled"}, nil, "", ""},
		{"own namespace on canary", namespace, labelsMap{"istio.io/rev": "canary"}, nil, "", ""},
		{"own namespace, pod opted in", namespace, nil, labelsMap{"sidecar.istio.io/inject": "true", "istio.io/rev": "canary"}, "", ""},
	}
	installs := []struct {
		name string
		mwc  *admissionregistrationv1.MutatingWebhookConfiguration
		want func(i int) string
	}{
		{"default", parse(t, renderHelm(t)).mutating(t), func(i int) string { return cases[i].wantDefault }},
		{"canary", parse(t, renderHelm(t, "--set", "revision=canary")).mutating(t), func(i int) string { return cases[i].wantCanary }},
	}
	for _, inst := range installs {
		for i, tc := range cases {
			t.Run(inst.name+"/"+tc.name, func(t *testing.T) {
				nsLabels := labels.Set{"kubernetes.io/metadata.name": tc.ns}
				for k, v := range tc.nsLabels {
					nsLabels[k] = v
				}
				var matched []string
				for _, w := range inst.mwc.Webhooks {
					if selects(t, w.NamespaceSelector, nsLabels) && selects(t, w.ObjectSelector, labels.Set(tc.podLabels)) {
						matched = append(matched, strings.TrimSuffix(w.Name, ".sidecar-injector.meshguard.io"))
					}
				}
				want := inst.want(i)
				if len(matched) > 1 {
					t.Fatalf("entries %v all call /inject: a pod would be injected twice", matched)
				}
				got := ""
				if len(matched) == 1 {
					got = matched[0]
				}
				if got != want {
					t.Errorf("entry calling /inject = %q, want %q", got, want)
				}
			})
		}
	}
}

func selects(t testing.TB, sel *metav1.LabelSelector, set labels.Set) bool {
	t.Helper()
	if sel == nil {
		return true
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		t.Fatalf("selector %v: %v", sel, err)
	}
	return s.Matches(set)
}

// rbacGrant is one allowed (scope, apiGroup, resource, resourceName, verb).
type rbacGrant struct {
	scope, group, resource, name, verb string
}

func (g rbacGrant) String() string {
	s := fmt.Sprintf("%s %s %s/%s", g.scope, g.verb, g.group, g.resource)
	if g.name != "" {
		s += "/" + g.name
	}
	return s
}

// wantGrants is exactly what meshguard uses (docs/operations.md
// "Permissions"): anything more is
// a least-privilege failure, anything less breaks the binary.
func wantGrants(t *testing.T, p packaging) map[rbacGrant]bool {
	t.Helper()
	want := map[rbacGrant]bool{}
	add := func(scope, group, resource, name string, verbs ...string) {
		for _, v := range verbs {
			want[rbacGrant{scope, group, resource, name, v}] = true
		}
	}
	// Informers only (the manager's cache, the audit's lists): no get.
	for _, r := range []string{"pods", "namespaces", "services"} {
		add("cluster", "", r, "", "list", "watch")
	}
	add("cluster", "", "nodes", "", "list", "watch") // kubelet versions: native sidecar auto-detection
	// Every Istio kind installed by the harness in the four groups meshguard validates.
	crds, err := cluster.CRDs()
	if err != nil {
		t.Fatalf("load CRDs: %v", err)
	}
	istio := 0
	for _, crd := range crds {
		if strings.HasSuffix(crd.Spec.Group, ".istio.io") {
			add("cluster", crd.Spec.Group, crd.Spec.Names.Plural, "", "list", "watch")
			istio++
		}
	}
	if istio < 10 {
		t.Fatalf("only %d Istio CRDs found in the harness", istio)
	}
	for _, crd := range []string{"authorizationpolicies.security.istio.io", "peerauthentications.security.istio.io", "requestauthentications.security.istio.io"} {
		add("cluster", "apiextensions.k8s.io", "customresourcedefinitions", crd, "list", "watch")
	}
	add("cluster", "", "events", "", "create", "patch")
	add("cluster", "events.k8s.io", "events", "", "create", "patch")
	add(p.ns(), "coordination.k8s.io", "leases", "", "get", "create", "update")
	// The audit's PolicyReports (governance.audit.enabled, the default).
	add("cluster", "wgpolicyk8s.io", "policyreports", "", "list", "create", "update", "delete")
	// Both modes read their own webhook configurations; self mode watches
	// them (certs.watchWebhookConfigs: list and watch by name) and writes
	// caBundle by an update (certs/webhooks.go), as Istio's webhook patcher
	// does (istiod's ClusterRole grants update on both kinds).
	webhookVerbs := []string{"get"}
	if p.certMode == "self" {
		webhookVerbs = append(webhookVerbs, "list", "watch", "update")
	}
	add("cluster", "admissionregistration.k8s.io", "mutatingwebhookconfigurations", mutatingName(p.revision), webhookVerbs...)
	add("cluster", "admissionregistration.k8s.io", "validatingwebhookconfigurations", validatingName(p.revision), webhookVerbs...)
	if p.certMode == "self" {
		for _, s := range []string{"meshguard-self-ca", "meshguard-self-tls"} {
			add(p.ns(), "", "secrets", s, "get", "list", "watch", "update")
		}
		add(p.ns(), "", "secrets", "", "create")
	} else {
		for _, s := range []string{"meshguard-ca", "meshguard-serving-tls"} {
			add(p.ns(), "", "secrets", s, "get", "list", "watch")
		}
		// certs/certmanager.go: a client without cache; server-side apply
		// (create and patch), Get of the serving Certificate to re-issue it.
		add(p.ns(), "cert-manager.io", "issuers", "", "create", "patch")
		add(p.ns(), "cert-manager.io", "certificates", "", "get", "create", "patch")
		add(p.ns(), "cert-manager.io", "certificates/status", "", "update")
	}
	return want
}

func grantsOf(t *testing.T, scope, where string, rules []rbacv1.PolicyRule) []rbacGrant {
	t.Helper()
	var out []rbacGrant
	for i, r := range rules {
		for _, field := range [][]string{r.Verbs, r.APIGroups, r.Resources, r.ResourceNames} {
			if slices.Contains(field, "*") {
				t.Errorf("%s rule %d: wildcard in %+v", where, i, r)
			}
		}
		if len(r.NonResourceURLs) > 0 {
			t.Errorf("%s rule %d: nonResourceURLs %v are not used by meshguard", where, i, r.NonResourceURLs)
		}
		names := r.ResourceNames
		if len(names) == 0 {
			names = []string{""}
		}
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				for _, n := range names {
					for _, v := range r.Verbs {
						out = append(out, rbacGrant{scope, g, res, n, v})
					}
				}
			}
		}
	}
	return out
}

func checkRBAC(t *testing.T, m manifests, p packaging) {
	t.Helper()
	got := map[rbacGrant]bool{}
	for _, cr := range m.clusterRoles(t) {
		for _, g := range grantsOf(t, "cluster", "ClusterRole "+cr.Name, cr.Rules) {
			if g.resource == "secrets" {
				t.Errorf("ClusterRole %s grants %s: Secrets must only be reachable in meshguard's namespace", cr.Name, g)
			}
			got[g] = true
		}
	}
	for _, r := range m.roles(t) {
		for _, g := range grantsOf(t, r.Namespace, "Role "+r.Name, r.Rules) {
			got[g] = true
		}
	}
	want := wantGrants(t, p)
	var extra, missing []string
	for g := range got {
		if !want[g] {
			extra = append(extra, g.String())
		}
	}
	for g := range want {
		if !got[g] {
			missing = append(missing, g.String())
		}
	}
	sort.Strings(extra)
	sort.Strings(missing)
	if len(extra) > 0 {
		t.Errorf("RBAC grants more than meshguard uses: %v", extra)
	}
	if len(missing) > 0 {
		t.Errorf("RBAC lacks grants meshguard needs: %v", missing)
	}
	sa := one[corev1.ServiceAccount](t, m, "ServiceAccount")
	wantSubject := rbacv1.Subject{Kind: "ServiceAccount", Name: sa.Name, Namespace: p.ns()}
	bindings := all[rbacv1.ClusterRoleBinding](t, m, "ClusterRoleBinding")
	roleNames := map[string]bool{}
	for _, cr := range m.clusterRoles(t) {
		roleNames["ClusterRole/"+cr.Name] = true
	}
	for _, r := range m.roles(t) {
		roleNames["Role/"+r.Name] = true
	}
	for _, b := range bindings {
		if !slices.Equal(b.Subjects, []rbacv1.Subject{wantSubject}) || !roleNames[b.RoleRef.Kind+"/"+b.RoleRef.Name] {
			t.Errorf("ClusterRoleBinding %s: subjects %v roleRef %v, want only %v bound to a rendered role", b.Name, b.Subjects, b.RoleRef, wantSubject)
		}
	}
	for _, b := range all[rbacv1.RoleBinding](t, m, "RoleBinding") {
		if !slices.Equal(b.Subjects, []rbacv1.Subject{wantSubject}) || !roleNames[b.RoleRef.Kind+"/"+b.RoleRef.Name] {
			t.Errorf("RoleBinding %s: subjects %v roleRef %v, want only %v bound to a rendered role", b.Name, b.Subjects, b.RoleRef, wantSubject)
		}
	}
	if d := m.deployment(t); d.Spec.Template.Spec.ServiceAccountName != sa.Name {
		t.Errorf("Deployment runs as ServiceAccount %q, want %q", d.Spec.Template.Spec.ServiceAccountName, sa.Name)
	}
}

func checkDeployment(t *testing.T, m manifests, p packaging) {
	t.Helper()
	d := m.deployment(t)
	spec := d.Spec.Template.Spec
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 2 {
		t.Errorf("replicas %v, want 2", d.Spec.Replicas)
	}
	podLabels := labels.Set(d.Spec.Template.Labels)
	if podLabels["sidecar.istio.io/inject"] != "false" {
		t.Errorf("pod labels %v: meshguard must opt itself out of injection", podLabels)
	}
	if sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector); err != nil || !sel.Matches(podLabels) {
		t.Errorf("Deployment selector %v does not select its pods (%v)", d.Spec.Selector, err)
	}
	pdb := m.pdb(t)
	if sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector); err != nil || !sel.Matches(podLabels) {
		t.Errorf("PodDisruptionBudget selector %v does not select meshguard's pods (%v)", pdb.Spec.Selector, err)
	}
	if pdb.Spec.MaxUnavailable == nil || *pdb.Spec.MaxUnavailable != intstr.FromInt32(1) || pdb.Spec.MinAvailable != nil {
		t.Errorf("PodDisruptionBudget maxUnavailable %v minAvailable %v, want maxUnavailable 1", pdb.Spec.MaxUnavailable, pdb.Spec.MinAvailable)
	}
	hostSpread := false
	for _, c := range spec.TopologySpreadConstraints {
		sel, err := metav1.LabelSelectorAsSelector(c.LabelSelector)
		if c.TopologyKey == "kubernetes.io/hostname" && err == nil && sel.Matches(podLabels) && c.MaxSkew == 1 {
			hostSpread = true
		}
	}
	if !hostSpread {
		t.Errorf("topologySpreadConstraints %v do not spread the replicas over nodes", spec.TopologySpreadConstraints)
	}
	psc := spec.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.SeccompProfile == nil ||
		psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod securityContext %+v, want runAsNonRoot and seccomp RuntimeDefault", psc)
	}
	if len(spec.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(spec.Containers))
	}
	c := spec.Containers[0]
	sc := c.SecurityContext
	switch {
	case sc == nil:
		t.Fatal("container has no securityContext")
	case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
		t.Error("container root filesystem is writable")
	case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
		t.Error("container allows privilege escalation")
	case sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0:
		t.Errorf("capabilities %+v, want all dropped and none added", sc.Capabilities)
	case sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot:
		t.Error("container may run as root")
	case sc.Privileged != nil && *sc.Privileged:
		t.Error("container is privileged")
	}
	ports := map[string]int32{}
	for _, cp := range c.Ports {
		ports[cp.Name] = cp.ContainerPort
	}
	for _, pr := range []struct {
		kind  string
		probe *corev1.Probe
		path  string
	}{{"readiness", c.ReadinessProbe, "/readyz"}, {"liveness", c.LivenessProbe, "/healthz"}} {
		if pr.probe == nil || pr.probe.HTTPGet == nil {
			t.Errorf("%s probe %+v, want an HTTP GET of %s", pr.kind, pr.probe, pr.path)
			continue
		}
		port := pr.probe.HTTPGet.Port.IntVal
		if pr.probe.HTTPGet.Port.Type == intstr.String {
			port = ports[pr.probe.HTTPGet.Port.StrVal]
		}
		if pr.probe.HTTPGet.Path != pr.path || port != 8081 {
			t.Errorf("%s probe GET %s on port %d, want %s on 8081", pr.kind, pr.probe.HTTPGet.Path, port, pr.path)
		}
	}
	for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if _, ok := c.Resources.Requests[res]; !ok {
			t.Errorf("no %s request", res)
		}
	}
	if _, ok := c.Resources.Limits[corev1.ResourceMemory]; !ok {
		t.Error("no memory limit")
	}
	checkArgs(t, m, p, c)
}

// checkArgs ties the command line to the rest of the manifests: the cert
// mode, the Service name, the ports and the ConfigMap files it reads.
func checkArgs(t *testing.T, m manifests, p packaging, c corev1.Container) {
	t.Helper()
	args := map[string]string{}
	for _, a := range c.Args[1:] {
		k, v, _ := strings.Cut(a, "=")
		args[k] = v
	}
	if len(c.Args) == 0 || c.Args[0] != "serve" {
		t.Fatalf("args %v, want `serve ...`", c.Args)
	}
	want := map[string]string{
		"--namespace": "$(POD_NAMESPACE)", "--service-name": serviceName, "--webhook-port": "9443",
		"--authz-addr": ":9000", "--metrics-addr": ":8080", "--health-addr": ":8081",
		"--cert-mode": p.certMode, "--leader-elect": "true", "--fail-open": "false",
	}
	// The mesh-wide settings come from the mesh config file alone, so the
	// injector and ext_authz cannot disagree.
	for _, k := range []string{"--root-namespace", "--trust-domain", "--trust-domain-aliases", "--path-normalization"} {
		if _, ok := args[k]; ok {
			t.Errorf("arg %s set; ext_authz must take it from --mesh-config", k)
		}
	}
	for k, v := range want {
		if args[k] != v {
			t.Errorf("arg %s=%q, want %q (args %v)", k, args[k], v, c.Args)
		}
	}
	if p.certMode != "self" {
		// The leader server-side applies these durations to the shipped
		// Certificates (certs.ApplyCertManagerChain): they must agree, or
		// meshguard and the chart would each reset the other's value.
		for _, u := range m.find("Certificate") {
			crt := convert[cmapi.Certificate](t, u)
			flag, d := "--cert-duration", 90*24*time.Hour
			if crt.Spec.IsCA {
				flag, d = "--cert-ca-duration", 5*365*24*time.Hour
			}
			if v, ok := args[flag]; ok {
				var err error
				if d, err = time.ParseDuration(v); err != nil {
					t.Errorf("arg %s=%q: %v", flag, v, err)
				}
			}
			if crt.Spec.Duration == nil || crt.Spec.Duration.Duration != d {
				t.Errorf("Certificate %s duration %v, but meshguard applies %s (%s)", crt.Name, crt.Spec.Duration, d, flag)
			}
			if crt.Spec.IsCA {
				continue
			}
			var rb time.Duration
			if v, ok := args["--cert-renew-before"]; ok {
				rb, _ = time.ParseDuration(v)
			}
			if got := crt.Spec.RenewBefore; (got == nil) != (rb == 0) || got != nil && got.Duration != rb {
				t.Errorf("Certificate %s renewBefore %v, but meshguard applies --cert-renew-before=%q", crt.Name, got, args["--cert-renew-before"])
			}
		}
	}
	envOK := false
	for _, e := range c.Env {
		if e.Name == "POD_NAMESPACE" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.namespace" {
			envOK = true
		}
	}
	if !envOK {
		t.Error("POD_NAMESPACE is not taken from metadata.namespace")
	}
	// Each file flag must resolve, through a volume mount, to a key of the rendered ConfigMap.
	cm := m.configMap(t)
	volumes := map[string]corev1.Volume{}
	for _, v := range m.deployment(t).Spec.Template.Spec.Volumes {
		volumes[v.Name] = v
	}
	for _, flag := range []string{"--mesh-config", "--injector-values"} {
		path := args[flag]
		found := false
		for _, vm := range c.VolumeMounts {
			rel, ok := strings.CutPrefix(path, vm.MountPath+"/")
			v := volumes[vm.Name]
			if !ok || v.ConfigMap == nil || v.ConfigMap.Name != cm.Name {
				continue
			}
			key := rel
			for _, item := range v.ConfigMap.Items {
				if item.Path == rel {
					key = item.Key
				}
			}
			if _, ok := cm.Data[key]; ok {
				found = true
			}
		}
		if !found {
			t.Errorf("%s=%s is not a mounted key of ConfigMap %s", flag, path, cm.Name)
		}
	}
	var mesh map[string]any
	if err := yaml.Unmarshal([]byte(cm.Data["mesh.yaml"]), &mesh); err != nil || mesh["rootNamespace"] != "istio-system" {
		t.Errorf("ConfigMap %s mesh.yaml %q: want Istio mesh config with rootNamespace istio-system (%v)", cm.Name, cm.Data["mesh.yaml"], err)
	}
	var values map[string]any
	if err := yaml.Unmarshal([]byte(cm.Data["values.yaml"]), &values); err != nil || values["global"] == nil {
		t.Errorf("ConfigMap %s values.yaml %q: want injector values with a global section (%v)", cm.Name, cm.Data["values.yaml"], err)
	}
	// The injector learns the revision it serves from its values.
	if rev, _ := values["revision"].(string); rev != p.revision {
		t.Errorf("ConfigMap %s values.yaml revision %q, want %q", cm.Name, rev, p.revision)
	}
}

func checkService(t *testing.T, m manifests) {
	t.Helper()
	svc := m.service(t)
	d := m.deployment(t)
	if svc.Name != serviceName {
		t.Errorf("Service name %q, want %q", svc.Name, serviceName)
	}
	if sel := labels.SelectorFromSet(svc.Spec.Selector); len(svc.Spec.Selector) == 0 || !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
		t.Errorf("Service selector %v does not select meshguard's pods", svc.Spec.Selector)
	}
	containerPorts := map[string]int32{}
	for _, cp := range d.Spec.Template.Spec.Containers[0].Ports {
		containerPorts[cp.Name] = cp.ContainerPort
	}
	got := map[int32]int32{}
	for _, sp := range svc.Spec.Ports {
		target := sp.TargetPort.IntVal
		if sp.TargetPort.Type == intstr.String {
			target = containerPorts[sp.TargetPort.StrVal]
		}
		got[sp.Port] = target
		if sp.Port == 9000 && (sp.AppProtocol == nil || *sp.AppProtocol != "grpc" || !strings.HasPrefix(sp.Name, "grpc")) {
			t.Errorf("Service port 9000 (%s, appProtocol %v) must be declared gRPC for Istio", sp.Name, sp.AppProtocol)
		}
	}
	want := map[int32]int32{443: 9443, 9000: 9000, 8080: 8080}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Service ports (port -> container port) %v, want %v", got, want)
	}
}

func checkCertManager(t *testing.T, m manifests, p packaging) {
	t.Helper()
	if p.certMode != "cert-manager" {
		return
	}
	issuers := map[string]*unstructured.Unstructured{}
	for _, u := range m.find("Issuer") {
		issuers[u.GetName()] = u
	}
	certs := map[string]*unstructured.Unstructured{}
	for _, u := range m.find("Certificate") {
		certs[u.GetName()] = u
	}
	str := func(u *unstructured.Unstructured, path ...string) string {
		s, _, _ := unstructured.NestedString(u.Object, path...)
		return s
	}
	// Walk the chain from the serving certificate up to the selfSigned issuer.
	serving := certs[servingCertName]
	if serving == nil {
		t.Fatalf("no Certificate %s (have %v)", servingCertName, certs)
	}
	dns, _, _ := unstructured.NestedStringSlice(serving.Object, "spec", "dnsNames")
	wantDNS := []string{serviceName + "." + p.ns() + ".svc", serviceName + "." + p.ns() + ".svc.cluster.local"}
	if !slices.Equal(dns, wantDNS) {
		t.Errorf("serving Certificate dnsNames %v, want %v", dns, wantDNS)
	}
	if isCA, _, _ := unstructured.NestedBool(serving.Object, "spec", "isCA"); isCA {
		t.Error("serving Certificate must not be a CA")
	}
	caIssuer := issuers[str(serving, "spec", "issuerRef", "name")]
	if caIssuer == nil || str(serving, "spec", "issuerRef", "kind") != "Issuer" {
		t.Fatalf("serving Certificate issuerRef %v does not name a rendered Issuer", serving.Object["spec"])
	}
	caSecret := str(caIssuer, "spec", "ca", "secretName")
	var caCert *unstructured.Unstructured
	for _, c := range certs {
		if str(c, "spec", "secretName") == caSecret && c != serving {
			caCert = c
		}
	}
	if caCert == nil {
		t.Fatalf("CA Issuer %s reads Secret %q, which no Certificate writes", caIssuer.GetName(), caSecret)
	}
	if isCA, _, _ := unstructured.NestedBool(caCert.Object, "spec", "isCA"); !isCA {
		t.Errorf("Certificate %s backs the CA Issuer but is not isCA", caCert.GetName())
	}
	root := issuers[str(caCert, "spec", "issuerRef", "name")]
	if root == nil {
		t.Fatalf("CA Certificate %s issuerRef does not name a rendered Issuer", caCert.GetName())
	}
	if _, ok, _ := unstructured.NestedMap(root.Object, "spec", "selfSigned"); !ok {
		t.Errorf("Issuer %s signing the CA is not selfSigned", root.GetName())
	}
}
