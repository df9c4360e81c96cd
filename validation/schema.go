package validation

//go:generate sh -c "cp \"$(go list -m -f '{{.Dir}}' istio.io/api)/kubernetes/customresourcedefinitions.gen.yaml\" istio-crds.gen.yaml && chmod 0644 istio-crds.gen.yaml"

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"fmt"
	"io"
	structuraldefaulting "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/defaulting"
	"strings"
	"sync"

	apiextensionsinternal "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/cel"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/listtype"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/pruning"
	apiextensionsvalidation "k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	celconfig "k8s.io/apiserver/pkg/apis/cel"
	"sigs.k8s.io/yaml"
)

// istioCRDs is kubernetes/customresourcedefinitions.gen.yaml from the pinned
// istio.io/api module (the OpenAPI and CEL rules Istio ships as
// crd-all.gen.yaml). Regenerate with `go generate ./validation` after bumping
// istio.io/api.
//
//go:embed istio-crds.gen.yaml
var istioCRDs []byte

// IstioCRDs returns the Istio CRD YAML this package validates against (the
// pinned module's, unmodified), for whatever installs those CRDs into an API
// server (the test harness and `meshguard dev`), so both agree.
func IstioCRDs() []byte { return istioCRDs }

// crdVersion is one served version of one Istio CRD, compiled once.
type crdVersion struct {
	gvk        schema.GroupVersionKind
	structural *structuralschema.Structural
	validator  apiextensionsvalidation.SchemaValidator
	cel        *cel.Validator // nil when the version has no x-kubernetes-validations
	// listTypes is false when no node has x-kubernetes-list-type, so the list check can be skipped.
	listTypes bool
	// pruneRoot is the structural schema as pruning sees the resource root.
	pruneRoot *structuralschema.Structural
}

// schemaSet indexes the CRD schemas by group/version/kind and by group/kind.
type schemaSet struct {
	byGVK      map[schema.GroupVersionKind]*lazyVersion
	versions   map[schema.GroupKind][]string
	namespaced map[schema.GroupKind]bool
}

// lazyVersion compiles one served version on first use: compiled schemas
// and CEL programs take memory for as long as the process runs (about 2 MB
// per kind), and a process that validates only some kinds (`meshguard authz
// serve`: AuthorizationPolicy and PeerAuthentication) should not hold the
// rest.
type lazyVersion struct {
	once sync.Once
	gvk  schema.GroupVersionKind
	src  *apiextensionsv1.JSONSchemaProps // dropped once compiled
	cv   *crdVersion
	err  error
}

func (l *lazyVersion) get() (*crdVersion, error) {
	l.once.Do(func() {
		l.cv, l.err = compileVersion(l.gvk, l.src)
		if l.err != nil {
			l.err = fmt.Errorf("compiling the CRD schema of %s: %w", l.gvk, l.err)
		}
		l.src = nil
	})
	return l.cv, l.err
}

var (
	schemasOnce sync.Once
	schemas     *schemaSet
	schemasErr  error
)

// loadSchemas reads the embedded CRDs on first use; each served version is
// compiled (CEL in particular is costly) once per process, on its first use.
func loadSchemas() (*schemaSet, error) {
	schemasOnce.Do(func() { schemas, schemasErr = compileCRDs(istioCRDs) })
	return schemas, schemasErr
}

// Preload compiles every embedded CRD schema and CEL rule now rather than on
// the first object of each kind, so a server's first admission request does
// not pay for it (about a second of CPU). Call it at start-up.
func Preload() error {
	set, err := loadSchemas()
	if err != nil {
		return err
	}
	for _, l := range set.byGVK {
		if _, err := l.get(); err != nil {
			return err
		}
	}
	return nil
}

