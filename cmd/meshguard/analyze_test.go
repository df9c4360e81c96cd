package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	k8stesting "k8s.io/client-go/testing"
	"sigs.k8s.io/yaml"

	"github.com/meshguard/meshguard/test/fakelist"
	"github.com/meshguard/meshguard/validation"
)

// Istio's bookinfo samples (analysis/testdata/bookinfo, see its NOTICE) are
// accepted by istioctl analyze; meshguard must report nothing for them either.
func TestAnalyzeBookinfoHasNoError(t *testing.T) {
	var out, errOut bytes.Buffer
	code := runAnalyze(t.Context(), analyzeOptions{files: []string{"../../analysis/testdata/bookinfo"}, output: "log", namespace: "default", failureThreshold: "Info"}, nil, &out, &errOut)
	if code != 0 || out.Len() != 0 {
		t.Fatalf("exit %d, messages:\n%s\nstderr: %s", code, out.String(), errOut.String())
	}
}

func TestAnalyzeMissingSubset(t *testing.T) {
	// -o and --failure-threshold in any case, as istioctl reads them.
	for _, tc := range []struct {
		output, threshold string
		want              int
	}{{"json", "Error", exitAnalyzeFoundIssues}, {"json", "Info", exitAnalyzeFoundIssues}, {"JSON", "error", exitAnalyzeFoundIssues}} {
		var out, errOut bytes.Buffer
		code := runAnalyze(t.Context(), analyzeOptions{files: []string{"testdata/analyze/missing-subset"}, output: tc.output, namespace: "default", failureThreshold: tc.threshold}, nil, &out, &errOut)
		if code != tc.want {
			t.Fatalf("threshold %s: exit %d, want %d; stderr %s", tc.threshold, code, tc.want, errOut.String())
		}
		var msgs []map[string]any
		if err := json.Unmarshal(out.Bytes(), &msgs); err != nil || len(msgs) != 1 {
			t.Fatalf("want one JSON message, got %s (%v)", out.String(), err)
		}
		if !strings.Contains(out.String(), `"code": "IST0101"`) || !strings.Contains(out.String(), `"level": "Error"`) ||
			!strings.Contains(out.String(), `"field": "spec.http[0].route[0].destination.subset"`) {
			t.Fatalf("want IST0101 Error on the subset field, got %s", out.String())
		}
		// istioctl's text (Istio's virtualservice/destinationrules.go).
		if msgs[0]["message"] != `Referenced host+subset in destinationrule not found: "reviews+v3"` {
			t.Errorf("message %q, want istioctl's", msgs[0]["message"])
		}
	}
}

func TestAnalyzeUnreadableAndBadFlags(t *testing.T) {
	// The documents after a separator line with content after it (refused
	// as YAMLReader refuses it) are not read: the file could not be parsed.
	badSeparator := writeFile(t, t.TempDir(), "sep.yaml", cliGoodDR+"--- apiVersion: v1\n"+cliService)
	badList := writeFile(t, t.TempDir(), "list.yaml", "apiVersion: v1\nkind: List\nitems: [7]\n")
	for name, tc := range map[string]struct {
		o    analyzeOptions
		want int
	}{
		"missing file":            {analyzeOptions{files: []string{"testdata/analyze/does-not-exist"}, output: "log", failureThreshold: "Error"}, exitAnalyzeDataError},
		"invalid separator":       {analyzeOptions{files: []string{badSeparator}, output: "log", failureThreshold: "Error"}, exitAnalyzeDataError},
		"List item not an object": {analyzeOptions{files: []string{badList}, output: "log", failureThreshold: "Error"}, exitAnalyzeDataError},
		"bad threshold":           {analyzeOptions{files: []string{"testdata/analyze/missing-subset"}, output: "log", failureThreshold: "Fatal"}, exitAnalyzeUsage},
		"bad output":              {analyzeOptions{files: []string{"testdata/analyze/missing-subset"}, output: "xml", failureThreshold: "Error"}, exitAnalyzeUsage},
	} {
		var out, errOut bytes.Buffer
		if code := runAnalyze(t.Context(), tc.o, nil, &out, &errOut); code != tc.want {
			t.Errorf("%s: exit %d, want %d", name, code, tc.want)
		}
	}
}

// The shipped example rules (deploy/examples/rego) deny the wildcard
// VirtualService and the DISABLE PeerAuthentication in a production namespace,
// the same in `validate --rego` and `analyze --rego`.
func TestOrgRulesInValidateAndAnalyze(t *testing.T) {
	const dir, rules = "testdata/analyze/orgrules", "../../deploy/examples/rego"
	var out, errOut bytes.Buffer
	code := runValidate(t.Context(), validateOptions{files: []string{dir}, output: "text", namespace: "default", regoDir: rules}, nil, &out, &errOut)
	if code != 1 || !strings.Contains(out.String(), `VirtualService default/catch-all: organisation rule: VirtualService default/catch-all: host "*" is only allowed in istio-system`) {
		t.Fatalf("validate --rego: exit %d\n%s%s", code, out.String(), errOut.String())
	}
	// validate gives the rules the labels of the input's Namespace documents,
	// as analyze does: the production rule fires in both.
	if !strings.Contains(out.String(), "PeerAuthentication shop/default: organisation rule: PeerAuthentication shop/default: mTLS DISABLE is not allowed in production namespaces") {
		t.Errorf("validate --rego did not apply the namespace-label rule:\n%s", out.String())
	}
	out.Reset()
	code = runAnalyze(t.Context(), analyzeOptions{files: []string{dir}, output: "log", namespace: "default", failureThreshold: "Error", regoDir: rules}, nil, &out, &errOut)
	for _, want := range []string{
		`Error [MG0001] (PeerAuthentication shop/default`,
		`mTLS DISABLE is not allowed in production namespaces`,
		`Error [MG0001] (VirtualService default/catch-all`,
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("analyze --rego: missing %q in\n%s", want, out.String())
		}
	}
	if code != exitAnalyzeFoundIssues {
		t.Errorf("analyze --rego: exit %d, want %d", code, exitAnalyzeFoundIssues)
	}
	out.Reset()
	if err := runRegoTests(t.Context(), rules, &out); err != nil || !strings.Contains(out.String(), "PASS: 9/9") {
		t.Errorf("validate --rego --test: %v\n%s", err, out.String())
	}
	// Rules without tests pass, as opa test does without --fail-on-empty.
	noTests := t.TempDir()
	writeFile(t, noTests, "rules.rego", "package meshguard.validation\n\ndeny contains msg if {\n\tinput.kind == \"Nothing\"\n\tmsg := \"no\"\n}\n")
	out.Reset()
	if err := runRegoTests(t.Context(), noTests, &out); err != nil || !strings.Contains(out.String(), "PASS: 0/0") {
		t.Errorf("validate --rego --test without tests: %v, want a pass\n%s", err, out.String())
	}
}

