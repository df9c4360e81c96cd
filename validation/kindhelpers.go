package validation

import (
	"fmt"
	"strings"

	networking "istio.io/api/networking/v1alpha3"
	typev1beta1 "istio.io/api/type/v1beta1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Helpers shared by the kind_*.go validators of ServiceEntry, Sidecar,
// WorkloadEntry/Group, EnvoyFilter, ProxyConfig, the security kinds, Telemetry
// and WasmPlugin. Names carry a "kh" prefix so they never collide with the
// core helpers in common.go.

// khNetworkingSelector applies Istio's selector rules to the
// networking shape `workloadSelector.labels` used by ServiceEntry, Sidecar and
// EnvoyFilter. kindLabel starts the no-labels warning ("sidecar", "service
// entry"), as Istio's warning does (ValidateServiceEntry, ValidateSidecar).
func khNetworkingSelector(p *field.Path, sel *networking.WorkloadSelector, kindLabel string, f *Findings) {
	if sel == nil {
		return
	}
	if len(sel.GetLabels()) == 0 {
		f.Warn(p, nil, kindLabel+": workload selector specified without labels, will be applied to all services in namespace")
		return
	}
	validateSelectorLabels(p.Child("labels"), sel.GetLabels(), f)
}

// khTargetKinds are the group/kind pairs a policy targetRef may name (as in Istio's
// pkg/config/validation/validation.go).
var khTargetKinds = map[string]bool{
	"/Service":                               true,
	"networking.istio.io/ServiceEntry":       true,
	"gateway.networking.k8s.io/Gateway":      true,
	"gateway.networking.k8s.io/GatewayClass": true,
}

// khPolicyTargets checks selector / targetRef / targetRefs of the policy kinds
// (AuthorizationPolicy, RequestAuthentication, Telemetry, WasmPlugin): at most
// one of them, then each in turn. spec is the "spec" path.
func khPolicyTargets(spec *field.Path, sel *typev1beta1.WorkloadSelector, ref *typev1beta1.PolicyTargetReference,
	refs []*typev1beta1.PolicyTargetReference, f *Findings,
) {
	set := 0
	for _, b := range []bool{sel != nil, ref != nil, len(refs) > 0} {
		if b {
			set++
		}
	}
	if set > 1 {
		// Same text as the CRD's CEL rule, so both layers read alike.
		f.Error(spec, nil, "only one of targetRefs or selector can be set (selector, targetRef and targetRefs are mutually exclusive)")
	}
	validateWorkloadSelector(spec.Child("selector"), sel, f)
	if ref != nil {
		khTargetRef(spec.Child("targetRef"), ref, f)
	}
	for i, r := range refs {
		khTargetRef(spec.Child("targetRefs").Index(i), r, f)
	}
}

// khTargetRef checks one policy target reference.
func khTargetRef(p *field.Path, r *typev1beta1.PolicyTargetReference, f *Findings) {
	if r == nil {
		f.Required(p, "targetRef must not be null")
		return
	}
	if r.GetName() == "" {
		f.Required(p.Child("name"), "targetRef name must not be empty")
	}
	if r.GetNamespace() != "" {
		f.Error(p.Child("namespace"), r.GetNamespace(), "cross namespace referencing is not currently supported")
	}
	group := r.GetGroup()
	if group == "core" { // Istio compares canonical groups: "" and "core" are the same
		group = ""
	}
	if gk := group + "/" + r.GetKind(); !khTargetKinds[gk] {
		f.Error(p, gk, fmt.Sprintf("targetRef must be to one of Service (core group), ServiceEntry (networking.istio.io), "+
			"Gateway or GatewayClass (gateway.networking.k8s.io); got group %q kind %q", r.GetGroup(), r.GetKind()))
	}
}

// khUnixPrefix marks a Unix domain socket address.
const khUnixPrefix = "unix://"

// khUnixAddress checks a "unix://" address: an absolute file path or an
// abstract socket ("@name"), never a directory (Istio's ValidateWorkloadEntry; the
// texts match the CRD's CEL messages).
func khUnixAddress(p *field.Path, addr string, f *Findings) {
	path := strings.TrimPrefix(addr, khUnixPrefix)
	switch {
	case path == "":
		f.Error(p, addr, "unix address must not be empty: UDS must be an absolute path or abstract socket")
	case strings.HasPrefix(path, "@"):
	case !strings.HasPrefix(path, "/"):
		f.Error(p, addr, "UDS must be an absolute path or abstract socket")
	case strings.HasSuffix(path, "/"):
		f.Error(p, addr, "UDS may not be a dir")
	}
}

// khProtocolNames maps the port protocol names Istio parses, lower-cased, to
// their canonical form.
var khProtocolNames = map[string]string{
	"http": "HTTP", "https": "HTTPS", "http2": "HTTP2", "http_proxy": "HTTP_PROXY", "grpc": "GRPC", "grpc-web": "GRPC-WEB",
	"tcp": "TCP", "tls": "TLS", "udp": "UDP", "mongo": "MONGO", "redis": "REDIS", "mysql": "MYSQL",
}

// khParseProtocol is Istio's protocol.Parse (pkg/config/protocol): the
// canonical upper-case name of a port protocol, "" when Istio does not know it.
// It lower-cases as Istio does: upper-casing would also turn "httpſ" (long s)
// or "redıs" (dotless i) into a protocol, which Istio rejects.
func khParseProtocol(proto string) string {
	return khProtocolNames[strings.ToLower(proto)]
}

// khProtocol checks a port protocol; empty means "sniff" and is allowed.
func khProtocol(p *field.Path, proto string, f *Findings) {
	if proto != "" && khParseProtocol(proto) == "" {
		f.Error(p, proto, fmt.Sprintf("unrecognized protocol %q: must be one of HTTP, HTTPS, HTTP2, HTTP_PROXY, GRPC, "+
			"GRPC-WEB, TCP, TLS, UDP, MONGO, REDIS, MYSQL (case-insensitive) or empty", proto))
	}
}

// khIsHTTPOrTLS reports the protocols Istio routes by host name (HTTP family or TLS/SNI).
func khIsHTTPOrTLS(proto string) bool {
	return khIsHTTP(proto) || khIsTLS(proto)
}

// khIsHTTP reports the plain HTTP family (no TLS): Istio's Instance.IsHTTP.
func khIsHTTP(proto string) bool {
	switch khParseProtocol(proto) {
	case "HTTP", "HTTP2", "HTTP_PROXY", "GRPC", "GRPC-WEB":
		return true
	}
	return false
}

// khIsTLS reports the protocols on top of TLS: Istio's Instance.IsTLS.
func khIsTLS(proto string) bool {
	switch khParseProtocol(proto) {
	case "HTTPS", "TLS":
		return true
	}
	return false
}
