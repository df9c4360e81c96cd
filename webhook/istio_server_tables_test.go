package webhook

// Istio's webhook-server test tables, re-expressed as meshguard inputs and
// driven over HTTPS through the server `meshguard serve` runs (NewServer)
// with the admission handlers at the paths SetupInjection and
// SetupValidation register (injectPaths, validatePaths).
//
// Sources (istio/istio, the behaviour at 86c9f01):
//   - pkg/webhooks/validation/server/server_test.go TestServe and TestAdmitPilot,
//     for server.go serve, validate and checkFields;
//   - pkg/kube/inject/webhook_test.go TestRunAndServe, for webhook.go
//     serveInject and inject.
//
// Istio's rows use its mock schema (collections.Mock); the validation rows here
// use a VirtualService instead. Istio's TestRunAndServe and TestServe reviews
// carry no request.uid and a request.kind of admission.k8s.io AdmissionRequest:
// meshguard refuses a review without a uid (docs/compatibility.md, "AdmissionReview
// without a request"), and injects only what the request says is a core pod
// CREATE (docs/compatibility.md, "AdmissionReview whose request.kind is not a core Pod"),
// so these rows set both as the API server does.
//
// Rows already asserted elsewhere are not repeated: DELETE allowed, kinds and
// groups meshguard does not validate, an object that is not a map, dry-run
// (TestValidationHandler); reviews without a request or uid
// (TestValidationHandlerRefusesMalformedReviews,
// TestInjectHandlerRefusesMalformedRequests); the body limit
// (TestAdmissionBodyLimit); URL path parameters (TestInjectHandlerURLPath);
// the injection decision (TestInjectHandler).

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"

	"github.com/meshguard/meshguard/injector/template"
)

// startAdmissionServer serves /inject (default config) and /validate (no
// cross-references, no organisation rules) on every path the Setup functions
// register them on.
func startAdmissionServer(t *testing.T) (base string, client *http.Client) {
	t.Helper()
	registerValidationMetrics()
	handlers := map[string]http.Handler{}
	inject := newHandler(t, nil)
	for _, p := range injectPaths {
		handlers[p] = inject
	}
	validate := validateHTTPHandler(&ValidationHandler{Log: logr.Discard()})
	for _, p := range validatePaths {
		handlers[p] = validate
	}
	addr, _ := startServerWith(t, handlers, logr.Discard())
	return "https://" + addr, &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // test server
}

// istioServerRow is one HTTP exchange and what Istio answers to it.
type istioServerRow struct {
	name        string // upstream test function and row
	path        string
	contentType string
	body        []byte
	chunked     bool // sent without a Content-Length (chunked transfer encoding)
	wantStatus  int
	// For HTTP 200: the AdmissionReview answered.
	wantAllowed    bool
	wantPatch      bool   // a JSONPatch that applies (inject rows)
	wantAPIVersion string // the review's apiVersion echoed ("" when the request did not decode)
	wantUID        string
	wantMsg        string // substring of response.status.message
	wantWarning    string // substring of some warning
}

