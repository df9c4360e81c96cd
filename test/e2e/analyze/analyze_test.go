// Package analyze tests `meshguard analyze --kubeconfig` end to end: a real
// kube-apiserver with the Istio CRDs, objects applied with the real kubectl,
// and the meshguard binary run against it as a user runs it.
package analyze

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/meshguard/meshguard/test/cluster"
)

// The objects stored in the cluster: bookinfo's reviews and ratings with a
// VirtualService routing to a subset no DestinationRule defines, a gateway
// workload (a Pod and its Service in istio-system) with a Gateway exposing one
// port the Service targets and one it does not, and a namespace "other" with
// a VirtualService naming a host that does not exist, a pod without a sidecar
// (IST0103: other is labelled for injection) and a ServiceEntry without
// addresses, which the mesh config of ConfigMap istio (DNS capture with
// auto-allocation) spares IST0134; and a Gateway whose servers name an
// existing and a missing Secret of the gateway pod's namespace (IST0101 for
// the missing one: Secret names are listed through the metadata API).
const stored = `apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: bookinfo}
spec:
  selector: {app: reviews}
  ports: [{name: http, port: 9080}]
---
apiVersion: v1
kind: Service
metadata: {name: ratings, namespace: bookinfo}
spec:
  selector: {app: ratings}
  ports: [{name: http, port: 9080}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: bookinfo}
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: bookinfo}
spec:
  hosts: [reviews]
  http:
  - route:
    - {destination: {host: reviews, subset: v1}, weight: 90}
    - {destination: {host: reviews, subset: v3}, weight: 10}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ratings, namespace: bookinfo}
spec:
  hosts: [ratings]
  http:
  - route:
    - destination: {host: ratings}
---
apiVersion: v1
kind: Pod
metadata:
  name: istio-ingressgateway-0
  namespace: istio-system
  labels: {istio: ingressgateway}
spec:
  containers: [{name: istio-proxy, image: proxyv2}]
---
apiVersion: v1
kind: Service
metadata: {name: istio-ingressgateway, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  ports: [{name: http2, port: 80, targetPort: 8080}]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: bookinfo-gateway, namespace: bookinfo}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 8080, name: http, protocol: HTTP}
    hosts: ["*"]
  - port: {number: 9090, name: http-alt, protocol: HTTP}
    hosts: ["*"]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: orphan, namespace: other}
spec:
  hosts: [orphan]
  http:
  - route:
    - destination: {host: does-not-exist}
---
apiVersion: v1
kind: Pod
metadata: {name: legacy-0, namespace: other}
spec:
  containers: [{name: app, image: app}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: db, namespace: other}
spec:
  hosts: [db.example.com]
  ports: [{number: 5432, name: tcp, protocol: TCP}]
  resolution: DNS
---
apiVersion: v1
kind: Secret
metadata: {name: present-cert, namespace: istio-system}
type: kubernetes.io/tls
stringData: {tls.crt: x, tls.key: x}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: tls-gateway, namespace: edge}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 8080, name: https-a, protocol: HTTPS}
    hosts: [a.example.com]
    tls: {mode: SIMPLE, credentialName: present-cert}
  - port: {number: 8080, name: https-b, protocol: HTTPS}
    hosts: [b.example.com]
    tls: {mode: SIMPLE, credentialName: missing-cert}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: istio, namespace: istio-system}
data:
  mesh: |
    defaultConfig:
      proxyMetadata:
        ISTIO_META_DNS_CAPTURE: "true"
        ISTIO_META_DNS_AUTO_ALLOCATE: "true"
`

type message struct {
	Code      string `json:"code"`
	Level     string `json:"level"`
	Kind      string `json:"kind"`
	Namespace string `json:"namespace"`
	Object    string `json:"object"`
	Field     string `json:"field"`
	Message   string `json:"message"`
}

func (m message) key() string {
	return m.Level + " " + m.Code + " " + m.Kind + " " + m.Namespace + "/" + m.Object + " " + m.Field
}

