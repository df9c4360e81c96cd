package policy

import (
	"context"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
)

// TestCompactCompiled: after Compile, every else branch of the compiled
// module names that module (OPA's Module.Copy leaves them on the parsed one,
// which then stays alive), and equal constant terms and input references
// are one term each across all branches of a shard (each shard is compacted
// on its own: it may outlive the snapshot it was compiled for).
func TestCompactCompiled(t *testing.T) {
	s, err := Compile(context.Background(), Mesh{}, GenerateSet(60, 3), 1)
	if err != nil {
		t.Fatal(err)
	}
	branches := 0
	for _, sh := range s.shards {
		if sh == nil {
			continue
		}
		views := map[*ast.Term]bool{}
		eqs := map[*ast.Term]bool{}
		before := branches
		for _, m := range sh.compiler.Modules {
			for _, r := range m.Rules {
				for e := r; e != nil; e = e.Else {
					branches++
					if e.Module != m {
						t.Fatalf("rule %s: an else branch names module %p, not its compiled module %p", r.Head.Name, e.Module, m)
					}
					for _, x := range e.Body {
						ts, ok := x.Terms.([]*ast.Term)
						if !ok || len(ts) != 3 || !x.IsEquality() {
							continue
						}
						eqs[ts[0]] = true
						if ts[1].Value.Compare(ast.MustParseRef("input.view")) == 0 {
							views[ts[1]] = true
						}
					}
				}
			}
		}
		if len(views) != 1 || len(eqs) != 1 {
			t.Fatalf("over %d branches of a shard: %d distinct input.view terms and %d distinct eq operators, want 1 each", branches-before, len(views), len(eqs))
		}
	}
	if branches < 60 {
		t.Fatalf("only %d branches: the set did not generate what the test expects", branches)
	}
}
