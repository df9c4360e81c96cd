package webhook

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	jsoniter "github.com/json-iterator/go"
	jsonpatch "gomodules.xyz/jsonpatch/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"github.com/meshguard/meshguard/injector"
	"github.com/meshguard/meshguard/injector/config"
	"github.com/meshguard/meshguard/test/conformance"
)

// TestEncodePatchMatchesJSONPatch checks encodePatch byte for byte against
// encoding/json through jsonpatch.Operation.MarshalJSON (what
// admission.Response.Complete would send) on the patches of the injector's
// golden pods, their re-injection and pods with maps, quantities and
// characters encoding/json escapes.
func TestEncodePatchMatchesJSONPatch(t *testing.T) {
	pods := map[string]*corev1.Pod{"tiny": testPod(0), "env": testPod(3)}
	ins, _ := filepath.Glob("../injector/testdata/golden/*.in.yaml")
	if len(ins) == 0 {
		t.Fatal("no golden inputs found")
	}
	for _, in := range ins {
		data, err := os.ReadFile(in)
		if err != nil {
			t.Fatal(err)
		}
		pod := &corev1.Pod{}
		if err := yaml.Unmarshal(data, pod); err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		pods[filepath.Base(in)] = pod
	}
	odd := testPod(1)
	odd.Labels["html"] = "<a&b>"
	odd.Annotations = map[string]string{
		injector.AnnotationProxyCPU:         "0.5",
		injector.AnnotationProxyMemoryLimit: "1024Mi",
		"note":                              "\u2028 \"quoted\" \\ \t",
	}
	odd.Spec.Containers[0].Resources.Limits = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2000m"), "example.com/gpu": resource.MustParse("1")}
	odd.Spec.Volumes = []corev1.Volume{{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{SizeLimit: ptrTo(resource.MustParse("1Gi"))}}}}
	pods["odd"] = odd
	// No labels or annotations (whole maps are added) and strings, named
	// strings and int-or-strings with characters encoding/json escapes.
	html := testPod(0)
	html.Labels = nil
	html.GenerateName = "a<b>&c\u2028-"
	html.Spec.Containers[0].Name = "app<&>"
	html.Spec.Containers[0].Image = "example.com/a<b>&c"
	html.Spec.Containers[0].ImagePullPolicy = "<&>"
	html.Spec.Containers[0].ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{
		HTTPGet: &corev1.HTTPGetAction{Path: "/a&b", Port: intstr.FromString("h<p")}}}
	pods["html"] = html
	// An ephemeral volume from sidecar.istio.io/userVolume (in the patch)
	// and one of the pod's own: no creationTimestamp (omitzero).
	eph := testPod(0)
	eph.Annotations = map[string]string{
		injector.AnnotationUserVolume:      `{"scratch":{"ephemeral":{"volumeClaimTemplate":{"metadata":{"labels":{"a":"b"}},"spec":{"accessModes":["ReadWriteOnce"]}}}}}`,
		injector.AnnotationUserVolumeMount: `{"scratch":{"mountPath":"/scratch"}}`,
	}
	eph.Spec.Volumes = []corev1.Volume{{Name: "own", VolumeSource: corev1.VolumeSource{Ephemeral: &corev1.EphemeralVolumeSource{
		VolumeClaimTemplate: &corev1.PersistentVolumeClaimTemplate{Spec: corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}}}}}}}
	pods["ephemeral"] = eph

	// The typed path, and the generic one (templates rendered, the patch a
	// gomodules jsonpatch diff whose numbers are json.Number) on Istio's
	// default install. The golden pods include privileged annotations their
	// values allow.
	typed := config.Default()
	c, v, m := conformance.IstioInstall(t)
	generic, err := config.Inputs{Config: c, Values: v, Mesh: m}.Load()
	if err != nil {
		t.Fatal(err)
	}
	generic.Templates.AlwaysGeneric = true
	for path, cfg := range map[string]*config.Snapshot{"typed": typed, "generic": generic} {
		cfg.Values.Meshguard.AllowPrivilegedOverrides = true
		for name, pod := range pods {
			t.Run(path+"/"+name, func(t *testing.T) {
				testEncodePatch(t, cfg, pod)
			})
		}
	}
	if got, err := encodePatch(nil, nil); got != nil || err != nil {
		t.Fatalf("no ops: %q, %v", got, err)
	}
}

