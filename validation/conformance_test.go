package validation

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/meshguard/meshguard/internal/manifest"
	"github.com/meshguard/meshguard/test/conformance"
)

// conformanceDir is Istio's validation test data (test/conformance).
func conformanceDir(t *testing.T) string { return conformance.Dir(t, "validation") }

// validateFileDocs runs every document of a file through the same entry point
// as `meshguard validate` (ValidateObject, which cmd/meshguard/validate.go
// calls per document), returning each document's
// expected-error text (_err, stripped before validation) with its result.
func validateFileDocs(t *testing.T, path string) []conformanceCase {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	docs, err := manifest.Split(data)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var out []conformanceCase
	for _, d := range docs {
		if d.Err != nil {
			t.Errorf("%s#%d: unparsable: %v", path, d.Index, d.Err)
			continue
		}
		if d.Object == nil {
			continue
		}
		want, _ := d.Object["_err"].(string)
		delete(d.Object, "_err")
		res := ValidateObject(context.Background(), d.Object, Options{DefaultNamespace: "default"})
		out = append(out, conformanceCase{doc: d.Index, wantErr: want, res: res})
	}
	return out
}

// apiServerMessages are the documents where Istio's corpus records the message
// of Istio's in-process CRD validator ("spec in body must be of type object:
// \"null\""), while the real API server first prunes the null of a
// non-nullable field (apiextensions-apiserver PruneNonNullableNullsWithoutDefaults)
// and reports the field as missing. meshguard follows the API server
// (docs/compatibility.md); test/e2e/validation TestNullsAsTheAPIServer shows
// kube-apiserver giving these messages. The documents are still rejected.
var apiServerMessages = map[string]string{
	"crds/wasm-invalid.yaml#11": "WasmPlugin default/nil: spec: Required value",
	"crds/wasm-invalid.yaml#12": "WasmPlugin default/nested-nil: spec.url: Required value",
}

// conformanceDocuments is how many documents the corpus holds.
const conformanceDocuments = 112 + 33

type conformanceCase struct {
	doc     int
	wantErr string
	res     Result
}

func TestConformance(t *testing.T) {
	dir := conformanceDir(t)
	valid, _ := filepath.Glob(filepath.Join(dir, "crds", "*-valid.yaml"))
	invalid, _ := filepath.Glob(filepath.Join(dir, "crds", "*-invalid.yaml"))
	dataset, _ := filepath.Glob(filepath.Join(dir, "dataset", "*.yaml"))
	if len(valid) == 0 || len(invalid) == 0 || len(dataset) == 0 {
		t.Fatalf("conformance corpus under %s is incomplete: %d valid, %d invalid, %d dataset files", dir, len(valid), len(invalid), len(dataset))
	}
	// Every case file is run: one named otherwise (even another extension)
	// must not be passed over.
	all, _ := filepath.Glob(filepath.Join(dir, "*", "*"))
	if len(all) != len(valid)+len(invalid)+len(dataset) {
		t.Errorf("%d case files under %s, but only %d are -valid, -invalid or dataset files: %v", len(all), dir, len(valid)+len(invalid)+len(dataset), all)
	}
	total, passed := 0, 0
	for _, path := range append(valid, dataset...) {
		name := filepath.Base(filepath.Dir(path)) + "/" + filepath.Base(path)
		for _, c := range validateFileDocs(t, path) {
			total++
			if c.res.Skipped {
				t.Errorf("%s#%d: %s skipped as non-Istio", name, c.doc, c.res.Object())
				continue
			}
			if !c.res.Valid() {
				t.Errorf("%s#%d: valid document rejected:\n  %s%s", name, c.doc, strings.Join(c.res.ErrorLines(), "\n  "), skewHint(c.res))
				continue
			}
			passed++
		}
	}
	for _, path := range invalid {
		name := "crds/" + filepath.Base(path)
		for _, c := range validateFileDocs(t, path) {
			total++
			msg := strings.Join(c.res.ErrorLines(), "\n")
			if m, ok := apiServerMessages[fmt.Sprintf("%s#%d", name, c.doc)]; ok {
				c.wantErr = m
			}
			switch {
			case c.res.Valid():
				t.Errorf("%s#%d: invalid document %s accepted (want error containing %q)", name, c.doc, c.res.Object(), c.wantErr)
			case c.wantErr != "" && !strings.Contains(msg, c.wantErr):
				t.Errorf("%s#%d: %s rejected, but no message contains %q:\n  %s%s", name, c.doc, c.res.Object(), c.wantErr, strings.ReplaceAll(msg, "\n", "\n  "), skewHint(c.res))
			default:
				passed++
			}
		}
	}
	t.Logf("conformance: %d/%d documents as expected", passed, total)
	// Exact, not a lower bound: a document the loader drops (parsed as empty,
	// split wrongly) must fail here. The corpus is pinned at one Istio commit
	// (its README): 112 non-empty documents in crds/ and 33 dataset files,
	// counted with PyYAML's safe_load_all, independent of manifest.Split.
	if total != conformanceDocuments {
		t.Errorf("%d documents run, want all %d of the corpus (112 in crds/, 33 in dataset/)", total, conformanceDocuments)
	}
}

// skewHint explains the usual cause of an "unknown field" mismatch: the corpus
// comes from a newer Istio than the istio.io/api module go.mod pins, so the
// embedded CRD (and proto) lack the field.
func skewHint(r Result) string {
	for _, p := range r.Errors {
		if strings.HasPrefix(p.Message, "unknown field") {
			return "\n  (hint: the field is not in the pinned istio.io/api CRD/proto; the corpus is from a newer Istio)"
		}
	}
	return ""
}