func runIstioServerRows(t *testing.T, rows []istioServerRow) {
	t.Helper()
	base, client := startAdmissionServer(t)
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			var reqBody io.Reader = bytes.NewReader(r.body)
			if r.chunked {
				reqBody = io.MultiReader(reqBody) // no Len: the client cannot know the length
			}
			req, err := http.NewRequest(http.MethodPost, base+r.path, reqBody)
			if err != nil {
				t.Fatal(err)
			}
			if r.contentType != "" {
				req.Header.Set("Content-Type", r.contentType)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != r.wantStatus {
				t.Fatalf("HTTP %d, want %d: %.300s", resp.StatusCode, r.wantStatus, body)
			}
			if r.wantStatus != http.StatusOK {
				return
			}
			var review admissionv1.AdmissionReview
			if err := json.Unmarshal(body, &review); err != nil || review.Response == nil {
				t.Fatalf("response is not an AdmissionReview: %v %.300s", err, body)
			}
			got := review.Response
			if got.Allowed != r.wantAllowed || (len(got.Patch) > 0) != r.wantPatch {
				t.Fatalf("allowed=%v patch=%d bytes, want allowed=%v patch=%v; result %+v", got.Allowed, len(got.Patch), r.wantAllowed, r.wantPatch, got.Result)
			}
			if r.wantAPIVersion != "" && (review.APIVersion != r.wantAPIVersion || review.Kind != "AdmissionReview") {
				t.Errorf("answered as %s %s, want %s AdmissionReview", review.APIVersion, review.Kind, r.wantAPIVersion)
			}
			if string(got.UID) != r.wantUID {
				t.Errorf("uid %q, want %q", got.UID, r.wantUID)
			}
			if r.wantMsg != "" && (got.Result == nil || !strings.Contains(got.Result.Message, r.wantMsg)) {
				t.Errorf("result %+v, want a message containing %q", got.Result, r.wantMsg)
			}
			if r.wantWarning != "" && !strings.Contains(strings.Join(got.Warnings, "\n"), r.wantWarning) {
				t.Errorf("warnings %q, want one containing %q", got.Warnings, r.wantWarning)
			}
			if r.wantPatch {
				if got.PatchType == nil || *got.PatchType != admissionv1.PatchTypeJSONPatch {
					t.Errorf("patchType %v, want JSONPatch", got.PatchType)
				}
				var in admissionv1.AdmissionReview
				if err := json.Unmarshal(r.body, &in); err != nil {
					t.Fatal(err)
				}
				var pod corev1.Pod
				if err := json.Unmarshal(in.Request.Object.Raw, &pod); err != nil {
					t.Fatal(err)
				}
				patched := applyPatch(t, &pod, got.Patch)
				if template.FindSidecar(patched) == nil {
					t.Errorf("patched pod has no istio-proxy: %+v", patched.Spec)
				}
			}
		})
	}
}

