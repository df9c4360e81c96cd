package policy

import (
	"context"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	secv1 "istio.io/client-go/pkg/apis/security/v1beta1"
	corev1 "k8s.io/api/core/v1"
)

func sockAddr(ip string, port uint32) *corev3.Address {
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{Address: ip,
		PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port}}}}
}

// sniConn is the connection a CheckRequest describes by its peers'
// principals, as Envoy fills them (source/extensions/filters/common/
// ext_authz/check_request_utils.cc setAttrContextPeer): on a TLS connection
// destination.principal is the local (server) certificate's URI SAN, else
// DNS SAN, else subject, and source.principal the same of the client's
// certificate, if any; on plaintext both are empty.
type sniConn struct{ src, dst string }

var (
	mtlsConn = sniConn{"spiffe://cluster.local/ns/bar/sa/client", "spiffe://cluster.local/ns/foo/sa/web"}
	// simpleTLSConn: server-side TLS only, as an ingress gateway terminates
	// it with its credentialName certificate (a DNS SAN): no client
	// certificate, so no source principal.
	simpleTLSConn = sniConn{"", "web.example.com"}
	plainConn     = sniConn{}
)

// sniReq is the CheckRequest Envoy sends for a GET to foo/web-1 (webPod,
// 10.0.1.1:8080) over conn; tlsSNI non-nil adds a tls_session (what
// include_tls_session sends) with that SNI; tcp sends it as the network
// ext_authz filter does (no request.http).
func sniReq(conn sniConn, tlsSNI *string, tcp bool) *authv3.CheckRequest {
	a := &authv3.AttributeContext{
		Source:      &authv3.AttributeContext_Peer{Address: sockAddr("10.0.0.5", 40000), Principal: conn.src},
		Destination: &authv3.AttributeContext_Peer{Address: sockAddr("10.0.1.1", 8080), Principal: conn.dst},
	}
	if !tcp {
		a.Request = &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{Method: "GET", Path: "/", Host: "web.foo",
			Headers: map[string]string{":method": "GET", ":path": "/", ":authority": "web.foo"}}}
	}
	if tlsSNI != nil {
		a.TlsSession = &authv3.AttributeContext_TLSSession{Sni: *tlsSNI}
	}
	return &authv3.CheckRequest{Attributes: a}
}

// withDestinationService sets destination.service, which Envoy's network
// ext_authz filter (1.22 and later) fills with the connection's requested
// server name (check_request_utils.cc createTcpCheck); its HTTP filter
// leaves it empty.
func withDestinationService(req *authv3.CheckRequest, service string) *authv3.CheckRequest {
	req.Attributes.Destination.Service = service
	return req
}

// withTLSUnknown marks req as one that cannot tell TLS from plaintext
// (TLSUnknownExtension, as the HTTP protocol does).
func withTLSUnknown(req *authv3.CheckRequest) *authv3.CheckRequest {
	req.Attributes.ContextExtensions = map[string]string{TLSUnknownExtension: "true"}
	return req
}

