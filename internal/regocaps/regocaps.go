// Package regocaps holds the OPA capabilities meshguard compiles Rego it did
// not write with: organisation rules (orgrules) and ext_authz user modules
// (policy). Both run inside a request (an admission, an authorization check)
// or the audit, so they may not reach outside their input.
package regocaps

import (
	"slices"

	"github.com/open-policy-agent/opa/v1/ast"
)

// Network are the builtins that reach another host: http.send,
// net.lookup_ip_addr, and json.match_schema / json.verify_schema, which fetch
// a schema's remote $ref. A call would make the request wait on (and leak
// its contents to) that host, and two evaluations of one input could differ.
// Gatekeeper disables http.send by default (--disable-opa-builtin, since
// v3.8.0) for the same reason.
var Network = []string{"http.send", "net.lookup_ip_addr", "json.match_schema", "json.verify_schema"}

var withoutNetwork = func() *ast.Capabilities {
	c := *ast.CapabilitiesForThisVersion()
	c.Builtins = slices.DeleteFunc(slices.Clone(c.Builtins), func(b *ast.Builtin) bool {
		return slices.Contains(Network, b.Name)
	})
	// No host either for the type checker's remote schema $refs (nil
	// would allow any): schema annotations are not processed today, so
	// this only keeps a later change from reaching the network.
	c.AllowNet = []string{}
	return &c
}()

// WithoutNetwork is OPA's capabilities less the Network builtins: a module
// calling one is a compile error naming the module and the builtin. The
// value is shared: do not modify it.
func WithoutNetwork() *ast.Capabilities { return withoutNetwork }