// compileCRDs parses a multi-document CRD YAML and indexes every served
// version for compiling on first use.
func compileCRDs(data []byte) (*schemaSet, error) {
	set := &schemaSet{
		byGVK:      map[schema.GroupVersionKind]*lazyVersion{},
		versions:   map[schema.GroupKind][]string{},
		namespaced: map[schema.GroupKind]bool{},
	}
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for {
		doc, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading embedded Istio CRDs: %w", err)
		}
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		var crd apiextensionsv1.CustomResourceDefinition
		if err := yaml.Unmarshal(doc, &crd); err != nil {
			return nil, fmt.Errorf("decoding embedded Istio CRD: %w", err)
		}
		if crd.Kind != "CustomResourceDefinition" {
			continue
		}
		applySchemaOverlays(&crd)
		gk := schema.GroupKind{Group: crd.Spec.Group, Kind: crd.Spec.Names.Kind}
		set.namespaced[gk] = crd.Spec.Scope == apiextensionsv1.NamespaceScoped
		for _, v := range crd.Spec.Versions {
			if !v.Served || v.Schema == nil || v.Schema.OpenAPIV3Schema == nil {
				continue
			}
			gvk := gk.WithVersion(v.Name)
			set.byGVK[gvk] = &lazyVersion{gvk: gvk, src: v.Schema.OpenAPIV3Schema}
			set.versions[gk] = append(set.versions[gk], v.Name)
		}
	}
	return set, nil
}

func compileVersion(gvk schema.GroupVersionKind, v1 *apiextensionsv1.JSONSchemaProps) (*crdVersion, error) {
	var internal apiextensionsinternal.JSONSchemaProps
	if err := apiextensionsv1.Convert_v1_JSONSchemaProps_To_apiextensions_JSONSchemaProps(v1, &internal, nil); err != nil {
		return nil, fmt.Errorf("converting schema: %w", err)
	}
	st, err := structuralschema.NewStructural(&internal)
	if err != nil {
		return nil, fmt.Errorf("structural schema: %w", err)
	}
	sv, _, err := apiextensionsvalidation.NewSchemaValidator(&internal)
	if err != nil {
		return nil, fmt.Errorf("schema validator: %w", err)
	}
	root := *st
	root.XEmbeddedResource = true // as pruning.PruneWithOptions treats the resource root
	return &crdVersion{
		gvk:        gvk,
		structural: st,
		validator:  sv,
		cel:        cel.NewValidator(st, true, celconfig.PerCallLimit),
		listTypes:  hasListTypes(st),
		pruneRoot:  &root,
	}, nil
}

// pruneUnknown removes fields the schema does not declare, as the API server
// does, and returns their paths (e.g. "spec.htttp") so they can be reported
// like kubectl's strict field validation (`kubectl apply --validate=true`).
func (cv *crdVersion) pruneUnknown(obj map[string]any) []string {
	return pruning.PruneWithOptions(obj, cv.structural, true, structuralschema.UnknownFieldPathOptions{TrackUnknownFieldPaths: true})
}

// pruneNulls removes explicit nulls of non-nullable fields without a default
// (`match: null`), as the API server does after pruning
// (apiextensions-apiserver customresource_handler.go, unstructuredDefaulter
// via structuraldefaulting.PruneNonNullableNullsWithoutDefaults): the object
// is then validated and stored without them.
func (cv *crdVersion) pruneNulls(obj map[string]any) {
	structuraldefaulting.PruneNonNullableNullsWithoutDefaults(obj, cv.structural)
}

// hasUnknown reports whether pruneUnknown would remove anything, without
// modifying obj (so the common case needs no deep copy). It mirrors
// pruning.PruneWithOptions.
func (cv *crdVersion) hasUnknown(obj map[string]any) bool {
	return unknownIn(obj, cv.pruneRoot)
}

var metaFields = map[string]bool{"apiVersion": true, "kind": true, "metadata": true}

