package injector

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
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
		res, err := Inject(pod, "default", config.Default())
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
