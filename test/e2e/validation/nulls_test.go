package validation

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/meshguard/meshguard/test/cluster"
	mgvalidation "github.com/meshguard/meshguard/validation"
)

// TestNullsAsTheAPIServer creates objects with explicit nulls on the real API
// server (no webhook installed) and checks that offline validation agrees
// with it on accept/reject: the API server prunes nulls of non-nullable
// fields (apiextensions-apiserver PruneNonNullableNullsWithoutDefaults) before
// validating, so `match: null` is accepted.
func TestNullsAsTheAPIServer(t *testing.T) {
	c := cluster.Start(t)
	cluster.CreateNamespace(t, c, "nulls", nil)
	cases := map[string]string{
		"EnvoyFilter patch match null": `{"apiVersion":"networking.istio.io/v1alpha3","kind":"EnvoyFilter","metadata":{"name":"ef","namespace":"nulls"},
"spec":{"configPatches":[{"applyTo":"HTTP_FILTER","match":null,"patch":{"operation":"MERGE","value":{"name":"x"}}}]}}`,
		"VirtualService tcp null": `{"apiVersion":"networking.istio.io/v1","kind":"VirtualService","metadata":{"name":"vs","namespace":"nulls"},
"spec":{"hosts":["a"],"http":[{"route":[{"destination":{"host":"a"}}]}],"tcp":null}}`,
		"WasmPlugin spec null": `{"apiVersion":"extensions.istio.io/v1alpha1","kind":"WasmPlugin","metadata":{"name":"w","namespace":"nulls"},"spec":null}`,
		"WasmPlugin url null":  `{"apiVersion":"extensions.istio.io/v1alpha1","kind":"WasmPlugin","metadata":{"name":"w2","namespace":"nulls"},"spec":{"url":null}}`,
	}
	for name, doc := range cases {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			out, err := c.Kubectl(ctx, doc, "create", "--dry-run=server", "-f", "-")
			res, derr := mgvalidation.ValidateJSON(ctx, []byte(doc), mgvalidation.Options{DefaultNamespace: "nulls"})
			if derr != nil {
				t.Fatalf("decode: %v", derr)
			}
			apiAccepts := err == nil
			t.Logf("API server: accepted=%v %s%s; meshguard: %v", apiAccepts, out, stderrOf(err), res.ErrorLines())
			// The real API server's messages for the WasmPlugin cases are
			// validation/conformance_test.go apiServerMessages.
			if apiAccepts != res.Valid() {
				t.Errorf("API server accepted=%v, meshguard valid=%v: %v / %s", apiAccepts, res.Valid(), res.ErrorLines(), stderrOf(err))
			}
		})
	}
}

// TestUnknownMetadataFieldsAsTheAPIServer: the API server's strict field
// validation reports a mistyped metadata field (apiextensions-apiserver
// schema/objectmeta, ReturnUnknownFieldPaths); offline validation reports it
// with the same path and words.
func TestUnknownMetadataFieldsAsTheAPIServer(t *testing.T) {
	c := cluster.Start(t)
	cluster.CreateNamespace(t, c, "metafields", nil)
	doc := `{"apiVersion":"networking.istio.io/v1","kind":"Sidecar","metadata":{"name":"s","namespace":"metafields","namspace":"prod"},
"spec":{"egress":[{"hosts":["./*"]}]}}`
	const want = `unknown field "metadata.namspace"`
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := c.Kubectl(ctx, doc, "create", "--dry-run=server", "--validate=strict", "-f", "-")
	if err == nil || !strings.Contains(stderrOf(err), want) {
		t.Errorf("API server: want an error with %q, got %s %s", want, out, stderrOf(err))
	}
	res, derr := mgvalidation.ValidateJSON(ctx, []byte(doc), mgvalidation.Options{DefaultNamespace: "metafields"})
	if derr != nil || res.Valid() || !strings.Contains(strings.Join(res.ErrorLines(), "\n"), want) {
		t.Errorf("meshguard: want an error with %q, got %v %v", want, res.ErrorLines(), derr)
	}
}
