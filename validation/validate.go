package validation

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"google.golang.org/protobuf/proto"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/meshguard/meshguard/internal/manifest"
)

// IstioGroups are the four API groups meshguard validates (the groups Istio's
// validating webhook configuration covers).
var IstioGroups = []string{
	"networking.istio.io",
	"security.istio.io",
	"telemetry.istio.io",
	"extensions.istio.io",
}

// IsIstioGroup reports whether group is one of IstioGroups.
func IsIstioGroup(group string) bool {
	for _, g := range IstioGroups {
		if g == group {
			return true
		}
	}
	return false
}

// Problem is one finding: the field path (e.g. "spec.http[1].route[0].weight")
// and the message. Code is set when an Istio analyzer reports the same
// finding under its own code (e.g. IST0131 for an ineffective VirtualService
// match), with Args the arguments of that analyzer message's template.
type Problem struct {
	Field   string   `json:"field"`
	Message string   `json:"message"`
	Code    Code     `json:"code,omitempty"`
	Args    []string `json:"-"`
}

// Result is the verdict on one object.
type Result struct {
	APIVersion string    `json:"apiVersion,omitempty"`
	Kind       string    `json:"kind,omitempty"`
	Namespace  string    `json:"namespace,omitempty"`
	Name       string    `json:"name,omitempty"`
	Errors     []Problem `json:"errors,omitempty"`
	Warnings   []Problem `json:"warnings,omitempty"`
	// Skipped is true for objects outside the Istio API groups (the CLI passes
	// over Deployments, Services, ... in the same file).
	Skipped bool `json:"skipped,omitempty"`

	spec    proto.Message  // decoded spec, for cross-reference checks
	checked map[string]any // the object the rules ran on (Checked)
}

// Checked is the object the rules ran on: obj as the API server would store
// it, pruned of explicit nulls (and of unknown fields, reported). It is obj
// itself when nothing was pruned, and nil when the object was not checked
// (skipped, or its kind not identified). A loader decodes this map, never the
// raw document, so that what it enforces is what was validated
// (matchLabels {app: null} is {} here, as in the API server; decoding the raw
// document read {app: ""}).
func (r Result) Checked() map[string]any { return r.checked }

// Spec returns the decoded istio.io/api message of the object, or nil when
// it could not be decoded (or the object is not an Istio kind).
func (r Result) Spec() proto.Message { return r.spec }

// Valid reports whether the object has no errors.
func (r Result) Valid() bool { return len(r.Errors) == 0 }

// Object names the object as "Kind ns/name" (docs/compatibility.md
// "Framework", Messages).
func (r Result) Object() string {
	kind := r.Kind
	if kind == "" {
		kind = "object"
	}
	name := r.Name
	if name == "" {
		name = "<unnamed>"
	}
	if r.Namespace != "" {
		name = r.Namespace + "/" + name
	}
	return kind + " " + name
}

// Line renders a problem of this object:
// "VirtualService default/reviews: spec.http[1].route[0].weight: message".
func (r Result) Line(p Problem) string {
	if p.Field == "" {
		return r.Object() + ": " + p.Message
	}
	return r.Object() + ": " + p.Field + ": " + p.Message
}

// ErrorLines renders all errors, one line each.
func (r Result) ErrorLines() []string { return r.lines(r.Errors) }

// WarningLines renders all warnings, one line each.
func (r Result) WarningLines() []string { return r.lines(r.Warnings) }

func (r Result) lines(ps []Problem) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = r.Line(p)
	}
	return out
}

// Options tune validation of one object.
type Options struct {
	// DefaultNamespace is used when the object has no metadata.namespace (the
	// admission request's namespace, or "default" offline like istioctl).
	DefaultNamespace string
	// APIServerAdmitted is set by the webhook: the API server has already
	// decoded the object against its installed CRD, which may be newer than
	// meshguard's. Spec fields meshguard does not know are then warnings (the
	// API server accepted them; Istio's webhook tolerates them too,
	// pkg/webhooks/validation/server/server.go) and an unknown version of a
	// known kind is validated with another served version's schema, so a CRD
	// upgrade does not make the webhook reject everything (istio/istio#20449). Offline both stay errors.
	APIServerAdmitted bool
}

