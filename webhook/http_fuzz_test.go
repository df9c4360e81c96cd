package webhook

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admission/v1"
	sigsjson "sigs.k8s.io/json"

	"github.com/meshguard/meshguard/injector/config"
	"github.com/meshguard/meshguard/validation/crossref"
)

// fuzzMaxBody is the body limit the HTTP fuzz targets serve with: small, so
// both 413 paths (a declared length over it, a chunked body growing past
// it) are reached by cheap inputs.
const fuzzMaxBody = 16 << 10

// fuzzHTTPRequest builds the request an API server (or anyone reaching the
// port) could send: the body, its Content-Type, a path below base and,
// when chunked, no declared length (limitBody then bounds the read itself).
func fuzzHTTPRequest(base string, body []byte, contentType, suffix string, chunked bool) *http.Request {
	r := httptest.NewRequest(http.MethodPost, base, bytes.NewReader(body))
	if suffix != "" {
		r.URL.Path = base + "/" + suffix
	}
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	if chunked {
		r.ContentLength = -1
	}
	return r
}

// checkAdmissionHTTP asserts what limitBody and controller-runtime's
// admission webhook promise for any request: the statuses limitBody
// documents before decoding (400 no body, 413 over the limit with or
// without a declared length, 415 not JSON), otherwise a 200
// AdmissionReview (an undecodable review is one with result code 400) that is no recovered panic, that answers the
// request's uid once the review was decoded, and whose size is bounded by
// the request's. It returns the decoded response (nil when not 200).
func checkAdmissionHTTP(t *testing.T, body []byte, contentType string, chunked bool, w *httptest.ResponseRecorder, maxResponse int) *admissionv1.AdmissionReview {
	t.Helper()
	want := 0
	switch {
	case len(body) > fuzzMaxBody:
		want = http.StatusRequestEntityTooLarge
	case len(body) == 0:
		want = http.StatusBadRequest
	case contentType != "application/json":
		want = http.StatusUnsupportedMediaType
	default:
		want = http.StatusOK
	}
	if w.Code != want {
		t.Fatalf("HTTP %d, want %d (body %d bytes, Content-Type %q, chunked %v): %q", w.Code, want, len(body), contentType, chunked, w.Body.String())
	}
	if w.Body.Len() > maxResponse {
		t.Fatalf("response of %d bytes for a request of %d (bound %d)", w.Body.Len(), len(body), maxResponse)
	}
	if want != http.StatusOK {
		return nil
	}
	var ar admissionv1.AdmissionReview
	if err := sigsjson.UnmarshalCaseSensitivePreserveInts(w.Body.Bytes(), &ar); err != nil || ar.Response == nil {
		t.Fatalf("HTTP 200 without an AdmissionReview response: %v %q", err, w.Body.String())
	}
	resp := ar.Response
	if resp.Result != nil && strings.HasPrefix(resp.Result.Message, "panic:") {
		t.Fatalf("the handler panicked (recovered by controller-runtime): %s", resp.Result.Message)
	}
	if !resp.Allowed && (resp.Result == nil || resp.Result.Message == "") {
		t.Fatalf("denial or error without a message: %+v", resp)
	}
	// A typed response (apiVersion set) is written only after the review
	// decoded and the handler answered it: it must carry the request's uid.
	if ar.APIVersion != "" {
		var in admissionv1.AdmissionReview
		if err := sigsjson.UnmarshalCaseSensitivePreserveInts(body, &in); err == nil && in.Request != nil && resp.UID != in.Request.UID {
			t.Fatalf("response uid %q, request uid %q", resp.UID, in.Request.UID)
		}
		if resp.UID == "" && resp.Allowed {
			t.Fatalf("allowed a review without a uid: %+v", resp)
		}
	}
	return &ar
}

