package policy

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Which policies apply to a workload, by Istio's pilot/pkg/model tests. Each
// row is one upstream case: the workload (namespace, labels, whether it is a
// gateway's pod), the policies in the store and the upstream expectation,
// which policies apply. "Applies" is made observable: every
// AuthorizationPolicy of a row keeps the upstream spec (from principal
// "sleep", method GET) and only adds a path of its own (/<ns>/<name>), so a
// request for that path is decided, audited or reported by that policy alone
// exactly when it applies; every PeerAuthentication is observed through the
// effective mode and the policy it came from (Verdict.Mode, ModePolicy) and
// the verdict on plaintext (STRICT denies it). Each row is probed through
// both entry points: decoded attributes (Snapshot.CheckRequest) and an Envoy
// CheckRequest (Snapshot.Check) to a Pod found by its IP, whose istio-proxy
// runs `proxy sidecar` or `proxy router`. The policies are decoded as the
// API server client does (storedAP), since some upstream rows hold objects
// validation refuses (see failClosed below).
//
// Upstream (istio/istio, Apache-2.0; test data re-expressed, no code):
//   - pilot/pkg/model/authorization_test.go at 067f29f5cb95
//     TestAuthorizationPolicies_ListAuthorizationPolicies (the same table as
//     the later stored version that adds TestListAuthorizationPoliciesForHTTPRoute);
//     the source is authorization.go ListAuthorizationPolicies: root and
//     workload namespace, then policyattachment.go ShouldAttachPolicy.
//   - pilot/pkg/model/policyattachment_test.go TestPolicyMatcher (the stored
//     version without TestShouldAttachPolicy_ClassicGateway, i.e. before
//     attachesToClassicGateway, as the pinned Istio 1.31; the index does not
//     name its commit), ShouldAttachPolicy with
//     ENABLE_SELECTOR_BASED_K8S_GATEWAY_POLICY at its default, true
//     (pilot/pkg/features).
//   - pilot/pkg/model/authentication_test.go TestGetPoliciesForWorkload and
//     TestGetPoliciesForWorkloadWithoutMeshPeerAuthn (the newest stored
//     version, config.Config with labels.Instance; the index does not name its
//     commit): the PeerAuthentication half, GetPeerAuthenticationsForWorkload
//     (authentication.go getConfigsForWorkload: selector subset of the labels,
//     workload then root namespace) and GetNamespaceMutualTLSMode
//     (addPeerAuthentication: the oldest namespace/mesh policy, UNSET
//     inheriting), composed as pilot/pkg/security/authn/policy_applier.go
//     ComposePeerAuthentication does.
//
// Not ported, with the reason:
//   - the RequestAuthentication half of TestGetPoliciesForWorkload and all of
//     TestGetPoliciesForWorkloadWithJwksResolver: meshguard does not evaluate
//     RequestAuthentication (Envoy's jwt_authn validates the token, the loader
//     skips the kind); it reads the verified payload only.
//   - ListAuthorizationPolicies "waypoint service attached", "waypoint with
//     default policies" and every TestPolicyMatcher waypoint, Service,
//     ServiceEntry and GatewayClass row: waypoints, which meshguard does not
//     serve (what such references do on a sidecar or a gateway's pod is
//     asserted in gateway_attach_test.go).
//   - TestPolicyMatcher "gateway API ingress and a selector (policy
//     attachment only)": ENABLE_SELECTOR_BASED_K8S_GATEWAY_POLICY=false is an
//     istiod environment setting meshguard has no equivalent of; it implements
//     the default.
//   - TestListAuthorizationPoliciesForHTTPRoute, TestIndexHTTPRoutePoliciesFeatureGate,
//     TestListAuthorizationPoliciesRootDeny (HTTPRoute targetRefs behind
//     EnableGatewayAPIHTTPRouteAuth) and TestListAuthorizationPolicies_CrossNamespaceGateway,
//     TestGatewaysTargetedByTargetRef_CrossNamespace (classic Gateway
//     targetRefs, attachesToClassicGateway): newer than the pinned Istio 1.31
//     (docs/compatibility.md); RootDeny only splits the DENY list, the
//     verdict is the same.
//   - the order of each upstream list (root namespace first, then by
//     creation time): no verdict depends on the order within an action.
//
// failClosed: upstream rows whose policy validation refuses (a targetRef
// naming a namespace, which the CRD's rule `self.size() == 0` refuses;
// both a selector and a targetRef). istiod's model attaches such an object
// where the upstream row says; meshguard denies every request to the
// workloads it would attach to, naming the policy (Compile fails every
// stored object validation rejects closed, docs/compatibility.md), and the
// row's valid form is asserted with Istio's expectation beside it.

