package deploy

import (
	"context"
	"os"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	meshconfig "istio.io/api/mesh/v1alpha1"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/meshguard/meshguard/validation"
)

// parseMeshConfig decodes mesh config YAML with Istio's own MeshConfig
// message, rejecting unknown fields, as istiod would.
func parseMeshConfig(t *testing.T, where, data string) *meshconfig.MeshConfig {
	t.Helper()
	js, err := yaml.YAMLToJSON([]byte(data))
	if err != nil {
		t.Fatalf("%s: %v", where, err)
	}
	mc := &meshconfig.MeshConfig{}
	if err := protojson.Unmarshal(js, mc); err != nil {
		t.Fatalf("%s is not a valid Istio MeshConfig: %v", where, err)
	}
	return mc
}

// TestExamplesRouteToMeshguard checks that the example extension provider
// points at the gRPC port of the Service the chart renders, and that the
// example CUSTOM AuthorizationPolicy names that provider.
func TestExamplesRouteToMeshguard(t *testing.T) {
	read := func(name string) string {
		data, err := os.ReadFile(repoPath(t, "deploy", "examples", name))
		if err != nil {
			t.Fatalf("read example: %v", err)
		}
		return string(data)
	}
	cm := &corev1.ConfigMap{}
	if err := yaml.UnmarshalStrict([]byte(read("meshconfig-extension-provider.yaml")), cm); err != nil {
		t.Fatalf("extension provider example: %v", err)
	}
	mc := parseMeshConfig(t, "examples ConfigMap istio key mesh", cm.Data["mesh"])
	if len(mc.ExtensionProviders) != 1 {
		t.Fatalf("want one extension provider, got %d", len(mc.ExtensionProviders))
	}
	provider := mc.ExtensionProviders[0]
	grpc := provider.GetEnvoyExtAuthzGrpc()
	if grpc == nil {
		t.Fatalf("provider %q is not envoyExtAuthzGrpc", provider.Name)
	}
	svc := parse(t, renderHelm(t)).service(t)
	wantHost := svc.Name + "." + svc.Namespace + ".svc.cluster.local"
	portOK := false
	for _, p := range svc.Spec.Ports {
		portOK = portOK || (uint32(p.Port) == grpc.Port && p.AppProtocol != nil && *p.AppProtocol == "grpc")
	}
	if grpc.Service != wantHost || !portOK {
		t.Errorf("provider points at %s:%d, want %s on the Service's gRPC port", grpc.Service, grpc.Port, wantHost)
	}
	if grpc.FailOpen {
		t.Error("the example must fail closed")
	}
	if d := grpc.GetTimeout().AsDuration(); d <= 0 || d.Seconds() > 1 {
		t.Errorf("timeout %v: set well below Istio's 600s default", d)
	}

	ap := &securityv1.AuthorizationPolicy{}
	if err := yaml.UnmarshalStrict([]byte(read("authorizationpolicy-custom.yaml")), ap); err != nil {
		t.Fatalf("AuthorizationPolicy example: %v", err)
	}
	if ap.Spec.GetAction().String() != "CUSTOM" || ap.Spec.GetProvider().GetName() != provider.Name {
		t.Errorf("AuthorizationPolicy action %v provider %q, want CUSTOM with provider %q", ap.Spec.GetAction(), ap.Spec.GetProvider().GetName(), provider.Name)
	}
	if len(ap.Spec.GetSelector().GetMatchLabels()) == 0 {
		t.Error("the example should select a workload, not a whole namespace")
	}
	// meshguard's own validator (what /validate runs) accepts it.
	var obj map[string]any
	if err := yaml.Unmarshal([]byte(read("authorizationpolicy-custom.yaml")), &obj); err != nil {
		t.Fatalf("AuthorizationPolicy example: %v", err)
	}
	res := validation.ValidateObject(context.Background(), obj, validation.Options{})
	if res.Skipped || len(res.Errors) > 0 || len(res.Warnings) > 0 {
		t.Errorf("meshguard's validation of the example: skipped %v, errors %v, warnings %v", res.Skipped, res.Errors, res.Warnings)
	}
}

// TestChartMeshConfigIsIstioMeshConfig keeps the chart's default mesh config
// decodable by Istio's MeshConfig message.
func TestChartMeshConfigIsIstioMeshConfig(t *testing.T) {
	cm := parse(t, renderHelm(t)).configMap(t)
	mc := parseMeshConfig(t, "chart ConfigMap "+cm.Name+" key mesh.yaml", cm.Data["mesh.yaml"])
	if mc.RootNamespace != "istio-system" || mc.TrustDomain != "cluster.local" {
		t.Errorf("root namespace %q trust domain %q", mc.RootNamespace, mc.TrustDomain)
	}
}
