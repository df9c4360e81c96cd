package injector

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/meshguard/meshguard/injector/config"
)

// gatewayR155Pods are gateway pods as a gateway Deployment declares them
// (a user-declared istio-proxy with image auto), with the pod-level inputs
// the typed gateway path resolves itself: the bootstrapOverride annotation
// and the pod's own securityContext.
const gatewayR155Pods = `
- metadata: {name: plain, labels: {app: gw}}
  spec:
    containers:
    - {name: istio-proxy, image: auto}
- metadata: {name: bootstrap, labels: {app: gw}, annotations: {"sidecar.istio.io/bootstrapOverride": my-bootstrap}}
  spec:
    containers:
    - {name: istio-proxy, image: auto}
- metadata: {name: bootstrap-empty, labels: {app: gw}, annotations: {"sidecar.istio.io/bootstrapOverride": ""}}
  spec:
    containers:
    - {name: istio-proxy, image: auto}
- metadata: {name: other-sysctl, labels: {app: gw}}
  spec:
    securityContext: {sysctls: [{name: net.core.somaxconn, value: "1024"}]}
    containers:
    - {name: istio-proxy, image: auto}
- metadata: {name: same-sysctl-other-value, labels: {app: gw}}
  spec:
    securityContext: {sysctls: [{name: net.core.somaxconn, value: "1024"}, {name: net.ipv4.ip_unprivileged_port_start, value: "1024"}]}
    containers:
    - {name: istio-proxy, image: auto}
- metadata: {name: other-fields, labels: {app: gw}}
  spec:
    securityContext: {runAsNonRoot: true, fsGroup: 2000, runAsUser: 1000, seccompProfile: {type: RuntimeDefault}}
    containers:
    - {name: istio-proxy, image: auto}
- metadata: {name: everything, labels: {app: gw}, annotations: {"sidecar.istio.io/bootstrapOverride": cm}}
  spec:
    serviceAccountName: gw-sa
    securityContext: {runAsNonRoot: true, fsGroup: 2000, sysctls: [{name: net.core.somaxconn, value: "1024"}]}
    volumes: [{name: own, emptyDir: {}}]
    containers:
    - {name: istio-proxy, image: auto, ports: [{containerPort: 8443, name: https}]}
    - {name: app, image: x}
`

// TestGatewayTypedMatchesStockTemplate renders gateway pods through the
// typed gateway path and through the generic renderer executing the same
// stock `gateway` template text (Istio's
// manifests/charts/istio-control/istio-discovery/files/gateway-injection-template.yaml,
// overlaid as pkg/kube/inject/inject.go applyOverlayYAML does) and requires
// the same pod. The generic side is the oracle: it runs Istio's own text.
func TestGatewayTypedMatchesStockTemplate(t *testing.T) {
	var pods []*corev1.Pod
	if err := yaml.UnmarshalStrict([]byte(gatewayR155Pods), &pods); err != nil {
		t.Fatal(err)
	}
	for _, in := range []struct {
		values string
		typed  bool // the typed gateway path serves these values
	}{
		{`{}`, true},
		{`{"global":{"mountMtlsCerts":true,"network":"net0"}}`, true},
		{`{"global":{"trustDomain":"td.example","proxy":{"readinessInitialDelaySeconds":3}}}`, true},
		// The template then takes the pod securityContext from the values,
		// which the typed path does not model: it steps aside.
		{`{"gateways":{"securityContext":{"runAsNonRoot":true,"sysctls":[{"name":"net.core.somaxconn","value":"512"}]}}}`, false},
	} {
		values := in.values
		typed, err := config.Inputs{Values: []byte(values)}.Load()
		if err != nil {
			t.Fatal(err)
		}
		probe := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{AnnotationInjectTemplates: TemplateGateway}},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: ProxyContainerName, Image: "auto"}}},
		}
		if got := !useGenericTemplates(probe, typed); got != in.typed {
			t.Fatalf("values %s: typed gateway path used = %v, want %v", values, got, in.typed)
		}
		generic := forceGeneric(typed)
		for _, p := range pods {
			pod := p.DeepCopy()
			if pod.Annotations == nil {
				pod.Annotations = map[string]string{}
			}
			pod.Annotations[AnnotationInjectTemplates] = TemplateGateway
			name := fmt.Sprintf("%s (values %s)", pod.Name, values)
			a, errA := Inject(pod.DeepCopy(), "ns", typed, Options{})
			b, errB := Inject(pod.DeepCopy(), "ns", generic, Options{})
			if errA != nil || errB != nil {
				t.Errorf("%s: typed error %v, template error %v", name, errA, errB)
				continue
			}
			if d := jsonDiff("", podJSON(a.Pod), podJSON(b.Pod)); len(d) > 0 {
				t.Errorf("%s: typed (got) and template (want) differ:\n%s", name, strings.Join(d, "\n"))
			}
			// Re-injecting the stored pod changes nothing (typed path).
			again, err := Inject(applyPatch(t, pod, a), "ns", typed, Options{})
			if err != nil {
				t.Errorf("%s: re-injection: %v", name, err)
			} else if len(again.Patch) != 0 {
				ops, _ := json.Marshal(again.Patch)
				t.Errorf("%s: re-injection changed the pod: %s", name, ops)
			}
		}
	}
}