// FuzzInjectHTTP sends arbitrary requests through the /inject handler as
// SetupInjection serves it (NewInjectHTTPHandler: limitBody and its body budget,
// withPatchBuffer's pooled buffers, controller-runtime's decoding with
// panics recovered): checkAdmissionHTTP's promises, and the same request
// answered again (with a pooled buffer another request used) gets the
// same bytes. FuzzInjectAdmissionReview covers the patch's meaning.
func FuzzInjectHTTP(f *testing.F) {
	pod := reviewBody(f, testPod(2), nil)
	f.Add(pod, "application/json", "", false)
	f.Add(pod, "application/json", "cluster/c1/net/n1", true)
	f.Add(pod, "application/json; charset=utf-8", "", false)
	f.Add([]byte{}, "application/json", "", false)
	f.Add(bytes.Repeat([]byte(" "), fuzzMaxBody+1), "application/json", "", true)
	f.Add(bytes.Repeat([]byte(" "), fuzzMaxBody+1), "application/json", "", false)
	f.Add([]byte(`{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{"uid":"u","kind":{"version":"v1","kind":"Pod"},"operation":"CREATE","object":{"spec":{"containers":[{"name":"a"}]}}}}`), "application/json", ":ENV:cluster=c:ENV:net=n", false)
	f.Add([]byte("apiVersion: admission.k8s.io/v1\nkind: AdmissionReview\nrequest: {uid: y, operation: CREATE, kind: {version: v1, kind: Pod}, object: {spec: {containers: [{name: a}]}}}\n"), "application/json", "", false)
	f.Add([]byte(`{"request":{"kind":{"version":"v1","kind":"Pod"},"operation":"CREATE","object":{}}}`), "application/json", "", false)
	f.Add([]byte(`{"request":{"uid":"u","kind":{"version":"v1","kind":"Pod"},"operation":"CREATE","object":{"kind":"Service"}}}`), "application/json", "a/b/c", false)
	h := NewInjectHTTPHandler(&InjectHandler{Config: NewConfigStore(config.Default()), Log: logr.Discard()}, fuzzMaxBody)
	f.Fuzz(func(t *testing.T, body []byte, contentType, suffix string, chunked bool) {
		// An injected pod's patch is its sidecar and init container
		// (about 10 KiB) plus what repeats the pod's own fields.
		maxResponse := 64<<10 + 8*len(body)
		serve := func() *httptest.ResponseRecorder {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, fuzzHTTPRequest(InjectPath, body, contentType, suffix, chunked))
			return w
		}
		first := serve()
		checkAdmissionHTTP(t, body, contentType, chunked, first, maxResponse)
		if again := serve(); !bytes.Equal(again.Body.Bytes(), first.Body.Bytes()) || again.Code != first.Code {
			t.Fatalf("the same request answered differently:\n%d %s\n%d %s", first.Code, first.Body, again.Code, again.Body)
		}
	})
}

// FuzzValidationHTTP sends arbitrary requests through the /validate
// handler as SetupValidation serves it (validateHTTPHandler: limitBody and
// controller-runtime's decoding, not encoding/json as
// FuzzValidationAdmissionReview decodes), with a cross-reference index:
// checkAdmissionHTTP's promises.
func FuzzValidationHTTP(f *testing.F) {
	review := func(op, kind, obj string) []byte {
		return []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"1","kind":{"group":"networking.istio.io","version":"v1","kind":"` +
			kind + `"},"namespace":"default","name":"x","operation":"` + op + `","object":` + obj + `}}`)
	}
	f.Add(review("CREATE", "VirtualService", `{"apiVersion":"networking.istio.io/v1","kind":"VirtualService","metadata":{"name":"x"},"spec":{"hosts":["a"],"http":[{"route":[{"destination":{"host":"a","subset":"v9"},"weight":-3}]}]}}`), "application/json", "", false)
	f.Add(review("UPDATE", "DestinationRule", `{"apiVersion":"networking.istio.io/v1","kind":"DestinationRule","metadata":{"name":"x"},"spec":{"host":"a","subsets":[{"name":"v1"}]}}`), "application/json", "x", true)
	f.Add(review("CREATE", "AuthorizationPolicy", `{"apiVersion":"security.istio.io/v1","kind":"AuthorizationPolicy","metadata":{"name":"x"},"spec":{"rules":[{"when":[{"key":"request.headers[","values":["a"]}]}]}}`), "application/json", "", false)
	f.Add(review("DELETE", "Sidecar", `null`), "application/json", "", false)
	f.Add([]byte(`{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{"uid":"2","kind":{"group":"networking.istio.io","kind":"Gateway"},"operation":"CREATE","object":"x"}}`), "application/json", "", false)
	f.Add([]byte(`{}`), "text/plain", "", false)
	f.Add([]byte{}, "", "", true)
	f.Add(bytes.Repeat([]byte("{"), fuzzMaxBody+1), "application/json", "", true)
	ix := crossref.NewIndex("")
	ix.SetReady()
	ix.SetService("default", "a", true)
	ix.SetNamespace("default", nil, true)
	registerValidationMetrics()
	// A mutated namespace the index lacks waits namespaceLag before its
	// 503; at the served 2 s the fuzzer would mostly wait, not fuzz.
	defer func(d time.Duration) { namespaceLag = d }(namespaceLag)
	namespaceLag = 5 * time.Millisecond
	// validateHTTPHandler's handler with the fuzz limit (it serves
	// DefaultMaxRequestBytes, the same limitBody).
	h := limitBody(validateHTTPHandler(&ValidationHandler{Log: logr.Discard(), Index: ix}), fuzzMaxBody)
	f.Fuzz(func(t *testing.T, body []byte, contentType, suffix string, chunked bool) {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, fuzzHTTPRequest(ValidatePath, body, contentType, suffix, chunked))
		// Messages name fields and may quote values from the object.
		checkAdmissionHTTP(t, body, contentType, chunked, w, 16<<10+4*len(body))
	})
}