// testEncodePatch compares encodePatch with encoding/json on the patches
// that inject pod and re-inject the result as native sidecars.
func testEncodePatch(t *testing.T, cfg *config.Snapshot, pod *corev1.Pod) {
	res, err := injector.Inject(pod, "app", cfg, injector.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// Re-injection as native sidecars: replace and remove ops.
	again, err := injector.Inject(res.Pod, "app", cfg, injector.Options{NativeSidecars: ptrTo(true)})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Patch) == 0 {
		t.Fatal("no ops: the case tests nothing")
	}
	for _, patch := range [][]jsonpatch.JsonPatchOperation{res.Patch, again.Patch} {
		if len(patch) == 0 {
			continue // e.g. already native, or the gateway (no native form)
		}
		want, err := json.Marshal(patch)
		if err != nil {
			t.Fatal(err)
		}
		got, err := encodePatch(patch, nil)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Fatalf("encodePatch differs from encoding/json:\n got %s\nwant %s", got, want)
		}
		// Into a request's buffer, after a longer patch was written into it:
		// nothing of the earlier one may remain.
		buf := &patchBuffer{b: bytes.Repeat([]byte("x"), 2*len(want))}
		if got, err = encodePatch(patch, buf); err != nil || string(got) != string(want) {
			t.Fatalf("encodePatch into a used buffer: %v\n got %s\nwant %s", err, got, want)
		}
		if &got[0] != &buf.b[0] {
			t.Errorf("the patch was not written into the request's buffer")
		}
	}
}

// TestWriteQuantityMatchesMarshalJSON: the patch encoder's quantities are
// resource.Quantity.MarshalJSON's bytes, in every format and around the
// BinarySI shortcut's bounds (parsed ones may carry their input as the
// cached string MarshalJSON writes; constructed ones are formatted).
func TestWriteQuantityMatchesMarshalJSON(t *testing.T) {
	var qs []resource.Quantity
	for _, in := range []string{"0", "1", "100m", "2000m", "0.5", "1e3", "1k", "1M", "1023", "1024", "1025", "-1024", "-1025",
		"1Ki", "1023Ki", "1025Ki", "128Mi", "1Gi", "1.5Gi", "-2Gi", "1024Mi", "1536Mi", "1024000m", "8Ei", "7Ei",
		"9223372036854775807", "1Pi", "1000Ti", "0.1Ki", "123456789012345678901234567890"} {
		qs = append(qs, resource.MustParse(in))
	}
	for _, v := range []int64{0, 1, 1023, 1024, 1025, -1023, -1024, -1025, 1536, 1 << 20, 3 << 30, 1 << 62, -(1 << 62),
		math.MaxInt64, math.MinInt64, 1000, 1 << 40 * 1000} {
		qs = append(qs, *resource.NewQuantity(v, resource.BinarySI), *resource.NewQuantity(v, resource.DecimalSI),
			*resource.NewMilliQuantity(v, resource.BinarySI), *resource.NewScaledQuantity(v, 3))
	}
	for _, q := range qs {
		want, err := q.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		s := patchJSON.BorrowStream(nil)
		writeQuantity(s, &q)
		got := string(s.Buffer())
		patchJSON.ReturnStream(s)
		if got != string(want) {
			t.Errorf("%#v: wrote %s, MarshalJSON %s", q, got, want)
		}
	}
}

