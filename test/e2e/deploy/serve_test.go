package deploy

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshguard/meshguard/certs"
	"github.com/meshguard/meshguard/certs/pki"
	"github.com/meshguard/meshguard/test/binary"
	"github.com/meshguard/meshguard/test/cluster"
)

func TestMain(m *testing.M) {
	code := m.Run()
	binary.Cleanup()
	os.Exit(code)
}

// serveUnderRBAC runs `meshguard serve` with a rendering's own command line as
// its ServiceAccount (impersonated, so every call goes through the rendered
// RBAC) next to its webhook configurations: the grants must be enough for the
// binary to become ready (self mode: write caBundle, then issue the leaf;
// cert-manager mode: create the chain objects, read the Secrets cert-manager
// writes, which the test writes in its place), and nothing it does may be
// forbidden. The table of wantGrants checks that the manifests grant no more;
// only running the code shows they grant enough.
func serveUnderRBAC(t *testing.T, c *cluster.Cluster, p packaging) {
	t.Helper()
	rendered := p.render(t)
	m := parse(t, rendered)
	applyRBAC(t, c, rendered)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// The configurations meshguard reads and, in self mode, updates. The API
	// server cannot reach the Service here: they go with the test, as they
	// would fail every admission they match.
	for _, obj := range []client.Object{m.mutating(t), m.validating(t)} {
		if err := c.Client.Create(ctx, obj); err != nil {
			t.Fatalf("create %s: %v", obj.GetName(), err)
		}
		t.Cleanup(func() { _ = c.Client.Delete(context.Background(), obj) })
	}
	if p.certMode == "cert-manager" {
		writeCertManagerSecrets(t, c)
	}
	args := m.deployment(t).Spec.Template.Spec.Containers[0].Args
	if slices.Contains(args, "--istio-config-namespace=istio-system") {
		writeIstioInjectorConfigMap(t, c)
	}

	dir := t.TempDir()
	kubeconfig := impersonatingKubeconfig(t, c, dir, "system:serviceaccount:"+namespace+":"+serviceName)
	cm := m.configMap(t)
	healthAddr, metricsAddr := cluster.FreeAddr(t), cluster.FreeAddr(t)
	// The rendered arguments with what the Pod provides replaced: the
	// namespace (downward API), loopback ports and the mounted ConfigMap's
	// files (when the injector reads them, not Istio's ConfigMaps).
	replace := map[string]string{
		"--namespace":       namespace,
		"--webhook-port":    fmt.Sprint(cluster.FreePort(t)),
		"--authz-addr":      cluster.FreeAddr(t),
		"--authz-http-addr": cluster.FreeAddr(t), // when a packaging enables it
		"--metrics-addr":    metricsAddr,
		"--health-addr":     healthAddr,
		"--mesh-config":     writeFile(t, dir, "mesh.yaml", cm.Data["mesh.yaml"]),
		"--injector-values": writeFile(t, dir, "values.yaml", cm.Data["values.yaml"]),
	}
	rendArgs := args
	args = nil
	for _, a := range rendArgs {
		k, _, _ := strings.Cut(a, "=")
		if v, ok := replace[k]; ok {
			a = k + "=" + v
			delete(replace, k)
		}
		args = append(args, a)
	}
	delete(replace, "--mesh-config")
	delete(replace, "--injector-values")
	delete(replace, "--authz-http-addr")
	if len(replace) > 0 {
		t.Fatalf("rendered args %v lack %v", rendArgs, replace)
	}
	args = append(args, "--kubeconfig="+kubeconfig, "--webhook-host=127.0.0.1", "--shutdown-delay=0s")

	bin, err := binary.Path()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "POD_NAME=meshguard-rbac-test", "POD_UID=")
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	// A graceful stop gives the leader Lease up for the next run.
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}()

	if err := cluster.Eventually(90*time.Second, cluster.ProcessReady(exited, "http://"+healthAddr+"/readyz")); err != nil {
		t.Fatalf("meshguard %v did not become ready under the rendered RBAC: %v\n%s", args, err, out.report())
	}
	// The leader audits at once (readiness does not wait for it): its first
	// run lists every mesh kind and the PolicyReports.
	if slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, "--audit-interval=") }) {
		var errs float64
		err := cluster.Eventually(60*time.Second, func() error {
			m := scrape(t, "http://"+metricsAddr+"/metrics")
			errs = m["meshguard_audit_errors_total"]
			if m["meshguard_audit_last_run_timestamp_seconds"] == 0 && errs == 0 {
				return fmt.Errorf("no audit run finished yet")
			}
			return nil
		})
		if err != nil || errs != 0 {
			t.Errorf("audit under the rendered RBAC: %v, %v failed runs\n%s", err, errs, out.report())
		}
	}
	// The leader applies the cert-manager chain (readiness does not wait
	// for it): under create and patch of the rendered RBAC.
	if p.certMode == "cert-manager" {
		err := cluster.Eventually(60*time.Second, func() error {
			for _, kind := range []string{"Issuer", "Certificate"} {
				for _, name := range []string{caCertName, servingCertName} {
					if kind == "Issuer" && name == servingCertName {
						continue
					}
					u := &unstructured.Unstructured{}
					u.SetAPIVersion("cert-manager.io/v1")
					u.SetKind(kind)
					if err := c.Client.Get(context.Background(), client.ObjectKey{Namespace: namespace, Name: name}, u); err != nil {
						return err
					}
					if !slices.ContainsFunc(u.GetManagedFields(), func(mf metav1.ManagedFieldsEntry) bool {
						return mf.Manager == certs.FieldManager && mf.Operation == metav1.ManagedFieldsOperationApply
					}) {
						return fmt.Errorf("%s %s not applied by %s yet", kind, name, certs.FieldManager)
					}
				}
			}
			return nil
		})
		if err != nil {
			t.Errorf("cert-manager chain under the rendered RBAC: %v\n%s", err, out.report())
		}
	}
	if denied := out.forbidden(); len(denied) > 0 {
		t.Errorf("calls forbidden by the rendered RBAC:\n%s", strings.Join(denied, "\n"))
	}
	// The probes the kubelet would send, to the port that serves them: the
	// rendered "health" port is --health-addr's.
	ctr := m.deployment(t).Spec.Template.Spec.Containers[0]
	for _, probe := range []*corev1.Probe{ctr.ReadinessProbe, ctr.LivenessProbe} {
		if probe == nil || probe.HTTPGet == nil || probe.HTTPGet.Port.StrVal != "health" {
			t.Errorf("probe %+v is not an HTTP GET of the health port", probe)
			continue
		}
		resp, err := http.Get("http://" + healthAddr + probe.HTTPGet.Path)
		if err != nil {
			t.Errorf("probe GET %s: %v", probe.HTTPGet.Path, err)
			continue
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("probe GET %s: %s", probe.HTTPGet.Path, resp.Status)
		}
	}
	if p.certMode != "self" {
		return // cert-manager's cainjector writes caBundle
	}
	ctx, cancel = context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	mwc, vwc := &admissionregistrationv1.MutatingWebhookConfiguration{}, &admissionregistrationv1.ValidatingWebhookConfiguration{}
	if err := c.Client.Get(ctx, client.ObjectKey{Name: m.mutating(t).Name}, mwc); err != nil {
		t.Fatal(err)
	}
	if err := c.Client.Get(ctx, client.ObjectKey{Name: m.validating(t).Name}, vwc); err != nil {
		t.Fatal(err)
	}
	bundles := map[string][]byte{}
	for _, w := range mwc.Webhooks {
		bundles[mwc.Name+" webhook "+w.Name] = w.ClientConfig.CABundle
	}
	for _, w := range vwc.Webhooks {
		bundles[vwc.Name+" webhook "+w.Name] = w.ClientConfig.CABundle
	}
	for where, b := range bundles {
		if len(b) == 0 {
			t.Errorf("%s: caBundle not written", where)
		}
	}
}

