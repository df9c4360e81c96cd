package webhook

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"github.com/spf13/pflag"
	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	ctrlwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/meshguard/meshguard/internal/manifest"
	"github.com/meshguard/meshguard/internal/textcut"
	"github.com/meshguard/meshguard/orgrules"
	"github.com/meshguard/meshguard/validation"
	"github.com/meshguard/meshguard/validation/crossref"
)

// ValidationWebhookName is the webhook's name inside the configuration; the
// API server prints it in denials ("admission webhook ... denied the request").
const ValidationWebhookName = "validation.meshguard.io"

// ValidationOptions configure the /validate webhook.
type ValidationOptions struct {
	// CrossReferences enables the cross-resource checks (docs/compatibility.md
	// "Cross-resource checks") backed by the manager's cache.
	CrossReferences bool
	// ClusterDomain is the DNS suffix used to resolve short service names.
	ClusterDomain string
	// OrgRules, when set (SetupOrgRules), are evaluated on every object
	// admitted: deny messages deny, warn messages are admission warnings.
	OrgRules *OrgRules
}

// AddFlags registers the validation flags.
func (o *ValidationOptions) AddFlags(fs *pflag.FlagSet) {
	fs.BoolVar(&o.CrossReferences, "validation-cross-references", true,
		"warn about references to missing Gateways, hosts and subsets and about conflicting hosts/Gateways (denials in namespaces labelled "+crossref.StrictLabel+"=true)")
	fs.StringVar(&o.ClusterDomain, "cluster-domain", "cluster.local", "cluster DNS suffix used to resolve short service names in cross-reference checks")
}

// ValidationHandler is the /validate admission handler.
type ValidationHandler struct {
	// Index, when set, adds cross-reference findings.
	Index *crossref.Index
	// Rules returns the organisation rules in force (nil: none); RuleIndex
	// gives them the namespace labels and referenced objects.
	Rules     func() *orgrules.Rules
	RuleIndex *crossref.Index
	// RulesReady, when set, fails until the organisation rules have loaded
	// once: until then Rules returns nil, and a request admitted then would
	// skip every rule (the readiness check keeps the Service from sending
	// any, but a caller that reaches the replica directly must not get past).
	RulesReady func() error
	Log        logr.Logger
}

var _ admission.Handler = (*ValidationHandler)(nil)