// selPolicy is one AuthorizationPolicy of a row: the upstream spec (rules
// from principal sleep, GET) plus its own path.
type selPolicy struct {
	ns, name, action string // action "" is ALLOW
	extra            string // selector / targetRef(s), YAML indented by 2
	noFrom           bool   // without the rule's `from` (CUSTOM takes no principals)
}

func (p selPolicy) id() string   { return p.ns + "/" + p.name }
func (p selPolicy) path() string { return "/" + p.ns + "/" + p.name }

func (p selPolicy) doc() string {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: %s, namespace: %s}\nspec:\n", p.name, p.ns)
	if p.action != "" {
		fmt.Fprintf(&b, "  action: %s\n", p.action)
	}
	b.WriteString(p.extra)
	from := "from: [{source: {principals: [sleep]}}], "
	if p.noFrom {
		from = ""
	}
	fmt.Fprintf(&b, "  rules: [{%sto: [{operation: {methods: [GET], paths: [%q]}}]}]\n", from, p.path())
	return b.String()
}

type selRow struct {
	name     string
	root     string // the mesh root namespace; istio-system when ""
	ns       string
	labels   map[string]string
	gateway  bool // the Pod's istio-proxy runs `proxy router`
	policies []selPolicy
	// applies: the upstream expectation (all actions together).
	applies []string
	// failClosed: policies validation refuses that attach here; meshguard
	// denies every request to the workload for them (see above), or, for
	// AUDIT and CUSTOM, which never decide, reports them for every request.
	failClosed []string
}

// selPod is the row's workload at http()'s destination address.
func selPod(ns string, labels map[string]string, gateway bool) *corev1.Pod {
	typ := "sidecar"
	if gateway {
		typ = "router"
	}
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "w-1", Namespace: ns, Labels: labels},
		Spec:   corev1.PodSpec{Containers: []corev1.Container{{Name: "istio-proxy", Args: []string{"proxy", typ}}}},
		Status: corev1.PodStatus{PodIP: "10.0.1.1"}}
}

// checkSelBoth evaluates req through both entry points; each verdict goes to f.
func checkSelBoth(t *testing.T, s *Snapshot, req *Request, f func(via string, v Verdict)) {
	t.Helper()
	v, err := s.CheckRequest(context.Background(), req)
	if err != nil {
		t.Fatalf("attributes: %v", err)
	}
	f("attributes", v)
	if v, err = s.Check(context.Background(), envoyRequest(req)); err != nil {
		t.Fatalf("CheckRequest: %v", err)
	}
	f("CheckRequest", v)
}

func hitIDs(hs []Hit) []string {
	out := []string{}
	for _, h := range hs {
		out = append(out, h.Policy)
	}
	return out
}

