package validation

import (
	"math"
	"regexp"
	"sync"
	"unicode/utf8"

	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
)

// A fast pre-check for the CRD OpenAPI schema. kube-openapi's validator
// allocates a validator per node on every call and dominates validation time
// (docs/benchmarks.md). Almost all objects are valid, so we first walk
// the structural schema ourselves; only when that walk cannot prove the object
// valid do we run kube-openapi, whose messages are the ones reported. The walk
// is three-valued: anything it does not model exactly (unusual formats,
// multipleOf, uniqueItems, floats for integers, ...) yields "unknown", which
// also falls back to kube-openapi. So a bug here can cost speed, but only a
// wrong "valid" could change a verdict; schema_fast_test.go compares verdicts
// on the conformance corpus and the test fixtures.

type tri int8

const (
	triUnknown tri = iota
	triValid
	triInvalid
)

func and(a, b tri) tri {
	switch {
	case a == triInvalid || b == triInvalid:
		return triInvalid
	case a == triUnknown || b == triUnknown:
		return triUnknown
	}
	return triValid
}

var patternCache sync.Map // string -> *regexp.Regexp (nil when it does not compile)

func compiledPattern(p string) *regexp.Regexp {
	if re, ok := patternCache.Load(p); ok {
		return re.(*regexp.Regexp)
	}
	re, err := regexp.Compile(p)
	if err != nil {
		re = nil
	}
	patternCache.Store(p, re)
	return re
}

// fastSchemaCheck reports whether obj certainly satisfies (triValid) or
// violates (triInvalid) the structural schema s, or cannot tell.
func fastSchemaCheck(s *structuralschema.Structural, v any, root bool) tri {
	return fastWalk(fastTree(s), v, root, false)
}

// cleanAndValid reports whether obj certainly has no field pruning would
// remove (crdVersion.hasUnknown is false) and certainly satisfies the schema
// (fastSchemaCheck is triValid): one walk instead of two for the common case.
// false means "cannot tell": run hasUnknown and the schema check separately.
func cleanAndValid(s *structuralschema.Structural, obj map[string]any) bool {
	return fastWalk(fastTree(s), obj, true, true) == triValid
}

// fnode mirrors a structural schema with pointers to children. Walking
// Structural.Properties directly copies each property's Structural (a few
// hundred bytes) and, since the walk takes its address, heap-allocates it:
// that was 40 % of the walk's time.
type fnode struct {
	s     *structuralschema.Structural
	props map[string]*fnode
	addl  *fnode // AdditionalProperties.Structural, nil when absent or schema-less
	items *fnode
}

var fastTrees sync.Map // root *Structural -> *fnode, built on first use

// fastTree returns the pointer tree of a root schema (the compiled CRD
// versions' roots, which live as long as the process).
func fastTree(s *structuralschema.Structural) *fnode {
	if s == nil {
		return nil
	}
	if t, ok := fastTrees.Load(s); ok {
		return t.(*fnode)
	}
	t, _ := fastTrees.LoadOrStore(s, buildFastTree(s))
	return t.(*fnode)
}

func buildFastTree(s *structuralschema.Structural) *fnode {
	n := &fnode{s: s}
	if len(s.Properties) > 0 {
		n.props = make(map[string]*fnode, len(s.Properties))
		for k, p := range s.Properties {
			n.props[k] = buildFastTree(&p)
		}
	}
	if s.AdditionalProperties != nil && s.AdditionalProperties.Structural != nil {
		n.addl = buildFastTree(s.AdditionalProperties.Structural)
	}
	if s.Items != nil {
		n.items = buildFastTree(s.Items)
	}
	return n
}

// fastWalk is fastSchemaCheck; with strict set it also answers triUnknown
// wherever unknownIn (the pruning mirror) could find an undeclared field that
// the schema check alone would not look at: metadata-like keys at the root,
// undeclared root keys, and maps or lists below a node without a schema.
func fastWalk(n *fnode, v any, root, strict bool) tri {
	if n == nil {
		if strict {
			switch v.(type) {
			case map[string]any, []any:
				return triUnknown
			}
		}
		return triValid
	}
	s := n.s
	if v == nil {
		if s.Nullable {
			return triValid
		}
		if s.Type == "" {
			return triUnknown
		}
		return triInvalid
	}
	r := triValid
	switch s.Type {
	case "object":
		m, ok := v.(map[string]any)
		if !ok {
			return triInvalid
		}
		if strict && s.XEmbeddedResource && !root {
			return triUnknown // pruning treats nested resources specially
		}
		for name, val := range m {
			if strict && root && metaFields[name] {
				// Pruning skips these at the resource root; the schema check
				// would look at them only if declared. Keep it simple.
				if _, declared := n.props[name]; declared {
					return triUnknown
				}
				continue
			}
			if prop, ok := n.props[name]; ok {
				r = and(r, fastWalk(prop, val, false, strict))
			} else if s.AdditionalProperties != nil {
				if s.AdditionalProperties.Structural == nil {
					if (!s.AdditionalProperties.Bool && !root) || strict {
						return triUnknown
					}
					continue
				}
				r = and(r, fastWalk(n.addl, val, false, strict))
			} else if strict && root && !s.XPreserveUnknownFields {
				return triUnknown
			} else if !root && !s.XPreserveUnknownFields {
				// Pruning removed undeclared fields; one left means we misread the schema.
				return triUnknown
			}
			if r == triInvalid {
				return r
			}
		}
	case "array":
		l, ok := v.([]any)
		if !ok {
			return triInvalid
		}
		for _, item := range l {
			if r = and(r, fastWalk(n.items, item, false, strict)); r == triInvalid {
				return r
			}
		}
	case "string":
		if _, ok := v.(string); !ok {
			return triInvalid
		}
	case "integer":
		switch n := v.(type) {
		case int64:
			if s.ValueValidation != nil && s.ValueValidation.Format == "int32" && (n > math.MaxInt32 || n < math.MinInt32) {
				return triUnknown
			}
		case float64:
			return triUnknown
		default:
			return triInvalid
		}
	case "number":
		switch v.(type) {
		case int64, float64:
		default:
			return triInvalid
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			return triInvalid
		}
	case "":
		if s.XIntOrString {
			switch v.(type) {
			case int64, string:
			default:
				return triUnknown
			}
		} else if !s.XPreserveUnknownFields {
			return triUnknown
		}
		if s.ValueValidation != nil || len(s.Properties) > 0 || s.Items != nil {
			return triUnknown
		}
		if strict {
			// Pruning may look inside (e.g. list items without a schema).
			switch v.(type) {
			case map[string]any, []any:
				return triUnknown
			}
		}
		return triValid
	default:
		return triUnknown
	}
	if s.ValueValidation != nil {
		r = and(r, valueCheck(s.ValueValidation, v))
	}
	return r
}