// problems converts field errors into Problems. Warnings carry only their
// detail: "Invalid value" would contradict an accepted object.
func problems(list field.ErrorList, warning bool) []Problem {
	if len(list) == 0 {
		return nil
	}
	out := make([]Problem, len(list))
	for i, e := range list {
		msg := e.ErrorBody()
		if e.Origin == originUnknownField || warning {
			msg = e.Detail
		}
		out[i] = Problem{Field: e.Field, Message: msg}
		if code, ok := strings.CutPrefix(e.Origin, originCode); ok && warning {
			out[i].Code = Code(code)
			out[i].Args, _ = e.BadValue.([]string)
		}
	}
	return out
}

const originUnknownField = "unknownField"

// unknownField reports a field the schema does not declare, worded like the
// API server's strict field validation: unknown field "spec.htttp".
func unknownField(p *field.Path, full string) *field.Error {
	return field.Invalid(p, field.OmitValueType{}, fmt.Sprintf("unknown field %q", full)).WithOrigin(originUnknownField)
}

// ignoredField is the webhook's warning for a spec field the API server's
// (newer) CRD knows and meshguard's does not.
func ignoredField(p *field.Path, full string) *field.Error {
	return field.Invalid(p, field.OmitValueType{}, fmt.Sprintf("field %q is not in meshguard's Istio API version and was not validated", full))
}

// authzFailsClosed ends the warnings for what meshguard's ext_authz cannot
// evaluate and fails closed on (policy.DecodeStored, policy/translate.go).
const authzFailsClosed = "meshguard's ext_authz denies every workload this policy selects"

// enforcedByAuthz: the kinds meshguard's ext_authz enforces. A stored one
// with a field it does not know fails closed there (policy.DecodeStored).
func enforcedByAuthz(gk schema.GroupKind) bool {
	return gk.Group == "security.istio.io" && (gk.Kind == "AuthorizationPolicy" || gk.Kind == "PeerAuthentication")
}

var allowedTopLevel = map[string]bool{"apiVersion": true, "kind": true, "metadata": true, "spec": true, "status": true}

// Caps on the findings reported for one object: a hostile input (a route
// list repeated a million times) must not turn into a million lines. The rest
// is summarised in one last finding ("and 1,299,990 more warnings").
const (
	MaxErrorsPerObject   = 100
	MaxWarningsPerObject = 100
)

// ValidateObject validates the content of one unstructured object (as in
// unstructured.Unstructured.Object). obj is not modified. The stages are the
// API server's, then Istio's webhook: identify the kind, pick its CRD schema,
// prune (unknown fields, nulls), metadata, OpenAPI/CEL schema, raw-spec
// rules, decode into the istio.io/api message, the kind's rules.
func ValidateObject(ctx context.Context, obj map[string]any, opts Options) Result {
	res := identify(obj, opts)
	var f Findings
	gvk, ok := typeOf(obj, res, &f)
	if ok && !IsIstioGroup(gvk.Group) {
		res.Skipped = true
		return res
	}
	var crd *crdVersion
	var entry kindEntry
	if ok {
		crd, entry, ok = resolveKind(gvk, opts, &f)
	}
	if !ok {
		return res.finish(f)
	}
	work, clean := prune(obj, crd, opts, &f)
	res.checked = work
	meta, metaErrs := decodeMeta(work, res.Namespace, !opts.APIServerAdmitted)
	f.Errors = append(f.Errors, metaErrs...)
	validateMetadata(gvk.Kind, meta, &f)
	schemaErrs := crd.validate(ctx, work, clean)
	f.Errors = append(f.Errors, schemaErrs...)

	// Rules on the raw spec run before decoding: the proto cannot tell an
	// empty list from an absent one (AuthorizationPolicy `from: []`).
	rawSpec, hasSpec := work["spec"]
	if m, isMap := rawSpec.(map[string]any); isMap && entry.validateRaw != nil {
		entry.validateRaw(meta, m, &f)
	}
	msg := entry.newSpec()
	if hasSpec && rawSpec != nil {
		if err := decodeSpec(rawSpec, msg); err != nil {
			// The schema usually explains a type error better; report the
			// decoder only when it is the sole source.
			if len(schemaErrs) == 0 {
				f.Error(field.NewPath("spec"), field.OmitValueType{}, "cannot decode: "+err.Error())
			}
			msg = nil
		}
	}
	if msg != nil {
		applyKindRules(entry, meta, msg, schemaErrs, &f)
	}
	res.spec = msg
	return res.finish(f)
}

