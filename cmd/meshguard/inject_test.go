package main

import (
	"bytes"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/meshguard/meshguard/internal/manifest"
	"github.com/meshguard/meshguard/test/conformance"
)

// installDir is Istio's injection test data (test/conformance): the
// default install's injector inputs and the golden cases.
func installDir(t *testing.T) string { return conformance.Dir(t, "injection") }

func runInject(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := newInjectCmd()
	cmd.SetArgs(args)
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	err := cmd.Execute()
	return out.String(), err
}

// TestInjectIstioctlFlags: istioctl's flag names, meshguard's older names
// (aliases) and whole ConfigMaps give the same output; an alias and its flag
// together are refused.
func TestInjectIstioctlFlags(t *testing.T) {
	d := installDir(t)
	inst := filepath.Join(d, "istio-default-install")
	app := filepath.Join(d, "cases", "hello-probes.yaml")
	cfg, values, mesh := filepath.Join(inst, "config"), filepath.Join(inst, "values"), filepath.Join(inst, "mesh")

	want, err := runInject(t, "--injectConfigFile", cfg, "--valuesFile", values, "--meshConfigFile", mesh, "-f", app)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(want, "name: istio-proxy") {
		t.Fatalf("not injected:\n%s", want)
	}
	got, err := runInject(t, "--injectConfigFile", cfg, "--values", values, "--mesh-config", mesh, "-f", app)
	if err != nil || got != want {
		t.Errorf("aliases --values/--mesh-config: err %v, same output %v", err, got == want)
	}

	tmp := t.TempDir()
	cm := func(name string, data map[string]string) string {
		b, err := yaml.Marshal(map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]string{"name": name}, "data": data})
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(tmp, name+".yaml")
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	read := func(p string) string {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	injector := cm("istio-sidecar-injector", map[string]string{"config": read(cfg), "values": read(values)})
	meshCM := cm("istio", map[string]string{"mesh": read(mesh)})
	outFile := filepath.Join(tmp, "out.yaml")
	if _, err := runInject(t, "--injectConfigFile", injector, "--valuesFile", injector, "--meshConfigFile", meshCM, "-f", app, "-o", outFile); err != nil {
		t.Fatal(err)
	}
	if got := read(outFile); got != want {
		t.Errorf("ConfigMap inputs with -o: output differs from raw keys")
	}

	_, err = runInject(t, "--valuesFile", values, "--values", values, "-f", app)
	var exit exitError
	if !asExit(err, &exit) || exit.code != 2 || !strings.Contains(exit.msg, "--valuesFile and its alias --values") {
		t.Errorf("alias conflict: %v", err)
	}
	_, err = runInject(t, "--injectConfigFile", meshCM, "-f", app)
	if !asExit(err, &exit) || exit.code != 2 || !strings.Contains(exit.msg, `has no data key "config"`) {
		t.Errorf("wrong ConfigMap: %v", err)
	}
}

// endless is an input without end (and without a newline), counting what
// was read from it.
type endless struct{ read int64 }

func (e *endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'a'
	}
	e.read += int64(len(p))
	return len(p), nil
}

// TestInjectStdinBounded: an endless -f - is refused once it passes
// --max-input-size (the bound kubeinject.InjectData's input has), not
// buffered without end.
func TestInjectStdinBounded(t *testing.T) {
	in := &endless{}
	cmd := newInjectCmd()
	cmd.SetArgs([]string{"-f", "-"})
	cmd.SetIn(in)
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	err := cmd.Execute()
	var exit exitError
	if !asExit(err, &exit) || exit.code != 2 || !strings.Contains(exit.msg, "-f -: ") || !strings.Contains(exit.msg, "input too large") {
		t.Fatalf("err = %v, want exit 2 refusing -f - as too large", err)
	}
	if in.read > manifest.DefaultMaxInputBytes+1<<20 {
		t.Errorf("read %d bytes, want at most about the %d-byte limit", in.read, manifest.DefaultMaxInputBytes)
	}
}

