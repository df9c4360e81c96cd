package webhook

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/meshguard/meshguard/internal/manifest"
	"github.com/meshguard/meshguard/test/conformance"
)

// TestValidationWebhookAcceptsIstioValidCorpus: every object Istio's
// validation corpus says is valid (crds/*-valid.yaml, dataset/*.yaml) is
// admitted by the validation webhook as the API server sends it, not only
// by `meshguard validate` (validation's TestConformance). Istio's webhook
// admits them all (pkg/config/validation/validation_test.go runs the same
// files through its validator).
func TestValidationWebhookAcceptsIstioValidCorpus(t *testing.T) {
	dir := conformance.Dir(t, "validation")
	valid, _ := filepath.Glob(filepath.Join(dir, "crds", "*-valid.yaml"))
	dataset, _ := filepath.Glob(filepath.Join(dir, "dataset", "*.yaml"))
	h := &ValidationHandler{Log: logr.Discard()}
	n := eachCorpusObject(t, append(valid, dataset...), func(t *testing.T, obj map[string]any) {
		resp, what := handleCorpusObject(t, h, obj)
		if !resp.Allowed {
			t.Errorf("%s denied: %+v", what, resp.Result)
		}
	})
	// The corpus's count (validation's conformanceDocuments less the
	// invalid documents): a document dropped on the way must fail.
	if want := 35 + 33; n != want {
		t.Errorf("%d valid documents run, want %d (35 in crds/*-valid.yaml, 33 in dataset/)", n, want)
	}
}

// TestValidationWebhookDeniesIstioInvalidCorpus: every object of Istio's
// crds/*-invalid.yaml is denied by the validation webhook as the API server
// sends it (APIServerAdmitted), not only by `meshguard validate`
// (validation's TestConformance). Istio's webhook denies them all
// (pkg/config/validation/validation_test.go runs the same files through its
// validator and expects each _err). Only denial is asserted: the message is
// checked offline by validation's TestConformance, and some of the corpus's
// messages are the API server's own (schema) rather than the webhook's.
func TestValidationWebhookDeniesIstioInvalidCorpus(t *testing.T) {
	dir := conformance.Dir(t, "validation")
	invalid, _ := filepath.Glob(filepath.Join(dir, "crds", "*-invalid.yaml"))
	h := &ValidationHandler{Log: logr.Discard()}
	n := eachCorpusObject(t, invalid, func(t *testing.T, obj map[string]any) {
		want, _ := obj["_err"].(string)
		delete(obj, "_err") // the corpus's expected error, not part of the object
		resp, what := handleCorpusObject(t, h, obj)
		if resp.Allowed {
			t.Errorf("%s admitted (Istio rejects it: %q), warnings %v", what, want, resp.Warnings)
		}
	})
	// The corpus's count (validation's conformanceDocuments less the valid
	// and dataset documents): a document dropped on the way must fail.
	if want := 112 - 35; n != want {
		t.Errorf("%d invalid documents run, want %d (112 in crds/ less 35 in crds/*-valid.yaml)", n, want)
	}
}

// eachCorpusObject runs check as a subtest ("dir/file#index") on every
// object of the corpus files paths and returns how many it ran.
func eachCorpusObject(t *testing.T, paths []string, check func(t *testing.T, obj map[string]any)) int {
	n := 0
	for _, path := range paths {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		docs, err := manifest.Split(data)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		for _, d := range docs {
			if d.Err != nil {
				t.Fatalf("%s#%d: %v", path, d.Index, d.Err)
			}
			if d.Object == nil {
				continue
			}
			n++
			name := fmt.Sprintf("%s/%s#%d", filepath.Base(filepath.Dir(path)), filepath.Base(path), d.Index)
			t.Run(name, func(t *testing.T) { check(t, d.Object) })
		}
	}
	return n
}

// handleCorpusObject sends obj to h as the API server would on CREATE (the
// request's namespace "default" when the object names none) and returns the
// response with "Kind ns/name" for messages.
func handleCorpusObject(t *testing.T, h *ValidationHandler, obj map[string]any) (admission.Response, string) {
	t.Helper()
	raw, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	apiVersion, _ := obj["apiVersion"].(string)
	group, version, _ := strings.Cut(apiVersion, "/")
	kind, _ := obj["kind"].(string)
	meta, _ := obj["metadata"].(map[string]any)
	ns, _ := meta["namespace"].(string)
	if ns == "" {
		ns = "default" // the API server fills in the request's namespace
	}
	objName, _ := meta["name"].(string)
	resp := h.Handle(t.Context(), admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		UID:       "uid-1",
		Kind:      metav1.GroupVersionKind{Group: group, Version: version, Kind: kind},
		Namespace: ns,
		Name:      objName,
		Operation: admissionv1.Create,
		Object:    runtime.RawExtension{Raw: raw},
	}})
	return resp, fmt.Sprintf("%s %s/%s", kind, ns, objName)
}
