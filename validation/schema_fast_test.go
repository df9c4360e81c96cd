package validation

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	apiextensionsvalidation "k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/meshguard/meshguard/internal/manifest"
)

// TestFastSchemaCheckAgreesWithKubeOpenAPI is the safety net of the fast
// path: on every conformance document and a set of mutated fixtures, a
// definite fast verdict must equal kube-openapi's verdict.
func TestFastSchemaCheckAgreesWithKubeOpenAPI(t *testing.T) {
	set, err := loadSchemas()
	if err != nil {
		t.Fatal(err)
	}
	dir := conformanceDir(t)
	files, _ := filepath.Glob(filepath.Join(dir, "*", "*.yaml"))
	var docs []map[string]any
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		ds, _ := manifest.Split(data)
		for _, d := range ds {
			if d.Object != nil {
				delete(d.Object, "_err")
				docs = append(docs, d.Object)
			}
		}
	}
	for _, y := range []string{typicalVS, bigVS(3)} {
		ds, _ := manifest.Split([]byte(y))
		docs = append(docs, ds[0].Object)
	}
	// Mutations that break common schema keywords.
	extra := []string{
		vsHeader + "  hosts: a\n",
		vsHeader + "  hosts: [a]\n  bogus: 1\n  http: [{route: [{destination: {host: a, extra: {x: 1}}}]}]\n",
		"apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: a, whatever: 1}\nstatus: {anything: [1]}\nspec: {hosts: [a]}\n",
		vsHeader + "  hosts: [a]\n  http: [{match: [{uri: {exact: a, prefix: b}}], route: [{destination: {host: a}}]}]\n",
		vsHeader + "  hosts: [a]\n  http: [{route: [{destination: {host: a}, weight: 1.5}]}]\n",
		vsHeader + "  hosts: [a]\n  http: [{route: [{destination: {}}]}]\n",
		vsHeader + "  hosts: [a]\n  http: [{route: [{destination: {host: a, port: {number: 99999999999}}}]}]\n",
		drHeader + "  host: a\n  trafficPolicy: {tls: {mode: SOMETIMES}}\n",
		drHeader + "  host: a\n  trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN, consistentHash: {useSourceIp: true}}}\n",
		gwHeader + "  servers: [{port: {number: 80, protocol: HTTP}, hosts: ['*']}]\n",
		gwHeader + "  servers: [{port: {number: 80, name: a, protocol: HTTP}, hosts: ['*'], tls: {credentialNames: []}}]\n",
		gwHeader + "  selector: {a: 1}\n  servers: []\n",
	}
	for _, y := range extra {
		ds, _ := manifest.Split([]byte(y))
		docs = append(docs, ds[0].Object)
	}
	decided, fastValid, clean := 0, 0, 0
	for i, obj := range docs {
		apiVersion, _ := obj["apiVersion"].(string)
		kind, _ := obj["kind"].(string)
		gv, _ := schema.ParseGroupVersion(apiVersion)
		l := set.byGVK[gv.WithKind(kind)]
		if l == nil {
			continue
		}
		cv, err := l.get()
		if err != nil {
			t.Fatal(err)
		}
		if cleanAndValid(cv.structural, obj) {
			clean++
			// The merged walk may only say yes when both separate steps would.
			probe := runtime.DeepCopyJSON(obj)
			if pruned := cv.pruneUnknown(probe); len(pruned) > 0 || cv.hasUnknown(obj) {
				t.Errorf("doc %d (%s): cleanAndValid, but pruning removes %v", i, kind, pruned)
			}
			if errs := apiextensionsvalidation.ValidateCustomResource(nil, obj, cv.validator); len(errs) > 0 || fastSchemaCheck(cv.structural, obj, true) != triValid {
				t.Errorf("doc %d (%s): cleanAndValid, but the schema says %v", i, kind, errs)
			}
		}
		work := runtime.DeepCopyJSON(obj)
		if pruned := cv.pruneUnknown(work); cv.hasUnknown(obj) != (len(pruned) > 0) {
			t.Errorf("doc %d (%s): hasUnknown=%v but pruning removed %v", i, kind, cv.hasUnknown(obj), pruned)
		}
		fast := fastSchemaCheck(cv.structural, work, true)
		slow := apiextensionsvalidation.ValidateCustomResource(nil, work, cv.validator)
		switch {
		case fast == triValid && len(slow) > 0:
			t.Errorf("doc %d (%s %v): fast check says valid, kube-openapi says: %v", i, kind, obj["metadata"], slow)
		case fast == triInvalid && len(slow) == 0:
			t.Errorf("doc %d (%s %v): fast check says invalid, kube-openapi accepts", i, kind, obj["metadata"])
		}
		if fast != triUnknown {
			decided++
		}
		if fast == triValid {
			fastValid++
		}
	}
	t.Logf("fast schema check decided %d of %d documents (%d valid); merged walk proved %d clean and valid", decided, len(docs), fastValid, clean)
	if clean < fastValid/2 {
		t.Errorf("merged walk (cleanAndValid) proves only %d documents; it is not doing its job", clean)
	}
	if fastValid < len(docs)/2 {
		t.Errorf("fast path proves only %d of %d documents valid; it is not doing its job", fastValid, len(docs))
	}
	_ = strings.TrimSpace
}

func TestValidateObjectDoesNotModifyInput(t *testing.T) {
	doc := vsHeader + "  hosts: [a]\n  bogus: 1\n  http: [{timeout: 1500ms, route: [{destination: {host: a}}]}]\nextra: 2\n"
	ds, _ := manifest.Split([]byte(doc))
	obj := ds[0].Object
	before := runtime.DeepCopyJSON(obj)
	res := ValidateObject(context.Background(), obj, Options{})
	if !reflect.DeepEqual(before, obj) {
		t.Errorf("input modified:\nbefore %v\nafter  %v", before, obj)
	}
	lines := strings.Join(res.ErrorLines(), "\n")
	if !strings.Contains(lines, `unknown field "spec.bogus"`) || !strings.Contains(lines, `extra: unknown field "extra"`) || strings.Contains(lines, "timeout") {
		t.Errorf("unexpected findings:\n%s", lines)
	}
}

// TestSchemasCompiledOnFirstUse: reading the CRDs compiles nothing; a
// version is compiled when first asked for, once, and its source dropped
// (so `authz serve`, which validates two kinds, holds two kinds' schemas).
func TestSchemasCompiledOnFirstUse(t *testing.T) {
	set, err := compileCRDs(istioCRDs)
	if err != nil {
		t.Fatal(err)
	}
	gvk := schema.GroupVersionKind{Group: "security.istio.io", Version: "v1", Kind: "AuthorizationPolicy"}
	for k, l := range set.byGVK {
		if l.cv != nil || l.src == nil {
			t.Fatalf("%s compiled before first use", k)
		}
	}
	l := set.byGVK[gvk]
	if l == nil {
		t.Fatalf("%s not indexed", gvk)
	}
	cv, err := l.get()
	if err != nil || cv == nil || cv.cel == nil {
		t.Fatalf("get %s: %v, %+v", gvk, err, cv)
	}
	if again, _ := l.get(); again != cv || l.src != nil {
		t.Fatalf("second get compiled again (%p vs %p) or kept the source", again, cv)
	}
	for k, other := range set.byGVK {
		if k != gvk && other.cv != nil {
			t.Fatalf("compiling %s compiled %s too", gvk, k)
		}
	}
}