func TestAnalyzeKubeconfig(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bin := buildMeshguard(ctx, t)
	c := cluster.Start(t)
	// Labelled for injection, as a mesh's namespaces are; "default" is not,
	// so it gets istioctl's IST0102 (Info).
	for _, ns := range []string{"bookinfo", "other", "clean", "edge"} {
		cluster.CreateNamespace(t, c, ns, map[string]string{"istio-injection": "enabled"})
	}
	cluster.CreateNamespace(t, c, "istio-system", nil)
	if out, err := c.Kubectl(ctx, stored, "apply", "-f", "-"); err != nil {
		t.Fatalf("kubectl apply: %v\n%s", err, out)
	}

	analyze := func(args ...string) (int, []message, string) {
		t.Helper()
		cmd := exec.CommandContext(ctx, bin, append([]string{"analyze", "--kubeconfig", c.Kubeconfig}, args...)...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		code := 0
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			code = exit.ExitCode()
		} else if err != nil {
			t.Fatalf("meshguard analyze %v: %v", args, err)
		}
		var msgs []message
		if slices.Contains(args, "json") {
			if err := json.Unmarshal(stdout.Bytes(), &msgs); err != nil {
				t.Fatalf("meshguard analyze %v: output is not JSON: %v\n%s", args, err, stdout.String())
			}
		}
		return code, msgs, stdout.String() + stderr.String()
	}
	keys := func(msgs []message) []string {
		var out []string
		for _, m := range msgs {
			out = append(out, m.key())
		}
		slices.Sort(out)
		return out
	}

	// All namespaces: the missing subset and the missing host are IST0101
	// errors, the Gateway port the ingress Service does not target IST0162,
	// the namespace without an injection label IST0102; istioctl's exit code
	// 79 for messages at or above the threshold.
	code, msgs, out := analyze("-o", "json")
	want := []string{
		"Error IST0101 Gateway edge/tls-gateway spec.servers[1].tls.credentialName",
		"Error IST0101 VirtualService bookinfo/reviews spec.http[0].route[1].destination.subset",
		"Error IST0101 VirtualService other/orphan spec.http[0].route[0].destination.host",
		"Info IST0102 Namespace /default metadata.name",
		"Warning IST0103 Pod other/legacy-0 metadata.name",
		"Warning IST0162 Gateway bookinfo/bookinfo-gateway spec.servers[1].port.number",
	}
	if code != 79 || !slices.Equal(keys(msgs), want) {
		t.Fatalf("all namespaces: exit %d, messages %v, want exit 79 and %v\n%s", code, keys(msgs), want, out)
	}
	for _, m := range msgs {
		if m.Code == "IST0101" && m.Namespace == "bookinfo" && m.Message != `Referenced host+subset in destinationrule not found: "reviews+v3"` {
			t.Errorf("IST0101 does not name the subset: %q", m.Message)
		}
		if m.Code == "IST0162" && !strings.Contains(m.Message, "(port 9090)") {
			t.Errorf("IST0162 does not name the port: %q", m.Message)
		}
	}

	// -n scopes the analysis to one namespace.
	code, msgs, out = analyze("-n", "other", "-o", "json")
	if want := []string{"Error IST0101 VirtualService other/orphan spec.http[0].route[0].destination.host", "Warning IST0103 Pod other/legacy-0 metadata.name"}; code != 79 || !slices.Equal(keys(msgs), want) {
		t.Fatalf("-n other: exit %d, messages %v, want exit 79 and %v\n%s", code, keys(msgs), want, out)
	}
	// -S suppresses as istioctl's --suppress; without the cluster's mesh
	// config (--meshConfigFile overrides it) the ServiceEntry is IST0134.
	meshFile := filepath.Join(t.TempDir(), "mesh.yaml")
	if err := os.WriteFile(meshFile, []byte("rootNamespace: istio-system\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, msgs, out = analyze("-n", "other", "-S", "IST0103=Pod other/*", "--meshConfigFile", meshFile, "-o", "json")
	if want := []string{"Error IST0101 VirtualService other/orphan spec.http[0].route[0].destination.host", "Warning IST0134 ServiceEntry other/db spec.ports[0]"}; code != 79 || !slices.Equal(keys(msgs), want) {
		t.Fatalf("-n other -S --meshConfigFile: exit %d, messages %v, want exit 79 and %v\n%s", code, keys(msgs), want, out)
	}
	// In bookinfo, the Gateway's workload is found in istio-system.
	code, msgs, out = analyze("-n", "bookinfo", "-o", "json")
	if code != 79 || len(msgs) != 2 {
		t.Fatalf("-n bookinfo: exit %d, messages %v\n%s", code, keys(msgs), out)
	}
	// A warning alone passes the default threshold (Error) but not Warning.
	if out, err := c.Kubectl(ctx, "", "delete", "virtualservice", "-n", "bookinfo", "reviews"); err != nil {
		t.Fatalf("kubectl delete: %v\n%s", err, out)
	}
	if code, _, out := analyze("-n", "bookinfo"); code != 0 || !strings.Contains(out, "Warning [IST0162] (Gateway bookinfo/bookinfo-gateway") {
		t.Fatalf("-n bookinfo, threshold Error: exit %d\n%s", code, out)
	}
	if code, _, out := analyze("-n", "bookinfo", "--failure-threshold", "Warning"); code != 79 {
		t.Fatalf("-n bookinfo, threshold Warning: exit %d\n%s", code, out)
	}
	// An empty namespace is clean.
	if code, msgs, out := analyze("-n", "clean", "-o", "json"); code != 0 || len(msgs) != 0 {
		t.Fatalf("-n clean: exit %d, messages %v\n%s", code, keys(msgs), out)
	}
}

// buildMeshguard builds the product binary, as users run it.
func buildMeshguard(ctx context.Context, t *testing.T) string {
	t.Helper()
	root, err := cluster.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "meshguard")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/meshguard")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build meshguard: %v\n%s", err, out)
	}
	return bin
}