// Handle validates CREATE and UPDATE of Istio config and denies them for
// objects that are not Istio config; other operations are allowed.
func (h *ValidationHandler) Handle(ctx context.Context, req admission.Request) admission.Response {
	start := time.Now()
	kind := req.Kind.Kind
	// The review's fields are cut as every request-derived log field is
	// (textcut.LogField): a review may be as large as the body limit.
	log := h.Log.WithValues("kind", textcut.LogField(kind), "namespace", textcut.LogField(req.Namespace), "name", textcut.LogField(req.Name),
		"operation", textcut.LogField(string(req.Operation)), "dryRun", req.DryRun != nil && *req.DryRun)
	// The API server always sends a request with a UID and matches the response
	// to it by that UID: a review without one is not an admission request to
	// answer, let alone allow (Istio's validate fails on a review without a
	// request; InjectHandler.Handle refuses it the same way).
	if req.UID == "" {
		observeValidation(kind, "error", start)
		log.Error(errNoRequest, "refusing the admission request")
		return admission.Errored(http.StatusBadRequest, errNoRequest)
	}
	// DELETE (and CONNECT) are never validated: a broken object must always be removable
	// (as in Istio's pkg/webhooks/validation/server/server.go).
	if req.Operation != admissionv1.Create && req.Operation != admissionv1.Update {
		observeValidation(kind, "skipped", start)
		return admission.Allowed("")
	}
	if len(req.Object.Raw) == 0 {
		observeValidation(kind, "error", start)
		return admission.Errored(http.StatusBadRequest, fmt.Errorf("%s %s/%s: request has no object", kind, req.Namespace, req.Name))
	}
	res, err := validation.ValidateJSON(ctx, req.Object.Raw, validation.Options{DefaultNamespace: req.Namespace, APIServerAdmitted: true})
	if err != nil {
		observeValidation(kind, "denied", start)
		log.V(1).Info("cannot decode object", "error", textcut.LogField(err.Error()))
		return deniedAsIstio(fmt.Sprintf("%s %s/%s: cannot decode configuration: %v", kind, req.Namespace, req.Name, err))
	}
	if res.Name == "" {
		res.Name = req.Name
	}
	if res.Skipped {
		// The object itself decides, as in Istio's server.go (the object's apiVersion/kind,
		// "unrecognized type" otherwise): what is not Istio config is not admitted unvalidated.
		observeValidation(kind, "denied", start)
		return deniedAsIstio(fmt.Sprintf("%s: unrecognized type %s: meshguard validates only the Istio API groups (%s)",
			res.Object(), schema.FromAPIVersionAndKind(res.APIVersion, res.Kind), strings.Join(validation.IstioGroups, ", ")))
	}
	if h.RulesReady != nil {
		if err := h.RulesReady(); err != nil {
			observeValidation(kind, "error", start)
			return admission.Errored(http.StatusServiceUnavailable, fmt.Errorf("%s: %w", res.Object(), err))
		}
	}
	istioErrors := len(res.Errors) // the organisation rules' come after
	if rules := h.rules(); rules != nil {
		if err := h.applyOrgRules(ctx, rules, &res, req.AdmissionRequest); err != nil {
			observeValidation(kind, "error", start)
			return admission.Errored(http.StatusServiceUnavailable, err)
		}
	}
	if !res.Valid() {
		observeValidation(kind, "denied", start)
		log.V(1).Info("denied", "errors", len(res.Errors))
		msg := strings.Join(res.ErrorLines(), "\n")
		if istioErrors == 0 {
			// Only organisation rules deny: 403, as Gatekeeper's denials.
			return admission.Denied(msg).WithWarnings(res.WarningLines()...)
		}
		return deniedAsIstio(msg).WithWarnings(res.WarningLines()...)
	}
	warnings := res.WarningLines()
	if h.Index != nil && res.Spec() != nil {
		// At most as many findings are built as the response reports: a
		// reference repeated thousands of times is a finding each, and
		// building them all before capping took GBs for a 3 MiB object.
		limit := max(validation.MaxErrorsPerObject, validation.MaxWarningsPerObject)
		findings, omitted := h.Index.CheckLimit(kind, crossref.Key{Namespace: res.Namespace, Name: res.Name}, res.Spec(), limit)
		more := crossref.Omitted(omitted)
		ps := make([]validation.Problem, len(findings))
		for i, fd := range findings {
			ps[i] = validation.Problem{Field: fd.Field, Message: fd.Message}
		}
		if len(ps) > 0 && !h.Index.WaitNamespace(ctx, res.Namespace, namespaceLag) {
			// Warning or denial depends on a label the index cannot see yet.
			observeValidation(kind, "error", start)
			return admission.Errored(http.StatusServiceUnavailable, fmt.Errorf("%s: namespace %s is not in the cross-reference index yet, so whether it has %s=true is unknown; retry", res.Object(), res.Namespace, crossref.StrictLabel))
		}
		strict := len(ps) > 0 && h.Index.Strict(res.Namespace)
		if strict && req.Operation == admissionv1.Update {
			// The findings describe the cluster, not the change: an UPDATE
			// leaving the spec as it was (a controller removing its
			// finalizer, labels, annotations) is warned, not denied, or an
			// object whose Service was deleted after it would be stuck
			// Terminating or frozen.
			metaOnly, err := metadataOnlyUpdate(req.Object.Raw, req.OldObject.Raw)
			if err != nil {
				observeValidation(kind, "denied", start)
				return deniedAsIstio(fmt.Sprintf("%s: %v", res.Object(), err))
			}
			strict = !metaOnly
		}
		// One finding per destination of a long route list: capped per object as validation's own are.
		if strict {
			ps = validation.CapProblemsCounting(ps, more, validation.MaxErrorsPerObject, "errors")
		} else {
			ps = validation.CapProblemsCounting(ps, more, validation.MaxWarningsPerObject, "warnings")
		}
		lines := make([]string, len(ps))
		for i, p := range ps {
			lines[i] = res.Line(p)
		}
		if strict {
			observeValidation(kind, "denied", start)
			return deniedAsIstio(strings.Join(lines, "\n") + fmt.Sprintf("\n(namespace %s has %s=true)", res.Namespace, crossref.StrictLabel)).WithWarnings(warnings...)
		}
		warnings = append(warnings, lines...)
	}
	if len(warnings) > 0 {
		observeValidation(kind, "warned", start)
		return admission.Allowed("").WithWarnings(warnings...)
	}
	observeValidation(kind, "allowed", start)
	return admission.Allowed("")
}

