package validation

import (
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	networking "istio.io/api/networking/v1alpha3"
)

func TestValidateSidecar(t *testing.T) {
	egressAll := []*networking.IstioEgressListener{{Hosts: []string{"./*", "istio-system/*"}}}
	in := func(l *networking.IstioIngressListener) *networking.Sidecar {
		return &networking.Sidecar{Ingress: []*networking.IstioIngressListener{l}}
	}
	httpPort := &networking.SidecarPort{Number: 9080, Protocol: "HTTP", Name: "http"}
	httpsPort := &networking.SidecarPort{Number: 8443, Protocol: "HTTPS", Name: "https"}
	runKindCases(t, validateSidecar, []kindCase{
		{name: "docs example", spec: &networking.Sidecar{
			WorkloadSelector: &networking.WorkloadSelector{Labels: map[string]string{"app": "ratings"}},
			Ingress:          []*networking.IstioIngressListener{{Port: httpPort, DefaultEndpoint: "127.0.0.1:8080"}, {Port: &networking.SidecarPort{Number: 9090}, DefaultEndpoint: "unix:///var/run/app.sock"}},
			Egress: []*networking.IstioEgressListener{
				{Port: &networking.SidecarPort{Number: 9080, Protocol: "HTTP", Name: "egresshttp"}, Hosts: []string{"prod-us1/*"}},
				{Hosts: []string{"istio-system/*"}}},
			OutboundTrafficPolicy: &networking.OutboundTrafficPolicy{Mode: networking.OutboundTrafficPolicy_ALLOW_ANY,
				EgressProxy: &networking.Destination{Host: "egress.example.com", Port: &networking.PortSelector{Number: 443}}}}},
		{name: "empty", spec: &networking.Sidecar{}, errs: []string{"spec: Invalid value: sidecar: empty configuration provided"}},
		{name: "empty selector warns", spec: &networking.Sidecar{WorkloadSelector: &networking.WorkloadSelector{}, Egress: egressAll},
			warns: []string{"spec.workloadSelector: Invalid value: sidecar: workload selector specified without labels, will be applied to all services in namespace"}},
		{name: "selector wildcard", spec: &networking.Sidecar{WorkloadSelector: &networking.WorkloadSelector{Labels: map[string]string{"app": "*"}}, Egress: egressAll},
			errs: []string{"spec.workloadSelector.labels[app]"}},
		// Stricter than Istio (docs/compatibility.md "Shared building blocks"): Istio's
		// ValidateAlphaWorkloadSelector refuses only an empty key and "*".
		{name: "selector label syntax", spec: &networking.Sidecar{WorkloadSelector: &networking.WorkloadSelector{
			Labels: map[string]string{"app": "a b", "bad key": "x"}}, Egress: egressAll},
			errs: []string{`spec.workloadSelector.labels[app]: Invalid value: "a b": invalid tag value`,
				`spec.workloadSelector.labels[bad key]: Invalid value: "bad key": invalid tag key`}},
		{name: "ingress problems", spec: &networking.Sidecar{Ingress: []*networking.IstioIngressListener{
			nil,
			{},
			{Port: &networking.SidecarPort{Number: 80, Protocol: "KAFKA", Name: "Bad_Name", TargetPort: 8080}, Bind: "not-an-ip"},
			{Port: &networking.SidecarPort{Number: 80, Protocol: "HTTP"}, DefaultEndpoint: "10.0.0.1:80"},
			{Port: &networking.SidecarPort{Number: 0}},
		}},
			errs: []string{"spec.ingress[0]: Required value", "spec.ingress[1].port: Required value",
				"spec.ingress[2].port.targetPort: Invalid value: 8080: targetPort has no impact on Sidecars", "spec.ingress[2].port.name",
				"spec.ingress[2].port.protocol", `spec.ingress[2].bind: Invalid value: "not-an-ip"`,
				"spec.ingress[3].port.number: Invalid value: 80: sidecar: ports on IP bound listeners must be unique",
				"spec.ingress[3].defaultEndpoint: Invalid value: \"10.0.0.1:80\": sidecar: defaultEndpoint host must be",
				"spec.ingress[4].port.number: Invalid value: 0"}},
		{name: "default endpoints", spec: &networking.Sidecar{Ingress: []*networking.IstioIngressListener{
			{Port: &networking.SidecarPort{Number: 1}, DefaultEndpoint: "[::1]:8080"},
			{Port: &networking.SidecarPort{Number: 2}, DefaultEndpoint: ":8080"},
			{Port: &networking.SidecarPort{Number: 3}, DefaultEndpoint: "0.0.0.0:0"},
			{Port: &networking.SidecarPort{Number: 4}, DefaultEndpoint: "localhost"},
			{Port: &networking.SidecarPort{Number: 5}, DefaultEndpoint: "unix://rel.sock"},
			// Istio's ValidateSidecar and pilot read the port with strconv.Atoi: "+80" is 80.
			{Port: &networking.SidecarPort{Number: 6}, DefaultEndpoint: "127.0.0.1:+8080"},
			{Port: &networking.SidecarPort{Number: 7}, DefaultEndpoint: "127.0.0.1:-8080"},
		}},
			errs: []string{"spec.ingress[2].defaultEndpoint: Invalid value: 0", "spec.ingress[3].defaultEndpoint", "spec.ingress[4].defaultEndpoint",
				"spec.ingress[6].defaultEndpoint"}},
		{name: "ingress tls ok", spec: in(&networking.IstioIngressListener{Port: httpsPort,
			Tls: &networking.ServerTLSSettings{Mode: networking.ServerTLSSettings_SIMPLE, ServerCertificate: "/c.pem", PrivateKey: "/k.pem"}})},
		{name: "ingress tls unsupported fields", spec: in(&networking.IstioIngressListener{Port: httpPort,
			Tls: &networking.ServerTLSSettings{Mode: networking.ServerTLSSettings_ISTIO_MUTUAL, CredentialName: "c", HttpsRedirect: true, SubjectAltNames: []string{"a"}}}),
			errs: []string{"spec.ingress[0].tls.subjectAltNames", "spec.ingress[0].tls.httpsRedirect", "spec.ingress[0].tls.credentialName",
				"spec.ingress[0].tls.mode: Invalid value: \"ISTIO_MUTUAL\"", "spec.ingress[0].tls: Invalid value: sidecar: ingress tls is only supported on HTTPS or TLS ports",
				"ISTIO_MUTUAL TLS cannot have associated private key"}},
		{name: "ingress tls needs certificates", spec: in(&networking.IstioIngressListener{Port: httpsPort,
			Tls: &networking.ServerTLSSettings{Mode: networking.ServerTLSSettings_MUTUAL, CaCrl: "/crl"}}),
			errs: []string{"spec.ingress[0].tls.serverCertificate: Required value: MUTUAL TLS requires a server certificate",
				"spec.ingress[0].tls.privateKey", "spec.ingress[0].tls.caCertificates"}},
		{name: "ingress connection pool", spec: in(&networking.IstioIngressListener{Port: &networking.SidecarPort{Number: 9000, Protocol: "TCP"},
			ConnectionPool: &networking.ConnectionPoolSettings{
				Http: &networking.ConnectionPoolSettings_HTTPSettings{Http1MaxPendingRequests: -1, IdleTimeout: durationpb.New(0),
					H2UpgradePolicy: networking.ConnectionPoolSettings_HTTPSettings_UPGRADE, UseClientProtocol: true},
				Tcp: &networking.ConnectionPoolSettings_TCPSettings{MaxConnections: -1, IdleTimeout: durationpb.New(0)}}}),
			errs: []string{"spec.ingress[0].connectionPool.http.http1MaxPendingRequests", "spec.ingress[0].connectionPool.http.idleTimeout",
				"spec.ingress[0].connectionPool.http.useClientProtocol", "spec.ingress[0].connectionPool.tcp.maxConnections"},
			warns: []string{"spec.ingress[0].connectionPool.http: Invalid value: HTTP connection pool settings have no effect on a non-HTTP port"}},
		// Istio's validateConnectionPool skips a TCP idleTimeout of 0 whole milliseconds
		// (Envoy reads it as 0: no idle timeout); a negative one is still refused.
		{name: "inbound pool sub-millisecond tcp idle timeout", spec: &networking.Sidecar{InboundConnectionPool: &networking.ConnectionPoolSettings{
			Tcp: &networking.ConnectionPoolSettings_TCPSettings{IdleTimeout: durationpb.New(500 * time.Microsecond)}}}},
		{name: "inbound pool negative tcp idle timeout", spec: &networking.Sidecar{InboundConnectionPool: &networking.ConnectionPoolSettings{
			Tcp: &networking.ConnectionPoolSettings_TCPSettings{IdleTimeout: durationpb.New(-500 * time.Microsecond)}}},
			errs: []string{"spec.inboundConnectionPool.tcp.idleTimeout"}},
		{name: "inbound pool empty and keepalive", spec: &networking.Sidecar{InboundConnectionPool: &networking.ConnectionPoolSettings{}},
			errs: []string{"spec.inboundConnectionPool: Required value: connection pool must have at least one field (http or tcp)"}},
		{name: "http2 keepalive needs both", spec: &networking.Sidecar{InboundConnectionPool: &networking.ConnectionPoolSettings{
			Http: &networking.ConnectionPoolSettings_HTTPSettings{Http2KeepAlive: &networking.ConnectionPoolSettings_HTTPSettings_ConnectionKeepalive{Interval: durationpb.New(1e9)}}}},
			errs: []string{"spec.inboundConnectionPool.http.http2KeepAlive.timeout: Required value: http2KeepAlive needs both interval and timeout"}},
		{name: "egress problems", spec: &networking.Sidecar{Egress: []*networking.IstioEgressListener{
			{Hosts: []string{"*/*"}},
			nil,
			{Port: &networking.SidecarPort{Number: 80, TargetPort: 1}, Bind: "bad", Hosts: []string{"noslash"}},
			{Port: &networking.SidecarPort{Number: 80}, Hosts: []string{"ns/shortname"}},
			{Hosts: []string{"a/*"}},
		}},
			errs: []string{"spec.egress[0]: Invalid value: sidecar: the egress listener with empty port should be the last listener",
				"spec.egress[1]: Required value", "spec.egress[2].port.targetPort", `spec.egress[2].bind: Invalid value: "bad"`,
				`spec.egress[2].hosts[0]: Invalid value: "noslash"`, "spec.egress[3].port.number: Invalid value: 80: sidecar: ports on IP bound listeners must be unique",
				`spec.egress[3].hosts[0]: Invalid value: "ns/shortname": short names (non FQDN) are not allowed`,
				"spec.egress[4]: Invalid value: sidecar: only one egress listener without a port (catch-all) is allowed"}},
		{name: "duplicate egress ports", spec: &networking.Sidecar{Egress: []*networking.IstioEgressListener{
			{Port: &networking.SidecarPort{Number: 80}, Hosts: []string{"*/*"}},
			{Port: &networking.SidecarPort{Number: 80}, Hosts: []string{"*/*"}},
			{Port: &networking.SidecarPort{Number: 80}, Bind: "10.0.0.1", Hosts: []string{"*/*"}},
		}},
			// By number whatever the bind, as Istio's ValidateSidecar keys them.
			errs: []string{"spec.egress[1].port.number: Invalid value: 80: sidecar: ports on IP bound listeners must be unique (also used by egress[0])",
				"spec.egress[2].port.number: Invalid value: 80: sidecar: ports on IP bound listeners must be unique (also used by egress[0])"}},
		// Istio's ValidateUnixAddress: abstract sockets (@name) too; never a directory.
		{name: "UDS abstract and directory", spec: &networking.Sidecar{
			Ingress: []*networking.IstioIngressListener{{Port: httpPort, DefaultEndpoint: "unix://@app"}},
			Egress: []*networking.IstioEgressListener{
				{Port: &networking.SidecarPort{Number: 0}, Bind: "unix://@egress", Hosts: []string{"*/*"}},
				{Port: &networking.SidecarPort{Number: 0}, Bind: "unix:///dir/", Hosts: []string{"*/*"}},
			}},
			errs: []string{"spec.egress[1].bind: Invalid value: \"unix:///dir/\": UDS may not be a dir"}},
		{name: "UDS egress", spec: &networking.Sidecar{Egress: []*networking.IstioEgressListener{
			{Port: &networking.SidecarPort{Number: 0}, Bind: "unix:///var/run/a.sock", Hosts: []string{"*/*"}},
			{Port: &networking.SidecarPort{Number: 0}, Bind: "unix:///var/run/a.sock", Hosts: []string{"*/*"}},
			{Port: &networking.SidecarPort{Number: 0}, Bind: "127.0.0.1", CaptureMode: networking.CaptureMode_IPTABLES, Hosts: []string{"*/*"}},
		}},
			errs: []string{"spec.egress[1].bind: Invalid value: \"unix:///var/run/a.sock\": sidecar: unix domain socket values for listeners must be unique",
				"spec.egress[2].bind", "spec.egress[2].captureMode: Invalid value: \"IPTABLES\""}},
		// Istio's ValidateSidecar warnings, text and cases: a host already listed or
		// under an earlier ns/*, an ns/* after any host of its namespace, and "*/*"
		// beside another namespace (once per listener).
		{name: "egress host warnings", spec: &networking.Sidecar{Egress: []*networking.IstioEgressListener{
			{Hosts: []string{"ns/*", "ns/a.example.com", "ns/*", "*/*"}}}},
			warns: []string{`spec.egress[0].hosts[1]: Invalid value: "ns/a.example.com": duplicated egress host: ns/a.example.com`,
				`spec.egress[0].hosts[2]: Invalid value: "ns/*": duplicated egress host: ns/*`,
				"spec.egress[0].hosts: Invalid value: `*/*` host select all resources, no other hosts can be added"}},
		{name: "egress ns wildcard after a host of its namespace", spec: &networking.Sidecar{Egress: []*networking.IstioEgressListener{
			{Hosts: []string{"foo/a.example.com", "foo/*", "bar/a.example.com", "bar/a.example.com", "baz/*", "qux/b.example.com"}}}},
			warns: []string{`spec.egress[0].hosts[1]: Invalid value: "foo/*": duplicated egress host: foo/*`,
				`spec.egress[0].hosts[3]: Invalid value: "bar/a.example.com": duplicated egress host: bar/a.example.com`}},
		{name: "egress wildcard namespace alone", spec: &networking.Sidecar{Egress: []*networking.IstioEgressListener{
			{Hosts: []string{"*/a.example.com", "*/*", "*/b.example.com"}}}},
			warns: []string{`spec.egress[0].hosts[1]: Invalid value: "*/*": duplicated egress host: */*`,
				`spec.egress[0].hosts[2]: Invalid value: "*/b.example.com": duplicated egress host: */b.example.com`}},
		{name: "egress hosts per listener", spec: &networking.Sidecar{Egress: []*networking.IstioEgressListener{
			{Port: &networking.SidecarPort{Number: 80, Protocol: "HTTP", Name: "http"}, Hosts: []string{"foo/a.example.com"}},
			{Hosts: []string{"foo/*", "*/*"}}}},
			warns: []string{"spec.egress[1].hosts: Invalid value: `*/*` host select all resources, no other hosts can be added"}},
		// Istio's ValidateNamespaceSlashWildcardHostname (agent/validation.go): the
		// namespace is "*", ".", exactly "~" or a DNS label; "~ns" is none of them.
		{name: "egress host namespace tilde", spec: &networking.Sidecar{Egress: []*networking.IstioEgressListener{
			{Hosts: []string{"~/*", "~prod/*", "~x/b.example.com"}}}},
			errs: []string{`spec.egress[0].hosts[1]: Invalid value: "~prod/*": invalid namespace "~prod"`,
				`spec.egress[0].hosts[2]: Invalid value: "~x/b.example.com": invalid namespace "~x"`}},
		// Stricter than Istio (docs/compatibility.md): labels.IsDNS1123Label takes upper
		// case, a Kubernetes namespace name cannot have it.
		{name: "egress host namespace upper case", spec: &networking.Sidecar{Egress: []*networking.IstioEgressListener{
			{Hosts: []string{"Prod/a.example.com"}}}},
			errs: []string{`spec.egress[0].hosts[0]: Invalid value: "Prod/a.example.com": invalid namespace "Prod"`}},
		// Istio's ValidateSidecar reads "." as the Sidecar's namespace when it looks for
		// duplicated egress hosts (TestValidateSidecar "sidecar egress duplicated with
		// wildcarded same namespace ."); runKindCases validates in namespace "default".
		{name: "egress host dot is own namespace", spec: &networking.Sidecar{Egress: []*networking.IstioEgressListener{
			{Hosts: []string{"./*", "default/a.example.com"}}}},
			warns: []string{`spec.egress[0].hosts[1]: Invalid value: "default/a.example.com": duplicated egress host: default/a.example.com`}},
		{name: "egress dot host then own namespace wildcard", spec: &networking.Sidecar{Egress: []*networking.IstioEgressListener{
			{Hosts: []string{"./a.example.com", "default/*", "other/*"}}}},
			warns: []string{`spec.egress[0].hosts[1]: Invalid value: "default/*": duplicated egress host: default/*`}},
		{name: "egress without hosts", spec: &networking.Sidecar{Egress: []*networking.IstioEgressListener{{}}},
			errs: []string{"spec.egress[0].hosts: Required value"}},
		{name: "egress proxy rules", spec: &networking.Sidecar{Egress: egressAll, OutboundTrafficPolicy: &networking.OutboundTrafficPolicy{
			EgressProxy: &networking.Destination{Host: "bad_host", Subset: "V_1"}}},
			errs: []string{"spec.outboundTrafficPolicy.egressProxy: Invalid value: egress proxy can only be set with outboundTrafficPolicy mode ALLOW_ANY",
				"spec.outboundTrafficPolicy.egressProxy.host", "spec.outboundTrafficPolicy.egressProxy.subset", "spec.outboundTrafficPolicy.egressProxy.port: Required value"}},
	})
}

func TestSidecarYAML(t *testing.T) {
	runYAMLCases(t, []yamlCase{
		{name: "valid", doc: `
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: prod}
spec:
  egress:
  - hosts: ["./*", "istio-system/*"]
`},
		{name: "short name", doc: `
apiVersion: networking.istio.io/v1beta1
kind: Sidecar
metadata: {name: default, namespace: prod}
spec:
  egress:
  - hosts: ["prod/reviews"]
`, errs: []string{"Sidecar prod/default", "spec.egress[0].hosts[0]", "short names (non FQDN) are not allowed"}},
	})
}
