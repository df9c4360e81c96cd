package webhook

import (
	"fmt"
	"net/url"
	"testing"
)

// Rows of Istio's pkg/kube/inject/webhook_test.go tables that are about the
// webhook (the /inject handler and its URL path), re-expressed as meshguard
// inputs; the injector's rows are in ../injector/istio_unit_tables_test.go.
// Left out: TestDetectNativeSidecar, whose stored rows are from an Istio
// with an older minimum kubelet (a 1.32 node still native); at 86c9f01
// detectNativeSidecar requires 1.33 on every node, as TestNodeTrackerDecide
// asserts. TestNewWebhookConfigParsingError/Success: meshguard validates the
// values before serving (TestSetupInjection).

// TestIstioParseInjectEnvs is Istio's TestParseInjectEnvs (parseInjectEnvs,
// pkg/kube/inject/webhook.go) through proxyEnvFromPath, the parser the
// handler calls with the request's URL path (decoded, as Istio's
// r.URL.Path). Istio returns an empty map where meshguard returns nil for the
// plain paths; both add no env var.
func TestIstioParseInjectEnvs(t *testing.T) {
	decoded := func(raw string) string {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		return u.Path
	}
	for _, tc := range []struct {
		name, in string
		want     map[string]string
	}{
		{"empty", "/", map[string]string{}},
		{"no-kv", "/inject", map[string]string{}},
		{"no-kv-with-tail", "/inject/", map[string]string{}},
		{"one-kv", "/inject/cluster/cluster1", map[string]string{"ISTIO_META_CLUSTER_ID": "cluster1"}},
		{"two-kv", "/inject/cluster/cluster1/net/network1/", map[string]string{"ISTIO_META_CLUSTER_ID": "cluster1", "ISTIO_META_NETWORK": "network1"}},
		{"kv-with-slashes", "/inject/cluster/cluster--slash--1/net/network--slash--1", map[string]string{"ISTIO_META_CLUSTER_ID": "cluster/1", "ISTIO_META_NETWORK": "network/1"}},
		{"not-predefined-kv", "/inject/cluster/cluster1/custom_env/foo", map[string]string{"ISTIO_META_CLUSTER_ID": "cluster1", "CUSTOM_ENV": "foo"}},
		{"one-key-without-value", "/inject/cluster", map[string]string{}},
		{"key-without-value", "/inject/cluster/cluster1/network", map[string]string{"ISTIO_META_CLUSTER_ID": "cluster1"}},
		{"key-with-values-contain-slashes", "/inject/:ENV:cluster=cluster2:ENV:rootpage=/foo/bar", map[string]string{"ISTIO_META_CLUSTER_ID": "cluster2", "ROOTPAGE": "/foo/bar"}},
		{"no-predefined-kv-with-values-contain-ENV-separator", "/inject/rootpage1/value1/rootpage2/:ENV:abcd=efgh", map[string]string{"ROOTPAGE1": "value1", "ROOTPAGE2": ":ENV:abcd=efgh"}},
		{"no-predefined-kv-with-values-contain-ENV-separator-invalid-format", "/inject/:ENV:rootpage1=efgh:ENV:=abb:ENV:=", map[string]string{"ROOTPAGE1": "efgh"}},
		{"no-predefined-kv-with-mixed-values", decoded("%2Finject%2Frootpage1%2Ffoo%2Frootpage2%2Fbar"), map[string]string{"ROOTPAGE1": "foo", "ROOTPAGE2": "bar"}},
		{"no-predefined-kv-with-slashes", decoded("%2Finject%2F%3AENV%3Arootpage1%3D%2Ffoo%2Fbar%3AENV%3Arootpage2%3D%2Fbar%2Ftoe"), map[string]string{"ROOTPAGE1": "/foo/bar", "ROOTPAGE2": "/bar/toe"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, _ := proxyEnvFromPath(tc.in)
			if len(got) != len(tc.want) || fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("proxyEnvFromPath(%q) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}
