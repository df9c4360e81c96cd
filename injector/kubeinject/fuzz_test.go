package kubeinject

import (
	"bytes"
	"os"
	"testing"

	"github.com/meshguard/meshguard/injector/config"
)

// FuzzInject feeds arbitrary YAML to the `meshguard inject` path: it must
// return an error or output, never panic, and its output must be a fixed
// point (injecting it again changes nothing).
// Seeds: testdata/fuzz/FuzzInject plus testdata/all-kinds.yaml.
func FuzzInject(f *testing.F) {
	if b, err := os.ReadFile("testdata/all-kinds.yaml"); err == nil {
		f.Add(b)
	}
	f.Add([]byte("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c, image: i}]}\n"))
	f.Add([]byte("apiVersion: v1\nkind: List\nitems:\n- apiVersion: apps.openshift.io/v1\n  kind: DeploymentConfig\n  metadata: {name: dc}\n  spec: {paused: false, template: {spec: {containers: [{name: c, image: i}]}}}\n"))
	f.Add([]byte("apiVersion: v1\nkind: ReplicationController\nmetadata: {name: rc}\nspec: {template: {spec: {containers: [{name: c, image: i}]}}}\n"))
	f.Add([]byte("apiVersion: v1\nkind: Pod\nmetadata: {name: p, annotations: {inject.istio.io/templates: grpc-simple, prometheus.io/port: '9090'}}\nspec: {containers: [{name: c, image: i}, {name: d, image: i}]}\n"))
	f.Add([]byte("apiVersion: v1\nkind: Pod\nmetadata: {name: p, annotations: {prometheus.istio.io/scrape-targets: '8080:/m,9100'}, labels: {pod-template-hash: h}, ownerReferences: [{apiVersion: apps/v1, kind: ReplicaSet, name: r-h, controller: true, uid: u}]}\nspec: {containers: [{name: c, image: i}]}\n"))
	f.Add([]byte("apiVersion: v1\nkind: DeploymentConfig\nmetadata: {name: dc}\nspec: {template: null}\n"))
	cfg := config.Default()
	f.Fuzz(func(t *testing.T, in []byte) {
		res, err := InjectData(in, cfg)
		if err != nil {
			return
		}
		again, err := InjectData(res.Output, cfg)
		if err != nil {
			t.Fatalf("output does not inject again: %v\n%s", err, res.Output)
		}
		if !bytes.Equal(again.Output, res.Output) {
			t.Fatalf("not a fixed point:\n%s\n---- vs ----\n%s", res.Output, again.Output)
		}
	})
}
