package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	ctrlwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/meshguard/meshguard/authz"
	"github.com/meshguard/meshguard/certs"
	"github.com/meshguard/meshguard/internal/connlimit"
	"github.com/meshguard/meshguard/scheme"
	"github.com/meshguard/meshguard/webhook"
)

// serveOptions are everything `meshguard serve` (and `meshguard dev`) runs with.
type serveOptions struct {
	kubeconfig      string
	webhooks        bool
	authz           bool
	namespace       string
	webhookHost     string
	webhookPort     int
	webhookMaxConns int
	metricsAddr     string
	healthAddr      string
	leaderElect     bool
	leaderLease     string
	authzTLS        bool
	shutdownTimeout time.Duration
	shutdownDelay   time.Duration
	drain           *drain // set by `serve`: SIGTERM drains before the servers stop
	logDev          bool

	injection  webhook.InjectionOptions
	validation webhook.ValidationOptions
	authzOpts  authz.Options
	certOpts   certs.Options
	governance governanceOptions
}

func (o *serveOptions) addFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig file (default: in-cluster config, then $KUBECONFIG)")
	fs.BoolVar(&o.webhooks, "webhooks", true, "serve the injection and validation webhooks")
	fs.BoolVar(&o.authz, "authz", true, "serve the ext_authz gRPC service")
	fs.StringVar(&o.namespace, "namespace", envOr("POD_NAMESPACE", "meshguard-system"), "namespace meshguard runs in (never selected by its webhooks; holds its Secrets and leader lease)")
	fs.StringVar(&o.webhookHost, "webhook-host", "", "address the webhook HTTPS server binds (empty: all interfaces)")
	fs.IntVar(&o.webhookPort, "webhook-port", 9443, "port of the webhook HTTPS server")
	fs.IntVar(&o.webhookMaxConns, "webhook-max-connections", webhook.DefaultMaxConnections, "client connections open at once on the webhook HTTPS server; further clients wait until one closes (docs/reliability.md)")
	fs.StringVar(&o.metricsAddr, "metrics-addr", ":8080", "address of the Prometheus /metrics endpoint (\"0\" disables)")
	fs.StringVar(&o.healthAddr, "health-addr", ":8081", "address of the /healthz and /readyz endpoints")
	fs.BoolVar(&o.leaderElect, "leader-elect", false, "elect a leader among replicas (only the leader does the background work: self-managed certificate rotation, the cert-manager chain, the audit)")
	fs.StringVar(&o.leaderLease, "leader-election-id", "meshguard-leader", "name of the leader election Lease in --namespace (one per installation: two sharing it elect one leader between them)")
	fs.BoolVar(&o.authzTLS, "authz-tls", false, "serve ext_authz over TLS with the serving certificate")
	fs.DurationVar(&o.shutdownTimeout, "shutdown-timeout", 15*time.Second, "how long in-flight requests may drain on SIGTERM")
	fs.DurationVar(&o.shutdownDelay, "shutdown-delay", 5*time.Second, "on SIGTERM, keep serving this long with /readyz failing and webhook connections closed after each response, before stopping (docs/operations.md)")
	fs.BoolVar(&o.logDev, "log-dev", false, "human-readable logs instead of JSON")
	fs.StringVar(&o.certOpts.Revision, "revision", "", "istio.io/rev this instance serves (names its webhook configurations; ext_authz skips policies labelled istio.io/rev for another revision; empty = default revision)")
	o.injection.AddFlags(fs)
	o.validation.AddFlags(fs)
	o.authzOpts.AddFlags(fs)
	o.certOpts.AddFlags(fs)
	o.governance.addFlags(fs)
}

