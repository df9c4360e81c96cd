package deploy

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// otherNamespace is a namespace other than the default one, installed into
// the way docs/operations.md "Install" tells a user.
const otherNamespace = "mesh-sec"

// otherNamespacePackagings install into otherNamespace, as a user would.
func otherNamespacePackagings() []packaging {
	return []packaging{
		otherNamespaceHelm("cert-manager"), otherNamespaceHelm("self"),
		otherNamespaceKustomize("cert-manager", "cert-manager"), otherNamespaceKustomize("self-managed", "self"),
	}
}

// otherNamespaceHelm renders the chart with --namespace otherNamespace.
func otherNamespaceHelm(certMode string) packaging {
	return packaging{name: "helm/" + certMode + "/ns-" + otherNamespace, certMode: certMode, namespace: otherNamespace,
		render: func(t testing.TB) string {
			t.Helper()
			rendered, err := helmTemplateIn(t, otherNamespace, "--set", "certMode="+certMode)
			if err != nil {
				t.Fatalf("render chart in %s: %v", otherNamespace, err)
			}
			return rendered
		}}
}

// otherNamespaceKustomize renders the overlay docs/operations.md shows for
// another namespace, on top of one of the shipped overlays.
func otherNamespaceKustomize(overlay, certMode string) packaging {
	return packaging{name: "kustomize/" + overlay + "/ns-" + otherNamespace, certMode: certMode, namespace: otherNamespace,
		render: func(t testing.TB) string {
			t.Helper()
			rendered, err := run(t, kubectlBin(t), "kustomize", writeDocsOverlay(t, overlay))
			if err != nil {
				t.Fatalf("render the documented overlay on %s: %v", overlay, err)
			}
			return rendered
		}}
}

// docsOverlayBlock finds the kustomization docs/operations.md gives for
// another namespace: the yaml block setting `namespace: mesh-sec`.
var docsOverlayBlock = regexp.MustCompile("(?s)```yaml\n(# " + otherNamespace + "/kustomization.yaml\n.*?)```")

// writeDocsOverlay writes the documented overlay, with its paths (written
// for meshguard's repository checked out next to it) made to lead to this
// repository and to the given overlay, and returns its directory.
func writeDocsOverlay(t testing.TB, overlay string) string {
	t.Helper()
	docs, err := os.ReadFile(repoPath(t, "docs", "operations.md"))
	if err != nil {
		t.Fatalf("read docs: %v", err)
	}
	m := docsOverlayBlock.FindSubmatch(docs)
	if m == nil {
		t.Fatalf("docs/operations.md has no yaml block starting `# %s/kustomization.yaml`", otherNamespace)
	}
	dir := filepath.Join(t.TempDir(), otherNamespace)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// kustomize refuses absolute paths: lead from dir to the repository.
	repo, err := filepath.Rel(dir, repoPath(t))
	if err != nil {
		t.Fatalf("relative path to the repository: %v", err)
	}
	const docsRepo = "../meshguard/"
	text := string(m[1])
	if !strings.Contains(text, docsRepo+"deploy/kustomize/overlays/cert-manager") {
		t.Fatalf("the documented overlay does not build on %soverlays/cert-manager:\n%s", docsRepo, text)
	}
	text = strings.ReplaceAll(text, "overlays/cert-manager", "overlays/"+overlay)
	text = strings.ReplaceAll(text, docsRepo, filepath.ToSlash(repo)+"/")
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestOtherNamespaceReferences: installed into another namespace, no object
// still names the default one. TestRenderedManifests checks that each
// reference names the new namespace (webhook Service and exclusion, binding
// subjects, Role namespaces, Certificate dnsNames, inject-ca-from) and
// TestApplyToAPIServer what the ServiceAccount there may do; this catches a
// reference those checks do not know about.
func TestOtherNamespaceReferences(t *testing.T) {
	for _, p := range otherNamespacePackagings() {
		t.Run(p.name, func(t *testing.T) {
			for _, u := range parse(t, p.render(t)).all {
				for _, ref := range namespaceReferences(u.Object, "", namespace) {
					t.Errorf("%s %s: %s still names namespace %q", u.GetKind(), u.GetName(), ref, namespace)
				}
			}
		})
	}
}

// namespaceReferences lists the paths in obj that name namespace ns: a
// namespace field, a value of a label selector expression (the
// kubernetes.io/metadata.name exclusion), a Service DNS name, a
// <namespace>/<name> reference (cert-manager's inject-ca-from), a flag
// --x-namespace=ns or an env var *NAMESPACE* with that value.
func namespaceReferences(obj any, path, ns string) []string {
	var out []string
	switch v := obj.(type) {
	case map[string]any:
		if name, _ := v["name"].(string); strings.Contains(name, "NAMESPACE") && v["value"] == ns {
			out = append(out, path+".value")
		}
		for k, child := range v {
			p := path + "." + k
			if s, ok := child.(string); ok && k == "namespace" && s == ns {
				out = append(out, p)
				continue
			}
			if vals, ok := child.([]any); ok && k == "values" {
				for i, val := range vals {
					if val == ns {
						out = append(out, fmt.Sprintf("%s[%d]", p, i))
					}
				}
			}
			out = append(out, namespaceReferences(child, p, ns)...)
		}
	case []any:
		for i, child := range v {
			out = append(out, namespaceReferences(child, fmt.Sprintf("%s[%d]", path, i), ns)...)
		}
	case string:
		if strings.Contains(v, "."+ns+".svc") || strings.HasPrefix(v, ns+"/") ||
			strings.HasPrefix(v, "--") && strings.HasSuffix(v, "namespace="+ns) {
			out = append(out, fmt.Sprintf("%s (%q)", path, v))
		}
	}
	return out
}
