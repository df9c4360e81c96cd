package manifest

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/yaml"
)

// TestDecodeStrict: every refusal names the field by its path in the
// object (at in front), as the API server's strict field validation does.
func TestDecodeStrict(t *testing.T) {
	type inner struct {
		Name   string              `json:"name"`
		Count  int32               `json:"count"`
		Nested []inner             `json:"nested"`
		Tags   map[string][]string `json:"tags"`
		Q      *resource.Quantity  `json:"q"`
	}
	type obj struct {
		Items []inner        `json:"items"`
		Extra map[string]any `json:"extra"`
	}
	for _, tc := range []struct{ name, in, at, want string }{
		{"valid", "items: [{name: a, count: 1}]\n", "", ""},
		{"unknown field", "items: [{name: a, nmae: b}]\n", "", "field items[0].nmae: unknown field"},
		{"unknown field under at", "itemz: []\n", "spec.", "field spec.itemz: unknown field"},
		{"case differs", "Items: []\n", "", "field Items: unknown field"},
		// Paths carry list indices, as the unknown-field paths do.
		{"wrong type", "items: [{count: 1}, {count: many}]\n", "spec.", "field spec.items[1].count: cannot decode string as int32"},
		{"wrong type in a nested list", "items: [{}, {}, {nested: [{}, {count: 1.5}]}]\n", "", "field items[2].nested[1].count: cannot decode number 1.5 as int32"},
		{"a list where an object is", "items: [{nested: [[]]}]\n", "", "field items[0].nested[0]: cannot decode array as an object"},
		{"a map where a list is, in a map", "extra: {a: 1}\nitems: [{tags: {x: {y: 1}}}]\n", "", "field items[0].tags.x: cannot decode object as a list"},
		{"a value its type's decoder refuses", "items: [{q: 1}, {q: abc}]\n", "", "field items[1].q: quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"},
		{"an object where a list is", "items: {a: 1}\n", "", "field items: cannot decode object as a list"},
		{"duplicate key", "items: []\nitems: []\n", "", `line 2: key "items" already set in map`},
		{"not YAML", "items: [\n", "", "yaml: line 1: did not find expected node content"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var o obj
			err := DecodeStrict([]byte(tc.in), &o, tc.at)
			if got := errString(err); got != tc.want {
				t.Fatalf("error %q, want %q", got, tc.want)
			}
		})
	}
	// An integer in an untyped field keeps every digit.
	var o obj
	if err := DecodeStrict([]byte("extra: {num: 9007199254740993}\n"), &o, ""); err != nil || o.Extra["num"] != int64(9007199254740993) {
		t.Errorf("extra.num = %#v (%v), want int64 9007199254740993", o.Extra["num"], err)
	}
}

// TestDecodeStrictConvertsScalarsAsIstio: a number or boolean written where
// the type has a string is read as a string, as istioctl kube-inject reads a
// workload (pkg/kube/inject/inject.go FromRawToObject: sigs.k8s.io/yaml
// Unmarshal, whose YAML-to-JSON conversion follows the target's field
// types). The oracle is that very call: the decoded object must be equal.
func TestDecodeStrictConvertsScalarsAsIstio(t *testing.T) {
	const pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: c\n    image: i\n"
	for _, tc := range []struct{ name, in string }{
		{"env value a number", pod + "    env: [{name: P, value: 8080}]\n"},
		{"env value on", pod + "    env: [{name: P, value: on}]\n"},
		{"nodeSelector a boolean", pod + "  nodeSelector: {disktype: true}\n"},
		{"labels and annotations", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  labels: {version: 1.10, n: 7, big: 18446744073709551615}\n  annotations: {a: no, f: 1.5e10, g: 123456789.0, h: 0.1234567891, i: -0}\nspec: {containers: [{name: c, image: i}]}\n"},
		{"args and command", pod + "    command: [1, true]\n    args: [2.5, off, x]\n"},
		{"a map key that is not a string", "apiVersion: v1\nkind: Pod\nmetadata: {name: p, labels: {1: a, true: b, 2.5: c}}\nspec: {containers: [{name: c, image: i}]}\n"},
		{"a float key past float32's range", "apiVersion: v1\nkind: Pod\nmetadata: {name: p, labels: {1e40: a, -1e40: b}}\nspec: {containers: [{name: c, image: i}]}\n"},
		{"JSON", `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"c","image":"i","env":[{"name":"P","value":8080}]}],"nodeSelector":{"d":true}}}` + "\n"},
		{"a resource quantity stays a number", pod + "    resources: {limits: {cpu: 1, memory: 1.5}}\n"},
		{"a port name number", pod + "    ports: [{name: 8080, containerPort: 8080}]\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var want, got corev1.Pod
			if err := yaml.Unmarshal([]byte(tc.in), &want); err != nil {
				t.Fatalf("sigs.k8s.io/yaml.Unmarshal: %v", err)
			}
			if err := DecodeStrict([]byte(tc.in), &got, ""); err != nil {
				t.Fatalf("DecodeStrict: %v", err)
			}
			if !reflect.DeepEqual(got, want) {
				g, _ := yaml.Marshal(got)
				w, _ := yaml.Marshal(want)
				t.Fatalf("decoded\n%s\nistioctl's decoding\n%s", g, w)
			}
		})
	}
	// sigs.k8s.io/yaml converts a field promoted from an embedded struct
	// (Volume's VolumeSource) with the embedded struct as the target, so
	// nothing under it becomes a string, and istioctl fails to decode it
	// too. The error names the field.
	in := "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: c, image: i}]\n  volumes: [{name: v, configMap: {name: 1}}]\n"
	if err := yaml.Unmarshal([]byte(in), &corev1.Pod{}); err == nil {
		t.Fatal("sigs.k8s.io/yaml.Unmarshal accepts a number as a ConfigMap volume's name")
	}
	want := "field spec.volumes[0].configMap.name: cannot decode number as string"
	if err := DecodeStrict([]byte(in), &corev1.Pod{}, ""); errString(err) != want {
		t.Fatalf("error %q, want %q", errString(err), want)
	}
	// A key above int64's range is a uint64 to go-yaml, a key type
	// sigs.k8s.io/yaml refuses: istioctl fails to decode it, and so does
	// DecodeStrict.
	in = "apiVersion: v1\nkind: Pod\nmetadata: {name: p, labels: {12345678901234567890: a}}\nspec: {containers: [{name: c, image: i}]}\n"
	if err := yaml.Unmarshal([]byte(in), &corev1.Pod{}); err == nil {
		t.Fatal("sigs.k8s.io/yaml.Unmarshal accepts a uint64 map key")
	}
	if err := DecodeStrict([]byte(in), &corev1.Pod{}, ""); err == nil {
		t.Fatal("DecodeStrict accepts a uint64 map key, which istioctl refuses")
	}
}

