// Package certmanager runs the real cert-manager controllers and its CA
// injector in-process against a test API server. The
// cert-manager controller binary cannot be built from the module proxy (its
// Venafi dependency is not served), but its public controller packages can:
// they register themselves in init() and are constructed here from
// controller.Known(), exactly as cmd/controller does, minus ACME, Vault,
// Venafi and the ingress/gateway shims. The cert-manager webhook is not run:
// tests must only create valid objects (no cert-manager webhook runs).
package certmanager

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	apiregv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlconfig "sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	"github.com/cert-manager/cert-manager/pkg/controller"
	"github.com/cert-manager/cert-manager/pkg/controller/cainjector"
	crapprover "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/approver"
	crca "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/ca"
	crselfsigned "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/selfsigned"
	"github.com/cert-manager/cert-manager/pkg/controller/certificates/issuing"
	"github.com/cert-manager/cert-manager/pkg/controller/certificates/keymanager"
	"github.com/cert-manager/cert-manager/pkg/controller/certificates/readiness"
	"github.com/cert-manager/cert-manager/pkg/controller/certificates/requestmanager"
	"github.com/cert-manager/cert-manager/pkg/controller/certificates/revisionmanager"
	"github.com/cert-manager/cert-manager/pkg/controller/certificates/trigger"
	"github.com/cert-manager/cert-manager/pkg/controller/clusterissuers"
	"github.com/cert-manager/cert-manager/pkg/controller/issuers"
	// Issuer implementations register with the issuer factory in init().
	_ "github.com/cert-manager/cert-manager/pkg/issuer/ca"
	_ "github.com/cert-manager/cert-manager/pkg/issuer/selfsigned"
)

// Controllers are the cert-manager controllers started, by their registered names.
var Controllers = []string{
	trigger.ControllerName, issuing.ControllerName, keymanager.ControllerName,
	requestmanager.ControllerName, readiness.ControllerName, revisionmanager.ControllerName,
	crapprover.ControllerName, crca.CRControllerName, crselfsigned.CRControllerName,
	issuers.ControllerName, clusterissuers.ControllerName,
}

// Options configure Run.
type Options struct {
	// Kubeconfig is a kubeconfig file path: cert-manager's ContextFactory only
	// loads configuration from a file or in-cluster.
	Kubeconfig string
	// Config is the same cluster's rest.Config, for the CA injector's manager.
	Config *rest.Config
	// ClusterResourceNamespace holds ClusterIssuers' Secrets (default "cert-manager").
	ClusterResourceNamespace string
	// Log receives the controllers' logs (default: discard).
	Log logr.Logger
	// MinBackoff/MaxBackoff bound the CertificateRequest failure backoff
	// (defaults 2s/30s instead of cert-manager's 1h/32h, so a test recovers).
	MinBackoff, MaxBackoff time.Duration
}

// Stack is a running set of controllers plus the injector.
type Stack struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	errs   []error
}

// Run starts the controllers and the injector; they run until Stop or ctx ends.
func Run(ctx context.Context, o Options) (*Stack, error) {
	if o.Kubeconfig == "" || o.Config == nil {
		return nil, errors.New("certmanager.Options: Kubeconfig and Config are required")
	}
	if o.ClusterResourceNamespace == "" {
		o.ClusterResourceNamespace = "cert-manager"
	}
	if o.MinBackoff == 0 {
		o.MinBackoff = 2 * time.Second
	}
	if o.MaxBackoff == 0 {
		o.MaxBackoff = 30 * time.Second
	}
	if o.Log.GetSink() == nil {
		o.Log = logr.Discard()
	}
	ctx, cancel := context.WithCancel(logr.NewContext(ctx, o.Log))
	s := &Stack{cancel: cancel}

	if err := s.startControllers(ctx, o); err != nil {
		cancel()
		s.wg.Wait()
		return nil, err
	}
	if err := s.startInjector(ctx, o); err != nil {
		cancel()
		s.wg.Wait()
		return nil, err
	}
	return s, nil
}

