package policy

import (
	"context"
	"math/rand"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/encoding/protojson"
)

// TestCheckMutatedRequests: deterministic byte mutations of a CheckRequest
// (a cheap stand-in for FuzzCheck, whose engine is slow with OPA instrumented)
// never produce an internal error. How fast Check is, is BenchmarkCheck's to
// show, not a wall-clock bound's here (it depended on the machine's load);
// an evaluation that never ends fails the test by go test's -timeout, with
// the goroutines' stacks.
func TestCheckMutatedRequests(t *testing.T) {
	set := &Set{}
	if _, err := set.AddYAML("fuzz", []byte(fuzzPolicies)); err != nil {
		t.Fatal(err)
	}
	s, err := Compile(context.Background(), Mesh{}, set, 1)
	if err != nil {
		t.Fatal(err)
	}
	seed := `{"attributes":{"source":{"principal":"spiffe://cluster.local/ns/foo/sa/a","address":{"socketAddress":{"address":"10.0.0.5","portValue":1}}},"destination":{"address":{"socketAddress":{"address":"10.0.1.1","portValue":8080}}},"request":{"http":{"method":"GET","path":"/api/v1/x?q=1","host":"web.foo","headers":{"x-user":"alice"}}},"metadataContext":{"filterMetadata":{"envoy.filters.http.jwt_authn":{"payload":{"iss":"i","sub":"s","groups":["admin"]}}}}}}`
	rng := rand.New(rand.NewSource(1))
	n := 0
	for i := 0; i < 20000; i++ {
		b := []byte(seed)
		for k := 0; k < 3; k++ {
			b[rng.Intn(len(b))] = byte(rng.Intn(128))
		}
		req := &authv3.CheckRequest{}
		if protojson.Unmarshal(b, req) != nil {
			continue
		}
		n++
		if _, err := s.Check(context.Background(), req); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
	}
	if n < 100 {
		t.Fatalf("only %d valid mutated inputs", n)
	}
}
