package template

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"path"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"text/template"

	"github.com/Masterminds/sprig/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	meshv1alpha1 "istio.io/api/mesh/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// funcs is the function map injection templates are parsed with: Masterminds
// sprig (text/template flavour) overlaid with the functions of Istio's
// pkg/kube/inject/template.go InjectionFuncmap, exactly as Istio's
// parseDryTemplate combines them (sprig first, Istio's replace same names,
// e.g. indent; toJson is sprig's), every data-producing one bounded by b
// (bound).
//
// Two deliberate restrictions keep rendering a pure function of its inputs:
// `env` (Istio: istiod's process environment) reads Options.Env, and sprig's
// `expandenv` is not available.
func funcs(o Options, b *budget) template.FuncMap {
	f := sprig.TxtFuncMap()
	delete(f, "expandenv")
	protoJSON := o.ProxyConfigJSON
	istio := template.FuncMap{
		"formatDuration":         formatDuration,
		"isset":                  isset,
		"excludeInboundPort":     ExcludeInboundPort,
		"includeInboundPorts":    includeInboundPorts,
		"kubevirtInterfaces":     func(s string) string { return s },
		"excludeInterfaces":      func(s string) string { return s },
		"applicationPorts":       applicationPorts,
		"annotation":             getAnnotation,
		"valueOrDefault":         valueOrDefault,
		"toJSON":                 toJSON,
		"fromJSON":               fromJSON,
		"structToJSON":           structToJSON,
		"protoToJSON":            func(m proto.Message) (string, error) { return protoToJSON(m, protoJSON) },
		"toYaml":                 toYaml,
		"indent":                 indent,
		"directory":              directory,
		"contains":               func(needle, haystack string) bool { return strings.Contains(haystack, needle) },
		"toLower":                strings.ToLower,
		"appendMultusNetwork":    AppendMultusNetwork,
		"env":                    func(key, def string) string { return envOr(o.Env, key, def) },
		"omitNil":                omitNil,
		"strdict":                strdict,
		"toJsonMap":              toJSONMap,
		"mergeMaps":              mergeMaps,
		"omit":                   omitKeys,
		"otelResourceAttributes": otelResourceAttributes,
	}
	for k, v := range istio {
		f[k] = v
	}
	// text/template's builtins, which a FuncMap entry replaces, so that
	// they are bounded as the others are.
	f["print"], f["printf"], f["println"] = fmt.Sprint, fmt.Sprintf, fmt.Sprintln
	for name, fn := range f {
		f[name] = b.bound(name, fn)
	}
	return f
}

// MaxFunctionBytes bounds what the function calls of one template
// execution return together (resultSize): each result below
// MaxRenderedBytes, a loop appending them would still keep gigabytes.
const MaxFunctionBytes = 8 * MaxRenderedBytes

// budget is one template execution's account of what its function calls
// returned, and whether the execution was abandoned (Set.execute).
type budget struct {
	used      atomic.Int64
	abandoned atomic.Bool
}

var (
	errorType    = reflect.TypeFor[error]()
	errAbandoned = errors.New("execution abandoned")
)