// scrape reads the unlabelled samples of a Prometheus text exposition.
func scrape(t *testing.T, url string) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	resp, err := http.Get(url)
	if err != nil {
		return out
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return out
	}
	for _, line := range strings.Split(string(body), "\n") {
		name, value, ok := strings.Cut(line, " ")
		if !ok || strings.HasPrefix(line, "#") || strings.Contains(name, "{") {
			continue
		}
		if v, err := strconv.ParseFloat(strings.TrimSpace(value), 64); err == nil {
			out[name] = v
		}
	}
	return out
}

// writeIstioInjectorConfigMap writes Istio's injector ConfigMap (the stock
// config and values meshguard embeds) into istio-system; ConfigMap istio is
// left out (Istio's default mesh config).
func writeIstioInjectorConfigMap(t *testing.T, c *cluster.Cluster) {
	t.Helper()
	data := map[string]string{}
	for key, file := range map[string]string{"config": "injector-config-86c9f01.yaml", "values": "values-86c9f01.json"} {
		b, err := os.ReadFile(repoPath(t, "injector", "config", "istio", file))
		if err != nil {
			t.Fatal(err)
		}
		data[key] = string(b)
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "istio-sidecar-injector", Namespace: "istio-system"}, Data: data}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := c.Client.Create(ctx, cm); err != nil {
		t.Fatalf("create ConfigMap istio-system/istio-sidecar-injector: %v", err)
	}
	t.Cleanup(func() { _ = c.Client.Delete(context.Background(), cm) })
}

