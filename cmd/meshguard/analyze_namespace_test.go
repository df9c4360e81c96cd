package main

import (
	"bytes"
	"errors"
	"regexp"
	"slices"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	k8stesting "k8s.io/client-go/testing"
)

// aboutShop matches a message line about an object of namespace shop,
// or about Namespace shop itself (the objects -n shop reports on).
var aboutShop = regexp.MustCompile(`\((Namespace shop|[A-Za-z]+ shop/[^ )]+)[ )]`)

// analyze --kubeconfig -n NS reads every namespace, as istioctl analyze -n
// does (Istio: pkg/config/analysis/local/istiod_analyze.go
// AddRunningKubeSourceWithRevision, informers of every namespace;
// internalAnalyze runs the analyzers over all of them, then filterMessages
// keeps the messages about NS): a message about an object of NS appears
// under -n exactly when it appears without -n. Each row's objects are stored
// in a fake cluster beside a base of namespaces shop, bookinfo, edge and
// istio-system and a gateway pod and Service in istio-system; the lines of
// the row's code under -n shop must be its want and the all-namespaces
// lines about shop's objects. Before listCluster read every namespace, -n
// shop read the mesh objects and Services of shop only, and these rows got a
// false IST0149 (the RequestAuthentication of the gateway pods' namespace
// or of the root namespace unread), a false IST0158 (the root namespace's
// ProxyConfig, whose image type the pod's image carries, unread), false
// IST0101s (a Gateway "istio-system/gw" and a host of bookinfo unread), no
// IST0145 (the conflicting Gateway of istio-system unread) and, once those
// objects are read, organisation rule messages about them.
func TestAnalyzeClusterNamespaceReadsEveryNamespace(t *testing.T) {
	u := func(obj map[string]any) *unstructured.Unstructured { return &unstructured.Unstructured{Object: obj} }
	ns := func(name string, labels map[string]any) *unstructured.Unstructured {
		return u(map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": name, "labels": labels}})
	}
	pod := func(namespace, name string, labels map[string]any, containers ...any) *unstructured.Unstructured {
		return u(map[string]any{"apiVersion": "v1", "kind": "Pod", "metadata": map[string]any{"name": name, "namespace": namespace, "labels": labels},
			"spec": map[string]any{"containers": containers}})
	}
	service := func(namespace, name string, selector map[string]any) *unstructured.Unstructured {
		return u(map[string]any{"apiVersion": "v1", "kind": "Service", "metadata": map[string]any{"name": name, "namespace": namespace},
			"spec": map[string]any{"selector": selector, "ports": []any{map[string]any{"name": "http", "port": int64(80), "protocol": "TCP"}}}})
	}
	gateway := func(namespace, name string, selector map[string]any, hosts ...any) *unstructured.Unstructured {
		return u(map[string]any{"apiVersion": "networking.istio.io/v1", "kind": "Gateway", "metadata": map[string]any{"name": name, "namespace": namespace},
			"spec": map[string]any{"selector": selector, "servers": []any{map[string]any{
				"port": map[string]any{"number": int64(80), "name": "http", "protocol": "HTTP"}, "hosts": hosts}}}})
	}
	jwtRoute := func(gw string) *unstructured.Unstructured {
		return u(map[string]any{"apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "metadata": map[string]any{"name": "vs", "namespace": "shop"},
			"spec": map[string]any{"hosts": []any{"web.example.com"}, "gateways": []any{gw}, "http": []any{map[string]any{
				"match": []any{map[string]any{"headers": map[string]any{"@request.auth.claims.group": map[string]any{"exact": "admin"}}}},
				"route": []any{map[string]any{"destination": map[string]any{"host": "web.shop.svc.cluster.local"}}}}}}})
	}
	requestAuthn := func(namespace string, selector map[string]any) *unstructured.Unstructured {
		spec := map[string]any{"jwtRules": []any{map[string]any{"issuer": "https://issuer.example.com", "jwksUri": "https://issuer.example.com/jwks"}}}
		if selector != nil {
			spec["selector"] = map[string]any{"matchLabels": selector}
		}
		return u(map[string]any{"apiVersion": "security.istio.io/v1", "kind": "RequestAuthentication",
			"metadata": map[string]any{"name": "jwt", "namespace": namespace}, "spec": spec})
	}
	ingress := map[string]any{"istio": "ingressgateway"}
	edge := map[string]any{"istio": "edgegateway"}
	base := []*unstructured.Unstructured{
		ns("shop", map[string]any{"istio-injection": "enabled"}), ns("bookinfo", nil), ns("edge", nil), ns("istio-system", nil),
		pod("istio-system", "ingress-1", ingress), service("istio-system", "istio-ingressgateway", ingress),
		pod("edge", "edge-1", edge), service("edge", "edge-gateway", edge),
		service("shop", "web", map[string]any{"app": "web"}),
	}
	const claimText = "The virtual service uses the JWT claim based routing (key: @request.auth.claims.group) but found no request authentication for the gateway (shop/gw) pod (%s). The request authentication must first be applied for the gateway pods to validate the JWT token and make the claims available for routing."

	// IST0158: the injector's image is docker.io/istio/proxyv2:1.21.0; the
	// pod's carries the image type "-distroless" the root namespace's
	// ProxyConfig sets (Istio: pkg/config/analysis/analyzers/util/
	// proxyconfig.go EffectiveProxyConfigResolver.ImageType).
	injector := u(map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{"name": "istio-sidecar-injector", "namespace": "istio-system"},
		"data": map[string]any{"values": `{"global":{"hub":"docker.io/istio","tag":"1.21.0"}}`, "config": "policy: enabled\n"}})
	distroless := pod("shop", "web-1", map[string]any{"app": "web"}, map[string]any{"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.21.0-distroless"})
	rootProxyConfig := u(map[string]any{"apiVersion": "networking.istio.io/v1beta1", "kind": "ProxyConfig", "metadata": map[string]any{"name": "mesh", "namespace": "istio-system"},
		"spec": map[string]any{"image": map[string]any{"imageType": "distroless"}}})

	tests := []struct {
		name  string
		objs  []*unstructured.Unstructured
		code  string
		rules string // an organisation rule module, when the row needs one
		want  []string
	}{
		{name: "IST0149: RequestAuthentication of the gateway pods' namespace", code: "IST0149",
			objs: []*unstructured.Unstructured{gateway("shop", "gw", ingress, "web.example.com"), jwtRoute("gw"), requestAuthn("istio-system", ingress)}},
		{name: "IST0149: RequestAuthentication of the root namespace for pods elsewhere", code: "IST0149",
			objs: []*unstructured.Unstructured{gateway("shop", "gw", edge, "web.example.com"), jwtRoute("gw"), requestAuthn("istio-system", nil)}},
		{name: "IST0149: no RequestAuthentication", code: "IST0149",
			objs: []*unstructured.Unstructured{gateway("shop", "gw", ingress, "web.example.com"), jwtRoute("gw")},
			want: []string{"Error [IST0149] (VirtualService shop/vs cluster virtualservices.networking.istio.io) " + strings.Replace(claimText, "%s", "ingress-1", 1)}},
		{name: "IST0149: RequestAuthentication of another namespace", code: "IST0149",
			objs: []*unstructured.Unstructured{gateway("shop", "gw", ingress, "web.example.com"), jwtRoute("gw"), requestAuthn("bookinfo", nil)},
			want: []string{"Error [IST0149] (VirtualService shop/vs cluster virtualservices.networking.istio.io) " + strings.Replace(claimText, "%s", "ingress-1", 1)}},
		{name: "IST0158: image type of the root namespace's ProxyConfig", code: "IST0158",
			objs: []*unstructured.Unstructured{injector, distroless, rootProxyConfig}},
		{name: "IST0158: no ProxyConfig", code: "IST0158",
			objs: []*unstructured.Unstructured{injector, distroless},
			want: []string{"Warning [IST0158] (Namespace shop) The Istio proxy images of the pods running in the namespace do not match the image defined in the injection configuration (pod names: [web-1]). This often happens after upgrading the Istio control-plane and can be fixed by redeploying the pods."}},
		{name: "IST0101: Gateway and destination host of other namespaces", code: "IST0101",
			objs: []*unstructured.Unstructured{gateway("istio-system", "gw", ingress, "*"), service("bookinfo", "reviews", map[string]any{"app": "reviews"}),
				u(map[string]any{"apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "metadata": map[string]any{"name": "vs", "namespace": "shop"},
					"spec": map[string]any{"hosts": []any{"web.example.com"}, "gateways": []any{"istio-system/gw"}, "http": []any{map[string]any{
						"route": []any{map[string]any{"destination": map[string]any{"host": "reviews.bookinfo.svc.cluster.local"}}}}}}})}},
		{name: "IST0145: a Gateway of another namespace on the same selector, port and host", code: "IST0145",
			objs: []*unstructured.Unstructured{gateway("istio-system", "gw", ingress, "web.example.com"), gateway("shop", "gw", ingress, "web.example.com")},
			want: []string{"Error [IST0145] (Gateway shop/gw cluster gateways.networking.istio.io) Conflict with gateways istio-system/gw (workload selector istio=ingressgateway, port 80, hosts web.example.com)."}},
		{name: "MG0001: rules judge the objects of the namespace only", code: "MG0001",
			rules: "package meshguard.validation\ndeny contains \"no RequestAuthentication\" if input.kind == \"RequestAuthentication\"\n",
			objs:  []*unstructured.Unstructured{requestAuthn("istio-system", ingress), requestAuthn("shop", nil)},
			want:  []string{"Error [MG0001] (RequestAuthentication shop/jwt cluster requestauthentications.security.istio.io) no RequestAuthentication"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, mapper := fakeCluster(t, append(slices.Clone(base), tt.objs...)...)
			o := analyzeOptions{cluster: client, mapper: mapper}
			if tt.rules != "" {
				o.regoDir = t.TempDir()
				writeFile(t, o.regoDir, "r.rego", tt.rules)
			}
			all := o
			all.clusterAllNamespaces = true
			allLines, allExit, allErr := analyzeLines(t, all, tt.code)
			o.namespace = "shop"
			shop, _, shopErr := analyzeLines(t, o, tt.code)
			if allExit == 1 || strings.Contains(allErr, "Error: cluster") || strings.Contains(shopErr, "Error: cluster") {
				t.Fatalf("analysis failed: %s %s", allErr, shopErr)
			}
			var allShop []string
			for _, l := range allLines {
				if aboutShop.MatchString(l) {
					allShop = append(allShop, l)
				}
			}
			if !slices.Equal(shop, tt.want) {
				t.Errorf("-n shop: %s lines\n%s\nwant\n%s\n(stderr %s)", tt.code, strings.Join(shop, "\n"), strings.Join(tt.want, "\n"), shopErr)
			}
			if !slices.Equal(allShop, shop) {
				t.Errorf("-n shop reports\n%s\nwhere all namespaces reports about shop\n%s", strings.Join(shop, "\n"), strings.Join(allShop, "\n"))
			}
		})
	}
}

