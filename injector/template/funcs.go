package template

import (
	"encoding/json"
	"fmt"
	"math"
	"path"
	"slices"
	"strconv"
	"strings"
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
// e.g. indent; toJson is sprig's).
//
// Two deliberate restrictions keep rendering a pure function of its inputs:
// `env` (Istio: istiod's process environment) reads Options.Env, and sprig's
// `expandenv` is not available.
func funcs(o Options) template.FuncMap {
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
	boundAllocations(f)
	return f
}

// boundAllocations wraps the functions whose result grows with a number the
// template passes (a count, a range, a width), so that one call cannot
// allocate more than MaxRenderedBytes elements or bytes: `until 1000000000`
// would take 8 GB before the output bound or the time bound could stop the
// execution, and end the process. Below the bound they are sprig's and
// Istio's functions unchanged.
func boundAllocations(f template.FuncMap) {
	check := func(name string, n float64) error {
		if n > MaxRenderedBytes {
			return fmt.Errorf("%s: result of %.0f elements or bytes exceeds %d", name, n, MaxRenderedBytes)
		}
		return nil
	}
	until, untilStep := f["until"].(func(int) []int), f["untilStep"].(func(int, int, int) []int)
	f["until"] = func(n int) ([]int, error) {
		if err := check("until", math.Abs(float64(n))); err != nil {
			return nil, err
		}
		return until(n), nil
	}
	f["untilStep"] = func(start, stop, step int) ([]int, error) {
		if err := check("untilStep", steps(start, stop, step)); err != nil {
			return nil, err
		}
		return untilStep(start, stop, step), nil
	}
	seq := f["seq"].(func(...int) string)
	f["seq"] = func(params ...int) (string, error) {
		var n float64
		switch len(params) {
		case 1:
			n = math.Abs(float64(params[0]))
		case 2:
			n = math.Abs(float64(params[1]) - float64(params[0]))
		case 3:
			n = steps(params[0], params[2], params[1])
		}
		if err := check("seq", n); err != nil {
			return "", err
		}
		return seq(params...), nil
	}
	repeat := f["repeat"].(func(int, string) string)
	f["repeat"] = func(count int, str string) (string, error) {
		if err := check("repeat", float64(count)*float64(max(len(str), 1))); err != nil {
			return "", err
		}
		return repeat(count, str), nil
	}
	for _, name := range []string{"indent", "nindent"} {
		ind := f[name].(func(int, string) string)
		f[name] = func(spaces int, s string) (string, error) {
			if err := check(name, float64(spaces)*float64(strings.Count(s, "\n")+1)+float64(len(s))); err != nil {
				return "", err
			}
			return ind(spaces, s), nil
		}
	}
	for _, name := range []string{"randAlphaNum", "randAlpha", "randAscii", "randNumeric"} {
		r := f[name].(func(int) string)
		f[name] = func(count int) (string, error) {
			if err := check(name, float64(count)); err != nil {
				return "", err
			}
			return r(count), nil
		}
	}
	randBytes := f["randBytes"].(func(int) (string, error))
	f["randBytes"] = func(count int) (string, error) {
		if err := check("randBytes", float64(count)); err != nil {
			return "", err
		}
		return randBytes(count)
	}
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