// bound wraps fn, a template function, so that a call of it
//   - fails once the execution was abandoned, so that an abandoned
//     execution ends at its next function call, not only at its next write;
//   - whose result can outgrow its arguments by a factor (a count, a width,
//     a replacement per match, a value shared many times in a nested
//     dict) and would exceed MaxRenderedBytes fails before it allocates
//     (estimate);
//   - whose result (a string, list, map or []byte; the value inside an
//     interface) exceeds MaxRenderedBytes, or takes the execution's results
//     past MaxFunctionBytes, fails.
//
// Errors name the function, and text/template the template. Functions that
// return no such value (numbers, booleans) are returned as they are; below
// the bounds the others are sprig's, Istio's and fmt's unchanged.
func (b *budget) bound(name string, fn any) any {
	v := reflect.ValueOf(fn)
	t := v.Type()
	if t.Kind() != reflect.Func || t.NumOut() == 0 || !mayGrow(t.Out(0)) {
		return fn
	}
	in := make([]reflect.Type, t.NumIn())
	for i := range in {
		in[i] = t.In(i)
	}
	wrapped := reflect.FuncOf(in, []reflect.Type{t.Out(0), errorType}, t.IsVariadic())
	estimate := estimates[name]
	zero := reflect.Zero(t.Out(0))
	fail := func(err error) []reflect.Value {
		return []reflect.Value{zero, reflect.ValueOf(&err).Elem()}
	}
	over := func(n float64) error {
		return fmt.Errorf("result of %.0f bytes exceeds %d", n, MaxRenderedBytes)
	}
	return reflect.MakeFunc(wrapped, func(args []reflect.Value) []reflect.Value {
		if b.abandoned.Load() {
			return fail(errAbandoned)
		}
		if estimate != nil {
			if n := estimate(args); n > MaxRenderedBytes {
				return fail(over(n))
			}
		}
		var res []reflect.Value
		if t.IsVariadic() {
			res = v.CallSlice(args)
		} else {
			res = v.Call(args)
		}
		if len(res) == 2 && !res[1].IsNil() {
			return res
		}
		n := resultSize(res[0])
		if n > MaxRenderedBytes {
			return fail(over(float64(n)))
		}
		if b.used.Add(int64(n)) > MaxFunctionBytes {
			return fail(fmt.Errorf("function results of this execution exceed %d bytes", MaxFunctionBytes))
		}
		if len(res) == 1 {
			res = append(res, reflect.Zero(errorType))
		}
		return res
	}).Interface()
}

// mayGrow: a result of type t can hold data that grows with the inputs.
func mayGrow(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.String, reflect.Slice, reflect.Map, reflect.Interface, reflect.Array, reflect.Pointer, reflect.Struct:
		return true
	}
	return false
}

// resultSize is the bytes a result holds at its top level: a string's
// bytes, a list's or map's elements times their size, of the value inside
// an interface or behind a pointer; 0 for anything else (a struct is
// counted by what made it). What the elements point to was counted when it
// was made.
func resultSize(v reflect.Value) int {
	for v.Kind() == reflect.Interface || v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return 0
		}
		v = v.Elem()
	}
	switch v.Kind() {
	case reflect.String:
		return v.Len()
	case reflect.Slice, reflect.Array:
		return v.Len() * int(v.Type().Elem().Size())
	case reflect.Map:
		return v.Len() * int(v.Type().Key().Size()+v.Type().Elem().Size())
	}
	return 0
}