// TestSNIUnknownWithoutTLSSession: Envoy sends tls_session only with
// include_tls_session, which Istio's CUSTOM provider never sets, so on a TLS
// connection the CheckRequest lacks the SNI Istio's RBAC filter matches as
// connection.sni (pilot/pkg/security/authz/model/generator.go
// connSNIGenerator: requested_server_name). Read as "", a DENY on
// connection.sni never applied and a notValues ALLOW always did: the SNI is
// unknown on every connection that is (a destination principal: the server
// certificate) or may be (TLSUnknownExtension) TLS, and such policies deny
// (fail closed); before, only mTLS (a source principal) counted, so SIMPLE
// TLS at a gateway failed open. A plaintext connection has no SNI in Istio
// either: evaluated with SNI "".
func TestSNIUnknownWithoutTLSSession(t *testing.T) {
	const unknown = "no SNI"
	x, empty, evil, good := "outbound_.8080_._.web.foo.svc.cluster.local", "", "evil.example.com", "web.example.com"
	denySNI := ap("foo", "deny-sni", "action: DENY\nrules:\n- when: [{key: connection.sni, values: [\"*\"]}]")
	denyEvil := ap("foo", "deny-evil", "action: DENY\nrules:\n- when: [{key: connection.sni, values: [evil.example.com]}]")
	allowGood := ap("foo", "allow-good", "rules:\n- when: [{key: connection.sni, values: [web.example.com]}]")
	allowSNI := ap("foo", "allow-sni", "rules:\n- when: [{key: connection.sni, values: [\"*\"]}]")
	allowNotSNI := ap("foo", "allow-not-evil", "rules:\n- when: [{key: connection.sni, notValues: [\"evil.example\"]}]")
	allowGET := ap("foo", "allow-get", "rules:\n- to: [{operation: {methods: [GET]}}]")
	dryDenySNI := apAnn("foo", "dry-deny-sni", `istio.io/dry-run: "true"`, "action: DENY\nrules:\n- when: [{key: connection.sni, values: [\"*\"]}]")
	undecided := want{false, "DENY", "", -1}
	for _, c := range []struct {
		name     string
		policies string
		req      *authv3.CheckRequest
		want     want
		reason   string // substring of the reason, when set
	}{
		{"DENY sni *, mTLS without tls_session: unknown", denySNI, sniReq(mtlsConn, nil, false), undecided, unknown},
		{"DENY sni *, mTLS with tls_session", denySNI, sniReq(mtlsConn, &x, false), deniedBy("foo/deny-sni", 0), ""},
		{"DENY sni *, plaintext: no SNI, as in Istio", denySNI, sniReq(plainConn, nil, false), open, ""},
		{"DENY sni *, tls_session without SNI: known empty", denySNI, sniReq(mtlsConn, &empty, false), open, ""},
		{"DENY sni *, TCP mTLS without tls_session: unknown", denySNI, sniReq(mtlsConn, nil, true), undecided, unknown},
		{"DENY sni *, TCP mTLS with tls_session", denySNI, sniReq(mtlsConn, &x, true), deniedBy("foo/deny-sni", 0), ""},
		{"ALLOW sni *, mTLS without tls_session: unknown", allowSNI, sniReq(mtlsConn, nil, false), undecided, unknown},
		{"ALLOW sni *, mTLS with tls_session", allowSNI, sniReq(mtlsConn, &x, false), allowedBy("foo/allow-sni", 0), ""},
		// Read as "", the notValues ALLOW allowed every such request.
		{"ALLOW sni notValues, mTLS without tls_session: unknown", allowNotSNI, sniReq(mtlsConn, nil, false), undecided, unknown},
		{"ALLOW sni notValues, plaintext", allowNotSNI, sniReq(plainConn, nil, false), allowedBy("foo/allow-not-evil", 0), ""},
		// SIMPLE TLS (no client certificate): read as "", this DENY never
		// matched (fail open) and this ALLOW never did.
		{"DENY sni evil, SIMPLE TLS without tls_session: unknown", denyEvil, sniReq(simpleTLSConn, nil, false), undecided, unknown},
		{"ALLOW sni good, SIMPLE TLS without tls_session: unknown", allowGood, sniReq(simpleTLSConn, nil, false), undecided, unknown},
		{"DENY sni evil, SIMPLE TLS with tls_session evil", denyEvil, sniReq(simpleTLSConn, &evil, false), deniedBy("foo/deny-evil", 0), ""},
		{"DENY sni evil, SIMPLE TLS with tls_session good", denyEvil, sniReq(simpleTLSConn, &good, false), open, ""},
		{"ALLOW sni good, SIMPLE TLS with tls_session good", allowGood, sniReq(simpleTLSConn, &good, false), allowedBy("foo/allow-good", 0), ""},
		{"DENY sni evil, TCP SIMPLE TLS without tls_session: unknown", denyEvil, sniReq(simpleTLSConn, nil, true), undecided, unknown},
		{"DENY sni evil, plaintext", denyEvil, sniReq(plainConn, nil, false), open, ""},
		{"ALLOW sni good, plaintext: SNI \"\" matches nothing", allowGood, sniReq(plainConn, nil, false), noAllow, ""},
		// The network filter's destination.service is the requested server
		// name: known without tls_session; the HTTP filter never sets it.
		{"DENY sni evil, TCP SIMPLE TLS, destination.service evil", denyEvil,
			withDestinationService(sniReq(simpleTLSConn, nil, true), evil), deniedBy("foo/deny-evil", 0), ""},
		{"DENY sni evil, TCP SIMPLE TLS, destination.service good", denyEvil,
			withDestinationService(sniReq(simpleTLSConn, nil, true), good), open, ""},
		{"DENY sni evil, HTTP SIMPLE TLS, destination.service is not the SNI", denyEvil,
			withDestinationService(sniReq(simpleTLSConn, nil, false), evil), undecided, unknown},
		// A CheckRequest that cannot tell TLS from plaintext (the HTTP
		// protocol without the SNI header): unknown, the fail-closed reading.
		{"DENY sni evil, TLS or plaintext unknown: unknown", denyEvil, withTLSUnknown(sniReq(plainConn, nil, false)), undecided, unknown},
		{"DENY sni evil, TLS or plaintext unknown, tls_session evil", denyEvil,
			withTLSUnknown(sniReq(plainConn, &evil, false)), deniedBy("foo/deny-evil", 0), ""},
		{"policies read no SNI: evaluated", allowGET, sniReq(mtlsConn, nil, false), allowedBy("foo/allow-get", 0), ""},
		{"policies read no SNI, SIMPLE TLS: evaluated", allowGET, sniReq(simpleTLSConn, nil, false), allowedBy("foo/allow-get", 0), ""},
		{"a dry-run DENY on sni does not count", dryDenySNI, sniReq(mtlsConn, nil, false), open, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := compileCase(t, Mesh{}, c.policies, webPod())
			v, err := s.Check(context.Background(), c.req)
			if err != nil {
				t.Fatal(err)
			}
			if got := (want{v.Allowed, v.Action, v.Policy, v.Rule}); got != c.want {
				t.Errorf("verdict = %+v (reason %q), want %+v", got, v.Reason, c.want)
			}
			if c.reason != "" && (!strings.Contains(v.Reason, c.reason) || !strings.Contains(v.Reason, "fail closed")) {
				t.Errorf("reason %q, want it to say %q and fail closed", v.Reason, c.reason)
			}
		})
	}
}

