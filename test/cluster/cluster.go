// Package cluster runs a real Kubernetes control plane (kube-apiserver and
// etcd through controller-runtime's envtest, plus kube-controller-manager's
// serviceaccount and namespace controllers; all built by `make k8s-bin` into
// bin/k8s), with Istio's and cert-manager's CRDs installed. The tests and
// `meshguard dev` use it; real kubectl talks to it through a kubeconfig file.
package cluster

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/meshguard/meshguard/scheme"
	"github.com/meshguard/meshguard/validation"
)

//go:embed crds
var crdFiles embed.FS

// Scheme is meshguard's production scheme (package scheme): the clients of
// the tests and of meshguard itself know the same types.
var Scheme = scheme.Scheme

// Options configure Launch.
type Options struct {
	// BinDir holds kube-apiserver and etcd. Default: <repo>/bin/k8s, or
	// $KUBEBUILDER_ASSETS when set.
	BinDir string
	// Dir receives the kubeconfig. Default: a new temporary directory, removed by Stop.
	Dir string
	// Output receives the control plane's logs when set.
	Output io.Writer
	// APIServerFlags are set on kube-apiserver's command line (name without "--").
	APIServerFlags map[string]string
}

// Cluster is a running control plane.
type Cluster struct {
	Config     *rest.Config
	Client     client.Client
	Kubeconfig string
	// KubectlPath is the kubectl Kubectl runs: the one built into the
	// control plane's bin directory (same version as the server), else PATH's.
	KubectlPath string

	env     *envtest.Environment
	kcm     *exec.Cmd
	kcmDone chan error
	dir     string
	ownsDir bool
}

// Launch starts the control plane, installs the CRDs and writes a kubeconfig.
// The caller must call Stop.
func Launch(ctx context.Context, o Options) (*Cluster, error) {
	binDir, err := resolveBinDir(o.BinDir)
	if err != nil {
		return nil, err
	}
	crds, err := CRDs()
	if err != nil {
		return nil, err
	}
	c := &Cluster{dir: o.Dir, KubectlPath: "kubectl"}
	if _, err := os.Stat(filepath.Join(binDir, "kubectl")); err == nil {
		c.KubectlPath = filepath.Join(binDir, "kubectl")
	}
	if c.dir == "" {
		if c.dir, err = os.MkdirTemp("", "meshguard-cluster-"); err != nil {
			return nil, fmt.Errorf("create cluster dir: %w", err)
		}
		c.ownsDir = true
	}
	// envtest starts kube-apiserver and etcd through links in Dir:
	// KillProcesses removes them first, so envtest's retries cannot start
	// new ones while it kills.
	links, err := linkControlPlane(binDir, c.dir)
	if err != nil {
		if c.ownsDir {
			_ = os.RemoveAll(c.dir)
		}
		return nil, err
	}
	if c.env, err = newEnvironment(links, c.dir, crds, o); err != nil {
		_ = c.Stop()
		return nil, err
	}
	if c.Config, err = c.startControlPlane(ctx); err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("start control plane: %w", err)
		}
		return nil, fmt.Errorf("start control plane from %s (run `make k8s-bin` first): %w", binDir, err)
	}
	cfg := c.Config
	if c.Client, err = client.New(cfg, client.Options{Scheme: Scheme}); err != nil {
		_ = c.Stop()
		return nil, fmt.Errorf("create client: %w", err)
	}
	if err := c.writeKubeconfig(); err != nil {
		_ = c.Stop()
		return nil, err
	}
	if err := c.startControllerManager(ctx, binDir, o.Output); err != nil {
		_ = c.Stop()
		return nil, err
	}
	return c, nil
}

