package validation

import (
	"testing"

	"github.com/meshguard/meshguard/meshconfig"
)

// TestMeshProxyConfigDefaults: Istio's default ProxyConfig passes (the
// injector checks annotations applied onto it), and an empty one fails on
// every field Istio requires.
func TestMeshProxyConfigDefaults(t *testing.T) {
	if errs := MeshProxyConfig(meshconfig.DefaultProxyConfig()); len(errs) > 0 {
		t.Errorf("default ProxyConfig rejected: %v", errs)
	}
	want := map[string]bool{"configPath": true, "binaryPath": true, "serviceCluster": true, "drainDuration": true,
		"discoveryAddress": true, "proxyAdminPort": true, "statusPort": true}
	for _, e := range MeshProxyConfig(nil) {
		delete(want, e.Field)
	}
	if len(want) > 0 {
		t.Errorf("an empty ProxyConfig passes on %v", want)
	}
}
