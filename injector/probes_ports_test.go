package injector

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/meshguard/meshguard/injector/config"
)

// TestProbesOnPortsLeftOutOfCapture: as Istio's app_probe.go
// (getPortInclusionOrExclusionList, shouldPatchProbe, DumpAppProbers), a probe
// or hook on a port the interception annotations leave out is neither
// rewritten nor recorded in ISTIO_KUBE_APP_PROBERS; one on a captured port is.
//
// A probe on a named port is judged by the port the name resolves to, for the
// rewrite and the record alike (portIncluded). Istio judges the two apart
// (istio/istio b8a8d17a3f4dd6f884806c4bf615f714a9c38ea9,
// pkg/kube/inject/app_probe.go): shouldPatchProbe reads HTTPGet.Port.IntVal,
// 0 for a name, so the rewrite judges port 0, while DumpAppProbers resolves
// the name and records by the real port. With includeInboundPorts "8080" it
// then leaves a probe on "http" (8080) as written yet records a prober for
// it; with excludeInboundPorts "8080" it rewrites that probe to pilot-agent
// but records no prober, so pilot-agent has nothing to call and the probe
// fails. A deliberate difference (the "named port" rows): the probe on a
// captured port is rewritten and recorded, the one on a port left out is
// neither, as for a port number.
func TestProbesOnPortsLeftOutOfCapture(t *testing.T) {
	get := func(port intstr.IntOrString) *corev1.Probe {
		return &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/p", Port: port}}}
	}
	n, http := intstr.FromInt, intstr.FromString("http") // plain.in.yaml: port "http" is 8080
	for _, tc := range []struct {
		name                string
		annos               map[string]string
		readiness, liveness intstr.IntOrString
		readyzOut, livezOut bool
	}{
		{"include list: only listed ports", map[string]string{AnnotationIncludeInboundPorts: "8080"}, n(8080), n(9090), true, false},
		{"exclude list", map[string]string{AnnotationExcludeInboundPorts: "9090"}, n(8080), n(9090), true, false},
		{"include * with exclusions", map[string]string{AnnotationIncludeInboundPorts: "*", AnnotationExcludeInboundPorts: "9090"}, n(8080), n(9090), true, false},
		// extractPortAsInt trims each item: " 7070" is port 7070, so 9090 stays out.
		{"include list with blanks", map[string]string{AnnotationIncludeInboundPorts: " 8080 , 7070 "}, n(8080), n(9090), true, false},
		{"no annotations: every port", nil, n(8080), n(9090), true, true},
		// Deliberate difference (above): Istio leaves readyz as written but records it.
		{"named port on the include list: rewritten and recorded", map[string]string{AnnotationIncludeInboundPorts: "8080"}, http, n(9090), true, false},
		// Deliberate difference (above): Istio rewrites readyz but records no prober.
		{"named port on the exclude list: left as written, not recorded", map[string]string{AnnotationExcludeInboundPorts: "8080"}, http, n(9090), false, true},
		{"named port, include * excluding another port", map[string]string{AnnotationIncludeInboundPorts: "*", AnnotationExcludeInboundPorts: "9090"}, http, n(9090), true, false},
	} {
		for _, path := range []string{"typed", "generic"} {
			pod := loadPod(t, "testdata/golden/plain.in.yaml")
			pod.Annotations = tc.annos
			c := &pod.Spec.Containers[0]
			c.ReadinessProbe, c.LivenessProbe = get(tc.readiness), get(tc.liveness)
			res, err := typedAndGeneric[path](pod, "app", reinjectCfg(t), Options{})
			if err != nil {
				t.Fatalf("%s %s: %v", tc.name, path, err)
			}
			out := *podContainer(res.Pod, "hello")
			probers, _ := proxyEnvVar(res.Pod, envAppProbers)
			for _, pr := range []struct {
				kind      string
				probe     *corev1.Probe
				rewritten bool
				orig      intstr.IntOrString
			}{{"readyz", out.ReadinessProbe, tc.readyzOut, tc.readiness}, {"livez", out.LivenessProbe, tc.livezOut, tc.liveness}} {
				got := pr.probe.HTTPGet.Path == "/app-health/hello/"+pr.kind
				recorded := strings.Contains(probers, "/app-health/hello/"+pr.kind)
				if got != pr.rewritten || recorded != pr.rewritten || (!got && pr.probe.HTTPGet.Port != pr.orig) {
					t.Errorf("%s %s: %s probe on %s rewritten %v recorded %v (probe %+v), want %v", tc.name, path, pr.kind, pr.orig.String(), got, recorded, pr.probe.HTTPGet, pr.rewritten)
				}
			}
		}
	}
}

