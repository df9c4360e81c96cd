package analysis

import (
	"maps"
	"slices"
	"strings"
	"testing"
)

// TestAnnotationChecks covers the cases of Istio's K8sAnalyzer
// (annotations.go allowAnnotations, istio/istio 0a617ca985f9) its
// misannotated.yaml row does not: the deprecated sidecar.istio.io/inject
// annotation with and without the label, annotations for any resource, the
// "istio.io" suffix rule, ignored namespaces and each value check of
// Istio's pkg/kube/inject/validate.go AnnotationValidation.
func TestAnnotationChecks(t *testing.T) {
	pod := func(ns string, labels map[string]string, annos ...string) Object {
		o := Object{Kind: "Pod", Namespace: ns, Name: "p", Labels: labels, Annotations: map[string]string{}}
		for i := 0; i+1 < len(annos); i += 2 {
			o.Annotations[annos[i]] = annos[i+1]
		}
		return o
	}
	for _, tc := range []struct {
		name string
		obj  Object
		want []string // "CODE text"
	}{
		{"inject annotation without the label", pod("a", nil, "sidecar.istio.io/inject", "true"),
			[]string{`IST0135 Annotation "sidecar.istio.io/inject" has been deprecated in favor of the "sidecar.istio.io/inject" label and may not work in future Istio versions.`}},
		{"inject annotation with the label", pod("a", map[string]string{"sidecar.istio.io/inject": "true"}, "sidecar.istio.io/inject", "true"), nil},
		{"inject annotation on a Deployment", Object{Kind: "Deployment", Namespace: "a", Name: "p",
			Annotations: map[string]string{"sidecar.istio.io/inject": "false"}},
			[]string{ // deprecated first, then misplaced, as Istio reports them
				`IST0135 Annotation "sidecar.istio.io/inject" has been deprecated in favor of the "sidecar.istio.io/inject" label and may not work in future Istio versions.`,
				`IST0107 Misplaced annotation: sidecar.istio.io/inject can only be applied to Pod`,
			}},
		{"any resource", Object{Kind: "Namespace", Name: "n", Annotations: map[string]string{"galley.istio.io/analyze-suppress": "IST0102"}}, nil},
		{"suffix rule", pod("a", nil, "foo.istio.io/x", "1", "istio.io.example/x", "1", "example.com/istio.io", "1"),
			[]string{"IST0108 Unknown annotation: foo.istio.io/x"}},
		{"ignored namespace", pod("kube-system", nil, "foo.istio.io/x", "1"), nil},
		{"interception mode", pod("a", nil, "sidecar.istio.io/interceptionMode", "BAD"),
			[]string{"IST0125 Invalid annotation sidecar.istio.io/interceptionMode: interceptionMode invalid, use REDIRECT,TPROXY,NONE: BAD"}},
		{"valid values", pod("a", nil, "sidecar.istio.io/interceptionMode", "TPROXY",
			"traffic.sidecar.istio.io/includeOutboundIPRanges", "*", "traffic.sidecar.istio.io/excludeOutboundIPRanges", "",
			"traffic.sidecar.istio.io/excludeInboundPorts", " 80, 443 ", "traffic.sidecar.istio.io/includeInboundPorts", "*",
			"status.sidecar.istio.io/port", "0", "prometheus.istio.io/merge-metrics", "False",
			"readiness.status.sidecar.istio.io/failureThreshold", "2147483647", "proxy.istio.io/config", "concurrency: 2"), nil},
		// Istio's check takes a uint32; meshguard's injector denies a
		// readiness integer above 2^31-1 (the probe field is an int32), so
		// analyze warns, in the injector's words.
		{"readiness integer the injector denies", pod("a", nil, "readiness.status.sidecar.istio.io/failureThreshold", "4294967295"),
			[]string{`IST0125 Invalid annotation readiness.status.sidecar.istio.io/failureThreshold: annotation readiness.status.sidecar.istio.io/failureThreshold: "4294967295" is not a non-negative integer`}},
		{"CIDR list", pod("a", nil, "traffic.sidecar.istio.io/includeOutboundIPRanges", "10.0.0.0/8,bad"),
			[]string{`IST0125 Invalid annotation traffic.sidecar.istio.io/includeOutboundIPRanges: includeIPRanges invalid: failed parsing cidr 'bad': netip.ParsePrefix("bad"): no '/'`}},
		{"port list", pod("a", nil, "traffic.sidecar.istio.io/excludeOutboundPorts", "80,70000"),
			[]string{`IST0125 Invalid annotation traffic.sidecar.istio.io/excludeOutboundPorts: excludeOutboundPorts invalid: failed parsing port '70000': failed parsing port '70000': strconv.ParseUint: parsing "70000": value out of range`}},
		{"status port", pod("a", nil, "status.sidecar.istio.io/port", "-1"),
			[]string{`IST0125 Invalid annotation status.sidecar.istio.io/port: excludeInboundPorts invalid: failed parsing port '-1': strconv.ParseUint: parsing "-1": invalid syntax`}},
		{"bool", pod("a", nil, "prometheus.istio.io/merge-metrics", "yes"),
			[]string{`IST0125 Invalid annotation prometheus.istio.io/merge-metrics: strconv.ParseBool: parsing "yes": invalid syntax`}},
		{"readiness out of range", pod("a", nil, "readiness.status.sidecar.istio.io/periodSeconds", "4294967296"),
			[]string{`IST0125 Invalid annotation readiness.status.sidecar.istio.io/periodSeconds: strconv.ParseUint: parsing "4294967296": value out of range`}},
		{"misplaced before its value is checked", Object{Kind: "Service", Namespace: "a", Name: "s",
			Annotations: map[string]string{"sidecar.istio.io/interceptionMode": "BAD"}},
			[]string{"IST0107 Misplaced annotation: sidecar.istio.io/interceptionMode can only be applied to Pod"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, m := range annotationChecks(&Input{Kube: []Object{tc.obj}}) {
				got = append(got, m.Code+" "+m.Message)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
	// A proxy.istio.io/config the injector rejects is IST0125 naming it.
	msgs := annotationChecks(&Input{Kube: []Object{pod("a", nil, "proxy.istio.io/config", "concurrency: [")}})
	if len(msgs) != 1 || msgs[0].Code != InvalidAnnotation || !strings.Contains(msgs[0].Message, "proxy.istio.io/config") {
		t.Errorf("proxy.istio.io/config: got %v", msgs)
	}
}

// TestKubeMetadata: AddKubernetesObject keeps each Kubernetes object's
// annotations and labels in Input.Kube, in its namespace (the default one
// when it has none; none for a Namespace).
func TestKubeMetadata(t *testing.T) {
	var in Input
	for _, obj := range []map[string]any{
		{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": "n", "annotations": map[string]any{"a": "1"}}},
		{"apiVersion": "v1", "kind": "Service", "metadata": map[string]any{"name": "s", "namespace": "x", "labels": map[string]any{"l": "2"}}},
		{"apiVersion": "v1", "kind": "Pod", "metadata": map[string]any{"name": "p"}},
		{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": map[string]any{"name": "d", "annotations": map[string]any{"b": "3"}}},
	} {
		if _, err := in.AddKubernetesObject(obj, "dflt"); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	for _, o := range in.Kube {
		got = append(got, o.Kind+" "+o.Namespace+"/"+o.Name+" "+strings.Join(slices.Sorted(maps.Keys(o.Annotations)), ",")+" "+strings.Join(slices.Sorted(maps.Keys(o.Labels)), ","))
	}
	want := []string{"Namespace /n a ", "Service x/s  l", "Pod dflt/p  ", "Deployment dflt/d b "}
	if !slices.Equal(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
}