// TestReportingPoliciesNeverMakeRequestsUndecidable: AUDIT, CUSTOM and
// dry-run policies never decide (Istio: AUDIT is an RBAC filter with action
// LOG, dry-run policies are shadow rules, pilot/pkg/security/authz/builder/
// builder.go build; CUSTOM is only reported, meshguard being the ext_authz
// server it calls), so an attribute only they read, missing from the
// request, must not deny it; the same attribute read by a DENY does.
func TestReportingPoliciesNeverMakeRequestsUndecidable(t *testing.T) {
	unknown := want{false, "DENY", "", -1}
	noMetadata := func(r *Request) { r.NoMetadata = true }
	noSNI := func(r *Request) { r.SNIUnknown = true }
	custom := func(name, rule string) string {
		return ap("foo", name, "action: CUSTOM\nprovider: {name: ext}\nrules:\n- "+rule)
	}
	runCases(t, Mesh{}, []tc{
		{"AUDIT ports, no destination port", ap("foo", "au", "action: AUDIT\nrules: [{to: [{operation: {ports: [\"9090\"]}}]}]"),
			http(port(0)), open},
		{"AUDIT requestPrincipals, no metadata", ap("foo", "au", "action: AUDIT\nrules: [{from: [{source: {requestPrincipals: [\"*\"]}}]}]"),
			http(noMetadata), open},
		{"AUDIT request.auth.claims, no metadata", ap("foo", "au", "action: AUDIT\nrules: [{when: [{key: \"request.auth.claims[iss]\", values: [x]}]}]"),
			http(noMetadata), open},
		{"AUDIT ipBlocks, no source address", ap("foo", "au", "action: AUDIT\nrules: [{from: [{source: {ipBlocks: [10.9.0.0/16]}}]}]"),
			http(srcIP("")), open},
		{"AUDIT sni, SNI unknown", ap("foo", "au", "action: AUDIT\nrules: [{when: [{key: connection.sni, values: [\"*\"]}]}]"),
			http(from(pFoo), noSNI), open},
		{"CUSTOM ports, no destination port", custom("cu", "to: [{operation: {ports: [\"9090\"]}}]"), http(port(0)), open},
		{"CUSTOM ipBlocks, no source address", custom("cu", "from: [{source: {ipBlocks: [10.9.0.0/16]}}]"), http(srcIP("")), open},
		{"CUSTOM destination.ip, no destination address", custom("cu", "when: [{key: destination.ip, values: [10.0.1.1]}]"), http(dstIP("")), open},
		{"dry-run ALLOW requestPrincipals, no metadata", apAnn("foo", "da", `istio.io/dry-run: "true"`, "rules: [{from: [{source: {requestPrincipals: [\"*\"]}}]}]"),
			http(noMetadata), open},
		// The same attributes read by deciding policies.
		{"DENY ports, no destination port", ap("foo", "d", "action: DENY\nrules: [{to: [{operation: {ports: [\"9090\"]}}]}]"),
			http(port(0)), unknown},
		{"ALLOW requestPrincipals, no metadata", ap("foo", "a", "rules: [{from: [{source: {requestPrincipals: [\"*\"]}}]}]"),
			http(noMetadata), unknown},
		{"AUDIT beside a DENY that reads the port", ap("foo", "au", "action: AUDIT\nrules: [{to: [{operation: {ports: [\"9090\"]}}]}]") +
			ap("foo", "d", "action: DENY\nrules: [{to: [{operation: {ports: [\"9091\"]}}]}]"), http(port(0)), unknown},
	})
}