// TestWriteStringMatchesEncodingJSON: the patch encoder's strings are
// encoding/json's bytes, escapes included (HTML characters, control
// characters with and without short forms, U+2028/U+2029, invalid and
// valid multi-byte UTF-8), for fixed cases and random strings.
func TestWriteStringMatchesEncodingJSON(t *testing.T) {
	cases := []string{"", "plain", `"quoted" \ back`, "<a&b>", "\b\f\n\r\t\x00\x01\x1f\x7f", "\u2028\u2029\u2027\u202a",
		"\xff", "a\xc3", "\xe2\x80", "\ufffd", "héllo wörld €", "\U0001F600", "\xed\xa0\x80"}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 5000 {
		b := make([]byte, rng.IntN(40))
		for i := range b {
			b[i] = byte(rng.IntN(256))
			if rng.IntN(8) != 0 { // mostly ASCII, escapes among it
				const alphabet = "abcdefgh0123456789-./:a<>&\"\\\n\x01\x1f\x7f\xe2\x80\xa8"
				b[i] = alphabet[rng.IntN(len(alphabet))]
			}
		}
		cases = append(cases, string(b))
	}
	for _, in := range cases {
		want, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		s := patchJSON.BorrowStream(nil)
		writeString(s, in)
		got := string(s.Buffer())
		patchJSON.ReturnStream(s)
		if got != string(want) {
			t.Errorf("%q: wrote %s, encoding/json %s", in, got, want)
		}
	}
}

// upperString is a string type with its own JSON form.
type upperString string

func (u upperString) MarshalJSON() ([]byte, error) { return json.Marshal(strings.ToUpper(string(u))) }

// TestEncodePatchGenericValues: the generic path's ops (gomodules jsonpatch
// diffs decoded with UseNumber: json.Number, maps, slices, nil) and string
// types with their own JSON form encode as encoding/json encodes them.
func TestEncodePatchGenericValues(t *testing.T) {
	ops := []jsonpatch.JsonPatchOperation{
		{Operation: "add", Path: "/spec/containers/0/ports/0/containerPort", Value: json.Number("8080")},
		{Operation: "add", Path: "/spec/containers/1", Value: map[string]any{"name": "istio-proxy", "ports": []any{
			map[string]any{"containerPort": json.Number("15090"), "protocol": "TCP"}}, "ratio": json.Number("2.5"), "x": nil, "b": true}},
		{Operation: "replace", Path: "/metadata/labels/a~1b", Value: upperString("<v>")},
		{Operation: "add", Path: "/x", Value: []upperString{"a"}},
		{Operation: "add", Path: "/y", Value: jsoniter.Number("7")},
		{Operation: "add", Path: "/z", Value: nil},
		{Operation: "remove", Path: "/metadata/annotations/k"},
	}
	encodesAsJSON(t, ops)
}

// TestEnvVarsMatchEncodingJSON: every form of an EnvVar (value, empty value,
// each valueFrom source, a fieldRef with and without apiVersion, and one
// with a second source beside it) encodes as encoding/json encodes it.
func TestEnvVarsMatchEncodingJSON(t *testing.T) {
	field := &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}
	env := []corev1.EnvVar{
		{Name: "A", Value: "1"},
		{Name: "EMPTY"},
		{Name: "Q", Value: `"<quoted>" & ünïcode`},
		{Name: "POD", ValueFrom: &corev1.EnvVarSource{FieldRef: field}},
		{Name: "NS", Value: "ignored by the API", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.namespace"}}},
		{Name: "CPU", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "limits.cpu", Divisor: resource.MustParse("1m")}}},
		{Name: "CM", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "c"}, Key: "k", Optional: ptrTo(true)}}},
		{Name: "S", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "s"}, Key: "k"}}},
		{Name: "F", ValueFrom: &corev1.EnvVarSource{FileKeyRef: &corev1.FileKeySelector{VolumeName: "v", Path: "p", Key: "k"}}},
		{Name: "TWO", ValueFrom: &corev1.EnvVarSource{FieldRef: field, SecretKeyRef: &corev1.SecretKeySelector{Key: "k"}}},
		{Name: "NONE", ValueFrom: &corev1.EnvVarSource{}},
	}
	ops := []jsonpatch.JsonPatchOperation{
		{Operation: "add", Path: "/spec/containers/0/env", Value: env},
		{Operation: "add", Path: "/spec/containers/1", Value: &corev1.Container{Name: "c", Env: env}},
	}
	encodesAsJSON(t, ops)
}

