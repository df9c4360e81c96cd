// Package validation tests the /validate webhook end to end: a real
// kube-apiserver with the Istio CRDs calls meshguard's webhook, set up by
// webhook.SetupValidation on a controller-runtime manager (so cross-reference
// checks read the manager's cache), and objects are applied with the real kubectl.
package validation

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	clientnetworkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/meshguard/meshguard/test/cluster"
	"github.com/meshguard/meshguard/validation/crossref"
	"github.com/meshguard/meshguard/webhook"
)

const ns = "bookinfo"

const canaryVS = `apiVersion: networking.istio.io/v1
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

const canaryDR = `apiVersion: networking.istio.io/v1
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

const strictPA = `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata:
  name: default
  namespace: istio-system
spec:
  mtls:
    mode: STRICT
`

// badVS passes the CRD schema (so it reaches the webhook) but breaks webhook rules.
const badVS = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: bad
  namespace: bookinfo
spec:
  hosts:
  - reviews
  http:
  - route:
    - destination:
        host: reviews
        subset: v1
      weight: -15
`

type env struct {
	c *cluster.Cluster
}

func (e env) apply(t *testing.T, doc string, extra ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return e.c.Kubectl(ctx, doc, append([]string{"apply", "-f", "-"}, extra...)...)
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

// startMeshguard runs the validation webhook the way `meshguard serve` does:
// a manager with SetupValidation, serving on 127.0.0.1 with a fresh CA.
func startMeshguard(t *testing.T, c *cluster.Cluster) webhook.ClientConfig {
	t.Helper()
	ws := cluster.NewWebhookServer(t)
	mgr, err := manager.New(c.Config, manager.Options{
		Scheme:                 cluster.Scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		WebhookServer:          ws.Server,
	})
	if err != nil {
		t.Fatalf("manager: %v", err)
	}
	if err := webhook.SetupValidation(mgr, webhook.ValidationOptions{CrossReferences: true, ClusterDomain: "cluster.local"}, testr.New(t)); err != nil {
		t.Fatalf("SetupValidation: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("manager: %v", err)
		}
	})
	if err := cluster.Eventually(30*time.Second, func() error { return mgr.GetWebhookServer().StartedChecker()(nil) }); err != nil {
		t.Fatalf("webhook server did not start: %v", err)
	}
	syncCtx, syncCancel := context.WithTimeout(ctx, 30*time.Second)
	defer syncCancel()
	if !mgr.GetCache().WaitForCacheSync(syncCtx) {
		t.Fatal("cache did not sync")
	}
	return ws.ClientConfig
}

func TestValidationWebhookE2E(t *testing.T) {
	c := cluster.Start(t)
	e := env{c}
	cc := startMeshguard(t, c)
	ctx := context.Background()
	if err := c.Client.Create(ctx, webhook.ValidatingWebhookConfiguration(cc)); err != nil {
		t.Fatalf("create ValidatingWebhookConfiguration: %v", err)
	}
	cluster.CreateNamespace(t, c, ns, nil)
	cluster.CreateNamespace(t, c, "istio-system", nil)
	svc := &corev1.Service{}
	svc.Name, svc.Namespace = "reviews", ns
	svc.Spec.Ports = []corev1.ServicePort{{Name: "http", Port: 9080}}
	if err := c.Client.Create(ctx, svc); err != nil {
		t.Fatalf("create service: %v", err)
	}
	// Wait until the API server calls the webhook (configuration propagation is asynchronous).
	if err := cluster.Eventually(30*time.Second, func() error {
		_, err := e.apply(t, badVS, "--dry-run=server")
		if !strings.Contains(stderrOf(err), "denied the request") {
			return fmt.Errorf("webhook not active yet: %v", err)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	t.Run("bad VirtualService rejected with field path", func(t *testing.T) {
		out, err := e.apply(t, badVS)
		if err == nil {
			t.Fatalf("kubectl apply succeeded: %s", out)
		}
		msg := stderrOf(err)
		// "Error from server: " without a reason, as for Istio's denials (no
		// status code: the API server makes it 400), not "(Forbidden)".
		for _, want := range []string{"Error from server: ", `admission webhook "validation.meshguard.io" denied the request`, "VirtualService bookinfo/bad", "spec.http[0].route[0].weight", "weight -15 < 0"} {
			if !strings.Contains(msg, want) {
				t.Errorf("kubectl output lacks %q:\n%s", want, msg)
			}
		}
	})

	t.Run("dry-run=server rejected and nothing stored", func(t *testing.T) {
		_, err := e.apply(t, badVS, "--dry-run=server")
		if !strings.Contains(stderrOf(err), "spec.http[0].route[0].weight") {
			t.Fatalf("dry run not rejected with field path: %v", err)
		}
		vs := &clientnetworkingv1.VirtualService{}
		if err := c.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: "bad"}, vs); !apierrors.IsNotFound(err) {
			t.Errorf("bad VirtualService exists after rejection: %v", err)
		}
	})

	t.Run("canary pair and STRICT PeerAuthentication accepted", func(t *testing.T) {
		for _, doc := range []string{canaryDR, strictPA} {
			if out, err := e.apply(t, doc); err != nil {
				t.Fatalf("apply failed: %v", err)
			} else if strings.Contains(out, "Warning:") {
				t.Errorf("unexpected warning: %s", out)
			}
		}
		// The DestinationRule reaches the index through the cache; wait for
		// the canary VS to be accepted without a subset warning.
		var out string
		if err := cluster.Eventually(20*time.Second, func() error {
			var err error
			out, err = e.apply(t, canaryVS, "--dry-run=server")
			if err != nil {
				return err
			}
			if strings.Contains(out, "Warning:") {
				return fmt.Errorf("still warned: %s", out)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if out, err := e.apply(t, canaryVS); err != nil || strings.Contains(out, "Warning:") {
			t.Fatalf("canary VirtualService: err=%v out=%s", err, out)
		}
		vs := &clientnetworkingv1.VirtualService{}
		if err := c.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: "reviews"}, vs); err != nil || len(vs.Spec.GetHttp()) != 1 {
			t.Fatalf("canary VirtualService not stored: %v", err)
		}
	})

	v3 := strings.Replace(strings.Replace(canaryVS, "subset: v2", "subset: v3", 1), "name: reviews\n  namespace", "name: reviews-v3\n  namespace", 1)
	t.Run("subset v3 gets a kubectl Warning line", func(t *testing.T) {
		out, err := e.apply(t, v3)
		if err != nil {
			t.Fatalf("apply failed (should only warn): %v", err)
		}
		if !strings.Contains(out, "Warning: VirtualService bookinfo/reviews-v3: spec.http[0].route[1].destination.subset") || !strings.Contains(out, `subset "v3"`) {
			t.Errorf("no subset warning in kubectl output:\n%s", out)
		}
	})

	// An empty `from: []` must survive the API server's decoding and reach the
	// webhook: in the proto it is indistinguishable from no `from`, which
	// would silently widen this ALLOW policy to every source.
	t.Run("AuthorizationPolicy with an empty from list denied", func(t *testing.T) {
		ap := "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  name: widened\n  namespace: " + ns +
			"\nspec:\n  selector: {matchLabels: {app: reviews}}\n  rules:\n  - from: []\n    to: [{operation: {methods: [GET]}}]\n"
		_, err := e.apply(t, ap, "--dry-run=server")
		msg := stderrOf(err)
		for _, want := range []string{"AuthorizationPolicy " + ns + "/widened", "spec.rules[0].from", "`from` must not be empty"} {
			if !strings.Contains(msg, want) {
				t.Errorf("kubectl output lacks %q (err=%v):\n%s", want, err, msg)
			}
		}
	})

	// 40 000 "é" are 40 000 characters (inside the CRD's maxLength 65536) but
	// 80 000 bytes: only meshguard's 64 KiB rule (docs/compatibility.md "TrafficExtension") rejects it.
	t.Run("TrafficExtension with over 64 KiB of Lua denied by the webhook", func(t *testing.T) {
		te := func(code string) string {
			return "apiVersion: extensions.istio.io/v1alpha1\nkind: TrafficExtension\nmetadata:\n  name: lua\n  namespace: " + ns +
				"\nspec:\n  selector: {matchLabels: {app: reviews}}\n  lua:\n    inlineCode: \"" + code + "\"\n"
		}
		_, err := e.apply(t, te(strings.Repeat("é", 40000)), "--dry-run=server")
		msg := stderrOf(err)
		for _, want := range []string{`admission webhook "validation.meshguard.io" denied the request`, "TrafficExtension " + ns + "/lua",
			"spec.lua.inlineCode", "80000 bytes long, the limit is 65536"} {
			if !strings.Contains(msg, want) {
				t.Errorf("kubectl output lacks %q (err=%v):\n%.2000s", want, err, msg)
			}
		}
		if out, err := e.apply(t, te("function envoy_on_request(h) end"), "--dry-run=server"); err != nil {
			t.Errorf("small Lua filter rejected: %v %s", err, out)
		}
	})

	t.Run("strict namespace turns the warning into a denial", func(t *testing.T) {
		nsObj := &corev1.Namespace{}
		if err := c.Client.Get(ctx, types.NamespacedName{Name: ns}, nsObj); err != nil {
			t.Fatal(err)
		}
		nsObj.Labels = map[string]string{crossref.StrictLabel: "true"}
		if err := c.Client.Update(ctx, nsObj); err != nil {
			t.Fatal(err)
		}
		if err := cluster.Eventually(20*time.Second, func() error {
			_, err := e.apply(t, strings.Replace(v3, "reviews-v3", "reviews-v3-strict", 1), "--dry-run=server")
			if !strings.Contains(stderrOf(err), `subset "v3"`) {
				return fmt.Errorf("not denied yet: %v", err)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("delete of stored config allowed", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := c.Kubectl(ctx, "", "delete", "virtualservice", "-n", ns, "reviews"); err != nil {
			t.Fatalf("delete: %v", err)
		}
	})
}