// estimates are, for the functions whose one call can outgrow its
// arguments by a factor, the size of their result (as resultSize counts
// it) computed from the arguments without making it.
var estimates = func() map[string]func([]reflect.Value) float64 {
	abs := func(n int64) float64 { return math.Abs(float64(n)) }
	count := func(a []reflect.Value) float64 { return abs(a[0].Int()) }
	const intSize = 8 // until's and untilStep's []int
	e := map[string]func([]reflect.Value) float64{
		"until": func(a []reflect.Value) float64 { return intSize * count(a) },
		"untilStep": func(a []reflect.Value) float64 {
			return intSize * steps(int(a[0].Int()), int(a[1].Int()), int(a[2].Int()))
		},
		// sprig's concat lists...: a []any of their elements.
		"concat": func(a []reflect.Value) float64 {
			n := 0.0
			for i := 0; i < a[0].Len(); i++ {
				l := a[0].Index(i)
				for l.Kind() == reflect.Interface && !l.IsNil() {
					l = l.Elem()
				}
				if l.Kind() == reflect.Slice || l.Kind() == reflect.Array {
					n += float64(l.Len()) * 16 // an interface
				}
			}
			return n
		},
		"seq": func(a []reflect.Value) float64 {
			p := a[0]
			switch p.Len() {
			case 1:
				return abs(p.Index(0).Int())
			case 2:
				return math.Abs(float64(p.Index(1).Int()) - float64(p.Index(0).Int()))
			case 3:
				return steps(int(p.Index(0).Int()), int(p.Index(2).Int()), int(p.Index(1).Int()))
			}
			return 0
		},
		"repeat": func(a []reflect.Value) float64 {
			return float64(a[0].Int()) * float64(max(a[1].Len(), 1))
		},
		"randBytes": count,
		// sprig's replace old new src.
		"replace": func(a []reflect.Value) float64 {
			old, repl, src := a[0].String(), a[1].String(), a[2].String()
			if len(repl) <= len(old) {
				return float64(len(src))
			}
			return float64(len(src)) + float64(strings.Count(src, old))*float64(len(repl)-len(old))
		},
		// sprig's regexReplaceAll regex s repl: each match becomes repl
		// expanded ($1 is a copy of a group).
		"regexReplaceAll":            regexEstimate(false),
		"mustRegexReplaceAll":        regexEstimate(false),
		"regexReplaceAllLiteral":     regexEstimate(true),
		"mustRegexReplaceAllLiteral": regexEstimate(true),
		// sprig's join sep list: every item as text, sep between them.
		"join": func(a []reflect.Value) float64 {
			items := reflect.Indirect(a[1])
			for items.Kind() == reflect.Interface && !items.IsNil() {
				items = items.Elem()
			}
			if items.Kind() != reflect.Slice && items.Kind() != reflect.Array {
				return deepSize(a[1])
			}
			return deepSize(items) + float64(max(items.Len()-1, 0))*float64(a[0].Len())
		},
		// sprig's wrapWith width sep s: sep after every width runes.
		"wrapWith": func(a []reflect.Value) float64 {
			s := float64(a[2].Len())
			return s + (s/float64(max(a[0].Int(), 1))+1)*float64(a[1].Len())
		},
		// fmt: a width or precision (at most 1e6 each in fmt) per verb, and
		// any argument for each verb ("%[1]s%[1]s").
		"printf": func(a []reflect.Value) float64 {
			format, args := a[0].String(), a[1]
			largest := 0.0
			for i := 0; i < args.Len(); i++ {
				largest = max(largest, deepSize(args.Index(i)))
			}
			return printfEstimate(format, args, largest)
		},
	}
	for _, name := range []string{"indent", "nindent"} {
		e[name] = func(a []reflect.Value) float64 {
			s := a[1].String()
			return abs(a[0].Int())*float64(strings.Count(s, "\n")+1) + float64(len(s))
		}
	}
	for _, name := range []string{"randAlphaNum", "randAlpha", "randAscii", "randNumeric"} {
		e[name] = count
	}
	// Functions writing their arguments out whole: a value shared many times
	// (a dict holding one dict twice, nested) is written out as many times.
	sum := func(a []reflect.Value) float64 {
		n := 0.0
		for _, v := range a {
			n += deepSize(v)
			if n > MaxRenderedBytes {
				break
			}
		}
		return n
	}
	for _, name := range []string{"print", "println", "cat", "quote", "squote", "toString", "toStrings",
		"toJson", "mustToJson", "toPrettyJson", "mustToPrettyJson", "toRawJson", "mustToRawJson", "toYaml",
		"structToJSON", "toJSON", "toJsonMap", "deepCopy", "mustDeepCopy", "sortAlpha", "b64enc", "b32enc"} {
		e[name] = sum
	}
	return e
}()