// admissionReview is an AdmissionReview of apiVersion admission.k8s.io/<version>
// (v1 and v1beta1 share the shape) for a request with uid "uid-1".
func admissionReview(t *testing.T, version string, req admissionv1.AdmissionRequest) []byte {
	t.Helper()
	req.UID = "uid-1"
	b, err := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/" + version, Kind: "AdmissionReview"},
		Request:  &req,
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// istioObject is doc (YAML) as JSON, with the top-level keys of extra added.
func istioObject(t *testing.T, doc string, extra map[string]any) []byte {
	t.Helper()
	var obj map[string]any
	if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
		t.Fatal(err)
	}
	for k, v := range extra {
		obj[k] = v
	}
	b, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// vsRequest is a VirtualService admission request as the API server sends it.
func vsRequest(op admissionv1.Operation, object []byte) admissionv1.AdmissionRequest {
	return admissionv1.AdmissionRequest{
		Kind:      metav1.GroupVersionKind{Group: "networking.istio.io", Version: "v1", Kind: "VirtualService"},
		Resource:  metav1.GroupVersionResource{Group: "networking.istio.io", Version: "v1", Resource: "virtualservices"},
		Namespace: "default",
		Name:      "reviews",
		Operation: op,
		Object:    runtime.RawExtension{Raw: object},
	}
}

// TestIstioValidationServe ports TestServe (pkg/webhooks/validation/server/
// server_test.go): server.go serve answers an empty body 400 and a
// Content-Type other than application/json 415 before decoding; a body that
// does not decode, or a review whose verdict is a denial, is HTTP 200 with
// allowed false; v1 and v1beta1 reviews are answered in their own version
// with the request's uid.
func TestIstioValidationServe(t *testing.T) {
	valid := istioObject(t, goodVS, nil)
	invalid := istioObject(t, badVS, nil)
	runIstioServerRows(t, []istioServerRow{
		{name: "TestServe/valid", path: ValidatePath, contentType: "application/json",
			body:       admissionReview(t, "v1beta1", vsRequest(admissionv1.Create, valid)),
			wantStatus: http.StatusOK, wantAllowed: true, wantAPIVersion: "admission.k8s.io/v1beta1", wantUID: "uid-1"},
		{name: "TestServe/valid(v1 version)", path: ValidatePath, contentType: "application/json",
			body:       admissionReview(t, "v1", vsRequest(admissionv1.Create, valid)),
			wantStatus: http.StatusOK, wantAllowed: true, wantAPIVersion: "admission.k8s.io/v1", wantUID: "uid-1"},
		{name: "TestServe/invalid", path: ValidatePath, contentType: "application/json",
			body:       admissionReview(t, "v1beta1", vsRequest(admissionv1.Create, invalid)),
			wantStatus: http.StatusOK, wantAllowed: false, wantAPIVersion: "admission.k8s.io/v1beta1", wantUID: "uid-1", wantMsg: "weight -15 < 0"},
		{name: "TestServe/wrong content-type", path: ValidatePath, contentType: "application/yaml",
			body:       admissionReview(t, "v1beta1", vsRequest(admissionv1.Create, valid)),
			wantStatus: http.StatusUnsupportedMediaType},
		{name: "TestServe/bad content", path: ValidatePath, contentType: "application/json",
			body:       []byte{0, 1, 2, 3, 4, 5},
			wantStatus: http.StatusOK, wantAllowed: false},
		{name: "TestServe/no content", path: ValidatePath, contentType: "application/json",
			body:       []byte{},
			wantStatus: http.StatusBadRequest},
		// serve checks the body before the Content-Type: an empty body is 400 whatever its type.
		{name: "serve/no content, no content-type", path: ValidatePath,
			body:       nil,
			wantStatus: http.StatusBadRequest},
		// server.go New registers serveValidate at "/validate" and "/validate/".
		{name: "New/path under /validate/", path: ValidatePath + "/rev-canary", contentType: "application/json",
			body:       admissionReview(t, "v1", vsRequest(admissionv1.Create, invalid)),
			wantStatus: http.StatusOK, wantAllowed: false, wantAPIVersion: "admission.k8s.io/v1", wantUID: "uid-1", wantMsg: "weight -15 < 0"},
	})
}

// TestIstioValidationAdmitPilot ports TestAdmitPilot (server_test.go, the
// rows of server.go validate and checkFields) plus the branches of validate
// its table has no row for, each named after what it exercises.
func TestIstioValidationAdmitPilot(t *testing.T) {
	valid := istioObject(t, goodVS, nil)
	review := func(op admissionv1.Operation, object []byte) []byte {
		return admissionReview(t, "v1", vsRequest(op, object))
	}
	row := func(name string, body []byte, allowed bool, msg, warning string) istioServerRow {
		return istioServerRow{name: name, path: ValidatePath, contentType: "application/json", body: body,
			wantStatus: http.StatusOK, wantAllowed: allowed, wantAPIVersion: "admission.k8s.io/v1", wantUID: "uid-1", wantMsg: msg, wantWarning: warning}
	}
	runIstioServerRows(t, []istioServerRow{
		row("TestAdmitPilot/valid create", review(admissionv1.Create, valid), true, "", ""),
		row("TestAdmitPilot/valid update", review(admissionv1.Update, valid), true, "", ""),
		row("TestAdmitPilot/unsupported operation", review(admissionv1.Delete, valid), true, "", ""),
		row("TestAdmitPilot/invalid spec", review(admissionv1.Create, istioObject(t, badVS, nil)), false, "weight -15 < 0", ""),
		row("validate/invalid spec on update", review(admissionv1.Update, istioObject(t, badVS, nil)), false, "weight -15 < 0", ""),
		row("TestAdmitPilot/invalid extra key create", review(admissionv1.Create, istioObject(t, goodVS, map[string]any{"unexpected_key": "any value"})), false, "unexpected_key", ""),
		// validate: any operation but CREATE and UPDATE is allowed unvalidated.
		row("validate/CONNECT allowed", review(admissionv1.Connect, nil), true, "", ""),
		// validate: an absent object does not decode ("cannot decode configuration").
		row("validate/CREATE without object", review(admissionv1.Create, nil), false, "no object", ""),
		// validate: an object without apiVersion and kind has no schema ("unrecognized type").
		row("validate/object without apiVersion and kind", review(admissionv1.Create, []byte(`{"metadata":{"name":"reviews"},"spec":{"hosts":["reviews"]}}`)), false, "apiVersion must be set", ""),
		// checkFields: status is one of the five top-level fields a config may carry.
		row("checkFields/status allowed", review(admissionv1.Create, istioObject(t, goodVS, map[string]any{"status": map[string]any{}})), true, "", ""),
		// validate: the schema is found by group and kind, whatever the object's version.
		row("validate/v1alpha3 object", review(admissionv1.Create, istioObject(t, strings.Replace(badVS, "networking.istio.io/v1", "networking.istio.io/v1alpha3", 1), nil)), false, "weight -15 < 0", ""),
		// validate: warnings come back on an allowed response (toKubeWarnings).
		row("validate/warnings on allowed", review(admissionv1.Create, istioObject(t, twoCatchAllVS, nil)), true, "", "not used"),
		// validate has no revision check: which istiod validates an object is the
		// configuration's objectSelector, not the server's (ValidatingWebhookConfiguration).
		row("validate/object labelled for another revision", review(admissionv1.Create, istioObject(t, strings.Replace(badVS, "metadata: {name: reviews}", "metadata: {name: reviews, labels: {istio.io/rev: canary}}", 1), nil)), false, "weight -15 < 0", ""),
	})
}

// TestIstioValidationAdmitPilotCorruptObject is TestAdmitPilot's "corrupt
// object" row: an object that is "---" followed by a valid config is denied.
// Such an object is not JSON, so no AdmissionReview can carry it: the row goes
// to the handler directly.
func TestIstioValidationAdmitPilotCorruptObject(t *testing.T) {
	registerValidationMetrics()
	req := admissionReq(t, admissionv1.Create, "networking.istio.io", "VirtualService", "default", "", false)
	req.Object.Raw = append([]byte("---"), istioObject(t, goodVS, nil)...)
	resp := (&ValidationHandler{Log: logr.Discard()}).Handle(context.Background(), req)
	if resp.Allowed || resp.Result == nil || !strings.Contains(resp.Result.Message, "VirtualService default/reviews") {
		t.Fatalf("allowed=%v result=%+v, want denied naming the object", resp.Allowed, resp.Result)
	}
}

// twoCatchAllVS is valid with a warning: its first route matches everything.
const twoCatchAllVS = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - route: [{destination: {host: reviews}}]
  - route: [{destination: {host: ratings}}]
`

// TestIstioInjectRunAndServe ports TestRunAndServe (pkg/kube/inject/
// webhook_test.go) for webhook.go serveInject: its pod (a volume, an init
// container, a container and an image pull secret of the user's) is injected
// from v1beta1 and v1 reviews, answered in the review's version; a pod that
// opts out is allowed without a patch; an empty body is 400 and a Content-Type
// other than application/json 415, before decoding; a body that does not
// decode is HTTP 200 with allowed false. Istio's expected patch is for its
// minimal test template, so the rows here check that the patch applies and
// adds the proxy.
func TestIstioInjectRunAndServe(t *testing.T) {
	pod := func(skip bool) []byte {
		p := corev1.Pod{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
			ObjectMeta: metav1.ObjectMeta{Name: "test", Namespace: "app", Annotations: map[string]string{}},
			Spec: corev1.PodSpec{
				// makeTestData's pod as it is: no images, a volume without a source.
				Volumes:          []corev1.Volume{{Name: "v0"}},
				InitContainers:   []corev1.Container{{Name: "c0"}},
				Containers:       []corev1.Container{{Name: "c1"}},
				ImagePullSecrets: []corev1.LocalObjectReference{{Name: "p0"}},
			},
		}
		if skip {
			p.Annotations["sidecar.istio.io/inject"] = "false"
		}
		b, err := json.Marshal(&p)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	review := func(version string, object []byte) []byte {
		return admissionReview(t, version, admissionv1.AdmissionRequest{
			Kind:      metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
			Resource:  metav1.GroupVersionResource{Version: "v1", Resource: "pods"},
			Namespace: "app",
			Operation: admissionv1.Create,
			Object:    runtime.RawExtension{Raw: object},
		})
	}
	validReview := review("v1beta1", pod(false))
	runIstioServerRows(t, []istioServerRow{
		{name: "TestRunAndServe/valid", path: InjectPath, contentType: "application/json", body: validReview,
			wantStatus: http.StatusOK, wantAllowed: true, wantPatch: true, wantAPIVersion: "admission.k8s.io/v1beta1", wantUID: "uid-1"},
		{name: "TestRunAndServe/valid(v1 version)", path: InjectPath, contentType: "application/json", body: review("v1", pod(false)),
			wantStatus: http.StatusOK, wantAllowed: true, wantPatch: true, wantAPIVersion: "admission.k8s.io/v1", wantUID: "uid-1"},
		{name: "TestRunAndServe/skipped", path: InjectPath, contentType: "application/json", body: review("v1beta1", pod(true)),
			wantStatus: http.StatusOK, wantAllowed: true, wantAPIVersion: "admission.k8s.io/v1beta1", wantUID: "uid-1"},
		{name: "TestRunAndServe/wrong content-type", path: InjectPath, contentType: "application/yaml", body: validReview,
			wantStatus: http.StatusUnsupportedMediaType},
		{name: "TestRunAndServe/bad content", path: InjectPath, contentType: "application/json", body: []byte{0, 1, 2, 3, 4, 5},
			wantStatus: http.StatusOK, wantAllowed: false},
		{name: "TestRunAndServe/missing body", path: InjectPath, contentType: "application/json",
			wantStatus: http.StatusBadRequest},
		// A body of unknown length (chunked), which limitBody peeks at.
		{name: "TestRunAndServe/valid, chunked", path: InjectPath, contentType: "application/json", body: validReview, chunked: true,
			wantStatus: http.StatusOK, wantAllowed: true, wantPatch: true, wantAPIVersion: "admission.k8s.io/v1beta1", wantUID: "uid-1"},
		{name: "TestRunAndServe/missing body, chunked", path: InjectPath, contentType: "application/json", chunked: true,
			wantStatus: http.StatusBadRequest},
		// inject: an absent request.object does not unmarshal into a pod ("Could not unmarshal raw object").
		{name: "inject/CREATE without object", path: InjectPath, contentType: "application/json", body: review("v1", nil),
			wantStatus: http.StatusOK, wantAllowed: false, wantAPIVersion: "admission.k8s.io/v1", wantUID: "uid-1", wantMsg: "decoding pod"},
		// serveInject checks the body before the Content-Type.
		{name: "serveInject/missing body, wrong content-type", path: InjectPath, contentType: "application/yaml",
			wantStatus: http.StatusBadRequest},
		// NewWebhook registers serveInject at "/inject" and "/inject/" (URL parameters).
		{name: "NewWebhook/path under /inject/", path: InjectPath + "/cluster/east/net/n1", contentType: "application/json", body: validReview,
			wantStatus: http.StatusOK, wantAllowed: true, wantPatch: true, wantAPIVersion: "admission.k8s.io/v1beta1", wantUID: "uid-1"},
	})
}
