package policy

import (
	"github.com/open-policy-agent/opa/v1/ast"
)

// compactCompiled shrinks what a compiled snapshot keeps for its life, which
// is mostly OPA's AST of the generated module (docs/benchmarks.md, "Memory"):
//
//   - OPA's Module.Copy (the compiler's private copy of every module)
//     re-points only the top-level rules at the copy; the else branches still
//     name the parsed module and so keep all of it alive. The generated
//     module is almost all else branches (one chain per view), so that was a
//     second copy of the whole module.
//   - Equal constant terms become one shared *ast.Term: the same strings,
//     sets, operators and input references recur in every generated branch
//     (input.view, input.labels.app, eq, internal.member_2, the method
//     sets…), and the compiler gives each occurrence its own term, value and
//     ref slice.
//
// The compiled AST is read-only from here on (topdown never writes it), so
// sharing is invisible to evaluation; a shared term's Location may name
// another rule of the same module.
func compactCompiled(c *ast.Compiler) {
	in := interner{seen: map[string]*ast.Term{}}
	for _, m := range c.Modules {
		for _, r := range m.Rules {
			for e := r; e != nil; e = e.Else {
				e.Module = m
				if e.Head != nil && e.Head.Value != nil {
					e.Head.Value = in.term(e.Head.Value)
				}
				for _, x := range e.Body {
					in.expr(x)
				}
			}
		}
	}
}

// interner shares constant terms (and input/data references with constant
// paths) by their printed form; Compare guards against two values printing
// alike.
type interner struct {
	seen map[string]*ast.Term
}

func (in *interner) expr(x *ast.Expr) {
	if len(x.With) > 0 {
		return
	}
	switch ts := x.Terms.(type) {
	case *ast.Term:
		x.Terms = in.term(ts)
	case []*ast.Term:
		for i, t := range ts {
			if i == 0 {
				ts[0] = in.operator(t)
				continue
			}
			ts[i] = in.term(t)
		}
	}
}

func (in *interner) operator(t *ast.Term) *ast.Term {
	if r, ok := t.Value.(ast.Ref); ok && r.IsGround() {
		return in.shared(t)
	}
	return t
}

func (in *interner) term(t *ast.Term) *ast.Term {
	switch v := t.Value.(type) {
	case ast.Var:
		return t
	case ast.Ref:
		if len(v) > 0 && (v[0].Equal(ast.InputRootDocument) || v[0].Equal(ast.DefaultRootDocument)) && v.IsGround() {
			return in.shared(t)
		}
		for i := 1; i < len(v); i++ {
			v[i] = in.term(v[i])
		}
		return t
	default:
		if ast.IsConstant(v) {
			return in.shared(t)
		}
		return t
	}
}

func (in *interner) shared(t *ast.Term) *ast.Term {
	k := t.Value.String()
	if s, ok := in.seen[k]; ok && s.Value.Compare(t.Value) == 0 {
		return s
	}
	in.seen[k] = t
	return t
}