// regexEstimate is the result size of sprig's regexReplaceAll (literal:
// regexReplaceAllLiteral) from its matches; a regex that does not compile is
// left to the function to report. Matches are found only as far as the
// bound needs (a literal replacement's count is known; an expanded one's in
// doubling batches): finding all of them at once (an empty regex matches
// between every two bytes) allocates per match, up to 75 MiB for 8 KiB
// under the race detector.
func regexEstimate(literal bool) func([]reflect.Value) float64 {
	return func(a []reflect.Value) float64 {
		re, err := regexp.Compile(a[0].String())
		if err != nil {
			return 0
		}
		s, repl := a[1].String(), a[2].String()
		if literal {
			if len(repl) == 0 {
				return float64(len(s)) // matches are only removed
			}
			// Enough matches to pass the bound, if there are that many.
			need := (MaxRenderedBytes-len(s))/len(repl) + 1
			return float64(len(s)) + float64(len(re.FindAllStringIndex(s, max(need, 1))))*float64(len(repl))
		}
		var buf []byte
		for batch := 64; ; batch *= 2 {
			matches := re.FindAllStringSubmatchIndex(s, batch)
			n := float64(len(s))
			for _, m := range matches {
				buf = re.ExpandString(buf[:0], repl, s, m)
				if n += float64(len(buf)); n > MaxRenderedBytes {
					return n
				}
			}
			if len(matches) < batch {
				return n
			}
		}
	}
}

// printfEstimate bounds the length of fmt.Sprintf(format, args...): the
// format's text, and for each verb its width and precision (a number in the
// format, at most 1e6 in fmt, or an argument's with `*`) and the largest
// argument.
func printfEstimate(format string, args reflect.Value, largest float64) float64 {
	n := float64(len(format))
	argInt := func(i int) float64 {
		if i >= args.Len() {
			return 0
		}
		v := args.Index(i)
		for v.Kind() == reflect.Interface && !v.IsNil() {
			v = v.Elem()
		}
		switch v.Kind() {
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			return min(math.Abs(float64(v.Int())), 1e6)
		case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
			return min(float64(v.Uint()), 1e6)
		}
		return 0
	}
	next := 0 // the argument a `*` takes, roughly (explicit indexes are not followed)
	for i := 0; i < len(format); i++ {
		if format[i] != '%' {
			continue
		}
		for i++; i < len(format); i++ {
			c := format[i]
			switch {
			case c == '*':
				n += argInt(next)
				next++
			case c >= '0' && c <= '9':
				j := i
				for j < len(format) && format[j] >= '0' && format[j] <= '9' {
					j++
				}
				w, _ := strconv.ParseFloat(format[i:j], 64)
				n += min(w, 1e6)
				i = j - 1
			case strings.IndexByte("+-# .[]", c) >= 0:
			default:
				// The verb: one argument written.
				n += largest
				next++
				goto verbDone
			}
		}
	verbDone:
		if n > MaxRenderedBytes {
			return n
		}
	}
	return n
}

// deepSize is about the bytes v holds in memory, what writing it out
// (JSON, fmt) makes of it within a small factor: a string's bytes and
// header, 8 per number, a list's or map's header, through interfaces,
// pointers and exported struct fields, a value shared several times counted
// each time (as a writer writes it out). It stops counting past
// MaxRenderedBytes, so that it ends soon on any value.
func deepSize(v reflect.Value) float64 {
	n := 0.0
	var walk func(v reflect.Value, depth int)
	walk = func(v reflect.Value, depth int) {
		if n > MaxRenderedBytes || !v.IsValid() {
			return
		}
		if depth > 10000 { // a cycle: its writer fails or never ends
			n = math.Inf(1)
			return
		}
		switch v.Kind() {
		case reflect.Interface, reflect.Pointer:
			if !v.IsNil() {
				walk(v.Elem(), depth+1)
			}
		case reflect.String:
			n += 16 + float64(v.Len())
		case reflect.Slice, reflect.Array:
			n += 24
			if v.Type().Elem().Kind() == reflect.Uint8 {
				n += float64(v.Len())
				return
			}
			for i := 0; i < v.Len() && n <= MaxRenderedBytes; i++ {
				walk(v.Index(i), depth+1)
			}
		case reflect.Map:
			n += 48
			it := v.MapRange()
			for it.Next() && n <= MaxRenderedBytes {
				walk(it.Key(), depth+1)
				walk(it.Value(), depth+1)
			}
		case reflect.Struct:
			t := v.Type()
			for i := 0; i < v.NumField() && n <= MaxRenderedBytes; i++ {
				if t.Field(i).IsExported() {
					walk(v.Field(i), depth+1)
				}
			}
		default:
			n += 8
		}
	}
	walk(v, 0)
	return n
}

