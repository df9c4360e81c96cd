package main

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// analyzeLines runs analyze and returns the message lines with the given
// code, the exit code and stderr.
func analyzeLines(t *testing.T, o analyzeOptions, code string) ([]string, int, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	if o.output == "" {
		o.output = "log"
	}
	if o.failureThreshold == "" {
		o.failureThreshold = "Error"
	}
	if o.namespace == "" {
		o.namespace = "default"
	}
	if o.istioNamespace == "" {
		o.istioNamespace = "istio-system"
	}
	exit := runAnalyze(t.Context(), o, nil, &out, &errOut)
	var got []string
	for _, l := range strings.Split(out.String(), "\n") {
		if strings.Contains(l, "["+code+"]") {
			got = append(got, l)
		}
	}
	return got, exit, errOut.String()
}

const meshTestServiceEntry = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: db
  namespace: shop
spec:
  hosts: [db.example.com]
  ports:
  - number: 5432
    name: tcp
    protocol: TCP
  resolution: DNS
`

const dnsAutoAllocate = "defaultConfig:\n  proxyMetadata:\n    ISTIO_META_DNS_CAPTURE: \"true\"\n    ISTIO_META_DNS_AUTO_ALLOCATE: \"true\"\n"

// --meshConfigFile is the mesh config the analyzers read (istioctl's flag):
// DNS auto-allocation there gives a ServiceEntry without addresses one, so
// no IST0134; a file that cannot be read or validated is input that could
// not be read (65), not the defaults istioctl falls back to.
func TestAnalyzeMeshConfigFile(t *testing.T) {
	dir := t.TempDir()
	se := writeFile(t, dir, "se.yaml", meshTestServiceEntry)
	if got, _, _ := analyzeLines(t, analyzeOptions{files: []string{se}}, "IST0134"); len(got) != 1 {
		t.Fatalf("without a mesh config: IST0134 lines %q, want one", got)
	}
	mesh := writeFile(t, dir, "mesh.yaml", dnsAutoAllocate)
	if got, exit, errOut := analyzeLines(t, analyzeOptions{files: []string{se}, meshConfigFile: mesh}, "IST0134"); len(got) != 0 || exit != 0 {
		t.Errorf("with DNS auto-allocation: IST0134 lines %q, exit %d (%s), want none and 0", got, exit, errOut)
	}
	for name, content := range map[string]string{"bad.yaml": "rootNamespace: [x]\n", "invalid.yaml": "proxyInboundListenPort: 70000\n"} {
		bad := writeFile(t, dir, name, content)
		if _, exit, errOut := analyzeLines(t, analyzeOptions{files: []string{se}, meshConfigFile: bad}, "IST0134"); exit != exitAnalyzeDataError || !strings.Contains(errOut, "--meshConfigFile") {
			t.Errorf("%s: exit %d, stderr %q; want %d naming --meshConfigFile", name, exit, errOut, exitAnalyzeDataError)
		}
	}
	if _, exit, _ := analyzeLines(t, analyzeOptions{files: []string{se}, meshConfigFile: dir + "/missing.yaml"}, "IST0134"); exit != exitAnalyzeDataError {
		t.Errorf("a missing file: exit %d, want %d", exit, exitAnalyzeDataError)
	}
}

// --kubeconfig: the cluster's ConfigMap istio (key mesh) in the Istio
// namespace (-i) is the mesh config, as istioctl reads it; --meshConfigFile
// overrides it; a ConfigMap without the key, or whose mesh config does not
// validate, stops the analysis (exit 1) rather than analysing with the
// defaults.
func TestAnalyzeClusterMeshConfig(t *testing.T) {
	u := func(obj map[string]any) *unstructured.Unstructured { return &unstructured.Unstructured{Object: obj} }
	se := u(map[string]any{"apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry", "metadata": map[string]any{"name": "db", "namespace": "shop"},
		"spec": map[string]any{"hosts": []any{"db.example.com"}, "resolution": "DNS",
			"ports": []any{map[string]any{"number": int64(5432), "name": "tcp", "protocol": "TCP"}}}})
	ns := func(name string) *unstructured.Unstructured {
		return u(map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": name}})
	}
	configMap := func(namespace string, data map[string]any) *unstructured.Unstructured {
		return u(map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{"name": "istio", "namespace": namespace}, "data": data})
	}
	tests := []struct {
		name     string
		objs     []*unstructured.Unstructured
		istioNS  string
		meshFile string
		want     int // IST0134 lines
		exit     int
		stderr   string
	}{
		{name: "no ConfigMap: Istio's defaults", want: 1},
		{name: "the ConfigMap's mesh config", objs: []*unstructured.Unstructured{configMap("istio-system", map[string]any{"mesh": dnsAutoAllocate})}},
		{name: "in another Istio namespace", objs: []*unstructured.Unstructured{ns("mesh-system"), configMap("mesh-system", map[string]any{"mesh": dnsAutoAllocate})}, istioNS: "mesh-system"},
		{name: "not in the Istio namespace given", objs: []*unstructured.Unstructured{configMap("istio-system", map[string]any{"mesh": dnsAutoAllocate})}, istioNS: "mesh-system", want: 1},
		{name: "--meshConfigFile overrides it", objs: []*unstructured.Unstructured{configMap("istio-system", map[string]any{"mesh": dnsAutoAllocate})}, meshFile: "rootNamespace: istio-system\n", want: 1},
		{name: "no mesh key", objs: []*unstructured.Unstructured{configMap("istio-system", map[string]any{"meshNetworks": "{}"})}, exit: 1, stderr: `ConfigMap istio-system/istio has no data key "mesh"`},
		{name: "invalid mesh config", objs: []*unstructured.Unstructured{configMap("istio-system", map[string]any{"mesh": "proxyInboundListenPort: 70000\n"})}, exit: 1, stderr: "ConfigMap istio-system/istio key mesh: mesh config: mesh.proxyInboundListenPort"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, mapper := fakeCluster(t, append([]*unstructured.Unstructured{ns("shop"), ns("istio-system"), se}, tt.objs...)...)
			o := analyzeOptions{cluster: client, mapper: mapper, clusterAllNamespaces: true, istioNamespace: tt.istioNS}
			if tt.meshFile != "" {
				o.meshConfigFile = writeFile(t, t.TempDir(), "mesh.yaml", tt.meshFile)
			}
			got, exit, errOut := analyzeLines(t, o, "IST0134")
			if len(got) != tt.want || exit != tt.exit || !strings.Contains(errOut, tt.stderr) {
				t.Errorf("IST0134 lines %q, exit %d, stderr %q; want %d lines, exit %d, stderr with %q", got, exit, errOut, tt.want, tt.exit, tt.stderr)
			}
		})
	}
}

// -S CODE=RESOURCE suppresses as istioctl's --suppress (RESOURCE globbed
// against "Kind namespace/name", as the output prints it); a value without
// exactly one "=" is a usage error; an unknown code gets istioctl's warning.
func TestAnalyzeSuppressFlag(t *testing.T) {
	se := writeFile(t, t.TempDir(), "se.yaml", meshTestServiceEntry)
	for _, tt := range []struct {
		flags  []string
		want   int
		exit   int
		stderr string
	}{
		{flags: nil, want: 1},
		{flags: []string{"IST0134=ServiceEntry shop/db"}, want: 0},
		{flags: []string{"IST0134=ServiceEntry shop/*"}, want: 0},
		{flags: []string{"IST0134=ServiceEntry other/db"}, want: 1},
		{flags: []string{"IST0101=ServiceEntry shop/db"}, want: 1},
		// "Kind name.namespace" is not istioctl's name (Origin.FriendlyName,
		// "Kind namespace/name"): it suppresses nothing.
		{flags: []string{"IST0134=ServiceEntry db.shop"}, want: 1},
		{flags: []string{"IST0134"}, exit: exitAnalyzeUsage, stderr: "Error: --suppress: IST0134 is not a valid suppression value"},
		{flags: []string{"IST9999=ServiceEntry shop/db"}, want: 1, stderr: "Warning: Supplied message code 'IST9999' is an unknown message code and will not have any effect."},
	} {
		got, exit, errOut := analyzeLines(t, analyzeOptions{files: []string{se}, suppress: tt.flags}, "IST0134")
		if len(got) != tt.want || exit != tt.exit || !strings.Contains(errOut, tt.stderr) {
			t.Errorf("%q: IST0134 lines %q, exit %d, stderr %q; want %d lines, exit %d, stderr with %q", tt.flags, got, exit, errOut, tt.want, tt.exit, tt.stderr)
		}
	}
}

// --kubeconfig lists every pod of the injected namespaces (IST0103, not only
// pods some selector selects) and every Deployment (IST0116); with -n the
// messages about objects of other namespaces are dropped, as istioctl's
// filterMessages drops them.
func TestAnalyzeClusterInjectedPodsAndDeployments(t *testing.T) {
	u := func(obj map[string]any) *unstructured.Unstructured { return &unstructured.Unstructured{Object: obj} }
	injectedNS := func(name string) *unstructured.Unstructured {
		return u(map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": name, "labels": map[string]any{"istio-injection": "enabled"}}})
	}
	pod := func(ns, name string, sidecar bool) *unstructured.Unstructured {
		cs := []any{map[string]any{"name": "app", "image": "app"}}
		if sidecar {
			cs = append(cs, map[string]any{"name": "istio-proxy", "image": "proxyv2"})
		}
		return u(map[string]any{"apiVersion": "v1", "kind": "Pod", "metadata": map[string]any{"name": name, "namespace": ns}, "spec": map[string]any{"containers": cs}})
	}
	service := func(ns, name string, proto string) *unstructured.Unstructured {
		return u(map[string]any{"apiVersion": "v1", "kind": "Service", "metadata": map[string]any{"name": name, "namespace": ns},
			"spec": map[string]any{"selector": map[string]any{"app": "web"}, "ports": []any{map[string]any{"name": "p", "port": int64(8080), "protocol": proto}}}})
	}
	deployment := u(map[string]any{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": map[string]any{"name": "web", "namespace": "shop"},
		"spec": map[string]any{"selector": map[string]any{"matchLabels": map[string]any{"app": "web"}},
			"template": map[string]any{"metadata": map[string]any{"labels": map[string]any{"app": "web"}},
				"spec": map[string]any{"containers": []any{map[string]any{"name": "web", "image": "web"}}}}}})
	client, mapper := fakeCluster(t, injectedNS("shop"), injectedNS("other"),
		pod("shop", "plain", false), pod("shop", "meshed", true), pod("other", "plain", false),
		service("shop", "web-tcp", "TCP"), service("shop", "web-udp", "UDP"), deployment)
	all, exit, errOut := analyzeLines(t, analyzeOptions{cluster: client, mapper: mapper, clusterAllNamespaces: true}, "IST0103")
	want := []string{
		"Warning [IST0103] (Pod other/plain) The pod other/plain is missing the Istio proxy. This can often be resolved by restarting or redeploying the workload.",
		"Warning [IST0103] (Pod shop/plain) The pod shop/plain is missing the Istio proxy. This can often be resolved by restarting or redeploying the workload.",
	}
	if slices.Sort(all); !slices.Equal(all, want) || exit != 0 {
		t.Errorf("all namespaces: IST0103 lines\n%s\nexit %d (%s); want\n%s", strings.Join(all, "\n"), exit, errOut, strings.Join(want, "\n"))
	}
	shop, _, _ := analyzeLines(t, analyzeOptions{cluster: client, mapper: mapper, namespace: "shop"}, "IST0103")
	if !slices.Equal(shop, want[1:]) {
		t.Errorf("-n shop: IST0103 lines %q, want %q", shop, want[1:])
	}
	if got, _, _ := analyzeLines(t, analyzeOptions{cluster: client, mapper: mapper, clusterAllNamespaces: true}, "IST0116"); len(got) != 1 || !strings.Contains(got[0], "(Deployment shop/web)") {
		t.Errorf("IST0116 lines %q, want one for Deployment shop/web", got)
	}
}

// --kubeconfig reads a bounded number of objects: past maxClusterObjects the
// analysis stops with exit 1, as the audit's snapshot stops, rather than
// holding any cluster in memory.
func TestAnalyzeClusterBounded(t *testing.T) {
	u := func(obj map[string]any) *unstructured.Unstructured { return &unstructured.Unstructured{Object: obj} }
	ns := func(name string) *unstructured.Unstructured {
		return u(map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": name}})
	}
	client, mapper := fakeCluster(t, ns("a"), ns("b"), ns("c"))
	defer func(n int) { maxClusterObjects = n }(maxClusterObjects)
	maxClusterObjects = 3
	if _, exit, errOut := analyzeLines(t, analyzeOptions{cluster: client, mapper: mapper, clusterAllNamespaces: true}, "IST0102"); exit != 0 {
		t.Fatalf("3 objects, bound 3: exit %d (%s)", exit, errOut)
	}
	maxClusterObjects = 2
	if _, exit, errOut := analyzeLines(t, analyzeOptions{cluster: client, mapper: mapper, clusterAllNamespaces: true}, "IST0102"); exit != 1 || !strings.Contains(errOut, "more than 2 objects") {
		t.Errorf("3 objects, bound 2: exit %d, stderr %q; want 1 and the bound named", exit, errOut)
	}
}

// A Deployment read from the cluster (listed for IST0116, IST0137, IST0144)
// is not a workload the selectors match: its pods are the cluster's Pods,
// as Istio's analyzers read Pods. Two Sidecars selecting one pod are IST0110
// once each (not again for the Deployment), and a selector only a
// Deployment's template matches (no replica) is IST0101.
func TestAnalyzeClusterDeploymentsAreNotPods(t *testing.T) {
	u := func(obj map[string]any) *unstructured.Unstructured { return &unstructured.Unstructured{Object: obj} }
	deployment := func(name, app string) *unstructured.Unstructured {
		return u(map[string]any{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": map[string]any{"name": name, "namespace": "shop"},
			"spec": map[string]any{"selector": map[string]any{"matchLabels": map[string]any{"app": app}},
				"template": map[string]any{"metadata": map[string]any{"labels": map[string]any{"app": app}},
					"spec": map[string]any{"containers": []any{map[string]any{"name": "istio-proxy", "image": "proxyv2"}}}}}})
	}
	sidecar := func(name, app string) *unstructured.Unstructured {
		return u(map[string]any{"apiVersion": "networking.istio.io/v1", "kind": "Sidecar", "metadata": map[string]any{"name": name, "namespace": "shop"},
			"spec": map[string]any{"workloadSelector": map[string]any{"labels": map[string]any{"app": app}}, "egress": []any{map[string]any{"hosts": []any{"./*"}}}}})
	}
	client, mapper := fakeCluster(t,
		u(map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": "shop", "labels": map[string]any{"istio-injection": "enabled"}}}),
		u(map[string]any{"apiVersion": "v1", "kind": "Pod", "metadata": map[string]any{"name": "cart-1", "namespace": "shop", "labels": map[string]any{"app": "cart"}},
			"spec": map[string]any{"containers": []any{map[string]any{"name": "istio-proxy", "image": "proxyv2"}}}}),
		deployment("cart", "cart"), deployment("gone", "gone"),
		sidecar("a", "cart"), sidecar("b", "cart"), sidecar("c", "gone"))
	o := analyzeOptions{cluster: client, mapper: mapper, clusterAllNamespaces: true}
	conflicts, _, _ := analyzeLines(t, o, "IST0110")
	notFound, _, _ := analyzeLines(t, o, "IST0101")
	if len(conflicts) != 2 || !strings.Contains(conflicts[0], `pod "cart-1"`) || !strings.Contains(conflicts[1], `pod "cart-1"`) {
		t.Errorf("IST0110 lines %q, want two, each naming pod cart-1", conflicts)
	}
	if len(notFound) != 1 || !strings.Contains(notFound[0], "(Sidecar shop/c ") {
		t.Errorf("IST0101 lines %q, want one for Sidecar shop/c", notFound)
	}
}