// valueCheck applies value validations; as in JSON Schema, a keyword only
// constrains values of the type it is about.
func valueCheck(vv *structuralschema.ValueValidation, v any) tri {
	r := triValid
	if vv.MultipleOf != nil || vv.UniqueItems {
		return triUnknown
	}
	switch x := v.(type) {
	case string:
		switch vv.Format {
		case "", "int32", "double", "int64":
		default:
			return triUnknown
		}
		n := int64(-1)
		if vv.MinLength != nil || vv.MaxLength != nil {
			n = int64(utf8.RuneCountInString(x))
		}
		if (vv.MinLength != nil && n < *vv.MinLength) || (vv.MaxLength != nil && n > *vv.MaxLength) {
			return triInvalid
		}
		if vv.Pattern != "" {
			re := compiledPattern(vv.Pattern)
			if re == nil {
				return triUnknown
			}
			if !re.MatchString(x) {
				return triInvalid
			}
		}
	case int64, float64:
		var f float64
		if i, ok := x.(int64); ok {
			f = float64(i)
		} else {
			f = x.(float64)
		}
		if vv.Minimum != nil && (f < *vv.Minimum || (vv.ExclusiveMinimum && f == *vv.Minimum)) {
			return triInvalid
		}
		if vv.Maximum != nil && (f > *vv.Maximum || (vv.ExclusiveMaximum && f == *vv.Maximum)) {
			return triInvalid
		}
	case []any:
		if (vv.MinItems != nil && int64(len(x)) < *vv.MinItems) || (vv.MaxItems != nil && int64(len(x)) > *vv.MaxItems) {
			return triInvalid
		}
	case map[string]any:
		if (vv.MinProperties != nil && int64(len(x)) < *vv.MinProperties) || (vv.MaxProperties != nil && int64(len(x)) > *vv.MaxProperties) {
			return triInvalid
		}
		for _, req := range vv.Required {
			if _, ok := x[req]; !ok {
				return triInvalid
			}
		}
	}
	if len(vv.Enum) > 0 {
		s, ok := v.(string)
		if !ok {
			return triUnknown
		}
		found := false
		for _, e := range vv.Enum {
			es, ok := e.Object.(string)
			if !ok {
				return triUnknown
			}
			if es == s {
				found = true
				break
			}
		}
		if !found {
			return triInvalid
		}
	}
	for i := range vv.AllOf {
		r = and(r, nestedCheck(&vv.AllOf[i], v))
	}
	if len(vv.AnyOf) > 0 {
		any := triInvalid
		for i := range vv.AnyOf {
			switch nestedCheck(&vv.AnyOf[i], v) {
			case triValid:
				any = triValid
			case triUnknown:
				if any == triInvalid {
					any = triUnknown
				}
			}
			if any == triValid {
				break
			}
		}
		r = and(r, any)
	}
	if len(vv.OneOf) > 0 {
		valid, unknown := 0, false
		for i := range vv.OneOf {
			switch nestedCheck(&vv.OneOf[i], v) {
			case triValid:
				valid++
			case triUnknown:
				unknown = true
			}
		}
		switch {
		case unknown:
			r = and(r, triUnknown)
		case valid == 1:
		default:
			r = triInvalid
		}
	}
	if vv.Not != nil {
		switch nestedCheck(vv.Not, v) {
		case triValid:
			r = triInvalid
		case triUnknown:
			r = and(r, triUnknown)
		}
	}
	return r
}

// nestedCheck evaluates a nested (type-less) validation, as used inside
// allOf/anyOf/oneOf/not.
func nestedCheck(nv *structuralschema.NestedValueValidation, v any) tri {
	r := valueCheck(&nv.ValueValidation, v)
	switch x := v.(type) {
	case map[string]any:
		for name, p := range nv.Properties {
			if val, ok := x[name]; ok {
				r = and(r, nestedCheck(&p, val))
			}
		}
		if nv.AdditionalProperties != nil {
			for name, val := range x {
				if _, declared := nv.Properties[name]; !declared {
					r = and(r, nestedCheck(nv.AdditionalProperties, val))
				}
			}
		}
	case []any:
		if nv.Items != nil {
			for _, item := range x {
				r = and(r, nestedCheck(nv.Items, item))
			}
		}
	}
	return r
}
