package validation

import (
	"fmt"
	"strings"
	"unicode"

	networking "istio.io/api/networking/v1alpha3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Gateway rules: pkg/config/validation/validation.go (Istio ValidateGateway,
// validateServer, validateTLSOptions), plus the selector checks Istio lacks
// (docs/compatibility.md "Gateway": a selector {"istio*":"ingress*"} is
// accepted by Istio).

// Gateway API semantics: istiod marks the Gateways it generates from
// Kubernetes Gateway API listeners with this annotation, and Istio's
// ValidateGateway then accepts a name that is no DNS label and a "~/" server
// host (a listener no route attaches to).
const (
	gatewaySemanticsAnnotation = "internal.istio.io/gateway-semantics"
	gatewaySemanticsGateway    = "gateway"
)

func validateGateway(meta metav1.ObjectMeta, gw *networking.Gateway, f *Findings) {
	gatewaySemantics := meta.Annotations[gatewaySemanticsAnnotation] == gatewaySemanticsGateway
	if meta.Name != "" && !gatewaySemantics && !isLowerDNSLabel(meta.Name) {
		f.Error(field.NewPath("metadata", "name"), meta.Name, "invalid gateway name: must be a DNS-1123 label (no dots)")
	}
	p := field.NewPath("spec")
	// Istio does not check the selector at all (ValidateGateway); a wildcard there
	// silently selects nothing, so reject it like the other selectors.
	checkSelectorEntries(p.Child("selector"), gw.GetSelector(), f)
	if len(gw.GetServers()) == 0 {
		f.Required(p.Child("servers"), "gateway must have at least one server")
	}
	portNames := map[string]int{}
	for i, s := range gw.GetServers() {
		sp := p.Child("servers").Index(i)
		if s == nil {
			f.Required(sp, "server must not be null")
			continue
		}
		validateServer(sp, s, gatewaySemantics, f)
		if name := s.GetPort().GetName(); name != "" {
			if prev, dup := portNames[name]; dup {
				f.Error(sp.Child("port", "name"), name, fmt.Sprintf("port names in servers must be unique: duplicate name %s (also servers[%d])", name, prev))
			} else {
				portNames[name] = i
			}
		}
		if s.GetTls().GetHttpsRedirect() && !khIsHTTP(s.GetPort().GetProtocol()) {
			f.Warn(sp.Child("tls", "httpsRedirect"), true, "tls.httpsRedirect should only be used with HTTP servers")
		}
	}
}

func validateServer(p *field.Path, s *networking.Server, gatewaySemantics bool, f *Findings) {
	if len(s.GetHosts()) == 0 {
		f.Required(p.Child("hosts"), "server config must contain at least one host")
	}
	for i, h := range s.GetHosts() {
		if gatewaySemantics {
			validateGatewayAPINamespaceHost(p.Child("hosts").Index(i), h, f)
		} else {
			validateGatewayNamespaceHost(p.Child("hosts").Index(i), h, f)
		}
	}
	port := s.GetPort()
	uds := strings.HasPrefix(s.GetBind(), "unix://")
	if port == nil {
		f.Required(p.Child("port"), "port is required")
	} else {
		pp := p.Child("port")
		if khParseProtocol(port.GetProtocol()) == "" {
			f.Error(pp.Child("protocol"), port.GetProtocol(), "unrecognized protocol: must be one of HTTP, HTTPS, HTTP2, HTTP_PROXY, GRPC, GRPC-WEB, TCP, TLS, UDP, MONGO, REDIS, MYSQL")
		}
		if !(uds && port.GetNumber() == 0) {
			validatePort(pp.Child("number"), port.GetNumber(), f)
		}
		if port.GetTargetPort() != 0 {
			f.Error(pp.Child("targetPort"), int64(port.GetTargetPort()), "targetPort has no impact on Gateways")
		}
		if port.GetName() == "" {
			f.Required(pp.Child("name"), "port name must be set")
		}
	}
	// Istio's validateServerBind.
	if b := s.GetBind(); uds {
		khUnixAddress(p.Child("bind"), b, f)
		if port.GetNumber() != 0 {
			f.Error(p.Child("port", "number"), int64(port.GetNumber()), "port number must be 0 for unix domain socket")
		}
	} else if b != "" && !isIP(b) {
		f.Error(p.Child("bind"), b, "bind must be an IP address or unix://<absolute path>")
	}
	proto := port.GetProtocol()
	tls := s.GetTls()
	// Istio's validateServer: a plain-text HTTP-family server may carry only
	// a passthrough TLS block without certificates (httpsRedirect, say).
	switch {
	case khIsTLS(proto) && tls == nil:
		f.Required(p.Child("tls"), "server must have TLS settings for HTTPS/TLS protocols")
	case tls == nil || khIsTLS(proto) || khParseProtocol(proto) == "":
	case khIsHTTP(proto):
		passthrough := tls.GetMode() == networking.ServerTLSSettings_PASSTHROUGH || tls.GetMode() == networking.ServerTLSSettings_AUTO_PASSTHROUGH
		if !passthrough || tls.GetCaCertificates() != "" || tls.GetPrivateKey() != "" || tls.GetServerCertificate() != "" {
			f.Error(p.Child("tls"), field.OmitValueType{}, fmt.Sprintf("server cannot have TLS settings for plain text HTTP ports "+
				"(protocol %s: only mode PASSTHROUGH or AUTO_PASSTHROUGH without certificates, as with httpsRedirect)", proto))
		}
	default:
		f.Error(p.Child("tls"), field.OmitValueType{}, fmt.Sprintf("server cannot have TLS settings for non HTTPS/TLS port protocol %s", proto))
	}
	if tls != nil {
		validateServerTLS(p.Child("tls"), tls, f)
	}
}

func hasServerCertificates(t *networking.ServerTLSSettings) bool {
	return t.GetServerCertificate() != "" || t.GetPrivateKey() != "" || t.GetCaCertificates() != "" || t.GetCredentialName() != "" ||
		len(t.GetCredentialNames()) > 0 || len(t.GetTlsCertificates()) > 0
}

// validCipherSuites are BoringSSL cipher suite names Envoy accepts for TLS
// 1.0–1.2 (PSK suites excluded, as in Istio).
var validCipherSuites = map[string]bool{
	"ECDHE-ECDSA-AES128-GCM-SHA256": true, "ECDHE-RSA-AES128-GCM-SHA256": true, "ECDHE-ECDSA-AES256-GCM-SHA384": true,
	"ECDHE-RSA-AES256-GCM-SHA384": true, "ECDHE-ECDSA-CHACHA20-POLY1305": true, "ECDHE-RSA-CHACHA20-POLY1305": true,
	"ECDHE-ECDSA-AES128-SHA": true, "ECDHE-RSA-AES128-SHA": true, "ECDHE-ECDSA-AES256-SHA": true, "ECDHE-RSA-AES256-SHA": true,
	"AES128-GCM-SHA256": true, "AES256-GCM-SHA384": true, "AES128-SHA": true, "AES256-SHA": true, "DES-CBC3-SHA": true,
}

// validateServerTLS checks Gateway server TLS (Istio's validateTLSOptions); the
// Sidecar kind reuses it for ingress TLS (Istio's ValidateSidecar).
func validateServerTLS(p *field.Path, t *networking.ServerTLSSettings, f *Findings) {
	mode := t.GetMode()
	if v := t.GetMinProtocolVersion(); (v == networking.ServerTLSSettings_TLSV1_0 || v == networking.ServerTLSSettings_TLSV1_1) && len(t.GetCipherSuites()) == 0 {
		f.Warn(p.Child("minProtocolVersion"), v.String(), "TLS 1.0/1.1 without cipherSuites uses Envoy's defaults, which may be insecure; set cipherSuites")
	}
	// Istio's security.IsValidCipherSuite: "", "ALL" and entries not
	// starting with a letter or digit (BoringSSL operators, "[A|B]" groups)
	// reach Envoy unchecked; pilot drops only unknown names and repeats.
	invalid, valid, dup := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, c := range t.GetCipherSuites() {
		switch {
		case c == "" || c == "ALL" || !unicode.IsLetter(rune(c[0])) && !unicode.IsNumber(rune(c[0])):
		case !validCipherSuites[c]:
			invalid[c] = true
		case valid[c]:
			dup[c] = true
		default:
			valid[c] = true
		}
	}
	if len(invalid) > 0 {
		f.Warn(p.Child("cipherSuites"), nil, fmt.Sprintf("ignoring invalid cipher suites: [%s]", strings.Join(sortedKeys(invalid), " ")))
	}
	if len(dup) > 0 {
		f.Warn(p.Child("cipherSuites"), nil, fmt.Sprintf("ignoring duplicate cipher suites: [%s]", strings.Join(sortedKeys(dup), " ")))
	}
	switch mode {
	case networking.ServerTLSSettings_ISTIO_MUTUAL:
		if hasServerCertificates(t) {
			f.Error(p.Child("mode"), mode.String(), "ISTIO_MUTUAL TLS cannot have associated private key, server certificate, CA certificates or credential names")
		}
		return
	case networking.ServerTLSSettings_PASSTHROUGH, networking.ServerTLSSettings_AUTO_PASSTHROUGH:
		// Only a warning, but the source and CRL rules below still apply
		// (Istio's validateTLSOptions does not return here).
		if hasServerCertificates(t) || t.GetCaCrl() != "" {
			f.Warn(p.Child("mode"), mode.String(), fmt.Sprintf("%s mode does not use certificates, they will be ignored", mode))
		}
	}
	sources := 0
	if t.GetCredentialName() != "" {
		sources++
	}
	if len(t.GetCredentialNames()) > 0 {
		sources++
	}
	// A key pair counts only when complete (Istio's certSourceCount); half
	// of one is reported below when it is needed.
	if t.GetServerCertificate() != "" && t.GetPrivateKey() != "" {
		sources++
	}
	if len(t.GetTlsCertificates()) > 0 {
		sources++
	}
	if sources > 1 {
		f.Error(p, field.OmitValueType{}, "only one of credentialName, credentialNames, serverCertificate/privateKey or tlsCertificates may be set")
	}
	credential := t.GetCredentialName() != "" || len(t.GetCredentialNames()) > 0
	if !credential && (mode == networking.ServerTLSSettings_SIMPLE || mode == networking.ServerTLSSettings_MUTUAL || mode == networking.ServerTLSSettings_OPTIONAL_MUTUAL) {
		if len(t.GetTlsCertificates()) > 0 {
			for i, c := range t.GetTlsCertificates() {
				cp := p.Child("tlsCertificates").Index(i)
				if c.GetServerCertificate() == "" {
					f.Required(cp.Child("serverCertificate"), fmt.Sprintf("%s TLS requires a server certificate", mode))
				}
				if c.GetPrivateKey() == "" {
					f.Required(cp.Child("privateKey"), fmt.Sprintf("%s TLS requires a private key", mode))
				}
			}
		} else {
			if t.GetServerCertificate() == "" {
				f.Required(p.Child("serverCertificate"), fmt.Sprintf("%s TLS requires a server certificate", mode))
			}
			if t.GetPrivateKey() == "" {
				f.Required(p.Child("privateKey"), fmt.Sprintf("%s TLS requires a private key", mode))
			}
		}
		if mode != networking.ServerTLSSettings_SIMPLE && t.GetCaCertificates() == "" {
			f.Required(p.Child("caCertificates"), fmt.Sprintf("%s TLS requires a client CA bundle", mode))
		}
		if len(t.GetTlsCertificates()) > 2 {
			f.Warn(p.Child("tlsCertificates"), nil, "more than 2 tlsCertificates: Envoy uses at most one RSA and one ECDSA certificate")
		}
	}
	if t.GetCaCrl() != "" {
		if credential {
			f.Error(p.Child("caCrl"), field.OmitValueType{}, "caCrl cannot be set together with credentialName")
		}
		if mode == networking.ServerTLSSettings_SIMPLE {
			f.Error(p.Child("caCrl"), field.OmitValueType{}, "caCrl is only used with MUTUAL or OPTIONAL_MUTUAL TLS, not SIMPLE")
		}
	}
}
