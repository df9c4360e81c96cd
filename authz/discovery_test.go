package authz

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	metadatafake "k8s.io/client-go/metadata/fake"
	"sigs.k8s.io/controller-runtime/pkg/cache/informertest"
	"sigs.k8s.io/yaml"

	"github.com/meshguard/meshguard/meshconfig"
	"github.com/meshguard/meshguard/policy"
)

var namespacesGVR = schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}

// discoveryCluster is a fake API server with a review's case:
// root namespace istio-system, labelled mesh=enabled, lets only itself call;
// namespace foo, not labelled, holds an ALLOW for bar's api.
func discoveryCluster(t *testing.T) (*kubeSource, *metadatafake.FakeMetadataClient) {
	t.Helper()
	scheme := metadatafake.NewTestScheme()
	if err := metav1.AddMetaToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	ns := func(name string, labels map[string]string) *metav1.PartialObjectMetadata {
		return &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	}
	meta := metadatafake.NewSimpleMetadataClient(scheme, ns("istio-system", map[string]string{"mesh": "enabled"}), ns("foo", nil))
	lists := map[schema.GroupVersionResource]string{}
	for _, r := range policyResources {
		lists[schema.GroupVersionResource{Group: "security.istio.io", Version: "v1beta1", Resource: r.resource}] = r.kind + "List"
	}
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), lists)
	for _, doc := range []string{`apiVersion: security.istio.io/v1beta1
kind: AuthorizationPolicy
metadata: {name: only-gateway, namespace: istio-system}
spec:
  action: ALLOW
  rules: [{from: [{source: {namespaces: [istio-system]}}]}]`, `apiVersion: security.istio.io/v1beta1
kind: AuthorizationPolicy
metadata: {name: allow-bar, namespace: foo}
spec:
  action: ALLOW
  rules: [{from: [{source: {principals: [cluster.local/ns/bar/sa/api]}}]}]`} {
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
			t.Fatal(err)
		}
		gvr := schema.GroupVersionResource{Group: "security.istio.io", Version: "v1beta1", Resource: "authorizationpolicies"}
		if _, err := dyn.Resource(gvr).Namespace(u.GetNamespace()).Create(t.Context(), u, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	k, err := newKubeSourceFor(dyn, meta, &informertest.FakeInformers{Scheme: clientgoscheme.Scheme}, "", "", logr.Discard())
	if err != nil {
		t.Fatal(err)
	}
	return k, meta
}

