package regocaps

import (
	"slices"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
)

func builtinNames(c *ast.Capabilities) []string {
	var names []string
	for _, b := range c.Builtins {
		names = append(names, b.Name)
	}
	return names
}

// TestWithoutNetwork: each Network builtin is one of OPA's (a misspelt name
// would leave the real one in), is left out of WithoutNetwork, and a module
// calling it does not compile, the error naming it; every other builtin is
// kept.
func TestWithoutNetwork(t *testing.T) {
	// OPA's builtins that reach another host (v1/topdown: http.go,
	// net.go, and jsonschema.go through gojsonschema's remote $ref loader).
	want := []string{"http.send", "net.lookup_ip_addr", "json.match_schema", "json.verify_schema"}
	if !slices.Equal(Network, want) {
		t.Errorf("Network = %q, want %q", Network, want)
	}
	all, kept := builtinNames(ast.CapabilitiesForThisVersion()), builtinNames(WithoutNetwork())
	for _, name := range want {
		t.Run(name, func(t *testing.T) {
			if !slices.Contains(all, name) {
				t.Fatalf("%s is not an OPA builtin", name)
			}
			if slices.Contains(kept, name) {
				t.Errorf("WithoutNetwork keeps %s", name)
			}
			m, err := ast.ParseModuleWithOpts("user.rego", "package user\n\np if {\n\t_ := "+name+"(1)\n}\n", ast.ParserOptions{RegoVersion: ast.RegoV1})
			if err != nil {
				t.Fatal(err)
			}
			c := ast.NewCompiler().WithCapabilities(WithoutNetwork())
			c.Compile(map[string]*ast.Module{"user.rego": m})
			if !c.Failed() || !strings.Contains(c.Errors.Error(), "undefined function "+name) {
				t.Errorf("compiling a call of %s: %v, want an undefined function error naming it", name, c.Errors)
			}
		})
	}
	for _, name := range all {
		if !slices.Contains(Network, name) && !slices.Contains(kept, name) {
			t.Errorf("WithoutNetwork drops %s, which is not a Network builtin", name)
		}
	}
	if len(kept) != len(all)-len(Network) {
		t.Errorf("WithoutNetwork has %d builtins, want %d (OPA's %d less %d)", len(kept), len(all)-len(Network), len(all), len(Network))
	}
	if an := WithoutNetwork().AllowNet; an == nil || len(an) != 0 {
		t.Errorf("WithoutNetwork().AllowNet = %#v, want empty, not nil (nil allows every host)", an)
	}
}