// TestInjectInputsBounded: the config files (--injectConfigFile, --valuesFile
// and its alias --values, --meshConfigFile) are read as -f and every other
// CLI input (readInput): bounded by --max-input-size (default
// manifest.DefaultMaxInputBytes), a directory refused, a pipe read (as
// istioctl's os.ReadFile reads `--valuesFile <(...)`) within the bound. Each
// error names the flag and the file and exits 2 (unreadable input).
func TestInjectInputsBounded(t *testing.T) {
	d := installDir(t)
	app := filepath.Join(d, "cases", "hello.yaml")
	values := filepath.Join(d, "istio-default-install", "values")
	tmp := t.TempDir()
	big := filepath.Join(tmp, "big.yaml")
	if err := os.WriteFile(big, []byte("a: "+strings.Repeat("x", manifest.DefaultMaxInputBytes)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(tmp, "pipe")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	// endlessPipe writes to the FIFO until the reader closes it.
	endlessPipe := func() {
		go func() {
			f, err := os.OpenFile(fifo, os.O_WRONLY, 0)
			if err != nil {
				return
			}
			defer f.Close()
			chunk := []byte(strings.Repeat("# filler\n", 1<<12))
			for {
				if _, err := f.Write(chunk); err != nil {
					return
				}
			}
		}()
	}
	for _, tc := range []struct {
		name string
		args []string
		pipe bool
		want []string
	}{
		{"over-size config", []string{"--injectConfigFile", big}, false,
			[]string{"--injectConfigFile " + big, "input too large", "raise it with --max-input-size"}},
		{"over-size values, alias named", []string{"--values", big}, false, []string{"--values " + big, "input too large"}},
		{"values over --max-input-size", []string{"--valuesFile", values, "--max-input-size", "1000"}, false,
			[]string{"--valuesFile " + values, "more than 1000 bytes"}},
		{"directory", []string{"--meshConfigFile", tmp}, false, []string{"--meshConfigFile " + tmp, "is a directory"}},
		{"endless pipe", []string{"--meshConfigFile", fifo}, true, []string{"--meshConfigFile " + fifo, "input too large"}},
		{"- is a file, not stdin", []string{"--valuesFile", "-"}, false, []string{"--valuesFile -: open ./-: no such file"}},
		{"over-size -f", []string{"--max-input-size", "100"}, false, []string{"-f " + app, "more than 100 bytes"}},
		{"directory -f", []string{"-f", tmp}, false, []string{"-f " + tmp, "is a directory"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.pipe {
				endlessPipe()
			}
			args := append([]string{"-f", app}, tc.args...)
			_, err := runInject(t, args...)
			var exit exitError
			if !asExit(err, &exit) || exit.code != 2 {
				t.Fatalf("err %v, want exit 2", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(exit.msg, w) {
					t.Errorf("error %q lacks %q", exit.msg, w)
				}
			}
		})
	}
	// A pipe within the bound is read (istioctl: os.ReadFile).
	valuesData, err := os.ReadFile(values)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		f, err := os.OpenFile(fifo, os.O_WRONLY, 0)
		if err != nil {
			return
		}
		defer f.Close()
		_, _ = f.Write(valuesData)
	}()
	want, err := runInject(t, "-f", app, "--valuesFile", values)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := runInject(t, "-f", app, "--valuesFile", fifo); err != nil || got != want {
		t.Errorf("--valuesFile PIPE: err %v, same output as the file %v", err, got == want)
	}
}

// TestInjectExitStatus: meshguard inject's documented exit status
// (docs/compatibility.md, Sidecar injection): 1 when a document cannot be
// injected, 2 when the command cannot run (no -f, -o not writable); notes on
// documents passed through go to stderr, never into the YAML on stdout.
func TestInjectExitStatus(t *testing.T) {
	dir := t.TempDir()
	const service = "apiVersion: v1\nkind: Service\nmetadata: {name: web}\n"
	svc := writeFile(t, dir, "svc.yaml", service)
	badPod := writeFile(t, dir, "pod.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: web, annotations: {sidecar.istio.io/interceptionMode: BOGUS}}\nspec: {containers: [{name: a, image: a}]}\n")
	for _, tc := range []struct {
		name         string
		args         []string
		code         int
		msg          string
		stdout       string
		stderrPrefix string
	}{
		{"passed through, note on stderr", []string{"-f", svc}, 0, "", service, "Warning: document 1: Service web (v1): not a kind meshguard injects"},
		{"no -f", nil, 2, "-f FILE or -f - (stdin) is required", "", ""},
		{"-o not writable", []string{"-f", svc, "-o", filepath.Join(dir, "missing", "out.yaml")}, 2, "no such file or directory", "", "Warning: "},
		{"document not injectable", []string{"-f", badPod}, 1, `annotation sidecar.istio.io/interceptionMode: "BOGUS"`, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := newRootCmd()
			cmd.SetArgs(append([]string{"inject"}, tc.args...))
			var out, errOut bytes.Buffer
			cmd.SetOut(&out)
			cmd.SetErr(&errOut)
			err := cmd.Execute()
			var exit exitError
			switch {
			case tc.code == 0 && err != nil:
				t.Fatalf("err %v, want none", err)
			case tc.code != 0 && (!asExit(err, &exit) || exit.code != tc.code || !strings.Contains(exit.msg, tc.msg)):
				t.Fatalf("err %v, want exit %d with %q", err, tc.code, tc.msg)
			}
			if out.String() != tc.stdout || !strings.HasPrefix(errOut.String(), tc.stderrPrefix) {
				t.Errorf("stdout %q, stderr %q; want stdout %q, stderr beginning %q", out.String(), errOut.String(), tc.stdout, tc.stderrPrefix)
			}
		})
	}
}

// TestInjectOutputFile: -o FILE is written whole or not at all. The input is
// read before the output is touched, so -o may name the -f file (istioctl
// kube-inject's os.Create truncates it before reading: istioctl/pkg/kubeinject
// InjectCommand); a document that cannot be injected leaves an existing
// output as it was; a symlink is written through and kept; a non-regular
// output (/dev/null, a FIFO with a reader) is written directly.
func TestInjectOutputFile(t *testing.T) {
	dir := t.TempDir()
	app := filepath.Join(installDir(t), "cases", "hello.yaml")
	want, err := runInject(t, "-f", app)
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile(app)
	if err != nil {
		t.Fatal(err)
	}
	const old = "# the previous output\n"
	t.Run("in place", func(t *testing.T) {
		p := writeFile(t, dir, "inplace.yaml", string(src))
		if err := os.Chmod(p, 0o640); err != nil {
			t.Fatal(err)
		}
		if _, err := runInject(t, "-f", p, "-o", p); err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(p); string(got) != want {
			t.Errorf("in-place output:\n%s\nwant:\n%s", got, want)
		}
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o640 {
			t.Errorf("mode after the rewrite: %v, %v; want 0640 kept", fi.Mode(), err)
		}
		assertNoTemp(t, dir)
	})
	// Modes as os.WriteFile leaves them (the process umask is 022 here): an
	// existing file keeps its mode, bits the umask would clear included; a
	// new one is 0644 less the umask.
	defer syscall.Umask(syscall.Umask(0o022))
	t.Run("mode kept past the umask", func(t *testing.T) {
		p := writeFile(t, dir, "shared.yaml", old)
		if err := os.Chmod(p, 0o666); err != nil {
			t.Fatal(err)
		}
		if _, err := runInject(t, "-f", app, "-o", p); err != nil {
			t.Fatal(err)
		}
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o666 {
			t.Errorf("mode after the rewrite: %v, %v; want 0666 kept", fi.Mode(), err)
		}
	})
	t.Run("new file", func(t *testing.T) {
		p := filepath.Join(dir, "new.yaml")
		if _, err := runInject(t, "-f", app, "-o", p); err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(p); string(got) != want {
			t.Errorf("output:\n%s\nwant:\n%s", got, want)
		}
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o644 {
			t.Errorf("new output's mode: %v, %v; want 0644 (os.WriteFile's, umask 022)", fi.Mode(), err)
		}
	})
	t.Run("failing input keeps the output", func(t *testing.T) {
		bad := writeFile(t, dir, "bad.yaml", string(src)+"---\napiVersion: v1\nkind: Pod\nmetadata: {name: web, annotations: {sidecar.istio.io/interceptionMode: BOGUS}}\nspec: {containers: [{name: a, image: a}]}\n")
		p := writeFile(t, dir, "kept.yaml", old)
		if _, err := runInject(t, "-f", bad, "-o", p); err == nil {
			t.Fatal("no error for a document that cannot be injected")
		}
		if got, _ := os.ReadFile(p); string(got) != old {
			t.Errorf("output after a failed run: %q, want %q unchanged", got, old)
		}
		assertNoTemp(t, dir)
	})
	t.Run("symlink", func(t *testing.T) {
		target := writeFile(t, dir, "target.yaml", old)
		link := filepath.Join(dir, "link.yaml")
		if err := os.Symlink(target, link); err != nil {
			t.Fatal(err)
		}
		if _, err := runInject(t, "-f", app, "-o", link); err != nil {
			t.Fatal(err)
		}
		if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
			t.Errorf("link replaced: %v, %v", fi.Mode(), err)
		}
		if got, _ := os.ReadFile(target); string(got) != want {
			t.Errorf("link target:\n%s\nwant:\n%s", got, want)
		}
	})
	// os.Create (istioctl's -o, and os.WriteFile before) writes the file
	// itself: another hard link to it sees the output, and its owner stays.
	t.Run("hard link", func(t *testing.T) {
		p := writeFile(t, dir, "linked.yaml", old)
		other := filepath.Join(dir, "other-name.yaml")
		if err := os.Link(p, other); err != nil {
			t.Fatal(err)
		}
		if _, err := runInject(t, "-f", app, "-o", p); err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(other); string(got) != want {
			t.Errorf("the other link reads:\n%s\nwant the output:\n%s", got, want)
		}
		assertNoTemp(t, dir)
	})
	t.Run("owner kept", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("needs root to give the output another owner")
		}
		p := writeFile(t, dir, "owned.yaml", old)
		if err := os.Chown(p, 4321, 4322); err != nil {
			t.Fatal(err)
		}
		if _, err := runInject(t, "-f", app, "-o", p); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st := fi.Sys().(*syscall.Stat_t); st.Uid != 4321 || st.Gid != 4322 {
			t.Errorf("owner after the rewrite %d:%d, want 4321:4322 kept", st.Uid, st.Gid)
		}
		if got, _ := os.ReadFile(p); string(got) != want {
			t.Errorf("output:\n%s\nwant:\n%s", got, want)
		}
	})
	t.Run("/dev/null", func(t *testing.T) {
		if _, err := runInject(t, "-f", app, "-o", os.DevNull); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("FIFO", func(t *testing.T) {
		fifo := filepath.Join(t.TempDir(), "out")
		if err := syscall.Mkfifo(fifo, 0o600); err != nil {
			t.Fatal(err)
		}
		got := make(chan []byte, 1)
		go func() {
			b, _ := os.ReadFile(fifo) // the reader the writer's open waits for
			got <- b
		}()
		if _, err := runInject(t, "-f", app, "-o", fifo); err != nil {
			t.Fatal(err)
		}
		if b := <-got; string(b) != want {
			t.Errorf("read from the FIFO:\n%s\nwant:\n%s", b, want)
		}
	})
}

// assertNoTemp: no temporary file is left beside the outputs.
func assertNoTemp(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("temporary file left: %s", e.Name())
		}
	}
}

