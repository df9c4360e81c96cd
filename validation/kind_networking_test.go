package validation

import (
	"context"
	"strings"
	"testing"

	"github.com/meshguard/meshguard/internal/manifest"
)

func validateNetYAML(t *testing.T, doc string) Result {
	t.Helper()
	docs, err := manifest.Split([]byte(doc))
	if err != nil || len(docs) != 1 || docs[0].Err != nil {
		t.Fatalf("bad test document: %v %v", err, docs)
	}
	return ValidateObject(context.Background(), docs[0].Object, Options{DefaultNamespace: "default"})
}

type netCase struct {
	name string
	doc  string
	// wantErr / wantWarn: substrings of a rendered error / warning line ("" = expect none).
	wantErr  []string
	wantWarn []string
}

func runNetCases(t *testing.T, header string, cases []netCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := validateNetYAML(t, header+c.doc)
			errs := strings.Join(res.ErrorLines(), "\n")
			warns := strings.Join(res.WarningLines(), "\n")
			if len(c.wantErr) == 0 && errs != "" {
				t.Errorf("unexpected errors:\n%s", errs)
			}
			for _, w := range c.wantErr {
				if !strings.Contains(errs, w) {
					t.Errorf("want error containing %q, got:\n%s", w, errs)
				}
			}
			if len(c.wantWarn) == 0 && warns != "" {
				t.Errorf("unexpected warnings:\n%s", warns)
			}
			for _, w := range c.wantWarn {
				if !strings.Contains(warns, w) {
					t.Errorf("want warning containing %q, got:\n%s", w, warns)
				}
			}
		})
	}
}

const vsHeader = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
  namespace: default
