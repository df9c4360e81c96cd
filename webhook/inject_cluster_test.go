package webhook

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	clientnetworkingv1beta1 "istio.io/client-go/pkg/apis/networking/v1beta1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/meshguard/meshguard/injector/config"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	toolscache "k8s.io/client-go/tools/cache"
)

func node(name, kubelet string) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"big": strings.Repeat("x", 100)}},
		Status: corev1.NodeStatus{NodeInfo: corev1.NodeSystemInfo{KubeletVersion: kubelet, OSImage: "linux"}}}
}

// TestNodeTrackerDecide: Istio's ENABLE_NATIVE_SIDECARS=auto (pkg/kube/inject/webhook.go):
// the pod's node if it is scheduled and known, else every node; one older
// kubelet turns native sidecars off cluster-wide; no nodes, no decision.
func TestNodeTrackerDecide(t *testing.T) {
	type want struct {
		decided, native bool
		note            string
	}
	for _, tc := range []struct {
		name     string
		nodes    [][2]string
		nodeName string
		want     want
	}{
		{name: "no nodes", want: want{}},
		{name: "all new", nodes: [][2]string{{"a", "v1.33.0"}, {"b", "v1.34.2-eks-1"}}, want: want{true, true, ""}},
		{name: "one old", nodes: [][2]string{{"a", "v1.33.0"}, {"b", "v1.32.9"}}, want: want{true, false, `1 of 2 nodes run a kubelet older than v1.33 (b: "v1.32.9")`}},
		{name: "unparsable counts as old", nodes: [][2]string{{"a", "v1.33.0"}, {"b", ""}}, want: want{true, false, "1 of 2 nodes"}},
		{name: "scheduled on a new node", nodes: [][2]string{{"a", "v1.33.0"}, {"b", "v1.32.9"}}, nodeName: "a", want: want{true, true, ""}},
		{name: "scheduled on an old node", nodes: [][2]string{{"a", "v1.33.0"}, {"b", "v1.32.9"}}, nodeName: "b", want: want{true, false, `node b runs kubelet "v1.32.9"`}},
		{name: "scheduled on an unknown node: every node", nodes: [][2]string{{"a", "v1.33.0"}}, nodeName: "zz", want: want{true, true, ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := NewNodeTracker()
			for _, n := range tc.nodes {
				tr.Set(n[0], n[1])
			}
			native, note := tr.Decide(tc.nodeName)
			if (native != nil) != tc.want.decided || (native != nil && *native != tc.want.native) || !strings.Contains(note, tc.want.note) || (tc.want.note == "" && note != "") {
				t.Errorf("Decide(%q) = %v, %q; want decided %v native %v note %q", tc.nodeName, native, note, tc.want.decided, tc.want.native, tc.want.note)
			}
		})
	}
}

// TestNodeHandler: informer events keep the tracker current, including an
// upgrade of the last old kubelet and a deletion seen only as a tombstone.
func TestNodeHandler(t *testing.T) {
	tr := NewNodeTracker()
	h := nodeHandler(tr)
	h.OnAdd(node("a", "v1.33.1"), true)
	h.OnAdd(node("b", "v1.31.0"), true)
	if native, _ := tr.Decide(""); native == nil || *native {
		t.Fatalf("with an old node: %v, want false", native)
	}
	h.OnUpdate(node("b", "v1.31.0"), node("b", "v1.33.0"))
	if native, _ := tr.Decide(""); native == nil || !*native {
		t.Fatalf("after the upgrade: %v, want true", native)
	}
	h.OnAdd(node("c", "v1.30.0"), false)
	h.OnDelete(toolscache.DeletedFinalStateUnknown{Key: "c", Obj: node("c", "v1.30.0")})
	if native, _ := tr.Decide(""); native == nil || !*native {
		t.Fatalf("after deleting the old node: %v, want true", native)
	}
	// The explanation follows every change of the node set, not only of the old ones.
	h.OnAdd(node("d", "v1.29.0"), false)
	if _, note := tr.Decide(""); !strings.Contains(note, "1 of 3 nodes") {
		t.Fatalf("note %q, want 1 of 3 nodes", note)
	}
	h.OnAdd(node("e", "v1.34.0"), false)
	if _, note := tr.Decide(""); !strings.Contains(note, "1 of 4 nodes") || !strings.Contains(note, `d: "v1.29.0"`) {
		t.Fatalf("note %q, want 1 of 4 nodes naming d", note)
	}
	h.OnDelete(node("d", ""))
	h.OnDelete(node("e", ""))
	h.OnDelete(node("a", ""))
	h.OnDelete(node("b", ""))
	if native, _ := tr.Decide(""); native != nil {
		t.Fatalf("no nodes left: %v, want undecided", *native)
	}
}

