package conformance

// The injection comparer: the conformance README's normalisation rules
// (../shared/conformance/injection/README.md), written once for every test
// that compares an injected stream with Istio's golden or with another
// rendering.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/yaml"
)

// CompareOptions are the comparer's choices beyond the README's rules.
type CompareOptions struct {
	// KeepImages compares images too (two renderings by meshguard); Istio's
	// goldens name other images, so the README leaves them out.
	KeepImages bool
}

// CompareStreams parses two multi-document YAML streams (v1 Lists
// expanded), normalises every workload as the conformance README says and
// returns every difference as "Kind/name: field: got X, want Y".
func CompareStreams(got, want []byte, o CompareOptions) ([]string, error) {
	g, err := Workloads(got)
	if err != nil {
		return nil, fmt.Errorf("output: %w", err)
	}
	w, err := Workloads(want)
	if err != nil {
		return nil, fmt.Errorf("golden: %w", err)
	}
	return CompareWorkloads(g, w, o), nil
}

// CompareWorkloads compares two sets of Workloads, workload by workload, as
// CompareStreams does.
func CompareWorkloads(got, want map[string]any, o CompareOptions) []string {
	var diffs []string
	for _, k := range UnionKeys(got, want) {
		gv, gok := got[k]
		wv, wok := want[k]
		switch {
		case !gok:
			diffs = append(diffs, k+": missing from the output")
		case !wok:
			diffs = append(diffs, k+": not in the golden")
		default:
			diffValues(k, "", o.normalise("", gv), o.normalise("", wv), &diffs)
		}
	}
	return diffs
}

// Workloads maps "Kind/name" to each object of a multi-document YAML
// stream, the items of a v1 List (or another *List) expanded; a workload
// named twice is an error.
func Workloads(stream []byte) (map[string]any, error) {
	out := map[string]any{}
	for i, doc := range bytes.Split(append([]byte("\n"), stream...), []byte("\n---")) {
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		var obj map[string]any
		if err := yaml.Unmarshal(doc, &obj); err != nil {
			return nil, fmt.Errorf("document %d: %w", i+1, err)
		}
		if obj == nil {
			continue
		}
		if err := addWorkload(out, obj); err != nil {
			return nil, fmt.Errorf("document %d: %w", i+1, err)
		}
	}
	return out, nil
}

func addWorkload(out map[string]any, obj map[string]any) error {
	kind, _ := obj["kind"].(string)
	if strings.HasSuffix(kind, "List") {
		items, _ := obj["items"].([]any)
		for _, it := range items {
			m, ok := it.(map[string]any)
			if !ok {
				return fmt.Errorf("%s item is not an object", kind)
			}
			if err := addWorkload(out, m); err != nil {
				return err
			}
		}
		return nil
	}
	meta, _ := obj["metadata"].(map[string]any)
	name, _ := meta["name"].(string)
	key := kind + "/" + name
	if _, dup := out[key]; dup {
		return fmt.Errorf("workload %s appears twice", key)
	}
	out[key] = obj
	return nil
}

// normalise applies the README's rules to a value found at path (a dotted
// field path): images (unless o.KeepImages), creationTimestamp and status are ignored; scalar
// spellings ("8080" vs 8080) and quantity spellings (1000m vs 1) are equal;
// env values holding JSON are compared parsed; the sidecar.istio.io/status
// annotation is compared as JSON without "version"; nulls and empty lists
// equal absence; an empty object equals absence only for a struct-valued
// field (structValued), elsewhere it is a value (`emptyDir: {}`).
func (o CompareOptions) normalise(path string, v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, val := range x {
			switch k {
			case "image":
				if !o.KeepImages {
					continue
				}
			case "creationTimestamp":
				continue
			case "status":
				if path == "" { // the object's status, not a field named status elsewhere
					continue
				}
			}
			p := joinPath(path, k)
			if s, ok := val.(string); ok {
				switch {
				case k == "sidecar.istio.io/status" && strings.HasSuffix(path, "annotations"):
					val = parsedJSON(s, "version")
				case k == "value" && LooksLikeJSON(s):
					val = parsedJSON(s, "")
				case isQuantityField(path, k):
					if q, err := resource.ParseQuantity(s); err == nil {
						val = q.String()
					}
				}
			} else if f, ok := val.(float64); ok && isQuantityField(path, k) {
				val = resource.NewMilliQuantity(int64(f*1000), resource.DecimalSI).String()
			}
			if val == nil {
				continue // null is absence
			}
			n := o.normalise(p, val)
			if isEmptyValue(n) && (!isEmptyObject(val) || structValued[k]) {
				continue
			}
			out[k] = n
		}
		return out
	case []any:
		out := make([]any, 0, len(x))
		for _, e := range x {
			out = append(out, o.normalise(path+"[]", e))
		}
		return out
	case nil:
		return nil
	default:
		return fmt.Sprint(x) // "8080" and 8080, true and "true" are the same spelling
	}
}