// identify fills the object's identity (apiVersion, kind, name, namespace).
func identify(obj map[string]any, opts Options) Result {
	var res Result
	res.APIVersion, _ = obj["apiVersion"].(string)
	res.Kind, _ = obj["kind"].(string)
	if md, ok := obj["metadata"].(map[string]any); ok {
		res.Name, _ = md["name"].(string)
		res.Namespace, _ = md["namespace"].(string)
	}
	if res.Namespace == "" {
		res.Namespace = opts.DefaultNamespace
	}
	return res
}

// typeOf parses apiVersion and kind; false when either is missing or invalid.
func typeOf(obj map[string]any, res Result, f *Findings) (schema.GroupVersionKind, bool) {
	if res.APIVersion == "" || res.Kind == "" {
		for _, k := range []string{"apiVersion", "kind"} {
			switch v := obj[k]; v.(type) {
			case nil:
				f.Required(field.NewPath(k), k+" must be set")
			case string:
				if v == "" {
					f.Required(field.NewPath(k), k+" must be set")
				}
			default:
				f.Error(field.NewPath(k), v, "must be a string")
			}
		}
		return schema.GroupVersionKind{}, false
	}
	gv, err := schema.ParseGroupVersion(res.APIVersion)
	if err != nil {
		f.Error(field.NewPath("apiVersion"), res.APIVersion, err.Error())
		return schema.GroupVersionKind{}, false
	}
	// An Istio group misspelt so is no group the API server serves, and
	// would otherwise be skipped as another group's object (meshguard
	// validate exiting 0, a policy loader leaving a DENY unenforced).
	for _, g := range IstioGroups {
		switch {
		case gv.Group == "" && strings.EqualFold(gv.Version, g):
			f.Error(field.NewPath("apiVersion"), res.APIVersion, "an API group without a version (apiVersion is group/version)")
			return schema.GroupVersionKind{}, false
		case gv.Group != g && strings.EqualFold(gv.Group, g):
			f.Error(field.NewPath("apiVersion"), res.APIVersion, fmt.Sprintf("API groups are case-sensitive: did you mean %s/%s?", g, gv.Version))
			return schema.GroupVersionKind{}, false
		}
	}
	return gv.WithKind(res.Kind), true
}

// resolveKind finds the kind's entry and the CRD schema of its version.
func resolveKind(gvk schema.GroupVersionKind, opts Options, f *Findings) (*crdVersion, kindEntry, bool) {
	entry, known := kinds[gvk.GroupKind()]
	set, err := loadSchemas()
	if err != nil {
		f.Errors = append(f.Errors, field.InternalError(nil, err))
		return nil, entry, false
	}
	versions := set.versions[gvk.GroupKind()]
	compiled := func(gvk schema.GroupVersionKind) (*crdVersion, bool) {
		l := set.byGVK[gvk]
		if l == nil {
			return nil, true
		}
		cv, err := l.get()
		if err != nil {
			f.Errors = append(f.Errors, field.InternalError(nil, err))
			return nil, false
		}
		return cv, true
	}
	crd, ok := compiled(gvk)
	if !ok {
		return nil, entry, false
	}
	switch {
	case !known && len(versions) == 0:
		// Istio denies unknown kinds in its groups
		// (pilot/pkg/config/kube/crdclient, ValidateConfig in the webhook); so do we.
		f.Error(field.NewPath("kind"), gvk.Kind, fmt.Sprintf("unrecognized type %s: not a kind of %s known to meshguard", gvk.Kind, gvk.Group))
	case crd == nil && opts.APIServerAdmitted && len(versions) > 0:
		// All versions of a kind share one proto and identical rules.
		other := versions[len(versions)-1]
		if crd, ok = compiled(gvk.GroupKind().WithVersion(other)); !ok {
			return nil, entry, false
		}
		f.Warn(field.NewPath("apiVersion"), gvk.GroupVersion().String(), fmt.Sprintf("version %s of %s is newer than meshguard's Istio API; validated with the %s rules", gvk.Version, gvk.Kind, other))
	case crd == nil:
		f.Error(field.NewPath("apiVersion"), gvk.GroupVersion().String(), fmt.Sprintf("version %s of %s is not served; served versions: %s",
			gvk.Version, gvk.Kind, strings.Join(versions, ", ")))
	}
	return crd, entry, !f.HasErrors()
}

