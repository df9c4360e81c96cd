package cluster

import (
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

// TestKillProcesses: KillProcesses kills the processes this process started
// with the cluster's marker, with their process groups (envtest's
// kube-apiserver and etcd run in groups of their own, Setpgid), and nothing
// else: not another cluster's, not an unmarked child.
func TestKillProcesses(t *testing.T) {
	dir := t.TempDir()
	grandchild := filepath.Join(dir, "grandchild.pid")
	start := func(marker string, setpgid bool, script string) *exec.Cmd {
		t.Helper()
		cmd := exec.Command("sh", "-c", script)
		cmd.Env = os.Environ()
		if marker != "" {
			cmd.Env = append(cmd.Env, markerEnv+"="+marker)
		}
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: setpgid}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		})
		return cmd
	}
	leader := start(dir, true, "sleep 300 & echo $! > "+grandchild+"; exec sleep 300")
	single := start(dir, false, "exec sleep 300")
	other := start(dir+"-other", true, "exec sleep 300")
	unmarked := start("", true, "exec sleep 300")
	var gc int
	if err := Eventually(10*time.Second, func() error {
		data, err := os.ReadFile(grandchild)
		if err == nil {
			gc, err = strconv.Atoi(strings.TrimSpace(string(data)))
		}
		return err
	}); err != nil {
		t.Fatalf("grandchild pid: %v", err)
	}
	n, err := KillProcesses(dir)
	if err != nil || n != 2 {
		t.Fatalf("KillProcesses = %d, %v; want 2 killed", n, err)
	}
	for _, c := range []*exec.Cmd{leader, single} {
		err := c.Wait()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Errorf("pid %d: %v, want killed", c.Process.Pid, err)
		}
	}
	if err := Eventually(10*time.Second, func() error { return ProcessGone(gc) }); err != nil {
		t.Errorf("the group leader's child: %v", err)
	}
	for _, c := range []*exec.Cmd{other, unmarked} {
		if err := ProcessGone(c.Process.Pid); err == nil {
			t.Errorf("pid %d (not the cluster's) was killed", c.Process.Pid)
		}
	}
}

// TestKillProcessesMidExec: a marked child caught in the middle of execve
// (its new image's arguments and environment not laid out yet, read empty
// from /proc, or a read spanning the swap cut short before the marker) is
// still the cluster's. Each child execs a chain of shells,
// and KillProcesses runs as soon as they are started, so some are caught
// between images.
func TestKillProcessesMidExec(t *testing.T) {
	dir := t.TempDir()
	const children = 24
	cmds := make([]*exec.Cmd, children)
	for i := range cmds {
		cmd := exec.Command("sh", "-c", `exec sh -c 'exec sh -c "exec sh -c \"exec sleep 300\""'`)
		cmd.Env = append(os.Environ(), markerEnv+"="+dir)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		})
		cmds[i] = cmd
	}
	n, err := KillProcesses(dir)
	if err != nil || n != children {
		t.Fatalf("KillProcesses = %d, %v; want %d killed", n, err, children)
	}
	for _, c := range cmds {
		err := c.Wait()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Errorf("pid %d: %v, want killed", c.Process.Pid, err)
		}
	}
}
