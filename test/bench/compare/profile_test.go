package main

import (
	"strings"
	"testing"
)

// TestClassify: each sample of `perf script -F ip,sym` goes to the first
// category (in cpuCategories' order) any of its frames matches, whatever
// the frame's depth; a GC assist inside the Check is GC, the Check's own
// frames outside OPA are meshguard's, an unknown stack is "other".
func TestClassify(t *testing.T) {
	out := `
	  1 github.com/open-policy-agent/opa/v1/topdown.(*eval).evalStep
	  2 github.com/open-policy-agent/opa/v1/topdown.(*Query).Iter
	  3 github.com/meshguard/meshguard/policy.(*Snapshot).eval
	  4 github.com/meshguard/meshguard/authz.(*Server).decide.func1

	  1 runtime.gcAssistAlloc
	  2 runtime.mallocgc
	  3 github.com/meshguard/meshguard/policy.(*Request).value

	  1 github.com/meshguard/meshguard/policy.(*Request).value
	  2 github.com/meshguard/meshguard/policy.(*Snapshot).Check

	  1 finish_task_switch.isra.0
	  2 google.golang.org/grpc/internal/transport.(*loopyWriter).run

	  1 [unknown]
`
	p := cpuProfile{byCat: map[string]int{}, cpuPerReq: 100}
	if err := classify(strings.NewReader(out), &p); err != nil {
		t.Fatal(err)
	}
	want := map[string]int{
		"OPA evaluation: topdown.(*Query).Iter":                       1,
		"GC: background marking, sweeping, assists":                   1,
		"meshguard Check around it: decode, input, result (policy.*)": 1,
		"gRPC/HTTP2 transport, with its syscalls":                     1,
		otherCategory: 1,
	}
	if p.samples != 5 {
		t.Errorf("samples = %d, want 5", p.samples)
	}
	for cat, n := range want {
		if p.byCat[cat] != n {
			t.Errorf("%s: %d samples, want %d (all: %v)", cat, p.byCat[cat], n, p.byCat)
		}
	}
	if got := p.us("OPA evaluation: topdown.(*Query).Iter"); got != 20 {
		t.Errorf("µs of one sample in five at 100 µs/request = %v, want 20", got)
	}
}
