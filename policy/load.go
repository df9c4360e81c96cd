package policy

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"

	"github.com/meshguard/meshguard/internal/dirwalk"
	"github.com/meshguard/meshguard/internal/manifest"
	"github.com/meshguard/meshguard/orgrules"

	"github.com/open-policy-agent/opa/v1/ast"

	secv1 "istio.io/client-go/pkg/apis/security/v1beta1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// LoadDir reads a policy directory (recursively) for the default revision
// (DirLoader.Revision): *.yaml, *.yml and *.json
// files with AuthorizationPolicy, PeerAuthentication, RequestAuthentication
// and Pod objects (also
// inside a List), and *.rego user modules (an `opa test` file beside them
// is skipped with a warning: SkipRegoTestFile). Other kinds are skipped and
// returned as warnings. Any unreadable file or malformed object is an error
// naming the file, document and field.
func LoadDir(dir string) (*Set, []string, error) { return new(DirLoader).Load(dir) }

// DirLoader loads a policy directory again and again (authz serve's
// reloads). It remembers the objects each document of its last load decoded
// to, by the document's bytes, so a reload decodes and validates only the
// documents that changed: at 10,000 policies, decoding the YAML was most of
// a reload's CPU and garbage (docs/benchmarks.md). The objects are shared
// between the loads' Sets, which are read-only once loaded; keeping them
// costs live heap (≈ 21 MB at 10,000 policies, docs/benchmarks.md). The zero value
// is ready; concurrent Loads run one after the other.
type DirLoader struct {
	// Revision is the control-plane revision the directory is read for
	// ("" = default): a policy labelled istio.io/rev for another is not
	// enforced (InRevision), as istiod of Revision would not read it. Every
	// document is still validated and named once.
	Revision string
	// OnSkip, when set, is told of each policy Revision does not read.
	OnSkip func(OutOfRevision)

	mu   sync.Mutex
	last docMemo
}

// docMemo: sha256 of a document's bytes → the objects it decoded to. Only
// documents that decoded without a warning are remembered.
type docMemo map[[sha256.Size]byte][]any

// Load is LoadDir, reusing the objects of documents unchanged since the
// previous Load.
func (l *DirLoader) Load(dir string) (*Set, []string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	set := &Set{UserModules: map[string]string{}}
	// Sized as the last load: a reload usually has the same documents.
	memo := &loadMemo{last: l.last, next: make(docMemo, len(l.last))}
	set.verdicts = make(map[any]string, len(l.last))
	root, files, err := dirwalk.Files(dir, dirwalk.Options{Exts: []string{".yaml", ".yml", ".json", ".rego"}, Confine: true})
	if err != nil {
		return nil, nil, fmt.Errorf("policy dir %s: %w", dir, err)
	}
	var warnings []string
	names := map[string]string{} // "kind ns/name" → the file it is in
	for _, rel := range files {
		isRego := strings.HasSuffix(strings.ToLower(rel), ".rego")
		b, err := ReadFileBounded(filepath.Join(root, rel))
		if err != nil {
			return nil, nil, fmt.Errorf("policy dir: %w", err)
		}
		if isRego {
			skipped, err := SkipRegoTestFile(rel, b)
			if err != nil {
				return nil, nil, fmt.Errorf("policy dir %s: %w", dir, err)
			}
			if skipped != "" {
				warnings = append(warnings, skipped)
				continue
			}
			set.UserModules[rel] = string(b)
			continue
		}
		before := set.count()
		w, err := set.addYAML(rel, b, memo)
		if err != nil {
			return nil, nil, err
		}
		if err := set.namedOnce(names, before, rel); err != nil {
			return nil, nil, err
		}
		warnings = append(warnings, w...)
	}
	l.last = memo.next // what this load did not see is forgotten
	for _, o := range set.keepRevision(l.Revision) {
		if l.OnSkip != nil {
			l.OnSkip(o)
		}
	}
	return set, warnings, nil
}

