package cluster

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// markerEnv marks the control-plane processes of one cluster: each carries
// markerEnv=<cluster dir> in its environment. envtest starts kube-apiserver
// and etcd in process groups of their own (Setpgid) and keeps their pids to
// itself, so a terminal's Ctrl-C does not reach them and nothing else could
// find them if `meshguard dev` had to stop before envtest returned (a
// signal during start-up) or without envtest (a second Ctrl-C).
const markerEnv = "MESHGUARD_CLUSTER_DIR"

// markerMu serializes the windows in which this process's environment
// carries a marker: envtest's exec.Command takes os.Environ() at start.
var markerMu sync.Mutex

// withMarker runs start with markerEnv=dir in the environment, so that the
// processes it starts carry it.
func withMarker(dir string, start func() error) error {
	markerMu.Lock()
	defer markerMu.Unlock()
	old, had := os.LookupEnv(markerEnv)
	if err := os.Setenv(markerEnv, dir); err != nil {
		return fmt.Errorf("mark control plane processes: %w", err)
	}
	defer func() {
		if had {
			_ = os.Setenv(markerEnv, old)
		} else {
			_ = os.Unsetenv(markerEnv)
		}
	}()
	return start()
}

// linkControlPlane links kube-apiserver and etcd from binDir into
// dir/bin, envtest's BinaryAssetsDirectory.
func linkControlPlane(binDir, dir string) (string, error) {
	links := filepath.Join(dir, "bin")
	if err := os.MkdirAll(links, 0o700); err != nil {
		return "", fmt.Errorf("create %s: %w", links, err)
	}
	abs, err := filepath.Abs(binDir)
	if err != nil {
		return "", fmt.Errorf("control plane binaries: %w", err)
	}
	for _, name := range []string{"kube-apiserver", "etcd"} {
		if err := os.Symlink(filepath.Join(abs, name), filepath.Join(links, name)); err != nil {
			return "", fmt.Errorf("link %s: %w", name, err)
		}
	}
	return links, nil
}

// KillProcesses SIGKILLs every control-plane process this process started for
// the cluster in dir (Options.Dir): kube-apiserver, etcd and
// kube-controller-manager, with their process groups. It is the stop for
// when there is no time for Stop's graceful one (a second Ctrl-C) or Launch
// has not returned; it reports how many it killed. The cluster cannot be
// started again (StartAPIServer) afterwards.
func KillProcesses(dir string) (int, error) {
	// First envtest's links: a process it starts after this fails to exec,
	// and one it started before is in /proc, marked, when we look.
	if err := os.RemoveAll(filepath.Join(dir, "bin")); err != nil {
		return 0, fmt.Errorf("remove control plane links: %w", err)
	}
	procs, err := filepath.Glob("/proc/[0-9]*")
	if err != nil {
		return 0, err
	}
	self := os.Getpid()
	marker := []byte(markerEnv + "=" + dir + "\x00")
	killed := 0
	var errs []error
	for _, p := range procs {
		pid, err := strconv.Atoi(filepath.Base(p))
		if err != nil {
			continue
		}
		ppid, pgid, ok := parentAndGroup(p)
		if !ok || ppid != self {
			continue
		}
		environ, err := os.ReadFile(filepath.Join(p, "environ"))
		if err != nil || !bytes.Contains(append([]byte{0}, environ...), append([]byte{0}, marker...)) {
			continue
		}
		target := pid
		if pgid == pid {
			target = -pid // the group: anything it started goes too
		}
		if err := syscall.Kill(target, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			errs = append(errs, fmt.Errorf("kill control plane process %d: %w", pid, err))
			continue
		}
		killed++
	}
	return killed, errors.Join(errs...)
}

// parentAndGroup reads a process's parent pid and process group from
// /proc/<pid>/stat ("pid (comm) state ppid pgrp ...", comm may hold spaces
// and parentheses: the fields follow the last ')').
func parentAndGroup(procDir string) (ppid, pgid int, ok bool) {
	stat, err := os.ReadFile(filepath.Join(procDir, "stat"))
	if err != nil {
		return 0, 0, false
	}
	fields := statFields(stat)
	if len(fields) < 3 {
		return 0, 0, false
	}
	ppid, err1 := strconv.Atoi(fields[1])
	pgid, err2 := strconv.Atoi(fields[2])
	return ppid, pgid, err1 == nil && err2 == nil
}

// statFields are the fields of /proc/<pid>/stat after "pid (comm)": state,
// ppid, pgrp, ... (comm may hold spaces and parentheses: they follow the
// last ')').
func statFields(stat []byte) []string {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(string(stat[i+1:]))
}

// ProcessGone is nil when pid has no process, or only a zombie waiting to
// be reaped, and an error naming it while it runs.
func ProcessGone(pid int) error {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if f := statFields(stat); len(f) > 0 && f[0] == "Z" {
		return nil
	}
	return fmt.Errorf("process %d still running", pid)
}
