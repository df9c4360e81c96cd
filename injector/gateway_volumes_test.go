package injector

import (
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshguard/meshguard/injector/config"
)

// Istio's gateway template declares credential-socket and workload-certs as
// emptyDir (golden gateway.yaml.injected); its sidecar template gives them
// no source.
func TestGatewayCredentialVolumesAreEmptyDir(t *testing.T) {
	for _, c := range []struct {
		template string
		emptyDir bool
	}{{TemplateGateway, true}, {TemplateSidecar, false}} {
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "default", Annotations: map[string]string{AnnotationInjectTemplates: c.template}},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "istio-proxy", Image: "auto"}}},
		}
		if c.template == TemplateSidecar {
			pod.Spec.Containers[0].Name = "app"
		}
		res, err := Inject(pod, "default", config.Default(), Options{})
		if err != nil {
			t.Fatalf("%s: %v", c.template, err)
		}
		for _, v := range res.Pod.Spec.Volumes {
			if v.Name == "credential-socket" || v.Name == "workload-certs" {
				if got := v.EmptyDir != nil; got != c.emptyDir {
					t.Errorf("%s: volume %s emptyDir=%v, want %v", c.template, v.Name, got, c.emptyDir)
				}
			}
		}
	}
}

// Istio's gateway template, like the sidecar one, names the first non-proxy
// container in kubectl.kubernetes.io/default-container and
// default-logs-container when there is at least one
// ({{ if ge (len $containers) 1 }}), unless the pod sets them.
func TestGatewayDefaultContainerAnnotations(t *testing.T) {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "default", Annotations: map[string]string{AnnotationInjectTemplates: TemplateGateway}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{
			{Name: "istio-proxy", Image: "auto"}, {Name: "a", Image: "a"}, {Name: "b", Image: "b"},
		}},
	}
	res, err := Inject(pod, "default", config.Default(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{AnnotationDefaultContainer, AnnotationDefaultLogsContainer} {
		if got := res.Pod.Annotations[k]; got != "a" {
			t.Errorf("annotation %s = %q, want %q", k, got, "a")
		}
	}
}

// The gateway template's pod sysctl (net.ipv4.ip_unprivileged_port_start=0)
// reaches the API server through the patch, also when the pod declares no
// securityContext or one without sysctls (a hand-written gateway Deployment).
func TestGatewaySysctlInPatch(t *testing.T) {
	for name, sc := range map[string]*corev1.PodSecurityContext{
		"no securityContext": nil,
		"without sysctls":    {RunAsNonRoot: ptr(true)},
		"other sysctl":       {Sysctls: []corev1.Sysctl{{Name: "net.core.somaxconn", Value: "1024"}}},
	} {
		t.Run(name, func(t *testing.T) {
			pod := loadPod(t, "testdata/golden/gateway.in.yaml")
			pod.Spec.SecurityContext = sc
			res, err := Inject(pod, pod.Namespace, config.Default(), Options{})
			if err != nil {
				t.Fatal(err)
			}
			got := applyPatch(t, pod, res).Spec.SecurityContext
			if got == nil || !slices.Contains(got.Sysctls, unprivilegedPortSysctl) {
				t.Fatalf("patched pod securityContext = %+v, want the sysctl %v", got, unprivilegedPortSysctl)
			}
			if !equality.Semantic.DeepEqual(got, res.Pod.Spec.SecurityContext) {
				t.Fatalf("patched securityContext %+v differs from Result.Pod's %+v", got, res.Pod.Spec.SecurityContext)
			}
		})
	}
}

// ISTIO_META_POD_PORTS lists the ports of every container Istio's template
// sees as .Spec.Containers, a user-declared istio-proxy included (the
// gateway Helm chart declares 15090 on it); re-injection, which takes the
// user's container from proxy.istio.io/overrides, lists it again. A native
// sidecar's override is recorded under initContainers, which Istio's
// re-injection does not list: its ports are left out both times, so
// re-injection stays idempotent.
func TestPodPortsIncludeUserDeclaredProxy(t *testing.T) {
	port := corev1.ContainerPort{Name: "http-envoy-prom", ContainerPort: 15090, Protocol: corev1.ProtocolTCP}
	for _, c := range []struct {
		template string
		native   string
		want     string
	}{
		{TemplateGateway, "", `{"name":"http-envoy-prom","containerPort":15090,"protocol":"TCP"}`},
		{TemplateSidecar, "", `{"name":"http","containerPort":8080},{"name":"http-envoy-prom","containerPort":15090,"protocol":"TCP"}`},
		{TemplateSidecar, "true", `{"name":"http","containerPort":8080}`},
	} {
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "default", Annotations: map[string]string{AnnotationInjectTemplates: c.template}},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: ProxyContainerName, Image: "auto", Ports: []corev1.ContainerPort{port}}}},
		}
		if c.native != "" {
			pod.Annotations[AnnotationNativeSidecar] = c.native
		}
		if c.template == TemplateSidecar {
			app := corev1.Container{Name: "app", Image: "a", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}}
			pod.Spec.Containers = append([]corev1.Container{app}, pod.Spec.Containers...)
		}
		res, err := Inject(pod, "default", config.Default(), Options{})
		if err != nil {
			t.Fatalf("%s: %v", c.template, err)
		}
		again, err := Inject(applyPatch(t, pod, res), "default", config.Default(), Options{})
		if err != nil {
			t.Fatalf("%s re-injection: %v", c.template, err)
		}
		if len(again.Patch) != 0 {
			t.Errorf("%s native=%q: re-injection changed the pod (%d ops)", c.template, c.native, len(again.Patch))
		}
		for i, got := range []*corev1.Pod{res.Pod, again.Pod} {
			var ports string
			for _, pc := range append(got.Spec.InitContainers, got.Spec.Containers...) {
				for _, e := range pc.Env {
					if pc.Name == ProxyContainerName && e.Name == "ISTIO_META_POD_PORTS" {
						ports = strings.Join(strings.Fields(e.Value), "")
					}
				}
			}
			if want := "[" + c.want + "]"; ports != want {
				t.Errorf("%s (injection %d): ISTIO_META_POD_PORTS %s, want %s", c.template, i+1, ports, want)
			}
		}
	}
}
