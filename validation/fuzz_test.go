package validation

import (
	"context"
	"strings"
	"testing"
)

// FuzzValidateDocuments feeds arbitrary bytes through the path `meshguard
// validate` uses (split, parse, validate). It must never panic, and every
// finding must name a field path or the object.
func FuzzValidateDocuments(f *testing.F) {
	f.Add([]byte(typicalVS))
	f.Add([]byte(vsHeader + "  hosts: [a]\n  http: [{route: [{destination: {host: a}, weight: -1}]}]\n"))
	f.Add([]byte(gwHeader + "  servers: [{port: {number: 0, name: x, protocol: tls}, hosts: ['~/x'], tls: {mode: MUTUAL}}]\n"))
	f.Add([]byte(drHeader + "  host: a\n  trafficPolicy: {loadBalancer: {localityLbSetting: {distribute: [{from: '*/*', to: {'a': 0}}]}}}\n"))
	f.Add([]byte("apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: x}\nspec: {rules: [{to: [{operation: {ports: ['0']}}]}]}\n---\n{}"))
	f.Add([]byte(`{"apiVersion":"networking.istio.io/v1","kind":"Gateway","metadata":{"name":"g"},"spec":null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		docs, _ := SplitDocuments(data)
		for _, d := range docs {
			if d.Err != nil || d.Object == nil {
				continue
			}
			res := ValidateObject(context.Background(), d.Object, Options{DefaultNamespace: "default"})
			for _, l := range append(res.ErrorLines(), res.WarningLines()...) {
				if !strings.Contains(l, ": ") {
					t.Fatalf("finding without object/path: %q", l)
				}
			}
		}
	})
}