spec:
`

func TestVirtualService(t *testing.T) {
	runNetCases(t, vsHeader, []netCase{
		{name: "canary 90/10", doc: `
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v1}
      weight: 90
    - destination: {host: reviews, subset: v2}
      weight: 10`},
		{name: "negative weight and bad subset with paths", doc: `
  hosts: [reviews]
  http:
  - match: [{uri: {prefix: /a}}]
    route: [{destination: {host: reviews}}]
  - route:
    - destination: {host: reviews, subset: V_2}
      weight: -15`,
			wantErr: []string{
				"VirtualService default/reviews: spec.http[1].route[0].weight: Invalid value: -15: weight -15 < 0",
				"spec.http[1].route[0].destination.subset",
			}},
		{name: "no routes", doc: `
  hosts: [reviews]`, wantErr: []string{"spec: Required value: http, tcp or tls must be provided"}},
		{name: "delegate with gateways", doc: `
  gateways: [gw]
  http: [{route: [{destination: {host: a}}]}]`, wantErr: []string{"spec.gateways", "delegate virtual service must have no gateways"}},
		{name: "mesh wildcard host", doc: `
  hosts: ["*"]
  http: [{route: [{destination: {host: a}}]}]`, wantErr: []string{"wildcard host * is not allowed for virtual services bound to the mesh gateway"}},
		{name: "gateway wildcard host ok", doc: `
  hosts: ["*"]
  gateways: [istio-system/gw]
  http: [{route: [{destination: {host: a}}]}]`},
		{name: "overlapping hosts", doc: `
  hosts: ["*.foo.com", "a.foo.com"]
  http: [{route: [{destination: {host: a}}]}]`, wantErr: []string{"duplicate hosts in virtual service: *.foo.com & a.foo.com"}},
		{name: "IP host accepted, IP destination explained", doc: `
  hosts: ["10.0.0.2"]
  http: [{route: [{destination: {host: 10.0.0.3}}]}]`, wantErr: []string{"spec.http[0].route[0].destination.host", "not an IP address"}},
		{name: "legacy gateway name warns", doc: `
  hosts: [a.com]
  gateways: [gw.istio-system]
  http: [{route: [{destination: {host: a}}]}]`, wantWarn: []string{`prefer the <namespace>/<name> format: "istio-system/gw"`}},
		{name: "route conflicts", doc: `
  hosts: [a]
  http:
  - redirect: {uri: /x}
    route: [{destination: {host: a}}]
    fault: {abort: {httpStatus: 600}}`, wantErr: []string{"HTTP route cannot contain both route and redirect", "HTTP route cannot contain both fault and redirect", "spec.http[0].fault.abort.httpStatus: Invalid value: 600"}},
		{name: "nothing to do", doc: `
  hosts: [a]
  http: [{timeout: 5s}]`, wantErr: []string{"HTTP route, redirect or direct_response is required"}},
		{name: "regex and headers", doc: `
  hosts: [a]
  http:
  - match:
    - uri: {regex: "(?!x)"}
      headers:
        "bad header": {exact: x}
        x-ok: {prefix: ""}
    route: [{destination: {host: a}}]`, wantErr: []string{"spec.http[0].match[0].uri.regex", "RE2", `spec.http[0].match[0].headers[bad header]`, "prefix match must not be empty"}},
		{name: "jwt claim routing needs gateway", doc: `
  hosts: [a]
  http:
  - match: [{headers: {"@request.auth.claims.group": {exact: admin}}}]
    route: [{destination: {host: a}}]`, wantErr: []string{"only supported for gateway"}},
		{name: "header ops", doc: `
  hosts: [a]
  http:
  - headers:
      request: {set: {":path": x, "x-a": "abc%123", host: d}}
      response: {remove: [host]}
    rewrite: {authority: b}
    route:
    - destination: {host: a}
      headers: {request: {set: {host: c}}}`, wantErr: []string{"pseudo-headers other than :authority", "Un-terminated variable expression '%123'", "cannot set Host header", "authority header cannot be set multiple times"}},
		// Istio's validateAuthorityRewrite counts the route's rewrite and headers only; each
		// destination may set its own authority; header names need not be tokens
		// (ValidateHTTPHeaderOperationName); a root route (delegate) conflicts only with
		// redirect and route (validateHTTPRouteConflict).
		{name: "authority per destination and non-token header names", doc: `
  hosts: [a]
  http:
  - route:
    - {destination: {host: a.x.com}, weight: 50, headers: {request: {set: {host: a.x.com}}}}
    - {destination: {host: b.x.com}, weight: 50, headers: {request: {set: {host: b.x.com}}}}
    rewrite: {authority: c.x.com}
    headers: {response: {set: {"x(y)": v}}, request: {add: {"x@y": v}, remove: ["a b"]}}`},
		// Istio checks no delegate reference (validateHTTPRouteConflict, CRD);
		// meshguard refuses one that can name no VirtualService
		// (docs/compatibility.md "VirtualService").
		{name: "delegate reference names (stricter than Istio)", doc: `
  hosts: [a]
  http:
  - match: [{uri: {prefix: /a}}]
    delegate: {}
  - delegate: {name: Bad_Name, namespace: "Prod"}`, wantErr: []string{
			"spec.http[0].delegate.name: Required value: delegate name is required",
			`spec.http[1].delegate.name: Invalid value: "Bad_Name"`,
			`spec.http[1].delegate.namespace: Invalid value: "Prod"`}},
		// Header values are parsed as Istio's validateHeaderValue
		// (header_value_validator.go, a port of Envoy's header_parser.cc):
		// arguments in (...) may hold '%', a JSON array must be well formed,
		// and "%VAR()%" never ends its argument.
		{name: "header value variable expressions", doc: `
  hosts: [a]
  http:
  - route: [{destination: {host: a}}]
    headers:
      request:
        set:
          ok1: "%REQ(x%y)%"
          ok2: '%DYNAMIC_METADATA(["a", "b"])% and 100%%'
          bad1: '%VAR(["a"] x)%'
          bad2: '%VAR([x])%'
          bad3: '%VAR()%'
          bad4: '%VAR(["a" b])%'`, wantErr: []string{
			`spec.http[0].headers.request.set[bad1]: Invalid value: "%VAR([\"a\"] x)%": Expecting ')' or whitespace`,
			`spec.http[0].headers.request.set[bad2]: Invalid value: "%VAR([x])%": Expecting '"'`,
			`spec.http[0].headers.request.set[bad3]: Invalid value: "%VAR()%": Un-terminated variable expression '%VAR()%'`,
			`spec.http[0].headers.request.set[bad4]: Invalid value: "%VAR([\"a\" b])%": Expecting ',', ']', or whitespace`}},
		// Istio's validateGatewayNames returns after the first name without
		// a "/" (such as "mesh"), leaving the rest unchecked; meshguard checks
		// every name (docs/compatibility.md "VirtualService").
		{name: "gateway names after mesh are checked (stricter than Istio)", doc: `
  hosts: [a]
  gateways: [mesh, "bad_ns/gw"]
  http: [{route: [{destination: {host: a}}]}]`, wantErr: []string{`spec.gateways[1]: Invalid value: "bad_ns/gw"`}},
		{name: "pseudo-header match keys as written", doc: `
  hosts: [a]
  http:
  - match: [{headers: {":METHOD": {exact: GET}}}]
    route: [{destination: {host: a}}]`, wantErr: []string{`[:METHOD]`}},
		{name: "retries and timeout", doc: `
  hosts: [a]
  http:
  - retries: {attempts: 0, perTryTimeout: 1s, retryOn: "5xx,bogus,503"}
    route: [{destination: {host: a}}]`, wantErr: []string{"attempts are set to 0 (disabled)", `"bogus" is not a valid retryOn policy`}},
		// Istio's validateHTTPRetry splits retryOn on "," and checks each
		// part as written: a blank after the comma is part of the policy name.
		{name: "retryOn parts are not trimmed", doc: `
  hosts: [a]
  http:
  - retries: {attempts: 2, retryOn: "5xx, connect-failure,503"}
    route: [{destination: {host: a}}]`, wantErr: []string{`spec.http[0].retries.retryOn: Invalid value: "5xx, connect-failure,503": " connect-failure" is not a valid retryOn policy`}},
		// Istio's validateHTTPFaultInjectionDelay accepts a delay without a
		// delay type (as the CRD does); pilot then injects no delay.
		{name: "fault delay without fixedDelay", doc: `
  hosts: [a]
  http:
  - fault: {delay: {percentage: {value: 10}}}
    route: [{destination: {host: a}}]`, wantWarn: []string{"spec.http[0].fault.delay: delay has no fixedDelay and has no effect"}},
		{name: "fault percentage and grpc", doc: `
  hosts: [a]
  http:
  - fault:
      abort: {grpcStatus: NOPE, percentage: {value: 101}}
    route: [{destination: {host: a}}]`, wantErr: []string{"percentage 101 is neither 0.0, nor in range [0.0001, 100.0]", "not a gRPC status code"}},
		{name: "cors", doc: `
  hosts: [a]
  http:
  - corsPolicy:
      allowOrigins: [{exact: ""}]
      allowMethods: [GET, FETCH]
      maxAge: 1500ms
    route: [{destination: {host: a}}]`, wantErr: []string{"allowOrigins exact match must not be empty", "spec.http[0].corsPolicy.allowMethods[1]", "seconds precision"}},
		{name: "redirect checks", doc: `
  hosts: [a]
  http:
  - match: [{uri: {exact: /a}}]
    redirect: {prefixRewrite: /b, redirectCode: 200, scheme: ftp}`, wantErr: []string{"prefixRewrite requires every URI match to be a prefix match", "redirect code must be in the range 300..399", "scheme must be http or https"}},
		{name: "direct response large body warns", doc: `
  hosts: [a]
  http:
  - directResponse: {status: 200, body: {string: "` + strings.Repeat("x", 120*1024) + `"}}`, wantWarn: []string{"large direct_responses"}},
		{name: "mirrors", doc: `
  hosts: [a]
  http:
  - mirror: {host: b}
    mirrors: [{destination: {host: c}, percentage: {value: 150}}]
    mirrorPercent: 50
    route: [{destination: {host: a}}]`, wantErr: []string{"cannot set both mirror and mirrors", "spec.http[0].mirrors[0].percentage.value"}, wantWarn: []string{"deprecated setting mirrorPercent"}},
		{name: "zero total weight", doc: `
  hosts: [a]
  http:
  - route:
    - {destination: {host: a, subset: v1}, weight: 0}
    - {destination: {host: a, subset: v2}, weight: 0}`, wantErr: []string{"total destination weight = 0"}},
		{name: "single zero weight ok", doc: `
  hosts: [a]
  http:
  - route:
    - {destination: {host: a}, weight: 0}`},
		{name: "unreachable rules warn", doc: `
  hosts: [a]
  http:
  - match: [{uri: {prefix: /a}}]
    route: [{destination: {host: a}}]
  - match: [{uri: {prefix: /a}, name: again}]
    route: [{destination: {host: a}}]
  - route: [{destination: {host: a}}]
  - route: [{destination: {host: b}}]`, wantWarn: []string{`spec.http[1].match[0]: virtualService rule #1 match "again" is not used (duplicate/overlapping match in rule #0)`,
			"spec.http[1]: virtualService rule #1 not used (all matches used by prior rules)",
			"spec.http[3]: virtualService rule #3 not used (only the last rule can have no matches)"}},
		{name: "shorter prefix first makes the longer unreachable", doc: `
  hosts: [a]
  http:
  - match: [{uri: {prefix: /api}, headers: {x: {exact: "1"}}}]
    route: [{destination: {host: a}}]
  - match: [{uri: {prefix: /api/v1}, headers: {x: {exact: "1"}}}, {uri: {prefix: /api/v2}}]
    route: [{destination: {host: b}}]
  - match: [{uri: {exact: /api/x}, headers: {x: {exact: "1"}}}]
    route: [{destination: {host: b}}]`, wantWarn: []string{"spec.http[1].match[0]: virtualService rule #1 match #0 of prefix /api/v1 is not used (duplicate/overlapping match in rule #0 of prefix /api on #0)"}},
		{name: "longer prefix first is fine", doc: `
  hosts: [a]
  http:
  - match: [{uri: {prefix: /api/v1}}]
    route: [{destination: {host: a}}]
  - match: [{uri: {prefix: /api}}]
    route: [{destination: {host: b}}]`},
		{name: "tls sni must be a VS host", doc: `
  hosts: [a.com]
  gateways: [gw]
  tls:
  - match: [{sniHosts: [b.com], port: 443}]
    route: [{destination: {host: a.com}}]`, wantErr: []string{`SNI host "b.com" is not a compatible subset of any of the virtual service hosts: [a.com]`}},
		{name: "tcp subnets", doc: `
  hosts: [a.com]
  tcp:
  - match: [{destinationSubnets: [10.0.0.0/40], port: 0}]
    route: [{destination: {host: a.com, port: {number: 70000}}}]`, wantErr: []string{"spec.tcp[0].match[0].destinationSubnets[0]", "spec.tcp[0].route[0].destination.port.number"}},
		{name: "exportTo", doc: `
  hosts: [a]
  exportTo: ["*", "."]
  http: [{route: [{destination: {host: a}}]}]`, wantErr: []string{"spec.exportTo[0]"}},
		{name: "unknown field named", doc: `
  hosts: [a]
  htttp: []
  http: [{route: [{destination: {host: a}}]}]`, wantErr: []string{`spec.htttp: unknown field "spec.htttp"`}},
		{name: "CRD duration rule", doc: `
  hosts: [a]
  http: [{timeout: 0s, route: [{destination: {host: a}}]}]`, wantErr: []string{"spec.http[0].timeout", "must be a valid duration greater than 1ms"}},
	})
}

