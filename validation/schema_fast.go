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
// (docs/bench/validation.md). Almost all objects are valid, so we first walk
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
	if s == nil {
		return triValid
	}
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
		for name, val := range m {
			if prop, ok := s.Properties[name]; ok {
				r = and(r, fastSchemaCheck(&prop, val, false))
			} else if s.AdditionalProperties != nil {
				if s.AdditionalProperties.Structural == nil {
					if !s.AdditionalProperties.Bool && !root {
						return triUnknown
					}
					continue
				}
				r = and(r, fastSchemaCheck(s.AdditionalProperties.Structural, val, false))
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
			if r = and(r, fastSchemaCheck(s.Items, item, false)); r == triInvalid {
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