func unknownIn(x any, s *structuralschema.Structural) bool {
	preserve := s != nil && s.XPreserveUnknownFields
	switch x := x.(type) {
	case map[string]any:
		if s == nil {
			return len(x) > 0
		}
		for k, v := range x {
			if s.XEmbeddedResource && metaFields[k] {
				continue
			}
			if prop, ok := s.Properties[k]; ok {
				if unknownIn(v, &prop) {
					return true
				}
			} else if s.AdditionalProperties != nil {
				if unknownIn(v, s.AdditionalProperties.Structural) {
					return true
				}
			} else if !preserve {
				return true
			}
		}
	case []any:
		var items *structuralschema.Structural
		if s != nil {
			items = s.Items
		} else {
			return unknownInAll(x)
		}
		for _, v := range x {
			if unknownIn(v, items) {
				return true
			}
		}
	}
	return false
}

func unknownInAll(l []any) bool {
	for _, v := range l {
		if unknownIn(v, nil) {
			return true
		}
	}
	return false
}

func hasListTypes(s *structuralschema.Structural) bool {
	if s == nil {
		return false
	}
	if s.XListType != nil {
		return true
	}
	for _, p := range s.Properties {
		if hasListTypes(&p) {
			return true
		}
	}
	if s.AdditionalProperties != nil && hasListTypes(s.AdditionalProperties.Structural) {
		return true
	}
	return hasListTypes(s.Items)
}

// validate runs the OpenAPI schema, list-type and CEL rules of the CRD over
// the (pruned) object, in the order the API server uses.
// knownValid says the caller's cleanAndValid walk already proved the OpenAPI
// part valid.
func (cv *crdVersion) validate(ctx context.Context, obj map[string]any, knownValid bool) field.ErrorList {
	var errs field.ErrorList
	// kube-openapi is authoritative (its messages are reported) but slow; skip
	// it when the fast walk proves the object valid (schema_fast.go).
	if !knownValid && fastSchemaCheck(cv.structural, obj, true) != triValid {
		errs = apiextensionsvalidation.ValidateCustomResource(nil, obj, cv.validator)
	}
	if cv.listTypes {
		errs = append(errs, listtype.ValidateListSetsAndMaps(nil, cv.structural, obj)...)
	}
	if cv.cel != nil {
		celErrs, _ := cv.cel.Validate(ctx, nil, cv.structural, obj, nil, celconfig.RuntimeCELCostBudget)
		for _, e := range celErrs {
			errs = append(errs, cv.withSchemaType(e))
		}
	}
	return errs
}

// withSchemaType renders a CEL rule failure the way Kubernetes up to 1.35 (and
// Istio's CRD test corpus) did: `Invalid value: "object": <rule message>`,
// i.e. with the schema type as the value. Newer API servers print the scalar
// value or nothing; for scalars we keep the value at the end of the message so
// nothing is lost. See docs/compatibility.md.
func (cv *crdVersion) withSchemaType(e *field.Error) *field.Error {
	if e.Type != field.ErrorTypeInvalid {
		return e
	}
	typ := ""
	if node := structuralAt(cv.structural, e.Field); node != nil {
		typ = node.Type
	}
	if typ == "" {
		return e
	}
	out := *e
	if _, omitted := e.BadValue.(field.OmitValueType); !omitted && e.BadValue != nil {
		out.Detail = fmt.Sprintf("%s (value: %v)", e.Detail, e.BadValue)
	}
	out.BadValue = typ
	return &out
}

// structuralAt finds the schema node of a rendered field path such as
// "spec.configPatches[0].match" or "spec.portLevelMtls[8080]".
func structuralAt(root *structuralschema.Structural, path string) *structuralschema.Structural {
	node := root
	for i := 0; i < len(path) && node != nil; {
		switch path[i] {
		case '.':
			i++
		case '[':
			end := strings.IndexByte(path[i:], ']')
			if end < 0 {
				return nil
			}
			i += end + 1
			switch {
			case node.Items != nil:
				node = node.Items
			case node.AdditionalProperties != nil && node.AdditionalProperties.Structural != nil:
				node = node.AdditionalProperties.Structural
			default:
				return nil
			}
		default:
			end := strings.IndexAny(path[i:], ".[")
			if end < 0 {
				end = len(path) - i
			}
			name := path[i : i+end]
			i += end
			child, ok := node.Properties[name]
			if !ok {
				return nil
			}
			node = &child
		}
	}
	return node
}
