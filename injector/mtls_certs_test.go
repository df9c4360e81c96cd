package injector

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshguard/meshguard/injector/config"
)

// With values global.mountMtlsCerts the istio-certs volume names the pod's
// service account secret, istio.default without one, in the sidecar and the
// gateway template alike (Istio's injection-template.yaml; golden
// hello-mount-mtls-certs.yaml.injected: secretName istio.default).
func TestMountMtlsCertsSecretName(t *testing.T) {
	cfg, err := config.Load(nil, []byte(`{"global":{"mountMtlsCerts":true}}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		template, serviceAccount, want string
	}{
		{TemplateSidecar, "", "istio.default"},
		{TemplateSidecar, "reviews", "istio.reviews"},
		{TemplateGateway, "", "istio.default"},
		{TemplateGateway, "ingress", "istio.ingress"},
	} {
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "default", Annotations: map[string]string{AnnotationInjectTemplates: c.template}},
			Spec:       corev1.PodSpec{ServiceAccountName: c.serviceAccount, Containers: []corev1.Container{{Name: "app", Image: "app"}}},
		}
		if c.template == TemplateGateway {
			pod.Spec.Containers[0] = corev1.Container{Name: "istio-proxy", Image: "auto"}
		}
		res, err := Inject(pod, "default", cfg, Options{})
		if err != nil {
			t.Fatalf("%s/%q: %v", c.template, c.serviceAccount, err)
		}
		got := "<no istio-certs volume>"
		for _, v := range res.Pod.Spec.Volumes {
			if v.Name == "istio-certs" && v.Secret != nil {
				got = v.Secret.SecretName
			}
		}
		if got != c.want {
			t.Errorf("%s, serviceAccountName %q: istio-certs secret = %q, want %q", c.template, c.serviceAccount, got, c.want)
		}
	}
}