const drHeader = `apiVersion: networking.istio.io/v1beta1
kind: DestinationRule
metadata:
  name: reviews
  namespace: default
spec:
`

func TestDestinationRule(t *testing.T) {
	runNetCases(t, drHeader, []netCase{
		{name: "subsets ok", doc: `
  host: reviews
  trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}`},
		{name: "duplicate and bad subsets", doc: `
  host: reviews
  subsets:
  - {name: v1}
  - {name: v1}
  - {name: V_2, labels: {"bad key!": x}}`, wantErr: []string{"duplicate subset names: v1", "subset name is invalid", `invalid tag key: "bad key!"`}},
		{name: "empty traffic policy", doc: `
  host: reviews
  trafficPolicy: {}`, wantErr: []string{"traffic policy must have at least one field"}},
		{name: "IP host", doc: `
  host: 10.1.1.1`, wantErr: []string{"spec.host", "not an IP address"}},
		{name: "connection pool", doc: `
  host: reviews
  trafficPolicy:
    connectionPool:
      http: {http2MaxRequests: -1, h2UpgradePolicy: UPGRADE, useClientProtocol: true, http2KeepAlive: {interval: 1s}}
      tcp: {idleTimeout: 0s}`, wantErr: []string{"spec.trafficPolicy.connectionPool.http.http2MaxRequests", "h2UpgradePolicy UPGRADE", "http2KeepAlive.timeout"}},
		{name: "outlier detection", doc: `
  host: reviews
  trafficPolicy:
    outlierDetection: {consecutiveErrors: 5, consecutiveLocalOriginFailures: 2, maxEjectionPercent: 101}`, wantErr: []string{"splitExternalLocalOriginErrors", "maxEjectionPercent"}, wantWarn: []string{"deprecated"}},
		{name: "maglev not prime", doc: `
  host: reviews
  trafficPolicy:
    loadBalancer: {consistentHash: {maglev: {tableSize: 1000}, httpHeaderName: x}}`, wantErr: []string{"maglev table size must be a prime number"}},
		{name: "locality", doc: `
  host: reviews
  trafficPolicy:
    loadBalancer:
      localityLbSetting:
        distribute:
        - from: "us-west/*"
          to: {"us-west/zone1/*": 60, "us-east/*": 30}
        failover: [{from: us-east, to: us-east}]`, wantErr: []string{"distribute and failover cannot be set together", "weights must sum to 100", "failover 'from' and 'to' cannot be equal"}, wantWarn: []string{"outlier detection policy must be provided for failover"}},
		// agent.ValidateLocalityLbSetting / validateLocalities: a region
		// covers its zones (with or without "/*"), the "to" localities of one
		// distribute entry may not overlap either, and "reg*" is a region name
		// of its own, not a prefix.
		{name: "locality overlaps as istio", doc: `
  host: reviews
  trafficPolicy:
    loadBalancer:
      localityLbSetting:
        distribute:
        - from: us-west
          to: {"us-west/zone1": 50, "us-west": 50}
        - from: us-west/zone2
          to: {"us-east": 100}`, wantErr: []string{
			`spec.trafficPolicy.loadBalancer.localityLbSetting.distribute[0].to[us-west/zone1]: Invalid value: "us-west/zone1": locality overlaps with "us-west"`,
			`spec.trafficPolicy.loadBalancer.localityLbSetting.distribute[1].from: Invalid value: "us-west/zone2": locality overlaps with distribute[0].from "us-west"`}},
		{name: "locality prefix wildcard is not a prefix match", doc: `
  host: reviews
  trafficPolicy:
    loadBalancer:
      localityLbSetting:
        distribute:
        - from: "us*"
          to: {"us-east": 100}
        - from: us-west
          to: {"us-east": 100}`},
		// Only the bare topology labels conflict with failover (Istio compares
		// the whole failoverPriority entry); "label=value" entries are overrides.
		{name: "failover priority with a value", doc: `
  host: reviews
  trafficPolicy:
    outlierDetection: {consecutive5xxErrors: 1}
    loadBalancer:
      localityLbSetting:
        failover: [{from: us-east, to: us-west}]
        failoverPriority: ["topology.kubernetes.io/region=us-east", "topology.istio.io/network"]`},
		{name: "client tls", doc: `
  host: reviews
  trafficPolicy:
    tls: {mode: MUTUAL}
    portLevelSettings:
    - port: {number: 443}
      tls: {mode: SIMPLE, credentialName: c, caCertificates: /x}
    - port: {number: 80}`, wantErr: []string{"client certificate required", "private key required", "spec.trafficPolicy.portLevelSettings[0].tls.caCertificates", "spec.trafficPolicy.portLevelSettings[1]"}},
		{name: "workload selector export", doc: `
  host: reviews
  workloadSelector: {matchLabels: {app: x}}
  exportTo: [other]`, wantErr: []string{"may only be exported to its own namespace"}},
		{name: "CRD warmup rules", doc: `
  host: reviews
  trafficPolicy: {loadBalancer: {warmup: {minimumPercent: 120, aggression: 0}}}`, wantErr: []string{"spec.trafficPolicy.loadBalancer.warmup.duration: Required value", "spec.trafficPolicy.loadBalancer.warmup.minimumPercent: Invalid value"}},
	})
}