// rawJSON has its own decoder, and a string field: sigs.k8s.io/yaml hands a
// type with its own decoder the value unconverted.
type rawJSON struct {
	S   string `json:"s"`
	Raw string `json:"-"`
}

func (r *rawJSON) UnmarshalJSON(b []byte) error { r.Raw = string(b); return nil }

func TestDecodeStrictLeavesCustomDecodersTheirValue(t *testing.T) {
	type obj struct {
		R rawJSON `json:"r"`
	}
	const in = "r: {s: 1, t: [true]}\n"
	var want, got obj
	if err := yaml.Unmarshal([]byte(in), &want); err != nil {
		t.Fatal(err)
	}
	if err := DecodeStrict([]byte(in), &got, ""); err != nil || got != want {
		t.Fatalf("decoded %+v (%v), sigs.k8s.io/yaml %+v", got, err, want)
	}
}

// TestDecodeStrictConversionErrors: YAML that has no JSON form is refused
// naming the field, where sigs.k8s.io/yaml fails without a path or (keys
// equal once converted to strings) keeps one value at random.
func TestDecodeStrictConversionErrors(t *testing.T) {
	type obj struct {
		Labels map[string]string `json:"labels"`
		Items  []map[string]any  `json:"items"`
	}
	for _, tc := range []struct{ name, in, want string }{
		{"not a number in JSON", "items: [{}, {x: .nan}]\n", "field items[1].x: cannot convert to JSON: json: unsupported value: NaN"},
		{"NaN as a string", "labels: {x: .nan}\n", ""},
		{"two keys, one string", "labels: {1: a, \"1\": b}\n", `field labels: key "1" appears twice (once not as a string)`},
		{"a null key", "labels: {~: a}\n", "field labels: a map key that is null is not supported"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var o obj
			if got := errString(DecodeStrict([]byte(tc.in), &o, "")); got != tc.want {
				t.Fatalf("error %q, want %q", got, tc.want)
			}
		})
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestSplitRawUnbounded: the same cut as SplitRaw, a document over the
// limit of one object returned whole for the caller to bound
// (CheckObjectSize, SplitRaw's own refusal).
func TestSplitRawUnbounded(t *testing.T) {
	big := "a: " + strings.Repeat("x", MaxDocumentBytes) + "\n"
	in := []byte("b: 1\n---\n" + big + "---\n# only a comment\n---\nc: 2\n")
	got, err := SplitRawUnbounded(in)
	if err != nil || len(got) != 3 {
		t.Fatalf("%d documents, %v", len(got), err)
	}
	bounded, _ := SplitRaw(in)
	for i, d := range got {
		if d.Err != nil || d.Index != bounded[i].Index {
			t.Errorf("document %d: index %d err %v, SplitRaw's index %d", i, d.Index, d.Err, bounded[i].Index)
		}
	}
	if string(got[1].Raw) != big {
		t.Errorf("the large document is not returned whole (%d bytes)", len(got[1].Raw))
	}
	if err := CheckObjectSize("document", len(got[1].Raw)); !errors.Is(err, ErrTooLarge) || err.Error() != bounded[1].Err.Error() {
		t.Errorf("CheckObjectSize: %v, SplitRaw: %v", err, bounded[1].Err)
	}
	if err := CheckObjectSize("object", MaxDocumentBytes); err != nil {
		t.Errorf("an object of exactly the limit: %v", err)
	}
}
