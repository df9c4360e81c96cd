package validation

import (
	"regexp"
	"strings"

	networking "istio.io/api/networking/v1alpha3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// wgHeaderName is the probe header name syntax (Istio's ValidateProbeHeaderName,
// validProbeHeaderNameRegex: no underscore).
var wgHeaderName = regexp.MustCompile(`^[-A-Za-z0-9]+$`)

// validateWorkloadGroup implements Istio's ValidateWorkloadGroup
// (pkg/config/validation/validation.go). Unlike Istio it
// accepts gRPC probes (the API and CRD support them; Istio rejects them,
// docs/compatibility.md "More lenient than Istio") and checks the template's ports, labels and (if set) address.
func validateWorkloadGroup(_ metav1.ObjectMeta, wg *networking.WorkloadGroup, f *Findings) {
	sp := field.NewPath("spec")
	if wg.GetMetadata() != nil {
		validateLabels(sp.Child("metadata", "labels"), wg.GetMetadata().GetLabels(), f)
	}
	tp := sp.Child("template")
	if t := wg.GetTemplate(); t == nil {
		f.Required(tp, "template is required")
	} else {
		// The address is filled in per workload at registration, so it is optional here.
		if a := t.GetAddress(); a != "" {
			switch {
			case strings.HasPrefix(a, khUnixPrefix):
				khUnixAddress(tp.Child("address"), a, f)
			case isIP(a):
			default:
				validateFQDN(tp.Child("address"), a, f)
			}
		}
		pp := tp.Child("ports")
		for _, name := range sortedKeys(t.GetPorts()) {
			validatePortName(pp.Key(name), name, f)
			validatePort(pp.Key(name), t.GetPorts()[name], f)
		}
		validateLabels(tp.Child("labels"), t.GetLabels(), f)
	}
	wgProbe(sp.Child("probe"), wg.GetProbe(), f)
}

func wgProbe(p *field.Path, pr *networking.ReadinessProbe, f *Findings) {
	if pr == nil {
		return
	}
	for _, c := range []struct {
		name string
		v    int32
	}{
		{"initialDelaySeconds", pr.GetInitialDelaySeconds()},
		{"timeoutSeconds", pr.GetTimeoutSeconds()},
		{"periodSeconds", pr.GetPeriodSeconds()},
		{"successThreshold", pr.GetSuccessThreshold()},
		{"failureThreshold", pr.GetFailureThreshold()},
	} {
		if c.v < 0 {
			f.Error(p.Child(c.name), int64(c.v), c.name+" must be non-negative")
		}
	}
	switch m := pr.GetHealthCheckMethod().(type) {
	case *networking.ReadinessProbe_HttpGet:
		hp := p.Child("httpGet")
		h := m.HttpGet
		if h == nil {
			f.Required(hp, "httpGet must not be null")
			return
		}
		validatePort(hp.Child("port"), h.GetPort(), f)
		if s := h.GetScheme(); s != "" && s != "HTTP" && s != "HTTPS" {
			f.Error(hp.Child("scheme"), s, "scheme must be one of [HTTP, HTTPS]")
		}
		for i, hdr := range h.GetHttpHeaders() {
			np := hp.Child("httpHeaders").Index(i).Child("name")
			if hdr == nil {
				f.Required(hp.Child("httpHeaders").Index(i), "header must not be null")
				continue
			}
			if !wgHeaderName.MatchString(hdr.GetName()) {
				f.Error(np, hdr.GetName(), "invalid header name: must match ^[-A-Za-z0-9]+$ (letters, digits and dashes)")
			}
		}
	case *networking.ReadinessProbe_TcpSocket:
		if m.TcpSocket == nil {
			f.Required(p.Child("tcpSocket"), "tcpSocket must not be null")
			return
		}
		validatePort(p.Child("tcpSocket", "port"), m.TcpSocket.GetPort(), f)
	case *networking.ReadinessProbe_Exec:
		if len(m.Exec.GetCommand()) == 0 {
			f.Required(p.Child("exec", "command"), "exec probe must have a command")
		}
	case *networking.ReadinessProbe_Grpc:
		// Istio rejects gRPC probes ("unknown health check method"); the API
		// and the CRD define them, so meshguard checks them instead.
		if m.Grpc == nil {
			f.Required(p.Child("grpc"), "grpc must not be null")
			return
		}
		validatePort(p.Child("grpc", "port"), m.Grpc.GetPort(), f)
	case nil:
		f.Required(p, "probe must set one of httpGet, tcpSocket, exec or grpc")
	}
}
