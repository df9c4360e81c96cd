package validation

import (
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/google/go-cmp/cmp"

	"github.com/meshguard/meshguard/internal/manifest"
)

// TestFastDecodeAgreesWithProtojson is the safety net of decode_fast.go: on
// every conformance document, the benchmark objects and edge cases, when the
// fast decoder accepts a spec, protojson must accept it too and produce the
// same message.
func TestFastDecodeAgreesWithProtojson(t *testing.T) {
	type doc struct {
		name string
		obj  map[string]any
	}
	var docs []doc
	files, _ := filepath.Glob(filepath.Join(conformanceDir(t), "*", "*.yaml"))
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		ds, _ := manifest.Split(data)
		for _, d := range ds {
			if d.Object != nil {
				docs = append(docs, doc{filepath.Base(f), d.Object})
			}
		}
	}
	edge := []string{
		typicalVS, bigVS(3),
		// Duration forms, oneof twice, proto-name spelling, numbers as strings, floats, nulls, Struct values.
		vsHeader + "  hosts: [a]\n  http: [{route: [{destination: {host: a}}], timeout: 1500ms, retries: {attempts: 2, perTryTimeout: 1m}}]\n",
		vsHeader + "  hosts: [a]\n  http: [{route: [{destination: {host: a}}], timeout: -0.5s}]\n",
		vsHeader + "  hosts: [a]\n  http: [{route: [{destination: {host: a}}], timeout: 1h2m3.5s}]\n",
		vsHeader + "  hosts: [a]\n  http: [{route: [{destination: {host: a}}], timeout: soon}]\n",
		vsHeader + "  hosts: [a]\n  http: [{match: [{uri: {exact: a, prefix: b}}], route: [{destination: {host: a}}]}]\n",
		vsHeader + "  hosts: [a]\n  export_to: [b]\n  exportTo: [c]\n",
		vsHeader + "  hosts: [a]\n  http: [{route: [{destination: {host: a, port: {number: '80'}}, weight: 1.0}]}]\n",
		vsHeader + "  hosts: [a]\n  http: [{route: [{destination: {host: a, port: {number: -1}}}]}]\n",
		vsHeader + "  hosts: [a]\n  http: [{route: [{destination: {host: a}}], mirrorPercentage: {value: 12.5}, fault: {delay: {percentage: {value: 3}, fixedDelay: 0s}}}]\n",
		vsHeader + "  hosts: [a]\n  http: [null]\n",
		vsHeader + "  hosts: [a, null]\n",
		vsHeader + "  hosts: [a]\n  tcp: [{route: [{destination: {host: a}}]}]\n  gateways: ~\n",
		vsHeader + "  hosts: [a]\n  http: [{route: [{destination: {host: a}, headers: {request: {set: {x: y}, remove: [z]}}}]}]\n",
		drHeader + "  host: a\n  trafficPolicy: {tls: {mode: SOMETIMES}}\n",
		drHeader + "  host: a\n  trafficPolicy: {tls: {mode: 1}}\n",
		drHeader + "  host: a\n  trafficPolicy: {connectionPool: {tcp: {maxConnections: 4294967296}}}\n",
		drHeader + "  host: a\n  trafficPolicy: {outlierDetection: {consecutive5xxErrors: 7, maxEjectionPercent: 50}, loadBalancer: {localityLbSetting: {enabled: false}}}\n",
		"apiVersion: networking.istio.io/v1alpha3\nkind: EnvoyFilter\nmetadata: {name: a}\nspec:\n  configPatches: [{applyTo: HTTP_FILTER, patch: {operation: ADD, value: {name: x, typed_config: {'@type': t, n: 1, f: 1.5, b: true, l: [1, a, null], z: null}}}}]\n",
		"apiVersion: extensions.istio.io/v1alpha1\nkind: WasmPlugin\nmetadata: {name: a}\nspec: {url: 'oci://x', pluginConfig: {a: [1, 2], b: {c: d}}, priority: 10}\n",
		"apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: a}\nspec: {selector: {matchLabels: {a: b}}, portLevelMtls: {'8080': {mode: DISABLE}}}\n",
		"apiVersion: telemetry.istio.io/v1\nkind: Telemetry\nmetadata: {name: a}\nspec: {tracing: [{randomSamplingPercentage: 10, disableSpanReporting: true}], metrics: [{reportingInterval: 5s}]}\n",
	}
	for i, y := range edge {
		ds, err := manifest.Split([]byte(y))
		if err != nil || len(ds) != 1 || ds[0].Object == nil {
			t.Fatalf("edge case %d does not parse: %v", i, err)
		}
		docs = append(docs, doc{"edge", ds[0].Object})
	}

	fast, fellBack := 0, 0
	for i, d := range docs {
		gv, err := schema.ParseGroupVersion(stringOf(d.obj["apiVersion"]))
		if err != nil {
			continue
		}
		entry, ok := kinds[gv.WithKind(stringOf(d.obj["kind"])).GroupKind()]
		newSpec := entry.newSpec
		spec, hasSpec := d.obj["spec"]
		if !ok || !hasSpec {
			continue
		}
		before := runtime.DeepCopyJSONValue(spec)
		got := newSpec()
		fastErr := fastDecode(spec, got.ProtoReflect())
		if !cmp.Equal(before, spec) {
			t.Fatalf("%s #%d: fastDecode modified its input", d.name, i)
		}
		want := newSpec()
		slowErr := decodeSpecJSON(spec, want)
		if fastErr != nil {
			if fastErr != errFastDecode {
				t.Errorf("%s #%d: fast decoder returned %v, want nil or errFastDecode", d.name, i, fastErr)
			}
			fellBack++
			continue
		}
		fast++
		if slowErr != nil {
			t.Errorf("%s #%d: fast decoder accepted a spec protojson rejects (%v)", d.name, i, slowErr)
			continue
		}
		if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" || !proto.Equal(want, got) {
			t.Errorf("%s #%d: fast and protojson decodes differ (-protojson +fast):\n%s", d.name, i, diff)
		}
	}
	t.Logf("fast path: %d specs, fell back: %d", fast, fellBack)
	if fast < len(docs)/2 {
		t.Errorf("fast path taken for only %d of %d specs", fast, len(docs))
	}
	// The benchmark objects must stay on the fast path.
	for _, y := range []string{typicalVS, bigVS(2)} {
		ds, _ := manifest.Split([]byte(y))
		if err := fastDecode(ds[0].Object["spec"], kinds[vsGK].newSpec().ProtoReflect()); err != nil {
			t.Errorf("benchmark VirtualService fell back: %v", err)
		}
	}
}

