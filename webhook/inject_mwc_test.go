package webhook

import (
	"context"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

func contextWithCancel(t testing.TB) (context.Context, context.CancelFunc) {
	return context.WithCancel(context.Background())
}

// matches reports whether the API server would call any entry for a pod with
// podLabels in a namespace with nsLabels.
func matches(t *testing.T, mwc *admissionregistrationv1.MutatingWebhookConfiguration, nsLabels, podLabels map[string]string) bool {
	t.Helper()
	for _, wh := range mwc.Webhooks {
		ns, err := metav1.LabelSelectorAsSelector(wh.NamespaceSelector)
		if err != nil {
			t.Fatal(err)
		}
		obj, err := metav1.LabelSelectorAsSelector(wh.ObjectSelector)
		if err != nil {
			t.Fatal(err)
		}
		if ns.Matches(labels.Set(nsLabels)) && obj.Matches(labels.Set(podLabels)) {
			return true
		}
	}
	return false
}

func TestMutatingWebhookConfigurationSelectors(t *testing.T) {
	cc := ClientConfig{ServiceName: "meshguard", ServiceNamespace: "meshguard-system", OwnNamespace: "meshguard-system", CAInjectFrom: "meshguard-system/meshguard-serving"}
	def := MutatingWebhookConfiguration(cc)
	cc.Revision = "canary"
	canary := MutatingWebhookConfiguration(cc)
	nsName := func(n string, l map[string]string) map[string]string {
		out := map[string]string{"kubernetes.io/metadata.name": n}
		for k, v := range l {
			out[k] = v
		}
		return out
	}
	cases := []struct {
		name    string
		mwc     *admissionregistrationv1.MutatingWebhookConfiguration
		ns, pod map[string]string
		want    bool
	}{
		{"ns enabled", def, nsName("app", map[string]string{"istio-injection": "enabled"}), nil, true},
		{"ns enabled, pod label false", def, nsName("app", map[string]string{"istio-injection": "enabled"}), map[string]string{"sidecar.istio.io/inject": "false"}, false},
		{"ns disabled, pod opt-in", def, nsName("app", map[string]string{"istio-injection": "disabled"}), map[string]string{"sidecar.istio.io/inject": "true"}, false},
		{"unlabelled ns", def, nsName("app", nil), nil, false},
		{"unlabelled ns, pod label true", def, nsName("app", nil), map[string]string{"sidecar.istio.io/inject": "true"}, true},
		{"ns rev default", def, nsName("app", map[string]string{"istio.io/rev": "default"}), nil, true},
		{"ns rev canary on default", def, nsName("app", map[string]string{"istio.io/rev": "canary"}), nil, false},
		{"ns rev canary", canary, nsName("app", map[string]string{"istio.io/rev": "canary"}), nil, true},
		{"canary ignores istio-injection", canary, nsName("app", map[string]string{"istio-injection": "enabled"}), nil, false},
		{"pod rev canary", canary, nsName("app", nil), map[string]string{"istio.io/rev": "canary"}, true},
		{"own namespace", def, nsName("meshguard-system", map[string]string{"istio-injection": "enabled"}), nil, false},
		{"kube-system", def, nsName("kube-system", map[string]string{"istio-injection": "enabled"}), map[string]string{"sidecar.istio.io/inject": "true"}, false},
		{"kube-public", def, nsName("kube-public", nil), map[string]string{"sidecar.istio.io/inject": "true"}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := matches(t, tc.mwc, tc.ns, tc.pod); got != tc.want {
				t.Fatalf("matches = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestMutatingWebhookConfigurationShape(t *testing.T) {
	cc := ClientConfig{BaseURL: "https://127.0.0.1:9443", CABundle: []byte("ca"), CAInjectFrom: "ns/cert", TimeoutSeconds: 3}
	m := MutatingWebhookConfiguration(cc)
	if m.Name != MutatingConfigName || m.Annotations["cert-manager.io/inject-ca-from"] != "ns/cert" {
		t.Fatalf("name %q annotations %v", m.Name, m.Annotations)
	}
	if len(m.Webhooks) != 4 {
		t.Fatalf("%d webhooks, want 4", len(m.Webhooks))
	}
	seen := map[string]bool{}
	for _, wh := range m.Webhooks {
		if seen[wh.Name] {
			t.Fatalf("duplicate webhook name %s", wh.Name)
		}
		seen[wh.Name] = true
		if *wh.FailurePolicy != admissionregistrationv1.Fail || *wh.SideEffects != admissionregistrationv1.SideEffectClassNone ||
			*wh.ReinvocationPolicy != admissionregistrationv1.IfNeededReinvocationPolicy || *wh.TimeoutSeconds != 3 ||
			len(wh.AdmissionReviewVersions) != 1 || wh.AdmissionReviewVersions[0] != "v1" {
			t.Fatalf("webhook %s has wrong policy fields", wh.Name)
		}
		if wh.ClientConfig.URL == nil || *wh.ClientConfig.URL != "https://127.0.0.1:9443/inject" || string(wh.ClientConfig.CABundle) != "ca" {
			t.Fatalf("webhook %s clientConfig %+v", wh.Name, wh.ClientConfig)
		}
		r := wh.Rules[0]
		if len(wh.Rules) != 1 || r.Operations[0] != admissionregistrationv1.Create || r.Resources[0] != "pods" {
			t.Fatalf("rules %+v", wh.Rules)
		}
	}
	cc.TimeoutSeconds = 0
	cc.Revision = "canary"
	m = MutatingWebhookConfiguration(cc)
	if m.Name != MutatingConfigName+"-canary" || len(m.Webhooks) != 2 || *m.Webhooks[0].TimeoutSeconds != 10 {
		t.Fatalf("revision config: name %s, %d webhooks", m.Name, len(m.Webhooks))
	}
}
