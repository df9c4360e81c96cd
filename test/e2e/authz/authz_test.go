// Package authz_test runs the ext_authz service against a real API server:
// policies applied with kubectl change the running server's verdicts.
package authz_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/go-logr/logr/testr"
	promtestutil "github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/meshguard/meshguard/authz"
	"github.com/meshguard/meshguard/test/cluster"
)

const podIP = "10.1.0.10"

const denyAdmin = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: deny-admin
  namespace: default
spec:
  selector:
    matchLabels:
      app: web
  action: DENY
  rules:
  - to:
    - operation:
        paths: ["/admin*"]
`

// From Istio's docs (getting started / mutual TLS migration): namespace-wide STRICT.
const strictDefault = `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata:
  name: default
  namespace: default
spec:
  mtls:
    mode: STRICT
`

func checkReq(principal, path string) *authv3.CheckRequest {
	addr := func(ip string, port uint32) *corev3.Address {
		return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{Address: ip,
			PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port}}}}
	}
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source:      &authv3.AttributeContext_Peer{Address: addr("10.1.0.99", 40000), Principal: principal},
		Destination: &authv3.AttributeContext_Peer{Address: addr(podIP, 8080)},
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Method: "GET", Path: path, Host: "web.default"}},
	}}
}

func TestPoliciesFromAPIServer(t *testing.T) {
	// Without the watch cache, a watch resumed after a CRD change gets only
	// the events since it stopped (with it, the resumed watch is usually
	// refused as too old and the informer lists again by chance): what the
	// informers hold after a CRD change is then only right if meshguard
	// lists again itself (see the CRD steps at the end).
	c := cluster.StartWith(t, cluster.Options{APIServerFlags: map[string]string{"watch-cache": "false"}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// The destination workload: a Pod with an IP (envtest has no kubelet, so set status directly).
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "nginx"}}}}
	if err := c.Client.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	pod.Status.PodIP = podIP
	pod.Status.PodIPs = []corev1.PodIP{{IP: podIP}}
	if err := c.Client.Status().Update(ctx, pod); err != nil {
		t.Fatal(err)
	}

	// A newer CRD, one meshguard's Istio API does not know yet, installed
	// before meshguard starts (a change while it runs is tested below).
	setOperationField(ctx, t, c, "futureField", true)
	if err := cluster.Eventually(30*time.Second, func() error {
		// Strict field validation: refused until the schema has the field.
		_, err := c.Kubectl(ctx, allowFuture, "apply", "--dry-run=server", "-f", "-")
		return err
	}); err != nil {
		t.Fatalf("the newer CRD is not served: %v", err)
	}

	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	mgr, err := manager.New(c.Config, manager.Options{Scheme: scheme, Metrics: metricsserver.Options{BindAddress: "0"}, HealthProbeBindAddress: "0"})
	if err != nil {
		t.Fatal(err)
	}
	addr := cluster.FreeAddr(t)
	o := authz.DefaultOptions()
	o.Addr = addr
	httpAddr := cluster.FreeAddr(t)
	o.HTTPAddr = httpAddr
	o.Debounce = 20 * time.Millisecond
	o.DecisionLog = "off"
	if err := authz.Setup(mgr, o, nil, testr.New(t)); err != nil {
		t.Fatal(err)
	}
	mgrDone := make(chan error, 1)
	go func() { mgrDone <- mgr.Start(ctx) }()
	defer func() {
		cancel()
		select {
		case err := <-mgrDone:
			if err != nil {
				t.Errorf("manager: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("manager did not stop")
		}
	}()

	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := cluster.Eventually(60*time.Second, func() error {
		r, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: authz.ServiceName})
		if err != nil {
			return err
		}
		if r.Status != healthpb.HealthCheckResponse_SERVING {
			return fmt.Errorf("health %v", r.Status)
		}
		return nil
	}); err != nil {
		t.Fatalf("server not serving: %v", err)
	}
	ac := authv3.NewAuthorizationClient(conn)
	status := func(principal, path string) (int, error) {
		resp, err := ac.Check(ctx, checkReq(principal, path))
		if err != nil {
			return 0, err
		}
		got := 200
		if resp.GetOkResponse() == nil {
			got = int(resp.GetDeniedResponse().GetStatus().GetCode())
		}
		// The same request over HTTP ext_authz, as an Istio sidecar sends it.
		hreq, err := http.NewRequestWithContext(ctx, "GET", "http://"+httpAddr+path, nil)
		if err != nil {
			return 0, err
		}
		hreq.Host = "web.default"
		hreq.Header.Set(authz.HeaderSourceAddress, "10.1.0.99:40000")
		hreq.Header.Set(authz.HeaderDestinationAddress, podIP+":8080")
		if principal != "" {
			hreq.Header.Set(authz.HeaderXFCC, "By=spiffe://cluster.local/ns/default/sa/web;URI="+principal)
		}
		hresp, err := http.DefaultClient.Do(hreq)
		if err != nil {
			return 0, err
		}
		hresp.Body.Close()
		if hresp.StatusCode != got {
			return 0, fmt.Errorf("%s %s: gRPC %d, HTTP %d", principal, path, got, hresp.StatusCode)
		}
		return got, nil
	}
	// awaitVerdict waits (polling, no sleep) until the verdict for path is want, at most limit.
	awaitVerdict := func(limit time.Duration, step, principal, path string, want int) {
		t.Helper()
		start := time.Now()
		if err := cluster.Eventually(limit, func() error {
			got, err := status(principal, path)
			if err != nil {
				return err
			}
			if got != want {
				return fmt.Errorf("status %d, want %d", got, want)
			}
			return nil
		}); err != nil {
			t.Fatalf("%s: verdict did not change within %v: %v", step, limit, err)
		}
		t.Logf("%s: verdict %d after %v", step, want, time.Since(start))
	}
	within := func(step, principal, path string, want int) {
		t.Helper()
		awaitVerdict(time.Second, step, principal, path, want)
	}

	within("initial", "", "/admin", 200)

	if out, err := c.Kubectl(ctx, denyAdmin, "apply", "-f", "-"); err != nil {
		t.Fatalf("kubectl apply: %v %s", err, out)
	}
	within("after apply", "", "/admin", 403)
	if got, err := status("", "/index"); err != nil || got != 200 {
		t.Fatalf("/index after apply: %d %v", got, err)
	}

	if out, err := c.Kubectl(ctx, "", "delete", "authorizationpolicy", "-n", "default", "deny-admin"); err != nil {
		t.Fatalf("kubectl delete: %v %s", err, out)
	}
	within("after delete", "", "/admin", 200)

	// STRICT PeerAuthentication in default: plaintext fails, mTLS passes.
	if out, err := c.Kubectl(ctx, strictDefault, "apply", "-f", "-"); err != nil {
		t.Fatalf("kubectl apply: %v %s", err, out)
	}
	within("STRICT plaintext", "", "/index", 403)
	resp, err := ac.Check(ctx, checkReq("", "/index"))
	if err != nil || resp.GetDeniedResponse().GetBody() != "mTLS required" {
		t.Fatalf("STRICT plaintext: want body \"mTLS required\", got %v %v", resp, err)
	}
	if got, err := status("spiffe://cluster.local/ns/default/sa/sleep", "/index"); err != nil || got != 200 {
		t.Fatalf("STRICT mTLS: %d %v", got, err)
	}
	if out, err := c.Kubectl(ctx, "", "delete", "peerauthentication", "-n", "default", "default"); err != nil {
		t.Fatalf("kubectl delete: %v %s", err, out)
	}

	// PeerAuthentication precedence: the OLDEST namespace PeerAuthentication
	// is selected even without a mode (it then inherits the mesh default
	// PERMISSIVE), so a newer DISABLE one changes nothing and the DENY on the peer principal
	// still matches (Istio's ComposePeerAuthentication). The names sort the
	// other way round, so creation time, not the name, must decide.
	const sleep = "spiffe://cluster.local/ns/default/sa/sleep"
	applyAndAge(ctx, t, c, paUnsetOld)
	if out, err := c.Kubectl(ctx, denySameNamespace, "apply", "-f", "-"); err != nil {
		t.Fatalf("kubectl apply: %v %s", err, out)
	}
	within("DENY on principals", sleep, "/index", 403)
	if out, err := c.Kubectl(ctx, paDisableNew, "apply", "-f", "-"); err != nil {
		t.Fatalf("kubectl apply: %v %s", err, out)
	}
	peers := authz.DefaultMetrics().Policies.WithLabelValues("PeerAuthentication")
	if err := cluster.Eventually(5*time.Second, func() error {
		if n := promtestutil.ToFloat64(peers); n != 2 {
			return fmt.Errorf("snapshot has %v PeerAuthentications, want 2", n)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if got, err := status(sleep, "/index"); err != nil || got != 403 {
		t.Fatalf("older UNSET + newer DISABLE PeerAuthentication: mTLS request from default got %d %v, want 403 (Istio denies)", got, err)
	}
	if got, err := status("", "/index"); err != nil || got != 200 {
		t.Fatalf("older UNSET + newer DISABLE: plaintext got %d %v, want 200", got, err)
	}
	// Without the older one, DISABLE decides: no peer identity, the DENY no longer matches.
	if out, err := c.Kubectl(ctx, "", "delete", "peerauthentication", "-n", "default", "z-unset-old"); err != nil {
		t.Fatalf("kubectl delete: %v %s", err, out)
	}
	within("newer DISABLE alone", sleep, "/index", 200)

	// The newer CRD (installed above) adds a field to operation; an ALLOW
	// using it must not be enforced without it (the typed decoder drops it:
	// /index would be allowed whatever the field says). It fails closed: the
	// selected workload is denied.
	if out, err := c.Kubectl(ctx, allowFuture, "apply", "-f", "-"); err != nil {
		t.Fatalf("kubectl apply with the newer CRD's field: %v %s", err, out)
	}
	if out, err := c.Kubectl(ctx, "", "get", "authorizationpolicy", "-n", "default", "allow-future", "-o", "jsonpath={.spec.rules[0].to[0].operation}"); err != nil || !strings.Contains(out, "futureField") {
		t.Fatalf("stored policy lost the field: %v %s", err, out)
	}
	within("ALLOW with a field unknown to meshguard", "", "/index", 403)
	// The gauge follows the snapshot (set once it is active), so a verdict
	// of the new snapshot can be seen just before it.
	awaitFailedClosed := func(want float64) {
		t.Helper()
		if err := cluster.Eventually(10*time.Second, func() error {
			if n := promtestutil.ToFloat64(authz.DefaultMetrics().Policies.WithLabelValues("FailedClosed")); n != want {
				return fmt.Errorf("failed-closed policies: %v, want %v", n, want)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	awaitFailedClosed(1)
	// The CRD changes while meshguard runs. The stored object does not change,
	// so no watch event comes, but the API server now serves it by the new
	// schema: meshguard lists the policies again (after crdSettle, 2 s).
	// Without the field in the schema, the API server serves allow-future
	// pruned: an ALLOW of /index, as istiod would read it.
	servedOperation := func(want bool) {
		t.Helper()
		if err := cluster.Eventually(30*time.Second, func() error {
			out, err := c.Kubectl(ctx, "", "get", "authorizationpolicy", "-n", "default", "allow-future", "-o", "jsonpath={.spec.rules[0].to[0].operation}")
			if err != nil {
				return err
			}
			if strings.Contains(out, "futureField") != want {
				return fmt.Errorf("operation served as %s", out)
			}
			return nil
		}); err != nil {
			t.Fatalf("the changed CRD is not served: %v", err)
		}
	}
	setOperationField(ctx, t, c, "futureField", false)
	servedOperation(false)
	awaitVerdict(30*time.Second, "CRD without the field, policy unchanged", "", "/index", 200)
	if got, err := status("", "/other"); err != nil || got != 403 {
		t.Fatalf("ALLOW of /index, /other: %d %v, want 403", got, err)
	}
	awaitFailedClosed(0)
	setOperationField(ctx, t, c, "futureField", true)
	servedOperation(true)
	awaitVerdict(30*time.Second, "CRD with the field again, policy unchanged", "", "/index", 403)
	awaitFailedClosed(1)

	if out, err := c.Kubectl(ctx, "", "delete", "authorizationpolicy", "-n", "default", "allow-future"); err != nil {
		t.Fatalf("kubectl delete: %v %s", err, out)
	}
	within("ALLOW with the unknown field deleted", "", "/index", 200)
}

const allowFuture = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: allow-future
  namespace: default
spec:
  selector:
    matchLabels:
      app: web
  rules:
  - to:
    - operation:
        paths: ["/index"]
        futureField: ["only-on-tuesdays"]
`