// TestInjectOutputWriteFails: a write that fails halfway (here the file size
// limit, EFBIG, as a full disk gives ENOSPC) leaves the existing output
// unchanged, not truncated to what was written. The limit is set in a child
// process (it would apply to every test of this one).
func TestInjectOutputWriteFails(t *testing.T) {
	const old = "# the previous output\n"
	if out := os.Getenv("MESHGUARD_TEST_INJECT_FSIZE"); out != "" {
		signal.Ignore(syscall.SIGXFSZ) // the write fails with EFBIG instead
		if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &syscall.Rlimit{Cur: 1024, Max: 1024}); err != nil {
			t.Fatal(err)
		}
		_, err := runInject(t, "-f", filepath.Join(installDir(t), "cases", "hello.yaml"), "-o", out)
		var exit exitError
		if !asExit(err, &exit) || exit.code != 2 || !strings.Contains(exit.msg, out) {
			t.Errorf("err %v, want exit 2 naming %s", err, out)
		}
		return
	}
	dir := t.TempDir()
	out := writeFile(t, dir, "out.yaml", old)
	cmd := exec.Command(os.Args[0], "-test.run=^TestInjectOutputWriteFails$", "-test.count=1")
	cmd.Env = append(os.Environ(), "MESHGUARD_TEST_INJECT_FSIZE="+out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("child: %v\n%s", err, b)
	}
	if got, _ := os.ReadFile(out); string(got) != old {
		t.Errorf("output after a failed write: %d bytes %.60q..., want %q unchanged", len(got), got, old)
	}
	assertNoTemp(t, dir)
}