// validate --rego reads the input's Namespace documents as analyze does
// (analysis.Input.AddKubernetesObject): a label value that is not a string
// (the API server refuses it) makes the document unreadable in both, where
// validate dropped that label and let a rule on it pass (exit 0); the error
// names the field (the converter's said only "unrecognized type: string").
func TestOrgRulesNamespaceLabelsReadAsAnalyze(t *testing.T) {
	dir, rules := t.TempDir(), t.TempDir()
	writeFile(t, rules, "r.rego", "package meshguard.validation\ndeny contains \"strict namespace\" if input.namespaceLabels.strict == \"true\"\n")
	writeFile(t, dir, "a.yaml", `apiVersion: v1
kind: Namespace
metadata:
  name: shop
  labels: {strict: true}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: shop}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: ["*"]
`)
	var out, errOut bytes.Buffer
	code := runValidate(t.Context(), validateOptions{files: []string{dir}, output: "text", namespace: "default", regoDir: rules}, nil, &out, &errOut)
	if code != 2 || !strings.Contains(errOut.String(), "a.yaml#0: unreadable: Namespace shop: json: cannot unmarshal bool into Go struct field Namespace.metadata.labels.strict of type string") {
		t.Errorf("validate --rego: exit %d, want 2 with the Namespace unreadable\n%s%s", code, out.String(), errOut.String())
	}
	out.Reset()
	errOut.Reset()
	code = runAnalyze(t.Context(), analyzeOptions{files: []string{dir}, output: "log", namespace: "default", failureThreshold: "Error", regoDir: rules}, nil, &out, &errOut)
	if code != exitAnalyzeDataError || !strings.Contains(errOut.String(), "a.yaml#0: unreadable: Namespace shop: json: cannot unmarshal bool into Go struct field Namespace.metadata.labels.strict of type string") {
		t.Errorf("analyze --rego: exit %d, want %d with the Namespace unreadable\n%s%s", code, exitAnalyzeDataError, out.String(), errOut.String())
	}
}

// A URI prefix covered by an earlier rule's prefix is Istio's IST0131
// VirtualServiceIneffectiveMatch, level Info: it fails only at threshold Info.
func TestAnalyzeIneffectiveMatch(t *testing.T) {
	for threshold, want := range map[string]int{"Info": exitAnalyzeFoundIssues, "Warning": 0} {
		var out, errOut bytes.Buffer
		code := runAnalyze(t.Context(), analyzeOptions{files: []string{"testdata/analyze/unreachable"}, output: "log", namespace: "default", failureThreshold: threshold}, nil, &out, &errOut)
		if code != want || !strings.Contains(out.String(), "Info [IST0131] (VirtualService default/reviews") {
			t.Errorf("threshold %s: exit %d (want %d)\n%s%s", threshold, code, want, out.String(), errOut.String())
		}
	}
}

// --kubeconfig: the stored objects are listed (paged) and analysed like files.
func TestAnalyzeCluster(t *testing.T) {
	obj := func(apiVersion, kind, ns, name string, spec map[string]any) *unstructured.Unstructured {
		u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": apiVersion, "kind": kind,
			"metadata": map[string]any{"name": name, "namespace": ns}}}
		if spec != nil {
			u.Object["spec"] = spec
		}
		return u
	}
	client, mapper := fakeCluster(t,
		obj("v1", "Service", "default", "reviews", nil),
		obj("networking.istio.io/v1", "DestinationRule", "default", "reviews", map[string]any{"host": "reviews",
			"subsets": []any{map[string]any{"name": "v1", "labels": map[string]any{"version": "v1"}}}}),
		obj("networking.istio.io/v1", "VirtualService", "default", "reviews", map[string]any{"hosts": []any{"reviews"},
			"http": []any{map[string]any{"route": []any{map[string]any{"destination": map[string]any{"host": "reviews", "subset": "v2"}}}}}}),
	)
	var out, errOut bytes.Buffer
	code := runAnalyze(t.Context(), analyzeOptions{output: "log", namespace: "default", failureThreshold: "Error", cluster: client, mapper: mapper, clusterAllNamespaces: true}, nil, &out, &errOut)
	if code != exitAnalyzeFoundIssues || !strings.Contains(out.String(), `Error [IST0101] (VirtualService default/reviews cluster virtualservices.networking.istio.io) Referenced host+subset in destinationrule not found: "reviews+v2"`) {
		t.Fatalf("exit %d\n%s%s", code, out.String(), errOut.String())
	}
}

