// Package foundation checks the test harness itself end to end: a real
// kube-apiserver, real kubectl, and the Istio and cert-manager CRDs.
package foundation

import (
	"context"
	"strings"
	"testing"
	"time"

	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/meshguard/meshguard/test/cluster"
)

func TestKubectlApplyAndReadBack(t *testing.T) {
	c := cluster.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	version, err := c.Kubectl(ctx, "", "version", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(version, `"gitVersion": "v1.36.`) {
		t.Errorf("server does not report its real version:\n%s", version)
	}

	cluster.CreateNamespace(t, c, "bookinfo", nil)
	const vs = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
  namespace: bookinfo
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v1}
`
	out, err := c.Kubectl(ctx, vs, "apply", "-f", "-")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "virtualservice.networking.istio.io/reviews created") {
		t.Errorf("unexpected kubectl output: %q", out)
	}

	// Read it back through kubectl and through the typed client.
	host, err := c.Kubectl(ctx, "", "get", "virtualservice", "reviews", "-n", "bookinfo",
		"-o", "jsonpath={.spec.http[0].route[0].destination.subset}")
	if err != nil {
		t.Fatal(err)
	}
	if host != "v1" {
		t.Errorf("kubectl read back subset %q, want v1", host)
	}
	var got networkingv1.VirtualService
	if err := c.Client.Get(ctx, types.NamespacedName{Namespace: "bookinfo", Name: "reviews"}, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Spec.Hosts) != 1 || got.Spec.Hosts[0] != "reviews" {
		t.Errorf("client read back hosts %v", got.Spec.Hosts)
	}

	// cert-manager's CRDs are served too.
	if _, err := c.Kubectl(ctx, "", "get", "certificates.cert-manager.io", "-A"); err != nil {
		t.Errorf("cert-manager CRDs not served: %v", err)
	}
}