// SkipRegoTestFile returns a warning (non-empty) when a *.rego file of a user module directory
// (--policy-dir, --authz-rego-dir; both select by this function) is an `opa
// test` file to skip rather than a user module, "" when it is a module: its name is a Rego test's
// (*_test.rego, orgrules.IsModule's name rule) and its package, read with
// OPA's parser, is not UserPackage. OPA's loader loads *_test.rego files as
// modules, so one of package meshguard.user is a user module: skipping it
// would drop its denies unseen. A test-named file that does not parse is an
// error naming it: whether it holds denies cannot be told (fail closed).
// Any other file is a module; its package is checked at compile
// (compileShard).
func SkipRegoTestFile(name string, src []byte) (string, error) {
	if orgrules.IsModule(name) {
		return "", nil
	}
	m, err := ast.ParseModuleWithOpts(name, string(src), ast.ParserOptions{RegoVersion: ast.RegoV1})
	if err == nil && m == nil {
		err = errors.New("no package clause")
	}
	if err != nil {
		return "", fmt.Errorf("%s: named as a Rego test, but its package cannot be read to tell an `opa test` file from a user module (package %s): %w", name, UserPackage, err)
	}
	if pkg := strings.TrimPrefix(m.Package.Path.String(), "data."); pkg != UserPackage {
		return fmt.Sprintf("%s: skipped as a Rego test file: named *_test.rego and of package %s, not %s", name, pkg, UserPackage), nil
	}
	return "", nil
}

// loadMemo is one load's view of the memo: documents found in last are
// reused, and every document this load decoded cleanly goes into next.
type loadMemo struct{ last, next docMemo }

// AddYAML adds every object of a (multi-document) YAML or JSON stream; name
// is used in errors. Documents are split and decoded by the decoder every
// input path shares (internal/manifest): duplicate keys are an error naming
// the key and line, each document is bounded in size.
func (s *Set) AddYAML(name string, b []byte) ([]string, error) { return s.addYAML(name, b, nil) }

