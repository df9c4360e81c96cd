package validation

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"google.golang.org/protobuf/proto"
	extensionsv1alpha1 "istio.io/api/extensions/v1alpha1"
	networkingv1alpha3 "istio.io/api/networking/v1alpha3"
	networkingv1beta1 "istio.io/api/networking/v1beta1"
	securityv1beta1 "istio.io/api/security/v1beta1"
	telemetryv1alpha1 "istio.io/api/telemetry/v1alpha1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"k8s.io/apimachinery/pkg/util/validation/field"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// IstioGroups are the four API groups meshguard validates (spec §1, §4.1).
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

// specTypes maps each kind to a constructor of its istio.io/api message. Every
// served version of a kind decodes into the same Go type (spec §1).
var specTypes = map[schema.GroupKind]func() proto.Message{
	{Group: "networking.istio.io", Kind: "VirtualService"}:      func() proto.Message { return &networkingv1alpha3.VirtualService{} },
	{Group: "networking.istio.io", Kind: "DestinationRule"}:     func() proto.Message { return &networkingv1alpha3.DestinationRule{} },
	{Group: "networking.istio.io", Kind: "Gateway"}:             func() proto.Message { return &networkingv1alpha3.Gateway{} },
	{Group: "networking.istio.io", Kind: "ServiceEntry"}:        func() proto.Message { return &networkingv1alpha3.ServiceEntry{} },
	{Group: "networking.istio.io", Kind: "Sidecar"}:             func() proto.Message { return &networkingv1alpha3.Sidecar{} },
	{Group: "networking.istio.io", Kind: "WorkloadEntry"}:       func() proto.Message { return &networkingv1alpha3.WorkloadEntry{} },
	{Group: "networking.istio.io", Kind: "WorkloadGroup"}:       func() proto.Message { return &networkingv1alpha3.WorkloadGroup{} },
	{Group: "networking.istio.io", Kind: "EnvoyFilter"}:         func() proto.Message { return &networkingv1alpha3.EnvoyFilter{} },
	{Group: "networking.istio.io", Kind: "ProxyConfig"}:         func() proto.Message { return &networkingv1beta1.ProxyConfig{} },
	{Group: "security.istio.io", Kind: "AuthorizationPolicy"}:   func() proto.Message { return &securityv1beta1.AuthorizationPolicy{} },
	{Group: "security.istio.io", Kind: "PeerAuthentication"}:    func() proto.Message { return &securityv1beta1.PeerAuthentication{} },
	{Group: "security.istio.io", Kind: "RequestAuthentication"}: func() proto.Message { return &securityv1beta1.RequestAuthentication{} },
	{Group: "telemetry.istio.io", Kind: "Telemetry"}:            func() proto.Message { return &telemetryv1alpha1.Telemetry{} },
	{Group: "extensions.istio.io", Kind: "WasmPlugin"}:          func() proto.Message { return &extensionsv1alpha1.WasmPlugin{} },
	{Group: "extensions.istio.io", Kind: "TrafficExtension"}:    func() proto.Message { return &extensionsv1alpha1.TrafficExtension{} },
}

// KnownKinds lists the Group/Kinds meshguard can validate.
func KnownKinds() []schema.GroupKind {
	out := make([]schema.GroupKind, 0, len(specTypes))
	for gk := range specTypes {
		out = append(out, gk)
	}
	return out
}

// Problem is one finding: the field path (e.g. "spec.http[1].route[0].weight")
// and the message.
type Problem struct {
	Field   string `json:"field"`
	Message string `json:"message"`
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

	spec proto.Message // decoded spec, for cross-reference checks
}

// Spec returns the decoded istio.io/api message of the object, or nil when
// it could not be decoded (or the object is not an Istio kind).
func (r Result) Spec() proto.Message { return r.spec }

// Valid reports whether the object has no errors.
func (r Result) Valid() bool { return len(r.Errors) == 0 }

// Object names the object as "Kind ns/name" (spec §9.4, issue 4 §2).
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
	// API server accepted them; Istio's webhook tolerates them too, spec
	// §4.3 step 5) and an unknown version of a known kind is validated with
	// another served version's schema, so a CRD upgrade does not make the
	// webhook reject everything (spec §7, #20449). Offline both stay errors.
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

var allowedTopLevel = map[string]bool{"apiVersion": true, "kind": true, "metadata": true, "spec": true, "status": true}