// newEnvironment configures envtest to run kube-apiserver and etcd from the
// links in links (linkControlPlane), with the cluster's data under dir.
func newEnvironment(links, dir string, crds []*apiextensionsv1.CustomResourceDefinition, o Options) (*envtest.Environment, error) {
	env := &envtest.Environment{
		BinaryAssetsDirectory:    links,
		CRDInstallOptions:        envtest.CRDInstallOptions{CRDs: crds, Scheme: Scheme},
		Scheme:                   Scheme,
		ControlPlaneStartTimeout: 90 * time.Second,
		ControlPlaneStopTimeout:  30 * time.Second,
		ErrorIfCRDPathMissing:    true,
	}
	apiServer := env.ControlPlane.GetAPIServer()
	// Explicit paths: envtest looks for binaries in TEST_ASSET_* and
	// KUBEBUILDER_ASSETS before BinaryAssetsDirectory (process.BinPathFinder)
	// and keeps only a Path already set. Through the links, KillProcesses
	// knows the processes (argv0) and stops envtest's retries (by removing them).
	apiServer.Path = filepath.Join(links, "kube-apiserver")
	if o.Output != nil {
		apiServer.Out, apiServer.Err = o.Output, o.Output
	}
	// Loopback only: the API server, and the etcd behind it, listen on 127.0.0.1.
	apiServer.SecureServing.Address = "127.0.0.1"
	// A certificate directory of our own survives RestartAPIServer, so clients
	// keep trusting the restarted server.
	apiServer.CertDir = filepath.Join(dir, "apiserver")
	if err := os.MkdirAll(apiServer.CertDir, 0o700); err != nil {
		return nil, fmt.Errorf("create API server cert dir: %w", err)
	}
	// envtest turns the ServiceAccount admission plugin off because it runs no
	// controller-manager; we run one, so pods get serviceAccountName (and the
	// injected istio-token projection is valid) as in a real cluster.
	apiServer.Configure().Disable("disable-admission-plugins")
	for name, value := range o.APIServerFlags {
		apiServer.Configure().Set(name, value)
	}
	// etcd's data under dir too, so that removing dir removes everything
	// (envtest would make a directory of its own).
	env.ControlPlane.Etcd = &envtest.Etcd{
		Path:    filepath.Join(links, "etcd"),
		DataDir: filepath.Join(dir, "etcd"),
	}
	return env, nil
}

// abortGrace bounds how long an aborted Launch waits for envtest to notice
// that its processes were killed.
const abortGrace = 10 * time.Second

// startControlPlane is envtest's Start, which takes no context, bounded by
// ctx: when ctx ends first, the processes it started are killed (so that it
// returns at once instead of waiting out ControlPlaneStartTimeout for each)
// and Launch returns ctx's error. On error the cluster is stopped.
func (c *Cluster) startControlPlane(ctx context.Context) (*rest.Config, error) {
	type result struct {
		cfg *rest.Config
		err error
	}
	done := make(chan result, 1)
	go func() {
		var r result
		r.cfg, r.err = c.env.Start()
		done <- r
	}()
	select {
	case r := <-done:
		if r.err != nil {
			_ = c.Stop()
		}
		return r.cfg, r.err
	case <-ctx.Done():
	}
	// Kill until envtest returns: it may start kube-apiserver after etcd died.
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	grace := time.After(abortGrace)
	for {
		_, _ = KillProcesses(c.dir)
		select {
		case <-done:
			_ = c.Stop()
			return nil, fmt.Errorf("stopped during start-up: %w", context.Cause(ctx))
		case <-grace:
			// envtest is stuck: leave it, but not its processes or files.
			_, _ = KillProcesses(c.dir)
			if c.ownsDir {
				_ = os.RemoveAll(c.dir)
			}
			return nil, fmt.Errorf("stopped during start-up (envtest did not return within %s): %w", abortGrace, context.Cause(ctx))
		case <-tick.C:
		}
	}
}

// Start launches a cluster for a test and stops it when the test ends,
// whether it passed or failed.
func Start(t testing.TB) *Cluster {
	t.Helper()
	return StartWith(t, Options{})
}

// StartWith is Start with options.
func StartWith(t testing.TB, o Options) *Cluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c, err := Launch(ctx, o)
	if err != nil {
		t.Fatalf("launch cluster: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Errorf("stop cluster: %v", err)
		}
	})
	return c
}