// setOperationField adds (present) or removes a string-list field of
// AuthorizationPolicy's rules[].to[].operation in every version of the
// installed CRD, as a newer Istio release (or a downgrade) would.
func setOperationField(ctx context.Context, t *testing.T, c *cluster.Cluster, name string, present bool) {
	t.Helper()
	crd := &apiextensionsv1.CustomResourceDefinition{}
	if err := c.Client.Get(ctx, client.ObjectKey{Name: "authorizationpolicies.security.istio.io"}, crd); err != nil {
		t.Fatal(err)
	}
	for _, v := range crd.Spec.Versions {
		spec := v.Schema.OpenAPIV3Schema.Properties["spec"]
		to := spec.Properties["rules"].Items.Schema.Properties["to"]
		op := to.Items.Schema.Properties["operation"]
		if !present {
			delete(op.Properties, name)
			continue
		}
		op.Properties[name] = apiextensionsv1.JSONSchemaProps{Type: "array",
			Items: &apiextensionsv1.JSONSchemaPropsOrArray{Schema: &apiextensionsv1.JSONSchemaProps{Type: "string"}}}
	}
	if err := c.Client.Update(ctx, crd); err != nil {
		t.Fatalf("update the AuthorizationPolicy CRD: %v", err)
	}
}

const paUnsetOld = `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata:
  name: z-unset-old
  namespace: default
spec: {}
`

