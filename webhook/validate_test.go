package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus/testutil"
	networking "istio.io/api/networking/v1alpha3"
	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
	"sigs.k8s.io/yaml"

	"github.com/meshguard/meshguard/validation"
	"github.com/meshguard/meshguard/validation/crossref"
)

func admissionReq(t *testing.T, op admissionv1.Operation, group, kind, ns, doc string, dryRun bool) admission.Request {
	t.Helper()
	var raw []byte
	if doc != "" {
		var err error
		if raw, err = yaml.YAMLToJSON([]byte(doc)); err != nil {
			t.Fatal(err)
		}
	}
	return admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		UID:       "uid-1",
		Kind:      metav1.GroupVersionKind{Group: group, Version: "v1", Kind: kind},
		Namespace: ns,
		Name:      "reviews",
		Operation: op,
		Object:    runtime.RawExtension{Raw: raw},
		DryRun:    &dryRun,
	}}
}

const goodVS = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - route:
    - {destination: {host: reviews, subset: v1}, weight: 90}
    - {destination: {host: reviews, subset: v2}, weight: 10}
`

const badVS = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - route: [{destination: {host: reviews}}]
  - route: [{destination: {host: reviews}, weight: -15}]
`

func TestValidationHandler(t *testing.T) {
	registerValidationMetrics()
	h := &ValidationHandler{Log: logr.Discard()}
	ctx := context.Background()
	cases := []struct {
		name    string
		req     admission.Request
		allowed bool
		msg     string // substring of the denial message
		warning string // substring of some warning
	}{
		{"good", admissionReq(t, admissionv1.Create, "networking.istio.io", "VirtualService", "default", goodVS, false), true, "", ""},
		{"bad", admissionReq(t, admissionv1.Create, "networking.istio.io", "VirtualService", "default", badVS, false), false,
			"VirtualService default/reviews: spec.http[1].route[0].weight: Invalid value: -15: weight -15 < 0", "virtualService rule #1 not used (only the last rule can have no matches)"},
		{"bad dry-run", admissionReq(t, admissionv1.Update, "networking.istio.io", "VirtualService", "default", badVS, true), false, "weight -15 < 0", ""},
		{"delete always allowed", admissionReq(t, admissionv1.Delete, "networking.istio.io", "VirtualService", "default", "", false), true, "", ""},
		{"unknown Istio kind", admissionReq(t, admissionv1.Create, "networking.istio.io", "Bogus", "default", "apiVersion: networking.istio.io/v1\nkind: Bogus\nmetadata: {name: x}\n", false), false, "unrecognized type Bogus", ""},
		// Istio's server.go judges the object's own apiVersion/kind and denies what is not an
		// Istio kind ("unrecognized type"); the request's kind must not let an object skip validation.
		{"other group", admissionReq(t, admissionv1.Create, "apps", "Deployment", "default", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\n", false), false, "unrecognized type apps/v1, Kind=Deployment", ""},
		{"object of another group under an Istio request kind", admissionReq(t, admissionv1.Create, "networking.istio.io", "VirtualService", "default", "apiVersion: v1\nkind: Service\nmetadata: {name: x}\n", false), false, "unrecognized type /v1, Kind=Service", ""},
		{"delete of another group allowed", admissionReq(t, admissionv1.Delete, "apps", "Deployment", "default", "", false), true, "", ""},
		{"undecodable", admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{UID: "uid-1", Kind: metav1.GroupVersionKind{Group: "networking.istio.io", Version: "v1", Kind: "VirtualService"}, Operation: admissionv1.Create, Namespace: "default", Name: "x", Object: runtime.RawExtension{Raw: []byte(`[1,2]`)}}}, false, "cannot decode configuration", ""},
		{"namespace from request", admissionReq(t, admissionv1.Create, "networking.istio.io", "VirtualService", "prod", badVS, false), false, "VirtualService prod/reviews:", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp := h.Handle(ctx, c.req)
			if resp.Allowed != c.allowed {
				t.Fatalf("allowed=%v, want %v (result %+v)", resp.Allowed, c.allowed, resp.Result)
			}
			if c.msg != "" && (resp.Result == nil || !strings.Contains(resp.Result.Message, c.msg)) {
				t.Errorf("message %q does not contain %q", resp.Result.Message, c.msg)
			}
			if c.warning != "" && !strings.Contains(strings.Join(resp.Warnings, "\n"), c.warning) {
				t.Errorf("warnings %q do not contain %q", resp.Warnings, c.warning)
			}
		})
	}
	if got := testutil.ToFloat64(validateRequests.WithLabelValues("VirtualService", "denied")); got < 3 {
		t.Errorf("denied VirtualService counter = %v, want >= 3", got)
	}
	if got := testutil.ToFloat64(validateRequests.WithLabelValues("VirtualService", "skipped")); got < 1 {
		t.Errorf("skipped (DELETE) counter = %v, want >= 1", got)
	}
}