func newServeCmd() *cobra.Command {
	o := &serveOptions{}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the injection and validation webhooks and the ext_authz gRPC service",
		Long: `Serve runs meshguard's servers in one process: the webhook HTTPS server
(/inject, /validate) and the Envoy ext_authz gRPC service. --webhooks=false or
--authz=false runs either alone.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.check(); err != nil {
				return err
			}
			if err := tuneGC(); err != nil {
				return exitError{2, err.Error()}
			}
			if err := authzFromMeshConfig(cmd.Flags(), o.injection.MeshConfigPath, &o.authzOpts); err != nil {
				return err
			}
			log := newLogger(o.logDev)
			cfg, err := loadRESTConfig(o.kubeconfig)
			if err != nil {
				return err
			}
			o.drain = newDrain(o.shutdownDelay)
			return runServe(o.drain.signalContext(), cfg, o, nil, log)
		},
	}
	o.addFlags(cmd.Flags())
	return cmd
}

func newLogger(dev bool) logr.Logger {
	log := zap.New(zap.UseDevMode(dev))
	ctrl.SetLogger(log)
	return log
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func loadRESTConfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig == "" {
		if cfg, err := rest.InClusterConfig(); err == nil {
			return cfg, nil
		}
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = kubeconfig
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, nil).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("load kubeconfig: %w", err)
	}
	return cfg, nil
}

// runServe builds the manager, wires the certificate source into every
// listener and starts the enabled servers until ctx ends. started, when not
// nil, is called once the manager has been built and all servers are set up.
// check refuses, naming the flag, values serve cannot honour and flag
// combinations that would quietly serve less than asked, before anything
// connects or listens. (`dev` picks a free port for --webhook-port=0.)
func (o *serveOptions) check() error {
	// Client certificates are verified only by ext_authz over TLS: without
	// it the flag would leave ext_authz on plaintext, open to any client.
	if o.certOpts.ClientCAVerify && !(o.authz && o.authzTLS) {
		return fmt.Errorf("--tls-verify-client applies to ext_authz over TLS: it needs --authz-tls (and --authz)")
	}
	if o.authzTLS && !o.authz {
		return fmt.Errorf("--authz-tls applies to ext_authz: it needs --authz")
	}
	if o.authzOpts.HTTPAddr != "" && !o.authz {
		return fmt.Errorf("--authz-http-addr serves ext_authz over HTTP: it needs --authz")
	}
	if errs := validation.IsDNS1123Subdomain(o.leaderLease); len(errs) > 0 {
		return fmt.Errorf("--leader-election-id %q: not a Lease name: %s", o.leaderLease, strings.Join(errs, "; "))
	}
	// controller-runtime's webhook server replaces port 0 with 9443.
	if o.webhookPort < 1 || o.webhookPort > 65535 {
		return fmt.Errorf("--webhook-port %d: want 1-65535", o.webhookPort)
	}
	// Zero takes the default (webhook.NewServer), as ext_authz's limits do.
	if o.webhookMaxConns < 0 {
		return fmt.Errorf("--webhook-max-connections %d: must not be negative", o.webhookMaxConns)
	}
	// A negative GracefulShutdownTimeout makes controller-runtime wait for
	// the servers without bound.
	for _, d := range []struct {
		flag string
		v    time.Duration
	}{{"--shutdown-timeout", o.shutdownTimeout}, {"--shutdown-delay", o.shutdownDelay}, {"--audit-interval", o.governance.auditInterval}} {
		if d.v < 0 {
			return fmt.Errorf("%s %s: must not be negative", d.flag, d.v)
		}
	}
	if o.governance.auditQPS <= 0 {
		return fmt.Errorf("--audit-qps %g: must be positive", o.governance.auditQPS)
	}
	if o.webhooks {
		if err := o.injection.Validate(); err != nil {
			return err
		}
	} else if o.injection.ConfigMaps.Enabled() {
		// Istio's ConfigMaps are read by the injector, and ext_authz and the
		// audit follow the mesh config it loads (followInjectorMesh): without
		// it they would decide with Istio's defaults (root namespace
		// istio-system), skipping mesh-wide policies of another root.
		return fmt.Errorf("--istio-config-namespace needs the webhooks: with --webhooks=false nothing reads Istio's ConfigMaps; give ext_authz's mesh settings with --mesh-config or its flags")
	}
	if o.authz {
		// One --revision: ext_authz enforces the policies of the revision
		// whose webhooks this instance serves (policy.InRevision).
		o.authzOpts.Revision = o.certOpts.Revision
		if err := o.authzOpts.Validate(); err != nil {
			return err
		}
	}
	return nil
}

func runServe(ctx context.Context, cfg *rest.Config, o *serveOptions, started func(manager.Manager, certs.Source), log logr.Logger) error {
	var source certs.Source // set below, before the manager starts serving
	getCertificate := func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) { return source.GetCertificate(hello) }
	timeout := o.shutdownTimeout
	webhookServer := webhook.NewServer(ctrlwebhook.Options{
		Host: o.webhookHost,
		Port: o.webhookPort,
		TLSOpts: []func(*tls.Config){func(c *tls.Config) {
			c.MinVersion = tls.VersionTLS12
			c.GetCertificate = getCertificate
		}},
	}, timeout, o.webhookMaxConns, log.WithValues("server", "webhook"))
	if o.drain != nil {
		webhookServer = drainingServer{Server: webhookServer, d: o.drain}
	}
	base, err := ctrl.NewManager(cfg, manager.Options{
		Scheme: scheme.Scheme,
		Logger: log,
		Cache:  managerCacheOptions(),
		// Served by runServe (probeChecks, serveHTTP), not by
		// controller-runtime's servers, which bound only a request's headers.
		Metrics:                 metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress:  "0",
		GracefulShutdownTimeout: &timeout,
		WebhookServer:           webhookServer,
	})
	if err != nil {
		return fmt.Errorf("create manager: %w", err)
	}
	mgr := &probeChecks{Manager: base, healthz: map[string]healthz.Checker{}, readyz: map[string]healthz.Checker{}}
	// --leader-elect: the leader-only work is elected by leaderManager, not
	// by the manager, whose lost Lease would end the process. It gives the
	// Lease up on a graceful stop once that work has stopped, so the next
	// leader need not wait out the lease.
	lm, err := newLeaderManager(mgr, o.leaderElect, o.namespace, o.leaderLease, log.WithName("leader"))
	if err != nil {
		return err
	}
	o.certOpts.Namespace = o.namespace
	if source, err = certs.Setup(ctx, lm, o.certOpts, log.WithName("certs")); err != nil {
		return fmt.Errorf("set up serving certificates: %w", err)
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("certificate", source.Ready); err != nil {
		return err
	}
	if o.drain != nil {
		if err := mgr.AddReadyzCheck("draining", o.drain.ready); err != nil {
			return err
		}
	}
	// Rejected config and policy updates become Events on meshguard's Pod.
	sink := newEventSink(mgr.GetEventRecorder("meshguard"), o.namespace)
	if err := setupGovernance(lm, o, sink, log); err != nil {
		return err
	}
	if o.webhooks {
		o.injection.OnConfigRejected = func(err error) { sink.rejected("InjectorConfigRejected", err) }
		startWith := followInjectorMesh(o)
		followAuditMesh(o)
		if err := webhook.SetupInjection(lm, o.injection, log.WithName("inject")); err != nil {
			return fmt.Errorf("set up injection webhook: %w", err)
		}
		if err := startWith(); err != nil {
			return fmt.Errorf("ext_authz: the injector's mesh config: %w", err)
		}
		if err := webhook.SetupValidation(lm, o.validation, log.WithName("validate")); err != nil {
			return fmt.Errorf("set up validation webhook: %w", err)
		}
		if err := mgr.AddReadyzCheck("webhook-server", func(r *http.Request) error { return mgr.GetWebhookServer().StartedChecker()(r) }); err != nil {
			return err
		}
	} else if err := auditMeshWithoutInjector(o); err != nil {
		return err
	}
	if o.authz {
		o.authzOpts.OnReloadError = func(err error) { sink.rejected("PolicyRejected", err) }
		o.authzOpts.ShutdownTimeout = o.shutdownTimeout
		if o.drain != nil {
			o.authzOpts.Draining = o.drain.begun
		}
		var tlsConfig *tls.Config
		if o.authzTLS {
			tlsConfig = source.TLSConfig(o.certOpts.ClientCAVerify) // --tls-verify-client: mTLS from the proxies
		}
		if err := authz.Setup(lm, o.authzOpts, tlsConfig, log.WithName("authz")); err != nil {
			return fmt.Errorf("set up ext_authz: %w", err)
		}
	}
	// The metrics endpoint as controller-runtime's (its registry, errors as
	// HTTP 500); "" is its default address.
	metricsAddr := o.metricsAddr
	if metricsAddr == "" {
		metricsAddr = ":8080"
	}
	metricsMux := http.NewServeMux()
	metricsMux.Handle("/metrics", promhttp.HandlerFor(ctrlmetrics.Registry, promhttp.HandlerOpts{ErrorHandling: promhttp.HTTPErrorOnError}))
	if err := serveHTTP(base, probeServer, o.healthAddr, mgr.handler(), timeout, log); err != nil {
		return err
	}
	if err := serveHTTP(base, "metrics", metricsAddr, metricsMux, timeout, log); err != nil {
		return err
	}
	if started != nil {
		started(mgr, source)
	}
	log.Info("starting meshguard", "version", version, "webhooks", o.webhooks, "authz", o.authz)
	if err := mgr.Start(ctx); err != nil {
		return fmt.Errorf("run: %w", err)
	}
	return nil
}

// managerCacheOptions: what the manager's informers keep of each object.
// Nothing in meshguard reads managedFields, which are often the largest part
// of a small object (every Pod, policy and mesh resource the caches hold for
// authorization, validation and the audit); controller-runtime's own
// transform drops them. /inject reads only each node's kubelet version
// (native sidecar detection).
func managerCacheOptions() cache.Options {
	return cache.Options{
		DefaultTransform: cache.TransformStripManagedFields(),
		ByObject:         map[client.Object]cache.ByObject{&corev1.Node{}: {Transform: webhook.StripNode}},
	}
}

// probeChecks is the manager with its health and readiness checks kept
// here, for the probe server runServe starts in place of controller-runtime's.
type probeChecks struct {
	manager.Manager
	mu              sync.Mutex
	healthz, readyz map[string]healthz.Checker
}

func (p *probeChecks) AddHealthzCheck(name string, check healthz.Checker) error {
	return p.add(p.healthz, name, check)
}

func (p *probeChecks) AddReadyzCheck(name string, check healthz.Checker) error {
	return p.add(p.readyz, name, check)
}

func (p *probeChecks) add(checks map[string]healthz.Checker, name string, check healthz.Checker) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	checks[name] = check
	return nil
}

// handler serves /healthz and /readyz as controller-runtime's probe server
// does (manager addHealthProbeServer: healthz.Handler, /<check> subpaths).
func (p *probeChecks) handler() http.Handler {
	mux := http.NewServeMux()
	for path, checks := range map[string]map[string]healthz.Checker{"/healthz": p.healthz, "/readyz": p.readyz} {
		h := http.StripPrefix(path, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p.mu.Lock()
			now := maps.Clone(checks) // a check may still be added
			p.mu.Unlock()
			(&healthz.Handler{Checks: now}).ServeHTTP(w, r)
		}))
		mux.Handle(path, h)
		mux.Handle(path+"/", h)
	}
	return mux
}

// metricsMaxConnections caps the connections open at once on the metrics
// server (connlimit.Listener): its clients are a few scrapers, each keeping a
// connection. A stalled connection is closed at webhook.NewHTTPServer's
// deadline, so a flood delays scrapes by at most that, rather than
// exhausting memory.
const metricsMaxConnections = 100

// probeServer is the name of the health probe server, which has no
// connection cap: a client that can reach the port could hold every slot of
// one (a request every IdleTimeout on kept-alive connections) and the
// kubelet's liveness probe, waiting behind them past its timeout, would have
// the container restarted over and over. Instead each of its connections
// serves one request (keep-alives off: the kubelet opens one per probe
// anyway), so a connection lasts at most webhook.NewHTTPServer's deadline.
const probeServer = "health probe"

// serveHTTP adds a server for h on addr ("" or "0": none) to mgr, started
// with the webhook server before the caches sync, as controller-runtime's
// probe and metrics servers are. webhook.NewHTTPServer bounds each request
// whole: controller-runtime's servers bound only its headers, so a client
// trickling a body (net/http discards up to 256 KiB of it after the handler,
// with no deadline) held a connection indefinitely. net/http's messages go to
// log, with the server's name. The health probe server (probeServer) is
// uncapped and closes each connection after its request; the metrics
// server is capped (metricsMaxConnections).
func serveHTTP(mgr manager.Manager, name, addr string, h http.Handler, shutdownTimeout time.Duration, log logr.Logger) error {
	if addr == "" || addr == "0" {
		return nil
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("%s server: listen on %s: %w", name, addr, err)
	}
	srv := webhook.NewHTTPServer(h, log.WithValues("server", name))
	if name == probeServer {
		srv.SetKeepAlivesEnabled(false)
	} else {
		lis = connlimit.Listener(lis, metricsMaxConnections)
	}
	if err := mgr.Add(&manager.Server{Name: name, Server: srv, Listener: lis, ShutdownTimeout: &shutdownTimeout}); err != nil {
		_ = lis.Close()
		return fmt.Errorf("add %s server: %w", name, err)
	}
	return nil
}
