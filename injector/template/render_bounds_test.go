package template

import (
	"runtime"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// TestFunctionResultBounds: no function call of a template, sprig's, Istio's
// or text/template's print/printf/println, returns more than
// MaxRenderedBytes bytes or elements, and one execution's function results
// add up to at most MaxFunctionBytes; past either the call fails naming the
// template and the function, and the calls that can multiply their inputs
// are refused before they allocate. A review's inputs allocated 64 MiB
// (replace) and 348 MiB (doubling) in one render; the others show the same
// growth through other functions.
func TestFunctionResultBounds(t *testing.T) {
	const memLimit = 48 << 20 // the bounds allow 4 MiB per result, 32 MiB per execution
	for _, tc := range []struct{ name, text, want string }{
		{"replace", `{{ $s := repeat 8192 "x" }}{{ $t := replace "x" $s $s }}`, "error calling replace: result of"},
		{"doubling print", `{{ $s := "x" }}{{ range until 26 }}{{ $s = print $s $s }}{{ end }}`, "error calling print: result of"},
		{"doubling printf", `{{ $s := "x" }}{{ range until 26 }}{{ $s = printf "%s%s" $s $s }}{{ end }}`, "error calling printf: result of"},
		{"doubling println", `{{ $s := "x" }}{{ range until 26 }}{{ $s = println $s $s }}{{ end }}`, "error calling println: result of"},
		{"doubling cat", `{{ $s := "x" }}{{ range until 26 }}{{ $s = cat $s $s }}{{ end }}`, "error calling cat: result of"},
		{"doubling concat", `{{ $l := list 1 }}{{ range until 26 }}{{ $l = concat $l $l }}{{ end }}`, "error calling concat: result of"},
		{"printf width", `{{ $t := printf (repeat 100 "%[1]999999d") 1 }}`, "error calling printf: result of"},
		{"join", `{{ $t := join (repeat 100000 "x") (until 100000) }}`, "error calling join: result of"},
		{"wrapWith", `{{ $t := wrapWith 1 (repeat 10000 "y") (repeat 10000 "x") }}`, "error calling wrapWith: result of"},
		{"regexReplaceAllLiteral", `{{ $s := repeat 8192 "x" }}{{ $t := regexReplaceAllLiteral "" $s $s }}`, "error calling regexReplaceAllLiteral: result of"},
		{"regexReplaceAll", `{{ $s := repeat 8192 "x" }}{{ $t := regexReplaceAll "(x+)" $s (repeat 1000 "$1") }}`, "error calling regexReplaceAll: result of"},
		// A dict holding one dict twice, 22 levels deep: 4 Mi leaves behind
		// 22 small results; serialising it is refused before it starts.
		{"shared dict serialised", `{{ $d := dict "a" "x" }}{{ range until 22 }}{{ $d = dict "a" $d "b" $d }}{{ end }}{{ $t := toJson $d }}`, "error calling toJson: result of"},
		{"shared dict printed", `{{ $d := dict "a" "x" }}{{ range until 22 }}{{ $d = dict "a" $d "b" $d }}{{ end }}{{ $t := print $d }}`, "error calling print: result of"},
		// Each result below the bound, together over the execution's budget.
		{"accumulated", `{{ $l := list }}{{ range until 100 }}{{ $l = append $l (repeat 4000000 "x") }}{{ end }}`, "function results of this execution exceed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Parse(map[string]string{"t": tc.text + `metadata: {annotations: {n: "1"}}`}, Options{})
			if err != nil {
				t.Fatal(err)
			}
			pod := &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app"}}}}
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			_, _, _, err = s.Render([]string{"t"}, &Data{}, pod, false)
			runtime.ReadMemStats(&after)
			if err == nil || !strings.Contains(err.Error(), `template "t"`) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want %q naming the template", err, tc.want)
			}
			if got := after.TotalAlloc - before.TotalAlloc; got > memLimit {
				t.Errorf("allocated %d MiB in one render, bound %d MiB", got>>20, memLimit>>20)
			}
			// An execution abandoned by the time bound would still run: await it.
			s.executions.Wait()
		})
	}
}

// TestFunctionResultsBelowTheBound: calls whose results stay within the
// bounds are sprig's, Istio's and text/template's unchanged.
func TestFunctionResultsBelowTheBound(t *testing.T) {
	for _, c := range []struct{ call, want string }{
		{`replace "a" "bb" "xax"`, "xbbx"},
		{`print "a" 1 "b"`, "a1b"},
		{`printf "%05d-%s" 42 "z"`, "00042-z"},
		{`println "a"`, "a\n"},
		{`cat "a" "b"`, "a b"},
		{`join "," (list "a" "b")`, "a,b"},
		{`wrapWith 2 "|" "abcd"`, "ab|cd"},
		{`regexReplaceAll "(a)" "xax" "${1}$1"`, "xaax"},
		{`regexReplaceAllLiteral "a" "xax" "$1"`, "x$1x"},
		{`toJson (dict "a" (list 1 2))`, `{"a":[1,2]}`},
		{`concat (list 1) (list 2) | len`, "2"},
		{`upper "ab"`, "AB"},
		{`until 3 | len`, "3"},
	} {
		s, err := Parse(map[string]string{"t": `metadata: {annotations: {a: {{ quote (print (` + c.call + `)) }}}}`}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		pod := &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app"}}}}
		merged, _, _, err := s.Render([]string{"t"}, &Data{}, pod, false)
		if err != nil || merged.Annotations["a"] != c.want {
			t.Errorf("%s: got %q (%v), want %q", c.call, merged.Annotations["a"], err, c.want)
		}
	}
}

// TestSelectedTemplatesBound: Render refuses more than MaxSelectedTemplates
// templates (after aliases), whoever selected them, before rendering one.
func TestSelectedTemplatesBound(t *testing.T) {
	s, err := Parse(map[string]string{"t": `metadata: {annotations: {n: "1"}}`}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app"}}}}
	names := make([]string, MaxSelectedTemplates+1)
	for i := range names {
		names[i] = "t"
	}
	if _, _, _, err := s.Render(names[1:], &Data{}, pod, false); err != nil {
		t.Fatalf("refused %d templates: %v", MaxSelectedTemplates, err)
	}
	_, _, _, err = s.Render(names, &Data{}, pod, false)
	if want := "17 templates selected, more than 16"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("err = %v, want %q", err, want)
	}
}

// TestTemplateNamesParse: ParseTemplateNames is Istio's split of
// inject.istio.io/templates (pkg/kube/inject/inject.go selectTemplates:
// comma-separated, trimmed) with meshguard's bound on the count.
func TestTemplateNamesParse(t *testing.T) {
	got, err := ParseTemplateNames(" sidecar ,gateway,,sidecar")
	if err != nil || strings.Join(got, "|") != "sidecar|gateway||sidecar" {
		t.Errorf("got %q, %v", got, err)
	}
	if _, err := ParseTemplateNames(strings.Repeat("a,", MaxSelectedTemplates)); err == nil ||
		err.Error() != "17 template names, more than 16" {
		t.Errorf("err = %v", err)
	}
}
