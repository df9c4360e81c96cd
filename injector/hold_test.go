package injector

import (
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshguard/meshguard/injector/config"
)

// TestHoldApplicationEitherSetting: the app waits for the proxy (istio-proxy
// first, postStart `pilot-agent wait`) when either the values or the
// ProxyConfig (here proxy.istio.io/config) ask for it, as Istio's sidecar
// template (`or .ProxyConfig.HoldApplicationUntilProxyStarts.GetValue
// .Values.global.proxy.holdApplicationUntilProxyStarts`) and webhook.go
// reorderPod decide; a ProxyConfig "false" does not undo the values' "true".
// The typed injector and the generic renderer of Istio's stock template agree.
func TestHoldApplicationEitherSetting(t *testing.T) {
	for _, c := range []struct {
		values     bool
		annotation string // proxy.istio.io/config; "" = none
		hold       bool
	}{
		{false, "", false},
		{true, "", true},
		{false, "holdApplicationUntilProxyStarts: true", true},
		{true, "holdApplicationUntilProxyStarts: false", true},
		{false, "holdApplicationUntilProxyStarts: false", false},
	} {
		name := fmt.Sprintf("values=%v/annotation=%q", c.values, c.annotation)
		values := []byte(fmt.Sprintf(`{"global":{"nativeSidecars":false,"proxy":{"holdApplicationUntilProxyStarts":%v}}}`, c.values))
		cfg, err := config.Inputs{Values: values}.Load()
		if err != nil {
			t.Fatal(err)
		}
		for path, cfg := range map[string]*config.Snapshot{"typed": cfg, "generic": forceGeneric(cfg)} {
			pod := &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "app"},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "example.com/app:1"}}},
			}
			if c.annotation != "" {
				pod.Annotations = map[string]string{AnnotationProxyConfig: c.annotation}
			}
			res, err := Inject(pod, "app", cfg, Options{})
			if err != nil {
				t.Fatalf("%s %s: %v", name, path, err)
			}
			first := res.Pod.Spec.Containers[0]
			postStart := false
			for _, pc := range res.Pod.Spec.Containers {
				if pc.Name == ProxyContainerName && pc.Lifecycle != nil && pc.Lifecycle.PostStart != nil {
					postStart = true
				}
			}
			if got := first.Name == ProxyContainerName; got != c.hold || postStart != c.hold {
				t.Errorf("%s %s: istio-proxy first %v, postStart wait %v; want both %v", name, path, got, postStart, c.hold)
			}
		}
	}
}