// structValued are the fields whose Go type in the Kubernetes API is a
// struct, not a pointer (Container.Resources, DeploymentSpec.Strategy,
// DaemonSet/StatefulSet updateStrategy, the OpenShift strategy's resources):
// they cannot be absent, `{}` is how an empty one is written, so `{}` and
// absence are one spelling there.
var structValued = map[string]bool{"resources": true, "strategy": true, "updateStrategy": true}

// isEmptyObject: elsewhere `{}` is a value, not absence (`emptyDir: {}` is a
// volume source; a volume without one is not the same object).
func isEmptyObject(v any) bool {
	m, ok := v.(map[string]any)
	return ok && len(m) == 0
}

func isEmptyValue(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case map[string]any:
		return len(x) == 0
	case []any:
		return len(x) == 0
	}
	return false
}

func isQuantityField(path, key string) bool {
	return key == "divisor" || strings.HasSuffix(path, ".limits") || strings.HasSuffix(path, ".requests") ||
		path == "limits" || path == "requests"
}

// LooksLikeJSON: s (blanks aside) starts as a JSON object or list.
func LooksLikeJSON(s string) bool {
	t := strings.TrimSpace(s)
	return strings.HasPrefix(t, "{") || strings.HasPrefix(t, "[")
}

// parsedJSON parses s (dropping field drop of a top-level object); a value
// that is not JSON stays a string.
func parsedJSON(s, drop string) any {
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		return s
	}
	if m, ok := v.(map[string]any); ok && drop != "" {
		delete(m, drop)
	}
	return v
}

func joinPath(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}

// diffValues appends one line per difference. Lists of named objects
// (containers, env, volumes, ports, mounts) are compared by name, and their
// order separately; other lists by position.
func diffValues(workload, path string, got, want any, diffs *[]string) {
	add := func(field string, g, w any) {
		*diffs = append(*diffs, fmt.Sprintf("%s: %s: got %s, want %s", workload, field, show(g), show(w)))
	}
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			add(path, got, want)
			return
		}
		for _, k := range UnionKeys(g, w) {
			diffValues(workload, joinPath(path, k), g[k], w[k], diffs)
		}
	case []any:
		g, ok := got.([]any)
		if !ok {
			add(path, got, want)
			return
		}
		gn, gNamed := names(g)
		wn, wNamed := names(w)
		if gNamed && wNamed {
			if strings.Join(gn, ",") != strings.Join(wn, ",") {
				add(path+" (names in order)", gn, wn)
			}
			gm, wm := byName(g), byName(w)
			for _, n := range wn {
				diffValues(workload, fmt.Sprintf("%s[%s]", path, n), gm[n], wm[n], diffs)
			}
			for _, n := range gn {
				if _, ok := wm[n]; !ok {
					add(fmt.Sprintf("%s[%s]", path, n), gm[n], nil)
				}
			}
			return
		}
		if len(g) != len(w) {
			add(path, got, want)
			return
		}
		for i := range w {
			diffValues(workload, fmt.Sprintf("%s[%d]", path, i), g[i], w[i], diffs)
		}
	default:
		if fmt.Sprint(got) != fmt.Sprint(want) || (got == nil) != (want == nil) {
			add(path, got, want)
		}
	}
}

// names returns the "name" of every element when all are objects with a
// distinct name.
func names(l []any) ([]string, bool) {
	out := make([]string, 0, len(l))
	seen := map[string]bool{}
	for _, e := range l {
		m, ok := e.(map[string]any)
		if !ok {
			return nil, false
		}
		n, ok := m["name"].(string)
		if !ok || seen[n] {
			return nil, false
		}
		seen[n] = true
		out = append(out, n)
	}
	return out, len(out) > 0
}

func byName(l []any) map[string]any {
	out := make(map[string]any, len(l))
	for _, e := range l {
		m := e.(map[string]any)
		out[m["name"].(string)] = m
	}
	return out
}

func show(v any) string {
	if v == nil {
		return "<absent>"
	}
	if s, ok := v.(string); ok {
		return fmt.Sprintf("%q", s)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// UnionKeys is the sorted union of the keys of got and want.
func UnionKeys[V any](got, want map[string]V) []string {
	keys := make([]string, 0, len(got)+len(want))
	for k := range got {
		keys = append(keys, k)
	}
	for k := range want {
		if _, ok := got[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys
}