func runSelRows(t *testing.T, rows []selRow) {
	t.Helper()
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			set := &Set{Pods: []*corev1.Pod{selPod(r.ns, r.labels, r.gateway)}}
			for _, p := range r.policies {
				set.AuthorizationPolicies = append(set.AuthorizationPolicies, storedAP(t, p.doc()))
			}
			s, err := Compile(context.Background(), Mesh{RootNamespace: r.root}, set, 1)
			if err != nil {
				t.Fatal(err)
			}
			applies := func(id string) bool { return slices.Contains(r.applies, id) }
			anyAllow := slices.ContainsFunc(r.policies, func(p selPolicy) bool { return p.action == "" && applies(p.id()) })
			labels := r.labels
			if labels == nil {
				labels = map[string]string{}
			}
			probe := func(reqPath string, p *selPolicy) {
				req := http(ns(r.ns, labels), from("spiffe://sleep"), path(reqPath))
				wantAllowed, wantPolicy, wantRule := !anyAllow, "", -1
				var wantAudit, wantCustom []string
				denied := ""
				for _, q := range r.policies {
					switch {
					case !slices.Contains(r.failClosed, q.id()):
					case q.action == "AUDIT":
						wantAudit = append(wantAudit, q.id()) // reporting-only: reported for every request
					case q.action == "CUSTOM":
						wantCustom = append(wantCustom, q.id())
					case denied == "":
						denied = q.id()
					}
				}
				switch {
				case denied != "":
					wantAllowed, wantPolicy, wantRule = false, denied, FailClosedRule
				case p != nil && applies(p.id()) && p.action == "DENY":
					wantAllowed, wantPolicy, wantRule = false, p.id(), 0
				case p != nil && applies(p.id()) && p.action == "":
					wantAllowed, wantPolicy, wantRule = true, p.id(), 0
				}
				if p != nil && applies(p.id()) && !slices.Contains(r.failClosed, p.id()) {
					switch p.action {
					case "AUDIT":
						wantAudit = append(wantAudit, p.id())
					case "CUSTOM":
						wantCustom = append(wantCustom, p.id())
					}
				}
				checkSelBoth(t, s, req, func(via string, v Verdict) {
					if v.Allowed != wantAllowed || (wantPolicy != "" && (v.Policy != wantPolicy || v.Rule != wantRule)) {
						t.Errorf("%s, %s: verdict %+v (reason %q); want allowed=%v by %q rule %d", via, reqPath, v, v.Reason, wantAllowed, wantPolicy, wantRule)
					}
					if got := hitIDs(v.Audit); !slices.Equal(got, wantAudit) {
						t.Errorf("%s, %s: AUDIT hits %v, want %v", via, reqPath, got, wantAudit)
					}
					if got := hitIDs(v.Custom); !slices.Equal(got, wantCustom) {
						t.Errorf("%s, %s: CUSTOM hits %v, want %v", via, reqPath, got, wantCustom)
					}
				})
			}
			for i := range r.policies {
				probe(r.policies[i].path(), &r.policies[i])
			}
			probe("/none", nil)
		})
	}
}

