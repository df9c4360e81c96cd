package analysis

import (
	"slices"
	"strings"
	"testing"

	networking "istio.io/api/networking/v1alpha3"
)

// gatewayWithCredentials is Gateway default/gw selecting app=gw, one
// server per credentialName ("" a server with TLS but no credentialName).
func gatewayWithCredentials(selector map[string]string, names ...string) Object {
	gw := &networking.Gateway{Selector: selector}
	for _, n := range names {
		gw.Servers = append(gw.Servers, &networking.Server{Port: &networking.Port{Number: 443, Name: "https", Protocol: "HTTPS"},
			Hosts: []string{"*"}, Tls: &networking.ServerTLSSettings{Mode: networking.ServerTLSSettings_SIMPLE, CredentialName: n}})
	}
	return Object{Kind: "Gateway", Namespace: "default", Name: "gw", Spec: gw}
}

// Edge cases of the gateway Secret analyzer (gatewaysecret.go) Istio's
// gatewaySecret row does not cover; Istio's rule where Istio decides
// (secret.go SecretAnalyzer.Analyze, getGatewayNamespace,
// resource.NewShortOrFullName), meshguard's where the comment says so.
func TestGatewaySecretEdges(t *testing.T) {
	gwPod := func(ns string) Workload {
		return Workload{Kind: "Pod", Namespace: ns, Name: "gw-" + ns, Labels: map[string]string{"app": "gw"}}
	}
	sel := map[string]string{"app": "gw"}
	for _, tc := range []struct {
		name       string
		gateway    Object
		workloads  []Workload
		secrets    map[string][]string
		allSecrets bool
		want       []string // fields of the IST0101 credentialName messages
		listed     []string // GatewaySecretNamespaces
	}{
		{name: "secret in the pods' namespace", gateway: gatewayWithCredentials(sel, "cert"), workloads: []Workload{gwPod("ingress")},
			secrets: map[string][]string{"ingress": {"cert"}}, allSecrets: true, listed: []string{"ingress"}},
		{name: "secret only in the Gateway's namespace (Istio reads the pods')", gateway: gatewayWithCredentials(sel, "cert"),
			workloads: []Workload{gwPod("ingress")}, secrets: map[string][]string{"default": {"cert"}}, allSecrets: true,
			want: []string{"spec.servers[0].tls.credentialName"}, listed: []string{"ingress"}},
		{name: "not known complete (files): nothing", gateway: gatewayWithCredentials(sel, "cert"), workloads: []Workload{gwPod("ingress")},
			listed: []string{"ingress"}},
		{name: "second server, no credentialName on the first", gateway: gatewayWithCredentials(sel, "", "cert", "missing"),
			workloads: []Workload{gwPod("ingress")}, secrets: map[string][]string{"ingress": {"cert"}}, allSecrets: true,
			want: []string{"spec.servers[2].tls.credentialName"}, listed: []string{"ingress"}},
		{name: "ns/name names another namespace's Secret", gateway: gatewayWithCredentials(sel, "certs/cert", "certs/other"),
			workloads: []Workload{gwPod("ingress")}, secrets: map[string][]string{"certs": {"cert"}}, allSecrets: true,
			want: []string{"spec.servers[1].tls.credentialName"}, listed: []string{"certs"}},
		{name: "kubernetes:// prefix: no namespace to list (meshguard: not reported)", gateway: gatewayWithCredentials(sel, "kubernetes://cert"),
			workloads: []Workload{gwPod("ingress")}, allSecrets: true},
		{name: "pods in two namespaces, Secret in one (meshguard: reported)", gateway: gatewayWithCredentials(sel, "cert"),
			workloads: []Workload{gwPod("a"), gwPod("b")}, secrets: map[string][]string{"a": {"cert"}}, allSecrets: true,
			want: []string{"spec.servers[0].tls.credentialName"}, listed: []string{"a", "b"}},
		{name: "empty selector: every pod", gateway: gatewayWithCredentials(nil, "cert"),
			workloads: []Workload{{Kind: "Pod", Namespace: "x", Name: "p"}}, allSecrets: true,
			want: []string{"spec.servers[0].tls.credentialName"}, listed: []string{"x"}},
		{name: "selector matching no pod: the selector's IST0101 only (gateway.go)", gateway: gatewayWithCredentials(sel, "cert"),
			allSecrets: true},
		{name: "a Deployment read from a cluster is not a pod", gateway: gatewayWithCredentials(sel, "cert"),
			workloads: []Workload{{Kind: "Deployment", Namespace: "ingress", Name: "gw", Labels: sel, Stored: true}}, allSecrets: true},
		{name: "a secret of the same name in another namespace does not count", gateway: gatewayWithCredentials(sel, "cert"),
			workloads: []Workload{gwPod("ingress")}, secrets: map[string][]string{"istio-system": {"cert"}}, allSecrets: true,
			want: []string{"spec.servers[0].tls.credentialName"}, listed: []string{"ingress"}},
	} {
		in := Input{Objects: []Object{tc.gateway}, Workloads: tc.workloads, SecretNames: tc.secrets, AllSecrets: tc.allSecrets}
		var got []string
		for _, m := range gatewaySecrets(&in) {
			if !strings.HasPrefix(m.Message, "Referenced credentialName not found: ") || m.Code != "IST0101" || m.Level != Error {
				t.Errorf("%s: unexpected message %v", tc.name, m)
			}
			got = append(got, m.Field)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
		if listed := GatewaySecretNamespaces(&in); !slices.Equal(listed, tc.listed) {
			t.Errorf("%s: GatewaySecretNamespaces %q, want %q", tc.name, listed, tc.listed)
		}
	}
}

// A Secret document gives its name (in the default namespace when it names
// none) and nothing else; one without a name is an error naming the field.
func TestAddKubernetesObjectSecretNameOnly(t *testing.T) {
	var in Input
	for _, obj := range []map[string]any{
		{"apiVersion": "v1", "kind": "Secret", "metadata": map[string]any{"name": "a", "namespace": "ns"}, "data": map[string]any{"tls.key": "c2VjcmV0"}},
		{"apiVersion": "v1", "kind": "Secret", "metadata": map[string]any{"name": "b"}, "stringData": map[string]any{"k": "secret"}},
	} {
		if known, err := in.AddKubernetesObject(obj, "default"); !known || err != nil {
			t.Fatalf("%v: known %v, err %v", obj, known, err)
		}
	}
	if want := map[string][]string{"ns": {"a"}, "default": {"b"}}; len(in.SecretNames) != 2 ||
		!slices.Equal(in.SecretNames["ns"], want["ns"]) || !slices.Equal(in.SecretNames["default"], want["default"]) {
		t.Errorf("SecretNames %v, want %v", in.SecretNames, want)
	}
	if len(in.Kube) != 0 || in.AllSecrets {
		t.Errorf("Kube %v, AllSecrets %v: want none, false", in.Kube, in.AllSecrets)
	}
	_, err := in.AddKubernetesObject(map[string]any{"apiVersion": "v1", "kind": "Secret", "metadata": map[string]any{"name": 3}}, "default")
	if err == nil || !strings.Contains(err.Error(), "Secret: metadata.name") {
		t.Errorf("a Secret without a string name: err %v", err)
	}
}

// GatewaySecretNamespaces leaves no selection memo in the caller's Input:
// the CLI lists more pods after asking, and a second question sees them.
func TestGatewaySecretNamespacesAfterMorePods(t *testing.T) {
	in := Input{Objects: []Object{gatewayWithCredentials(map[string]string{"app": "gw"}, "cert")}}
	pod := func(ns string) Workload {
		return Workload{Kind: "Pod", Namespace: ns, Name: "gw", Labels: map[string]string{"app": "gw"}}
	}
	in.Workloads = []Workload{pod("a")}
	if got := GatewaySecretNamespaces(&in); !slices.Equal(got, []string{"a"}) {
		t.Fatalf("first: %v, want [a]", got)
	}
	in.Workloads = append(in.Workloads, pod("b"))
	if got := GatewaySecretNamespaces(&in); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("after another pod: %v, want [a b]", got)
	}
}
