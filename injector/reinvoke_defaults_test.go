package injector

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"github.com/meshguard/meshguard/injector/config"
)

// TestReinvocationOfAPIDefaultedProbes: the API server stores a rewritten
// probe with its defaults (httpGet scheme HTTP; thresholds), and a
// reinvocation restores the app's probe from ISTIO_KUBE_APP_PROBERS and
// rewrites it again without them. That must be no change (e2e
// "pre-injected pod is not injected twice" had seen a readinessProbe
// replace), on both renderers.
func TestReinvocationOfAPIDefaultedProbes(t *testing.T) {
	const src = `
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: shop}
spec:
  containers:
  - name: app
    image: app:1
    ports: [{containerPort: 8080}]
    readinessProbe: {httpGet: {path: /ready, port: 8080}}
    livenessProbe: {httpGet: {path: /live, port: 8080}, periodSeconds: 5}
    lifecycle: {preStop: {httpGet: {path: /stop, port: 8080}}}
`
	var pod corev1.Pod
	if err := yaml.Unmarshal([]byte(src), &pod); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Inputs{}.Load()
	if err != nil {
		t.Fatal(err)
	}
	for name, snap := range map[string]*config.Snapshot{"typed": cfg, "generic": forceGeneric(cfg)} {
		t.Run(name, func(t *testing.T) {
			first, err := Inject(pod.DeepCopy(), "shop", snap, Options{})
			if err != nil {
				t.Fatal(err)
			}
			stored := applyPatch(t, &pod, first)
			// What the API server adds when it stores the pod (SetDefaults_Probe,
			// SetDefaults_HTTPGetAction), written out here.
			app := &stored.Spec.Containers[0]
			if app.ReadinessProbe.HTTPGet.Port != intstr.FromInt32(15020) {
				t.Fatalf("readiness probe not rewritten: %+v", app.ReadinessProbe)
			}
			for _, p := range []*corev1.Probe{app.ReadinessProbe, app.LivenessProbe} {
				p.HTTPGet.Scheme = corev1.URISchemeHTTP
				if p.TimeoutSeconds == 0 {
					p.TimeoutSeconds = 1
				}
				if p.PeriodSeconds == 0 {
					p.PeriodSeconds = 10
				}
				p.SuccessThreshold, p.FailureThreshold = 1, 3
			}
			app.Lifecycle.PreStop.HTTPGet.Scheme = corev1.URISchemeHTTP
			again, err := Inject(stored, "shop", snap, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if len(again.Patch) != 0 {
				t.Errorf("reinvocation of the defaulted pod: %+v", again.Patch)
			}
		})
	}
}
