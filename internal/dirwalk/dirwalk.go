// Package dirwalk lists the files meshguard reads from a directory input
// (the policy dir, the organisation rules dir, the user Rego dir of
// ext_authz, `validate -f DIR`), by one set of rules, so that no input path
// reads a file another one skips.
package dirwalk

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/meshguard/meshguard/internal/manifest"
)

// Options says which files Files lists.
type Options struct {
	// Exts are the file name extensions to list, lower case with the dot
	// (".yaml"); matched case-insensitively.
	Exts []string
	// Confine refuses a symlinked file or directory whose target resolves
	// outside the directory (a mounted ConfigMap's "k -> ..data/k" links
	// stay inside; a link to /etc/shadow must not be read as config of a
	// server), and walks a linked directory inside it. Without it a file
	// link may point anywhere and a directory link is an error (dirLink).
	// Checked when the directory is listed: whoever can swap links in it
	// between the listing and the reads can write the config anyway.
	Confine bool
}

// MaxFiles and MaxTotalBytes bound one directory input as a whole, as each
// file is bounded by its reader (manifest.DefaultMaxInputBytes,
// orgrules.MaxModuleBytes): every listed file is read and its objects kept
// for the load, so without them a directory of many files at the per-file
// limit had no memory bound. A listing over either is an error naming the
// directory (wrapping manifest.ErrTooLarge).
const (
	MaxFiles      = 10_000
	MaxTotalBytes = 64 << 20
)

// dataDir is the link a kubelet volume (ConfigMap, Secret, projected)
// points at its current timestamped content directory
// (k8s.io/kubernetes pkg/volume/util/atomic_writer.go).
const dataDir = "..data"

// Files lists the files under dir with one of o.Exts, as sorted paths
// relative to root, dir with its symlinks resolved: filepath.WalkDir does not
// enter a root that is a symlink, and a linked directory read as empty would
// load no policy at all (fail open). Hidden entries below the root are
// skipped, so each file is read once and editor or VCS leftovers (".#p.yaml",
// ".git/") are not read (docs/compatibility.md). A listed file that is not a
// regular file after following its links (a FIFO would block the reader for
// good) is an error naming it. A link to a directory is never skipped: it is
// walked, its files listed under the link's name, or is an error naming it
// (dirLink); so is a dangling link, whatever its name.
//
// A directory holding a "..data" link is a kubelet volume: root is then the
// content directory "..data" points at when listed, which the kubelet never
// changes (an update writes a new one and swaps the link), so a load that
// reads every file relative to root sees one version of the volume, never
// one file of the old and another of the new. Its content directory is
// removed after the swap: a read then fails with fs.ErrNotExist, and
// reload.Store.Update builds once more against the new content.
func Files(dir string, o Options) (root string, rel []string, err error) {
	root, err = filepath.EvalSymlinks(dir)
	if err != nil {
		return "", nil, err
	}
	if root, err = volumeContent(root); err != nil {
		return "", nil, err
	}
	// WalkDir lists a file given as the root as a directory holding nothing:
	// a policy file named where its directory belongs would load no policy
	// (every request allowed), a rules file no rule.
	if st, err := os.Stat(root); err != nil {
		return "", nil, err
	} else if !st.IsDir() {
		return "", nil, fmt.Errorf("%s: not a directory", dir)
	}
	var (
		total  int64
		linked int // directories entered through a link
	)
	// Links to links multiply the directories walked (a DAG of them,
	// without a loop, doubles them at each level): bounded.
	enter := func() error {
		if linked++; linked > MaxFiles {
			return fmt.Errorf("%w: %s: more than %d directories to read through links (the limit of a directory input)", manifest.ErrTooLarge, dir, MaxFiles)
		}
		return nil
	}
	// walk lists the files under from, a directory with its links resolved,
	// as prefix/<path under from>. held are the directories holding the
	// links walked to reach from (dirLink).
	var walk func(from, prefix string, held []string) error
	walk = func(from, prefix string, held []string) error {
		return filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if p == from {
				return nil
			}
			if strings.HasPrefix(d.Name(), ".") {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			r, err := filepath.Rel(from, p)
			if err != nil {
				return err
			}
			r = filepath.Join(prefix, r)
			if d.IsDir() && prefix != "" {
				if err := enter(); err != nil {
					return err
				}
			}
			if d.Type()&fs.ModeSymlink != 0 {
				// WalkDir reports a link as what it is, not what it points
				// to: a link to a directory was a file with no matching
				// extension, dropped with every policy under it. A
				// dangling link is an error too: it cannot be told from a
				// link to a directory not there (yet).
				st, err := os.Stat(p) // its error names p and says why
				if err != nil {
					return err
				}
				if st.IsDir() {
					target, err := dirLink(root, p, o.Confine, held)
					if err != nil {
						return err
					}
					if err := enter(); err != nil {
						return err
					}
					return walk(target, r, append(slices.Clip(held), filepath.Dir(p)))
				}
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
			if total += st.Size(); total > MaxTotalBytes {
				return fmt.Errorf("%w: %s: the files to read add up to more than %d bytes (the limit of a directory input)", manifest.ErrTooLarge, dir, MaxTotalBytes)
			}
			if len(rel) == MaxFiles {
				return fmt.Errorf("%w: %s: more than %d files to read (the limit of a directory input)", manifest.ErrTooLarge, dir, MaxFiles)
			}
			rel = append(rel, r)
			return nil
		})
	}
	err = walk(root, "", nil)
	if err != nil {
		return "", nil, err
	}
	slices.Sort(rel)
	return root, rel, nil
}

