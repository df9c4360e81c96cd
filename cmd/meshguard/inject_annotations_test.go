package main

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

// TestInjectRefusesHostileAnnotations: meshguard inject refuses, as the
// webhook denies, a pod (template) whose annotations exceed the API server's
// 256 KiB total (injector.CheckAnnotationsSize), naming the field where the
// document has it, injected or opted out; and a proxy.istio.io/overrides
// within that total listing more containers than meshguard accepts
// (template.MaxOverrides), naming the annotation. Exit 1, nothing on stdout.
func TestInjectRefusesHostileAnnotations(t *testing.T) {
	dir := t.TempDir()
	blob := strings.Repeat("x", 300000)
	var ov strings.Builder
	ov.WriteString(`{"containers":[`)
	for i := 0; i < 300; i++ {
		if i > 0 {
			ov.WriteByte(',')
		}
		fmt.Fprintf(&ov, `{"name":"x%d"}`, i)
	}
	ov.WriteString(`]}`)
	const containers = "{containers: [{name: a, image: a}]}"
	for _, tc := range []struct {
		name, doc, msg string
	}{
		{"pod", fmt.Sprintf("apiVersion: v1\nkind: Pod\nmetadata: {name: web, annotations: {example.com/blob: %s}}\nspec: %s\n", blob, containers),
			"Pod web: field metadata.annotations: annotations size 300016 is larger than limit 262144"},
		{"deployment", fmt.Sprintf("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  template:\n    metadata: {annotations: {example.com/blob: %s}}\n    spec: %s\n", blob, containers),
			"Deployment web: field spec.template.metadata.annotations: annotations size"},
		{"cronjob", fmt.Sprintf("apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: web}\nspec:\n  schedule: '* * * * *'\n  jobTemplate:\n    spec:\n      template:\n        metadata: {annotations: {example.com/blob: %s}}\n        spec: %s\n", blob, containers),
			"CronJob web: field spec.jobTemplate.spec.template.metadata.annotations: annotations size"},
		{"opted out", fmt.Sprintf("apiVersion: v1\nkind: Pod\nmetadata: {name: web, annotations: {sidecar.istio.io/inject: \"false\", example.com/blob: %s}}\nspec: %s\n", blob, containers),
			"Pod web: field metadata.annotations"},
		{"overrides over the cap", fmt.Sprintf("apiVersion: v1\nkind: Pod\nmetadata: {name: web, annotations: {sidecar.istio.io/status: '{}', proxy.istio.io/overrides: '%s'}}\nspec: %s\n", ov.String(), containers),
			"annotation proxy.istio.io/overrides: lists 300 containers"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := writeFile(t, dir, tc.name+".yaml", tc.doc)
			cmd := newRootCmd()
			cmd.SetArgs([]string{"inject", "-f", in})
			var out, errOut bytes.Buffer
			cmd.SetOut(&out)
			cmd.SetErr(&errOut)
			err := cmd.Execute()
			var exit exitError
			if !asExit(err, &exit) || exit.code != 1 || !strings.Contains(exit.msg, tc.msg) {
				t.Fatalf("err %v, want exit 1 with %q", err, tc.msg)
			}
			if len(exit.msg) > 1024 {
				t.Errorf("message of %d bytes quotes the annotation", len(exit.msg))
			}
			if out.Len() != 0 {
				t.Errorf("stdout has %d bytes, want none", out.Len())
			}
		})
	}
}
