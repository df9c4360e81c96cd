package injector

import (
	"reflect"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/meshguard/meshguard/injector/config"
)

// proxyOf is the injected istio-proxy of res.
func proxyOf(t *testing.T, res *Result) *corev1.Container {
	t.Helper()
	for i := range res.Pod.Spec.Containers {
		if c := &res.Pod.Spec.Containers[i]; c.Name == ProxyContainerName {
			return c
		}
	}
	t.Fatal("no istio-proxy injected")
	return nil
}

// TestValuesResourcesBuiltOncePerValues: the proxy's resource lists from
// global.proxy.resources are built once for the values object and shared
// read only by every pod injected with it (Result.Pod), and a snapshot
// with other values gets its own lists, with its values, also when pods of
// both are injected at once (run with -race).
func TestValuesResourcesBuiltOncePerValues(t *testing.T) {
	small, err := config.Load(nil, []byte(`{"global":{"proxy":{"resources":{"requests":{"cpu":"10m","memory":null},"limits":{"memory":"64Mi"}}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	cfgs := map[string]*config.Snapshot{"default": config.Default(), "small": small}
	want := map[string]string{"default": "cpu=100m memory=128Mi / cpu=2 memory=1Gi", "small": "cpu=10m / memory=64Mi"}
	lists := func(r corev1.ResourceRequirements) string {
		s := ""
		for i, l := range []corev1.ResourceList{r.Requests, r.Limits} {
			if i > 0 {
				s += " /"
			}
			for j, k := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
				if q, ok := l[k]; ok {
					if j > 0 || i > 0 {
						s += " "
					}
					s += string(k) + "=" + q.String()
				}
			}
		}
		return s
	}
	var wg sync.WaitGroup
	got := make(map[string][]corev1.ResourceRequirements)
	var mu sync.Mutex
	for name, cfg := range cfgs {
		for range 4 {
			wg.Go(func() {
				res, err := Inject(benchPod(0), "app", cfg, Options{})
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				got[name] = append(got[name], proxyOf(t, res).Resources)
				mu.Unlock()
			})
		}
	}
	wg.Wait()
	for name, rs := range got {
		first := reflect.ValueOf(rs[0].Limits).UnsafePointer()
		for _, r := range rs {
			if s := lists(r); s != want[name] {
				t.Errorf("%s: resources %q, want %q", name, s, want[name])
			}
			if p := reflect.ValueOf(r.Limits).UnsafePointer(); p != first {
				t.Errorf("%s: limits built again for another pod of the same values", name)
			}
		}
	}
	if reflect.ValueOf(got["default"][0].Limits).UnsafePointer() == reflect.ValueOf(got["small"][0].Limits).UnsafePointer() {
		t.Error("two values objects share one set of resource lists")
	}
}

// TestInjectAllocs bounds the allocations of injecting a tiny pod with the
// default config (deterministic; each costs CPU and collector work on every
// /inject request: docs/benchmarks.md "/inject against its floor").
func TestInjectAllocs(t *testing.T) {
	cfg, pod := config.Default(), benchPod(0)
	n := testing.AllocsPerRun(100, func() {
		if _, err := Inject(pod, "app", cfg, Options{}); err != nil {
			t.Fatal(err)
		}
	})
	if n > 45 {
		t.Errorf("Inject of a tiny pod: %v allocations, want at most 45", n)
	}
}

// TestDefaultCAAddr: CA_ADDR without global.caAddress names the revision's
// istiod in the Istio namespace (Istio's injection-template.yaml), whichever
// config asked last.
func TestDefaultCAAddr(t *testing.T) {
	for range 2 {
		for _, c := range []struct{ rev, ns, want string }{
			{"", "istio-system", "istiod.istio-system.svc:15012"},
			{"default", "istio-system", "istiod.istio-system.svc:15012"},
			{"canary", "istio-system", "istiod-canary.istio-system.svc:15012"},
			{"canary", "mesh", "istiod-canary.mesh.svc:15012"},
			{"canary", "mesh", "istiod-canary.mesh.svc:15012"},
		} {
			if got := defaultCAAddr(c.rev, c.ns); got != c.want {
				t.Errorf("defaultCAAddr(%q, %q) = %q, want %q", c.rev, c.ns, got, c.want)
			}
		}
	}
}

// TestPlainLenMatchesTable: the word-at-a-time plainLen finds the first
// byte that needs a look exactly where a byte-by-byte scan of plainJSON
// does, for every byte value at every position of a 17-byte string.
func TestPlainLenMatchesTable(t *testing.T) {
	ref := func(s string) int {
		for i := 0; i < len(s); i++ {
			if !plainJSON[s[i]] {
				return i
			}
		}
		return len(s)
	}
	base := []byte("abcdefghijklmnopq")
	for pos := range base {
		for c := range 256 {
			b := append([]byte(nil), base...)
			b[pos] = byte(c)
			for _, s := range []string{string(b), string(b[:pos+1]), string(b[pos:])} {
				if got, want := plainLen(s), ref(s); got != want {
					t.Fatalf("plainLen(%q) = %d, want %d", s, got, want)
				}
			}
		}
	}
}