const gwHeader = `apiVersion: networking.istio.io/v1alpha3
kind: Gateway
metadata:
  name: ingress
  namespace: istio-system
spec:
`

func TestGateway(t *testing.T) {
	runNetCases(t, gwHeader, []netCase{
		{name: "https ok", doc: `
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: ["*/bookinfo.example.com"]
    tls: {mode: SIMPLE, credentialName: bookinfo-cert}
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: ["bookinfo.example.com"]
    tls: {httpsRedirect: true}`},
		{name: "istio's four errors with paths", doc: `
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: ["*.example.com"]
  - port: {number: 8443, name: https, protocol: HTTPS}
    hosts: ["*.example.com"]
    tls: {mode: SIMPLE}`, wantErr: []string{
			"spec.servers[0].tls: Required value: server must have TLS settings for HTTPS/TLS protocols",
			"spec.servers[1].tls.serverCertificate: Required value: SIMPLE TLS requires a server certificate",
			"spec.servers[1].tls.privateKey: Required value: SIMPLE TLS requires a private key",
			"spec.servers[1].port.name", "port names in servers must be unique: duplicate name https"}},
		{name: "no servers", doc: `
  selector: {istio: ingressgateway}`, wantErr: []string{"gateway must have at least one server"}},
		{name: "selector wildcard (stricter than Istio)", doc: `
  selector: {"istio": "ingress*"}
  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ["*"]}]`, wantErr: []string{"spec.selector[istio]", "wildcard is not supported in selector"}},
		{name: "server checks", doc: `
  servers:
  - port: {number: 80, name: http, protocol: FOO, targetPort: 8080}
    bind: not-an-ip
    hosts: ["ns/short", "bad_ns/a.com"]`, wantErr: []string{"unrecognized protocol", "targetPort has no impact on Gateways", "spec.servers[0].bind", "short names (non FQDN) are not allowed", "spec.servers[0].hosts[1]"}},
		// Istio's protocol.Parse: ASCII case-insensitive only.
		{name: "protocol that only upper-cases to HTTPS", doc: `
  servers:
  - port: {number: 443, name: https, protocol: "httpſ"}
    hosts: ["*"]`, wantErr: []string{`spec.servers[0].port.protocol: Invalid value: "httpſ": unrecognized protocol`}},
		{name: "uds bind port 0", doc: `
  servers:
  - port: {number: 0, name: uds, protocol: HTTP}
    bind: unix:///var/run/gw.sock
    hosts: ["*"]`},
		// Istio's validateServerBind and ValidateUnixAddress.
		{name: "uds bind abstract socket", doc: `
  servers:
  - port: {number: 0, name: uds, protocol: HTTP}
    bind: unix://@gw
    hosts: ["*"]`},
		{name: "uds bind checks", doc: `
  servers:
  - port: {number: 8, name: uds, protocol: HTTP}
    bind: unix:///var/gw.sock
    hosts: ["*"]
  - port: {number: 0, name: dir, protocol: HTTP}
    bind: unix:///var/
    hosts: ["*"]`, wantErr: []string{"spec.servers[0].port.number: Invalid value: 8: port number must be 0 for unix domain socket",
			"spec.servers[1].bind: Invalid value: \"unix:///var/\": UDS may not be a dir"}},
		// Istio's validateServer: an HTTP-family server may carry a
		// passthrough TLS block (the default mode) without certificates.
		{name: "plain-text http family with passthrough tls", doc: `
  servers:
  - port: {number: 80, name: http2, protocol: HTTP2}
    hosts: ["*"]
    tls: {httpsRedirect: true}
  - port: {number: 81, name: grpc, protocol: GRPC}
    hosts: ["*"]
    tls: {httpsRedirect: true}
  - port: {number: 82, name: http, protocol: HTTP}
    hosts: ["*"]
    tls: {mode: PASSTHROUGH}
  - port: {number: 83, name: http-auto, protocol: HTTP}
    hosts: ["*"]
    tls: {mode: AUTO_PASSTHROUGH}`},
		{name: "plain-text http family with terminating tls", doc: `
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: ["*"]
    tls: {mode: SIMPLE, httpsRedirect: true, credentialName: x}
  - port: {number: 81, name: http2, protocol: HTTP2}
    hosts: ["*"]
    tls: {httpsRedirect: true, serverCertificate: /a}`, wantErr: []string{
			"spec.servers[0].tls: Invalid value: server cannot have TLS settings for plain text HTTP ports (protocol HTTP",
			"spec.servers[1].tls: Invalid value: server cannot have TLS settings for plain text HTTP ports (protocol HTTP2"},
			wantWarn: []string{"spec.servers[1].tls.mode: PASSTHROUGH mode does not use certificates"}},
		{name: "tls on tcp", doc: `
  servers:
  - port: {number: 31400, name: tcp, protocol: TCP}
    hosts: ["*"]
    tls: {mode: SIMPLE, credentialName: x}`, wantErr: []string{"cannot have TLS settings for non HTTPS/TLS port protocol TCP"}},
		{name: "tls options", doc: `
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: ["*"]
    tls: {mode: ISTIO_MUTUAL, credentialName: x}
  - port: {number: 444, name: tls, protocol: TLS}
    hosts: ["*"]
    tls: {mode: PASSTHROUGH, serverCertificate: /a, privateKey: /b, minProtocolVersion: TLSV1_0, cipherSuites: [FOO]}
  - port: {number: 445, name: mtls, protocol: HTTPS}
    hosts: ["*"]
    tls: {mode: MUTUAL, serverCertificate: /a, privateKey: /b, caCrl: /c}`, wantErr: []string{"ISTIO_MUTUAL TLS cannot have", "MUTUAL TLS requires a client CA bundle"},
			wantWarn: []string{"PASSTHROUGH mode does not use certificates", "ignoring invalid cipher suites: [FOO]"}},
		// Istio's validateTLSOptions does not return for the passthrough
		// modes: two certificate sources, or a CRL with credentialName, are
		// still refused there, and a lone caCrl is warned about.
		{name: "passthrough tls keeps the source and crl rules", doc: `
  servers:
  - port: {number: 443, name: tls, protocol: TLS}
    hosts: ["*"]
    tls: {mode: PASSTHROUGH, credentialName: c, serverCertificate: /a, privateKey: /b}
  - port: {number: 444, name: auto, protocol: TLS}
    hosts: ["*"]
    tls: {mode: AUTO_PASSTHROUGH, credentialName: c, caCrl: /crl}
  - port: {number: 445, name: crl, protocol: TLS}
    hosts: ["*"]
    tls: {mode: PASSTHROUGH, caCrl: /crl}`, wantErr: []string{
			"spec.servers[0].tls: Invalid value: only one of credentialName, credentialNames, serverCertificate/privateKey or tlsCertificates may be set",
			"spec.servers[1].tls.caCrl: Invalid value: caCrl cannot be set together with credentialName"},
			wantWarn: []string{"spec.servers[0].tls.mode: PASSTHROUGH mode does not use certificates",
				"spec.servers[1].tls.mode: AUTO_PASSTHROUGH mode does not use certificates",
				"spec.servers[2].tls.mode: PASSTHROUGH mode does not use certificates"}},
		// Istio's validateTLSOptions counts serverCertificate/privateKey as a
		// certificate source only when both are set.
		{name: "half a key pair is not a second certificate source", doc: `
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: ["*"]
    tls: {mode: SIMPLE, credentialName: c, serverCertificate: /a}
  - port: {number: 444, name: https2, protocol: HTTPS}
    hosts: ["*"]
    tls:
      mode: SIMPLE
      privateKey: /b
      tlsCertificates: [{serverCertificate: /c, privateKey: /d}]`},
		// Istio's validateSidecarOrGatewayHostnamePart: the short-name rule
		// comes first, so an IP host is allowed only with a dot (IPv4).
		{name: "gateway ip hosts", doc: `
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: ["10.0.0.1", "ns/192.168.1.1", "2001:db8::1", "ns/::1"]`, wantErr: []string{
			`spec.servers[0].hosts[2]: Invalid value: "2001:db8::1": short names (non FQDN) are not allowed`,
			`spec.servers[0].hosts[3]: Invalid value: "ns/::1": short names (non FQDN) are not allowed`}},
		// validateTLSOptions returns for SIMPLE/MUTUAL with credentialName
		// before its CRL rule, so Istio accepts these; meshguard keeps the
		// rule (docs/compatibility.md "Gateway").
		{name: "caCrl with credentialName (stricter than Istio)", doc: `
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: ["*"]
    tls: {mode: MUTUAL, credentialName: c, caCrl: /crl}`, wantErr: []string{"spec.servers[0].tls.caCrl: Invalid value: caCrl cannot be set together with credentialName"}},
		// Istio's validateTLSOptions with security.IsValidCipherSuite: "",
		// "ALL" and entries not starting with a letter or digit (BoringSSL
		// operators, "[A|B]" groups) pass to Envoy unchecked; only unknown
		// names are ignored, and repeated valid ones warned about separately.
		{name: "cipher suite entries as istio filters them", doc: `
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: ["*"]
    tls:
      mode: SIMPLE
      credentialName: c
      cipherSuites: [ALL, "[ECDHE-ECDSA-AES128-GCM-SHA256|ECDHE-ECDSA-CHACHA20-POLY1305]", "-AES128-SHA", "!aNULL", AES128-SHA, AES128-SHA, BOGUS]`,
			wantWarn: []string{"spec.servers[0].tls.cipherSuites: ignoring invalid cipher suites: [BOGUS]",
				"spec.servers[0].tls.cipherSuites: ignoring duplicate cipher suites: [AES128-SHA]"}},
		{name: "gateway name with dot", doc: `
  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ["*"]}]`},
	})
	res := validateNetYAML(t, `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: a.b}
spec:
  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ["*"]}]`)
	if !strings.Contains(strings.Join(res.ErrorLines(), "\n"), "metadata.name: Invalid value: \"a.b\": invalid gateway name") {
		t.Errorf("dotted gateway name accepted: %v", res.ErrorLines())
	}
}
