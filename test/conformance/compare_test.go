package conformance

import (
	"strings"
	"testing"
)

// TestCompareWorkloads shows the comparer ignores what the README says does
// not matter and catches what does.
func TestCompareWorkloads(t *testing.T) {
	base := `apiVersion: v1
kind: Pod
metadata:
  name: p
  creationTimestamp: null
  annotations:
    sidecar.istio.io/status: '{"version":"abc","containers":["istio-proxy"]}'
spec:
  containers:
  - name: app
    image: a:1
    ports:
    - containerPort: 8080
    resources: {}
  - name: istio-proxy
    image: proxy:1
    env:
    - name: J
      value: '{"a":1,"b":2}'
    resources:
      limits:
        cpu: "1"
  volumes:
  - name: v
    emptyDir: {}
status: {}
`
	tests := []struct {
		name      string
		got       string
		wantDiffs []string // substrings, one per expected difference
	}{
		{"identical", base, nil},
		{"ignored: image, status, version, spellings, key order, empty objects", `apiVersion: v1
kind: Pod
metadata:
  name: p
  annotations:
    sidecar.istio.io/status: '{"containers":["istio-proxy"],"version":"zzz"}'
spec:
  containers:
  - name: app
    image: other
    ports:
    - containerPort: "8080"
  - name: istio-proxy
    env:
    - name: J
      value: '{"b":2, "a":1}'
    resources:
      limits:
        cpu: 1000m
  volumes:
  - name: v
    emptyDir: {}
`, nil},
		{"env value differs", strings.Replace(base, `'{"a":1,"b":2}'`, `'{"a":1,"b":3}'`, 1),
			[]string{`Pod/p: spec.containers[istio-proxy].env[J].value.b: got "3", want "2"`}},
		{"container order differs", strings.Replace(strings.Replace(base, "- name: app", "- name: tmp", 1), "- name: istio-proxy", "- name: app", 1),
			[]string{"names in order"}},
		{"extra env var", strings.Replace(base, "    - name: J\n", "    - name: X\n      value: x\n    - name: J\n", 1),
			[]string{"env (names in order)", `env[X]`}},
		{"status annotation differs", strings.Replace(base, `"containers":["istio-proxy"]`, `"containers":["x"]`, 1),
			[]string{`sidecar.istio.io/status.containers[0]: got "x", want "istio-proxy"`}},
		{"emptyDir {} is not a volume without a source", strings.Replace(base, "    emptyDir: {}\n", "", 1),
			[]string{"spec.volumes[v].emptyDir: got <absent>, want {}"}},
		{"workload missing", strings.Replace(base, "name: p\n", "name: q\n", 1),
			[]string{"Pod/p: missing from the output", "Pod/q: not in the golden"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			diffs, err := CompareStreams([]byte(tt.got), []byte(base), CompareOptions{})
			if err != nil {
				t.Fatal(err)
			}
			all := strings.Join(diffs, "\n")
			if len(tt.wantDiffs) == 0 && len(diffs) > 0 {
				t.Fatalf("want no difference, got:\n%s", all)
			}
			if len(tt.wantDiffs) > 0 && len(diffs) == 0 {
				t.Fatal("comparer found no difference")
			}
			for _, w := range tt.wantDiffs {
				if !strings.Contains(all, w) {
					t.Errorf("differences do not mention %q:\n%s", w, all)
				}
			}
		})
	}
	// KeepImages (two renderings by meshguard): an image is compared.
	otherImage := strings.Replace(base, "image: proxy:1", "image: proxy:2", 1)
	const wantImage = `Pod/p: spec.containers[istio-proxy].image: got "proxy:2", want "proxy:1"`
	if d, err := CompareStreams([]byte(otherImage), []byte(base), CompareOptions{KeepImages: true}); err != nil || strings.Join(d, "\n") != wantImage {
		t.Errorf("KeepImages: differences %q, %v; want only %q", d, err, wantImage)
	}
	if d, err := CompareStreams([]byte(base), []byte(base), CompareOptions{KeepImages: true}); err != nil || len(d) > 0 {
		t.Errorf("KeepImages, same images: differences %q, %v; want none", d, err)
	}
}