func TestValidationHandlerCrossReferences(t *testing.T) {
	ix := crossref.NewIndex("")
	ix.SetReady()
	ix.SetNamespace("default", nil, true)
	ix.SetService("default", "reviews", true)
	ix.SetDestinationRule(crossref.Key{Namespace: "default", Name: "reviews"}, &networking.DestinationRule{Host: "reviews", Subsets: []*networking.Subset{{Name: "v1"}}})
	h := &ValidationHandler{Log: logr.Discard(), Index: ix}
	req := admissionReq(t, admissionv1.Create, "networking.istio.io", "VirtualService", "default", goodVS, false)
	resp := h.Handle(context.Background(), req)
	if !resp.Allowed || !strings.Contains(strings.Join(resp.Warnings, "\n"), `VirtualService default/reviews: spec.http[0].route[1].destination.subset: subset "v2" is not defined`) {
		t.Fatalf("want allowed with subset warning, got allowed=%v warnings=%q", resp.Allowed, resp.Warnings)
	}
	ix.SetNamespace("default", map[string]string{crossref.StrictLabel: "true"}, true)
	resp = h.Handle(context.Background(), req)
	if resp.Allowed || !strings.Contains(resp.Result.Message, `subset "v2" is not defined`) {
		t.Fatalf("strict namespace: want denial naming the subset, got allowed=%v %+v", resp.Allowed, resp.Result)
	}
}

// The API server always sends a request with a UID and matches the response
// to it by that UID. A review without a request (or without its uid) is not
// one to answer: Istio's validate dereferences the missing request and the
// exchange fails; /validate answered it "allowed" (an empty operation is not
// CREATE/UPDATE), as it did for a DELETE without a uid.
func TestValidationHandlerRefusesMalformedReviews(t *testing.T) {
	registerValidationMetrics()
	srv := validateHTTPHandler(&ValidationHandler{Log: logr.Discard()})
	for name, body := range map[string]string{
		"no request":         `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`,
		"empty request":      `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{}}`,
		"DELETE without uid": `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"operation":"DELETE","kind":{"group":"networking.istio.io","version":"v1","kind":"VirtualService"},"namespace":"default","name":"reviews"}}`,
		"CREATE without uid": `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"operation":"CREATE","kind":{"group":"networking.istio.io","version":"v1","kind":"VirtualService"},"namespace":"default","name":"reviews","object":` + goodVSJSON(t) + `}}`,
	} {
		t.Run(name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			req := httptest.NewRequest(http.MethodPost, ValidatePath, strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			srv.ServeHTTP(rec, req)
			var review admissionv1.AdmissionReview
			if err := json.Unmarshal(rec.Body.Bytes(), &review); err != nil || review.Response == nil {
				t.Fatalf("response %q: %v", rec.Body.String(), err)
			}
			if r := review.Response; r.Allowed || r.Result == nil || r.Result.Code != http.StatusBadRequest || !strings.Contains(r.Result.Message, "uid") {
				t.Errorf("allowed=%v result=%+v, want refused (400) naming the missing uid", r.Allowed, r.Result)
			}
		})
	}
}