// TestVolumesMatchEncodingJSON checks volumeEncoder against encoding/json
// for every kind of VolumeSource (each with an empty source; some with
// fields set), for none and for two sources at once (invalid, but
// encodable), and for ephemeral volumes whose volumeClaimTemplate's
// metadata has a zero and a set creationTimestamp (omitzero).
func TestVolumesMatchEncodingJSON(t *testing.T) {
	if volumeSourceFields == nil {
		t.Fatal("corev1.Volume no longer has the shape volumeEncoder writes")
	}
	vols := []corev1.Volume{{Name: "none"}, {Name: "<&>\u2028", VolumeSource: corev1.VolumeSource{
		EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory, SizeLimit: ptrTo(resource.MustParse("1Gi"))},
		Secret:   &corev1.SecretVolumeSource{SecretName: "s", Optional: ptrTo(true), DefaultMode: ptrTo(int32(0o400))},
	}}}
	src := reflect.TypeFor[corev1.VolumeSource]()
	for i := range src.NumField() {
		v := corev1.Volume{Name: src.Field(i).Name}
		reflect.ValueOf(&v.VolumeSource).Elem().Field(i).Set(reflect.New(src.Field(i).Type.Elem()))
		vols = append(vols, v)
	}
	vols = append(vols, corev1.Volume{Name: "projected", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
		Sources: []corev1.VolumeProjection{{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "t", ExpirationSeconds: ptrTo(int64(43200))}}}}}},
		// A one-pointer source (volumeEncoder passes the pointer it holds).
		corev1.Volume{Name: "ephemeral", VolumeSource: corev1.VolumeSource{Ephemeral: &corev1.EphemeralVolumeSource{VolumeClaimTemplate: &corev1.PersistentVolumeClaimTemplate{
			ObjectMeta: metav1.ObjectMeta{CreationTimestamp: metav1.Now(), Labels: map[string]string{"a": "b"}}}}}},
		// What a user writes: no creationTimestamp, which encoding/json
		// omits (omitzero) and jsoniter wrote as null.
		corev1.Volume{Name: "ephemeral-zero", VolumeSource: corev1.VolumeSource{Ephemeral: &corev1.EphemeralVolumeSource{VolumeClaimTemplate: &corev1.PersistentVolumeClaimTemplate{
			ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"a": "b"}},
			Spec:       corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}}}}}},
		corev1.Volume{Name: "ephemeral-empty", VolumeSource: corev1.VolumeSource{Ephemeral: &corev1.EphemeralVolumeSource{VolumeClaimTemplate: &corev1.PersistentVolumeClaimTemplate{}}}})
	ops := []jsonpatch.JsonPatchOperation{
		{Operation: "add", Path: "/spec/volumes", Value: vols},
		{Operation: "add", Path: "/spec/volumes/-", Value: &vols[1]},
		{Operation: "replace", Path: "/spec/volumes/0", Value: &vols[len(vols)-1]},
	}
	encodesAsJSON(t, ops)
}

