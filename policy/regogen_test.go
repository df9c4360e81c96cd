package policy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	secv1 "istio.io/client-go/pkg/apis/security/v1beta1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"
)

// TestConcurrentChecks: the per-snapshot shared read transaction and the
// pooled virtual caches give every goroutine the same verdicts as serial
// evaluation (run with -race).
func TestConcurrentChecks(t *testing.T) {
	set := GenerateSet(300, 10)
	set.Pods = []*corev1.Pod{{ObjectMeta: metav1.ObjectMeta{Name: "a", Namespace: "ns-0", Labels: map[string]string{"app": "app-0"}},
		Status: corev1.PodStatus{PodIP: "10.0.1.1"}}}
	s, err := Compile(context.Background(), Mesh{}, set, 1)
	if err != nil {
		t.Fatal(err)
	}
	type c struct {
		principal, path, tenant string
	}
	cases := []c{
		{"spiffe://cluster.local/ns/ingress/sa/gw", "/api/v0/x", "shared"}, // allowed by ns-0/p-0
		{"spiffe://cluster.local/ns/ingress/sa/gw", "/admin", "shared"},    // no ALLOW rule matches
		{"", "/api/v0/x", "shared"},                                        // plaintext: principals never match
		{"spiffe://cluster.local/ns/ns-0/sa/client-0", "/healthz", "t-0"},
	}
	want := make([]Verdict, len(cases))
	for i, k := range cases {
		req := checkReq(k.principal, "10.0.0.5", "10.0.1.1", 8080, "GET", k.path, map[string]string{"x-tenant": k.tenant})
		if want[i], err = s.Check(context.Background(), req); err != nil {
			t.Fatal(err)
		}
	}
	if !want[0].Allowed || want[0].Policy != "ns-0/p-0" || want[1].Allowed || want[2].Allowed || !want[3].Allowed {
		t.Fatalf("serial verdicts unexpected: %+v", want)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for n := 0; n < 200; n++ {
				i := (g + n) % len(cases)
				k := cases[i]
				req := checkReq(k.principal, "10.0.0.5", "10.0.1.1", 8080, "GET", k.path, map[string]string{"x-tenant": k.tenant})
				v, err := s.Check(context.Background(), req)
				if err != nil || v.Allowed != want[i].Allowed || v.Policy != want[i].Policy || v.Rule != want[i].Rule || v.Mode != want[i].Mode {
					errs <- fmt.Errorf("case %d: got %+v %v, want %+v", i, v, err, want[i])
					return
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// The tests read the generated Rego (moduleText).
func init() { keepModuleText = true }

// TestGeneratedModuleIndexable: every policy rule becomes a branch of the
// view's decision chain keyed by equalities on input.view and the selector
// labels (what OPA's rule index uses), DENY before ALLOW, and no per-request
// data lookups remain.
func TestGeneratedModuleIndexable(t *testing.T) {
	set := &Set{}
	if _, err := set.AddYAML("x", []byte(ap("foo", "p", "selector: {matchLabels: {app: web}}\nrules:\n- to:\n  - operation: {paths: [\"/api/*\", /healthz]}")+
		ap("istio-system", "d", "action: DENY\nrules:\n- to:\n  - operation: {methods: [DELETE]}"))); err != nil {
		t.Fatal(err)
	}
	s, err := Compile(context.Background(), Mesh{}, set, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		` else := ["allow", "foo/p", 0] if {` + "\n\t" + `input.view == "foo"` + "\n\t" + `input.labels["app"] == "web"` + "\n\tinput.tcp == false",
		`regex.match("(?s)^(?:/healthz|/api/.*)$", input.path)`,
		// root-namespace DENY repeated in the foo view and the default view
		`decision := ["deny", "istio-system/d", 0] if {` + "\n\t" + `input.view == "foo"`,
		`decision := ["deny", "istio-system/d", 0] if {` + "\n\t" + `input.view == "*"`,
		// a selecting ALLOW policy without a matching rule, then open
		` else := "noallow" if {` + "\n\t" + `input.view == "foo"` + "\n\t" + `input.labels["app"] == "web"` + "\n} else := \"open\" if {",
	} {
		if !strings.Contains(s.moduleText(), want) {
			t.Errorf("generated module lacks %q:\n%s", want, s.moduleText())
		}
	}
	if strings.Contains(s.moduleText(), "data.meshguard.pdata") {
		t.Errorf("generated module still reads policy data")
	}
}

// BenchmarkCompile10k: compiling a 10,000-policy snapshot (validation,
// translation, Rego generation and preparation); the old snapshot serves
// meanwhile. A benchmark, not a timed test: wall time on a shared machine
// says nothing (figures: docs/benchmarks.md, `make bench`).
func BenchmarkCompile10k(b *testing.B) {
	set := GenerateSet(10000, 100)
	for b.Loop() {
		if _, err := Compile(context.Background(), Mesh{}, set, 1); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRebuild10k: one reload of a 10,000-policy set after one policy
// changed (alternately renamed and back, so every iteration is a change
// against the snapshot before it), as `authz serve` does it. dir: the
// policy-directory path (one file rewritten, DirLoader.Load decoding the
// changed document, CompileNext on the current snapshot); api: API-server
// objects as the informers hold them (policy.Stored, with UID and
// resourceVersion; the changed one with a new resourceVersion).
func BenchmarkRebuild10k(b *testing.B) {
	ctx := context.Background()
	gen := GenerateSet(10000, 100)
	b.Run("dir", func(b *testing.B) {
		docs := make([][]byte, len(gen.AuthorizationPolicies))
		for i, ap := range gen.AuthorizationPolicies {
			c := ap.DeepCopy()
			c.APIVersion, c.Kind = "security.istio.io/v1", "AuthorizationPolicy"
			y, err := yaml.Marshal(c)
			if err != nil {
				b.Fatal(err)
			}
			docs[i] = y
		}
		variant := [2][]byte{docs[7], bytes.Replace(docs[7], []byte("name: p-7\n"), []byte("name: p-7-renamed\n"), 1)}
		if bytes.Equal(variant[0], variant[1]) {
			b.Fatal("rename not applied")
		}
		dir := b.TempDir()
		loader := new(DirLoader)
		load := func(i int) *Set {
			docs[7] = variant[i%2]
			if err := os.WriteFile(filepath.Join(dir, "policies.yaml"), bytes.Join(docs, []byte("---\n")), 0o644); err != nil {
				b.Fatal(err)
			}
			set, _, err := loader.Load(dir)
			if err != nil {
				b.Fatal(err)
			}
			return set
		}
		prev, err := CompileNext(ctx, nil, Mesh{}, load(0), 1)
		if err != nil {
			b.Fatal(err)
		}
		i := 0
		for b.Loop() {
			i++
			if prev, err = CompileNext(ctx, prev, Mesh{}, load(i), uint64(i)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("api", func(b *testing.B) {
		// As the informers hold them: each object decoded once, with its verdict
		// (DecodeStored), and handed to every reload as the same value.
		stored := func(ap *secv1.AuthorizationPolicy) *Stored {
			c := ap.DeepCopy()
			c.APIVersion, c.Kind = "security.istio.io/v1", "AuthorizationPolicy"
			js, err := json.Marshal(c)
			if err != nil {
				b.Fatal(err)
			}
			var obj map[string]any
			if err := json.Unmarshal(js, &obj); err != nil {
				b.Fatal(err)
			}
			st, err := DecodeStored("AuthorizationPolicy", obj)
			if err != nil || st.Invalid != "" {
				b.Fatalf("%v %s", err, st.Invalid)
			}
			return st
		}
		var objs []*Stored
		for i, ap := range gen.AuthorizationPolicies {
			c := ap.DeepCopy()
			c.UID, c.ResourceVersion = types.UID(fmt.Sprintf("uid-%d", i)), "1"
			objs = append(objs, stored(c))
		}
		orig := objs[7]
		renamed := gen.AuthorizationPolicies[7].DeepCopy()
		renamed.UID, renamed.Name, renamed.ResourceVersion = "uid-7", "p-7-renamed", "2"
		variant := [2]*Stored{orig, stored(renamed)}
		set := &Set{}
		set.AddStored(objs...)
		prev, err := CompileNext(ctx, nil, Mesh{}, set, 1)
		if err != nil {
			b.Fatal(err)
		}
		i := 0
		for b.Loop() {
			i++
			objs[7] = variant[i%2]
			next := &Set{}
			next.AddStored(objs...)
			if prev, err = CompileNext(ctx, prev, Mesh{}, next, uint64(i)); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestQuoteAsJSON: q writes every string exactly as encoding/json does.
func TestQuoteAsJSON(t *testing.T) {
	for _, s := range []string{"", "ns-1/p-7", "/api/v1/*", "a\"b", `a\b`, "<script>&", "tab\there", "\x00\x1f\x7f", "é", "\u2028", "\xff", "spiffe://td/ns/x/sa/y", " ~!#$%'()*+,-.:;=?@[]^_`{|}"} {
		b, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := q(s); got != string(b) {
			t.Errorf("q(%q) = %s, encoding/json writes %s", s, got, b)
		}
	}
}
