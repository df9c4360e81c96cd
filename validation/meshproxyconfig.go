package validation

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	meshv1alpha1 "istio.io/api/mesh/v1alpha1"
	networking "istio.io/api/networking/v1alpha3"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// MeshProxyConfig checks a mesh ProxyConfig (a MeshConfig's defaultConfig, or
// the proxy.istio.io/config annotation applied onto Istio's defaults) as
// Istio's ValidateMeshConfigProxyConfig does
// (pkg/config/validation/agent/validation.go); the injector denies a pod
// whose annotation fails it, as Istio's pkg/kube/inject/validate.go
// validateProxyConfig does. Paths are relative to the ProxyConfig.
func MeshProxyConfig(pc *meshv1alpha1.ProxyConfig) field.ErrorList {
	var f Findings
	meshProxyConfig(nil, pc, &f)
	return f.Errors
}

// meshProxyConfig records MeshProxyConfig's findings under p (nil: the
// ProxyConfig is the root).
func meshProxyConfig(p *field.Path, pc *meshv1alpha1.ProxyConfig, f *Findings) {
	root := func(name string) *field.Path { return p.Child(name) }
	if pc.GetConfigPath() == "" {
		f.Required(root("configPath"), "config path must be set")
	}
	if pc.GetBinaryPath() == "" {
		f.Required(root("binaryPath"), "binary path must be set")
	}
	switch n := pc.GetClusterName().(type) {
	case *meshv1alpha1.ProxyConfig_ServiceCluster:
		if n.ServiceCluster == "" {
			f.Required(root("serviceCluster"), "service cluster must be specified")
		}
	case *meshv1alpha1.ProxyConfig_TracingServiceName_:
	default:
		f.Required(root("serviceCluster"), "oneof service cluster or tracing service name must be specified")
	}
	validateDrainDuration(root("drainDuration"), pc.GetDrainDuration(), f)
	if a := pc.GetDiscoveryAddress(); a == "" {
		f.Required(root("discoveryAddress"), "discovery address must be set to the proxy discovery service")
	} else {
		validateProxyAddress(root("discoveryAddress"), a, f)
	}
	tr := pc.GetTracing()
	tp := root("tracing")
	if ls := tr.GetLightstep(); ls != nil {
		if ls.GetAddress() == "" {
			f.Required(tp.Child("lightstep", "address"), "address is required")
		}
		validateProxyAddress(tp.Child("lightstep", "address"), ls.GetAddress(), f)
		if ls.GetAccessToken() == "" {
			f.Required(tp.Child("lightstep", "accessToken"), "access token is required")
		}
	}
	if z := tr.GetZipkin(); z != nil {
		validateProxyAddress(tp.Child("zipkin", "address"), strings.Replace(z.GetAddress(), "$(HOST_IP)", "127.0.0.1", 1), f)
	}
	if d := tr.GetDatadog(); d != nil {
		validateProxyAddress(tp.Child("datadog", "address"), strings.Replace(d.GetAddress(), "$(HOST_IP)", "127.0.0.1", 1), f)
	}
	validateClientTLS(tp.Child("tlsSettings"), tr.GetTlsSettings(), "", f)
	for name, tag := range tr.GetCustomTags() {
		if tag == nil {
			f.Required(tp.Child("customTags").Key(name), "encountered nil value for custom tag")
		}
	}
	if a := pc.GetStatsdUdpAddress(); a != "" {
		validateProxyAddress(root("statsdUdpAddress"), a, f)
	}
	if a := pc.GetEnvoyMetricsServiceAddress(); a != "" { //nolint:staticcheck // deprecated, still validated by Istio
		validateProxyAddress(root("envoyMetricsServiceAddress"), a, f)
	}
	if a := pc.GetEnvoyMetricsService().GetAddress(); a != "" {
		validateProxyAddress(root("envoyMetricsService").Child("address"), a, f)
	}
	if a := pc.GetEnvoyAccessLogService().GetAddress(); a != "" {
		validateProxyAddress(root("envoyAccessLogService").Child("address"), a, f)
	}
	// Istio warns (only) that the v1 DNS auto-allocation switch is deprecated.
	if _, ok := pc.GetProxyMetadata()[dnsAutoAllocateV1]; ok {
		f.Warn(root("proxyMetadata").Key(dnsAutoAllocateV1), nil, "'"+dnsAutoAllocateV1+"' is deprecated; use DNS auto-allocation v2 "+
			"(https://istio.io/latest/docs/ops/configuration/traffic-management/dns-proxy/#dns-auto-allocation-v2)")
	}
	validateProxyPort(root("proxyAdminPort"), pc.GetProxyAdminPort(), f)
	if p := pc.GetControlPlaneAuthPolicy(); p != meshv1alpha1.AuthenticationPolicy_NONE && p != meshv1alpha1.AuthenticationPolicy_MUTUAL_TLS {
		f.Error(root("controlPlaneAuthPolicy"), p.String(), "unrecognized control plane auth policy")
	}
	validateProxyPort(root("statusPort"), pc.GetStatusPort(), f)
	if pkp := pc.GetPrivateKeyProvider(); pkp != nil {
		validatePrivateKeyProvider(root("privateKeyProvider"), pkp, f)
	}
}