// TestVolumeMountsMatchEncodingJSON checks volumeMountEncoder against
// encoding/json with each optional field set and unset.
func TestVolumeMountsMatchEncodingJSON(t *testing.T) {
	if !volumeMountShape {
		t.Fatal("corev1.VolumeMount no longer has the shape volumeMountEncoder writes")
	}
	rro, prop := corev1.RecursiveReadOnlyIfPossible, corev1.MountPropagationMode("<&>\u2028")
	mounts := []corev1.VolumeMount{{}, {Name: "a", MountPath: "/a"}, {Name: "b<&>", ReadOnly: true, MountPath: "/b", SubPath: "s\x00"},
		{Name: "c", RecursiveReadOnly: &rro, MountPath: "/c", MountPropagation: &prop, SubPathExpr: "$(POD)"},
		{Name: "d", ReadOnly: true, RecursiveReadOnly: &rro, MountPath: "/d", SubPath: "x", MountPropagation: &prop, SubPathExpr: "y"}}
	ops := []jsonpatch.JsonPatchOperation{
		{Operation: "add", Path: "/spec/containers/0/volumeMounts", Value: mounts},
		{Operation: "add", Path: "/spec/containers/1", Value: &corev1.Container{Name: "c", VolumeMounts: mounts}},
	}
	encodesAsJSON(t, ops)
}

// TestEncodePatchErrorReleasesBuffer: a patch that fails to encode leaves
// no pooled stream writing into the request's buffer, which goes back to
// its own pool after the response.
func TestEncodePatchErrorReleasesBuffer(t *testing.T) {
	buf := &patchBuffer{b: make([]byte, 0, 4096)}
	if _, err := encodePatch([]jsonpatch.JsonPatchOperation{{Operation: "add", Path: "/x", Value: math.NaN()}}, buf); err == nil {
		t.Fatal("NaN encoded without an error")
	}
	s := patchJSON.BorrowStream(nil)
	defer patchJSON.ReturnStream(s)
	if b := s.Buffer(); cap(b) > 0 && &b[:1][0] == &buf.b[:1][0] {
		t.Fatal("a pooled stream still writes into the request's buffer")
	}
}

// encodesAsJSON fails t unless encodePatch writes ops as encoding/json does.
func encodesAsJSON(t *testing.T, ops []jsonpatch.JsonPatchOperation) {
	t.Helper()
	want, err := json.Marshal(ops)
	if err != nil {
		t.Fatal(err)
	}
	got, err := encodePatch(ops, nil)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Fatalf("encodePatch differs from encoding/json:\n got %s\nwant %s", got, want)
	}
}

