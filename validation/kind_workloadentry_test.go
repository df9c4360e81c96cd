package validation

import (
	"testing"

	networking "istio.io/api/networking/v1alpha3"
)

func TestValidateWorkloadEntry(t *testing.T) {
	runKindCases(t, validateWorkloadEntry, []kindCase{
		{name: "full", spec: &networking.WorkloadEntry{Address: "1.2.3.4", ServiceAccount: "sa", Network: "net",
			Labels: map[string]string{"app": "a"}, Ports: map[string]uint32{"http": 1}, Weight: 2, Locality: "r/z/s"}},
		{name: "fqdn", spec: &networking.WorkloadEntry{Address: "vm1.example.com"}},
		{name: "ipv6", spec: &networking.WorkloadEntry{Address: "2001:db8::1"}},
		{name: "uds path", spec: &networking.WorkloadEntry{Address: "unix:///foo/bar"}},
		{name: "uds abstract", spec: &networking.WorkloadEntry{Address: "unix://@foo"}},
		{name: "network without address warns", spec: &networking.WorkloadEntry{Network: "net"},
			warns: []string{"spec.address: Invalid value: address is unset with network net"}},
		{name: "missing address", spec: &networking.WorkloadEntry{},
			errs: []string{"spec.address: Required value: Address is required"}},
		{name: "uds dir", spec: &networking.WorkloadEntry{Address: "unix:///dir/"},
			errs: []string{`spec.address: Invalid value: "unix:///dir/": UDS may not be a dir`}},
		{name: "uds relative", spec: &networking.WorkloadEntry{Address: "unix://relative"},
			errs: []string{"UDS must be an absolute path or abstract socket"}},
		{name: "uds with ports", spec: &networking.WorkloadEntry{Address: "unix://@foo", Ports: map[string]uint32{"http": 80}},
			errs: []string{"spec.ports: Invalid value: UDS may not include ports"}},
		{name: "bad fqdn", spec: &networking.WorkloadEntry{Address: "not_a_host"},
			errs: []string{`spec.address: Invalid value: "not_a_host"`}},
		{name: "bad ports", spec: &networking.WorkloadEntry{Address: "1.1.1.1", Ports: map[string]uint32{"http": 99999, "@": 80, "zero": 0}},
			errs: []string{"spec.ports[http]: Invalid value: 99999", "spec.ports[@]: Invalid value: \"@\"", "spec.ports[zero]: Invalid value: 0"}},
		{name: "bad labels", spec: &networking.WorkloadEntry{Address: "1.1.1.1",
			Labels: map[string]string{"bad key": "v", "k": "value-that-is-much-longer-than-sixty-three-characters-which-kubernetes-rejects"}},
			errs: []string{"spec.labels[bad key]", "spec.labels[k]"}},
		// Stricter than Istio (docs/compatibility.md "Shared building blocks"): Istio's
		// labels.Instance.Validate takes an upper-case key prefix, Kubernetes does not.
		{name: "label key prefix upper case", spec: &networking.WorkloadEntry{Address: "1.1.1.1",
			Labels: map[string]string{"Example.com/app": "a"}},
			errs: []string{`spec.labels[Example.com/app]: Invalid value: "Example.com/app": invalid tag key`}},
		{name: "null", spec: (*networking.WorkloadEntry)(nil), errs: []string{"spec: Required value"}},
	})
}

func TestWorkloadEntryYAML(t *testing.T) {
	runYAMLCases(t, []yamlCase{
		{name: "valid", doc: `
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: vm, namespace: ns}
spec: {address: 1.2.3.4, ports: {http: 8080}}
`},
		{name: "bad fqdn", doc: `
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: vm, namespace: ns}
spec: {address: "under_score.example.com"}
`, errs: []string{"WorkloadEntry ns/vm", "spec.address"}},
	})
}