// prune drops what the API server drops before validating: unknown top-level
// keys and fields the schema does not declare (both reported), and explicit
// nulls of non-nullable fields (silently, as the API server's
// PruneNonNullableNullsWithoutDefaults in apiextensions-apiserver
// customresource_handler.go does). It works on a copy, made only when
// something is to be removed; clean reports that one walk already proved the
// object free of unknown fields and valid against the OpenAPI schema.
func prune(obj map[string]any, crd *crdVersion, opts Options, f *Findings) (work map[string]any, clean bool) {
	extraTop := false
	for k := range obj {
		if !allowedTopLevel[k] {
			extraTop = true
		}
	}
	nulls := hasNull(obj)
	clean = !extraTop && !nulls && cleanAndValid(crd.structural, obj)
	needPrune := !clean && crd.hasUnknown(obj)
	work = obj
	if extraTop || needPrune || nulls {
		work = runtime.DeepCopyJSON(obj)
	}
	if extraTop {
		for _, k := range sortedKeys(work) {
			if !allowedTopLevel[k] {
				f.Errors = append(f.Errors, unknownField(field.NewPath(k), k))
				delete(work, k)
			}
		}
	}
	if needPrune {
		for _, p := range crd.pruneUnknown(work) {
			if opts.APIServerAdmitted && strings.HasPrefix(p, "spec.") {
				w := ignoredField(pathFromString(p), p)
				if enforcedByAuthz(crd.gvk.GroupKind()) {
					w.Detail += "; " + authzFailsClosed + " until it knows the field"
				}
				f.Warnings = append(f.Warnings, w)
				continue
			}
			f.Errors = append(f.Errors, unknownField(pathFromString(p), p))
		}
	}
	if nulls {
		crd.pruneNulls(work)
	}
	return work, clean
}

// hasNull reports whether v holds an explicit null anywhere.
func hasNull(v any) bool {
	switch t := v.(type) {
	case nil:
		return true
	case map[string]any:
		for _, x := range t {
			if hasNull(x) {
				return true
			}
		}
	case []any:
		for _, x := range t {
			if hasNull(x) {
				return true
			}
		}
	}
	return false
}

// applyKindRules runs the kind's webhook rules on the decoded spec.
func applyKindRules(entry kindEntry, meta metav1.ObjectMeta, msg proto.Message, schemaErrs field.ErrorList, f *Findings) {
	schemaPaths := make(map[string]bool, len(schemaErrs))
	type fieldDetail struct{ field, detail string }
	schemaDetails := make(map[fieldDetail]bool, len(schemaErrs))
	for _, e := range schemaErrs {
		schemaPaths[e.Field] = true
		schemaDetails[fieldDetail{e.Field, e.Detail}] = true
	}
	var kf Findings
	entry.validate(meta, msg, &kf)
	// The CRD rule and the webhook rule often say the same thing about the
	// same field; keep the CRD's message (it is what kubectl shows without
	// meshguard). A CRD rule on a map or list reports at the map (CEL's
	// self), the webhook rule at the entry: the same detail on an entry of
	// a field the CRD flagged is the same mistake too
	// (PeerAuthentication portLevelMtls {"0": ...}).
	for _, e := range kf.Errors {
		if schemaPaths[e.Field] {
			continue
		}
		if parent, ok := entryParent(e.Field); ok && schemaDetails[fieldDetail{parent, e.Detail}] {
			continue
		}
		f.Errors = append(f.Errors, e)
	}
	f.Warnings = append(f.Warnings, kf.Warnings...)
}

// entryParent is the field holding entry path p ("spec.m" of "spec.m[k]").
func entryParent(p string) (string, bool) {
	if !strings.HasSuffix(p, "]") {
		return "", false
	}
	i := strings.LastIndex(p, "[")
	if i <= 0 {
		return "", false
	}
	return p[:i], true
}

// finish converts the findings into the result's problems, capped.
func (r Result) finish(f Findings) Result {
	r.Errors = CapProblems(problems(f.Errors, false), MaxErrorsPerObject, "errors")
	r.Warnings = CapProblems(problems(f.Warnings, true), MaxWarningsPerObject, "warnings")
	return r
}

// CapProblems keeps the first max problems and summarises the rest ("and
// 1,299,990 more warnings"); the webhook caps its cross-reference findings with it.
func CapProblems(ps []Problem, max int, what string) []Problem {
	return CapProblemsCounting(ps, 0, max, what)
}

