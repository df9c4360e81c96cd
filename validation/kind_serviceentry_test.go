package validation

import (
	"testing"

	networking "istio.io/api/networking/v1alpha3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func sePort(name string, number uint32, proto string) *networking.ServicePort {
	return &networking.ServicePort{Name: name, Number: number, Protocol: proto}
}

func TestValidateServiceEntry(t *testing.T) {
	const tcpWarn = "addresses are required for ports serving TCP (or unset) protocol"
	http80 := []*networking.ServicePort{sePort("http", 80, "HTTP")}
	runKindCases(t, validateServiceEntry, []kindCase{
		{name: "minimal DNS", spec: &networking.ServiceEntry{
			Hosts: []string{"api.example.com"}, Ports: http80, Resolution: networking.ServiceEntry_DNS}},
		{name: "no hosts", spec: &networking.ServiceEntry{Ports: http80},
			errs: []string{"spec.hosts: Required value"}},
		{name: "host star", spec: &networking.ServiceEntry{Hosts: []string{"*"}},
			errs: []string{`spec.hosts[0]: Invalid value: "*": invalid host *: hostname cannot be wildcard`}},
		{name: "bad host", spec: &networking.ServiceEntry{Hosts: []string{"bad_host.com"}},
			errs: []string{"spec.hosts[0]"}},
		{name: "partial wildcard warns", spec: &networking.ServiceEntry{Hosts: []string{"*x.example.com"}},
			warns: []string{"spec.hosts[0]: Invalid value: \"*x.example.com\": partial wildcard"}},
		{name: "selector and endpoints", spec: &networking.ServiceEntry{
			Hosts: []string{"a.com"}, Resolution: networking.ServiceEntry_STATIC,
			WorkloadSelector: &networking.WorkloadSelector{Labels: map[string]string{"app": "a"}},
			Endpoints:        []*networking.WorkloadEntry{{Address: "1.2.3.4"}}},
			errs: []string{"only one of WorkloadSelector or Endpoints can be set"}},
		{name: "selector wildcard value", spec: &networking.ServiceEntry{
			Hosts: []string{"a.com"}, WorkloadSelector: &networking.WorkloadSelector{Labels: map[string]string{"val": "*"}}},
			errs:  []string{`spec.workloadSelector.labels[val]: Invalid value: "*": wildcard is not supported in selector`},
			warns: []string{"workloadSelector is ignored with resolution NONE"}},
		{name: "empty selector warns", spec: &networking.ServiceEntry{
			Hosts: []string{"a.com"}, Resolution: networking.ServiceEntry_STATIC, WorkloadSelector: &networking.WorkloadSelector{}},
			warns: []string{"service entry: workload selector specified without labels"}},
		{name: "address IP and CIDR with NONE", spec: &networking.ServiceEntry{
			Hosts: []string{"a.com"}, Addresses: []string{"1.2.3.4", "10.0.0.0/8", "2001:db8::/32"}}},
		{name: "bad address", spec: &networking.ServiceEntry{Hosts: []string{"a.com"}, Addresses: []string{"1.2.3.4/99"}},
			errs: []string{"spec.addresses[0]"}},
		{name: "CIDR with DNS", spec: &networking.ServiceEntry{Hosts: []string{"a.com"}, Addresses: []string{"1.2.3.0/24"},
			Resolution: networking.ServiceEntry_DNS, Ports: http80},
			errs: []string{"spec.addresses[0]: Invalid value: \"1.2.3.0/24\": CIDR addresses are allowed only for NONE/STATIC resolution types"}},
		{name: "duplicate port name and number", spec: &networking.ServiceEntry{Hosts: []string{"a.com"},
			Addresses: []string{"1.1.1.1"},
			Ports:     []*networking.ServicePort{sePort("a", 1, "TCP"), sePort("a", 12, "TCP"), sePort("b", 1, "TCP")}},
			errs: []string{`spec.ports[1].name: Invalid value: "a": service entry port name "a" already defined`,
				"spec.ports[2].number: Invalid value: 1: service entry port 1 already defined"}},
		{name: "port range and target port", spec: &networking.ServiceEntry{Hosts: []string{"a.com"},
			Ports: []*networking.ServicePort{{Name: "a", Number: 99999, Protocol: "HTTP", TargetPort: 70000}}},
			errs: []string{"spec.ports[0].number: Invalid value: 99999", "spec.ports[0].targetPort: Invalid value: 70000"}},
		{name: "port 0 rejected", spec: &networking.ServiceEntry{Hosts: []string{"a.com"}, Ports: []*networking.ServicePort{sePort("a", 0, "HTTP")}},
			errs: []string{"spec.ports[0].number: Invalid value: 0"}},
		{name: "bad port name and protocol", spec: &networking.ServiceEntry{Hosts: []string{"a.com"},
			Ports: []*networking.ServicePort{sePort("Bad_Name", 80, "KAFKA")}},
			errs:  []string{"spec.ports[0].name", "spec.ports[0].protocol: Invalid value: \"KAFKA\": unrecognized protocol"},
			warns: nil},
		{name: "TCP without addresses warns", spec: &networking.ServiceEntry{Hosts: []string{"a.com"},
			Ports: []*networking.ServicePort{sePort("tcp", 9000, "TCP"), sePort("sniff", 9001, "")}},
			warns: []string{"spec.ports[0]: Invalid value: " + tcpWarn, "spec.ports[1]"}},
		// Istio warns only when it will not auto-allocate an address
		// (serviceentry.ShouldV2AutoAllocateIPFromConfig, PILOT_ENABLE_IP_AUTOALLOCATE on by default):
		// resolution NONE or the opt-out label; the protocol test is case-sensitive.
		{name: "TCP without addresses, DNS, auto-allocated", spec: &networking.ServiceEntry{Hosts: []string{"a.com"}, Resolution: networking.ServiceEntry_DNS,
			Ports: []*networking.ServicePort{sePort("tcp", 9000, "TCP"), sePort("sniff", 9001, "")}}},
		{name: "TCP without addresses, auto-allocation opted out", meta: metav1.ObjectMeta{Labels: map[string]string{"networking.istio.io/enable-autoallocate-ip": "False"}},
			spec: &networking.ServiceEntry{Hosts: []string{"a.com"}, Resolution: networking.ServiceEntry_DNS,
				Ports: []*networking.ServicePort{sePort("tcp", 9000, "TCP"), sePort("lower", 9001, "tcp")}},
			warns: []string{"spec.ports[0]: Invalid value: " + tcpWarn}},
		{name: "NONE with endpoints", spec: &networking.ServiceEntry{Hosts: []string{"a.com"},
			Endpoints: []*networking.WorkloadEntry{{Address: "1.2.3.4"}}},
			errs: []string{"spec.endpoints: Invalid value: NONE mode cannot set endpoints"}},
		{name: "STATIC endpoints ok", spec: &networking.ServiceEntry{Hosts: []string{"a.com"}, Ports: http80,
			Resolution: networking.ServiceEntry_STATIC,
			Endpoints: []*networking.WorkloadEntry{
				{Address: "1.2.3.4", Ports: map[string]uint32{"http": 8080}, Labels: map[string]string{"v": "1"}},
				{Address: "unix:///var/run/app.sock"}}}},
		{name: "STATIC FQDN endpoint and unknown port name", spec: &networking.ServiceEntry{Hosts: []string{"a.com"}, Ports: http80,
			Resolution: networking.ServiceEntry_STATIC,
			Endpoints:  []*networking.WorkloadEntry{{Address: "host.example.com", Ports: map[string]uint32{"grpc": 8080}}}},
			errs: []string{"spec.endpoints[0].address: Invalid value: \"host.example.com\": endpoint address must be an IP address or a unix:// socket with resolution STATIC",
				`spec.endpoints[0].ports[grpc]: Invalid value: "grpc": endpoint port "grpc" is not one of the service entry's port names`}},
		{name: "STATIC UDS needs exactly one port", spec: &networking.ServiceEntry{Hosts: []string{"a.com"},
			Addresses:  []string{"1.1.1.1"},
			Ports:      []*networking.ServicePort{sePort("a", 1, "HTTP"), sePort("b", 2, "HTTP")},
			Resolution: networking.ServiceEntry_STATIC,
			Endpoints:  []*networking.WorkloadEntry{{Address: "unix:///sock"}}},
			errs: []string{"requires exactly 1 service port, found 2"}},
		{name: "DNS wildcard without endpoints", spec: &networking.ServiceEntry{Hosts: []string{"*.example.com"}, Ports: http80,
			Resolution: networking.ServiceEntry_DNS},
			errs: []string{"spec.hosts[0]: Invalid value: \"*.example.com\": hosts must be FQDNs without wildcards when resolution is DNS"}},
		{name: "DNS FQDN endpoints", spec: &networking.ServiceEntry{Hosts: []string{"a.com"}, Ports: http80,
			Resolution: networking.ServiceEntry_DNS,
			Endpoints:  []*networking.WorkloadEntry{{Address: "t.istio-system.svc.cluster.local", Ports: map[string]uint32{"http": 8080}}}}},
		{name: "DNS bad endpoint", spec: &networking.ServiceEntry{Hosts: []string{"a.com"}, Ports: http80,
			Resolution: networking.ServiceEntry_DNS,
			Endpoints:  []*networking.WorkloadEntry{{Address: "bad_host!"}, {Address: "unix:///x"}, {Address: "1.1.1.1", Labels: map[string]string{"bad key": "x"}}}},
			errs: []string{"spec.endpoints[0].address", "spec.endpoints[1].address", "spec.endpoints[2].labels[bad key]"}},
		{name: "DNS_ROUND_ROBIN two endpoints", spec: &networking.ServiceEntry{Hosts: []string{"a.com"}, Ports: http80,
			Resolution: networking.ServiceEntry_DNS_ROUND_ROBIN,
			Endpoints:  []*networking.WorkloadEntry{{Address: "a.example.com"}, {Address: "b.example.com"}}},
			errs: []string{"DNS_ROUND_ROBIN mode cannot have multiple endpoints"}},
		{name: "multiple hosts with TCP port", spec: &networking.ServiceEntry{Hosts: []string{"a.com", "b.com"},
			Addresses: []string{"1.1.1.1"}, Ports: []*networking.ServicePort{sePort("tcp", 9000, "TCP")},
			Resolution: networking.ServiceEntry_DNS},
			errs:  []string{"spec.ports[0].protocol: Invalid value: \"TCP\": multiple hosts provided with non-HTTP, non-TLS ports"},
			warns: []string{"addresses with several hosts and a TCP port"}},
		// Istio's warning takes the first port that protocol.Parse calls TCP (IsTCP);
		// an unset protocol is not one.
		{name: "multiple hosts with addresses and a sniffed port", spec: &networking.ServiceEntry{Hosts: []string{"a.com", "b.com"},
			Addresses: []string{"1.1.1.1"}, Ports: []*networking.ServicePort{sePort("sniff", 9000, "")},
			Resolution: networking.ServiceEntry_DNS},
			errs: []string{`spec.ports[0].protocol: Invalid value: "": multiple hosts provided with non-HTTP, non-TLS ports`}},
		{name: "multiple hosts with HTTP ok", spec: &networking.ServiceEntry{Hosts: []string{"a.com", "b.com"},
			Ports: []*networking.ServicePort{sePort("http", 80, "HTTP"), sePort("tls", 443, "TLS")}, Resolution: networking.ServiceEntry_DNS}},
		{name: "DYNAMIC_DNS ok", spec: &networking.ServiceEntry{Hosts: []string{"*.example.com"},
			Ports: []*networking.ServicePort{sePort("tls", 443, "TLS")}, Resolution: networking.ServiceEntry_DYNAMIC_DNS}},
		{name: "DYNAMIC_DNS rules", meta: metav1.ObjectMeta{Labels: map[string]string{"istio.io/use-waypoint": "wp"}},
			spec: &networking.ServiceEntry{Hosts: []string{"a.example.com"}, Addresses: []string{"1.1.1.1"},
				Ports:      []*networking.ServicePort{sePort("tcp", 443, "TCP")},
				Endpoints:  []*networking.WorkloadEntry{{Address: "1.1.1.1"}},
				Location:   networking.ServiceEntry_MESH_INTERNAL,
				Resolution: networking.ServiceEntry_DYNAMIC_DNS},
			errs: []string{"hosts must be wildcarded", "addresses are not allowed with resolution DYNAMIC_DNS",
				"endpoints are not allowed with resolution DYNAMIC_DNS", "spec.ports[0].protocol", "spec.location"}},
		{name: "unknown resolution", spec: &networking.ServiceEntry{Hosts: []string{"a.com"}, Ports: http80, Resolution: 42},
			errs: []string{"spec.resolution: Invalid value: \"42\": unsupported resolution type"}},
		{name: "exportTo", spec: &networking.ServiceEntry{Hosts: []string{"a.com"}, Ports: http80, ExportTo: []string{".", "default", "~"}},
			errs: []string{"spec.exportTo[1]: Invalid value: \"default\": duplicate exportTo entry", "spec.exportTo[2]"}},
		// Stricter than Istio (docs/compatibility.md): no namespace name has upper case.
		{name: "exportTo upper case namespace", spec: &networking.ServiceEntry{Hosts: []string{"a.com"}, Ports: http80, ExportTo: []string{"Prod"}},
			errs: []string{`spec.exportTo[0]: Invalid value: "Prod": exportTo entry must be`}},
		{name: "exportTo tilde alone", spec: &networking.ServiceEntry{Hosts: []string{"a.com"}, Ports: http80, ExportTo: []string{"~"}}},
		{name: "null port", spec: &networking.ServiceEntry{Hosts: []string{"a.com"}, Ports: []*networking.ServicePort{nil}},
			errs: []string{"spec.ports[0]: Required value"}},
	})
}

func TestServiceEntryYAML(t *testing.T) {
	runYAMLCases(t, []yamlCase{
		{name: "valid v1", doc: `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ext, namespace: default}
spec:
  hosts: [api.example.com]
  ports: [{number: 443, name: https, protocol: TLS}]
  resolution: DNS
`},
		{name: "v1beta1 wildcard with DNS", doc: `
apiVersion: networking.istio.io/v1beta1
kind: ServiceEntry
metadata: {name: ext}
spec:
  hosts: ["*.example.com"]
  ports: [{number: 443, name: https, protocol: TLS}]
  resolution: DNS
`, errs: []string{"ServiceEntry default/ext", "spec.hosts[0]", "hosts must be FQDNs without wildcards"}},
	})
}