// dirLink is the directory the link p points to, p being under root (both
// with their links resolved), walked under the link's name. Confined, it must resolve inside
// root (SymlinkInside: a link elsewhere rejects the load, as a file's does)
// and must not hold p nor any of held, the directories holding the links
// walked to reach p: walking it would reach the same link again, for good.
// Not confined (`validate -f DIR`, as `kubectl apply -f DIR`), a directory
// link is an error: kubectl and istioctl walk with filepath.Walk, which does
// not follow it, so its files are skipped unseen there; following it would
// check objects they do not apply, skipping it would hide the ones it holds.
func dirLink(root, p string, confine bool, held []string) (string, error) {
	target, err := filepath.EvalSymlinks(p)
	if err != nil {
		return "", fmt.Errorf("%s: symlink: %w", p, err)
	}
	if !confine {
		return "", fmt.Errorf("%s: a link to the directory %s: not read (kubectl apply -f and istioctl validate -f do not follow it); name the directory with its own -f", p, target)
	}
	// The target resolved once is the one checked and walked: resolving
	// the link again could see it swapped in between.
	if err := targetInside(root, p, target); err != nil {
		return "", err
	}
	for _, h := range append(slices.Clip(held), filepath.Dir(p)) {
		if h == target || strings.HasPrefix(h, target+string(filepath.Separator)) {
			return "", fmt.Errorf("%s: a link to %s, a directory holding the link (a loop): not read", p, target)
		}
	}
	return target, nil
}

// volumeContent is the content directory of root when root is a kubelet
// volume (it holds a "..data" link), else root. Every visible entry of such
// a volume is a link "name -> ..data/name" (createUserVisibleFiles); anything
// else there would not be read, so it is an error rather than skipped.
func volumeContent(root string) (string, error) {
	link := filepath.Join(root, dataDir)
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		return root, nil
	}
	content, err := filepath.EvalSymlinks(link)
	if err != nil {
		return "", fmt.Errorf("%s: %w", link, err)
	}
	// The kubelet removes the old content directory, and the links of keys
	// no longer in the volume, right after a swap: a listing racing it wraps
	// fs.ErrNotExist, so reload.Store.Update reads the new content.
	fi, err := os.Stat(content)
	if err != nil {
		return "", fmt.Errorf("%s: %w", link, err)
	}
	if !fi.IsDir() || filepath.Dir(content) != root {
		return "", fmt.Errorf("%s: points to %s, not a directory beside it as in a mounted volume", link, content)
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		return "", err
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		p := filepath.Join(root, e.Name())
		t, err := os.Readlink(p)
		if errors.Is(err, fs.ErrNotExist) {
			return "", err // names p
		}
		if err != nil || t != filepath.Join(dataDir, e.Name()) {
			return "", fmt.Errorf("%s: not a link to %s: a directory with %s is read as a mounted volume, whose every key is such a link", p, filepath.Join(dataDir, e.Name()), dataDir)
		}
	}
	return content, nil
}

// SymlinkInside: a symlinked file is read only when its target resolves
// inside root (resolved), as a ConfigMap volume's "p.yaml -> ..data/p.yaml ->
// ..<timestamp>/p.yaml" links do; a link elsewhere rejects the whole load.
func SymlinkInside(root, p string) error {
	target, err := filepath.EvalSymlinks(p)
	if err != nil {
		return fmt.Errorf("%s: symlink: %w", p, err)
	}
	return targetInside(root, p, target)
}

// targetInside reports whether target, the resolved link p, is inside root.
func targetInside(root, p, target string) error {
	rel, err := filepath.Rel(root, target)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) || filepath.IsAbs(rel) {
		return fmt.Errorf("%s: symlink target %s is outside the directory %s: not read", p, target, root)
	}
	return nil
}
