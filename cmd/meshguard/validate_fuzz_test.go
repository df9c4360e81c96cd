package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// FuzzValidateCLIInput runs arbitrary stdin through `meshguard validate -f -`
// with a fuzzed --max-input-size: no panic, exit code 0, 1 or 2, exit 0 only
// with no error lines, input over the limit always refused, and every output
// line names its document. Seeds (here and in testdata/fuzz) cover the inputs
// meshguard must survive: Lists, duplicate keys, nulls and oversized input.
func FuzzValidateCLIInput(f *testing.F) {
	f.Add(cliBadVS, uint16(0))
	f.Add(cliGoodDR+"---\n"+cliService, uint16(0))
	f.Add("kind: [\n", uint16(0))
	f.Add("---\n---\n# nothing\n", uint16(0))
	f.Add(`{"apiVersion":"networking.istio.io/v1","kind":"Nope","metadata":{"name":"x"}}`, uint16(0))
	f.Add("apiVersion: v1\nkind: List\nitems:\n- "+strings.ReplaceAll(strings.TrimSpace(cliBadVS), "\n", "\n  ")+"\n", uint16(0))
	f.Add("apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: p}\nspec: {action: ALLOW, action: DENY}\n", uint16(0))
	f.Add("apiVersion: networking.istio.io/v1alpha3\nkind: EnvoyFilter\nmetadata: {name: e}\nspec: {configPatches: [{applyTo: CLUSTER, match: null, patch: {operation: REMOVE}}]}\n", uint16(0))
	f.Add(cliBadVS, uint16(40))
	f.Fuzz(func(t *testing.T, in string, limit uint16) {
		max := int64(limit)
		if max == 0 {
			max = 1 << 20
		}
		var out, errOut bytes.Buffer
		code := runValidate(context.Background(), validateOptions{files: []string{"-"}, output: "text", namespace: "default", maxInputBytes: max}, strings.NewReader(in), &out, &errOut)
		if code < 0 || code > 2 {
			t.Fatalf("exit code %d", code)
		}
		if code == 0 && (strings.Contains(out.String(), "Invalid value") || errOut.Len() > 0) {
			t.Fatalf("exit 0 with problems: %s %s", out.String(), errOut.String())
		}
		if int64(len(in)) > max && (code != 2 || !strings.Contains(errOut.String(), "input too large")) {
			t.Fatalf("%d bytes over the %d-byte limit not refused: exit %d %s", len(in), max, code, errOut.String())
		}
		for _, l := range strings.Split(strings.TrimSuffix(out.String()+errOut.String(), "\n"), "\n") {
			// A document's line names it (-#N); an input refused whole
			// names the input (-: unreadable: ...).
			if l != "" && !strings.HasPrefix(l, "-#") && !strings.HasPrefix(l, "-: unreadable: ") && !strings.HasPrefix(l, "  ") {
				t.Fatalf("output line does not name its document or input: %q", l)
			}
		}
	})
}