// TestGatewayBootstrapOverrideAndSysctls pins the two points where the typed
// gateway path used to disagree with Istio's gateway template, so a change
// on both paths at once is still caught: the template's
// `isset .ObjectMeta.Annotations "sidecar.istio.io/bootstrapOverride"`
// blocks (env, mount, ConfigMap volume), and the pod's sysctls list being
// replaced by the template's (PodSecurityContext.Sysctls is +listType=atomic,
// no patch merge key, so the strategic merge replaces it).
func TestGatewayBootstrapOverrideAndSysctls(t *testing.T) {
	cfg, err := config.Inputs{}.Load()
	if err != nil {
		t.Fatal(err)
	}
	for path, c := range map[string]*config.Snapshot{"typed": cfg, "generic": forceGeneric(cfg)} {
		pod := &corev1.Pod{Spec: corev1.PodSpec{
			SecurityContext: &corev1.PodSecurityContext{RunAsNonRoot: ptr(true),
				Sysctls: []corev1.Sysctl{{Name: "net.core.somaxconn", Value: "1024"}}},
			Containers: []corev1.Container{{Name: ProxyContainerName, Image: "auto"}},
		}}
		pod.Name, pod.Namespace = "gw", "ns"
		pod.Annotations = map[string]string{AnnotationInjectTemplates: TemplateGateway, AnnotationBootstrapOverride: "my-bootstrap"}
		res, err := Inject(pod, "ns", c, Options{})
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		var env, mount, vol string
		for _, e := range res.Pod.Spec.Containers[0].Env {
			if e.Name == "ISTIO_BOOTSTRAP_OVERRIDE" {
				env = e.Value
			}
		}
		for _, m := range res.Pod.Spec.Containers[0].VolumeMounts {
			if m.Name == "custom-bootstrap-volume" {
				mount = m.MountPath
			}
		}
		for _, v := range res.Pod.Spec.Volumes {
			if v.Name == "custom-bootstrap-volume" && v.ConfigMap != nil {
				vol = v.ConfigMap.Name
			}
		}
		if env != "/etc/istio/custom-bootstrap/custom_bootstrap.json" || mount != "/etc/istio/custom-bootstrap" || vol != "my-bootstrap" {
			t.Errorf("%s: ISTIO_BOOTSTRAP_OVERRIDE %q, mount %q, ConfigMap volume %q; want all three from the annotation", path, env, mount, vol)
		}
		sc := res.Pod.Spec.SecurityContext
		if len(sc.Sysctls) != 1 || sc.Sysctls[0] != unprivilegedPortSysctl {
			t.Errorf("%s: pod sysctls %v, want only the template's %v", path, sc.Sysctls, unprivilegedPortSysctl)
		}
		if sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
			t.Errorf("%s: the pod's runAsNonRoot was lost: %+v", path, sc)
		}
	}
}