// TestReportingPoliciesSelectingByLabel: a destination missing from the Pod
// index (namespace from destination.principal, no labels) is undecidable
// only where a deciding policy selects by label (selectsByLabel, the same
// decidingBuckets as viewAttrReads): an AUDIT, CUSTOM or dry-run one with a
// selector does not make it so.
func TestReportingPoliciesSelectingByLabel(t *testing.T) {
	sel := "selector: {matchLabels: {app: web}}\n"
	for _, c := range []struct {
		name, policies string
		allowed        bool
	}{
		{"AUDIT", ap("foo", "p", "action: AUDIT\n"+sel+"rules: [{}]"), true},
		{"CUSTOM", ap("foo", "p", "action: CUSTOM\nprovider: {name: ext}\n"+sel+"rules: [{}]"), true},
		{"dry-run DENY", apAnn("foo", "p", `istio.io/dry-run: "true"`, "action: DENY\n"+sel+"rules: [{}]"), true},
		{"DENY", ap("foo", "p", "action: DENY\n"+sel+"rules: [{to: [{operation: {paths: [/admin]}}]}]"), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := compileCase(t, Mesh{}, c.policies) // no Pod: 10.0.1.1 is unknown
			v, err := s.Check(context.Background(), sniReq(mtlsConn, nil, false))
			if err != nil {
				t.Fatal(err)
			}
			if v.Allowed != c.allowed {
				t.Errorf("allowed = %v (%s), want %v", v.Allowed, v.Reason, c.allowed)
			}
			if !c.allowed && !strings.Contains(v.Reason, "select workloads by label") {
				t.Errorf("reason %q, want the unknown destination's", v.Reason)
			}
		})
	}
}

// TestFailedPolicyWordedByBucket: a policy that cannot be evaluated denies
// the workloads it selects when it decides (ALLOW, DENY, PeerAuthentication);
// an AUDIT, CUSTOM or dry-run one is reported as matching every request and
// denies nothing, and its warning and FailedPolicy say which. A dry-run AUDIT
// (always invalid: Istio pkg/config/validation/validation.go
// checkDryRunAnnotation accepts the annotation on ALLOW and DENY only) is
// reported as a failed AUDIT is; it used to be filed in a bucket no module
// rendered, reported nowhere.
func TestFailedPolicyWordedByBucket(t *testing.T) {
	const denied = "every workload it selects is denied"
	badPorts := "rules: [{to: [{operation: {ports: [\"99999\"]}}]}]"
	for _, c := range []struct {
		name   string
		doc    string
		denies bool
		hits   func(Verdict) []Hit
	}{
		{"ALLOW", ap("foo", "broken", badPorts), true, nil},
		{"DENY", ap("foo", "broken", "action: DENY\n"+badPorts), true, nil},
		{"AUDIT", ap("foo", "broken", "action: AUDIT\n"+badPorts), false, func(v Verdict) []Hit { return v.Audit }},
		{"dry-run AUDIT", apAnn("foo", "broken", `istio.io/dry-run: "true"`, "action: AUDIT\nrules: [{}]"), false,
			func(v Verdict) []Hit { return v.Audit }},
		{"dry-run false AUDIT", apAnn("foo", "broken", `istio.io/dry-run: "false"`, "action: AUDIT\nrules: [{}]"), false,
			func(v Verdict) []Hit { return v.Audit }},
		{"CUSTOM", ap("foo", "broken", "action: CUSTOM\nprovider: {name: ext}\n"+badPorts), false, func(v Verdict) []Hit { return v.Custom }},
		{"dry-run DENY", apAnn("foo", "broken", `istio.io/dry-run: "true"`, "action: DENY\n"+badPorts), false,
			func(v Verdict) []Hit { return v.DryRunDeny }},
		{"dry-run ALLOW", apAnn("foo", "broken", `istio.io/dry-run: "true"`, badPorts), false,
			func(v Verdict) []Hit { return v.DryRunAllow }},
	} {
		t.Run(c.name, func(t *testing.T) {
			set := &Set{AuthorizationPolicies: []*secv1.AuthorizationPolicy{storedAP(t, c.doc)}, Pods: []*corev1.Pod{webPod()}}
			s, err := Compile(context.Background(), Mesh{}, set, 1)
			if err != nil {
				t.Fatal(err)
			}
			if len(s.Failed) != 1 || s.Failed[0].ID != "foo/broken" || s.Failed[0].Denies != c.denies {
				t.Fatalf("Failed = %+v, want foo/broken with Denies %v", s.Failed, c.denies)
			}
			warned := ""
			for _, w := range s.Warnings {
				if strings.Contains(w, "foo/broken") && strings.Contains(w, "cannot be evaluated") {
					warned = w
				}
			}
			if warned == "" || strings.Contains(warned, denied) != c.denies {
				t.Errorf("warning %q: want it to say %q: %v", warned, denied, c.denies)
			}
			if !c.denies && !strings.Contains(warned, "nothing is denied") {
				t.Errorf("warning %q: want it to say nothing is denied", warned)
			}
			v, err := s.Check(context.Background(), sniReq(mtlsConn, nil, false))
			if err != nil {
				t.Fatal(err)
			}
			if c.denies {
				if v.Allowed || v.Policy != "foo/broken" || v.Rule != FailClosedRule {
					t.Errorf("verdict %+v, want denied by foo/broken, rule %d", v, FailClosedRule)
				}
				return
			}
			if !v.Allowed {
				t.Errorf("verdict %+v, want allowed: a reporting-only policy denies nothing", v)
			}
			if hits := c.hits(v); len(hits) != 1 || hits[0] != (Hit{Policy: "foo/broken", Rule: FailClosedRule}) {
				t.Errorf("reported hits %+v, want foo/broken rule %d for every request", hits, FailClosedRule)
			}
		})
	}
}

