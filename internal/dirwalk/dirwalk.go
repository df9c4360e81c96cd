// Package dirwalk lists the files meshguard reads from a directory input
// (the policy dir, the organisation rules dir, the user Rego dir of
// ext_authz, `validate -f DIR`), by one set of rules, so that no input path
// reads a file another one skips.
package dirwalk

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Options says which files Files lists.
type Options struct {
	// Exts are the file name extensions to list, lower case with the dot
	// (".yaml"); matched case-insensitively.
	Exts []string
	// Confine refuses a symlinked file whose target resolves outside the
	// directory (a mounted ConfigMap's "k -> ..data/k" links stay inside;
	// a link to /etc/shadow must not be read as config of a server).
	Confine bool
}

// Files lists the files under dir with one of o.Exts, as sorted paths
// relative to root, dir with its symlinks resolved: filepath.WalkDir does not
// enter a root that is a symlink, and a linked directory read as empty would
// load no policy at all (fail open). Hidden entries below the root are
// skipped (a mounted ConfigMap holds every key a second time under
// ..<timestamp>, reached through the key's own link), so each file is read
// once. A listed file that is not a regular file after following its links
// (a FIFO would block the reader for good) is an error naming it.
func Files(dir string, o Options) (root string, rel []string, err error) {
	root, err = filepath.EvalSymlinks(dir)
	if err != nil {
		return "", nil, err
	}
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == root {
			return nil
		}
		if strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() || !slices.Contains(o.Exts, strings.ToLower(filepath.Ext(p))) {
			return nil
		}
		if o.Confine && d.Type()&fs.ModeSymlink != 0 {
			if err := SymlinkInside(root, p); err != nil {
				return err
			}
		}
		st, err := os.Stat(p) // its error names p and says why (a dangling link)
		if err != nil {
			return err
		}
		if !st.Mode().IsRegular() {
			return fmt.Errorf("%s: not a regular file (%s)", p, st.Mode().Type())
		}
		r, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		rel = append(rel, r)
		return nil
	})
	if err != nil {
		return "", nil, err
	}
	slices.Sort(rel)
	return root, rel, nil
}

// SymlinkInside: a symlinked file is read only when its target resolves
// inside root (resolved), as a ConfigMap volume's "p.yaml -> ..data/p.yaml ->
// ..<timestamp>/p.yaml" links do; a link elsewhere rejects the whole load.
func SymlinkInside(root, p string) error {
	target, err := filepath.EvalSymlinks(p)
	if err != nil {
		return fmt.Errorf("%s: symlink: %w", p, err)
	}
	rel, err := filepath.Rel(root, target)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) || filepath.IsAbs(rel) {
		return fmt.Errorf("%s: symlink target %s is outside the directory %s: not read", p, target, root)
	}
	return nil
}