func (s *Stack) startControllers(ctx context.Context, o Options) error {
	opts := controller.ContextOptions{
		Kubeconfig:         o.Kubeconfig,
		KubernetesAPIQPS:   100,
		KubernetesAPIBurst: 200,
		IssuerOptions:      controller.IssuerOptions{ClusterResourceNamespace: o.ClusterResourceNamespace},
		CertificateOptions: controller.CertificateOptions{
			CertificateRequestMinimumBackoffDuration: o.MinBackoff,
			CertificateRequestMaximumBackoffDuration: o.MaxBackoff,
		},
	}
	factory, err := controller.NewContextFactory(ctx, opts)
	if err != nil {
		return fmt.Errorf("cert-manager context: %w", err)
	}
	var run []controller.Interface
	for _, name := range Controllers {
		construct, ok := controller.Known()[name]
		if !ok {
			return fmt.Errorf("cert-manager controller %q is not registered", name)
		}
		c, err := construct(factory)
		if err != nil {
			return fmt.Errorf("construct cert-manager controller %q: %w", name, err)
		}
		run = append(run, c)
	}
	for i, c := range run {
		name := Controllers[i]
		s.goRun(func() error {
			if err := c.Run(2, ctx); err != nil {
				return fmt.Errorf("cert-manager controller %q: %w", name, err)
			}
			return nil
		})
	}
	// Informers are requested while controllers register, so start the
	// shared factories last (as cmd/controller does).
	base, err := factory.Build()
	if err != nil {
		return fmt.Errorf("cert-manager base context: %w", err)
	}
	base.KubeSharedInformerFactory.Start(ctx.Done())
	base.SharedInformerFactory.Start(ctx.Done())
	base.HTTP01ResourceMetadataInformersFactory.Start(ctx.Done())
	return nil
}

// startInjector runs cainjector's reconcilers for webhook configurations in a
// controller-runtime manager configured like cmd/cainjector: Secrets are read
// uncached, and the Certificate data source (inject-ca-from) is enabled.
func (s *Stack) startInjector(ctx context.Context, o Options) error {
	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(cmapi.AddToScheme(scheme))
	utilruntime.Must(apiextensionsv1.AddToScheme(scheme))
	utilruntime.Must(apiregv1.AddToScheme(scheme))

	cfg := rest.CopyConfig(o.Config)
	// cainjector's server-side-apply field manager comes from the UserAgent;
	// envtest leaves it empty, which the API server rejects.
	cfg.UserAgent = "cert-manager-cainjector/meshguard-test"
	skip := true
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 scheme,
		Logger:                 o.Log.WithName("cainjector"),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		LeaderElection:         false,
		Controller:             ctrlconfig.Controller{SkipNameValidation: &skip},
		Client: client.Options{Cache: &client.CacheOptions{
			DisableFor: []client.Object{&corev1.Secret{}},
		}},
	})
	if err != nil {
		return fmt.Errorf("cainjector manager: %w", err)
	}
	err = cainjector.RegisterAllInjectors(ctx, mgr, cainjector.SetupOptions{
		EnableCertificatesDataSource: true,
		EnabledReconcilersFor: map[string]bool{
			cainjector.MutatingWebhookConfigurationName:   true,
			cainjector.ValidatingWebhookConfigurationName: true,
		},
	})
	if err != nil {
		return fmt.Errorf("register CA injectors: %w", err)
	}
	s.goRun(func() error {
		if err := mgr.Start(ctx); err != nil {
			return fmt.Errorf("cainjector manager: %w", err)
		}
		return nil
	})
	return nil
}

func (s *Stack) goRun(fn func() error) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := fn(); err != nil {
			s.mu.Lock()
			s.errs = append(s.errs, err)
			s.mu.Unlock()
		}
	}()
}

// Stop stops everything and returns what failed while running.
func (s *Stack) Stop() error {
	s.cancel()
	s.wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	return errors.Join(s.errs...)
}

// Start runs the stack for a test and stops it on cleanup.
func Start(t testing.TB, kubeconfig string, cfg *rest.Config) *Stack {
	t.Helper()
	s, err := Run(context.Background(), Options{Kubeconfig: kubeconfig, Config: cfg})
	if err != nil {
		t.Fatalf("start cert-manager: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("cert-manager stopped with errors: %v", err)
		}
	})
	return s
}
