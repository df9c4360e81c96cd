// Package governance tests organisation rules at admission and the audit of
// stored config end to end: a real `meshguard serve` process (the product
// binary) against a real kube-apiserver, objects applied with the real
// kubectl, and the same rules run by `meshguard validate --rego`.
package governance

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/meshguard/meshguard/test/binary"
	"github.com/meshguard/meshguard/test/cluster"
	"github.com/meshguard/meshguard/webhook"
)

func TestMain(m *testing.M) {
	code := m.Run()
	binary.Cleanup()
	os.Exit(code)
}

const ownNS = "meshguard-system"

// rulesLabel selects the ConfigMaps holding organisation rules in this test.
const rulesLabel = "meshguard.io/rules"

// meshguard is a running `meshguard serve` process.
type meshguard struct {
	exited               chan error
	metricsURL, readyzURL string
	webhookURL           string
	caPEM                []byte
}

func startMeshguard(t *testing.T, c *cluster.Cluster, extraArgs ...string) *meshguard {
	t.Helper()
	bin, err := binary.Path()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	webhookPort, metricsPort, healthPort := cluster.FreePort(t), cluster.FreePort(t), cluster.FreePort(t)
	m := &meshguard{
		exited:     make(chan error, 1),
		webhookURL: fmt.Sprintf("https://127.0.0.1:%d", webhookPort),
		metricsURL: fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort),
		readyzURL:  fmt.Sprintf("http://127.0.0.1:%d/readyz", healthPort),
	}
	cmd := exec.Command(bin, append([]string{"serve",
		"--kubeconfig", c.Kubeconfig,
		"--namespace", ownNS,
		"--authz=false",
		"--cert-mode", "files", "--cert-dir", filepath.Join(dir, "certs"), "--cert-extra-san", "127.0.0.1",
		"--webhook-host", "127.0.0.1", "--webhook-port", strconv.Itoa(webhookPort),
		"--metrics-addr", fmt.Sprintf("127.0.0.1:%d", metricsPort),
		"--health-addr", fmt.Sprintf("127.0.0.1:%d", healthPort),
		"--shutdown-delay", "0s",
		"--rego-configmap-selector", rulesLabel + "=true",
	}, extraArgs...)...)
	// As the downward API does in a cluster: Events about meshguard land on its Pod.
	cmd.Env = append(os.Environ(), "POD_NAME=meshguard-test", "POD_UID=")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { m.exited <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-m.exited })
	if err := cluster.Eventually(time.Minute, cluster.ProcessReady(m.exited, m.readyzURL)); err != nil {
		t.Fatal(err)
	}
	if m.caPEM, err = os.ReadFile(filepath.Join(dir, "certs", "ca.crt")); err != nil {
		t.Fatal(err)
	}
	return m
}

func kubectl(t *testing.T, c *cluster.Cluster, stdin string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return c.Kubectl(ctx, stdin, args...)
}

func stderrOf(err error) string {
	var ke *cluster.KubectlError
	if errors.As(err, &ke) {
		return ke.Stderr
	}
	if err != nil {
		return err.Error()
	}
	return ""
}

func repoPath(t *testing.T, elem ...string) string {
	t.Helper()
	root, err := cluster.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(append([]string{root}, elem...)...)
}

// rulesConfigMap holds the shipped example rules (deploy/examples/rego/rules.rego).
func rulesConfigMap(t *testing.T, source string) *corev1.ConfigMap {
	return &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "org-rules", Namespace: ownNS, Labels: map[string]string{rulesLabel: "true"}},
		Data:       map[string]string{"rules.rego": source},
	}
}

// wildcardVS claims every host outside istio-system: the example deny rule.
const wildcardVS = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: catch-all
  namespace: default
spec:
  hosts:
  - "*"
  gateways:
  - istio-system/ingress
  http:
  - route:
    - destination:
        host: example.com
`

// permissivePA is PERMISSIVE in a production namespace: the example warn rule.
const permissivePA = `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata:
  name: default
  namespace: shop
spec:
  mtls:
    mode: PERMISSIVE