// --kubeconfig lists the Namespaces after the mesh objects, as the audit
// does (audit.Auditor.snapshot): a namespace created while the objects are
// listed, with an object in it, gives the rules its labels (listed first, it
// was missing and its objects judged without labels).
func TestAnalyzeClusterNamespaceCreatedDuringListing(t *testing.T) {
	client, mapper := fakeCluster(t)
	fakelist.CreateWhenListed(t, client, "virtualservices",
		fakelist.Object{GVR: schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}, Object: map[string]any{"apiVersion": "v1", "kind": "Namespace",
			"metadata": map[string]any{"name": "late", "labels": map[string]any{"environment": "production"}}}},
		fakelist.Object{GVR: schema.GroupVersionResource{Group: "networking.istio.io", Version: "v1", Resource: "virtualservices"}, Object: map[string]any{"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
			"metadata": map[string]any{"name": "vs", "namespace": "late"},
			"spec":     map[string]any{"hosts": []any{"a.example.com"}, "http": []any{map[string]any{"route": []any{map[string]any{"destination": map[string]any{"host": "a.example.com"}}}}}}}})
	rules := t.TempDir()
	if err := os.WriteFile(filepath.Join(rules, "r.rego"), []byte("package meshguard.validation\ndeny contains \"production\" if input.namespaceLabels.environment == \"production\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	code := runAnalyze(t.Context(), analyzeOptions{output: "log", namespace: "default", failureThreshold: "Error", cluster: client, mapper: mapper, clusterAllNamespaces: true, regoDir: rules}, nil, &out, &errOut)
	if code != exitAnalyzeFoundIssues || !strings.Contains(out.String(), "Error [MG0001] (VirtualService late/vs") {
		t.Fatalf("exit %d, want the rule on late's labels\n%s%s", code, out.String(), errOut.String())
	}
}

// --kubeconfig lists the Services after the mesh objects that refer to them
// (as the Namespaces): a Service created with its VirtualService while the
// cluster is listed (kubectl apply -f app.yaml creates the Service first) was
// missed, listed before, and the VirtualService reported as routing to a
// missing host (IST0101) for that run. istioctl reads informer caches, each
// kind listed and then watched, so it sees both once they exist.
func TestAnalyzeClusterServiceCreatedDuringListing(t *testing.T) {
	client, mapper := fakeCluster(t)
	fakelist.CreateWhenListed(t, client, "virtualservices",
		fakelist.Object{GVR: schema.GroupVersionResource{Version: "v1", Resource: "services"}, Object: map[string]any{"apiVersion": "v1", "kind": "Service",
			"metadata": map[string]any{"name": "reviews", "namespace": "default"}, "spec": map[string]any{"ports": []any{map[string]any{"port": int64(80), "name": "http"}}}}},
		fakelist.Object{GVR: schema.GroupVersionResource{Group: "networking.istio.io", Version: "v1", Resource: "virtualservices"}, Object: map[string]any{"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
			"metadata": map[string]any{"name": "reviews", "namespace": "default"},
			"spec":     map[string]any{"hosts": []any{"reviews"}, "http": []any{map[string]any{"route": []any{map[string]any{"destination": map[string]any{"host": "reviews"}}}}}}}})
	var out, errOut bytes.Buffer
	code := runAnalyze(t.Context(), analyzeOptions{output: "log", namespace: "default", failureThreshold: "Info", cluster: client, mapper: mapper, clusterAllNamespaces: true}, nil, &out, &errOut)
	if code != 0 || out.Len() != 0 {
		t.Fatalf("exit %d, want no message (the Service exists)\n%s%s", code, out.String(), errOut.String())
	}
}

// --kubeconfig with files simulates applying the files to the cluster, as
// istioctl analyze -k FILE does (its file source is added after the cluster's,
// in ascending precedence): an object of the files replaces the stored one of
// the same kind, namespace and name. The stored VirtualService routes to a
// subset its DestinationRule lacks, the file's fixed version does not; both
// were analysed (the stale one reported, the index holding it) before.
func TestAnalyzeFilesReplaceClusterObjects(t *testing.T) {
	obj := func(apiVersion, kind, ns, name string, spec map[string]any) *unstructured.Unstructured {
		return &unstructured.Unstructured{Object: map[string]any{"apiVersion": apiVersion, "kind": kind,
			"metadata": map[string]any{"name": name, "namespace": ns}, "spec": spec}}
	}
	route := func(subset string) map[string]any {
		return map[string]any{"hosts": []any{"reviews"},
			"http": []any{map[string]any{"route": []any{map[string]any{"destination": map[string]any{"host": "reviews", "subset": subset}}}}}}
	}
	client, mapper := fakeCluster(t,
		&unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Service", "metadata": map[string]any{"name": "reviews", "namespace": "default"}}},
		obj("networking.istio.io/v1", "DestinationRule", "default", "reviews", map[string]any{"host": "reviews",
			"subsets": []any{map[string]any{"name": "v1", "labels": map[string]any{"version": "v1"}}}}),
		obj("networking.istio.io/v1", "VirtualService", "default", "reviews", route("v2")),
	)
	dir := t.TempDir()
	writeFile(t, dir, "vs.yaml", `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v1}
`)
	var out, errOut bytes.Buffer
	code := runAnalyze(t.Context(), analyzeOptions{files: []string{dir}, output: "log", namespace: "default", failureThreshold: "Info", cluster: client, mapper: mapper, clusterAllNamespaces: true}, nil, &out, &errOut)
	if code != 0 || out.Len() != 0 {
		t.Fatalf("exit %d, messages:\n%s%s", code, out.String(), errOut.String())
	}
}

// A rule over input.referenced sees the DestinationRule and Service a
// VirtualService routes to (resolved as the cross-reference checks resolve
// hosts), with the same messages in validate and analyze: the reviews route
// goes through a DestinationRule without TLS (denied) to a Service (warned);
// the ratings route's DestinationRule sets ISTIO_MUTUAL and ratings has no
// Service in the input, so nothing fires for it.
func TestOrgRulesSeeReferencedObjects(t *testing.T) {
	const dir, rules = "testdata/analyze/referenced/mesh.yaml", "testdata/analyze/referenced/rules"
	const deny = "VirtualService shop/reviews: routes through DestinationRule shop/reviews, which sets no TLS"
	const warn = "VirtualService shop/reviews: routes to Service shop/reviews"
	var out, errOut bytes.Buffer
	code := runValidate(t.Context(), validateOptions{files: []string{dir}, output: "text", namespace: "default", regoDir: rules}, nil, &out, &errOut)
	if code != 1 {
		t.Errorf("validate --rego: exit %d, want 1\n%s%s", code, out.String(), errOut.String())
	}
	for _, want := range []string{"VirtualService shop/reviews: organisation rule: " + deny, "warning: VirtualService shop/reviews: organisation rule: " + warn} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("validate --rego: missing %q in\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "shop/ratings: organisation rule") {
		t.Errorf("validate --rego: a rule fired for ratings:\n%s", out.String())
	}
	out.Reset()
	code = runAnalyze(t.Context(), analyzeOptions{files: []string{dir}, output: "log", namespace: "default", failureThreshold: "Error", regoDir: rules}, nil, &out, &errOut)
	for _, want := range []string{"Error [MG0001] (VirtualService shop/reviews " + dir + "#2) " + deny, "Warning [MG0001] (VirtualService shop/reviews " + dir + "#2) " + warn} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("analyze --rego: missing %q in\n%s", want, out.String())
		}
	}
	if code != exitAnalyzeFoundIssues {
		t.Errorf("analyze --rego: exit %d, want %d", code, exitAnalyzeFoundIssues)
	}
}

// --kubeconfig -n NS: the pods a Gateway selects are looked up in every
// namespace (the ingress gateway runs in istio-system), with the Services of
// their namespace; a Gateway port no such Service targets is IST0162, a
// Gateway selecting no pod IST0101.
func TestAnalyzeClusterGatewayPorts(t *testing.T) {
	u := func(obj map[string]any) *unstructured.Unstructured { return &unstructured.Unstructured{Object: obj} }
	gw := func(name string, sel map[string]any, port int64) *unstructured.Unstructured {
		return u(map[string]any{"apiVersion": "networking.istio.io/v1", "kind": "Gateway",
			"metadata": map[string]any{"name": name, "namespace": "shop"},
			"spec": map[string]any{"selector": sel, "servers": []any{map[string]any{
				"port": map[string]any{"number": port, "name": "http", "protocol": "HTTP"}, "hosts": []any{"*"}}}}})
	}
	client, mapper := fakeCluster(t, existingNamespace("shop"),
		u(map[string]any{"apiVersion": "v1", "kind": "Pod", "metadata": map[string]any{"name": "ingress-1", "namespace": "istio-system",
			"labels": map[string]any{"istio": "ingressgateway"}}}),
		u(map[string]any{"apiVersion": "v1", "kind": "Pod", "metadata": map[string]any{"name": "other", "namespace": "shop",
			"labels": map[string]any{"app": "other"}}}),
		u(map[string]any{"apiVersion": "v1", "kind": "Service", "metadata": map[string]any{"name": "istio-ingressgateway", "namespace": "istio-system"},
			"spec": map[string]any{"selector": map[string]any{"istio": "ingressgateway"},
				"ports": []any{map[string]any{"port": int64(80), "targetPort": int64(8080), "protocol": "TCP"}}}}),
		gw("good", map[string]any{"istio": "ingressgateway"}, 8080),
		gw("bad-port", map[string]any{"istio": "ingressgateway"}, 9090),
		gw("no-workload", map[string]any{"istio": "egressgateway"}, 8080),
	)
	var out, errOut bytes.Buffer
	code := runAnalyze(t.Context(), analyzeOptions{output: "log", namespace: "shop", failureThreshold: "Error", cluster: client, mapper: mapper}, nil, &out, &errOut)
	want := []string{
		`Error [IST0101] (Gateway shop/no-workload cluster gateways.networking.istio.io) Referenced selector not found: "istio=egressgateway"`,
		`Warning [IST0162] (Gateway shop/bad-port cluster gateways.networking.istio.io) The gateway is listening on a target port (port 9090)`,
	}
	for _, w := range want {
		if !strings.Contains(out.String(), w) {
			t.Errorf("missing %q in\n%s%s", w, out.String(), errOut.String())
		}
	}
	if strings.Count(out.String(), "\n") != 2 || code != exitAnalyzeFoundIssues {
		t.Errorf("exit %d, want 2 messages:\n%s%s", code, out.String(), errOut.String())
	}
}