const paDisableNew = `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata:
  name: a-disable-new
  namespace: default
spec:
  mtls:
    mode: DISABLE
`

const denySameNamespace = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: deny-default-peers
  namespace: default
spec:
  action: DENY
  rules:
  - from:
    - source:
        principals: ["cluster.local/ns/default/*"]
`

// applyAndAge applies doc and waits (polling the clock, no sleep) until a
// later object gets a strictly later creationTimestamp (one-second resolution).
func applyAndAge(ctx context.Context, t *testing.T, c *cluster.Cluster, doc string) {
	t.Helper()
	if out, err := c.Kubectl(ctx, doc, "apply", "-f", "-"); err != nil {
		t.Fatalf("kubectl apply: %v %s", err, out)
	}
	out, err := c.Kubectl(ctx, "", "get", "peerauthentication", "-n", "default", "z-unset-old", "-o", "jsonpath={.metadata.creationTimestamp}")
	if err != nil {
		t.Fatalf("kubectl get: %v %s", err, out)
	}
	created, err := time.Parse(time.RFC3339, strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatalf("creationTimestamp %q: %v", out, err)
	}
	if err := cluster.Eventually(3*time.Second, func() error {
		if !time.Now().Truncate(time.Second).After(created) {
			return fmt.Errorf("still within the creation second")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}
