//go:build dev

// `meshguard dev` runs a local control plane (test/cluster: envtest's
// kube-apiserver and etcd) with meshguard wired into it. It links the test
// harness, so it is built only with -tags dev (`make run` builds
// bin/meshguard-dev); the product binary has no dev command and no test code.

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/meshguard/meshguard/certs"
	"github.com/meshguard/meshguard/test/cluster"
	"github.com/meshguard/meshguard/webhook"
)

// devCommands adds `dev` to the root command in a -tags dev build.
func devCommands() []*cobra.Command { return []*cobra.Command{newDevCmd()} }

func newDevCmd() *cobra.Command { return newDevCmdFor(&serveOptions{}) }

// newDevCmdFor is newDevCmd parsing into o, with dev's defaults in it.
func newDevCmdFor(o *serveOptions) *cobra.Command {
	var binDir string
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run a local control plane with meshguard's webhooks and ext_authz wired up",
		Long: `Dev starts a real kube-apiserver and etcd (built by "make k8s-bin"), installs
Istio's and cert-manager's CRDs and meshguard's webhook configurations (pointing
at https://127.0.0.1 with a CA made for this run), then serves everything in
this process. It prints a kubeconfig and commands to try. Ctrl-C stops it all
and removes what it created.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkDevFlags(cmd.Flags(), o); err != nil {
				return err
			}
			// serve's checks; --webhook-port 0 (the default here) is a free
			// port runDev picks.
			checked := *o
			if checked.webhookPort == 0 {
				checked.webhookPort = 1
			}
			if err := checked.check(); err != nil {
				return err
			}
			if err := tuneGC(); err != nil {
				return exitError{2, err.Error()}
			}
			if err := authzFromMeshConfig(cmd.Flags(), o.injection.MeshConfigPath, &o.authzOpts); err != nil {
				return err
			}
			// The control plane's data, its admin kubeconfig and dev's CA
			// key live here; removed however dev ends.
			dir, err := os.MkdirTemp("", "meshguard-dev-")
			if err != nil {
				return fmt.Errorf("create dev directory: %w", err)
			}
			defer os.RemoveAll(dir)
			// As serve and authz serve, a second signal exits at once; dev
			// also stops on SIGHUP (its terminal closed). envtest runs
			// kube-apiserver and etcd in process groups of their own, which
			// no terminal signal reaches: the exit kills them and removes
			// dir first, which deferred calls would not.
			ctx, stop := shutdownSignals{extra: []os.Signal{syscall.SIGHUP}, beforeExit: func() {
				abandonDev(cmd.ErrOrStderr(), dir)
			}}.context(cmd.Context())
			defer stop()
			return runDev(ctx, cmd.OutOrStdout(), binDir, dir, o, newLogger(o.logDev))
		},
	}
	o.addFlags(cmd.Flags())
	cmd.Flags().StringVar(&binDir, "k8s-bin", "", "directory with kube-apiserver and etcd (default: <repo>/bin/k8s)")
	// Local defaults: loopback only, self-contained certificates, no leader election.
	for name, value := range map[string]string{
		"webhook-host": "127.0.0.1", "webhook-port": "0", "metrics-addr": "127.0.0.1:8080",
		"health-addr": "127.0.0.1:8081", "authz-addr": "127.0.0.1:9000", "cert-mode": "files", "log-dev": "true",
		"cert-ca-duration": devCertLifetime.String(), "cert-duration": devCertLifetime.String(),
	} {
		f := cmd.Flags().Lookup(name)
		if f == nil {
			panic("dev: no flag " + name)
		}
		f.DefValue = value
		_ = f.Value.Set(value)
		// The default serve's help describes is not dev's: pflag prints
		// dev's own ("(default "files")") after the usage.
		if i := strings.Index(f.Usage, " (default: "); i >= 0 {
			f.Usage = f.Usage[:i]
		}
	}
	// Files mode, dev's only one, honours both; the session ends with them.
	cmd.Flags().Lookup("cert-ca-duration").Usage = "lifetime of dev's CA; dev stops when it or --cert-duration ends (files mode does not renew)"
	_ = cmd.Flags().MarkHidden("kubeconfig")
	return cmd
}

// devCertLifetime is the default lifetime of dev's CA and serving
// certificate: a dev session is throwaway, and so is a CA whose key sits in a
// temporary directory. Files mode does not renew while running, so the
// session ends when they expire (devSessionEnd).
const devCertLifetime = 24 * time.Hour

// errDevCertExpired ends a dev session whose certificates expire.
var errDevCertExpired = errors.New("dev's CA and serving certificate expire now (--cert-ca-duration, --cert-duration; 24h by default): start meshguard dev again")

// devSessionEnd is when the serving certificate a dev session generates
// after start stops being valid: it lives --cert-duration, cut to the CA's
// --cert-ca-duration (pki.NewLeaf), in whole seconds (X.509 times), and files
// mode does not renew it.
func devSessionEnd(start time.Time, o *serveOptions) time.Time {
	return start.Add(min(o.certOpts.CADuration, o.certOpts.LeafDuration)).Truncate(time.Second)
}

func runDev(ctx context.Context, out io.Writer, binDir, dir string, o *serveOptions, log logr.Logger) error {
	log.Info("starting kube-apiserver and etcd")
	c, err := cluster.Launch(ctx, cluster.Options{BinDir: binDir, Dir: dir})
	if err != nil {
		return err
	}
	defer func() {
		if err := c.Stop(); err != nil {
			log.Error(err, "stop control plane")
		}
	}()

	if o.webhookPort == 0 {
		if o.webhookPort, err = freePort(o.webhookHost); err != nil {
			return err
		}
	}
	o.certOpts.Dir = filepath.Join(dir, "certs")
	o.certOpts.Hosts = append(o.certOpts.Hosts, o.webhookHost, "localhost")

	ctx, cancel := context.WithDeadlineCause(ctx, devSessionEnd(time.Now(), o), errDevCertExpired)
	defer cancel()
	ready := devStarted(ctx, c.Client, out, c.Kubeconfig, kubectlDir(c.KubectlPath), o, log)
	if err := runServe(ctx, c.Config, o, ready, log); err != nil {
		return err
	}
	if errors.Is(context.Cause(ctx), errDevCertExpired) {
		return errDevCertExpired
	}
	return nil
}

// devStarted is runServe's started callback in dev: once the webhook server
// answers, it installs the webhook configurations pointing at it, then prints
// the instructions. Only what runs: configurations for webhooks nobody
// serves (--webhooks=false; failurePolicy Fail) would refuse every write
// they select, and asking the manager for its webhook server would start one
// with no handlers.
func devStarted(ctx context.Context, cl client.Client, out io.Writer, kubeconfig, kubectlDir string, o *serveOptions, log logr.Logger) func(manager.Manager, certs.Source) {
	return func(mgr manager.Manager, source certs.Source) {
		go func() {
			if o.webhooks {
				if err := installWebhooks(ctx, cl, devClientConfig(o, source.CABundle()), mgr); err != nil {
					log.Error(err, "install webhook configurations")
					return
				}
			}
			printDevInstructions(out, kubeconfig, kubectlDir, o)
		}()
	}
}

// abandonDev is dev's stop on a second signal, just before os.Exit: no
// graceful stop, but no kube-apiserver, etcd or directory left behind.
func abandonDev(stderr io.Writer, dir string) {
	if _, err := cluster.KillProcesses(dir); err != nil {
		fmt.Fprintf(stderr, "meshguard dev: %v\n", err)
	}
	if err := os.RemoveAll(dir); err != nil {
		fmt.Fprintf(stderr, "meshguard dev: remove %s: %v\n", dir, err)
	}
}

// checkDevFlags refuses, naming the flag, what dev cannot honour: an
// address off loopback (dev's ext_authz is plaintext and its API server an
// admin playground: nothing of it is for the network), a --cert-dir (dev's
// certificates live in its temporary directory), and a --cert-mode other
// than files (self and cert-manager need meshguard's namespace, and
// cert-manager its controller, which dev's control plane has neither of).
func checkDevFlags(fs *pflag.FlagSet, o *serveOptions) error {
	if fs.Changed("cert-dir") {
		return fmt.Errorf("--cert-dir %q: dev keeps its CA and serving certificate in its own temporary directory, removed when it stops; serve --cert-mode=files takes a directory", o.certOpts.Dir)
	}
	if o.certOpts.Mode != certs.ModeFiles {
		return fmt.Errorf("--cert-mode %q: dev serves its own local CA's certificate (files); self and cert-manager need meshguard's namespace and cert-manager, which dev's control plane does not have", o.certOpts.Mode)
	}
	if !isLoopbackHost(o.webhookHost) {
		return fmt.Errorf("--webhook-host %q: dev listens on loopback only (127.0.0.1, ::1 or localhost)", o.webhookHost)
	}
	addrs := []struct {
		flag, addr string
		on         bool
	}{
		{"--authz-addr", o.authzOpts.Addr, o.authz},
		{"--authz-http-addr", o.authzOpts.HTTPAddr, o.authz && o.authzOpts.HTTPAddr != ""},
		// "0" turns it off; "" is serve's :8080 (all interfaces).
		{"--metrics-addr", o.metricsAddr, o.metricsAddr != "0"},
		// "" and "0" turn it off (serveHTTP).
		{"--health-addr", o.healthAddr, o.healthAddr != "" && o.healthAddr != "0"},
	}
	for _, a := range addrs {
		if !a.on {
			continue
		}
		if a.addr == "" {
			return fmt.Errorf("%s \"\": all interfaces; dev listens on loopback only (127.0.0.1, [::1] or localhost)", a.flag)
		}
		host, _, err := net.SplitHostPort(a.addr)
		if err != nil {
			return fmt.Errorf("%s %q: %w", a.flag, a.addr, err)
		}
		if !isLoopbackHost(host) {
			return fmt.Errorf("%s %q: dev listens on loopback only (127.0.0.1, [::1] or localhost)", a.flag, a.addr)
		}
	}
	return nil
}

// isLoopbackHost: localhost or a loopback IP; "" is every interface.
func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// devClientConfig points the configurations `dev` creates at this process. They
// carry --revision like the ones the chart installs for `serve`: their names are
// the ones the certificate code patches and their selectors the revision's.
func devClientConfig(o *serveOptions, caBundle []byte) webhook.ClientConfig {
	return webhook.ClientConfig{
		BaseURL:        "https://" + net.JoinHostPort(o.webhookHost, strconv.Itoa(o.webhookPort)),
		CABundle:       caBundle,
		OwnNamespace:   o.namespace,
		Revision:       o.certOpts.Revision,
		TimeoutSeconds: 10,
	}
}

// installWebhooks waits until the webhook server answers, then creates the
// mutating and validating configurations that point the API server at it.
func installWebhooks(ctx context.Context, cl client.Client, cc webhook.ClientConfig, mgr manager.Manager) error {
	if err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
		return mgr.GetWebhookServer().StartedChecker()(nil) == nil, nil
	}); err != nil {
		return fmt.Errorf("webhook server did not start: %w", err)
	}
	for _, obj := range []client.Object{webhook.MutatingWebhookConfiguration(cc), webhook.ValidatingWebhookConfiguration(cc)} {
		if err := cl.Create(ctx, obj); err != nil {
			return fmt.Errorf("create %s: %w", obj.GetName(), err)
		}
	}
	return nil
}

func freePort(host string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// injectionLabel is the namespace label that turns injection on for rev.
func injectionLabel(rev string) string {
	if webhook.IsDefaultRevision(rev) {
		return "istio-injection=enabled"
	}
	return "istio.io/rev=" + rev
}

// revisionLabels is what a config object needs in its metadata to be validated
// by rev's validating webhook (objectSelector istio.io/rev) in printed YAML.
func revisionLabels(rev string) string {
	if webhook.IsDefaultRevision(rev) {
		return ""
	}
	return ", labels: {istio.io/rev: " + rev + "}"
}

// kubectlDir is the directory of the kubectl the control plane runs (built
// by make k8s-bin, the server's version), "" when it is PATH's own: `make run`
// from a fresh clone has no kubectl on PATH, so the printed commands need it.
func kubectlDir(kubectlPath string) string {
	if filepath.Base(kubectlPath) == kubectlPath {
		return ""
	}
	if dir, err := filepath.Abs(filepath.Dir(kubectlPath)); err == nil {
		return dir
	}
	return filepath.Dir(kubectlPath)
}

func printDevInstructions(out io.Writer, kubeconfig, kubectlDir string, o *serveOptions) {
	path := ""
	if kubectlDir != "" {
		path = "\n  export PATH=" + kubectlDir + ":$PATH"
	}
	fmt.Fprintf(out, `
meshguard dev is running (Ctrl-C stops everything).

  export KUBECONFIG=%s%s
`, kubeconfig, path)
	if o.webhooks {
		fmt.Fprintf(out, `
1. Label a namespace for injection:
  kubectl create namespace demo && kubectl label namespace demo %s

2. Create a pod and see its sidecar (istio-proxy) and init container (istio-init):
  kubectl run web -n demo --image=nginx --port=80
  kubectl get pod web -n demo -o jsonpath='{.spec.initContainers[*].name} {.spec.containers[*].name}{"\n"}'

3. Apply a bad VirtualService and see it rejected with the field path:
  printf 'apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: bad, namespace: demo%s}\nspec:\n  hosts: [web]\n  http:\n  - route:\n    - destination: {host: web}\n      weight: -5\n' | kubectl apply -f -
`, injectionLabel(o.certOpts.Revision), revisionLabels(o.certOpts.Revision))
	} else {
		fmt.Fprintln(out, "\nNo webhooks (--webhooks=false): nothing is injected or validated.")
	}
	// Only the endpoints that listen.
	var endpoints []string
	if o.authz {
		endpoints = append(endpoints, "ext_authz gRPC: "+o.authzOpts.Addr)
		if o.authzOpts.HTTPAddr != "" {
			endpoints = append(endpoints, "ext_authz HTTP: http://"+o.authzOpts.HTTPAddr)
		}
	}
	if o.metricsAddr != "0" && o.metricsAddr != "" {
		endpoints = append(endpoints, "metrics: http://"+o.metricsAddr+"/metrics")
	}
	if o.healthAddr != "" && o.healthAddr != "0" {
		endpoints = append(endpoints, "health: http://"+o.healthAddr+"/readyz")
	}
	fmt.Fprintf(out, "\n%s\n", strings.Join(endpoints, "   "))
}