// --kubeconfig: the pods each Sidecar workloadSelector selects are listed in
// the Sidecar's namespace, so two Sidecars selecting one pod are IST0110
// there as from files (ratings-1, which no Gateway selects, was not read
// before); a pod also selected by a Gateway is read once.
func TestAnalyzeClusterSidecarSelectors(t *testing.T) {
	u := func(obj map[string]any) *unstructured.Unstructured { return &unstructured.Unstructured{Object: obj} }
	pod := func(ns, name string, labels map[string]any) *unstructured.Unstructured {
		return u(map[string]any{"apiVersion": "v1", "kind": "Pod", "metadata": map[string]any{"name": name, "namespace": ns, "labels": labels}})
	}
	sidecar := func(name string, sel map[string]any) *unstructured.Unstructured {
		return u(map[string]any{"apiVersion": "networking.istio.io/v1", "kind": "Sidecar",
			"metadata": map[string]any{"name": name, "namespace": "shop"},
			"spec": map[string]any{"workloadSelector": map[string]any{"labels": sel},
				"egress": []any{map[string]any{"hosts": []any{"./*"}}}}})
	}
	client, mapper := fakeCluster(t, existingNamespace("shop"),
		pod("shop", "cart-1", map[string]any{"app": "cart", "tier": "web"}),
		pod("shop", "ratings-1", map[string]any{"app": "ratings"}),
		pod("other", "cart-1", map[string]any{"app": "cart", "tier": "web"}),
		sidecar("by-app", map[string]any{"app": "cart"}),
		sidecar("by-tier", map[string]any{"tier": "web"}),
		sidecar("ratings", map[string]any{"app": "ratings"}),
		sidecar("ratings-too", map[string]any{"app": "ratings"}),
		u(map[string]any{"apiVersion": "networking.istio.io/v1", "kind": "Gateway",
			"metadata": map[string]any{"name": "gw", "namespace": "shop"},
			"spec": map[string]any{"selector": map[string]any{"tier": "web"}, "servers": []any{map[string]any{
				"port": map[string]any{"number": int64(80), "name": "http", "protocol": "HTTP"}, "hosts": []any{"*"}}}}}),
	)
	var out, errOut bytes.Buffer
	runAnalyze(t.Context(), analyzeOptions{output: "log", namespace: "shop", failureThreshold: "Error", cluster: client, mapper: mapper}, nil, &out, &errOut)
	var got []string
	for _, l := range strings.Split(out.String(), "\n") {
		if strings.Contains(l, "[IST0110]") {
			got = append(got, l)
		}
	}
	const cart = `The Sidecars [by-app by-tier] in namespace "shop" select the same workload pod "cart-1", which can lead to undefined behavior.`
	const ratings = `The Sidecars [ratings ratings-too] in namespace "shop" select the same workload pod "ratings-1", which can lead to undefined behavior.`
	want := []string{
		`Error [IST0110] (Sidecar shop/by-app cluster sidecars.networking.istio.io) ` + cart,
		`Error [IST0110] (Sidecar shop/by-tier cluster sidecars.networking.istio.io) ` + cart,
		`Error [IST0110] (Sidecar shop/ratings cluster sidecars.networking.istio.io) ` + ratings,
		`Error [IST0110] (Sidecar shop/ratings-too cluster sidecars.networking.istio.io) ` + ratings,
	}
	slices.Sort(got) // the order is analysis.Sort's, tested there
	if !slices.Equal(got, want) {
		t.Errorf("IST0110 lines:\n%s\nwant\n%s\n(all output:\n%s%s)", strings.Join(got, "\n"), strings.Join(want, "\n"), out.String(), errOut.String())
	}
}

// Istio's bookinfo networking samples (analysis/testdata/bookinfo-networking,
// see its NOTICE), each analysed with bookinfo's Services and
// destination-rule-all.yaml as they are applied in Istio's tasks: no Error.
// fault-injection-details-v1.yaml has two routes without matches, which
// Istio's analyzeUnreachableHTTPRules reports as IST0130 (a Warning).
func TestAnalyzeIstioNetworkingSamples(t *testing.T) {
	const bookinfo = "../../analysis/testdata/bookinfo/"
	samples, err := filepath.Glob("../../analysis/testdata/bookinfo-networking/*.yaml")
	if err != nil || len(samples) < 6 {
		t.Fatalf("samples: %v %v", samples, err)
	}
	samples = append(samples, bookinfo+"bookinfo-gateway.yaml", bookinfo+"virtual-service-all-v1.yaml")
	for _, sample := range samples {
		t.Run(filepath.Base(sample), func(t *testing.T) {
			var out, errOut bytes.Buffer
			files := []string{bookinfo + "bookinfo.yaml", bookinfo + "destination-rule-all.yaml", sample}
			code := runAnalyze(t.Context(), analyzeOptions{files: files, output: "json", namespace: "default", failureThreshold: "Error"}, nil, &out, &errOut)
			var msgs []map[string]any
			if err := json.Unmarshal(out.Bytes(), &msgs); err != nil {
				t.Fatalf("output: %v\n%s", err, out.String())
			}
			var codes []string
			for _, m := range msgs {
				codes = append(codes, fmt.Sprint(m["level"], " ", m["code"], " ", m["field"]))
			}
			want := []string(nil)
			if filepath.Base(sample) == "fault-injection-details-v1.yaml" {
				want = []string{"Warning IST0130 spec.http[1]"}
			}
			for _, c := range codes {
				if strings.HasPrefix(c, "Error") {
					t.Errorf("false error: %s\n%s", c, out.String())
				}
			}
			if code != 0 {
				t.Errorf("exit %d\n%s%s", code, out.String(), errOut.String())
			}
			if want != nil && !slices.Equal(codes, want) {
				t.Errorf("messages %v, want %v", codes, want)
			}
		})
	}
}