// metadataOnlyUpdate reports whether an UPDATE from oldRaw to newRaw leaves
// the object's spec as it was (labels, annotations, finalizers: a controller
// removing its finalizer from an object being deleted). Without an old
// object (the API server always sends one) it is not: the findings deny as
// for any change. An object being deleted whose spec changes is judged too:
// with a finalizer nobody removes it stays, and is served, as written.
func metadataOnlyUpdate(newRaw, oldRaw []byte) (bool, error) {
	type object struct {
		Spec any `json:"spec"`
	}
	var nw, old object
	if err := json.Unmarshal(newRaw, &nw); err != nil {
		return false, fmt.Errorf("decoding the object: %w", err)
	}
	if len(oldRaw) == 0 {
		return false, nil
	}
	if err := json.Unmarshal(oldRaw, &old); err != nil {
		return false, fmt.Errorf("decoding the old object (oldObject): %w", err)
	}
	return reflect.DeepEqual(nw.Spec, old.Spec), nil
}

// deniedAsIstio is a denial as Istio's webhooks write one (toAdmissionResponse in
// pkg/webhooks/validation/server/server.go and pkg/kube/inject/webhook.go): a
// message without a status code, which the API server returns as 400 without
// a reason ("Error from server: ... denied the request: ..."), where
// controller-runtime's Denied is 403 Forbidden.
func deniedAsIstio(msg string) admission.Response {
	return admission.Response{AdmissionResponse: admissionv1.AdmissionResponse{Result: &metav1.Status{Message: msg}}}
}

// useOrgRules has the handler apply r with the namespace labels and
// referenced objects of ix.
func (h *ValidationHandler) useOrgRules(r *OrgRules, ix *crossref.Index) {
	h.Rules, h.RuleIndex = r.Current, ix
	h.RulesReady = func() error { return r.Ready(nil) }
}

func (h *ValidationHandler) rules() *orgrules.Rules {
	if h.Rules == nil {
		return nil
	}
	return h.Rules()
}

// namespaceLag is how long a request waits for the cluster index to see its
// namespace (a namespace created just before the object: `kubectl create ns`
// then `apply`) before it fails as unjudgeable; the watch usually takes
// milliseconds.
var namespaceLag = 2 * time.Second

// applyOrgRules adds the organisation rules' verdict to res, worded as
// `meshguard validate --rego` words it (orgrules.Check). Until the cluster
// index has synced, or has seen the object's namespace, the rules cannot see
// namespace labels or referenced objects: the request fails (fail closed)
// rather than being judged on a partial view. The rules also see the
// request's operation and, for an UPDATE, the old object (Gatekeeper's
// input.review.operation and input.review.oldObject).
func (h *ValidationHandler) applyOrgRules(ctx context.Context, rules *orgrules.Rules, res *validation.Result, req admissionv1.AdmissionRequest) error {
	if h.RuleIndex == nil || !h.RuleIndex.Ready() {
		return fmt.Errorf("%s: organisation rules are not ready: the cluster index has not synced yet", res.Object())
	}
	// The namespace exists (the API server admitted it first) but the index
	// has not seen it yet: judged without its labels, a rule on them would
	// pass what it denies.
	if !h.RuleIndex.WaitNamespace(ctx, res.Namespace, namespaceLag) {
		return fmt.Errorf("%s: organisation rules: namespace %s is not in the cluster index yet, so its labels are unknown; retry", res.Object(), res.Namespace)
	}
	obj, err := manifest.Decode(req.Object.Raw)
	if err != nil {
		return fmt.Errorf("%s: decoding for organisation rules: %w", res.Object(), err)
	}
	adm := orgrules.Admission{Operation: string(req.Operation)}
	if req.Operation == admissionv1.Update {
		// The API server always sends it: without it a rule on what changed
		// (an immutable field) would pass what it denies. Bounded with the
		// object by the review's size limit (controller-runtime's 7 MiB).
		if len(req.OldObject.Raw) == 0 {
			return fmt.Errorf("%s: UPDATE request has no oldObject for the organisation rules", res.Object())
		}
		if adm.OldObject, err = manifest.Decode(req.OldObject.Raw); err != nil {
			return fmt.Errorf("%s: decoding the old object for organisation rules: %w", res.Object(), err)
		}
	}
	errs, warns := orgrules.Check(ctx, rules, h.RuleIndex, res.Kind, res.Namespace, res.Name, res.Spec(), obj, adm)
	res.Errors = append(res.Errors, errs...)
	res.Warnings = append(res.Warnings, warns...)
	return nil
}