// TestIstioListAuthorizationPolicies: authorization_test.go
// TestAuthorizationPolicies_ListAuthorizationPolicies (root namespace
// istio-config, as its createFakeAuthorizationPolicies sets it).
func TestIstioListAuthorizationPolicies(t *testing.T) {
	const root = "istio-config"
	const f = "TestAuthorizationPolicies_ListAuthorizationPolicies/"
	pol := func(ns, name, action string) selPolicy { return selPolicy{ns: ns, name: name, action: action} }
	withSel := func(ns, name string) selPolicy {
		return selPolicy{ns: ns, name: name, extra: "  selector: {matchLabels: {app: httpbin, version: v1}}\n"}
	}
	// policyWithTargetRef names the namespace "bar" (invalid, see failClosed);
	// validRef is its valid form.
	withRef := func(ns, name string) selPolicy {
		return selPolicy{ns: ns, name: name, extra: "  targetRef: {group: gateway.networking.k8s.io, kind: Gateway, name: my-gateway, namespace: bar}\n"}
	}
	validRef := func(ns, name string) selPolicy {
		return selPolicy{ns: ns, name: name, extra: "  targetRef: {group: gateway.networking.k8s.io, kind: Gateway, name: my-gateway}\n"}
	}
	gw := func(name string) map[string]string { return map[string]string{GatewayNameLabel: name} }
	httpbin := map[string]string{"app": "httpbin", "version": "v1"}
	runSelRows(t, []selRow{
		{name: f + "no policies", root: root, ns: "foo"},
		{name: f + "no policies in namespace foo", root: root, ns: "foo",
			policies: []selPolicy{pol("bar", "authz-1", ""), pol("bar", "authz-2", "")}},
		{name: f + "no policies with a targetRef in namespace foo", root: root, ns: "foo", labels: gw("my-gateway"), gateway: true,
			policies: []selPolicy{withRef("bar", "authz-1")}},
		{name: f + "no policies with a targetRef in namespace foo (valid form)", root: root, ns: "foo", labels: gw("my-gateway"), gateway: true,
			policies: []selPolicy{validRef("bar", "authz-1")}},
		{name: f + "one allow policy", root: root, ns: "bar",
			policies: []selPolicy{pol("bar", "authz-1", "")}, applies: []string{"bar/authz-1"}},
		{name: f + "one deny policy", root: root, ns: "bar",
			policies: []selPolicy{pol("bar", "authz-1", "DENY")}, applies: []string{"bar/authz-1"}},
		{name: f + "one audit policy", root: root, ns: "bar",
			policies: []selPolicy{pol("bar", "authz-1", "AUDIT")}, applies: []string{"bar/authz-1"}},
		// Deliberate: the upstream customPolicy is invalid twice over
		// (pkg/config/validation ValidateAuthorizationPolicy: a CUSTOM
		// policy with rules needs a provider, and takes no principals).
		// Stored, it fails closed as what it is, reporting-only: its hit is
		// reported for every request (failBucket), none denied. Its valid
		// form (a provider, no principals) is reported for its own
		// requests only.
		{name: f + "one custom policy", root: root, ns: "bar",
			policies: []selPolicy{pol("bar", "authz-1", "CUSTOM")}, applies: []string{"bar/authz-1"}, failClosed: []string{"bar/authz-1"}},
		{name: f + "one custom policy (valid form)", root: root, ns: "bar",
			policies: []selPolicy{{ns: "bar", name: "authz-1", action: "CUSTOM", extra: "  provider: {name: ext}\n", noFrom: true}}, applies: []string{"bar/authz-1"}},
		{name: f + "two policies", root: root, ns: "bar",
			policies: []selPolicy{pol("foo", "authz-1", ""), pol("bar", "authz-1", ""), pol("bar", "authz-2", "")},
			applies:  []string{"bar/authz-1", "bar/authz-2"}},
		{name: f + "mixing allow, deny, and audit policies", root: root, ns: "bar",
			policies: []selPolicy{pol("bar", "authz-1", ""), pol("bar", "authz-2", "DENY"), pol("bar", "authz-3", "AUDIT"), pol("bar", "authz-4", "AUDIT")},
			applies:  []string{"bar/authz-1", "bar/authz-2", "bar/authz-3", "bar/authz-4"}},
		// Deliberate: upstream attaches policyWithTargetRef (targetRef
		// namespace "bar") to bar's my-gateway; validation refuses it, so
		// meshguard denies that gateway everything (failClosed above).
		{name: f + "targetRef is an exact match", root: root, ns: "bar", labels: gw("my-gateway"), gateway: true,
			policies: []selPolicy{withRef("bar", "authz-1")}, applies: []string{"bar/authz-1"}, failClosed: []string{"bar/authz-1"}},
		{name: f + "targetRef is an exact match (valid form)", root: root, ns: "bar", labels: gw("my-gateway"), gateway: true,
			policies: []selPolicy{validRef("bar", "authz-1")}, applies: []string{"bar/authz-1"}},
		{name: f + "selector exact match", root: root, ns: "bar", labels: httpbin,
			policies: []selPolicy{withSel("bar", "authz-1")}, applies: []string{"bar/authz-1"}},
		{name: f + "selector subset match", root: root, ns: "bar", labels: map[string]string{"app": "httpbin", "version": "v1", "env": "dev"},
			policies: []selPolicy{withSel("bar", "authz-1")}, applies: []string{"bar/authz-1"}},
		{name: f + "targetRef is not a match", root: root, ns: "bar", labels: gw("my-gateway2"), gateway: true,
			policies: []selPolicy{withRef("bar", "authz-1")}},
		{name: f + "targetRef is not a match (valid form)", root: root, ns: "bar", labels: gw("my-gateway2"), gateway: true,
			policies: []selPolicy{validRef("bar", "authz-1")}},
		{name: f + "selector not match", root: root, ns: "bar", labels: map[string]string{"app": "httpbin", "version": "v2"},
			policies: []selPolicy{withSel("bar", "authz-1")}},
		{name: f + "namespace not match", root: root, ns: "foo", labels: httpbin,
			policies: []selPolicy{withSel("bar", "authz-1")}},
		{name: f + "root namespace", root: root, ns: "bar",
			policies: []selPolicy{pol(root, "authz-1", "")}, applies: []string{root + "/authz-1"}},
		{name: f + "root namespace equals config namespace", root: root, ns: root,
			policies: []selPolicy{pol(root, "authz-1", "")}, applies: []string{root + "/authz-1"}},
		{name: f + "root namespace and config namespace", root: root, ns: "bar",
			policies: []selPolicy{pol(root, "authz-1", ""), pol("bar", "authz-2", "")}, applies: []string{root + "/authz-1", "bar/authz-2"}},
		// Derived: the upstream rows with a root namespace are sidecars; the
		// same policy applies to a Gateway API gateway's pod (ShouldAttachPolicy:
		// no targetRefs, selector-based gateway policy enabled by default).
		{name: f + "root namespace (a gateway's pod)", root: root, ns: "bar", labels: gw("my-gateway"), gateway: true,
			policies: []selPolicy{pol(root, "authz-1", "")}, applies: []string{root + "/authz-1"}},
	})
}