// An organisation rule judges an object that fails validation too, on every
// path: the webhook and validate add its deny to the validation errors and
// the audit reports MG0001 beside IST0106, so analyze must as well.
func TestOrgRulesJudgeInvalidObjects(t *testing.T) {
	dir, rules := t.TempDir(), t.TempDir()
	writeFile(t, rules, "r.rego", "package meshguard.validation\ndeny contains \"no VirtualService named bad\" if input.object.metadata.name == \"bad\"\n")
	vs := `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: bad, namespace: shop}
spec:
  hosts: [bad]
  http:
  - route: [{destination: {host: reviews}, weight: -15}]
`
	writeFile(t, dir, "vs.yaml", vs)
	var out, errOut bytes.Buffer
	code := runValidate(t.Context(), validateOptions{files: []string{dir}, output: "text", namespace: "default", regoDir: rules}, nil, &out, &errOut)
	if code != 1 || !strings.Contains(out.String(), "organisation rule: no VirtualService named bad") {
		t.Fatalf("validate --rego: exit %d\n%s%s", code, out.String(), errOut.String())
	}
	out.Reset()
	code = runAnalyze(t.Context(), analyzeOptions{files: []string{dir}, output: "log", namespace: "default", failureThreshold: "Error", regoDir: rules}, nil, &out, &errOut)
	for _, want := range []string{"Error [IST0106] (VirtualService shop/bad", "Error [MG0001] (VirtualService shop/bad", ") no VirtualService named bad"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("analyze --rego: missing %q in\n%s", want, out.String())
		}
	}
	if code != exitAnalyzeFoundIssues {
		t.Errorf("analyze --rego: exit %d, want %d", code, exitAnalyzeFoundIssues)
	}
}

// --kubeconfig lists every mesh kind meshguard validates (at the version the
// API server prefers), as the audit does: a stored Sidecar or
// RequestAuthentication that fails validation is IST0106 in both.
func TestAnalyzeClusterEveryKind(t *testing.T) {
	u := func(apiVersion, kind, name string, spec map[string]any) *unstructured.Unstructured {
		return &unstructured.Unstructured{Object: map[string]any{"apiVersion": apiVersion, "kind": kind,
			"metadata": map[string]any{"name": name, "namespace": "default"}, "spec": spec}}
	}
	sidecar := u("networking.istio.io/v1", "Sidecar", "default", map[string]any{"egress": []any{map[string]any{"hosts": []any{"bad"}}}})
	ra := u("security.istio.io/v1", "RequestAuthentication", "jwt", map[string]any{"jwtRules": []any{map[string]any{"issuer": ""}}})
	client, mapper := fakeCluster(t, sidecar, ra)
	var out, errOut bytes.Buffer
	code := runAnalyze(t.Context(), analyzeOptions{output: "log", namespace: "default", failureThreshold: "Error", cluster: client, mapper: mapper, clusterAllNamespaces: true}, nil, &out, &errOut)
	for _, want := range []string{
		`Error [IST0106] (Sidecar default/default cluster sidecars.networking.istio.io) Schema validation error: spec.egress[0].hosts[0]: `,
		`Error [IST0106] (RequestAuthentication default/jwt cluster requestauthentications.security.istio.io) Schema validation error: spec.jwtRules[0].issuer: `,
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("missing %q in\n%s%s", want, out.String(), errOut.String())
		}
	}
	if code != exitAnalyzeFoundIssues {
		t.Errorf("exit %d, want %d", code, exitAnalyzeFoundIssues)
	}
}

// fakeCluster is a fake API server serving Namespaces, Services, Pods and
// every kind validation knows (at v1, but ProxyConfig at v1beta1, the one
// version Istio serves), holding objs: a dynamic client and the REST mapper
// discovery would give. Objects are created through the client, filed under
// the mapper's plurals (the fake would guess "gatewaies").
func fakeCluster(t *testing.T, objs ...*unstructured.Unstructured) (*dynamicfake.FakeDynamicClient, meta.RESTMapper) {
	t.Helper()
	version := func(gk schema.GroupKind) string {
		if gk.Kind == "ProxyConfig" {
			return "v1beta1"
		}
		return "v1"
	}
	gvs := []schema.GroupVersion{{Version: "v1"}, {Group: "apps", Version: "v1"}}
	for _, gk := range validation.KnownKinds() {
		if gv := (schema.GroupVersion{Group: gk.Group, Version: version(gk)}); !slices.Contains(gvs, gv) {
			gvs = append(gvs, gv)
		}
	}
	mapper := meta.NewDefaultRESTMapper(gvs)
	lists := map[schema.GroupVersionResource]string{}
	add := func(gvk schema.GroupVersionKind, plural string) {
		mapper.AddSpecific(gvk, gvk.GroupVersion().WithResource(plural), gvk.GroupVersion().WithResource(strings.ToLower(gvk.Kind)), meta.RESTScopeNamespace)
		lists[gvk.GroupVersion().WithResource(plural)] = gvk.Kind + "List"
	}
	for _, k := range []string{"Namespace", "Service", "Pod", "ConfigMap"} {
		add(schema.GroupVersionKind{Version: "v1", Kind: k}, strings.ToLower(k)+"s")
	}
	add(schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}, "deployments")
	add(schema.GroupVersionKind{Group: "admissionregistration.k8s.io", Version: "v1", Kind: "MutatingWebhookConfiguration"}, "mutatingwebhookconfigurations")
	for _, gk := range validation.KnownKinds() {
		plural := strings.ToLower(gk.Kind) + "s"
		if strings.HasSuffix(gk.Kind, "y") && !strings.HasSuffix(gk.Kind, "ay") {
			plural = strings.ToLower(strings.TrimSuffix(gk.Kind, "y")) + "ies"
		}
		add(gk.WithVersion(version(gk)), plural)
	}
	client := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), lists)
	for _, o := range objs {
		m, err := mapper.RESTMapping(o.GroupVersionKind().GroupKind(), o.GroupVersionKind().Version)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := client.Resource(m.Resource).Namespace(o.GetNamespace()).Create(t.Context(), o, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	return client, mapper
}

// existingNamespace is Namespace name, for a fake cluster analysed with -n
// name: runAnalyze checks first that it exists (clusterNamespaceExists).
// Labelled istio-injection=disabled, so that it adds no message of its own
// (IST0102).
func existingNamespace(name string) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace",
		"metadata": map[string]any{"name": name, "labels": map[string]any{"istio-injection": "disabled"}}}}
}