// writeCertManagerSecrets writes the CA and serving Secrets as cert-manager
// would from the chain the manifests install.
func writeCertManagerSecrets(t *testing.T, c *cluster.Cluster) {
	t.Helper()
	now := time.Now()
	ca, err := pki.NewCA(caCertName, now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := pki.NewLeaf(ca, pki.LeafSpec{DNSNames: []string{serviceName + "." + namespace + ".svc",
		serviceName + "." + namespace + ".svc.cluster.local"}, Lifetime: time.Hour}, now)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for name, kp := range map[string]pki.KeyPair{caCertName: ca, "meshguard-serving-tls": leaf} {
		sec := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
			Type:       corev1.SecretTypeTLS,
			Data:       map[string][]byte{corev1.TLSCertKey: kp.CertPEM, corev1.TLSPrivateKeyKey: kp.KeyPEM, "ca.crt": ca.CertPEM},
		}
		if err := c.Client.Create(ctx, sec); err != nil {
			t.Fatalf("create Secret %s: %v", name, err)
		}
		t.Cleanup(func() { _ = c.Client.Delete(context.Background(), sec) })
	}
}

// impersonatingKubeconfig writes a copy of the cluster's admin kubeconfig
// that acts as user.
func impersonatingKubeconfig(t *testing.T, c *cluster.Cluster, dir, user string) string {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(c.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	for _, ai := range cfg.AuthInfos {
		ai.Impersonate = user
	}
	path := filepath.Join(dir, "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

func writeFile(t *testing.T, dir, name, data string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// syncBuffer collects a process's output.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// forbidden lists the output lines that report an API call the authorizer denied.
func (b *syncBuffer) forbidden() []string {
	var out []string
	for _, line := range strings.Split(b.String(), "\n") {
		if strings.Contains(line, "is forbidden: ") {
			out = append(out, line)
		}
	}
	return out
}

// report says why a process failed: the denied calls, else the end of its output.
func (b *syncBuffer) report() string {
	if denied := b.forbidden(); len(denied) > 0 {
		return strings.Join(denied[:min(len(denied), 5)], "\n")
	}
	s := b.String()
	return s[max(0, len(s)-8<<10):]
}
