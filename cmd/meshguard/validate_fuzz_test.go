package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// FuzzValidateCLIInput runs arbitrary stdin through `meshguard validate -f -`:
// no panic, exit code 0, 1 or 2, and exit 0 only with no error lines.
func FuzzValidateCLIInput(f *testing.F) {
	f.Add(cliBadVS)
	f.Add(cliGoodDR + "---\n" + cliService)
	f.Add("kind: [\n")
	f.Add("---\n---\n# nothing\n")
	f.Add(`{"apiVersion":"networking.istio.io/v1","kind":"Nope","metadata":{"name":"x"}}`)
	f.Fuzz(func(t *testing.T, in string) {
		var out, errOut bytes.Buffer
		code := runValidate(context.Background(), validateOptions{files: []string{"-"}, output: "text", namespace: "default"}, strings.NewReader(in), &out, &errOut)
		if code < 0 || code > 2 {
			t.Fatalf("exit code %d", code)
		}
		if code == 0 && (strings.Contains(out.String(), "Invalid value") || errOut.Len() > 0) {
			t.Fatalf("exit 0 with problems: %s %s", out.String(), errOut.String())
		}
	})
}