// TestAnalyzeNoIssuesNamesTarget: without messages printed analyze says, on
// stderr and in every output format, what it analysed, as istioctl analyze
// does (istioctl/pkg/analyze/analyze.go Analyze: len(outputMessages) == 0,
// outside the format switch: "✔ No validation issues found when analyzing
// %s." of the files read, one a line, else "namespace: NS" or "all
// namespaces"; without the ✔ and with "(but N file(s) could not be parsed)"
// after a parse error). It was written in the log format only. Stdout holds
// the message list alone, -o json's and -o yaml's an empty list.
func TestAnalyzeNoIssuesNamesTarget(t *testing.T) {
	dir := t.TempDir()
	svc := "apiVersion: v1\nkind: Service\nmetadata: {name: reviews}\nspec:\n  ports: [{port: 80, name: http}]\n"
	for name, data := range map[string]string{"a.yaml": svc, "b.yaml": svc, "bad.yaml": "a: [\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	a, b, bad := filepath.Join(dir, "a.yaml"), filepath.Join(dir, "b.yaml"), filepath.Join(dir, "bad.yaml")
	client, mapper := fakeCluster(t, existingNamespace("shop"))
	for _, tc := range []struct {
		name string
		o    analyzeOptions
		want string
	}{
		{"files", analyzeOptions{files: []string{a, b}, output: "log"}, "✔ No validation issues found when analyzing " + a + "\n" + b + ".\n"},
		{"files, json", analyzeOptions{files: []string{a}, output: "json"}, "✔ No validation issues found when analyzing " + a + ".\n"},
		{"files, yaml", analyzeOptions{files: []string{a}, output: "yaml"}, "✔ No validation issues found when analyzing " + a + ".\n"},
		{"cluster, json", analyzeOptions{output: "json", namespace: "shop", cluster: client, mapper: mapper}, "✔ No validation issues found when analyzing namespace: shop.\n"},
		{"all namespaces", analyzeOptions{output: "log", cluster: client, mapper: mapper, clusterAllNamespaces: true}, "✔ No validation issues found when analyzing all namespaces.\n"},
		{"one namespace", analyzeOptions{output: "log", namespace: "shop", cluster: client, mapper: mapper}, "✔ No validation issues found when analyzing namespace: shop.\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.o.namespace == "" {
				tc.o.namespace = "default"
			}
			tc.o.failureThreshold = "Error"
			var out, errOut bytes.Buffer
			if code := runAnalyze(t.Context(), tc.o, nil, &out, &errOut); code != 0 || errOut.String() != tc.want {
				t.Errorf("exit %d, stderr %q, want %q", code, errOut.String(), tc.want)
			}
			if want := map[string]string{"log": "", "json": "[]\n", "yaml": "[]\n"}[tc.o.output]; out.String() != want {
				t.Errorf("stdout %q, want %q", out.String(), want)
			}
		})
	}
	var out, errOut bytes.Buffer
	code := runAnalyze(t.Context(), analyzeOptions{files: []string{a, bad}, output: "log", namespace: "default", failureThreshold: "Error"}, nil, &out, &errOut)
	if want := "No validation issues found when analyzing namespace: default (but 1 file could not be parsed).\n"; code != exitAnalyzeDataError || !strings.Contains(errOut.String(), want) {
		t.Errorf("exit %d, stderr %q, want %q", code, errOut.String(), want)
	}
	// In JSON too, with the same exit status (docs/compatibility.md).
	out.Reset()
	errOut.Reset()
	code = runAnalyze(t.Context(), analyzeOptions{files: []string{a, bad}, output: "json", namespace: "default", failureThreshold: "Error"}, nil, &out, &errOut)
	if want := "No validation issues found when analyzing namespace: default (but 1 file could not be parsed).\n"; code != exitAnalyzeDataError || !strings.HasSuffix(errOut.String(), want) || out.String() != "[]\n" {
		t.Errorf("json: exit %d, stdout %q, stderr %q, want the suffix %q", code, out.String(), errOut.String(), want)
	}
}

// TestAnalyzeFoundIssuesTrailer: in the log format, messages at or above the
// failure threshold end with istioctl's error text on stderr
// (istioctl/pkg/analyze/analyze.go AnalyzerFoundIssuesError, printed by cobra
// as "Error: ..."), naming the namespace as istioctl does; a parse error
// without such messages with FileParseError's. JSON output has neither
// (istioctl returns them in the log format only).
func TestAnalyzeFoundIssuesTrailer(t *testing.T) {
	const found = "Error: Analyzers found issues when analyzing namespace: default.\nSee https://istio.io/latest/docs/reference/config/analysis for more information about causes and resolutions.\n"
	var out, errOut bytes.Buffer
	code := runAnalyze(t.Context(), analyzeOptions{files: []string{"testdata/analyze/missing-subset"}, output: "log", namespace: "default", failureThreshold: "Error"}, nil, &out, &errOut)
	if code != exitAnalyzeFoundIssues || errOut.String() != found {
		t.Errorf("exit %d, stderr %q, want %q", code, errOut.String(), found)
	}
	out.Reset()
	errOut.Reset()
	code = runAnalyze(t.Context(), analyzeOptions{files: []string{"testdata/analyze/missing-subset"}, output: "json", namespace: "default", failureThreshold: "Error"}, nil, &out, &errOut)
	if code != exitAnalyzeFoundIssues || errOut.Len() != 0 {
		t.Errorf("json: exit %d, stderr %q, want none", code, errOut.String())
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("a: [\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	errOut.Reset()
	code = runAnalyze(t.Context(), analyzeOptions{files: []string{bad}, output: "log", namespace: "default", failureThreshold: "Error"}, nil, &out, &errOut)
	if want := "Error: Some files couldn't be parsed.\n"; code != exitAnalyzeDataError || !strings.HasSuffix(errOut.String(), want) {
		t.Errorf("exit %d, stderr %q, want the suffix %q", code, errOut.String(), want)
	}
	// Issues and an unparsable file: istioctl's issues error wins
	// (errorIfMessagesExceedThreshold before FileParseError).
	errOut.Reset()
	code = runAnalyze(t.Context(), analyzeOptions{files: []string{"testdata/analyze/missing-subset", bad}, output: "log", namespace: "default", failureThreshold: "Error"}, nil, &out, &errOut)
	if code != exitAnalyzeFoundIssues || !strings.HasSuffix(errOut.String(), found) {
		t.Errorf("issues and a parse error: exit %d, stderr %q, want %d and the suffix %q", code, errOut.String(), exitAnalyzeFoundIssues, found)
	}
}

// TestAnalyzeClusterUnreadable: a cluster that cannot be listed is an error
// of no other kind, exit 1, as in istioctl (istioctl/pkg/analyze/analyze.go
// returns sa.Analyze's error before printing any message; GetExitCode maps it
// to ExitUnknownError), not an input that could not be parsed (65, "Some files
// couldn't be parsed."); nor are the objects read so far analysed (the files'
// issues alone gave 79).
func TestAnalyzeClusterUnreadable(t *testing.T) {
	gateway := writeFile(t, t.TempDir(), "gw.yaml", `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: ["*"]
`)
	for _, tc := range []struct {
		name, resource, output string
		files                  []string
	}{
		{"services, no file", "services", "log", nil},
		{"services, a file with issues", "services", "log", []string{"testdata/analyze/missing-subset"}},
		{"services, json", "services", "json", []string{"testdata/analyze/missing-subset"}},
		{"the pods a Gateway selects", "pods", "log", []string{gateway}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client, mapper := fakeCluster(t)
			client.PrependReactor("list", tc.resource, func(k8stesting.Action) (bool, runtime.Object, error) {
				return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: tc.resource}, "", errors.New("no RBAC"))
			})
			var out, errOut bytes.Buffer
			code := runAnalyze(t.Context(), analyzeOptions{files: tc.files, output: tc.output, namespace: "default", failureThreshold: "Error",
				cluster: client, mapper: mapper, clusterAllNamespaces: true}, nil, &out, &errOut)
			want := "Error: cluster: listing " + tc.resource
			if code != 1 || out.Len() != 0 || !strings.Contains(errOut.String(), want) || strings.Contains(errOut.String(), "couldn't be parsed") {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit 1, no message and %q", code, out.String(), errOut.String(), want)
			}
		})
	}
}