// TestOmitZeroMatchesEncodingJSON: the patch encoder leaves out a zero
// omitzero field as encoding/json does (jsoniter ignores the option), for
// every way encoding/json tests for zero (an IsZero method on the value, on
// its pointer, on a pointer or interface field, or the zero value), and
// fails rather than write a zero omitzero field without omitempty.
func TestOmitZeroMatchesEncodingJSON(t *testing.T) {
	type plain struct{ A int }
	type fields struct {
		Time    metav1.Time                           `json:"time,omitempty,omitzero"` // IsZero on *Time
		TimePtr *metav1.Time                          `json:"timePtr,omitempty,omitzero"`
		Val     valueZeroer                           `json:"val,omitempty,omitzero"` // IsZero on the value
		ValPtr  *valueZeroer                          `json:"valPtr,omitempty,omitzero"`
		Iface   isZeroer                              `json:"iface,omitempty,omitzero"`
		Plain   plain                                 `json:"plain,omitempty,omitzero"`
		Meta    *metav1.ObjectMeta                    `json:"meta,omitempty"`
		Claim   *corev1.PersistentVolumeClaimTemplate `json:"claim,omitempty"`
		Named   int                                   `json:"omitzero"` // a name, not the option
	}
	now := metav1.NewTime(metav1.Now().Rfc3339Copy().Time)
	var nilTime *metav1.Time
	var nilVal *valueZeroer
	// The zero instant in a zone: (*Time).IsZero says zero, the zero-value
	// test does not, and encoding/json asks IsZero.
	zoned := metav1.NewTime(time.Time{}.In(time.FixedZone("z", 3600)))
	for name, v := range map[string]fields{
		"zero":       {},
		"set":        {Time: now, TimePtr: &now, Val: valueZeroer{N: 1}, ValPtr: &valueZeroer{N: 2}, Iface: valueZeroer{N: 3}, Plain: plain{A: 1}, Meta: &metav1.ObjectMeta{CreationTimestamp: now}, Claim: &corev1.PersistentVolumeClaimTemplate{ObjectMeta: metav1.ObjectMeta{CreationTimestamp: now}}},
		"empty":      {TimePtr: &metav1.Time{}, ValPtr: &valueZeroer{}, Iface: valueZeroer{}, Meta: &metav1.ObjectMeta{Name: "m"}, Claim: &corev1.PersistentVolumeClaimTemplate{}},
		"nilInIface": {Iface: nilTime},
		// A nil pointer in the interface whose IsZero has a value
		// receiver: encoding/json tests the pointer, never calls it.
		"nilValueZeroerInIface": {Iface: nilVal},
		"zeroInstantInZone":     {Time: zoned, TimePtr: &zoned, Iface: &zoned},
	} {
		t.Run(name, func(t *testing.T) {
			encodesAsJSON(t, []jsonpatch.JsonPatchOperation{{Operation: "add", Path: "/x", Value: &v}, {Operation: "add", Path: "/y", Value: []fields{v}}})
		})
	}
	type strict struct {
		T metav1.Time `json:"t,omitzero"`
	}
	if got, err := encodePatch([]jsonpatch.JsonPatchOperation{{Operation: "add", Path: "/x", Value: &strict{T: now}}}, nil); err != nil {
		t.Fatalf("a set omitzero field without omitempty: %v", err)
	} else if want, _ := json.Marshal(strict{T: now}); !strings.Contains(string(got), string(want)) {
		t.Fatalf("got %s, want the value %s", got, want)
	}
	if _, err := encodePatch([]jsonpatch.JsonPatchOperation{{Operation: "add", Path: "/x", Value: &strict{}}}, nil); err == nil || !strings.Contains(err.Error(), "omitzero") {
		t.Fatalf("a zero omitzero field without omitempty must fail, got %v", err)
	}
}

type valueZeroer struct{ N int }

func (v valueZeroer) IsZero() bool { return v.N == 0 }

// TestPodOmitZeroFields lists the omitzero fields of the types a pod (and
// so a patch value) is made of: each must also be omitempty, the form the
// patch encoder can leave out (UpdateStructDescriptor).
func TestPodOmitZeroFields(t *testing.T) {
	seen := map[reflect.Type]bool{}
	var found []string
	var walk func(reflect.Type)
	walk = func(typ reflect.Type) {
		for typ.Kind() == reflect.Pointer || typ.Kind() == reflect.Slice || typ.Kind() == reflect.Map || typ.Kind() == reflect.Array {
			typ = typ.Elem()
		}
		if typ.Kind() != reflect.Struct || seen[typ] {
			return
		}
		seen[typ] = true
		for i := range typ.NumField() {
			f := typ.Field(i)
			_, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
			if o := strings.Split(opts, ","); slices.Contains(o, "omitzero") {
				found = append(found, typ.String()+"."+f.Name)
				if !slices.Contains(o, "omitempty") {
					t.Errorf("%s.%s is omitzero without omitempty: the patch encoder fails on its zero value", typ, f.Name)
				}
			}
			walk(f.Type)
		}
	}
	walk(reflect.TypeFor[corev1.Pod]())
	t.Logf("omitzero fields of a pod's types: %v", found)
	if !slices.Contains(found, "v1.ObjectMeta.CreationTimestamp") {
		t.Errorf("ObjectMeta.CreationTimestamp is no longer omitzero (%v): revisit UpdateStructDescriptor's tests", found)
	}
}