// dnsAutoAllocateV1 is the proxyMetadata key of Istio's first DNS
// auto-allocation, deprecated (ValidateMeshConfigProxyConfig warns).
const dnsAutoAllocateV1 = "ISTIO_META_DNS_AUTO_ALLOCATE"

// validateDrainDuration is Istio's ValidateDrainDuration: a duration of at
// least 1ms, in whole seconds.
func validateDrainDuration(p *field.Path, d *durationpb.Duration, f *Findings) {
	if d == nil || d.AsDuration() < time.Millisecond {
		f.Error(p, d.AsDuration().String(), "invalid drain duration: duration must be greater than 1ms")
		return
	}
	before := len(f.Errors)
	validateDuration(p, d, f)
	if len(f.Errors) == before && d.AsDuration()%time.Second != 0 {
		f.Error(p, d.AsDuration().String(), "drain time only supports durations to seconds precision")
	}
}

// validateProxyAddress is Istio's ValidateProxyAddress: host:port, the host
// a domain name or an IP address, the port 1..65535.
func validateProxyAddress(p *field.Path, addr string, f *Findings) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		f.Error(p, addr, fmt.Sprintf("unable to split %q: %v", addr, err))
		return
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		f.Error(p, addr, fmt.Sprintf("port (%s) is not a number", port))
		return
	}
	if n < 1 || n > 65535 {
		f.Error(p, addr, fmt.Sprintf("port number %d must be in the range 1..65535", n))
		return
	}
	if domainProblem(host, false) != "" && !isIP(host) {
		f.Error(p, addr, fmt.Sprintf("%q is not a valid hostname or an IP address", host))
	}
}

func validateProxyPort(p *field.Path, port int32, f *Findings) {
	if port < 1 || port > 65535 {
		f.Error(p, int64(port), fmt.Sprintf("port number %d must be in the range 1..65535", port))
	}
}

// validatePrivateKeyProvider is Istio's: a known provider with a non-zero pollDelay.
func validatePrivateKeyProvider(p *field.Path, pkp *meshv1alpha1.PrivateKeyProvider, f *Findings) {
	var poll *durationpb.Duration
	switch pkp.GetProvider().(type) {
	case *meshv1alpha1.PrivateKeyProvider_Cryptomb:
		if pkp.GetCryptomb() == nil {
			f.Required(p.Child("cryptomb"), "cryptomb configuration is required")
			return
		}
		p, poll = p.Child("cryptomb"), pkp.GetCryptomb().GetPollDelay()
	case *meshv1alpha1.PrivateKeyProvider_Qat:
		if pkp.GetQat() == nil {
			f.Required(p.Child("qat"), "qat configuration is required")
			return
		}
		p, poll = p.Child("qat"), pkp.GetQat().GetPollDelay()
	default:
		f.Required(p, "private key provider configuration is required: cryptomb or qat")
		return
	}
	switch {
	case poll == nil:
		f.Required(p.Child("pollDelay"), "pollDelay is required")
	case poll.GetSeconds() == 0 && poll.GetNanos() == 0:
		f.Error(p.Child("pollDelay"), "0s", "pollDelay must be non zero")
	}
}

