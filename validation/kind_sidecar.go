package validation

import (
	"fmt"
	"net"
	"strconv"
	"strings"

	networking "istio.io/api/networking/v1alpha3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// validateSidecar implements Istio's ValidateSidecar
// (pkg/config/validation/validation.go).
func validateSidecar(meta metav1.ObjectMeta, sc *networking.Sidecar, f *Findings) {
	sp := field.NewPath("spec")
	khNetworkingSelector(sp.Child("workloadSelector"), sc.GetWorkloadSelector(), "sidecar", f)
	if len(sc.GetIngress()) == 0 && len(sc.GetEgress()) == 0 && sc.GetOutboundTrafficPolicy() == nil && sc.GetInboundConnectionPool() == nil {
		f.Error(sp, nil, "sidecar: empty configuration provided: set at least one of ingress, egress, outboundTrafficPolicy or inboundConnectionPool")
	}

	ingressPorts := map[uint32]int{}
	for i, in := range sc.GetIngress() {
		scIngress(sp.Child("ingress").Index(i), in, ingressPorts, i, f)
	}
	if cp := sc.GetInboundConnectionPool(); cp != nil {
		validateConnectionPool(sp.Child("inboundConnectionPool"), cp, f)
	}

	udsBinds := map[string]int{}
	ipPorts := map[string]int{}
	egress := sc.GetEgress()
	catchAll := -1
	for i, eg := range egress {
		ep := sp.Child("egress").Index(i)
		if eg == nil {
			f.Required(ep, "egress listener must not be null")
			continue
		}
		if eg.GetPort() == nil {
			if catchAll >= 0 {
				f.Error(ep, nil, fmt.Sprintf("sidecar: only one egress listener without a port (catch-all) is allowed, egress[%d] is one already", catchAll))
			} else if i != len(egress)-1 {
				f.Error(ep, nil, "sidecar: the egress listener with empty port should be the last listener in the list")
			}
			if catchAll < 0 {
				catchAll = i
			}
		} else {
			scEgressPort(ep, eg, udsBinds, ipPorts, i, f)
		}
		scEgressHosts(ep.Child("hosts"), eg.GetHosts(), meta.Namespace, f)
	}

	if otp := sc.GetOutboundTrafficPolicy(); otp != nil && otp.GetEgressProxy() != nil {
		pp := sp.Child("outboundTrafficPolicy", "egressProxy")
		if otp.GetMode() != networking.OutboundTrafficPolicy_ALLOW_ANY {
			f.Error(pp, nil, "egress proxy can only be set with outboundTrafficPolicy mode ALLOW_ANY")
		}
		d := otp.GetEgressProxy()
		validateFQDN(pp.Child("host"), d.GetHost(), f)
		if d.GetSubset() != "" && !isDNSLabel(d.GetSubset()) {
			f.Error(pp.Child("subset"), d.GetSubset(), "subset name must be a DNS-1123 label")
		}
		if d.GetPort() == nil {
			f.Required(pp.Child("port"), "egress proxy port is required")
		} else {
			validatePort(pp.Child("port", "number"), d.GetPort().GetNumber(), f)
		}
	}
}

func scIngress(p *field.Path, in *networking.IstioIngressListener, ports map[uint32]int, idx int, f *Findings) {
	if in == nil {
		f.Required(p, "ingress listener must not be null")
		return
	}
	port := in.GetPort()
	if port == nil {
		f.Required(p.Child("port"), "sidecar: port is required for ingress listeners")
	} else {
		pp := p.Child("port")
		scPort(pp, port, f)
		validatePort(pp.Child("number"), port.GetNumber(), f)
		if j, dup := ports[port.GetNumber()]; dup {
			f.Error(pp.Child("number"), int64(port.GetNumber()), fmt.Sprintf("sidecar: ports on IP bound listeners must be unique (also used by ingress[%d])", j))
		} else {
			ports[port.GetNumber()] = idx
		}
	}
	if b := in.GetBind(); b != "" && !isIP(b) {
		f.Error(p.Child("bind"), b, "sidecar: ingress bind must be an IP address")
	}
	if de := in.GetDefaultEndpoint(); de != "" {
		scDefaultEndpoint(p.Child("defaultEndpoint"), de, f)
	}
	if tls := in.GetTls(); tls != nil {
		scIngressTLS(p.Child("tls"), tls, port, f)
	}
	if cp := in.GetConnectionPool(); cp != nil {
		cpp := p.Child("connectionPool")
		validateConnectionPool(cpp, cp, f)
		if cp.GetHttp() != nil && port != nil && !khIsHTTP(port.GetProtocol()) {
			f.Warn(cpp.Child("http"), nil, "HTTP connection pool settings have no effect on a non-HTTP port")
		}
	}
}

// scPort checks the parts common to ingress and egress ports (not the number:
// egress port 0 has a meaning of its own).
func scPort(p *field.Path, port *networking.SidecarPort, f *Findings) {
	if port.GetTargetPort() != 0 {
		f.Error(p.Child("targetPort"), int64(port.GetTargetPort()), "targetPort has no impact on Sidecars")
	}
	if port.GetName() != "" {
		validatePortName(p.Child("name"), port.GetName(), f)
	}
	khProtocol(p.Child("protocol"), port.GetProtocol(), f)
}

// scDefaultEndpoint: unix://<absolute path or @abstract> or host:port with a loopback or
// unspecified host (the application inside the pod).
func scDefaultEndpoint(p *field.Path, de string, f *Findings) {
	if strings.HasPrefix(de, khUnixPrefix) {
		khUnixAddress(p, de, f) // Istio's ValidateUnixAddress: an abstract socket (@name) too
		return
	}
	host, port, err := net.SplitHostPort(de)
	if err != nil {
		f.Error(p, de, "sidecar: defaultEndpoint must be of the form 127.0.0.1:<port>, 0.0.0.0:<port>, [::1]:<port>, [::]:<port>, :<port> or unix://<path>")
		return
	}
	switch host {
	case "127.0.0.1", "0.0.0.0", "::1", "::", "":
	default:
		f.Error(p, de, "sidecar: defaultEndpoint host must be 127.0.0.1, 0.0.0.0, ::1, :: or empty")
	}
	// Istio's ValidateSidecar and pilot read the port with strconv.Atoi, which takes a "+" sign.
	n, err := strconv.ParseUint(strings.TrimPrefix(port, "+"), 10, 32)
	if err != nil {
		f.Error(p, de, fmt.Sprintf("sidecar: defaultEndpoint port %q is not a number", port))
		return
	}
	validatePort(p, uint32(n), f)
}

func scIngressTLS(p *field.Path, tls *networking.ServerTLSSettings, port *networking.SidecarPort, f *Findings) {
	for _, c := range []struct {
		name string
		set  bool
	}{
		{"subjectAltNames", len(tls.GetSubjectAltNames()) > 0},
		{"httpsRedirect", tls.GetHttpsRedirect()},
		{"credentialName", tls.GetCredentialName() != ""},
		{"credentialNames", len(tls.GetCredentialNames()) > 0},
		{"tlsCertificates", len(tls.GetTlsCertificates()) > 0},
	} {
		if c.set {
			f.Error(p.Child(c.name), nil, fmt.Sprintf("sidecar: %s is not supported in ingress TLS settings", c.name))
		}
	}
	switch tls.GetMode() {
	case networking.ServerTLSSettings_ISTIO_MUTUAL, networking.ServerTLSSettings_AUTO_PASSTHROUGH:
		f.Error(p.Child("mode"), tls.GetMode().String(), "sidecar: ISTIO_MUTUAL and AUTO_PASSTHROUGH TLS modes are not supported in ingress TLS settings")
	}
	if port != nil {
		if !khIsTLS(port.GetProtocol()) {
			f.Error(p, nil, fmt.Sprintf("sidecar: ingress tls is only supported on HTTPS or TLS ports, not %q", port.GetProtocol()))
		}
	}
	validateServerTLS(p, tls, f)
}

func scEgressPort(p *field.Path, eg *networking.IstioEgressListener, udsBinds, ipPorts map[string]int, idx int, f *Findings) {
	pp := p.Child("port")
	port := eg.GetPort()
	scPort(pp, port, f)
	bind := eg.GetBind()
	if port.GetNumber() == 0 {
		// Port 0 means a Unix domain socket listener.
		if !strings.HasPrefix(bind, khUnixPrefix) {
			f.Error(p.Child("bind"), bind, "sidecar: ports with 0 value must have a unix domain socket bind address")
		} else {
			khUnixAddress(p.Child("bind"), bind, f)
		}
		if m := eg.GetCaptureMode(); m != networking.CaptureMode_DEFAULT && m != networking.CaptureMode_NONE {
			f.Error(p.Child("captureMode"), m.String(), "sidecar: unix domain socket listeners support only captureMode DEFAULT or NONE")
		}
		if j, dup := udsBinds[bind]; dup {
			f.Error(p.Child("bind"), bind, fmt.Sprintf("sidecar: unix domain socket values for listeners must be unique (also used by egress[%d])", j))
		} else {
			udsBinds[bind] = idx
		}
		return
	}
	validatePort(pp.Child("number"), port.GetNumber(), f)
	if bind != "" && !isIP(bind) {
		f.Error(p.Child("bind"), bind, "sidecar: egress bind must be an IP address (or unix:// with port 0)")
	}
	// Unique by number, whatever the bind (Istio's ValidateSidecar).
	key := strconv.FormatUint(uint64(port.GetNumber()), 10)
	if j, dup := ipPorts[key]; dup {
		f.Error(pp.Child("number"), int64(port.GetNumber()), fmt.Sprintf("sidecar: ports on IP bound listeners must be unique (also used by egress[%d])", j))
	} else {
		ipPorts[key] = idx
	}
}

// scEgressHosts checks ns/host entries and warns, with Istio's texts and in
// Istio's cases (ValidateSidecar, pkg/config/validation/validation.go), about
// entries an earlier one already covers: a host already listed or under an
// earlier ns/*, an ns/* after any entry of its namespace, and "*/*" beside
// another namespace. "." is the Sidecar's own namespace there.
func scEgressHosts(p *field.Path, hosts []string, namespace string, f *Findings) {
	if len(hosts) == 0 {
		f.Required(p, "sidecar: egress listener must contain at least one host")
		return
	}
	seen := map[string]map[string]bool{} // namespace ("." resolved) -> hosts listed
	for i, h := range hosts {
		hp := p.Index(i)
		validateNamespaceHost(hp, h, f)
		ns, host, ok := strings.Cut(h, "/")
		if !ok {
			continue // no namespace: refused by validateNamespaceHost
		}
		if ns == "." {
			ns = namespace
		}
		inNs := seen[ns]
		if inNs == nil {
			inNs = map[string]bool{}
			seen[ns] = inNs
		}
		if (host != "*" && (inNs[host] || inNs["*"])) || (host == "*" && len(inNs) > 0) {
			f.Warn(hp, h, "duplicated egress host: "+h)
		}
		inNs[host] = true
	}
	if seen["*"]["*"] && len(seen) > 1 {
		f.Warn(p, nil, "`*/*` host select all resources, no other hosts can be added")
	}
}