// steps is how many elements sprig's untilStep yields.
func steps(start, stop, step int) float64 {
	if (stop > start && step > 0) || (stop < start && step < 0) {
		return math.Ceil((float64(stop) - float64(start)) / float64(step))
	}
	return 0
}

func envOr(env map[string]string, key, def string) string {
	if v := env[key]; v != "" {
		return v
	}
	return def
}

func formatDuration(in *durationpb.Duration) string { return in.AsDuration().String() }

func isset(m map[string]string, key string) bool {
	_, ok := m[key]
	return ok
}

func directory(p string) string {
	dir, _ := path.Split(p)
	return dir
}

// ExcludeInboundPort adds port to the comma-separated list unless present
// or empty/"0" (Istio's pkg/kube/inject/template.go excludeInboundPort): an
// item equal to the port (compared untrimmed) leaves the list as it is;
// otherwise the items are trimmed, empty ones dropped, the port appended.
// The typed injector uses it too, so both paths spell the list alike.
func ExcludeInboundPort(port any, excluded string) string {
	portStr := strings.TrimSpace(fmt.Sprint(port))
	if portStr == "" || portStr == "0" {
		return excluded
	}
	var out []string
	for _, p := range strings.Split(excluded, ",") {
		if p == portStr {
			return excluded
		}
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(append(out, portStr), ",")
}

func valueOrDefault(value, def any) any {
	if value == "" || value == nil {
		return def
	}
	return value
}

func toJSON(m map[string]string) string {
	if m == nil {
		return "{}"
	}
	b, err := json.Marshal(m)
	if err != nil {
		return "{}"
	}
	return string(b)
}

func fromJSON(j string) any {
	var m any
	if err := json.Unmarshal([]byte(j), &m); err != nil {
		return "{}" // Istio's fallback
	}
	return m
}

// indent indents every line but the first (Istio's, not sprig's, which
// also indents the first). Istio pads with fmt's "% Ns", whose width is
// |N| also for a negative N.
func indent(spaces int, source string) string {
	lines := strings.Split(source, "\n")
	pad := strings.Repeat(" ", max(spaces, -spaces))
	for i := 1; i < len(lines); i++ {
		lines[i] = pad + lines[i]
	}
	return strings.Join(lines, "\n")
}

func toYaml(v any) string {
	b, err := yaml.Marshal(v)
	if err != nil {
		return ""
	}
	return string(b)
}

func getAnnotation(meta metav1.ObjectMeta, name string, def any) string {
	if v, ok := meta.Annotations[name]; ok {
		return v
	}
	return fmt.Sprint(def)
}

// AppendMultusNetwork adds network to a Multus networks annotation in its
// flat-list or JSON form (Istio template.go appendMultusNetwork): a value
// with a "]" is JSON, unparsable JSON is left as it is, and a network
// "namespace/name" is the element {"name": name, "namespace": namespace}
// (present when an element has that name and namespace, none counting as "");
// a flat list gets ", network" unless an item is already that network. The
// typed injector uses it too.
func AppendMultusNetwork(existing, network string) string {
	if existing == "" {
		return network
	}
	if i := strings.LastIndex(existing, "]"); i != -1 {
		var nets []map[string]any
		if err := json.Unmarshal([]byte(existing), &nets); err != nil {
			return existing
		}
		// k8s.io/utils/strings SplitQualifiedName, as Istio splits it.
		ns, name := "", network
		if parts := strings.Split(network, "/"); len(parts) >= 2 {
			ns, name = parts[0], parts[1]
		}
		for _, n := range nets {
			nns := n["namespace"]
			if nns == nil {
				nns = ""
			}
			if n["name"] == name && nns == ns {
				return existing
			}
		}
		if ns == "" {
			return existing[:i] + fmt.Sprintf(`, {"name": "%s"}`, name) + existing[i:]
		}
		return existing[:i] + fmt.Sprintf(`, {"name": "%s", "namespace": "%s"}`, name, ns) + existing[i:]
	}
	for _, n := range strings.Split(existing, ",") {
		if strings.TrimSpace(n) == network {
			return existing
		}
	}
	return existing + ", " + network
}

func applicationPorts(containers []corev1.Container) string {
	return containerPorts(containers, func(c corev1.Container) bool { return c.Name != ProxyContainerName })
}

func includeInboundPorts(containers []corev1.Container) string {
	return containerPorts(containers, func(corev1.Container) bool { return true })
}

// containerPorts lists the TCP ports of the selected containers (UDP and
// SCTP are not intercepted).
func containerPorts(containers []corev1.Container, include func(corev1.Container) bool) string {
	var parts []string
	for _, c := range containers {
		if !include(c) {
			continue
		}
		for _, p := range c.Ports {
			if p.Protocol == corev1.ProtocolUDP || p.Protocol == corev1.ProtocolSCTP {
				continue
			}
			parts = append(parts, strconv.Itoa(int(p.ContainerPort)))
		}
	}
	return strings.Join(parts, ",")
}

func structToJSON(v any) string {
	if v == nil {
		return "{}"
	}
	b, err := json.Marshal(v)
	if err != nil {
		return "{}"
	}
	return string(b)
}

// protoToJSON renders a ProxyConfig the way PROXY_CONFIG is written
// everywhere in meshguard (pc, the caller's renderer), any other message as
// compact protojson.
func protoToJSON(m proto.Message, pc func(*meshv1alpha1.ProxyConfig) (string, error)) (string, error) {
	if p, ok := m.(*meshv1alpha1.ProxyConfig); ok && pc != nil {
		if p == nil {
			return "{}", nil
		}
		return pc(p)
	}
	if m == nil {
		return "{}", nil
	}
	b, err := protojson.Marshal(m)
	if err != nil {
		return "", fmt.Errorf("protoToJSON: %w", err)
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return "", fmt.Errorf("protoToJSON: %w", err)
	}
	out, _ := json.Marshal(v) // compact and stable
	return string(out), nil
}

// omitNil drops null entries from maps and lists, recursively (Istio's
// omitNil for the resources values, where `cpu: null` removes a default). As
// in Istio, a map or list becomes nil only when dropping left it empty; one
// without nulls is returned as it is, so `{}` stays `{}`.
func omitNil(v any) any {
	out, _ := omitNilChanged(v)
	return out
}

// omitNilChanged is omitNil and whether it dropped something.
func omitNilChanged(v any) (any, bool) {
	if v == nil {
		return nil, true
	}
	changed := false
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			e, c := omitNilChanged(e)
			changed = changed || c
			if e != nil {
				out[k] = e
			}
		}
		if !changed {
			return v, false
		}
		if len(out) == 0 {
			return nil, true
		}
		return out, true
	case []any:
		out := make([]any, 0, len(t))
		for _, e := range t {
			e, c := omitNilChanged(e)
			changed = changed || c
			if e != nil {
				out = append(out, e)
			}
		}
		if !changed {
			return v, false
		}
		if len(out) == 0 {
			return nil, true
		}
		return out, true
	}
	return v, false
}