func goodVSJSON(t *testing.T) string {
	t.Helper()
	raw, err := yaml.YAMLToJSON([]byte(goodVS))
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

func TestValidatingWebhookConfiguration(t *testing.T) {
	vwc := ValidatingWebhookConfiguration(ClientConfig{BaseURL: "https://127.0.0.1:9443", CABundle: []byte("ca"), CAInjectFrom: "ns/cert", OwnNamespace: "meshguard-system"})
	if vwc.Name != ValidatingConfigName || vwc.Annotations["cert-manager.io/inject-ca-from"] != "ns/cert" || len(vwc.Webhooks) != 1 {
		t.Fatalf("unexpected configuration: %+v", vwc.ObjectMeta)
	}
	wh := vwc.Webhooks[0]
	if *wh.ClientConfig.URL != "https://127.0.0.1:9443"+ValidatePath || string(wh.ClientConfig.CABundle) != "ca" {
		t.Errorf("clientConfig: %+v", wh.ClientConfig)
	}
	if *wh.FailurePolicy != admissionregistrationv1.Fail || *wh.SideEffects != admissionregistrationv1.SideEffectClassNone || *wh.TimeoutSeconds != 10 {
		t.Errorf("policy: fail=%v side=%v timeout=%v", *wh.FailurePolicy, *wh.SideEffects, *wh.TimeoutSeconds)
	}
	r := wh.Rules[0]
	if strings.Join(r.APIGroups, ",") != "networking.istio.io,security.istio.io,telemetry.istio.io,extensions.istio.io" ||
		len(r.Operations) != 2 || r.Operations[0] != admissionregistrationv1.Create || r.Operations[1] != admissionregistrationv1.Update {
		t.Errorf("rules: %+v", r)
	}
	if wh.NamespaceSelector == nil || wh.NamespaceSelector.MatchExpressions[0].Values[0] != "meshguard-system" || wh.ObjectSelector != nil {
		t.Errorf("selectors: ns=%+v obj=%+v", wh.NamespaceSelector, wh.ObjectSelector)
	}
	// Istio's validators set no namespaceSelector: kube-system is validated too; only
	// meshguard's own namespace is left out (docs/compatibility.md).
	sel, err := metav1.LabelSelectorAsSelector(wh.NamespaceSelector)
	if err != nil {
		t.Fatal(err)
	}
	for ns, want := range map[string]bool{"kube-system": true, "kube-public": true, "istio-system": true, "default": true, "meshguard-system": false} {
		if got := sel.Matches(labels.Set{"kubernetes.io/metadata.name": ns}); got != want {
			t.Errorf("namespace %s selected = %v, want %v", ns, got, want)
		}
	}
	rev := ValidatingWebhookConfiguration(ClientConfig{ServiceName: "meshguard", ServiceNamespace: "meshguard-system", Revision: "canary", TimeoutSeconds: 5})
	if rev.Name != ValidatingConfigName+"-canary" || rev.Webhooks[0].ObjectSelector.MatchLabels["istio.io/rev"] != "canary" || *rev.Webhooks[0].TimeoutSeconds != 5 ||
		rev.Webhooks[0].ClientConfig.Service == nil || *rev.Webhooks[0].ClientConfig.Service.Path != ValidatePath {
		t.Errorf("revision configuration: %+v", rev)
	}
}

// TestValidationMetricKindsBounded: the kind label comes from the
// AdmissionReview, which any client reaching /validate writes; a kind
// meshguard does not validate is counted as "other", so made-up kinds
// cannot grow the metric (and the process's memory) without bound.
func TestValidationMetricKindsBounded(t *testing.T) {
	h := &ValidationHandler{Log: logr.Discard()}
	before := testutil.CollectAndCount(validateRequests)
	for i := range 50 {
		req := admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
			UID: "uid-1", Operation: admissionv1.Delete, Kind: metav1.GroupVersionKind{Group: "x.example", Version: "v1", Kind: "Made" + strings.Repeat("Up", i)},
		}}
		h.Handle(context.Background(), req)
	}
	if grown := testutil.CollectAndCount(validateRequests) - before; grown > 1 {
		t.Errorf("50 made-up kinds added %d series to meshguard_validation_requests_total, want at most 1 (\"other\")", grown)
	}
	if got := testutil.ToFloat64(validateRequests.WithLabelValues("other", "skipped")); got < 50 {
		t.Errorf("other/skipped = %v, want >= 50", got)
	}
}

