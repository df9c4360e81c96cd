package policy

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const memoPod = `apiVersion: v1
kind: Pod
metadata: {name: web, namespace: shop, labels: {app: web}}
status: {podIP: 10.0.0.9}
---
`

// TestDirLoaderReusesUnchangedDocuments: a reload shares the objects of
// unchanged documents with the previous load (not decoded or validated
// again), decodes the changed one, and gives exactly the Set a fresh
// LoadDir gives.
func TestDirLoaderReusesUnchangedDocuments(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	list := "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: security.istio.io/v1, kind: PeerAuthentication, metadata: {name: strict, namespace: shop}, spec: {mtls: {mode: STRICT}}}\n- " +
		"{apiVersion: security.istio.io/v1, kind: AuthorizationPolicy, metadata: {name: in-list, namespace: shop}, spec: {action: DENY, rules: [{}]}}\n"
	write("a.yaml", ap("shop", "allow-get", "rules: [{to: [{operation: {methods: [GET]}}]}]")+ap("shop", "deny-all", "action: DENY\nrules: [{}]")+memoPod)
	write("b.yaml", list)

	l := new(DirLoader)
	first, _, err := l.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	write("a.yaml", ap("shop", "allow-get", "rules: [{to: [{operation: {methods: [GET, HEAD]}}]}]")+ap("shop", "deny-all", "action: DENY\nrules: [{}]")+memoPod)
	second, _, err := l.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if second.docValidations != 1 {
		t.Errorf("the reload validated %d documents, want 1 (the changed one)", second.docValidations)
	}
	same := func(kind string, a, b any) {
		t.Helper()
		if reflect.ValueOf(a).Pointer() != reflect.ValueOf(b).Pointer() {
			t.Errorf("%s: decoded again though its document did not change", kind)
		}
	}
	byName := func(s *Set) map[string]int {
		m := map[string]int{}
		for i, p := range s.AuthorizationPolicies {
			m[p.Name] = i
		}
		return m
	}
	f, s := byName(first), byName(second)
	same("deny-all", first.AuthorizationPolicies[f["deny-all"]], second.AuthorizationPolicies[s["deny-all"]])
	same("in-list", first.AuthorizationPolicies[f["in-list"]], second.AuthorizationPolicies[s["in-list"]])
	same("the PeerAuthentication", first.PeerAuthentications[0], second.PeerAuthentications[0])
	same("the Pod", first.Pods[0], second.Pods[0])
	if first.AuthorizationPolicies[f["allow-get"]] == second.AuthorizationPolicies[s["allow-get"]] {
		t.Error("allow-get changed but the old object was reused")
	}
	if got := second.AuthorizationPolicies[s["allow-get"]].Spec.Rules[0].To[0].Operation.Methods; !reflect.DeepEqual(got, []string{"GET", "HEAD"}) {
		t.Errorf("allow-get methods after the reload: %v", got)
	}

	fresh, _, err := LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for name, pair := range map[string][2]any{
		"authorization policies": {fresh.AuthorizationPolicies, second.AuthorizationPolicies},
		"peer authentications":   {fresh.PeerAuthentications, second.PeerAuthentications},
		"pods":                   {fresh.Pods, second.Pods},
	} {
		if !reflect.DeepEqual(pair[0], pair[1]) {
			t.Errorf("%s: the reload's Set differs from a fresh LoadDir's", name)
		}
	}
	for _, o := range append(append([]any{}, anySlice(second.AuthorizationPolicies)...), anySlice(second.PeerAuthentications)...) {
		if r, ok := second.verdicts[o]; !ok || r != "" {
			t.Errorf("%T reused from the memo is not marked validated", o)
		}
	}

	// A document removed from the directory is forgotten.
	if err := os.Remove(filepath.Join(dir, "b.yaml")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := l.Load(dir); err != nil {
		t.Fatal(err)
	}
	if len(l.last) != 3 {
		t.Errorf("the memo holds %d documents after the load of 3", len(l.last))
	}
}

func anySlice[T any](xs []T) []any {
	out := make([]any, len(xs))
	for i, x := range xs {
		out[i] = x
	}
	return out
}

// TestDirLoaderReportsEveryTime: a document with a warning or an error is
// not remembered, so every reload reports it again, with its place.
func TestDirLoaderReportsEveryTime(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "p.yaml")
	skipped := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n---\n"
	if err := os.WriteFile(p, []byte(ap("shop", "ok", "rules: [{}]")+skipped), 0o644); err != nil {
		t.Fatal(err)
	}
	l := new(DirLoader)
	for i := 0; i < 2; i++ {
		_, warnings, err := l.Load(dir)
		if err != nil {
			t.Fatal(err)
		}
		if len(warnings) != 1 || !strings.Contains(warnings[0], "p.yaml: document 1: kind ConfigMap: skipped") {
			t.Errorf("load %d: warnings %q, want the ConfigMap skipped", i, warnings)
		}
	}
	bad := ap("shop", "bad", "rules: [{to: [{operation: {methods: [GET], notMethods: [GET]}}]}]\naction: NOPE")
	if err := os.WriteFile(p, []byte(ap("shop", "ok", "rules: [{}]")+bad), 0o644); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if _, _, err := l.Load(dir); err == nil || !strings.Contains(err.Error(), "p.yaml: document 1") {
			t.Errorf("load %d: error %v, want the bad document named", i, err)
		}
	}
}