func (s *Set) addYAML(name string, b []byte, memo *loadMemo) ([]string, error) {
	docs, err := manifest.SplitRaw(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	var warnings []string
	for _, d := range docs {
		where := fmt.Sprintf("%s: document %d", name, d.Index)
		if d.Err != nil {
			return nil, fmt.Errorf("%s: %w", where, d.Err)
		}
		var key [sha256.Size]byte
		if memo != nil {
			key = sha256.Sum256(d.Raw)
			if objs, ok := memo.last[key]; ok {
				memo.next[key] = objs
				s.addDecoded(objs)
				continue
			}
		}
		obj, err := manifest.Decode(d.Raw)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		if obj == nil {
			continue
		}
		before := s.count()
		w, err := s.addObject(where, obj)
		if err != nil {
			return nil, err
		}
		if memo != nil && len(w) == 0 {
			memo.next[key] = s.added(before)
		}
		warnings = append(warnings, w...)
	}
	return warnings, nil
}

// objCount is how many objects of each kind a Set holds.
type objCount struct{ aps, pas, ras, pods int }

func (s *Set) count() objCount {
	return objCount{len(s.AuthorizationPolicies), len(s.PeerAuthentications), len(s.RequestAuthentications), len(s.Pods)}
}

// added lists the objects added since count returned c.
func (s *Set) added(c objCount) []any {
	var out []any
	for _, ap := range s.AuthorizationPolicies[c.aps:] {
		out = append(out, ap)
	}
	for _, pa := range s.PeerAuthentications[c.pas:] {
		out = append(out, pa)
	}
	for _, ra := range s.RequestAuthentications[c.ras:] {
		out = append(out, ra)
	}
	for _, p := range s.Pods[c.pods:] {
		out = append(out, p)
	}
	return out
}

// namedOnce fails when an object added since c has the kind, namespace and
// name of one added before (names: those keys → their file), recording the
// new ones under file. The API server holds one object per name (`kubectl
// apply -f DIR` leaves the last one); a directory enforcing both would allow
// what either ALLOW allows.
func (s *Set) namedOnce(names map[string]string, c objCount, file string) error {
	add := func(kind, ns, name string) error {
		k := kind + " " + ns + "/" + name
		if first, dup := names[k]; dup {
			return fmt.Errorf("%s: %s: already defined in %s (one object per name, as in the API server)", file, k, first)
		}
		names[k] = file
		return nil
	}
	for _, ap := range s.AuthorizationPolicies[c.aps:] {
		if err := add("AuthorizationPolicy", ap.Namespace, ap.Name); err != nil {
			return err
		}
	}
	for _, pa := range s.PeerAuthentications[c.pas:] {
		if err := add("PeerAuthentication", pa.Namespace, pa.Name); err != nil {
			return err
		}
	}
	for _, ra := range s.RequestAuthentications[c.ras:] {
		if err := add("RequestAuthentication", ra.Namespace, ra.Name); err != nil {
			return err
		}
	}
	for _, p := range s.Pods[c.pods:] {
		if err := add("Pod", p.Namespace, p.Name); err != nil {
			return err
		}
	}
	return nil
}

// addDecoded adds objects a previous load decoded (and validated) from the
// same bytes.
func (s *Set) addDecoded(objs []any) {
	for _, o := range objs {
		switch o := o.(type) {
		case *secv1.AuthorizationPolicy:
			s.setVerdict(o, "")
			s.AuthorizationPolicies = append(s.AuthorizationPolicies, o)
		case *secv1.PeerAuthentication:
			s.setVerdict(o, "")
			s.PeerAuthentications = append(s.PeerAuthentications, o)
		case *secv1.RequestAuthentication:
			s.setVerdict(o, "")
			s.RequestAuthentications = append(s.RequestAuthentications, o)
		case *corev1.Pod:
			s.Pods = append(s.Pods, o)
		}
	}
}

func (s *Set) addObject(where string, obj map[string]any) ([]string, error) {
	apiVersion, _ := obj["apiVersion"].(string)
	kind, _ := obj["kind"].(string)
	if manifest.IsList(obj) {
		items, err := manifest.Items(obj)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		var warnings []string
		for j, it := range items {
			w, err := s.addObject(fmt.Sprintf("%s: items[%d]", where, j), it)
			if err != nil {
				return nil, err
			}
			warnings = append(warnings, w...)
		}
		return warnings, nil
	}
	switch kind {
	case "AuthorizationPolicy", "PeerAuthentication", "RequestAuthentication":
		if !strings.HasPrefix(apiVersion, "security.istio.io/") {
			// Validation's error first, when it rejects the document (a
			// misspelt Istio group names what it meant).
			if _, err := s.skip(where, obj, ""); err != nil {
				return nil, err
			}
			// Istio reads these kinds only as security.istio.io, so validate
			// passes over another group's object; but a policy directory holds
			// the policies meant to be enforced, and a policy kind under another
			// (or no) group is a DENY or STRICT that would silently go
			// unenforced: an error, never a warning.
			return nil, fmt.Errorf("%s: %s: apiVersion %q: not security.istio.io, so Istio would not enforce it; a policy directory does not skip a policy kind (use security.istio.io/v1, or remove the document)", where, kind, apiVersion)
		}
		// Memoized across reloads: an unchanged document is not validated again.
		validated, checked, err := validateDocMemo(where, obj)
		if validated {
			s.docValidations++
		}
		if err != nil {
			return nil, err
		}
		if checked == nil {
			return nil, fmt.Errorf("%s: %s: not checked by validation", where, kind) // cannot happen: fail closed
		}
		// Decode the object validation checked (nulls pruned, as the API
		// server stores it), never the raw document again.
		if kind == "AuthorizationPolicy" {
			ap := &secv1.AuthorizationPolicy{}
			if err := decodeInto(where, checked, ap); err != nil {
				return nil, err
			}
			if err := objName(where, kind, ap.Name, &ap.Namespace); err != nil {
				return nil, err
			}
			keepReadMeta(&ap.ObjectMeta)
			s.setVerdict(ap, "")
			s.AuthorizationPolicies = append(s.AuthorizationPolicies, ap)
			return nil, nil
		}
		if kind == "RequestAuthentication" {
			// Read for the headers its jwt_authn provider changes (jwtheaders.go).
			ra := &secv1.RequestAuthentication{}
			if err := decodeInto(where, checked, ra); err != nil {
				return nil, err
			}
			if err := objName(where, kind, ra.Name, &ra.Namespace); err != nil {
				return nil, err
			}
			keepReadMeta(&ra.ObjectMeta)
			s.setVerdict(ra, "")
			s.RequestAuthentications = append(s.RequestAuthentications, ra)
			return nil, nil
		}
		pa := &secv1.PeerAuthentication{}
		if err := decodeInto(where, checked, pa); err != nil {
			return nil, err
		}
		if err := objName(where, kind, pa.Name, &pa.Namespace); err != nil {
			return nil, err
		}
		keepReadMeta(&pa.ObjectMeta)
		s.setVerdict(pa, "")
		s.PeerAuthentications = append(s.PeerAuthentications, pa)
	case "Pod":
		p := &corev1.Pod{}
		if err := decodeInto(where, obj, p); err != nil {
			return nil, err
		}
		if err := objName(where, kind, p.Name, &p.Namespace); err != nil {
			return nil, err
		}
		if p.Status.PodIP == "" && len(p.Status.PodIPs) == 0 {
			return []string{fmt.Sprintf("%s: Pod %s/%s: status.podIP: empty, pod cannot be matched by destination IP", where, p.Namespace, p.Name)}, nil
		}
		s.Pods = append(s.Pods, p)
	case "":
		return nil, fmt.Errorf("%s: kind: missing", where)
	default:
		return s.skip(where, obj, fmt.Sprintf("%s: kind %s: skipped", where, kind))
	}
	return nil, nil
}

// skip returns warning for a document the loader does not use, unless
// `meshguard validate` rejects it: then the load fails. A document with a
// mistyped kind or group, or no apiVersion, may be a policy meant to be
// enforced (a DENY), so it is never dropped with only a warning.
func (s *Set) skip(where string, obj map[string]any, warning string) ([]string, error) {
	validated, _, err := validateDocMemo(where, obj)
	if validated {
		s.docValidations++
	}
	if err != nil {
		return nil, err
	}
	return []string{warning}, nil
}

// keepReadMeta trims a loaded policy's metadata to what authorization reads:
// name and namespace (identity, age ties, errors), creationTimestamp (age
// order), the istio.io/dry-run annotation (translator.policy), the
// istio.io/rev label (whether this revision reads it: InRevision), and uid
// and resourceVersion (logs). The rest stays with the loader's input: other
// labels and annotations and owners are never read here, and one annotation alone,
// kubectl's last-applied-configuration, is a JSON copy of the whole object, which
// the loaders' kept objects would otherwise hold for as long as the policy
// exists (docs/benchmarks.md). Validation has run on the document already.
func keepReadMeta(m *metav1.ObjectMeta) {
	kept := metav1.ObjectMeta{Name: m.Name, Namespace: m.Namespace, UID: m.UID, ResourceVersion: m.ResourceVersion,
		CreationTimestamp: m.CreationTimestamp}
	if v, ok := m.Annotations[dryRunAnnotation]; ok {
		kept.Annotations = map[string]string{dryRunAnnotation: v}
	}
	if v, ok := m.Labels[RevisionLabel]; ok {
		kept.Labels = map[string]string{RevisionLabel: v}
	}
	*m = kept
}

// decodeInto turns a decoded (already validated) document into its typed form.
func decodeInto(where string, obj map[string]any, into any) error {
	b, err := json.Marshal(obj)
	if err == nil {
		err = json.Unmarshal(b, into)
	}
	if err != nil {
		return fmt.Errorf("%s: %T: %w", where, into, err)
	}
	return nil
}

// setVerdict records the verdict of `meshguard validate` on the raw
// document obj was decoded from ("" = accepted).
func (s *Set) setVerdict(obj any, invalid string) {
	if s.verdicts == nil {
		s.verdicts = map[any]string{}
	}
	s.verdicts[obj] = invalid
}

func objName(where, kind, name string, ns *string) error {
	if name == "" {
		return fmt.Errorf("%s: %s: metadata.name: missing", where, kind)
	}
	if *ns == "" {
		*ns = "default"
	}
	return nil
}

// ReadFileBounded reads a policy or user Rego file up to the size every
// input path accepts (manifest.DefaultMaxInputBytes).
func ReadFileBounded(name string) ([]byte, error) {
	return manifest.ReadFile(name, manifest.DefaultMaxInputBytes)
}