// CapProblemsCounting is CapProblems for ps and more problems found but
// never built (crossref.Index.CheckLimit): the summary counts both.
func CapProblemsCounting(ps []Problem, more, max int, what string) []Problem {
	if len(ps) <= max && more == 0 {
		return ps
	}
	keep := min(max, len(ps)) // every problem not built is counted
	rest := len(ps) + more - keep
	return append(ps[:keep:keep], Problem{Message: fmt.Sprintf("and %s more %s", groupThousands(rest), what)})
}

// groupThousands formats 1299990 as "1,299,990".
func groupThousands(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// decodeMeta converts metadata into ObjectMeta and applies the API server's
// own name/namespace checks (so offline validation agrees with it). With
// strict, fields ObjectMeta does not have are errors, as the API server's
// strict field validation reports them (apiextensions-apiserver
// schema/objectmeta GetObjectMetaWithOptions): a mistyped `namspace` must not
// quietly put the object in the default namespace. At admission the API
// server has already pruned them.
func decodeMeta(obj map[string]any, defaultNS string, strict bool) (metav1.ObjectMeta, field.ErrorList) {
	var meta metav1.ObjectMeta
	var errs field.ErrorList
	p := field.NewPath("metadata")
	if raw, ok := obj["metadata"].(map[string]any); ok {
		if simpleMeta(raw, &meta) {
			// decoded without reflection
		} else if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(raw, &meta, strict); err != nil {
			if se, isStrict := runtime.AsStrictDecodingError(err); isStrict {
				for _, e := range se.Errors() {
					name := strings.TrimPrefix(e.Error(), "unknown field ")
					if unq, uerr := strconv.Unquote(name); uerr == nil {
						name = unq
					}
					full := "metadata." + name
					errs = append(errs, unknownField(pathFromString(full), full))
				}
			} else {
				errs = append(errs, field.Invalid(p, field.OmitValueType{}, "cannot decode metadata: "+err.Error()))
			}
		}
	} else if obj["metadata"] != nil {
		errs = append(errs, field.Invalid(p, field.OmitValueType{}, "metadata must be an object"))
	}
	if meta.Namespace == "" {
		meta.Namespace = defaultNS
	}
	return meta, errs
}

// simpleMeta decodes the metadata fields validation reads when they are all
// there is (the usual shape of a manifest or an admission request without
// managedFields); anything else returns false and the reflective converter
// runs, so results are the same.
func simpleMeta(raw map[string]any, meta *metav1.ObjectMeta) bool {
	var out metav1.ObjectMeta
	for k, v := range raw {
		switch k {
		case "name", "namespace", "generateName", "uid", "resourceVersion":
			s, ok := v.(string)
			if !ok {
				return false
			}
			switch k {
			case "name":
				out.Name = s
			case "namespace":
				out.Namespace = s
			case "generateName":
				out.GenerateName = s
			case "uid":
				out.UID = types.UID(s)
			case "resourceVersion":
				out.ResourceVersion = s
			}
		case "labels", "annotations":
			m, ok := v.(map[string]any)
			if !ok {
				return false
			}
			sm := make(map[string]string, len(m))
			for mk, mv := range m {
				s, ok := mv.(string)
				if !ok {
					return false
				}
				sm[mk] = s
			}
			if k == "labels" {
				out.Labels = sm
			} else {
				out.Annotations = sm
			}
		default:
			return false
		}
	}
	*meta = out
	return true
}

// pathFromString turns "spec.http[0].foo" into a field.Path for reporting.
func pathFromString(s string) *field.Path {
	if s == "" {
		return nil
	}
	head, rest, _ := strings.Cut(s, ".")
	p := field.NewPath(head)
	if rest != "" {
		p = p.Child(rest)
	}
	return p
}

// MaxObjectBytes bounds one object given to ValidateJSON or in a stream
// (manifest.MaxDocumentBytes, the API server's request body limit).
const MaxObjectBytes = manifest.MaxDocumentBytes

// ValidateJSON validates one object given as JSON (e.g. AdmissionRequest.Object.Raw).
// The error is non-nil only when data is too large, not a JSON/YAML object,
// or has a duplicate key.
func ValidateJSON(ctx context.Context, data []byte, opts Options) (Result, error) {
	if len(data) > MaxObjectBytes {
		return Result{}, fmt.Errorf("object of %d bytes is over the %d-byte limit", len(data), MaxObjectBytes)
	}
	obj, err := manifest.Decode(data)
	if err != nil {
		return Result{}, err
	}
	return ValidateObject(ctx, obj, opts), nil
}