// analyze against a cluster with -n NS checks first that NS exists, as
// istioctl analyze does (Istio: istioctl/pkg/analyze/analyze.go Analyze,
// under useKube: Namespaces().Get of the selected namespace; NotFound prints
// `namespace "NS" not found` on stderr and analyses nothing, another error
// ends the command). Here a missing namespace exits 1, not istioctl's 0
// (docs/compatibility.md: a CI job must not pass on a mistyped -n). The
// check runs only where the analysis is scoped to NS: not from files alone
// (no cluster), nor with -A or without -n (every namespace of the cluster
// is reported; NS only names the files' objects without one).
func TestAnalyzeClusterNamespaceNotFound(t *testing.T) {
	shop := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": "shop"}}}
	// IST0102 on Namespace shop: the cluster was read.
	const analysed = "[IST0102] (Namespace shop)"
	tests := []struct {
		name      string
		namespace string
		cluster   bool
		all       bool // -A
		everyNS   bool // -n not given: the cluster read in every namespace
		getErr    error
		wantExit  int
		wantErr   string // stderr holds it
		analysed  bool
	}{
		{name: "-n of a missing namespace", namespace: "missing", cluster: true, wantExit: 1, wantErr: "namespace \"missing\" not found\n"},
		{name: "-n of an existing namespace", namespace: "shop", cluster: true, analysed: true},
		{name: "-n missing with -A", namespace: "missing", cluster: true, all: true, analysed: true},
		{name: "no -n, the context's namespace missing", namespace: "missing", cluster: true, everyNS: true, analysed: true},
		{name: "files only", namespace: "missing", analysed: true},
		{name: "the namespace cannot be read", namespace: "shop", cluster: true, wantExit: 1,
			getErr: apierrors.NewForbidden(schema.GroupResource{Resource: "namespaces"}, "shop", errors.New("no")), wantErr: "Error: cluster: reading namespace \"shop\": "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := analyzeOptions{namespace: tt.namespace, allNamespaces: tt.all, clusterAllNamespaces: tt.everyNS}
			if tt.cluster {
				client, mapper := fakeCluster(t, shop)
				if tt.getErr != nil {
					client.PrependReactor("get", "namespaces", func(k8stesting.Action) (bool, runtime.Object, error) { return true, nil, tt.getErr })
				}
				o.cluster, o.mapper = client, mapper
			} else {
				o.files = []string{writeFile(t, t.TempDir(), "ns.yaml", "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n")}
			}
			var out, errOut bytes.Buffer
			o.output, o.failureThreshold, o.istioNamespace = "log", "Error", "istio-system"
			exit := runAnalyze(t.Context(), o, nil, &out, &errOut)
			if exit != tt.wantExit {
				t.Errorf("exit %d, want %d (stderr %q)", exit, tt.wantExit, errOut.String())
			}
			if !strings.Contains(errOut.String(), tt.wantErr) {
				t.Errorf("stderr %q, want it to hold %q", errOut.String(), tt.wantErr)
			}
			if tt.wantErr == "" && strings.Contains(errOut.String(), "not found") {
				t.Errorf("stderr %q: the namespace was checked", errOut.String())
			}
			if got := strings.Contains(out.String(), analysed); got != tt.analysed {
				t.Errorf("analysed %v, want %v: stdout %q", got, tt.analysed, out.String())
			}
		})
	}
}
