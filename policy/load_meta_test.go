package policy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"
)

// kubectlApplied is an object as `kubectl apply` leaves it in the API server
// (or as `kubectl get -o yaml` exports it): labels, its last-applied
// configuration (a JSON copy of the object) and other annotations, owners,
// finalizers, managedFields.
func kubectlApplied(t testing.TB, kind, ns, name, spec string, extraAnn map[string]any) map[string]any {
	t.Helper()
	var specObj map[string]any
	if err := yaml.Unmarshal([]byte(spec), &specObj); err != nil {
		t.Fatal(err)
	}
	obj := map[string]any{"apiVersion": "security.istio.io/v1", "kind": kind,
		"metadata": map[string]any{"name": name, "namespace": ns}, "spec": specObj}
	applied, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	ann := map[string]any{"kubectl.kubernetes.io/last-applied-configuration": string(applied), "team": "payments"}
	for k, v := range extraAnn {
		ann[k] = v
	}
	obj["metadata"] = map[string]any{"name": name, "namespace": ns, "uid": "5c1d-" + name, "resourceVersion": "4711", "generation": int64(3),
		"creationTimestamp": "2026-11-30T10:00:00Z",
		"labels":            map[string]any{"app.kubernetes.io/managed-by": "kustomize", "team": "payments"},
		"annotations":       ann,
		"ownerReferences":   []any{map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": "1234"}},
		"finalizers":        []any{"example.com/keep"},
		"managedFields":     []any{map[string]any{"manager": "kubectl", "operation": "Apply", "apiVersion": "security.istio.io/v1"}}}
	return obj
}

// TestLoadedPoliciesKeepOnlyReadMetadata: both loaders (a policy directory
// and the API server's stored objects) keep of a policy's metadata what
// authorization reads (keepReadMeta), and the same: the istio.io/dry-run
// annotation still makes a DENY report-only on both paths.
func TestLoadedPoliciesKeepOnlyReadMetadata(t *testing.T) {
	created := metav1.NewTime(time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC))
	want := func(name string, ann map[string]string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: name, Namespace: "shop", UID: types.UID("5c1d-" + name), ResourceVersion: "4711",
			CreationTimestamp: created, Annotations: ann}
	}
	objs := []map[string]any{
		kubectlApplied(t, "AuthorizationPolicy", "shop", "dry-deny", "action: DENY\nrules: [{}]", map[string]any{"istio.io/dry-run": "true"}),
		kubectlApplied(t, "AuthorizationPolicy", "shop", "allow-get", "rules: [{to: [{operation: {methods: [GET]}}]}]", nil),
		kubectlApplied(t, "PeerAuthentication", "shop", "strict", "mtls: {mode: STRICT}", nil),
	}
	wantMeta := []metav1.ObjectMeta{want("dry-deny", map[string]string{"istio.io/dry-run": "true"}), want("allow-get", nil), want("strict", nil)}

	var stream bytes.Buffer
	stored := &Set{}
	for _, o := range objs {
		js, err := json.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		stream.Write(js)
		stream.WriteString("\n---\n")
		var fresh map[string]any // DecodeStored edits its map
		if err := json.Unmarshal(js, &fresh); err != nil {
			t.Fatal(err)
		}
		st, err := DecodeStored(o["kind"].(string), fresh)
		if err != nil || st.Invalid != "" {
			t.Fatalf("DecodeStored %s: %v %s", o["kind"], err, st.Invalid)
		}
		stored.AddStored(st)
	}
	dir := &Set{}
	if _, err := dir.AddYAML("p.yaml", stream.Bytes()); err != nil {
		t.Fatal(err)
	}
	for path, s := range map[string]*Set{"policy directory": dir, "stored objects": stored} {
		var got []metav1.ObjectMeta
		for _, ap := range s.AuthorizationPolicies {
			got = append(got, ap.ObjectMeta)
		}
		for _, pa := range s.PeerAuthentications {
			got = append(got, pa.ObjectMeta)
		}
		if !equality.Semantic.DeepEqual(got, wantMeta) { // Semantic: times by instant, not location
			t.Errorf("%s: kept metadata\n%+v\nwant\n%+v", path, got, wantMeta)
		}
		s.Pods = memoPods(t)
		snap, err := Compile(context.Background(), Mesh{}, s, 1)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		v, err := snap.Check(context.Background(), checkReq("spiffe://cluster.local/ns/shop/sa/client", "10.0.0.5", "10.0.0.9", 8080, "GET", "/", nil))
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if !v.Allowed || v.Policy != "shop/allow-get" || len(v.DryRunDeny) != 1 || v.DryRunDeny[0].Policy != "shop/dry-deny" {
			t.Errorf("%s: GET allowed %v by %q, dry-run DENY hits %v; want allowed by shop/allow-get, shop/dry-deny reported", path, v.Allowed, v.Policy, v.DryRunDeny)
		}
	}
}

func memoPods(t *testing.T) []*corev1.Pod {
	t.Helper()
	s := &Set{}
	if _, err := s.AddYAML("pod.yaml", []byte(memoPod)); err != nil {
		t.Fatal(err)
	}
	return s.Pods
}

// BenchmarkLoadKubectlApplied10k: the live heap a policy directory of 10,000
// AuthorizationPolicies as `kubectl get -o yaml` exports them (labels,
// last-applied configuration, owners) leaves after loading and compiling
// (live-MB; the memory figures of docs/benchmarks.md).
func BenchmarkLoadKubectlApplied10k(b *testing.B) {
	gen := GenerateSet(10000, 100)
	dir := b.TempDir()
	var docs bytes.Buffer
	for i, ap := range gen.AuthorizationPolicies {
		spec, err := json.Marshal(&ap.Spec)
		if err != nil {
			b.Fatal(err)
		}
		obj := kubectlApplied(b, "AuthorizationPolicy", ap.Namespace, ap.Name, string(spec), nil)
		obj["metadata"].(map[string]any)["creationTimestamp"] = ap.CreationTimestamp.UTC().Format(time.RFC3339)
		y, err := yaml.Marshal(obj)
		if err != nil {
			b.Fatal(err)
		}
		docs.Write(y)
		docs.WriteString("---\n")
		if i%1000 == 999 { // files of 1,000 policies: each under the input limit
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("policies-%d.yaml", i/1000)), docs.Bytes(), 0o644); err != nil {
				b.Fatal(err)
			}
			docs.Reset()
		}
	}
	gen = nil
	var live uint64
	for b.Loop() {
		var ms runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms)
		before := ms.HeapAlloc
		loader := new(DirLoader)
		set, _, err := loader.Load(dir)
		if err != nil {
			b.Fatal(err)
		}
		snap, err := CompileNext(context.Background(), nil, Mesh{}, set, 1)
		if err != nil {
			b.Fatal(err)
		}
		set = nil
		runtime.GC()
		runtime.ReadMemStats(&ms)
		live += ms.HeapAlloc - before
		if snap.Policies != 10000 {
			b.Fatalf("%d policies", snap.Policies)
		}
		runtime.KeepAlive(loader)
		runtime.KeepAlive(snap)
	}
	b.ReportMetric(float64(live)/float64(b.N)/(1<<20), "live-MB")
}
