package validation

import (
	"context"
	"strings"
	"testing"

	"github.com/meshguard/meshguard/internal/manifest"
)

// FuzzValidateDocuments feeds arbitrary bytes through the path `meshguard
// validate` uses (split, parse, List items, validate). It must never panic,
// findings are capped, and every finding must name a field path or the object.
func FuzzValidateDocuments(f *testing.F) {
	f.Add([]byte(typicalVS))
	f.Add([]byte(vsHeader + "  hosts: [a]\n  http: [{route: [{destination: {host: a}, weight: -1}]}]\n"))
	f.Add([]byte(gwHeader + "  servers: [{port: {number: 0, name: x, protocol: tls}, hosts: ['~/x'], tls: {mode: MUTUAL}}]\n"))
	f.Add([]byte(drHeader + "  host: a\n  trafficPolicy: {loadBalancer: {localityLbSetting: {distribute: [{from: '*/*', to: {'a': 0}}]}}}\n"))
	f.Add([]byte("apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: x}\nspec: {rules: [{to: [{operation: {ports: ['0']}}]}]}\n---\n{}"))
	f.Add([]byte(`{"apiVersion":"networking.istio.io/v1","kind":"Gateway","metadata":{"name":"g"},"spec":null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		docs, _ := manifest.Split(data)
		var objs []map[string]any
		for _, d := range docs {
			if d.Err != nil || d.Object == nil {
				continue
			}
			if !manifest.IsList(d.Object) {
				objs = append(objs, d.Object)
				continue
			}
			items, _ := manifest.Items(d.Object)
			objs = append(objs, items...)
		}
		for _, obj := range objs {
			res := ValidateObject(context.Background(), obj, Options{DefaultNamespace: "default"})
			if len(res.Errors) > MaxErrorsPerObject+1 || len(res.Warnings) > MaxWarningsPerObject+1 {
				t.Fatalf("%d errors, %d warnings: not capped", len(res.Errors), len(res.Warnings))
			}
			for _, l := range append(res.ErrorLines(), res.WarningLines()...) {
				if !strings.Contains(l, ": ") {
					t.Fatalf("finding without object/path: %q", l)
				}
			}
		}
	})
}