func stringOf(v any) string { s, _ := v.(string); return s }

// FuzzFastDecode: whatever the input, an accepted fast decode equals protojson's.
func FuzzFastDecode(f *testing.F) {
	for _, s := range []string{typicalVS, bigVS(2),
		vsHeader + "  hosts: [a]\n  http: [{route: [{destination: {host: a}}], timeout: 1500ms}]\n",
		"apiVersion: extensions.istio.io/v1alpha1\nkind: WasmPlugin\nmetadata: {name: a}\nspec: {url: 'oci://x', pluginConfig: {a: [1, 2.5, null]}}\n",
		"apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: a}\nspec: {host: a, trafficPolicy: {connectionPool: {tcp: {maxConnections: 3}}}}\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, doc string) {
		docs, _ := manifest.Split([]byte(doc))
		for _, d := range docs {
			if d.Object == nil {
				continue
			}
			gv, err := schema.ParseGroupVersion(stringOf(d.Object["apiVersion"]))
			if err != nil {
				continue
			}
			entry, ok := kinds[gv.WithKind(stringOf(d.Object["kind"])).GroupKind()]
			newSpec := entry.newSpec
			if !ok {
				continue
			}
			got, want := newSpec(), newSpec()
			if fastDecode(d.Object["spec"], got.ProtoReflect()) != nil {
				continue
			}
			if err := decodeSpecJSON(d.Object["spec"], want); err != nil {
				t.Fatalf("fast decoder accepted a spec protojson rejects: %v", err)
			}
			if !proto.Equal(want, got) {
				t.Fatalf("decodes differ:\n%s", cmp.Diff(want, got, protocmp.Transform()))
			}
		}
	})
}