`

const denyLine = `VirtualService default/catch-all: organisation rule: VirtualService default/catch-all: host "*" is only allowed in istio-system`
const warnLine = `PeerAuthentication shop/default: organisation rule: PeerAuthentication shop/default: PERMISSIVE mTLS in a production namespace`

// An organisation rule denies a kubectl apply, another warns (kubectl prints
// the warning) and the same rule fails `meshguard validate --rego` with the
// same line; the rules come from a ConfigMap and are hot-reloaded, a broken
// update keeps the last good rules.
func TestOrgRulesAtAdmission(t *testing.T) {
	c := cluster.Start(t)
	ctx := context.Background()
	cluster.CreateNamespace(t, c, ownNS, nil)
	cluster.CreateNamespace(t, c, "shop", map[string]string{"environment": "production"})
	src, err := os.ReadFile(repoPath(t, "deploy", "examples", "rego", "rules.rego"))
	if err != nil {
		t.Fatal(err)
	}
	cm := rulesConfigMap(t, string(src))
	if err := c.Client.Create(ctx, cm); err != nil {
		t.Fatal(err)
	}
	m := startMeshguard(t, c)
	cc := webhook.ClientConfig{BaseURL: m.webhookURL, CABundle: m.caPEM, TimeoutSeconds: 10}
	if err := c.Client.Create(ctx, webhook.ValidatingWebhookConfiguration(cc)); err != nil {
		t.Fatal(err)
	}
	// The API server calls the webhook once the configuration has propagated.
	if err := cluster.Eventually(30*time.Second, func() error {
		_, err := kubectl(t, c, wildcardVS, "apply", "--dry-run=server", "-f", "-")
		if !strings.Contains(stderrOf(err), "denied the request") {
			return fmt.Errorf("webhook not denying yet: %v", err)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	t.Run("deny rule rejects kubectl apply", func(t *testing.T) {
		out, err := kubectl(t, c, wildcardVS, "apply", "-f", "-")
		if err == nil {
			t.Fatalf("apply succeeded: %s", out)
		}
		for _, want := range []string{`admission webhook "validation.meshguard.io" denied the request`, denyLine} {
			if !strings.Contains(stderrOf(err), want) {
				t.Errorf("kubectl output lacks %q:\n%s", want, stderrOf(err))
			}
		}
	})
	t.Run("warn rule admits with a kubectl warning", func(t *testing.T) {
		out, err := kubectl(t, c, permissivePA, "apply", "-f", "-")
		if err != nil {
			t.Fatalf("apply failed: %v", err)
		}
		if !strings.Contains(out, "Warning: "+warnLine) {
			t.Errorf("kubectl printed no rule warning:\n%s", out)
		}
	})
	t.Run("same rule fails meshguard validate --rego", func(t *testing.T) {
		bin, err := binary.Path()
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		file := filepath.Join(dir, "mesh.yaml")
		ns := "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n  labels:\n    environment: production\n---\n"
		if err := os.WriteFile(file, []byte(ns+wildcardVS+"---\n"+permissivePA), 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(bin, "validate", "-f", file, "--rego", repoPath(t, "deploy", "examples", "rego")).CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 {
			t.Fatalf("validate --rego: %v, want exit 1\n%s", err, out)
		}
		for _, want := range []string{file + "#1: " + denyLine, file + "#2: warning: " + warnLine} {
			if !strings.Contains(string(out), want) {
				t.Errorf("validate --rego output lacks %q:\n%s", want, out)
			}
		}
	})
	t.Run("broken ConfigMap update keeps the last good rules", func(t *testing.T) {
		if err := c.Client.Get(ctx, types.NamespacedName{Namespace: ownNS, Name: cm.Name}, cm); err != nil {
			t.Fatal(err)
		}
		cm.Data["broken.rego"] = "package meshguard.validation\ndeny contains msg if {\n"
		if err := c.Client.Update(ctx, cm); err != nil {
			t.Fatal(err)
		}
		if err := cluster.Eventually(30*time.Second, func() error {
			out, err := kubectl(t, c, "", "get", "events", "-n", ownNS, "--field-selector", "reason=OrgRulesRejected", "-o", "name")
			if err != nil || strings.TrimSpace(out) == "" {
				return fmt.Errorf("no OrgRulesRejected event yet: %v %s", err, out)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if _, err := kubectl(t, c, wildcardVS, "apply", "--dry-run=server", "-f", "-"); !strings.Contains(stderrOf(err), denyLine) {
			t.Errorf("after a rejected update the deny rule no longer applies: %v", err)
		}
	})
	t.Run("ConfigMap update is hot-reloaded", func(t *testing.T) {
		if err := c.Client.Get(ctx, types.NamespacedName{Namespace: ownNS, Name: cm.Name}, cm); err != nil {
			t.Fatal(err)
		}
		cm.Data = map[string]string{"rules.rego": "package meshguard.validation\nwarn contains \"reloaded\" if input.kind == \"VirtualService\"\n"}
		if err := c.Client.Update(ctx, cm); err != nil {
			t.Fatal(err)
		}
		if err := cluster.Eventually(30*time.Second, func() error {
			out, err := kubectl(t, c, wildcardVS, "apply", "--dry-run=server", "-f", "-")
			if err != nil || !strings.Contains(out, "organisation rule: reloaded") {
				return fmt.Errorf("new rules not in force yet: %v %s", err, out)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	})
}