// TestAnalyzeEmptyNamespaceIsDefault: with -n "" analyze took the objects
// that name no namespace to be in none: the trailer named "namespace: ", and
// a file's object did not replace the cluster's object it is (objectKey), so
// the stored one was analysed too. istioctl analyze uses "default" then
// (istioctl/pkg/analyze/analyze.go: selectedNamespace == "" ->
// metav1.NamespaceDefault), as meshguard validate does.
func TestAnalyzeEmptyNamespaceIsDefault(t *testing.T) {
	const vs = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - route: [{destination: {host: reviews, subset: v3}}]
`
	file := writeFile(t, t.TempDir(), "vs.yaml", vs)
	var out, errOut bytes.Buffer
	code := runAnalyze(t.Context(), analyzeOptions{files: []string{file}, output: "log", namespace: "", failureThreshold: "Error"}, nil, &out, &errOut)
	if code != exitAnalyzeFoundIssues || !strings.Contains(out.String(), "(VirtualService default/reviews ") ||
		!strings.Contains(errOut.String(), "when analyzing namespace: default.\n") {
		t.Errorf("files: exit %d, stdout %q, stderr %q; want %d naming default", code, out.String(), errOut.String(), exitAnalyzeFoundIssues)
	}
	// The file's VirtualService, without the subset, replaces the one stored
	// in default.
	stored := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(strings.Replace(vs, "metadata: {name: reviews}", "metadata: {name: reviews, namespace: default}", 1)), &stored.Object); err != nil {
		t.Fatal(err)
	}
	client, mapper := fakeCluster(t, existingNamespace("default"), stored, &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Service",
		"metadata": map[string]any{"name": "reviews", "namespace": "default"}, "spec": map[string]any{"ports": []any{map[string]any{"port": int64(80), "name": "http"}}}}})
	writeFile(t, filepath.Dir(file), "vs.yaml", strings.Replace(vs, ", subset: v3", "", 1))
	out.Reset()
	errOut.Reset()
	code = runAnalyze(t.Context(), analyzeOptions{files: []string{file}, output: "log", namespace: "", failureThreshold: "Error", cluster: client, mapper: mapper}, nil, &out, &errOut)
	if code != 0 || out.Len() != 0 {
		t.Errorf("cluster: exit %d, stdout %q, stderr %q; want the stored VirtualService replaced by the file's", code, out.String(), errOut.String())
	}
}

// TestAnalyzeClusterListing: --kubeconfig pages through each list (limit
// clusterPageSize, then the continue token: a Service on the second page is
// a host references may name) and, with -n, still lists the cluster-scoped
// Namespaces, whose labels organisation rules see (a namespaced list of them
// is a 404 on an API server: the rules ran without the labels).
func TestAnalyzeClusterListing(t *testing.T) {
	u := func(apiVersion, kind, ns, name string, fields map[string]any) *unstructured.Unstructured {
		o := &unstructured.Unstructured{Object: map[string]any{"apiVersion": apiVersion, "kind": kind, "metadata": map[string]any{"name": name}}}
		if ns != "" {
			o.SetNamespace(ns)
		}
		for k, v := range fields {
			o.Object[k] = v
		}
		return o
	}
	client, mapper := fakeCluster(t,
		u("v1", "Namespace", "", "shop", map[string]any{"metadata": map[string]any{"name": "shop", "labels": map[string]any{"strict": "true"}}}),
		// Read (references may cross namespaces), but outside -n shop: no
		// IST0102 of its own.
		u("v1", "Namespace", "", "elsewhere", nil),
		u("networking.istio.io/v1", "VirtualService", "shop", "reviews", map[string]any{"spec": map[string]any{"hosts": []any{"reviews"},
			"http": []any{map[string]any{"route": []any{map[string]any{"destination": map[string]any{"host": "ratings"}}}}}}}))
	// Services are listed in every namespace, and the fake's list action
	// of every namespace drops Limit and Continue
	// (k8s.io/client-go/testing NewRootListActionWithOptions): the pages
	// are served in front of it (pagedServices).
	services := pagedServices{Interface: client, page: func(opts metav1.ListOptions) *unstructured.UnstructuredList {
		if opts.Limit != clusterPageSize {
			t.Errorf("services listed with limit %d, want %d", opts.Limit, clusterPageSize)
		}
		list := &unstructured.UnstructuredList{Object: map[string]any{"apiVersion": "v1", "kind": "ServiceList"}}
		name := "reviews"
		if opts.Continue == "" {
			list.SetContinue("page-2")
		} else {
			name = "ratings"
		}
		list.Items = []unstructured.Unstructured{*u("v1", "Service", "shop", name, nil)}
		return list
	}}
	rules := t.TempDir()
	writeFile(t, rules, "r.rego", "package meshguard.validation\ndeny contains \"strict namespace\" if input.namespaceLabels.strict == \"true\"\n")
	var out, errOut bytes.Buffer
	code := runAnalyze(t.Context(), analyzeOptions{output: "log", namespace: "shop", failureThreshold: "Error", regoDir: rules, cluster: services, mapper: mapper}, nil, &out, &errOut)
	// The Namespace shop has no injection label: Istio's injection analyzer's
	// IST0102 (analysis/injection.go), as istioctl analyze prints it.
	if want := "Error [MG0001] (VirtualService shop/reviews cluster virtualservices.networking.istio.io) strict namespace\n" +
		"Info [IST0102] (Namespace shop) The namespace is not enabled for Istio injection. Run 'kubectl label namespace shop istio-injection=enabled' to enable it, or 'kubectl label namespace shop istio-injection=disabled' to explicitly mark it as not needing injection.\n"; code != exitAnalyzeFoundIssues || out.String() != want {
		t.Errorf("exit %d, stdout %q, stderr %q; want %d and only %q", code, out.String(), errOut.String(), exitAnalyzeFoundIssues, want)
	}
}

// pagedServices is a dynamic client whose Services of every namespace are
// the pages page serves for each list's options; every other request goes
// to Interface.
type pagedServices struct {
	dynamic.Interface
	page func(metav1.ListOptions) *unstructured.UnstructuredList
}

func (c pagedServices) Resource(gvr schema.GroupVersionResource) dynamic.NamespaceableResourceInterface {
	if gvr != servicesResource {
		return c.Interface.Resource(gvr)
	}
	return pagedServiceList{c.Interface.Resource(gvr), c.page}
}

type pagedServiceList struct {
	dynamic.NamespaceableResourceInterface
	page func(metav1.ListOptions) *unstructured.UnstructuredList
}

func (l pagedServiceList) Namespace(ns string) dynamic.ResourceInterface {
	if ns != "" {
		return l.NamespaceableResourceInterface.Namespace(ns)
	}
	return l
}

func (l pagedServiceList) List(_ context.Context, opts metav1.ListOptions) (*unstructured.UnstructuredList, error) {
	return l.page(opts), nil
}

// TestAnalyzeInvalidObjectNotReferable: an object that fails validation
// (IST0106) is left out of the cross-resource checks as a referent
// (docs/compatibility.md, Governance): the webhook denies it, so a
// VirtualService naming that Gateway names nothing once applied (IST0101).
func TestAnalyzeInvalidObjectNotReferable(t *testing.T) {
	file := writeFile(t, t.TempDir(), "gw.yaml", `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: []
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: web, namespace: default}
spec:
  hosts: [web.example.com]
  gateways: [gw]
  http:
  - route: [{destination: {host: web.example.com}}]