// Cross-reference findings are capped per object like validation's own
// (validation.MaxWarningsPerObject, MaxErrorsPerObject): a VirtualService
// routing to hundreds of missing hosts got one warning (or, in a strict
// namespace, one denial line) per destination, without bound.
func TestValidationHandlerCrossReferencesCapped(t *testing.T) {
	ix := crossref.NewIndex("")
	ix.SetReady()
	ix.SetNamespace("default", nil, true)
	h := &ValidationHandler{Log: logr.Discard(), Index: ix}
	var doc strings.Builder
	doc.WriteString("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: reviews}\nspec:\n  hosts: [reviews]\n  http:\n")
	const n = 300
	for i := range n {
		fmt.Fprintf(&doc, "  - match: [{uri: {prefix: /p%d}}]\n    route: [{destination: {host: missing%d}}]\n", i, i)
	}
	req := admissionReq(t, admissionv1.Create, "networking.istio.io", "VirtualService", "default", doc.String(), false)
	resp := h.Handle(context.Background(), req)
	if !resp.Allowed {
		t.Fatalf("denied: %+v", resp.Result)
	}
	missing := 0
	for _, w := range resp.Warnings {
		if strings.Contains(w, "matches no Service or ServiceEntry") {
			missing++
		}
	}
	if last := resp.Warnings[len(resp.Warnings)-1]; missing > validation.MaxWarningsPerObject || last != "VirtualService default/reviews: and 200 more warnings" {
		t.Errorf("%d cross-reference warnings, want at most %d and a summary; last %q", missing, validation.MaxWarningsPerObject, last)
	}
	ix.SetNamespace("default", map[string]string{crossref.StrictLabel: "true"}, true)
	resp = h.Handle(context.Background(), req)
	if resp.Allowed {
		t.Fatal("strict namespace: allowed")
	}
	if lines := strings.Count(resp.Result.Message, "\n") + 1; lines > validation.MaxErrorsPerObject+2 || !strings.Contains(resp.Result.Message, "and 200 more errors") {
		t.Errorf("strict denial of %d lines, want at most %d with a summary", lines, validation.MaxErrorsPerObject+2)
	}
}

// TestAdmissionBodyLimit: both admission endpoints read at most 6 MiB, as
// Istio's injector and validation webhook do (kube.HTTPConfigReader,
// MaxRequestBodyBytes): a review of exactly the limit is answered, one byte
// more is refused with 413, with or without Content-Length. /validate read up
// to controller-runtime's 7 MiB; a chunked body over the limit was an HTTP
// 200 AdmissionReview with code 400.
func TestAdmissionBodyLimit(t *testing.T) {
	registerValidationMetrics()
	validReview := `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","operation":"CREATE","kind":{"group":"networking.istio.io","version":"v1","kind":"VirtualService"},"namespace":"default","name":"reviews","object":` + goodVSJSON(t) + `}}`
	for _, ep := range []struct {
		path   string
		h      http.Handler
		review []byte
	}{
		{InjectPath, newHandler(t, nil), reviewBody(t, testPod(0), nil)},
		{ValidatePath, validateHTTPHandler(&ValidationHandler{Log: logr.Discard()}), []byte(validReview)},
	} {
		for _, size := range []int{DefaultMaxRequestBytes, DefaultMaxRequestBytes + 1} {
			// Trailing JSON whitespace pads the review to size bytes.
			body := append(append(make([]byte, 0, size), ep.review...), strings.Repeat(" ", size-len(ep.review))...)
			for _, length := range []string{"Content-Length", "chunked"} {
				req := httptest.NewRequest(http.MethodPost, ep.path, bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				if length == "chunked" {
					req.ContentLength = -1
				}
				rec := httptest.NewRecorder()
				ep.h.ServeHTTP(rec, req)
				var review admissionv1.AdmissionReview
				_ = json.Unmarshal(rec.Body.Bytes(), &review)
				allowed := rec.Code == http.StatusOK && review.Response != nil && review.Response.Allowed
				if want := size <= DefaultMaxRequestBytes; allowed != want {
					t.Errorf("%s, %d-byte body (%s): HTTP %d allowed=%v, want allowed=%v: %.300s", ep.path, size, length, rec.Code, allowed, want, rec.Body.String())
				}
				if size > DefaultMaxRequestBytes && rec.Code != http.StatusRequestEntityTooLarge {
					t.Errorf("%s, %d-byte body (%s): HTTP %d, want 413", ep.path, size, length, rec.Code)
				}
			}
		}
	}
}