// Stop stops the control plane and removes what Launch created.
func (c *Cluster) Stop() error {
	var errs []error
	if c.kcm != nil {
		_ = c.kcm.Process.Signal(syscall.SIGTERM)
		select {
		case <-c.kcmDone:
		case <-time.After(10 * time.Second):
			_ = c.kcm.Process.Kill()
			<-c.kcmDone
		}
	}
	if c.env != nil {
		if err := c.env.Stop(); err != nil {
			errs = append(errs, fmt.Errorf("stop control plane: %w", err))
		}
	}
	if c.ownsDir && c.dir != "" {
		if err := os.RemoveAll(c.dir); err != nil {
			errs = append(errs, fmt.Errorf("remove cluster dir: %w", err))
		}
	}
	return errors.Join(errs...)
}

// startControllerManager runs kube-controller-manager with the controllers
// whose absence a test would notice: serviceaccount (the "default"
// ServiceAccount of every namespace) and namespace (deletion finishes).
func (c *Cluster) startControllerManager(ctx context.Context, binDir string, output io.Writer) error {
	path := filepath.Join(binDir, "kube-controller-manager")
	c.kcm = exec.Command(path,
		"--kubeconfig="+c.Kubeconfig,
		"--controllers=serviceaccount,namespace",
		"--leader-elect=false",
		"--secure-port=0",
		"--use-service-account-credentials=false",
	)
	if output != nil {
		c.kcm.Stdout, c.kcm.Stderr = output, output
	}
	c.kcm.Env = append(os.Environ(), markerEnv+"="+c.dir) // KillProcesses finds it
	if err := c.kcm.Start(); err != nil {
		c.kcm = nil
		return fmt.Errorf("start %s: %w", path, err)
	}
	c.kcmDone = make(chan error, 1)
	go func() { c.kcmDone <- c.kcm.Wait() }()
	// Ready once the serviceaccount controller has populated "default".
	err := waitFor(ctx, time.Minute, func() error {
		select {
		case err := <-c.kcmDone:
			c.kcmDone <- err
			return fmt.Errorf("kube-controller-manager exited: %v", err)
		default:
		}
		return c.Client.Get(ctx, client.ObjectKey{Namespace: "default", Name: "default"}, &corev1.ServiceAccount{})
	})
	if err != nil {
		return fmt.Errorf("kube-controller-manager not ready: %w", err)
	}
	return nil
}

// KillAPIServer crashes kube-apiserver with SIGKILL (etcd keeps running), to
// test what happens to meshguard while the API server is away. A crash, not a
// graceful stop: a graceful one waits for clients' long-running requests.
func (c *Cluster) KillAPIServer() error {
	certDir := c.env.ControlPlane.GetAPIServer().CertDir
	procs, err := filepath.Glob("/proc/[0-9]*/cmdline")
	if err != nil {
		return err
	}
	killed := 0
	for _, p := range procs {
		cmdline, err := os.ReadFile(p)
		if err != nil || !bytes.Contains(cmdline, []byte("--cert-dir="+certDir+"\x00")) {
			continue
		}
		pid, err := strconv.Atoi(filepath.Base(filepath.Dir(p)))
		if err != nil {
			continue
		}
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			return fmt.Errorf("kill kube-apiserver %d: %w", pid, err)
		}
		killed++
	}
	if killed != 1 {
		return fmt.Errorf("found %d kube-apiserver processes with cert dir %s, want 1", killed, certDir)
	}
	// envtest notices the exit and forgets the process, so Start works again.
	return c.env.ControlPlane.GetAPIServer().Stop()
}

// StartAPIServer starts kube-apiserver again after KillAPIServer, on the same
// address with the same certificates and data.
func (c *Cluster) StartAPIServer(ctx context.Context) error {
	if err := c.env.ControlPlane.GetAPIServer().Start(); err != nil {
		return fmt.Errorf("restart kube-apiserver: %w", err)
	}
	return waitFor(ctx, time.Minute, func() error {
		return c.Client.Get(ctx, client.ObjectKey{Name: "default"}, &corev1.Namespace{})
	})
}