`)
	var out, errOut bytes.Buffer
	code := runAnalyze(t.Context(), analyzeOptions{files: []string{file}, output: "log", namespace: "default", failureThreshold: "Error"}, nil, &out, &errOut)
	for _, want := range []string{"Error [IST0106] (Gateway default/gw ", `Error [IST0101] (VirtualService default/web ` + file + `#1) Referenced gateway not found: "gw"`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("missing %q in\n%s%s", want, out.String(), errOut.String())
		}
	}
	if code != exitAnalyzeFoundIssues {
		t.Errorf("exit %d, want %d", code, exitAnalyzeFoundIssues)
	}
}

// TestAnalyzeYAMLOutput: -o yaml (istioctl accepts it) is the JSON output's
// list as YAML, with the same exit status.
func TestAnalyzeYAMLOutput(t *testing.T) {
	run := func(output string) (int, []byte) {
		var out, errOut bytes.Buffer
		code := runAnalyze(t.Context(), analyzeOptions{files: []string{"testdata/analyze/missing-subset"}, output: output, namespace: "default", failureThreshold: "Error"}, nil, &out, &errOut)
		if errOut.Len() != 0 {
			t.Errorf("-o %s: stderr %q, want nothing (no trailer outside the log format)", output, errOut.String())
		}
		return code, out.Bytes()
	}
	jcode, j := run("json")
	ycode, y := run("YAML")
	if ycode != jcode || ycode != exitAnalyzeFoundIssues {
		t.Errorf("exit -o yaml %d, -o json %d, want both %d", ycode, jcode, exitAnalyzeFoundIssues)
	}
	fromYAML, err := yaml.YAMLToJSON(y)
	if err != nil {
		t.Fatalf("-o yaml is not YAML: %v\n%s", err, y)
	}
	var a, b []map[string]any
	if err := json.Unmarshal(fromYAML, &a); err != nil || json.Unmarshal(j, &b) != nil || len(a) != 1 || !reflect.DeepEqual(a, b) {
		t.Errorf("-o yaml\n%s\nis not -o json's list\n%s", y, j)
	}
}

// TestAnalyzeClusterAuthorizationPolicies: `analyze --kubeconfig` lists the
// pods the AuthorizationPolicies may select (Istio's
// AuthorizationPoliciesAnalyzer, analysis/authz.go): a selector in its
// namespace, a root-namespace selector in every namespace, one pod of the
// namespace of a policy without selector. Unlisted, each would be a false
// IST0127; the namespaces are the cluster's, so a source namespace no
// namespace matches is IST0101.
func TestAnalyzeClusterAuthorizationPolicies(t *testing.T) {
	u := func(obj map[string]any) *unstructured.Unstructured { return &unstructured.Unstructured{Object: obj} }
	namespace := func(name string) *unstructured.Unstructured {
		return u(map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": name}})
	}
	// Pods with a sidecar: Istio's analyzer counts only pods in the mesh (util.PodInMesh).
	pod := func(ns, name string, labels map[string]any) *unstructured.Unstructured {
		return u(map[string]any{"apiVersion": "v1", "kind": "Pod", "metadata": map[string]any{"name": name, "namespace": ns, "labels": labels},
			"spec": map[string]any{"containers": []any{map[string]any{"name": "istio-proxy", "image": "proxyv2"}}}})
	}
	policy := func(ns, name string, spec map[string]any) *unstructured.Unstructured {
		return u(map[string]any{"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
			"metadata": map[string]any{"name": name, "namespace": ns}, "spec": spec})
	}
	plainPod := func(ns, name string) *unstructured.Unstructured {
		return u(map[string]any{"apiVersion": "v1", "kind": "Pod", "metadata": map[string]any{"name": name, "namespace": ns},
			"spec": map[string]any{"containers": []any{map[string]any{"name": "app", "image": "app"}}}})
	}
	app := func(v string) map[string]any { return map[string]any{"matchLabels": map[string]any{"app": v}} }
	client, mapper := fakeCluster(t,
		namespace("shop"), namespace("other"), namespace("idle"), namespace("istio-system"),
		pod("shop", "cart-1", map[string]any{"app": "cart"}),
		pod("other", "db-1", map[string]any{"app": "db"}),
		policy("shop", "cart", map[string]any{"selector": app("cart"),
			"rules": []any{map[string]any{"from": []any{map[string]any{"source": map[string]any{"namespaces": []any{"oth*", "missing"}}}}}}}),
		policy("shop", "namespace-wide", map[string]any{}),
		policy("shop", "db", map[string]any{"selector": app("db")}),
		policy("idle", "namespace-wide", map[string]any{}),
		policy("istio-system", "db", map[string]any{"selector": app("db")}),
		policy("istio-system", "mesh-wide", map[string]any{}),
		// A policy without selector needs one pod the analyzer counts: a
		// pod outside the mesh listed first does not answer it.
		namespace("mixed"), plainPod("mixed", "a-plain"), pod("mixed", "b-mesh", nil),
		policy("mixed", "namespace-wide", map[string]any{}),
		namespace("outside"), plainPod("outside", "a-plain"),
		policy("outside", "namespace-wide", map[string]any{}),
		u(map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": "injected", "labels": map[string]any{"istio-injection": "enabled"}}}),
		plainPod("injected", "a-plain"),
		policy("injected", "namespace-wide", map[string]any{}),
	)
	var out, errOut bytes.Buffer
	runAnalyze(t.Context(), analyzeOptions{output: "log", namespace: "default", clusterAllNamespaces: true, failureThreshold: "Error",
		cluster: client, mapper: mapper}, nil, &out, &errOut)
	var got []string
	for _, l := range strings.Split(out.String(), "\n") {
		if strings.Contains(l, "(AuthorizationPolicy ") {
			got = append(got, l)
		}
	}
	const origin = " cluster authorizationpolicies.security.istio.io) "
	want := []string{ // analysis.Sort's order
		`Error [IST0101] (AuthorizationPolicy shop/cart` + origin + `Referenced namespace not found: "missing"`,
		`Warning [IST0127] (AuthorizationPolicy shop/db` + origin + `No matching workloads for this resource with the following labels: app=db`,
		`Warning [IST0127] (AuthorizationPolicy idle/namespace-wide` + origin + `No matching workloads for this resource with the following labels: `,
		`Warning [IST0127] (AuthorizationPolicy outside/namespace-wide` + origin + `No matching workloads for this resource with the following labels: `,
	}
	if !slices.Equal(got, want) {
		t.Errorf("AuthorizationPolicy lines:\n%s\nwant\n%s\n(all output:\n%s%s)", strings.Join(got, "\n"), strings.Join(want, "\n"), out.String(), errOut.String())
	}
}
