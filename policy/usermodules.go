package policy

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/types"

	"github.com/meshguard/meshguard/internal/regocaps"
)

// UserEvalTimeout bounds one evaluation of a snapshot with user Rego modules
// (docs/authz-user-rego.md). Past it the evaluation fails: an internal error
// (503), or with --fail-open the verdict of the policies without the user
// modules (failopen.go). One second: the generated rules decide in
// microseconds even at 10,000 policies (docs/benchmarks.md), so only a user
// module can take that long, and one that does on every request is already
// an outage; the bound keeps a request that provokes it (a loop over a
// client's value) from holding a worker until the call's own deadline (30 s,
// authz callDeadline). The memory such an evaluation takes is bounded only
// by what it allocates within this time. A variable for the tests only.
var UserEvalTimeout = time.Second

// userOutputs are the rules of package meshguard.user the generated module
// reads (userRules in regogen.go), with the shape each must have.
var userOutputs = []struct {
	name  string
	shape string
	ok    func(types.Type) bool
}{
	{"deny", "a set of strings (deny contains msg if ...)", func(t types.Type) bool {
		s, ok := underlying(t).(*types.Set)
		return ok && mayBeString(s.Of())
	}},
	{"response_headers", `an object of strings (response_headers["name"] := "value")`, func(t types.Type) bool {
		o, ok := underlying(t).(*types.Object)
		if !ok {
			return false
		}
		for _, p := range o.StaticProperties() {
			if _, ok := p.Key.(string); !ok || !mayBeString(p.Value) {
				return false
			}
		}
		d := o.DynamicProperties()
		return d == nil || (mayBeString(d.Key) && mayBeString(d.Value))
	}},
}

// checkUserOutputs type-checks the user modules on their own and refuses a
// user output of the wrong shape, naming the modules that define it. Checked
// with the generated module instead, the error would name the generated
// module's line that reads the output (generatedModuleName), and a set of
// numbers or an object for deny would compile and deny with a reason that is
// not the user's.
func checkUserOutputs(modules map[string]*ast.Module) error {
	c := ast.NewCompiler().WithDefaultRegoVersion(ast.RegoV1).WithCapabilities(regocaps.WithoutNetwork())
	c.Compile(modules)
	if c.Failed() {
		return fmt.Errorf("compile user rego modules: %w", c.Errors)
	}
	for _, o := range userOutputs {
		var files []string
		for n, m := range modules {
			for _, r := range m.Rules {
				if r.Head.Ref()[0].Value.Compare(ast.Var(o.name)) == 0 {
					files = append(files, n)
					break
				}
			}
		}
		if len(files) == 0 {
			continue
		}
		ref := userPackageRef.Append(ast.StringTerm(o.name))
		if t := c.TypeEnv.GetByRef(ref); !o.ok(t) {
			sort.Strings(files)
			return fmt.Errorf("user rego module %s: %s must be %s, is %s", strings.Join(files, ", "), o.name, o.shape, types.Sprint(t))
		}
	}
	return nil
}

func underlying(t types.Type) types.Type {
	if n, ok := t.(*types.NamedType); ok {
		return n.Type
	}
	return t
}

// mayBeString: a value of type t may be a string (t is a string, any, or a
// union with string).
func mayBeString(t types.Type) bool { return t != nil && types.Contains(t, types.S) }