// WaitForDefaultServiceAccount waits until the serviceaccount controller has
// created namespace's "default" ServiceAccount, which pods need.
func (c *Cluster) WaitForDefaultServiceAccount(ctx context.Context, namespace string) error {
	return waitFor(ctx, 30*time.Second, func() error {
		return c.Client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: "default"}, &corev1.ServiceAccount{})
	})
}

func (c *Cluster) writeKubeconfig() error {
	user, err := c.env.AddUser(envtest.User{Name: "meshguard-admin", Groups: []string{"system:masters"}}, c.Config)
	if err != nil {
		return fmt.Errorf("add admin user: %w", err)
	}
	kc, err := user.KubeConfig()
	if err != nil {
		return fmt.Errorf("render kubeconfig: %w", err)
	}
	c.Kubeconfig = filepath.Join(c.dir, "kubeconfig")
	if err := os.WriteFile(c.Kubeconfig, kc, 0o600); err != nil {
		return fmt.Errorf("write kubeconfig: %w", err)
	}
	return nil
}

// Kubectl runs the real kubectl against the cluster with stdin (may be
// empty). It returns stdout; a non-zero exit returns an error carrying stderr.
func (c *Cluster) Kubectl(ctx context.Context, stdin string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, c.KubectlPath, append([]string{"--kubeconfig", c.Kubeconfig}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), &KubectlError{Args: args, Stderr: stderr.String(), Err: err}
	}
	if stderr.Len() > 0 {
		// Warnings (e.g. from admission webhooks) go to stderr on success.
		return stdout.String() + stderr.String(), nil
	}
	return stdout.String(), nil
}

// KubectlError is a failed kubectl run.
type KubectlError struct {
	Args   []string
	Stderr string
	Err    error
}

func (e *KubectlError) Error() string {
	return fmt.Sprintf("kubectl %s: %v: %s", strings.Join(e.Args, " "), e.Err, strings.TrimSpace(e.Stderr))
}

func (e *KubectlError) Unwrap() error { return e.Err }

// CRDs returns the Istio CRDs that package validation embeds and the
// cert-manager CRDs embedded here, both from the module versions go.mod pins
// (see hack/sync-crds.sh and `go generate ./validation`).
func CRDs() ([]*apiextensionsv1.CustomResourceDefinition, error) {
	out, err := decodeCRDs("istio (validation.IstioCRDs)", validation.IstioCRDs())
	if err != nil {
		return nil, err
	}
	err = fs.WalkDir(crdFiles, "crds", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := crdFiles.ReadFile(path)
		if err != nil {
			return err
		}
		crds, err := decodeCRDs(path, data)
		out = append(out, crds...)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func decodeCRDs(source string, data []byte) ([]*apiextensionsv1.CustomResourceDefinition, error) {
	var out []*apiextensionsv1.CustomResourceDefinition
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	for {
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := dec.Decode(crd); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, fmt.Errorf("decode CRD in %s: %w", source, err)
		}
		if crd.Name != "" {
			out = append(out, crd)
		}
	}
}

// RepoRoot finds meshguard's repository root by walking up from the working
// directory to the go.mod of module github.com/meshguard/meshguard.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.HasPrefix(data, []byte("module github.com/meshguard/meshguard\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("not inside the meshguard repository (no go.mod of github.com/meshguard/meshguard above the working directory)")
		}
		dir = parent
	}
}

func resolveBinDir(dir string) (string, error) {
	if dir == "" {
		dir = os.Getenv("KUBEBUILDER_ASSETS")
	}
	if dir == "" {
		root, err := RepoRoot()
		if err != nil {
			return "", fmt.Errorf("find bin/k8s: %w", err)
		}
		dir = filepath.Join(root, "bin", "k8s")
	}
	for _, name := range []string{"kube-apiserver", "kube-controller-manager", "etcd"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			return "", fmt.Errorf("%s missing in %s: run `make k8s-bin` to build the control plane", name, dir)
		}
	}
	return dir, nil
}
