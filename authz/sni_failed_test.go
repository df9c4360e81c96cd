package authz

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	secapi "istio.io/api/security/v1beta1"
	secv1 "istio.io/client-go/pkg/apis/security/v1beta1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshguard/meshguard/policy"
)

// TestHTTPWithoutSNIHeaderFailsClosed: on the HTTP protocol the SNI comes
// only from x-meshguard-sni (%REQUESTED_SERVER_NAME%, which Envoy leaves out
// when empty: router/header_parser.cc evaluateHeaders adds no empty value),
// mapped to tls_session as on gRPC. On mTLS (x-forwarded-client-cert) the
// client sidecar always sent an SNI, so without the header it is unknown and
// a connection.sni DENY denies for that (fail closed, no policy named); with
// it the DENY decides; a plaintext request has no SNI, as in Istio.
func TestHTTPWithoutSNIHeaderFailsClosed(t *testing.T) {
	set := &policy.Set{}
	if _, err := set.AddYAML("p.yaml", []byte(`apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-sni, namespace: foo}
spec:
  action: DENY
  rules: [{when: [{key: connection.sni, values: ["*"]}]}]
---
apiVersion: v1
kind: Pod
metadata: {name: web-1, namespace: foo, labels: {app: web}}
status: {podIP: 10.0.1.1}
`)); err != nil {
		t.Fatal(err)
	}
	engine := policy.NewEngine(policy.Mesh{})
	if _, err := engine.Update(context.Background(), set); err != nil {
		t.Fatal(err)
	}
	h := NewServer(engine, Options{DecisionLog: "off"}, logr.Discard()).httpHandler()
	const xfcc = "By=spiffe://cluster.local/ns/foo/sa/web;URI=spiffe://cluster.local/ns/bar/sa/client"
	for _, c := range []struct {
		name       string
		xfcc, sni  string
		wantStatus int
		wantPolicy string
	}{
		{name: "mTLS without the SNI header: unknown", xfcc: xfcc, wantStatus: 403},
		{name: "mTLS with the SNI header", xfcc: xfcc, sni: "outbound_.8080_._.web.foo.svc.cluster.local", wantStatus: 403, wantPolicy: "foo/deny-sni"},
		{name: "plaintext: no SNI", wantStatus: 200},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/index", nil)
			r.Host = "web.foo"
			r.Header.Set(HeaderSourceAddress, "10.0.0.5:40000")
			r.Header.Set(HeaderDestinationAddress, "10.0.1.1:8080")
			if c.xfcc != "" {
				r.Header.Set(HeaderXFCC, c.xfcc)
			}
			if c.sni != "" {
				r.Header.Set(HeaderSNI, c.sni)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != c.wantStatus || w.Header().Get(HeaderPolicy) != c.wantPolicy {
				t.Errorf("%d, policy %q; want %d, policy %q", w.Code, w.Header().Get(HeaderPolicy), c.wantStatus, c.wantPolicy)
			}
		})
	}
}

// TestReloaderWordsFailedPoliciesByBucket: the error logged for a policy
// that cannot be evaluated says the workloads are denied only when they
// are: a failed AUDIT (or CUSTOM, or dry-run) policy denies nothing.
func TestReloaderWordsFailedPoliciesByBucket(t *testing.T) {
	badPorts := []*secapi.Rule{{To: []*secapi.Rule_To{{Operation: &secapi.Operation{Ports: []string{"99999"}}}}}}
	mk := func(name string, action secapi.AuthorizationPolicy_Action) *secv1.AuthorizationPolicy {
		p := &secv1.AuthorizationPolicy{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "foo"}}
		p.Spec.Action, p.Spec.Rules = action, badPorts
		return p
	}
	var lines []string
	log := funcr.New(func(prefix, args string) { lines = append(lines, prefix+" "+args) }, funcr.Options{})
	rl := &Reloader{
		Engine: policy.NewEngine(policy.Mesh{}),
		Load: func(context.Context) (*policy.Set, error) {
			return &policy.Set{AuthorizationPolicies: []*secv1.AuthorizationPolicy{
				mk("bad-deny", secapi.AuthorizationPolicy_DENY), mk("bad-audit", secapi.AuthorizationPolicy_AUDIT)}}, nil
		},
		Log:            log,
		NormalPriority: true,
	}
	if err := rl.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	const denied = "the workloads it selects are denied"
	for policyID, wantDenied := range map[string]bool{"foo/bad-deny": true, "foo/bad-audit": false} {
		var line string
		for _, l := range lines {
			if strings.Contains(l, "cannot be evaluated") && strings.Contains(l, `"policy"="`+policyID+`"`) {
				line = l
			}
		}
		if line == "" {
			t.Errorf("no error logged for %s:\n%s", policyID, strings.Join(lines, "\n"))
			continue
		}
		if strings.Contains(line, denied) != wantDenied || (!wantDenied && !strings.Contains(line, "none denied")) {
			t.Errorf("%s: %s\nwant it to say %q: %v", policyID, line, denied, wantDenied)
		}
	}
}
