package injector

import (
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshguard/meshguard/injector/config"
)

// TestNativeSidecarAnnotationReadOnce: sidecar.istio.io/nativeSidecar is
// read one way on both paths, as ParseAnnotations reads it (Istio's
// injection-template.yaml: `ne (annotation | default .NativeSidecars)
// "false"`, so any value but empty or "false" is native), and the generic
// renderer moves a user's istio-proxy by that parsed value
// (template.Set.Render), so a pod declaring istio-proxy gets the same pod
// from the typed injector and from the stock template rendered generically.
//
// Istio itself reads it two ways: pkg/kube/inject/inject.go RunTemplate
// (b0d2c6ad) moves the user's istio-proxy to initContainers only for exactly
// "true" (or a native cluster), so "yes" on a classic cluster leaves it in
// containers beside the native one and the API server rejects the pod
// (duplicate container name). Before the fix meshguard's generic path did
// the same (denied: the name twice) while the typed path moved it; meshguard
// now moves it on both (a deliberate difference from Istio, for
// docs/compatibility.md).
func TestNativeSidecarAnnotationReadOnce(t *testing.T) {
	pod := func(value string) *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "app", Annotations: map[string]string{AnnotationNativeSidecar: value}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{
				{Name: "app", Image: "x/y:1"},
				{Name: ProxyContainerName, Image: "auto", Resources: corev1.ResourceRequirements{
					Limits: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2")}}},
			}},
		}
	}
	for _, cluster := range []bool{false, true} {
		// The cluster's choice (values global.nativeSidecars); Istio's stock
		// templates on both paths.
		typed, err := config.Inputs{Values: []byte(fmt.Sprintf(`{"global":{"nativeSidecars":%v}}`, cluster))}.Load()
		if err != nil {
			t.Fatal(err)
		}
		generic := forceGeneric(typed)
		for _, value := range []string{"yes", "True", "1", "on", "true", "false", "FALSE"} {
			native := value != "false"
			t.Run(fmt.Sprintf("cluster native %v/%s", cluster, value), func(t *testing.T) {
				a, errA := Inject(pod(value), "app", typed, Options{})
				b, errB := Inject(pod(value), "app", generic, Options{})
				if errA != nil || errB != nil {
					t.Fatalf("cluster native %v: typed error %v, template error %v", cluster, errA, errB)
				}
				if d := jsonDiff("", podJSON(a.Pod), podJSON(b.Pod)); len(d) > 0 {
					t.Fatalf("cluster native %v: typed (got) and template (want) differ:\n%s", cluster, strings.Join(d, "\n"))
				}
				// One istio-proxy, where the parsed value puts it, with the
				// user's customisation merged.
				var proxies []corev1.Container
				inInit := false
				for _, l := range []struct {
					cs   []corev1.Container
					init bool
				}{{b.Pod.Spec.InitContainers, true}, {b.Pod.Spec.Containers, false}} {
					for _, c := range l.cs {
						if c.Name == ProxyContainerName {
							proxies, inInit = append(proxies, c), l.init
						}
					}
				}
				if len(proxies) != 1 || inInit != native {
					t.Fatalf("cluster native %v: %d istio-proxy containers, in initContainers %v; want 1, %v", cluster, len(proxies), inInit, native)
				}
				if got := proxies[0].Resources.Limits[corev1.ResourceCPU]; got.String() != "2" {
					t.Errorf("cluster native %v: istio-proxy cpu limit %s, want the user's 2", cluster, got.String())
				}
			})
		}
	}
}
