//go:build dev

// `meshguard dev` runs a local control plane (test/cluster: envtest's
// kube-apiserver and etcd) with meshguard wired into it. It links the test
// harness, so it is built only with -tags dev (`make run` builds
// bin/meshguard-dev); the product binary has no dev command and no test code.

package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/meshguard/meshguard/certs"
	"github.com/meshguard/meshguard/test/cluster"
	"github.com/meshguard/meshguard/webhook"
)

// devCommands adds `dev` to the root command in a -tags dev build.
func devCommands() []*cobra.Command { return []*cobra.Command{newDevCmd()} }

func newDevCmd() *cobra.Command {
	o := &serveOptions{}
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
			// As serve and authz serve: a second signal exits at once.
			ctx, stop := shutdownContext(cmd.Context(), 0, nil)
			defer stop()
			return runDev(ctx, cmd.OutOrStdout(), binDir, o, newLogger(o.logDev))
		},
	}
	o.addFlags(cmd.Flags())
	cmd.Flags().StringVar(&binDir, "k8s-bin", "", "directory with kube-apiserver and etcd (default: <repo>/bin/k8s)")
	// Local defaults: loopback only, self-contained certificates, no leader election.
	for name, value := range map[string]string{
		"webhook-host": "127.0.0.1", "webhook-port": "0", "metrics-addr": "127.0.0.1:8080",
		"health-addr": "127.0.0.1:8081", "authz-addr": "127.0.0.1:9000", "cert-mode": "files", "log-dev": "true",
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
	_ = cmd.Flags().MarkHidden("kubeconfig")
	return cmd
}

func runDev(ctx context.Context, out io.Writer, binDir string, o *serveOptions, log logr.Logger) error {
	dir, err := os.MkdirTemp("", "meshguard-dev-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

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

	ready := func(mgr manager.Manager, source certs.Source) {
		go func() {
			if err := installWebhooks(ctx, c.Client, devClientConfig(o, source.CABundle()), mgr); err != nil {
				log.Error(err, "install webhook configurations")
				return
			}
			printDevInstructions(out, c.Kubeconfig, kubectlDir(c.KubectlPath), o)
		}()
	}
	return runServe(ctx, c.Config, o, ready, log)
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

1. Label a namespace for injection:
  kubectl create namespace demo && kubectl label namespace demo %s

2. Create a pod and see its sidecar (istio-proxy) and init container (istio-init):
  kubectl run web -n demo --image=nginx --port=80
  kubectl get pod web -n demo -o jsonpath='{.spec.initContainers[*].name} {.spec.containers[*].name}{"\n"}'

3. Apply a bad VirtualService and see it rejected with the field path:
  printf 'apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: bad, namespace: demo%s}\nspec:\n  hosts: [web]\n  http:\n  - route:\n    - destination: {host: web}\n      weight: -5\n' | kubectl apply -f -

ext_authz gRPC: %s   metrics: http://%s/metrics   health: http://%s/readyz
`, kubeconfig, path, injectionLabel(o.certOpts.Revision), revisionLabels(o.certOpts.Revision), o.authzOpts.Addr, o.metricsAddr, o.healthAddr)
}
