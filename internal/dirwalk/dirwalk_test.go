package dirwalk

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/meshguard/meshguard/internal/manifest"
)

// mountedConfigMap lays out dir as the kubelet mounts a ConfigMap volume:
// each key a link through ..data to the real file under ..<timestamp>.
func mountedConfigMap(t *testing.T, dir string, keys ...string) {
	t.Helper()
	ts := filepath.Join(dir, "..2026_12_06_01_00_00.1")
	if err := os.Mkdir(ts, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if err := os.WriteFile(filepath.Join(ts, k), []byte(k), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(filepath.Join("..data", k), filepath.Join(dir, k)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(filepath.Base(ts), filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
}

func TestFiles(t *testing.T) {
	yaml := Options{Exts: []string{".yaml", ".rego"}, Confine: true}
	for _, tc := range []struct {
		name    string
		setup   func(t *testing.T, dir string) string // returns the dir to list
		opts    Options
		want    []string
		wantErr string
	}{{
		name: "mounted ConfigMap: each key once, from its content directory",
		setup: func(t *testing.T, dir string) string {
			mountedConfigMap(t, dir, "a.yaml", "b.rego", "c.txt")
			return dir
		},
		opts: yaml,
		want: []string{"a.yaml", "b.rego"},
	}, {
		name: "nested, upper-case extension, hidden file and directory skipped, sorted",
		setup: func(t *testing.T, dir string) string {
			for _, f := range []string{"z.YAML", "sub/y.yaml", ".hidden.yaml", ".git/x.yaml", "a.yml"} {
				write(t, filepath.Join(dir, f))
			}
			return dir
		},
		opts: yaml,
		want: []string{"sub/y.yaml", "z.YAML"},
	}, {
		// kubectl apply -f DIR and istioctl validate -f DIR read these
		// (filepath.Walk, no name filter): docs/compatibility.md.
		name: "hidden entries are not read: an editor's lock link, CI files",
		setup: func(t *testing.T, dir string) string {
			write(t, filepath.Join(dir, "p.yaml"))
			// Emacs's lock file: a link to nowhere while p.yaml is edited.
			if err := os.Symlink("user@host.1234:1765000000", filepath.Join(dir, ".#p.yaml")); err != nil {
				t.Fatal(err)
			}
			write(t, filepath.Join(dir, ".github", "workflows", "ci.yaml"))
			write(t, filepath.Join(dir, ".gitlab-ci.yml"))
			return dir
		},
		opts: Options{Exts: []string{".yaml", ".yml"}, Confine: true},
		want: []string{"p.yaml"},
	}, {
		name: "hidden entries are not read: a mounted volume's key starting with a dot",
		setup: func(t *testing.T, dir string) string {
			volumeWrite(t, dir, "..2026_12_06_01_00_00.1", map[string]string{"p.yaml": "x", ".q.yaml": "x"}, nil)
			return dir
		},
		opts: yaml,
		want: []string{"p.yaml"},
	}, {
		name: "root that is a symlink is entered (a link read as empty would load nothing)",
		setup: func(t *testing.T, dir string) string {
			write(t, filepath.Join(dir, "real", "p.yaml"))
			link := filepath.Join(dir, "link")
			if err := os.Symlink("real", link); err != nil {
				t.Fatal(err)
			}
			return link
		},
		opts: yaml,
		want: []string{"p.yaml"},
	}, {
		name: "confined: link out of the directory refused",
		setup: func(t *testing.T, dir string) string {
			write(t, filepath.Join(dir, "outside.yaml"))
			write(t, filepath.Join(dir, "in", "ok.yaml"))
			if err := os.Symlink(filepath.Join("..", "outside.yaml"), filepath.Join(dir, "in", "x.yaml")); err != nil {
				t.Fatal(err)
			}
			return filepath.Join(dir, "in")
		},
		opts:    yaml,
		wantErr: "outside the directory",
	}, {
		// The target's path relative to the root is exactly "..".
		name: "confined: link to the directory's parent refused",
		setup: func(t *testing.T, dir string) string {
			write(t, filepath.Join(dir, "in", "ok.yaml"))
			if err := os.Symlink("..", filepath.Join(dir, "in", "x.yaml")); err != nil {
				t.Fatal(err)
			}
			return filepath.Join(dir, "in")
		},
		opts:    yaml,
		wantErr: "outside the directory",
	}, {
		// The kubelet's ..data always names a timestamped directory beside
		// it (atomic_writer.go); one pointing elsewhere is not a volume.
		name: "..data pointing out of the volume refused",
		setup: func(t *testing.T, dir string) string {
			write(t, filepath.Join(dir, "other", "p.yaml"))
			vol := filepath.Join(dir, "vol")
			if err := os.Mkdir(vol, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(filepath.Join("..", "other"), filepath.Join(vol, "..data")); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(filepath.Join("..data", "p.yaml"), filepath.Join(vol, "p.yaml")); err != nil {
				t.Fatal(err)
			}
			return vol
		},
		opts:    yaml,
		wantErr: "not a directory beside it",
	}, {
		name: "not confined: link out of the directory read",
		setup: func(t *testing.T, dir string) string {
			write(t, filepath.Join(dir, "outside.yaml"))
			if err := os.Mkdir(filepath.Join(dir, "in"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(filepath.Join("..", "outside.yaml"), filepath.Join(dir, "in", "x.yaml")); err != nil {
				t.Fatal(err)
			}
			return filepath.Join(dir, "in")
		},
		opts: Options{Exts: []string{".yaml"}},
		want: []string{"x.yaml"},
	}, {
		name: "a FIFO is refused, not read (the reader would block for good)",
		setup: func(t *testing.T, dir string) string {
			if err := syscall.Mkfifo(filepath.Join(dir, "p.rego"), 0o600); err != nil {
				t.Fatalf("mkfifo: %v", err)
			}
			return dir
		},
		opts:    yaml,
		wantErr: "not a regular file",
	}, {
		name: "a dangling link is an error saying why, not \"not a regular file\"",
		setup: func(t *testing.T, dir string) string {
			if err := os.Symlink("gone.yaml", filepath.Join(dir, "p.yaml")); err != nil {
				t.Fatal(err)
			}
			return dir
		},
		opts:    Options{Exts: []string{".yaml"}},
		wantErr: "p.yaml: no such file or directory",
	}, {
		// A symlinked subdirectory was read as a file with no matching
		// extension and dropped: the policies (DENYs too) under it were never
		// loaded. One linked to a hidden directory lists
		// files read nowhere else; one linked to a visible directory lists
		// its files twice, as two links to one file do (the policy loader
		// refuses the second object of a name, naming both files).
		name: "confined: link to a directory inside is walked, under the link's name",
		setup: func(t *testing.T, dir string) string {
			write(t, filepath.Join(dir, "a.yaml"))
			write(t, filepath.Join(dir, ".shared", "deny.yaml"))
			write(t, filepath.Join(dir, ".shared", "sub", "deny2.rego"))
			write(t, filepath.Join(dir, "real", "p.yaml"))
			symlink(t, ".shared", filepath.Join(dir, "ns1"))
			symlink(t, filepath.Join("..", "real"), filepath.Join(dir, "sub", "ns2"))
			symlink(t, "ns1", filepath.Join(dir, "ns3")) // a link to a link
			return dir
		},
		opts: yaml,
		want: []string{"a.yaml", "ns1/deny.yaml", "ns1/sub/deny2.rego", "ns3/deny.yaml", "ns3/sub/deny2.rego", "real/p.yaml", "sub/ns2/p.yaml"},
	}, {
		name: "confined: link to a directory named like a file is walked",
		setup: func(t *testing.T, dir string) string {
			write(t, filepath.Join(dir, ".d", "p.yaml"))
			symlink(t, ".d", filepath.Join(dir, "x.yaml"))
			return dir
		},
		opts: yaml,
		want: []string{"x.yaml/p.yaml"},
	}, {
		name: "confined: link to a directory outside refused, naming the link",
		setup: func(t *testing.T, dir string) string {
			write(t, filepath.Join(dir, "in", "ok.yaml"))
			write(t, filepath.Join(dir, "shared", "deny.yaml"))
			symlink(t, filepath.Join("..", "shared"), filepath.Join(dir, "in", "shared"))
			return filepath.Join(dir, "in")
		},
		opts:    yaml,
		wantErr: filepath.Join("in", "shared") + ": symlink target ",
	}, {
		name: "confined: link to a directory outside refused below a link inside",
		setup: func(t *testing.T, dir string) string {
			write(t, filepath.Join(dir, "in", ".d", "ok.yaml"))
			write(t, filepath.Join(dir, "shared", "deny.yaml"))
			symlink(t, ".d", filepath.Join(dir, "in", "d"))
			symlink(t, filepath.Join("..", "..", "shared"), filepath.Join(dir, "in", ".d", "shared"))
			return filepath.Join(dir, "in")
		},
		opts:    yaml,
		wantErr: "outside the directory",
	}, {
		name: "confined: link to the directory itself is a loop, an error",
		setup: func(t *testing.T, dir string) string {
			write(t, filepath.Join(dir, "p.yaml"))
			symlink(t, ".", filepath.Join(dir, "loop"))
			return dir
		},
		opts:    yaml,
		wantErr: "loop: a link to " + "",
	}, {
		name: "confined: link to an ancestor is a loop, an error",
		setup: func(t *testing.T, dir string) string {
			write(t, filepath.Join(dir, "a", "b", "p.yaml"))
			symlink(t, "..", filepath.Join(dir, "a", "b", "up"))
			return dir
		},
		opts:    yaml,
		wantErr: "a directory holding the link (a loop)",
	}, {
		name: "confined: two links to each other's directory are a loop, an error",
		setup: func(t *testing.T, dir string) string {
			write(t, filepath.Join(dir, "a", "p.yaml"))
			write(t, filepath.Join(dir, "b", "q.yaml"))
			symlink(t, filepath.Join("..", "b"), filepath.Join(dir, "a", "x"))
			symlink(t, filepath.Join("..", "a"), filepath.Join(dir, "b", "y"))
			return dir
		},
		opts:    yaml,
		wantErr: "(a loop)",
	}, {
		name: "confined: a link to itself is an error",
		setup: func(t *testing.T, dir string) string {
			symlink(t, "self", filepath.Join(dir, "self"))
			return dir
		},
		opts:    yaml,
		wantErr: "too many levels of symbolic links",
	}, {
		// It cannot be told from a link to a directory not mounted yet.
		name: "a dangling link with any name is an error, not skipped",
		setup: func(t *testing.T, dir string) string {
			write(t, filepath.Join(dir, "p.yaml"))
			symlink(t, "/nonexistent-meshguard-policies", filepath.Join(dir, "ns1"))
			return dir
		},
		opts:    Options{Exts: []string{".yaml"}},
		wantErr: "ns1: no such file or directory",
	}, {
		// kubectl apply -f DIR and istioctl validate -f DIR walk with
		// filepath.Walk, which does not follow the link: they skip it
		// unseen (k8s.io/cli-runtime pkg/resource/visitor.go
		// ExpandPathsToFileVisitors; Istio: istioctl/pkg/validate/validate.go
		// validateFiles). Skipping drops its objects unchecked: an error.
		name: "not confined: link to a directory refused, naming the link",
		setup: func(t *testing.T, dir string) string {
			write(t, filepath.Join(dir, "in", "ok.yaml"))
			write(t, filepath.Join(dir, "shared", "deny.yaml"))
			symlink(t, filepath.Join("..", "shared"), filepath.Join(dir, "in", "shared"))
			return filepath.Join(dir, "in")
		},
		opts:    Options{Exts: []string{".yaml"}},
		wantErr: filepath.Join("in", "shared") + ": a link to the directory ",
	}, {
		name: "not confined: link to a directory inside refused too",
		setup: func(t *testing.T, dir string) string {
			write(t, filepath.Join(dir, ".d", "ok.yaml"))
			symlink(t, ".d", filepath.Join(dir, "d"))
			return dir
		},
		opts:    Options{Exts: []string{".yaml"}},
		wantErr: "d: a link to the directory ",
	}, {
		// atomic_writer.go createUserVisibleFiles links a key's first path
		// element: "sub -> ..data/sub" is a directory link; the volume is
		// read from its content directory, where sub is a directory.
		name: "mounted volume with a key in a subdirectory: its directory link",
		setup: func(t *testing.T, dir string) string {
			ts := filepath.Join(dir, "..2026_12_06_01_00_00.1")
			write(t, filepath.Join(ts, "sub", "p.yaml"))
			write(t, filepath.Join(ts, "q.yaml"))
			symlink(t, filepath.Base(ts), filepath.Join(dir, "..data"))
			symlink(t, filepath.Join("..data", "sub"), filepath.Join(dir, "sub"))
			symlink(t, filepath.Join("..data", "q.yaml"), filepath.Join(dir, "q.yaml"))
			return dir
		},
		opts: yaml,
		want: []string{"q.yaml", "sub/p.yaml"},
	}, {
		name:    "missing directory",
		setup:   func(t *testing.T, dir string) string { return filepath.Join(dir, "nope") },
		opts:    yaml,
		wantErr: "no such file",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := tc.setup(t, t.TempDir())
			root, got, err := Files(dir, tc.opts)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Files = %v, %v; want an error containing %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for i := range got {
				got[i] = filepath.ToSlash(got[i])
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("Files = %q, want %q", got, tc.want)
			}
			want, _ := filepath.EvalSymlinks(dir)
			if data, err := filepath.EvalSymlinks(filepath.Join(dir, "..data")); err == nil {
				want = data // a mounted volume: its content directory
			}
			if root != want {
				t.Errorf("root = %s, want %s", root, want)
			}
		})
	}
}

// volumeWrite writes payload into dir as the kubelet's AtomicWriter.Write
// does (pkg/volume/util/atomic_writer.go): a new ..<timestamp> directory, a
// link "key -> ..data/key" for each new key, then ..data swapped to the new
// directory by renaming a new link over it. The old directory is kept (the
// kubelet removes it last). before runs just before the swap.
func volumeWrite(t *testing.T, dir, ts string, payload map[string]string, before func()) {
	t.Helper()
	if err := os.Mkdir(filepath.Join(dir, ts), 0o755); err != nil {
		t.Fatal(err)
	}
	for k, v := range payload {
		if err := os.WriteFile(filepath.Join(dir, ts, k), []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Lstat(filepath.Join(dir, k)); err == nil {
			continue
		}
		if err := os.Symlink(filepath.Join("..data", k), filepath.Join(dir, k)); err != nil {
			t.Fatal(err)
		}
	}
	if before != nil {
		before()
	}
	if err := os.Symlink(ts, filepath.Join(dir, "..data_tmp")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
}

// TestFilesOneVolumeVersion: files read relative to the root Files returns
// are all of the volume version current at the listing, even when the
// kubelet swaps ..data between two reads (they were read through each key's
// link, so a load could enforce one policy of the old ConfigMap and another
// of the new), and a listing between the new keys' links and the swap is not
// an error (the new link's ..data/key did not exist yet).
func TestFilesOneVolumeVersion(t *testing.T) {
	dir := t.TempDir()
	opts := Options{Exts: []string{".yaml"}, Confine: true}
	volumeWrite(t, dir, "..2026_12_06_01_00_00.1", map[string]string{"a.yaml": "v1", "b.yaml": "v1"}, nil)
	var root string
	var rel []string
	volumeWrite(t, dir, "..2026_12_06_01_00_01.2", map[string]string{"a.yaml": "v2", "b.yaml": "v2", "c.yaml": "v2"}, func() {
		var err error
		if root, rel, err = Files(dir, opts); err != nil {
			t.Fatalf("listed between the new links and the swap: %v", err)
		}
	})
	if !slices.Equal(rel, []string{"a.yaml", "b.yaml"}) {
		t.Fatalf("Files = %q, want the first version's keys", rel)
	}
	for _, r := range rel {
		if b, err := os.ReadFile(filepath.Join(root, r)); err != nil || string(b) != "v1" {
			t.Errorf("%s after the swap = %q, %v; want the listed version v1", r, b, err)
		}
	}
	root, rel, err := Files(dir, opts)
	if err != nil || !slices.Equal(rel, []string{"a.yaml", "b.yaml", "c.yaml"}) {
		t.Fatalf("after the swap: Files = %q, %v", rel, err)
	}
	if b, err := os.ReadFile(filepath.Join(root, "c.yaml")); err != nil || string(b) != "v2" {
		t.Errorf("c.yaml = %q, %v; want v2", b, err)
	}
	// A visible entry that is not a key's link would not be read: an error.
	write(t, filepath.Join(dir, "extra.yaml"))
	if _, _, err := Files(dir, opts); err == nil || !strings.Contains(err.Error(), "extra.yaml: not a link to ..data/extra.yaml") {
		t.Errorf("regular file beside ..data: %v", err)
	}
}

// TestFilesTotalBound: a directory input is bounded as a whole, in files
// and in bytes, naming the directory.
func TestFilesTotalBound(t *testing.T) {
	opts := Options{Exts: []string{".yaml"}}
	dir := t.TempDir()
	for i := range MaxFiles {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%05d.yaml", i)), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if _, rel, err := Files(dir, opts); err != nil || len(rel) != MaxFiles {
		t.Fatalf("%d files: %d listed, %v", MaxFiles, len(rel), err)
	}
	write(t, filepath.Join(dir, "last.yaml"))
	if _, _, err := Files(dir, opts); !errors.Is(err, manifest.ErrTooLarge) || !strings.Contains(err.Error(), dir+": more than 10000 files") {
		t.Errorf("%d files: %v", MaxFiles+1, err)
	}

	dir = t.TempDir()
	// Sparse files: their size is what counts, not the disk they use.
	for i, size := range []int64{MaxTotalBytes / 2, MaxTotalBytes / 2} {
		f, err := os.Create(filepath.Join(dir, fmt.Sprintf("%d.yaml", i)))
		if err == nil {
			err = f.Truncate(size)
			f.Close()
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := Files(dir, opts); err != nil {
		t.Fatalf("%d bytes: %v", MaxTotalBytes, err)
	}
	write(t, filepath.Join(dir, "2.yaml"))
	if _, _, err := Files(dir, opts); !errors.Is(err, manifest.ErrTooLarge) || !strings.Contains(err.Error(), dir+": the files to read add up to more than 67108864 bytes") {
		t.Errorf("%d bytes: %v", MaxTotalBytes+1, err)
	}
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

func write(t *testing.T, p string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestFilesVolumeSwapIsNotExist: a listing racing the kubelet's update of a
// mounted volume (AtomicWriter.Write: new content directory, new keys'
// links, ..data swapped, old keys' links removed, old content directory
// removed) fails, if at all, with an error wrapping fs.ErrNotExist, which
// reload.Store.Update retries: the content directory ..data named, or a
// key's link listed, can be gone by the time it is checked.
func TestFilesVolumeSwapIsNotExist(t *testing.T) {
	dir := t.TempDir()
	opts := Options{Exts: []string{".yaml"}, Confine: true}
	volumeWrite(t, dir, "..0", map[string]string{"a.yaml": "x", "k0.yaml": "x"}, nil)
	done := make(chan struct{})
	stop := make(chan struct{})
	go func() {
		defer close(done)
		for i := 1; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			ts := fmt.Sprintf("..%d", i)
			if err := os.Mkdir(filepath.Join(dir, ts), 0o755); err != nil {
				t.Error(err)
				return
			}
			key := fmt.Sprintf("k%d.yaml", i%2)
			for _, k := range []string{"a.yaml", key} {
				if err := os.WriteFile(filepath.Join(dir, ts, k), []byte("x"), 0o600); err != nil {
					t.Error(err)
					return
				}
			}
			if err := os.Symlink(filepath.Join("..data", key), filepath.Join(dir, key)); err != nil {
				t.Error(err)
				return
			}
			if err := os.Symlink(ts, filepath.Join(dir, "..data_tmp")); err != nil {
				t.Error(err)
				return
			}
			if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
				t.Error(err)
				return
			}
			old := fmt.Sprintf("k%d.yaml", (i+1)%2)
			if err := os.Remove(filepath.Join(dir, old)); err != nil {
				t.Error(err)
				return
			}
			if err := os.RemoveAll(filepath.Join(dir, fmt.Sprintf("..%d", i-1))); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	defer func() { close(stop); <-done }()
	for range 2000 {
		if _, _, err := Files(dir, opts); err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("listing during a volume update: %v (does not wrap fs.ErrNotExist, so it is not retried)", err)
		}
	}
}

// A file where a directory belongs is an error, not an empty directory: a
// DENY-all policy file given as --policy-dir had loaded no policy and every
// request was allowed. A link to a file is the same.
func TestFilesRefusesAFile(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "deny.yaml")
	if err := os.WriteFile(f, []byte("kind: AuthorizationPolicy\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(f, link); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{f, link} {
		root, rel, err := Files(p, Options{Exts: []string{".yaml"}})
		if err == nil || !strings.Contains(err.Error(), "not a directory") || !strings.Contains(err.Error(), p) {
			t.Errorf("Files(%s) = %q, %v, %v; want a not-a-directory error naming it", p, root, rel, err)
		}
	}
}

// TestFilesLinkedDirectoriesBound: links to links without a loop (each
// level's two links to the next level) double the directories walked at
// each level; the walk is bounded as the files are, naming the directory.
func TestFilesLinkedDirectoriesBound(t *testing.T) {
	dir := t.TempDir()
	const levels = 15 // 2+4+...+2^15 directories entered, over MaxFiles
	for i := range levels {
		from := dir
		if i > 0 {
			from = filepath.Join(dir, fmt.Sprintf(".d%d", i))
		}
		for _, l := range []string{"a", "b"} {
			symlink(t, filepath.Join(dir, fmt.Sprintf(".d%d", i+1)), filepath.Join(from, l))
		}
	}
	write(t, filepath.Join(dir, fmt.Sprintf(".d%d", levels), "p.yaml"))
	_, rel, err := Files(dir, Options{Exts: []string{".yaml"}, Confine: true})
	if !errors.Is(err, manifest.ErrTooLarge) || !strings.Contains(err.Error(), dir+": more than 10000 directories to read through links") {
		t.Fatalf("Files = %d files, %v; want the bound on directories entered through links", len(rel), err)
	}
	// Two levels are walked whole: each path to the file listed.
	dir = t.TempDir()
	for i := range 2 {
		from := dir
		if i > 0 {
			from = filepath.Join(dir, fmt.Sprintf(".d%d", i))
		}
		for _, l := range []string{"a", "b"} {
			symlink(t, filepath.Join(dir, fmt.Sprintf(".d%d", i+1)), filepath.Join(from, l))
		}
	}
	write(t, filepath.Join(dir, ".d2", "p.yaml"))
	if _, rel, err := Files(dir, Options{Exts: []string{".yaml"}, Confine: true}); err != nil || !slices.Equal(rel, []string{"a/a/p.yaml", "a/b/p.yaml", "b/a/p.yaml", "b/b/p.yaml"}) {
		t.Errorf("Files = %q, %v", rel, err)
	}
}