// strdict builds a map[string]string from key/value pairs; a trailing key
// gets "".
func strdict(kv ...string) map[string]string {
	m := make(map[string]string, len(kv)/2)
	for i := 0; i < len(kv); i += 2 {
		if i+1 < len(kv) {
			m[kv[i]] = kv[i+1]
		} else {
			m[kv[i]] = ""
		}
	}
	return m
}

// toJSONMap is mergeMaps as JSON (`null` for no maps, as Istio's).
func toJSONMap(ms ...map[string]string) string {
	b, err := json.Marshal(mergeMaps(ms...))
	if err != nil {
		return ""
	}
	return string(b)
}

// mergeMaps merges string maps, later ones winning; nil for none (Istio's
// mergeMaps).
func mergeMaps(ms ...map[string]string) map[string]string {
	if len(ms) == 0 {
		return nil
	}
	m := make(map[string]string, len(ms[0]))
	for _, mm := range ms {
		for k, v := range mm {
			m[k] = v
		}
	}
	return m
}

// omitKeys is Istio's omit, for string maps (sprig's takes dicts).
func omitKeys(m map[string]string, keys ...string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		if !slices.Contains(keys, k) {
			out[k] = v
		}
	}
	return out
}

// otelResourceAttributes is Istio's OTEL_RESOURCE_ATTRIBUTES for the proxy
// (pkg/kube/inject/template.go otelResourceAttributes): "" unless an
// OpenTelemetry provider of the mesh sets serviceAttributeEnrichment
// OTEL_SEMANTIC_CONVENTIONS; then service.namespace, service.version and
// service.instance.id from the resource.opentelemetry.io annotations, else
// the namespace, the app.kubernetes.io/version label or the single
// container's image tag/digest, and namespace.$(POD_NAME).first container.
func otelResourceAttributes(mesh *meshv1alpha1.MeshConfig, annotations, labels map[string]string, namespace string, containers []corev1.Container) string {
	if !slices.ContainsFunc(mesh.GetExtensionProviders(), func(p *meshv1alpha1.MeshConfig_ExtensionProvider) bool {
		return p.GetOpentelemetry().GetServiceAttributeEnrichment() == meshv1alpha1.MeshConfig_ExtensionProvider_OTEL_SEMANTIC_CONVENTIONS
	}) {
		return ""
	}
	var attrs []string
	switch {
	case annotations["resource.opentelemetry.io/service.namespace"] != "":
		attrs = append(attrs, "service.namespace="+annotations["resource.opentelemetry.io/service.namespace"])
	case namespace != "":
		attrs = append(attrs, "service.namespace="+namespace)
	}
	switch {
	case annotations["resource.opentelemetry.io/service.version"] != "":
		attrs = append(attrs, "service.version="+annotations["resource.opentelemetry.io/service.version"])
	case labels["app.kubernetes.io/version"] != "":
		attrs = append(attrs, "service.version="+labels["app.kubernetes.io/version"])
	case len(containers) == 1:
		tag, digest := imageTagDigest(containers[0].Image)
		switch {
		case tag != "" && digest != "":
			attrs = append(attrs, "service.version="+tag+"@"+digest)
		case digest != "":
			attrs = append(attrs, "service.version="+digest)
		case tag != "":
			attrs = append(attrs, "service.version="+tag)
		}
	}
	switch {
	case annotations["resource.opentelemetry.io/service.instance.id"] != "":
		attrs = append(attrs, "service.instance.id="+annotations["resource.opentelemetry.io/service.instance.id"])
	case len(containers) > 0:
		attrs = append(attrs, "service.instance.id="+namespace+".$(POD_NAME)."+containers[0].Name)
	}
	return strings.Join(attrs, ",")
}

// imageTagDigest splits [registry[:port]/]name[:tag][@digest] (Istio's
// parseImageTagDigest): the digest after the first "@", the tag after the
// last ":" that follows the last "/".
func imageTagDigest(image string) (tag, digest string) {
	if i := strings.Index(image, "@"); i >= 0 {
		image, digest = image[:i], image[i+1:]
	}
	if c := strings.LastIndex(image, ":"); c > strings.LastIndex(image, "/") {
		tag = image[c+1:]
	}
	return tag, digest
}
