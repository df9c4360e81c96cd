package orgrules

import (
	"context"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzCompile compiles two arbitrary rule modules as the webhook compiles
// the modules of its rule ConfigMaps (Compile) and evaluates what compiles
// on one object: no panic; a compile error names a module (an operator must
// know which ConfigMap key to fix) unless it is the error saying no module
// defines a rule; an evaluation ends within EvalTimeout and its verdict and
// errors stay within MaxMessages messages of MaxMessageBytes.
func FuzzCompile(f *testing.F) {
	f.Add("package meshguard.validation\ndeny contains \"wildcard host\" if \"*\" in input.object.spec.hosts\n",
		"package lib\nx := 1\n")
	f.Add("package meshguard.validation\nimport data.lib\nwarn contains sprintf(\"%v\", [lib.x]) if true\n",
		"package lib\nx := input.object\n")
	f.Add("package meshguard.validation\ndeny contains x if { some x in numbers.range(1, 500) }\n", "package lib\n")
	f.Add("package meshguard.validaton\ndeny contains \"x\" if true\n", "package meshguard.validation\nviolation contains \"x\" if true\n")
	f.Add("package meshguard.validation\ndeny contains m if { m := http.send({\"url\": \"http://x\", \"method\": \"get\"}) }\n", "")
	f.Add("package meshguard.validation\ndeny := 1\n", "package meshguard.validation\nwarn contains 1 if true\n")
	f.Add("package meshguard.validation\ndeny contains \"x\" if { f(1) }\nf(x) if { f(x) }\n", "package p\n")
	in := Input{Kind: "VirtualService", Object: map[string]any{
		"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
		"metadata": map[string]any{"name": "a", "namespace": "default"},
		"spec":     map[string]any{"hosts": []any{"*", "a.b"}, "http": []any{map[string]any{"timeout": "1s"}}},
	}, NamespaceLabels: map[string]string{"env": "prod"}}
	const nameA, nameB = "ConfigMap ns/rules a.rego", "ConfigMap ns/rules b.rego"
	f.Fuzz(func(t *testing.T, a, b string) {
		if len(a)+len(b) > 4096 {
			return
		}
		mods := []Module{{Name: nameA, Source: a}}
		if b != "" {
			mods = append(mods, Module{Name: nameB, Source: b})
		}
		r, err := Compile(context.Background(), mods)
		if err != nil {
			if msg := err.Error(); !strings.Contains(msg, nameA) && !strings.Contains(msg, nameB) &&
				!strings.HasPrefix(msg, "organisation rules: no module defines") {
				t.Fatalf("compile error names no module: %v", err)
			}
			return
		}
		v, err := r.Evaluate(context.Background(), in)
		if err != nil {
			if len(err.Error()) > MaxMessageBytes+64 {
				t.Fatalf("evaluation error of %d bytes", len(err.Error()))
			}
			return
		}
		for _, ms := range [][]string{v.Deny, v.Warn} {
			if len(ms) > MaxMessages {
				t.Fatalf("%d messages", len(ms))
			}
			for _, m := range ms {
				if len(m) > MaxMessageBytes+64 || !utf8.ValidString(m) {
					t.Fatalf("message of %d bytes (valid UTF-8: %v)", len(m), utf8.ValidString(m))
				}
			}
		}
	})
}
