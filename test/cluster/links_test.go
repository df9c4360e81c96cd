package cluster

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// fakeControlPlane writes kube-apiserver, etcd and kube-controller-manager
// into a new directory: each appends its argv0 to the returned log and then
// sleeps, keeping that argv0 (as the real binaries do); a log line is
// "<pid> <argv0>".
func fakeControlPlane(t *testing.T) (binDir, log string) {
	t.Helper()
	binDir = t.TempDir()
	log = filepath.Join(t.TempDir(), "argv0.log")
	script := "#!/bin/bash\n" +
		"[ \"$1\" = --help ] && exit 0\n" +
		"echo \"$$ $0\" >> " + log + "\n" +
		"exec -a \"$0\" sleep 300\n"
	for _, name := range []string{"kube-apiserver", "etcd", "kube-controller-manager"} {
		if err := os.WriteFile(filepath.Join(binDir, name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { // whatever a failing test left running
		data, _ := os.ReadFile(log)
		for _, line := range strings.Split(string(data), "\n") {
			pid, _, _ := strings.Cut(line, " ")
			if n, err := strconv.Atoi(pid); err == nil {
				_ = syscall.Kill(n, syscall.SIGKILL)
			}
		}
	})
	return binDir, log
}

// TestEnvironmentUsesLinks: envtest runs kube-apiserver and etcd through the
// cluster's links even when TEST_ASSET_* and KUBEBUILDER_ASSETS, which
// envtest prefers to BinaryAssetsDirectory, name other binaries.
func TestEnvironmentUsesLinks(t *testing.T) {
	other := t.TempDir()
	t.Setenv("KUBEBUILDER_ASSETS", other)
	t.Setenv("TEST_ASSET_KUBE_APISERVER", filepath.Join(other, "kube-apiserver"))
	t.Setenv("TEST_ASSET_ETCD", filepath.Join(other, "etcd"))
	dir := t.TempDir()
	links := filepath.Join(dir, "bin")
	env, err := newEnvironment(links, dir, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := env.ControlPlane.GetAPIServer().Path, filepath.Join(links, "kube-apiserver"); got != want {
		t.Errorf("kube-apiserver path = %q, want %q", got, want)
	}
	if got, want := env.ControlPlane.Etcd.Path, filepath.Join(links, "etcd"); got != want {
		t.Errorf("etcd path = %q, want %q", got, want)
	}
}

// TestAbortedLaunchKillsLinkedProcesses: with KUBEBUILDER_ASSETS and
// TEST_ASSET_ETCD naming other binaries, Launch still execs etcd through its
// link; cancelling Launch kills it (found by that argv0), while a child this
// process started meanwhile for something else survives.
func TestAbortedLaunchKillsLinkedProcesses(t *testing.T) {
	binDir, log := fakeControlPlane(t)
	decoys, decoyLog := fakeControlPlane(t)
	t.Setenv("KUBEBUILDER_ASSETS", decoys)
	t.Setenv("TEST_ASSET_ETCD", filepath.Join(decoys, "etcd"))
	dir := t.TempDir()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	launched := make(chan error, 1)
	go func() {
		c, err := Launch(ctx, Options{BinDir: binDir, Dir: dir})
		if c != nil {
			_ = c.Stop()
		}
		launched <- err
	}()
	if err := Eventually(30*time.Second, func() error {
		if _, err := os.Stat(decoyLog); err == nil {
			return nil // reported below
		}
		_, err := os.ReadFile(log)
		return err
	}); err != nil {
		t.Fatalf("fake etcd not started: %v", err)
	}
	unrelated := exec.Command("sleep", "300")
	if err := unrelated.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = unrelated.Process.Kill()
		_ = unrelated.Wait()
	})

	cancel()
	select {
	case err := <-launched:
		if !errors.Is(err, context.Canceled) || strings.Contains(err.Error(), "did not return") {
			t.Errorf("Launch = %v, want context.Canceled once its processes were killed", err)
		}
	case <-time.After(abortGrace + 10*time.Second):
		t.Fatal("Launch did not return after cancel")
	}
	data, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		pid, argv0, _ := strings.Cut(line, " ")
		if want := filepath.Join(dir, "bin", "etcd"); argv0 != want {
			t.Errorf("started as %q, want the link %q", argv0, want)
		}
		n, err := strconv.Atoi(pid)
		if err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if err := Eventually(10*time.Second, func() error { return ProcessGone(n) }); err != nil {
			t.Errorf("%s: %v", argv0, err)
		}
	}
	if _, err := os.Stat(decoyLog); err == nil {
		t.Error("a binary from KUBEBUILDER_ASSETS or TEST_ASSET_ETCD was started")
	}
	if n, err := KillProcesses(dir); err != nil || n != 0 {
		t.Errorf("after the aborted Launch, KillProcesses = %d, %v; want nothing left", n, err)
	}
	if err := ProcessGone(unrelated.Process.Pid); err == nil {
		t.Error("an unrelated child was killed")
	}
}

// TestKillProcessesByLink: a direct child exec'd as one of the cluster's
// links is killed with its group, though its environment has no marker; one
// exec'd as another cluster's link, or as the link's target, is not.
func TestKillProcessesByLink(t *testing.T) {
	binDir, _ := fakeControlPlane(t)
	dir, otherDir := t.TempDir(), t.TempDir()
	for _, d := range []string{dir, otherDir} {
		if _, err := linkControlPlane(binDir, d); err != nil {
			t.Fatal(err)
		}
	}
	start := func(path string) *exec.Cmd {
		t.Helper()
		cmd := exec.Command(path)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		})
		return cmd
	}
	apiServer := start(filepath.Join(dir, "bin", "kube-apiserver"))
	etcd := start(filepath.Join(dir, "bin", "etcd"))
	others := []*exec.Cmd{
		start(filepath.Join(otherDir, "bin", "etcd")),
		start(filepath.Join(binDir, "etcd")),
	}
	// Each has exec'd sleep under its argv0 once its cmdline says so.
	for _, c := range append([]*exec.Cmd{apiServer, etcd}, others...) {
		want := c.Path
		if err := Eventually(10*time.Second, func() error {
			data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(c.Process.Pid), "comm"))
			if err != nil || strings.TrimSpace(string(data)) != "sleep" {
				return errors.New(want + " has not exec'd sleep yet")
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	n, err := KillProcesses(dir)
	if err != nil || n != 2 {
		t.Fatalf("KillProcesses = %d, %v; want 2 killed", n, err)
	}
	for _, c := range []*exec.Cmd{apiServer, etcd} {
		err := c.Wait()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Errorf("%s: %v, want killed", c.Path, err)
		}
	}
	for _, c := range others {
		if err := ProcessGone(c.Process.Pid); err == nil {
			t.Errorf("%s (not this cluster's link) was killed", c.Path)
		}
	}
}
