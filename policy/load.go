package policy

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/meshguard/meshguard/internal/manifest"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	secv1 "istio.io/client-go/pkg/apis/security/v1beta1"
	corev1 "k8s.io/api/core/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// LoadDir reads a policy directory (recursively): *.yaml, *.yml and *.json
// files with AuthorizationPolicy, PeerAuthentication and Pod objects (also
// inside a List), and *.rego user modules. Other kinds are skipped and
// returned as warnings. Any unreadable file or malformed object is an error
// naming the file, document and field.
func LoadDir(dir string) (*Set, []string, error) {
	set := &Set{UserModules: map[string]string{}}
	root, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("policy dir %s: %w", dir, err)
	}
	var files []string
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != dir && strings.HasPrefix(d.Name(), ".") {
				return filepath.SkipDir // e.g. ConfigMap ..data symlink dirs are followed via their links
			}
			return nil
		}
		if strings.HasPrefix(d.Name(), ".") {
			return nil
		}
		switch strings.ToLower(filepath.Ext(p)) {
		case ".yaml", ".yml", ".json", ".rego":
			if d.Type()&fs.ModeSymlink != 0 {
				if err := SymlinkInside(root, p); err != nil {
					return err
				}
			}
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("policy dir %s: %w", dir, err)
	}
	sort.Strings(files)
	var warnings []string
	for _, f := range files {
		b, err := readFileBounded(f)
		if err != nil {
			return nil, nil, fmt.Errorf("policy dir: %w", err)
		}
		rel, _ := filepath.Rel(dir, f)
		if strings.HasSuffix(strings.ToLower(f), ".rego") {
			set.UserModules[rel] = string(b)
			continue
		}
		w, err := set.AddYAML(rel, b)
		if err != nil {
			return nil, nil, err
		}
		warnings = append(warnings, w...)
	}
	return set, warnings, nil
}

// SymlinkInside: a symlinked file is read only when its target resolves
// inside the (resolved) policy directory, as a ConfigMap volume's
// "p.yaml -> ..data/p.yaml -> ..<timestamp>/p.yaml" links do; a link
// elsewhere (/etc/shadow) rejects the whole load.
func SymlinkInside(root, p string) error {
	target, err := filepath.EvalSymlinks(p)
	if err != nil {
		return fmt.Errorf("%s: symlink: %w", p, err)
	}
	rel, err := filepath.Rel(root, target)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) || filepath.IsAbs(rel) {
		return fmt.Errorf("%s: symlink target %s is outside the policy directory: not read", p, target)
	}
	return nil
}

type typeMeta struct {
	APIVersion string
	Kind       string
}

// AddYAML adds every object of a (multi-document) YAML or JSON stream; name
// is used in errors.
func (s *Set) AddYAML(name string, b []byte) ([]string, error) {
	rd := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(b)))
	var warnings []string
	for i := 0; ; i++ {
		doc, err := rd.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", name, i, err)
		}
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		w, err := s.addObject(fmt.Sprintf("%s: document %d", name, i), doc)
		if err != nil {
			return nil, err
		}
		warnings = append(warnings, w...)
	}
	return warnings, nil
}

func (s *Set) addObject(where string, doc []byte) ([]string, error) {
	// The decoder every input path shares: duplicate keys are an error naming
	// the key and line, documents are bounded in size.
	obj, err := manifest.Decode(doc)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	if obj == nil {
		return nil, nil
	}
	var tm typeMeta
	tm.APIVersion, _ = obj["apiVersion"].(string)
	tm.Kind, _ = obj["kind"].(string)
	if manifest.IsList(obj) {
		items, err := manifest.Items(obj)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		var warnings []string
		for j, it := range items {
			b, err := json.Marshal(it)
			if err != nil {
				return nil, fmt.Errorf("%s: items[%d]: %w", where, j, err)
			}
			w, err := s.addObject(fmt.Sprintf("%s: items[%d]", where, j), b)
			if err != nil {
				return nil, err
			}
			warnings = append(warnings, w...)
		}
		return warnings, nil
	}
	switch tm.Kind {
	case "AuthorizationPolicy":
		if !strings.HasPrefix(tm.APIVersion, "security.istio.io/") {
			return []string{fmt.Sprintf("%s: apiVersion %q: skipped", where, tm.APIVersion)}, nil
		}
		if err := validateDoc(where, doc); err != nil {
			return nil, err
		}
		ap := &secv1.AuthorizationPolicy{}
		if err := yaml.UnmarshalStrict(doc, ap); err != nil {
			return nil, fmt.Errorf("%s: AuthorizationPolicy: %w", where, err)
		}
		if err := objName(where, "AuthorizationPolicy", ap.Name, &ap.Namespace); err != nil {
			return nil, err
		}
		s.markValidated(ap)
		s.AuthorizationPolicies = append(s.AuthorizationPolicies, ap)
	case "PeerAuthentication":
		if !strings.HasPrefix(tm.APIVersion, "security.istio.io/") {
			return []string{fmt.Sprintf("%s: apiVersion %q: skipped", where, tm.APIVersion)}, nil
		}
		if err := validateDoc(where, doc); err != nil {
			return nil, err
		}
		pa := &secv1.PeerAuthentication{}
		if err := yaml.UnmarshalStrict(doc, pa); err != nil {
			return nil, fmt.Errorf("%s: PeerAuthentication: %w", where, err)
		}
		if err := objName(where, "PeerAuthentication", pa.Name, &pa.Namespace); err != nil {
			return nil, err
		}
		s.markValidated(pa)
		s.PeerAuthentications = append(s.PeerAuthentications, pa)
	case "Pod":
		p := &corev1.Pod{}
		if err := yaml.Unmarshal(doc, p); err != nil {
			return nil, fmt.Errorf("%s: Pod: %w", where, err)
		}
		if err := objName(where, "Pod", p.Name, &p.Namespace); err != nil {
			return nil, err
		}
		if p.Status.PodIP == "" && len(p.Status.PodIPs) == 0 {
			return []string{fmt.Sprintf("%s: Pod %s/%s: status.podIP: empty, pod cannot be matched by destination IP", where, p.Namespace, p.Name)}, nil
		}
		s.Pods = append(s.Pods, p)
	case "":
		return nil, fmt.Errorf("%s: kind: missing", where)
	default:
		return []string{fmt.Sprintf("%s: kind %s: skipped", where, tm.Kind)}, nil
	}
	return nil, nil
}

func (s *Set) markValidated(obj any) {
	if s.prevalidated == nil {
		s.prevalidated = map[any]bool{}
	}
	s.prevalidated[obj] = true
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

// readFileBounded reads a policy file up to the size every input path
// accepts (manifest.DefaultMaxInputBytes).
func readFileBounded(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := manifest.ReadAll(f, manifest.DefaultMaxInputBytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return b, nil
}
