// Package scheme is the one runtime.Scheme meshguard's manager and clients
// use: the core Kubernetes types, apiextensions, Istio's and cert-manager's.
// It is production code (the test harness in test/cluster re-uses it), so the
// product binary gets its scheme without linking the test harness.
package scheme

import (
	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	istioscheme "istio.io/client-go/pkg/clientset/versioned/scheme"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
)

// Scheme knows the core Kubernetes types, apiextensions, Istio's and cert-manager's.
var Scheme = New()

// New returns a fresh scheme with the same types as Scheme, for a caller that
// adds types of its own without touching the shared one.
func New() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(apiextensionsv1.AddToScheme(s))
	utilruntime.Must(istioscheme.AddToScheme(s))
	utilruntime.Must(cmapi.AddToScheme(s))
	return s
}