// TestIstioPolicyMatcher: policyattachment_test.go TestPolicyMatcher, the
// rows of a sidecar ("non-gateway API workload", labels app=my-app) and of a
// Gateway API gateway's pod ("gateway API ingress", gateway-name
// sample-gateway), namespace default, the policy policy1 in default.
func TestIstioPolicyMatcher(t *testing.T) {
	const f = "TestPolicyMatcher/"
	const (
		ref   = "  targetRef: {group: gateway.networking.k8s.io, kind: Gateway, name: sample-gateway}\n"
		wpRef = "  targetRef: {group: gateway.networking.k8s.io, kind: Gateway, name: sample-waypoint}\n"
		sel   = "  selector: {matchLabels: {app: my-app}}\n"
		gwSel = "  selector: {matchLabels: {gateway.networking.k8s.io/gateway-name: sample-gateway}}\n"
	)
	const appliedTo, notApplied = true, false
	app := map[string]string{"app": "my-app"}
	gw := map[string]string{GatewayNameLabel: "sample-gateway"}
	row := func(name string, labels map[string]string, gateway bool, extra string, attached bool, failClosed bool) selRow {
		r := selRow{name: f + name, ns: "default", labels: labels, gateway: gateway,
			policies: []selPolicy{{ns: "default", name: "policy1", extra: extra}}}
		if attached {
			r.applies = []string{"default/policy1"}
		}
		if failClosed {
			r.failClosed = []string{"default/policy1"}
		}
		return r
	}
	runSelRows(t, []selRow{
		row("non-gateway API workload and a targetRef", app, false, ref, notApplied, false),
		row("non-gateway API workload and a selector", app, false, sel, appliedTo, false),
		// Invalid (selector and targetRef), but it attaches nowhere here in
		// Istio either: nothing to fail closed on a sidecar.
		row("non-gateway API workload and both a targetRef and a selector", app, false, sel+ref, notApplied, false),
		row("non-gateway API workload and no targetRef or selector", app, false, "", appliedTo, false),
		row("gateway API ingress and a targetRef", gw, true, ref, appliedTo, false),
		row("gateway API ingress and a selector", gw, true, gwSel, appliedTo, false),
		// Deliberate: Istio attaches it through the targetRef; validation
		// refuses a selector with a targetRef, so meshguard denies the
		// gateway everything (failClosed above).
		row("gateway API ingress and both a targetRef and a selector", gw, true, ref+gwSel, appliedTo, true),
		row("gateway API ingress and non-matching targetRef", gw, true, wpRef, notApplied, false),
		row("gateway API ingress and no targetRef or selector", gw, true, "", appliedTo, false),
		// targetRefs (the list) as the targetRef rows.
		row("gateway API ingress and a targetRef (targetRefs)", gw, true, "  targetRefs:\n  - {group: gateway.networking.k8s.io, kind: Gateway, name: sample-gateway}\n", appliedTo, false),
		row("non-gateway API workload and a targetRef (targetRefs)", app, false, "  targetRefs:\n  - {group: gateway.networking.k8s.io, kind: Gateway, name: sample-gateway}\n", notApplied, false),
		// Derived: ShouldAttachPolicy knows a Gateway API gateway by the
		// gateway-name label alone (workloadGatewayName), so a Pod with the
		// label whose istio-proxy runs as a sidecar gets the policy too.
		row("gateway API ingress and a targetRef (the Pod's proxy runs as a sidecar)", gw, false, ref, appliedTo, false),
	})
}

