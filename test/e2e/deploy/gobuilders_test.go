package deploy

import (
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/meshguard/meshguard/certs"
	"github.com/meshguard/meshguard/injector/config"
	"github.com/meshguard/meshguard/webhook"
)

// TestChartMatchesBinary ties the manifests to the Go code that reads or
// rebuilds the same objects: the injection webhook entries
// (webhook.MutatingWebhookConfiguration, used by `meshguard dev` and the
// tests), the cert-manager chain meshguard creates when it is missing
// (certs.CertManagerObjects), the caBundle source (certs.InjectCAFrom) and
// the injector's config loader (injector/config.Load).
func TestChartMatchesBinary(t *testing.T) {
	certOpts := certs.Options{Namespace: namespace, ServiceName: serviceName,
		CADuration: 5 * 365 * 24 * time.Hour, LeafDuration: 90 * 24 * time.Hour}

	for _, rev := range []string{"", "canary"} {
		cc := webhook.ClientConfig{
			ServiceName: serviceName, ServiceNamespace: namespace, ServicePort: 443,
			OwnNamespace: namespace, Revision: rev, TimeoutSeconds: 10,
			CAInjectFrom: certs.InjectCAFrom(certOpts),
		}
		t.Run("mutating/rev="+rev, func(t *testing.T) {
			got := parse(t, renderHelm(t, "--set", "revision="+rev)).mutating(t)
			want := webhook.MutatingWebhookConfiguration(cc)
			compareWebhookConfig(t, "webhook.MutatingWebhookConfiguration", &got.ObjectMeta, &want.ObjectMeta, got.Webhooks, want.Webhooks)
		})
		t.Run("validating/rev="+rev, func(t *testing.T) {
			got := parse(t, renderHelm(t, "--set", "revision="+rev)).validating(t)
			want := webhook.ValidatingWebhookConfiguration(cc)
			compareWebhookConfig(t, "webhook.ValidatingWebhookConfiguration", &got.ObjectMeta, &want.ObjectMeta, got.Webhooks, want.Webhooks)
		})
	}

	t.Run("cert-manager chain", func(t *testing.T) {
		m := parse(t, renderHelm(t))
		byName := map[string]any{}
		for _, u := range m.find("Issuer") {
			byName["Issuer/"+u.GetName()] = convert[cmapi.Issuer](t, u).Spec
		}
		for _, u := range m.find("Certificate") {
			byName["Certificate/"+u.GetName()] = convert[cmapi.Certificate](t, u).Spec
		}
		want := certs.CertManagerObjects(certOpts)
		if len(byName) != len(want) {
			t.Errorf("chart renders %d cert-manager objects, certs.CertManagerObjects %d", len(byName), len(want))
		}
		for _, obj := range want {
			var key string
			var spec any
			switch o := obj.(type) {
			case *cmapi.Issuer:
				key, spec = "Issuer/"+o.Name, o.Spec
			case *cmapi.Certificate:
				key, spec = "Certificate/"+o.Name, o.Spec
			default:
				t.Fatalf("unexpected %T from certs.CertManagerObjects", obj)
			}
			got, ok := byName[key]
			if !ok {
				t.Errorf("chart lacks %s", key)
				continue
			}
			if !equality.Semantic.DeepEqual(got, spec) {
				gy, _ := yaml.Marshal(got)
				wy, _ := yaml.Marshal(spec)
				t.Errorf("%s differs from certs.CertManagerObjects:\n--- chart\n%s--- Go\n%s", key, gy, wy)
			}
		}
	})

	t.Run("injector config", func(t *testing.T) {
		for _, p := range []packaging{helmPackaging("cert-manager", ""), kustomizePackaging("self-managed", "self")} {
			cm := parse(t, p.render(t)).configMap(t)
			if _, err := config.Load([]byte(cm.Data["mesh.yaml"]), []byte(cm.Data["values.yaml"])); err != nil {
				t.Errorf("%s: ConfigMap %s does not load: %v", p.name, cm.Name, err)
			}
			// Strict: a key the injector ignores is a typo in the manifests.
			var v config.Values
			if err := yaml.UnmarshalStrict([]byte(cm.Data["values.yaml"]), &v); err != nil {
				t.Errorf("%s: values.yaml has keys the injector does not read: %v", p.name, err)
			}
		}
	})
}

// compareWebhookConfig compares a rendered webhook configuration with the one
// the named Go builder makes: name, annotations and every webhook entry.
func compareWebhookConfig(t *testing.T, builder string, got, want *metav1.ObjectMeta, gotHooks, wantHooks any) {
	t.Helper()
	if got.Name != want.Name {
		t.Errorf("name %q, Go builds %q", got.Name, want.Name)
	}
	if !equality.Semantic.DeepEqual(got.Annotations, want.Annotations) {
		t.Errorf("annotations %v, Go builds %v", got.Annotations, want.Annotations)
	}
	if !equality.Semantic.DeepEqual(gotHooks, wantHooks) {
		gy, _ := yaml.Marshal(gotHooks)
		wy, _ := yaml.Marshal(wantHooks)
		t.Errorf("webhooks differ from %s:\n--- chart\n%s--- Go\n%s", builder, gy, wy)
	}
}