// SetupValidation registers validatePaths on the manager's webhook server and,
// when enabled, keeps a cross-reference index filled from the manager's cache.
func SetupValidation(mgr manager.Manager, o ValidationOptions, log logr.Logger) error {
	registerValidationMetrics()
	// Compile the CRD schemas and CEL rules before serving (not on the first request).
	if err := validation.Preload(); err != nil {
		return fmt.Errorf("compiling the embedded Istio CRD schemas: %w", err)
	}
	h := &ValidationHandler{Log: log.WithName("validation")}
	if o.CrossReferences || o.OrgRules != nil {
		ix, err := watchIndex(mgr, o.ClusterDomain, h.Log)
		if err != nil {
			return fmt.Errorf("setting up cross-reference index: %w", err)
		}
		if o.CrossReferences {
			h.Index = ix
		}
		if o.OrgRules != nil {
			h.useOrgRules(o.OrgRules, ix)
			// Until the index has synced, requests fail (applyOrgRules): keep the
			// replica out of the Service meanwhile.
			if err := mgr.AddReadyzCheck("orgrules-index", func(*http.Request) error {
				if !ix.Ready() {
					return fmt.Errorf("cross-reference index not synced yet")
				}
				return nil
			}); err != nil {
				return err
			}
		}
	}
	vh := validateHTTPHandler(h)
	for _, path := range validatePaths {
		mgr.GetWebhookServer().Register(path, vh)
	}
	return nil
}

// validatePaths are the paths the validation webhook is served on: /validate
// and every path under it, as Istio's pkg/webhooks/validation/server/server.go
// New registers them (a hand-written or Istio-generated configuration whose
// path is below /validate is validated, not answered 404).
var validatePaths = []string{ValidatePath, ValidatePath + "/"}

// validateHTTPHandler serves h over HTTP as /validate does, reading at most
// DefaultMaxRequestBytes as /inject does by default (limitBody).
func validateHTTPHandler(h *ValidationHandler) http.Handler {
	return limitBody(&ctrlwebhook.Admission{Handler: h}, DefaultMaxRequestBytes)
}

// ValidatingWebhookConfiguration builds meshguard's validating configuration:
// the four Istio API groups, CREATE and UPDATE, failurePolicy Fail, sideEffects
// None (so --dry-run=server works), never the own namespace.
func ValidatingWebhookConfiguration(cc ClientConfig) *admissionregistrationv1.ValidatingWebhookConfiguration {
	fail := admissionregistrationv1.Fail
	none := admissionregistrationv1.SideEffectClassNone
	equivalent := admissionregistrationv1.Equivalent
	scope := admissionregistrationv1.AllScopes
	timeout := cc.TimeoutSeconds
	if timeout == 0 {
		timeout = 10
	}
	name := ValidatingConfigNameFor(cc.Revision)
	wh := admissionregistrationv1.ValidatingWebhook{
		Name:         ValidationWebhookName,
		ClientConfig: cc.For(ValidatePath),
		Rules: []admissionregistrationv1.RuleWithOperations{{
			Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
			Rule: admissionregistrationv1.Rule{
				APIGroups:   append([]string(nil), validation.IstioGroups...),
				APIVersions: []string{"*"},
				Resources:   []string{"*"},
				Scope:       &scope,
			},
		}},
		FailurePolicy:           &fail,
		MatchPolicy:             &equivalent,
		SideEffects:             &none,
		TimeoutSeconds:          &timeout,
		AdmissionReviewVersions: []string{"v1", "v1beta1"},
	}
	if cc.OwnNamespace != "" {
		wh.NamespaceSelector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{
			Key: "kubernetes.io/metadata.name", Operator: metav1.LabelSelectorOpNotIn, Values: []string{cc.OwnNamespace},
		}}}
	}
	if !IsDefaultRevision(cc.Revision) {
		// A revisioned instance validates only objects labelled for it (as in Istio's istio-discovery
		// chart, templates/validatingwebhookconfiguration.yaml).
		wh.Name = "rev." + ValidationWebhookName
		wh.ObjectSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"istio.io/rev": cc.Revision}}
	}
	return &admissionregistrationv1.ValidatingWebhookConfiguration{
		TypeMeta:   metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "ValidatingWebhookConfiguration"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: cc.annotations(), Labels: map[string]string{"app.kubernetes.io/name": "meshguard"}},
		Webhooks:   []admissionregistrationv1.ValidatingWebhook{wh},
	}
}