// barAllowed is the verdict on bar's api calling web in foo, with the
// policies k loads now.
func barAllowed(t *testing.T, k *kubeSource, o Options) bool {
	t.Helper()
	set, err := k.Load(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	s, err := policy.Compile(t.Context(), o.Mesh(), set, 1)
	if err != nil {
		t.Fatal(err)
	}
	r := &policy.Request{Namespace: "foo", Labels: map[string]string{"app": "web"}, Principal: "spiffe://cluster.local/ns/bar/sa/api",
		Method: "GET", Path: "/", Host: "web.foo.svc", Headers: map[string]string{}, SrcIP: "10.0.0.5", RemoteIP: "10.0.0.5",
		DstIP: "10.0.1.1", DstPort: 8080}
	v, err := s.CheckRequest(t.Context(), r)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("bar -> web.foo: allowed=%v policy=%s", v.Allowed, v.Policy)
	return v.Allowed
}

func meshWith(t *testing.T, yamlText string) (Options, meshconfig.DiscoverySelectors) {
	t.Helper()
	m, err := meshconfig.Load([]byte(yamlText))
	if err != nil {
		t.Fatal(err)
	}
	o, err := DefaultOptions().WithMeshConfig(m, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	return o, o.DiscoverySelectors
}

// await receives on trigger or fails the test after a generous bound (the
// fake informers deliver in milliseconds; no fixed sleep).
func await(t *testing.T, trigger <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-trigger:
	case <-time.After(30 * time.Second):
		t.Fatalf("no rebuild trigger after %s", what)
	}
}

// TestDiscoverySelectorsDropUnselectedNamespaces: istiod (pkg/kube/namespace
// filter.go, applied to every namespaced kind by crdclient) never reads the
// policies of a namespace no discoverySelector matches; the root
// namespace gets no exception, it applies because it is selected. A namespace
// relabelled at runtime changes the verdict after the rebuild it triggers.
func TestDiscoverySelectorsDropUnselectedNamespaces(t *testing.T) {
	k, meta := discoveryCluster(t)
	o, d := meshWith(t, "discoverySelectors: [{matchLabels: {mesh: enabled}}]\n")
	k.SetDiscoverySelectors(d)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	trigger := make(chan struct{}, 1)
	if err := k.Watch(ctx, trigger); err != nil {
		t.Fatal(err)
	}
	if barAllowed(t, k, o) {
		t.Fatal("allowed by foo/allow-bar, a policy of a namespace discoverySelectors leave out (only istio-system/only-gateway applies)")
	}
	// Drain the informers' initial events, then relabel foo.
	for len(trigger) > 0 {
		<-trigger
	}
	patch := []byte(`{"metadata":{"labels":{"mesh":"enabled"}}}`)
	if _, err := meta.Resource(namespacesGVR).Patch(ctx, "foo", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); !barAllowed(t, k, o); {
		if time.Now().After(deadline) {
			t.Fatal("foo relabelled mesh=enabled: its ALLOW still not applied")
		}
		await(t, trigger, "foo was relabelled")
	}
}

// TestDiscoverySelectorsMatchExpressions: a selector by expression, and a
// change of the selectors alone (a mesh config reload) asks for a rebuild.
func TestDiscoverySelectorsMatchExpressions(t *testing.T) {
	k, _ := discoveryCluster(t)
	o, d := meshWith(t, "discoverySelectors: [{matchExpressions: [{key: mesh, operator: In, values: [enabled]}]}]\n")
	k.SetDiscoverySelectors(d)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	if err := k.Watch(ctx, make(chan struct{}, 1)); err != nil {
		t.Fatal(err)
	}
	if barAllowed(t, k, o) {
		t.Fatal("matchExpressions mesh In [enabled]: foo's ALLOW applied")
	}
	_, notIn := meshWith(t, "discoverySelectors: [{matchExpressions: [{key: mesh, operator: NotIn, values: [enabled]}]}, {matchLabels: {mesh: enabled}}]\n")
	if !k.SetDiscoverySelectors(notIn) {
		t.Error("SetDiscoverySelectors reported no change for different selectors")
	}
	if k.SetDiscoverySelectors(notIn) {
		t.Error("SetDiscoverySelectors reported a change for the same selectors")
	}
	if !barAllowed(t, k, o) {
		t.Fatal("foo selected (mesh NotIn [enabled]): its ALLOW not applied")
	}
}

// TestNoDiscoverySelectorsKeepsEveryNamespace: without selectors every
// namespace's policies apply, as before.
func TestNoDiscoverySelectorsKeepsEveryNamespace(t *testing.T) {
	k, _ := discoveryCluster(t)
	o, _ := meshWith(t, "{}\n")
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	if err := k.Watch(ctx, make(chan struct{}, 1)); err != nil {
		t.Fatal(err)
	}
	if !barAllowed(t, k, o) {
		t.Fatal("no discoverySelectors: foo/allow-bar not applied")
	}
}

// TestMeshConfigDiscoverySelectorsReload: a mesh config whose only change is
// its discoverySelectors asks for a policy rebuild and hands the selectors to
// the source; an invalid selector is rejected naming the field, keeping the
// last good ones.
func TestMeshConfigDiscoverySelectorsReload(t *testing.T) {
	o := DefaultOptions()
	var got []string
	o.onDiscovery = func(d meshconfig.DiscoverySelectors) bool {
		changed := len(got) == 0 || got[len(got)-1] != d.String()
		got = append(got, d.String())
		return changed
	}
	engine := newEngine(o, logr.Discard())
	trigger := make(chan struct{}, 1)
	update := meshUpdater(o, engine, logr.Discard(), trigger)
	apply := func(text string) {
		t.Helper()
		m, err := meshconfig.Parse([]byte(text))
		if err != nil {
			t.Fatal(err)
		}
		update(func() (*meshState, error) { return meshSettings(o, m) })
	}
	apply("discoverySelectors: [{matchLabels: {mesh: enabled}}]\n")
	select {
	case <-trigger:
	default:
		t.Fatal("new discoverySelectors: no policy rebuild asked for")
	}
	apply("discoverySelectors: [{matchExpressions: [{key: mesh, operator: in, values: [x]}]}]\n")
	if len(got) != 1 || len(trigger) != 0 {
		t.Errorf("invalid selector accepted: selectors given %q, rebuild asked %v", got, len(trigger) != 0)
	}
	m, _ := meshconfig.Parse([]byte("discoverySelectors: [{matchExpressions: [{key: mesh, operator: in, values: [x]}]}]\n"))
	if _, err := meshSettings(o, m); err == nil || !strings.Contains(err.Error(), "mesh.discoverySelectors[0].matchExpressions[0].operator") {
		t.Errorf("meshSettings: %v, want the field named", err)
	}
}

// TestDiscoverySelectorsParsedOnce: ext_authz parses meshConfig's
// discoverySelectors once, where it takes a mesh config (WithMeshConfig,
// with the rest of its validation: meshconfig.Validated), and Options
// carries the parsed selectors to the source (Setup, meshSettings): no
// second parse can disagree with the first. An invalid selector is a mesh
// config error naming the field in every path: meshconfig.Load (injection,
// analyze), WithMeshConfig (start-up, authzFromMeshConfig), loadMesh (the
// file reloaded) and meshSettings (Istio's ConfigMap, followMeshConfigs).
func TestDiscoverySelectorsParsedOnce(t *testing.T) {
	const bad = "discoverySelectors: [{matchExpressions: [{key: mesh, operator: in, values: [x]}]}]\n"
	const field = "mesh.discoverySelectors[0].matchExpressions[0].operator"
	path := filepath.Join(t.TempDir(), "mesh")
	if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	m, err := meshconfig.Parse([]byte(bad))
	if err != nil {
		t.Fatal(err)
	}
	check := func(what string, err error) {
		t.Helper()
		if err == nil || !strings.Contains(err.Error(), "mesh config: ") || !strings.Contains(err.Error(), field) {
			t.Errorf("%s: %v, want a mesh config error naming %s", what, err, field)
		}
	}
	_, err = meshconfig.Load([]byte(bad))
	check("meshconfig.Load", err)
	_, err = DefaultOptions().WithMeshConfig(m, nil)
	check("WithMeshConfig", err)
	o := DefaultOptions()
	o.MeshConfigPath = path
	_, err = loadMesh(o)
	check("loadMesh", err)
	_, err = meshSettings(DefaultOptions(), m)
	check("meshSettings", err)

	good, err := meshconfig.Parse([]byte("discoverySelectors: [{matchLabels: {mesh: enabled}}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	o, err = DefaultOptions().WithMeshConfig(good, nil)
	if err != nil {
		t.Fatal(err)
	}
	const want = "{mesh=enabled}"
	if got := o.DiscoverySelectors.String(); got != want {
		t.Errorf("WithMeshConfig: Options.DiscoverySelectors %s, want %s", got, want)
	}
	ms, err := meshSettings(DefaultOptions(), good)
	if err != nil || ms.Discovery.String() != want {
		t.Errorf("meshSettings: %v %v, want %s", ms, err, want)
	}
}
