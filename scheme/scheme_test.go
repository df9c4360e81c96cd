package scheme

import (
	"testing"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// TestSchemeKnowsEachGroup: one type of each group the manager and clients
// use, under the kind the API server serves it as.
func TestSchemeKnowsEachGroup(t *testing.T) {
	for _, tc := range []struct {
		obj runtime.Object
		gvk schema.GroupVersionKind
	}{
		{&corev1.Pod{}, corev1.SchemeGroupVersion.WithKind("Pod")},
		{&apiextensionsv1.CustomResourceDefinition{}, apiextensionsv1.SchemeGroupVersion.WithKind("CustomResourceDefinition")},
		{&securityv1.AuthorizationPolicy{}, schema.GroupVersionKind{Group: "security.istio.io", Version: "v1", Kind: "AuthorizationPolicy"}},
		{&networkingv1.VirtualService{}, schema.GroupVersionKind{Group: "networking.istio.io", Version: "v1", Kind: "VirtualService"}},
		{&cmapi.Certificate{}, schema.GroupVersionKind{Group: "cert-manager.io", Version: "v1", Kind: "Certificate"}},
	} {
		for name, s := range map[string]*runtime.Scheme{"Scheme": Scheme, "New()": New()} {
			gvks, _, err := s.ObjectKinds(tc.obj)
			if err != nil || len(gvks) != 1 || gvks[0] != tc.gvk {
				t.Errorf("%s.ObjectKinds(%T) = %v, %v; want %v", name, tc.obj, gvks, err, tc.gvk)
			}
		}
	}
}

// TestNewIsFresh: a type added to New()'s scheme is not in Scheme.
func TestNewIsFresh(t *testing.T) {
	gv := schema.GroupVersion{Group: "example.meshguard.io", Version: "v1"}
	s := New()
	s.AddKnownTypeWithName(gv.WithKind("Thing"), &corev1.ConfigMap{})
	if Scheme.Recognizes(gv.WithKind("Thing")) {
		t.Error("a type added to New()'s scheme is in Scheme too")
	}
	if !s.Recognizes(gv.WithKind("Thing")) {
		t.Error("New()'s scheme lost the added type")
	}
}
