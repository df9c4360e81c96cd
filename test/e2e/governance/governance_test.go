// Package governance tests organisation rules at admission and the audit of
// stored config end to end: a real `meshguard serve` process (the product
// binary) against a real kube-apiserver, objects applied with the real
// kubectl, and the same rules run by `meshguard validate --rego`.
package governance

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	clientnetworkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshguard/meshguard/audit"
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
	exited                chan error
	metricsURL, readyzURL string
	webhookURL            string
	caPEM                 []byte
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
		// An organisation rule alone denies with 403, as Gatekeeper's rules do.
		for _, want := range []string{"Error from server (Forbidden): ", `admission webhook "validation.meshguard.io" denied the request`, denyLine} {
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

// reviewsDR defines subsets v1 and v2; the audit test later removes v2.
const reviewsDR = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: reviews
  namespace: bookinfo
spec:
  host: reviews
  subsets:
  - name: v1
    labels:
      version: v1
  - name: v2
    labels:
      version: v2
`

const reviewsVS = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
  namespace: bookinfo
spec:
  hosts:
  - reviews
  http:
  - route:
    - destination:
        host: reviews
        subset: v1
      weight: 90
    - destination:
        host: reviews
        subset: v2
      weight: 10
`

// metric returns the value of the sample of the Prometheus text exposition
// whose name and labels start with prefix, or an error when there is none.
func (m *meshguard) metric(prefix string) (string, error) {
	resp, err := http.Get(m.metricsURL)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, prefix) {
			return strings.TrimSpace(line[len(prefix):]), nil
		}
	}
	return "", fmt.Errorf("no sample %s", prefix)
}