func TestStripNode(t *testing.T) {
	in := node("a", "v1.33.1")
	in.ResourceVersion = "7"
	out, err := StripNode(in)
	if err != nil {
		t.Fatal(err)
	}
	n := out.(*corev1.Node)
	if n.Name != "a" || n.ResourceVersion != "7" || n.Status.NodeInfo.KubeletVersion != "v1.33.1" {
		t.Fatalf("lost what /inject reads: %+v", n)
	}
	if len(n.Labels) != 0 || n.Status.NodeInfo.OSImage != "" {
		t.Fatalf("kept what /inject does not read: %+v", n)
	}
	if other, _ := StripNode("not a node"); other != "not a node" {
		t.Fatal("non-node objects must pass through")
	}
}

// stubCache answers GetInformer with a scripted sequence of errors (nil =
// synced); Start calls nothing else.
type stubCache struct {
	cache.Cache
	mu      sync.Mutex
	results []error
	calls   int
}

func (s *stubCache) GetInformer(context.Context, client.Object, ...cache.InformerGetOption) (cache.Informer, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if len(s.results) == 0 {
		return nil, nil
	}
	err := s.results[0]
	s.results = s.results[1:]
	return nil, err
}

// TestInformerGate: readiness stays false while the list fails, opens when
// the kind is not served (inject without it) and keeps checking until it is
// served, so a CRD installed after meshguard is picked up without a restart.
func TestInformerGate(t *testing.T) {
	noMatch := &meta.NoKindMatchError{GroupKind: schema.GroupKind{Group: "networking.istio.io", Kind: "ProxyConfig"}}
	stub := &stubCache{results: []error{errors.New("connection refused"), noMatch, noMatch}}
	g := &informerGate{cache: stub, obj: &corev1.Node{}, what: "test objects", log: logr.Discard(),
		retry: time.Millisecond, absentRetry: time.Millisecond}
	if g.ready(nil) == nil {
		t.Fatal("ready before any list")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := g.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if g.state.Load() != gateSynced || g.ready(nil) != nil || stub.calls != 4 {
		t.Fatalf("state %d after %d calls, want synced after 4", g.state.Load(), stub.calls)
	}

	// While absent, readers see "no such kind", which the lister treats as none.
	src := &proxyConfigSource{gate: &informerGate{}}
	src.gate.state.Store(gateAbsent)
	crs, err := listProxyConfigs(ctx, src, "istio-system", "app")
	if err != nil || crs != nil {
		t.Fatalf("absent CRD: %v, %v; want no resources and no error", crs, err)
	}
}

// TestClusterInputs: what the handler reads besides the pod: the ProxyConfig
// resources of the root namespace and the pod's (no others), on OpenShift the
// pod's namespace annotations (none for a namespace it cannot find) and the
// native sidecar decision.
func TestClusterInputs(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := clientnetworkingv1beta1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	pc := func(ns, name string) *clientnetworkingv1beta1.ProxyConfig {
		return &clientnetworkingv1beta1.ProxyConfig{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	}
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(
		pc("istio-system", "mesh"), pc("app", "ns"), pc("other", "elsewhere"),
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "app", Annotations: map[string]string{"openshift.io/sa.scc.uid-range": "100/10"}}},
	).Build()
	nodes := NewNodeTracker()
	nodes.Set("n1", "v1.33.0")
	h := &InjectHandler{ProxyConfigs: c, Namespaces: c, Nodes: nodes}

	openshift, err := config.Load(nil, []byte("global: {platform: openshift}\n"))
	if err != nil {
		t.Fatal(err)
	}
	opts, why, err := h.clusterInputs(context.Background(), openshift, &corev1.Pod{}, "app")
	if err != nil {
		t.Fatalf("%s: %v", why, err)
	}
	var names []string
	for _, cr := range opts.ProxyConfigs {
		names = append(names, cr.Namespace+"/"+cr.Name)
	}
	slices.Sort(names)
	if strings.Join(names, ",") != "app/ns,istio-system/mesh" {
		t.Errorf("ProxyConfigs %v, want the root namespace's and the pod's", names)
	}
	if opts.NamespaceAnnotations["openshift.io/sa.scc.uid-range"] != "100/10" {
		t.Errorf("namespace annotations %v", opts.NamespaceAnnotations)
	}
	if opts.NativeSidecars == nil || !*opts.NativeSidecars {
		t.Errorf("native sidecars %v, want detected true", opts.NativeSidecars)
	}

	opts, _, err = h.clusterInputs(context.Background(), openshift, &corev1.Pod{}, "missing")
	if err != nil || opts.NamespaceAnnotations != nil {
		t.Errorf("missing namespace: %v, %v; want no annotations and no error", opts.NamespaceAnnotations, err)
	}
}
