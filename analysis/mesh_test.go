package analysis

import (
	"slices"
	"testing"

	meshv1alpha1 "istio.io/api/mesh/v1alpha1"
	networking "istio.io/api/networking/v1alpha3"
	telemetry "istio.io/api/telemetry/v1alpha1"

	"github.com/meshguard/meshguard/meshconfig"
)

// The analyzers that read the mesh config (Istio's gvk.MeshConfig input):
// the mesh config given decides, nil is Istio's default.
func TestAnalyzersReadMeshConfig(t *testing.T) {
	parse := func(yaml string) *meshv1alpha1.MeshConfig {
		t.Helper()
		m, err := meshconfig.Parse([]byte(yaml))
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	se := Object{Kind: "ServiceEntry", Namespace: "shop", Name: "db", Spec: &networking.ServiceEntry{
		Hosts: []string{"db.example.com"}, Ports: []*networking.ServicePort{{Number: 5432, Name: "tcp", Protocol: "TCP"}}}}
	tel := Object{Kind: "Telemetry", Namespace: "shop", Name: "t", Spec: &telemetry.Telemetry{
		AccessLogging: []*telemetry.AccessLogging{{}},
		Tracing:       []*telemetry.Tracing{{Providers: []*telemetry.ProviderRef{{Name: "zipkin"}, {Name: "ls"}}}}}}
	authz := authzObject("mesh-root", "p", map[string]string{"app": "db"}, nil, nil) // selects shop's pod only as a root-namespace policy
	tests := []struct {
		name string
		mesh *meshv1alpha1.MeshConfig
		want []string
	}{
		{name: "Istio's default", want: []string{"IST0127 AuthorizationPolicy p", "IST0134 ServiceEntry db", "IST0157 Telemetry t"}},
		{name: "DNS capture with auto-allocation", mesh: parse("defaultConfig:\n  proxyMetadata:\n    ISTIO_META_DNS_CAPTURE: \"true\"\n    ISTIO_META_DNS_AUTO_ALLOCATE: \"true\"\n"),
			want: []string{"IST0127 AuthorizationPolicy p", "IST0157 Telemetry t"}},
		{name: "DNS capture with PILOT_ENABLE_IP_AUTOALLOCATE", mesh: parse("defaultConfig:\n  proxyMetadata:\n    ISTIO_META_DNS_CAPTURE: \"true\"\n    PILOT_ENABLE_IP_AUTOALLOCATE: \"true\"\n"),
			want: []string{"IST0127 AuthorizationPolicy p", "IST0157 Telemetry t"}},
		{name: "auto-allocation without DNS capture", mesh: parse("defaultConfig:\n  proxyMetadata:\n    ISTIO_META_DNS_AUTO_ALLOCATE: \"true\"\n"),
			want: []string{"IST0127 AuthorizationPolicy p", "IST0134 ServiceEntry db", "IST0157 Telemetry t"}},
		{name: "capture not exactly true", mesh: parse("defaultConfig:\n  proxyMetadata:\n    ISTIO_META_DNS_CAPTURE: \"True\"\n    ISTIO_META_DNS_AUTO_ALLOCATE: \"true\"\n"),
			want: []string{"IST0127 AuthorizationPolicy p", "IST0134 ServiceEntry db", "IST0157 Telemetry t"}},
		{name: "default access log providers", mesh: parse("extensionProviders:\n- name: envoy\n  envoyFileAccessLog:\n    path: /dev/stdout\ndefaultProviders:\n  accessLogging: [envoy]\n"),
			want: []string{"IST0127 AuthorizationPolicy p", "IST0134 ServiceEntry db"}},
		{name: "a Lightstep provider named in tracing", mesh: parse("extensionProviders:\n- name: ls\n  lightstep:\n    service: ls.example.com\n    port: 8080\n    accessToken: x\n"),
			want: []string{"IST0127 AuthorizationPolicy p", "IST0002 Telemetry t spec.tracing[0].providers[1]", "IST0134 ServiceEntry db", "IST0157 Telemetry t"}},
		{name: "root namespace", mesh: parse("rootNamespace: mesh-root\n"),
			want: []string{"IST0134 ServiceEntry db", "IST0157 Telemetry t"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := Input{Objects: []Object{se, tel, authz}, Mesh: tt.mesh, AllWorkloads: true,
				Namespaces: map[string]map[string]string{"shop": nil, "mesh-root": nil},
				Workloads: []Workload{{Kind: "Pod", Namespace: "shop", Name: "db-0", Labels: map[string]string{"app": "db"},
					Containers: []Container{{Name: "istio-proxy", Image: "proxyv2"}}}}}
			var got []string
			for _, m := range Analyze(in) {
				s := m.Code + " " + m.Kind + " " + m.Object
				if m.Code == Deprecated {
					s += " " + m.Field
				}
				if m.Code != NamespaceNotInjected {
					got = append(got, s)
				}
			}
			slices.Sort(got)
			slices.Sort(tt.want)
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