// TestUnknownAttributeOnlyForPoliciesOfTheWorkload: a missing attribute makes
// a request undecidable only where a deciding policy that may apply to its
// workload reads it (no selector, or matchLabels its labels hold); a
// requestPrincipals ALLOW or an SNI DENY selecting another workload of the
// namespace leaves the request to be decided as Istio's RBAC filter of its
// own workload would (none of those policies is in it). A destination
// missing from the Pod index may be any workload: denied.
func TestUnknownAttributeOnlyForPoliciesOfTheWorkload(t *testing.T) {
	unknown := want{false, "DENY", "", -1}
	noMetadata := func(r *Request) { r.NoMetadata = true }
	noSNI := func(r *Request) { r.SNIUnknown = true }
	reqP := "rules: [{from: [{source: {requestPrincipals: [\"*\"]}}]}]"
	denySNI := "action: DENY\nrules: [{when: [{key: connection.sni, values: [\"*\"]}]}]"
	runCases(t, Mesh{}, []tc{
		{"ALLOW requestPrincipals of another workload, no metadata", ap("foo", "a", "selector: {matchLabels: {app: other}}\n"+reqP),
			http(noMetadata), open},
		{"ALLOW requestPrincipals of this workload, no metadata", ap("foo", "a", "selector: {matchLabels: {app: web}}\n"+reqP),
			http(noMetadata), unknown},
		{"ALLOW requestPrincipals of the namespace, no metadata", ap("foo", "a", reqP), http(noMetadata), unknown},
		{"ALLOW requestPrincipals with a label the workload lacks", ap("foo", "a", "selector: {matchLabels: {app: web, version: v1}}\n"+reqP),
			http(noMetadata), open},
		{"DENY sni of another workload, SNI unknown", ap("foo", "d", "selector: {matchLabels: {app: other}}\n"+denySNI),
			http(from(pFoo), noSNI), open},
		{"DENY sni of this workload, SNI unknown", ap("foo", "d", "selector: {matchLabels: {app: web}}\n"+denySNI),
			http(from(pFoo), noSNI), unknown},
		{"root-namespace DENY sni of this workload's labels", ap("istio-system", "d", "selector: {matchLabels: {app: web}}\n"+denySNI),
			http(from(pFoo), noSNI), unknown},
		{"another workload's policy beside this one's GET ALLOW", ap("foo", "a", "selector: {matchLabels: {app: other}}\n"+reqP) +
			ap("foo", "g", "selector: {matchLabels: {app: web}}\nrules: [{to: [{operation: {methods: [GET]}}]}]"),
			http(noMetadata), allowedBy("foo/g", 0)},
	})
	s := compileCase(t, Mesh{}, ap("foo", "d", "selector: {matchLabels: {app: other}}\n"+denySNI), webPod())
	req := sniReq(mtlsConn, nil, false)
	req.Attributes.Destination.Address = sockAddr("10.0.9.9", 8080) // no Pod: namespace foo from the principal
	v, err := s.Check(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if v.Allowed || !strings.Contains(v.Reason, "fail closed") {
		t.Errorf("unknown destination under a selecting SNI DENY: %+v, want denied (fail closed)", v)
	}
}