// TestLifecycleHTTPHookKeepsHostAndHeaders: a rewritten httpGet hook keeps
// its host and headers, HTTPS becoming HTTP (Istio's
// convertAppLifecycleHandlerHTTPGet).
func TestLifecycleHTTPHookKeepsHostAndHeaders(t *testing.T) {
	pod := loadPod(t, "testdata/golden/plain.in.yaml")
	pod.Spec.Containers[0].Lifecycle = &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{HTTPGet: &corev1.HTTPGetAction{
		Path: "/shutdown", Port: intstr.FromInt(8080), Host: "127.0.0.1", Scheme: corev1.URISchemeHTTPS,
		HTTPHeaders: []corev1.HTTPHeader{{Name: "X-Token", Value: "a"}}}}}
	res, err := Inject(pod, "app", config.Default(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	g := res.Pod.Spec.Containers[0].Lifecycle.PreStop.HTTPGet
	if g.Path != "/app-lifecycle/hello/prestopz" || g.Host != "127.0.0.1" || g.Scheme != corev1.URISchemeHTTP ||
		len(g.HTTPHeaders) != 1 || g.HTTPHeaders[0].Name != "X-Token" {
		t.Errorf("preStop rewritten to %+v, want the status port's path with host and headers kept, scheme HTTP", g)
	}
}

// TestResolvePortExactName: a named probe port resolves only to a container
// port of exactly that name (Istio's app_probe.go looks the name up in a map
// of the container's port names), so "HTTP" does not find "http".
func TestResolvePortExactName(t *testing.T) {
	c := &corev1.Container{Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}}
	for _, tc := range []struct {
		port intstr.IntOrString
		want int
		ok   bool
	}{
		{intstr.FromString("http"), 8080, true},
		{intstr.FromString("HTTP"), 0, false},
		{intstr.FromString("9090"), 9090, true},
		{intstr.FromInt(7070), 7070, true},
	} {
		got, ok := resolvePort(c, tc.port)
		if ok != tc.ok || (ok && got.IntValue() != tc.want) {
			t.Errorf("resolvePort(%v) = %v, %v; want %d, %v", tc.port.String(), got.String(), ok, tc.want, tc.ok)
		}
	}
}

// TestProbesKeptWithStatusPortZero: with status.sidecar.istio.io/port "0"
// pilot-agent runs no status server, so probes are left as the app wrote
// them and nothing is recorded (a deliberate difference: Istio's
// patchRewriteProbe rewrites them to port 0, which the API server rejects;
// docs/compatibility.md).
func TestProbesKeptWithStatusPortZero(t *testing.T) {
	pod := loadPod(t, "testdata/golden/plain.in.yaml")
	pod.Annotations = map[string]string{AnnotationStatusPort: "0"}
	pod.Spec.Containers[0].ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/ready", Port: intstr.FromInt(8080)}}}
	res, err := Inject(pod, "app", config.Default(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if g := res.Pod.Spec.Containers[0].ReadinessProbe.HTTPGet; g.Path != "/ready" || g.Port.IntValue() != 8080 {
		t.Errorf("readiness probe rewritten to %+v, want it kept", g)
	}
	for _, cs := range [][]corev1.Container{res.Pod.Spec.Containers, res.Pod.Spec.InitContainers} {
		for _, c := range cs {
			for _, e := range c.Env {
				if e.Name == envAppProbers {
					t.Errorf("container %s has %s=%s, want none", c.Name, e.Name, e.Value)
				}
			}
		}
	}
}