// auditRuns waits until the audit has finished n more runs after now.
func (m *meshguard) auditRuns(t *testing.T, n int, timeout time.Duration) {
	t.Helper()
	last := ""
	for i := 0; i < n; i++ {
		if err := cluster.Eventually(timeout, func() error {
			v, err := m.metric("meshguard_audit_last_run_timestamp_seconds ")
			if err != nil {
				return err
			}
			if v == last {
				return errors.New("no new audit run yet")
			}
			last = v
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
}

func auditEvents(ctx context.Context, c *cluster.Cluster, ns, name string) ([]eventsv1.Event, error) {
	var list eventsv1.EventList
	if err := c.Client.List(ctx, &list, client.InNamespace(ns)); err != nil {
		return nil, err
	}
	var out []eventsv1.Event
	for _, e := range list.Items {
		if e.Reason == audit.EventReason && e.Regarding.Kind == "VirtualService" && e.Regarding.Name == name {
			out = append(out, e)
		}
	}
	return out, nil
}

func policyReport(ctx context.Context, c *cluster.Cluster, ns string) (*unstructured.Unstructured, error) {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(audit.PolicyReport)
	err := c.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: audit.ReportName}, u)
	return u, err
}

// A VirtualService stored while its DestinationRule defined the subset it
// routes to shows up in the audit within one period after the subset is
// deleted: a Warning Event on the VirtualService (once, not every period),
// a fail result in the namespace's PolicyReport and the violations metric;
// once the subset is back, the report and the series go. An organisation
// rule (from the rules ConfigMap) applies to stored objects too.
func TestAuditStoredConfig(t *testing.T) {
	const interval = 3 * time.Second
	// One audit period, plus the run's own listing and publishing on a loaded machine.
	const within = interval + 20*time.Second
	c := cluster.Start(t)
	ctx := context.Background()
	cluster.CreateNamespace(t, c, ownNS, nil)
	cluster.CreateNamespace(t, c, "bookinfo", nil)
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "reviews", Namespace: "bookinfo"},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 9080}}}}
	if err := c.Client.Create(ctx, svc); err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile(repoPath(t, "deploy", "examples", "rego", "rules.rego"))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Client.Create(ctx, rulesConfigMap(t, string(src))); err != nil {
		t.Fatal(err)
	}
	// Stored before meshguard runs, and no validating webhook is installed: the audit is what sees them.
	for _, doc := range []string{reviewsDR, reviewsVS, wildcardVS} {
		if out, err := kubectl(t, c, doc, "apply", "-f", "-"); err != nil {
			t.Fatalf("apply: %v %s", err, out)
		}
	}
	m := startMeshguard(t, c, "--audit-interval", interval.String())
	m.auditRuns(t, 1, within)

	t.Run("consistent config has no report", func(t *testing.T) {
		if _, err := policyReport(ctx, c, "bookinfo"); !apierrors.IsNotFound(err) {
			t.Errorf("bookinfo has a PolicyReport before any violation: %v", err)
		}
	})
	t.Run("organisation rule on a stored object", func(t *testing.T) {
		if err := cluster.Eventually(within, func() error {
			r, err := policyReport(ctx, c, "default")
			if err != nil {
				return err
			}
			for _, res := range r.Object["results"].([]any) {
				res := res.(map[string]any)
				if res["policy"] == "MG0001" && res["result"] == "fail" && strings.Contains(res["message"].(string), `host "*" is only allowed in istio-system`) {
					return nil
				}
			}
			return fmt.Errorf("no MG0001 result in %v", r.Object["results"])
		}); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("deleted subset shows up within one period", func(t *testing.T) {
		dr := &clientnetworkingv1.DestinationRule{}
		if err := c.Client.Get(ctx, types.NamespacedName{Namespace: "bookinfo", Name: "reviews"}, dr); err != nil {
			t.Fatal(err)
		}
		dr.Spec.Subsets = dr.Spec.Subsets[:1] // v2 deleted
		if err := c.Client.Update(ctx, dr); err != nil {
			t.Fatal(err)
		}
		changed := time.Now()
		// istioctl's text (Istio's virtualservice/destinationrules.go).
		const subsetMsg = `Referenced host+subset in destinationrule not found: "reviews+v2"`
		if err := cluster.Eventually(within, func() error {
			evs, err := auditEvents(ctx, c, "bookinfo", "reviews")
			if err != nil {
				return err
			}
			if len(evs) != 1 || !strings.Contains(evs[0].Note, "[IST0101] spec.http[0].route[1].destination.subset: "+subsetMsg) || evs[0].Type != corev1.EventTypeWarning {
				return fmt.Errorf("events: %+v", evs)
			}
			r, err := policyReport(ctx, c, "bookinfo")
			if err != nil {
				return err
			}
			results := r.Object["results"].([]any)
			res := results[0].(map[string]any)
			obj := res["resources"].([]any)[0].(map[string]any)
			if len(results) != 1 || res["policy"] != "IST0101" || res["result"] != "fail" || obj["kind"] != "VirtualService" || obj["name"] != "reviews" ||
				!strings.Contains(res["message"].(string), subsetMsg) {
				return fmt.Errorf("report results: %v", results)
			}
			if v, err := m.metric(`meshguard_audit_violations{kind="VirtualService",namespace="bookinfo",rule="IST0101"} `); err != nil || v != "1" {
				return fmt.Errorf("metric: %q %v", v, err)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		t.Logf("Event, PolicyReport and metric %s after the subset was deleted (interval %s)", time.Since(changed).Round(time.Millisecond), interval)
		// `meshguard analyze --kubeconfig` reads the same stored objects and reports the same finding.
		bin, err := binary.Path()
		if err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(bin, "analyze", "--kubeconfig", c.Kubeconfig, "-n", "bookinfo").CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 79 ||
			!strings.Contains(string(out), "Error [IST0101] (VirtualService bookinfo/reviews cluster virtualservices.networking.istio.io) "+subsetMsg) {
			t.Errorf("analyze --kubeconfig: %v, want exit 79 and the IST0101 line:\n%s", err, out)
		}
		// A standing violation is not re-reported every period.
		m.auditRuns(t, 2, within)
		evs, err := auditEvents(ctx, c, "bookinfo", "reviews")
		if err != nil || len(evs) != 1 || (evs[0].Series != nil && evs[0].Series.Count > 1) {
			t.Errorf("after two more runs, want the one Event unrepeated: %+v %v", evs, err)
		}
	})

	t.Run("restored subset clears report and metric", func(t *testing.T) {
		if out, err := kubectl(t, c, reviewsDR, "apply", "-f", "-"); err != nil {
			t.Fatalf("apply: %v %s", err, out)
		}
		if err := cluster.Eventually(within, func() error {
			if _, err := policyReport(ctx, c, "bookinfo"); !apierrors.IsNotFound(err) {
				return fmt.Errorf("report still there: %v", err)
			}
			if v, err := m.metric(`meshguard_audit_violations{kind="VirtualService",namespace="bookinfo"`); err == nil {
				return fmt.Errorf("metric series still there: %s", v)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	})
}