// TestIstioGetPeerAuthenticationsForWorkload: authentication_test.go
// TestGetPoliciesForWorkload and TestGetPoliciesForWorkloadWithoutMeshPeerAuthn
// (createTestConfigs, root namespace istio-config). Upstream lists the
// PeerAuthentications selected (wantPeerAuthn) and the namespace mode
// (wantNamespaceMutualTLS); what takes effect is their composition
// (ComposePeerAuthentication): the oldest selected workload policy of the
// namespace, else the namespace policy, else the mesh policy, UNSET
// inheriting; without any, PERMISSIVE. So each row asserts the effective
// mode and the policy it came from (none: "" for the mesh default), and a
// plaintext request: STRICT denies it naming the policy.
func TestIstioGetPeerAuthenticationsForWorkload(t *testing.T) {
	const root = "istio-config"
	const t0, t1, t2 = "2020-02-02T02:02:02Z", "2020-02-02T02:02:03Z", "2020-02-02T02:02:04Z"
	paDoc := func(ns, name, created, spec string) string {
		return fmt.Sprintf("apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: %s, namespace: %s, creationTimestamp: %q}\nspec:\n%s\n", name, ns, created, indent(spec))
	}
	base := []string{
		paDoc(root, "global-peer-with-selector", t0, "selector: {matchLabels: {app: httpbin, version: v2}}\nmtls: {mode: UNSET}"),
		paDoc("foo", "default", t0, "mtls: {mode: STRICT}"),
		paDoc("foo", "ignored-newer-default", t1, "mtls: {mode: STRICT}"),
		paDoc("foo", "peer-with-selector", t0, "selector: {matchLabels: {version: v1}}\nmtls: {mode: DISABLE}"),
	}
	mesh := []string{
		paDoc(root, "ignored-newer", t2, "mtls: {mode: UNSET}"),
		paDoc(root, "default", t0, "mtls: {mode: UNSET}"),
		paDoc(root, "ignored-another-newer", t1, "mtls: {mode: UNSET}"),
	}
	type row struct {
		name   string
		ns     string
		labels map[string]string
		mode   string // effective mode
		from   string // Verdict.ModePolicy
	}
	// The upstream rows, the same for both tests but for the namespaces
	// without a namespace policy (bar, baz): the mesh policy, UNSET, is
	// PERMISSIVE (MTLSPermissive); without it, MTLSUnknown, PERMISSIVE too.
	rows := []row{
		{"Empty workload labels in foo", "foo", nil, "STRICT", "foo/default"},
		{"Empty workload labels in bar", "bar", nil, "PERMISSIVE", ""},
		{"Empty workload labels in baz", "baz", nil, "PERMISSIVE", ""},
		// foo/peer-with-selector (version: v1) is selected: a workload
		// policy, it wins over foo/default.
		{"Match workload labels in foo", "foo", map[string]string{"app": "httpbin", "version": "v1", "other": "labels"}, "DISABLE", "foo/peer-with-selector"},
		{"Match workload labels in bar", "bar", map[string]string{"app": "httpbin", "version": "v1"}, "PERMISSIVE", ""},
		{"Paritial match workload labels in foo", "foo", map[string]string{"app": "httpbin"}, "STRICT", "foo/default"},
		// Derived: the labels of istio-config/global-peer-with-selector.
		// getConfigsForWorkload selects it (root namespace, selector subset),
		// but ComposePeerAuthentication never applies a root-namespace
		// policy with a selector: the namespace's or the mesh's mode holds.
		{"Match global-peer-with-selector's labels in foo (derived)", "foo", map[string]string{"app": "httpbin", "version": "v2"}, "STRICT", "foo/default"},
		{"Match global-peer-with-selector's labels in baz (derived)", "baz", map[string]string{"app": "httpbin", "version": "v2"}, "PERMISSIVE", ""},
	}
	for _, test := range []struct {
		name string
		docs []string
	}{
		{"TestGetPoliciesForWorkload", append(slices.Clone(base), mesh...)},
		{"TestGetPoliciesForWorkloadWithoutMeshPeerAuthn", base},
	} {
		for _, r := range rows {
			t.Run(test.name+"/"+r.name, func(t *testing.T) {
				set := &Set{Pods: []*corev1.Pod{selPod(r.ns, r.labels, false)}}
				for _, d := range test.docs {
					set.PeerAuthentications = append(set.PeerAuthentications, storedPA(t, d))
				}
				s, err := Compile(context.Background(), Mesh{RootNamespace: root}, set, 1)
				if err != nil {
					t.Fatal(err)
				}
				labels := r.labels
				if labels == nil {
					labels = map[string]string{}
				}
				for _, principal := range []string{"", pFoo} {
					checkSelBoth(t, s, http(ns(r.ns, labels), from(principal)), func(via string, v Verdict) {
						if v.Mode != r.mode || v.ModePolicy != r.from {
							t.Errorf("%s, peer %q: mode %s from %q, want %s from %q", via, principal, v.Mode, v.ModePolicy, r.mode, r.from)
						}
						strictDenies := r.mode == "STRICT" && principal == ""
						if v.Allowed == strictDenies || (strictDenies && v.Policy != r.from) {
							t.Errorf("%s, peer %q: verdict %+v (reason %q), want allowed=%v", via, principal, v, v.Reason, !strictDenies)
						}
					})
				}
			})
		}
	}
}