// MeshConfig checks a mesh config (defaults applied) as Istio's
// ValidateMeshConfig does (pkg/config/validation/agent/validation.go): the
// listen port, the connect and protocol-detection timeouts, the
// defaultConfig (MeshProxyConfig), the locality load-balancing setting, the
// service settings' hosts, the trust domain and its aliases, and the mesh
// TLS settings. Istio only logs a bad extension provider, and so does not
// check them here. Paths start at "mesh".
func MeshConfig(m *meshv1alpha1.MeshConfig) Findings {
	var f Findings
	p := field.NewPath("mesh")
	validateProxyPort(p.Child("proxyListenPort"), m.GetProxyListenPort(), &f)
	validateConnectTimeout(p.Child("connectTimeout"), m.GetConnectTimeout(), &f)
	if d := m.GetProtocolDetectionTimeout().AsDuration(); d != 0 && d%time.Millisecond != 0 {
		f.Error(p.Child("protocolDetectionTimeout"), d.String(), "only durations to ms precision are supported")
	}
	if m.GetDefaultConfig() == nil {
		f.Required(p.Child("defaultConfig"), "missing default config")
	} else {
		meshProxyConfig(p.Child("defaultConfig"), m.GetDefaultConfig(), &f)
	}
	if l := m.GetLocalityLbSetting(); l != nil {
		// Istio passes an empty outlier detection: no "must be provided" warning.
		validateLocalityLB(p.Child("localityLbSetting"), l, &networking.OutlierDetection{}, &f)
	}
	for i, s := range m.GetServiceSettings() {
		for j, h := range s.GetHosts() {
			validateWildcardDomain(p.Child("serviceSettings").Index(i).Child("hosts").Index(j), h, &f)
		}
	}
	validateTrustDomain(p.Child("trustDomain"), m.GetTrustDomain(), &f)
	for i, a := range m.GetTrustDomainAliases() {
		validateTrustDomain(p.Child("trustDomainAliases").Index(i), a, &f)
	}
	if len(m.GetMeshMTLS().GetEcdhCurves()) > 0 {
		f.Error(p.Child("meshMTLS", "ecdhCurves"), field.OmitValueType{}, "mesh TLS does not support ECDH curves configuration")
	}
	seen := map[string]bool{}
	for i, c := range m.GetTlsDefaults().GetEcdhCurves() {
		cp := p.Child("tlsDefaults", "ecdhCurves").Index(i)
		switch {
		case c != "" && !ecdhCurves[c]:
			f.Warn(cp, c, "unrecognized ECDH curve")
		case seen[c]:
			f.Warn(cp, c, "duplicate ECDH curve")
		}
		seen[c] = true
	}
	return f
}

// ecdhCurves are the curves Istio accepts in tlsDefaults.ecdhCurves
// (pkg/config/security ValidECDHCurves, BoringSSL's names).
var ecdhCurves = map[string]bool{"P-224": true, "P-256": true, "P-384": true, "P-521": true, "X25519": true,
	"X25519Kyber768Draft00": true, "X25519MLKEM768": true}

// validateConnectTimeout is Istio's ValidateConnectTimeout: a duration of at
// least 1ms, in whole milliseconds, at most an hour.
func validateConnectTimeout(p *field.Path, d *durationpb.Duration, f *Findings) {
	if d.AsDuration() < time.Millisecond {
		f.Error(p, d.AsDuration().String(), "duration must be greater than 1ms")
		return
	}
	before := len(f.Errors)
	validateDuration(p, d, f)
	if len(f.Errors) == before && d.AsDuration() > time.Hour {
		f.Error(p, d.AsDuration().String(), "connect timeout must be at most 1h")
	}
}

// TrustDomain checks a trust domain given outside a mesh config (ext_authz's
// --trust-domain and --trust-domain-aliases) by the rule of the mesh
// config's trustDomain and trustDomainAliases.
func TrustDomain(td string) error {
	var f Findings
	validateTrustDomain(nil, td, &f)
	if len(f.Errors) == 0 {
		return nil
	}
	// The message only: the caller names the flag and value, and a nil
	// path would print as "<nil>".
	return errors.New(f.Errors[0].Detail)
}

// validateTrustDomain is Istio's ValidateTrustDomain: DNS-1123 labels (upper
// case allowed), optionally ending in a dot.
func validateTrustDomain(p *field.Path, td string, f *Findings) {
	if td == "" {
		f.Required(p, "empty domain name not allowed")
		return
	}
	labels := strings.Split(strings.TrimSuffix(td, "."), ".")
	for _, l := range labels {
		if !isDNSLabel(l) {
			f.Error(p, td, fmt.Sprintf("trust domain name %q invalid: label %q is not a DNS-1123 label", td, l))
			return
		}
	}
}
