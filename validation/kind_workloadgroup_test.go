package validation

import (
	"testing"

	networking "istio.io/api/networking/v1alpha3"
)

func TestValidateWorkloadGroup(t *testing.T) {
	tmpl := &networking.WorkloadEntry{ServiceAccount: "sa", Network: "net"}
	probe := func(m *networking.ReadinessProbe) *networking.WorkloadGroup {
		return &networking.WorkloadGroup{Template: tmpl, Probe: m}
	}
	runKindCases(t, validateWorkloadGroup, []kindCase{
		{name: "full http probe", spec: &networking.WorkloadGroup{
			Metadata: &networking.WorkloadGroup_ObjectMeta{Labels: map[string]string{"foo": "bar"}},
			Template: &networking.WorkloadEntry{ServiceAccount: "sa", Ports: map[string]uint32{"http": 1}, Labels: map[string]string{"app": "a"}},
			Probe: &networking.ReadinessProbe{FailureThreshold: 2, PeriodSeconds: 1, HealthCheckMethod: &networking.ReadinessProbe_HttpGet{
				HttpGet: &networking.HTTPHealthCheckConfig{Port: 8080, Scheme: "HTTPS", Path: "/bar",
					HttpHeaders: []*networking.HTTPHeader{{Name: "x-foo-bar", Value: "v"}}}}}}},
		// Istio's ValidateProbeHeaderName: no underscore.
		{name: "probe header with underscore", spec: probe(&networking.ReadinessProbe{HealthCheckMethod: &networking.ReadinessProbe_HttpGet{
			HttpGet: &networking.HTTPHealthCheckConfig{Port: 8080, HttpHeaders: []*networking.HTTPHeader{{Name: "x_custom", Value: "v"}}}}}),
			errs: []string{`spec.probe.httpGet.httpHeaders[0].name: Invalid value: "x_custom": invalid header name`}},
		{name: "template required", spec: &networking.WorkloadGroup{}, errs: []string{"spec.template: Required value: template is required"}},
		{name: "bad metadata labels", spec: &networking.WorkloadGroup{Template: tmpl,
			Metadata: &networking.WorkloadGroup_ObjectMeta{Labels: map[string]string{"bad key": "v"}}},
			errs: []string{"spec.metadata.labels[bad key]"}},
		{name: "template checks", spec: &networking.WorkloadGroup{Template: &networking.WorkloadEntry{
			Address: "bad_addr", Ports: map[string]uint32{"http": 0}, Labels: map[string]string{"k": "bad value"}}},
			errs: []string{"spec.template.address", "spec.template.ports[http]", "spec.template.labels[k]"}},
		{name: "grpc probe accepted (Istio rejects it)", spec: probe(&networking.ReadinessProbe{
			HealthCheckMethod: &networking.ReadinessProbe_Grpc{Grpc: &networking.GrpcHealthCheckConfig{Port: 9090, Service: "svc"}}})},
		{name: "grpc probe bad port", spec: probe(&networking.ReadinessProbe{
			HealthCheckMethod: &networking.ReadinessProbe_Grpc{Grpc: &networking.GrpcHealthCheckConfig{}}}),
			errs: []string{"spec.probe.grpc.port: Invalid value: 0"}},
		{name: "tcp probe", spec: probe(&networking.ReadinessProbe{
			HealthCheckMethod: &networking.ReadinessProbe_TcpSocket{TcpSocket: &networking.TCPHealthCheckConfig{Port: 8080}}})},
		{name: "tcp probe bad port", spec: probe(&networking.ReadinessProbe{
			HealthCheckMethod: &networking.ReadinessProbe_TcpSocket{TcpSocket: &networking.TCPHealthCheckConfig{Port: 65536}}}),
			errs: []string{"spec.probe.tcpSocket.port: Invalid value: 65536: port number 65536 must be in the range 1..65535"}},
		{name: "exec probe", spec: probe(&networking.ReadinessProbe{
			HealthCheckMethod: &networking.ReadinessProbe_Exec{Exec: &networking.ExecHealthCheckConfig{Command: []string{"true"}}}})},
		{name: "exec without command", spec: probe(&networking.ReadinessProbe{
			HealthCheckMethod: &networking.ReadinessProbe_Exec{Exec: &networking.ExecHealthCheckConfig{}}}),
			errs: []string{"spec.probe.exec.command: Required value"}},
		{name: "no method", spec: probe(&networking.ReadinessProbe{PeriodSeconds: 3}),
			errs: []string{"spec.probe: Required value: probe must set one of httpGet, tcpSocket, exec or grpc"}},
		{name: "negative numbers", spec: probe(&networking.ReadinessProbe{InitialDelaySeconds: -1, TimeoutSeconds: -1, PeriodSeconds: -1,
			SuccessThreshold: -1, FailureThreshold: -1,
			HealthCheckMethod: &networking.ReadinessProbe_TcpSocket{TcpSocket: &networking.TCPHealthCheckConfig{Port: 1}}}),
			errs: []string{"initialDelaySeconds", "timeoutSeconds", "periodSeconds", "successThreshold", "failureThreshold"}},
		{name: "http probe problems", spec: probe(&networking.ReadinessProbe{HealthCheckMethod: &networking.ReadinessProbe_HttpGet{
			HttpGet: &networking.HTTPHealthCheckConfig{Port: 0, Scheme: "FTP", HttpHeaders: []*networking.HTTPHeader{{Name: "**"}, nil}}}}),
			errs: []string{"spec.probe.httpGet.port", "spec.probe.httpGet.scheme: Invalid value: \"FTP\": scheme must be one of [HTTP, HTTPS]",
				"spec.probe.httpGet.httpHeaders[0].name", "spec.probe.httpGet.httpHeaders[1]: Required value"}},
	})
}

func TestWorkloadGroupYAML(t *testing.T) {
	runYAMLCases(t, []yamlCase{
		{name: "grpc probe", doc: `
apiVersion: networking.istio.io/v1
kind: WorkloadGroup
metadata: {name: reviews, namespace: bookinfo}
spec:
  template: {serviceAccount: reviews, ports: {grpc: 3550}}
  probe:
    periodSeconds: 5
    grpc: {port: 3550}
`},
		{name: "tcp probe out of range", doc: `
apiVersion: networking.istio.io/v1alpha3
kind: WorkloadGroup
metadata: {name: reviews, namespace: bookinfo}
spec:
  template: {serviceAccount: reviews}
  probe:
    tcpSocket: {port: 65536}
`, errs: []string{"WorkloadGroup bookinfo/reviews", "spec.probe.tcpSocket.port"}},
	})
}