// ValidateObject validates the content of one unstructured object (as in
// unstructured.Unstructured.Object). obj is not modified.
func ValidateObject(ctx context.Context, obj map[string]any, opts Options) Result {
	var res Result
	var f Findings
	apiVersion, _ := obj["apiVersion"].(string)
	kind, _ := obj["kind"].(string)
	res.APIVersion, res.Kind = apiVersion, kind
	if md, ok := obj["metadata"].(map[string]any); ok {
		res.Name, _ = md["name"].(string)
		res.Namespace, _ = md["namespace"].(string)
	}
	if res.Namespace == "" {
		res.Namespace = opts.DefaultNamespace
	}
	if apiVersion == "" || kind == "" {
		if apiVersion == "" {
			f.Required(field.NewPath("apiVersion"), "apiVersion must be set")
		}
		if kind == "" {
			f.Required(field.NewPath("kind"), "kind must be set")
		}
		res.Errors = problems(f.Errors, false)
		return res
	}
	gv, err := schema.ParseGroupVersion(apiVersion)
	if err != nil {
		f.Error(field.NewPath("apiVersion"), apiVersion, err.Error())
		res.Errors = problems(f.Errors, false)
		return res
	}
	if !IsIstioGroup(gv.Group) {
		res.Skipped = true
		return res
	}
	gvk := gv.WithKind(kind)
	newSpec, known := specTypes[gvk.GroupKind()]
	set, err := loadSchemas()
	if err != nil {
		f.Errors = append(f.Errors, field.InternalError(nil, err))
		res.Errors = problems(f.Errors, false)
		return res
	}
	crd := set.byGVK[gvk]
	switch {
	case !known && len(set.versions[gvk.GroupKind()]) == 0:
		// Istio denies unknown kinds in its groups (spec §4.3 step 4); so do we.
		f.Error(field.NewPath("kind"), kind, fmt.Sprintf("unrecognized type %s: not a kind of %s known to meshguard", kind, gv.Group))
	case crd == nil && opts.APIServerAdmitted && len(set.versions[gvk.GroupKind()]) > 0:
		// All versions of a kind share one proto and identical rules (spec §1).
		other := set.versions[gvk.GroupKind()][len(set.versions[gvk.GroupKind()])-1]
		crd = set.byGVK[gvk.GroupKind().WithVersion(other)]
		f.Warn(field.NewPath("apiVersion"), apiVersion, fmt.Sprintf("version %s of %s is newer than meshguard's Istio API; validated with the %s rules", gv.Version, kind, other))
	case crd == nil:
		f.Error(field.NewPath("apiVersion"), apiVersion, fmt.Sprintf("version %s of %s is not served; served versions: %s",
			gv.Version, kind, strings.Join(set.versions[gvk.GroupKind()], ", ")))
	}
	if f.HasErrors() {
		res.Errors = problems(f.Errors, false)
		return res
	}

	// Pruning and dropping unknown top-level keys mutate: work on a copy, but
	// only when there is something to remove (the common case needs none).
	work := obj
	extraTop := false
	for k := range obj {
		if !allowedTopLevel[k] {
			extraTop = true
		}
	}
	// One walk settles both pruning and the OpenAPI schema for the common
	// clean, valid object; otherwise take the two separate steps.
	clean := !extraTop && cleanAndValid(crd.structural, obj)
	needPrune := !clean && crd.hasUnknown(obj)
	if extraTop || needPrune {
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
	meta, metaErrs := decodeMeta(work, res.Namespace)
	f.Errors = append(f.Errors, metaErrs...)
	validateMetadata(gvk.Kind, meta, &f)

	if needPrune {
		for _, p := range crd.pruneUnknown(work) {
			if opts.APIServerAdmitted && strings.HasPrefix(p, "spec.") {
				f.Warnings = append(f.Warnings, ignoredField(pathFromString(p), p))
				continue
			}
			f.Errors = append(f.Errors, unknownField(pathFromString(p), p))
		}
	}
	schemaErrs := crd.validate(ctx, work, clean)
	f.Errors = append(f.Errors, schemaErrs...)
	schemaPaths := make(map[string]bool, len(schemaErrs))
	for _, e := range schemaErrs {
		schemaPaths[e.Field] = true
	}

	// Rules on the raw spec run before decoding: the proto cannot tell an
	// empty list from an absent one (AuthorizationPolicy `from: []`).
	if rv := rawValidatorFor(gvk.Kind); rv != nil {
		if rawSpec, ok := work["spec"].(map[string]any); ok {
			rv(meta, rawSpec, &f)
		}
	}

	msg := newSpec()
	if rawSpec, ok := work["spec"]; ok && rawSpec != nil {
		if err := decodeSpec(rawSpec, msg); err != nil {
			// The schema usually explains a type error better; report the
			// decoder only when it is the sole source.
			if len(schemaErrs) == 0 {
				f.Error(field.NewPath("spec"), field.OmitValueType{}, "cannot decode: "+err.Error())
			}
			msg = nil
		}
	}
	if v := validatorFor(gvk.Kind); v != nil && msg != nil {
		var kf Findings
		v(meta, msg, &kf)
		// The CRD rule and the webhook rule often say the same thing about the
		// same field; keep the CRD's message (it is what kubectl shows without meshguard).
		for _, e := range kf.Errors {
			if !schemaPaths[e.Field] {
				f.Errors = append(f.Errors, e)
			}
		}
		f.Warnings = append(f.Warnings, kf.Warnings...)
	}
	res.spec = msg
	res.Errors = problems(f.Errors, false)
	res.Warnings = problems(f.Warnings, true)
	return res
}

// decodeMeta converts metadata into ObjectMeta and applies the API server's
// own name/namespace checks (so offline validation agrees with it).
func decodeMeta(obj map[string]any, defaultNS string) (metav1.ObjectMeta, field.ErrorList) {
	var meta metav1.ObjectMeta
	var errs field.ErrorList
	p := field.NewPath("metadata")
	if raw, ok := obj["metadata"].(map[string]any); ok {
		if simpleMeta(raw, &meta) {
			// decoded without reflection
		} else if err := runtime.DefaultUnstructuredConverter.FromUnstructured(raw, &meta); err != nil {
			errs = append(errs, field.Invalid(p, field.OmitValueType{}, "cannot decode metadata: "+err.Error()))
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

// ValidateJSON validates one object given as JSON (e.g. AdmissionRequest.Object.Raw).
// The error is non-nil only when data is not a JSON object.
func ValidateJSON(ctx context.Context, data []byte, opts Options) (Result, error) {
	obj, err := decodeObject(data)
	if err != nil {
		return Result{}, err
	}
	return ValidateObject(ctx, obj, opts), nil
}

// decodeObject reads YAML or JSON into unstructured content with int64 numbers
// (as the API server does), so the schema sees the same types.
func decodeObject(data []byte) (map[string]any, error) {
	var v any
	// JSON (the webhook's case) is parsed directly; the YAML route costs ~4x
	// more. A YAML flow mapping such as "{a: b}" fails here and goes the YAML way.
	t := bytes.TrimSpace(data)
	if len(t) == 0 || t[0] != '{' || utiljson.Unmarshal(t, &v) != nil {
		js, err := yaml.YAMLToJSON(data)
		if err != nil {
			return nil, fmt.Errorf("cannot parse YAML/JSON: %w", err)
		}
		v = nil
		if err := utiljson.Unmarshal(js, &v); err != nil {
			return nil, fmt.Errorf("cannot parse YAML/JSON: %w", err)
		}
	}
	obj, ok := v.(map[string]any)
	if !ok {
		if v == nil {
			return nil, nil
		}
		return nil, fmt.Errorf("document is not an object but %T", v)
	}
	return obj, nil
}

// Document is one document of a multi-document YAML stream.
type Document struct {
	Index  int            // 0-based position in the stream
	Object map[string]any // nil for an empty document
	Err    error          // the document could not be parsed
}

// SplitDocuments reads a multi-document YAML (or JSON) stream. A YAML error in
// one document is reported on that document; the others are still returned.
func SplitDocuments(data []byte) ([]Document, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var docs []Document
	for i := 0; ; i++ {
		raw, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return docs, fmt.Errorf("reading document %d: %w", i, err)
		}
		if len(bytes.TrimSpace(stripComments(raw))) == 0 {
			i--
			continue
		}
		obj, err := decodeObject(raw)
		docs = append(docs, Document{Index: i, Object: obj, Err: err})
	}
	return docs, nil
}

// stripComments drops whole-line YAML comments so comment-only documents are skipped.
func stripComments(b []byte) []byte {
	var out bytes.Buffer
	for _, line := range bytes.Split(b, []byte("\n")) {
		if t := bytes.TrimSpace(line); len(t) > 0 && t[0] == '#' {
			continue
		}
		out.Write(line)
		out.WriteByte('\n')
	}
	return out.Bytes()
}
