package cluster

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// markerEnv marks kube-controller-manager, which Launch starts itself:
// markerEnv=<cluster dir> in its environment (its cmd.Env only; the
// process environment stays unchanged). kube-apiserver and etcd, which
// envtest starts in process groups of their own (Setpgid) and whose pids it
// keeps to itself, are known by their argv0: the links in <cluster dir>/bin
// (linkControlPlane). Either way KillProcesses finds them when `meshguard
// dev` must stop before envtest returned (a signal during start-up) or
// without envtest (a second Ctrl-C); a terminal's Ctrl-C does not reach them.
const markerEnv = "MESHGUARD_CLUSTER_DIR"

// controlPlaneLinks are the binaries envtest starts, through links.
var controlPlaneLinks = []string{"kube-apiserver", "etcd"}

// linkControlPlane links kube-apiserver and etcd from binDir into
// dir/bin, envtest's BinaryAssetsDirectory, which it returns absolute (the
// argv0 KillProcesses looks for).
func linkControlPlane(binDir, dir string) (string, error) {
	links, err := filepath.Abs(filepath.Join(dir, "bin"))
	if err != nil {
		return "", fmt.Errorf("control plane links: %w", err)
	}
	if err := os.MkdirAll(links, 0o700); err != nil {
		return "", fmt.Errorf("create %s: %w", links, err)
	}
	abs, err := filepath.Abs(binDir)
	if err != nil {
		return "", fmt.Errorf("control plane binaries: %w", err)
	}
	for _, name := range controlPlaneLinks {
		if err := os.Symlink(filepath.Join(abs, name), filepath.Join(links, name)); err != nil {
			return "", fmt.Errorf("link %s: %w", name, err)
		}
	}
	return links, nil
}

// KillProcesses SIGKILLs every control-plane process this process started for
// the cluster in dir (Options.Dir), with their process groups: its direct
// children exec'd as a link in dir/bin (kube-apiserver, etcd) or carrying
// the marker (kube-controller-manager). It is the stop for when there is no
// time for Stop's graceful one (a second Ctrl-C) or Launch has not returned;
// it reports how many it killed. The cluster cannot be started again
// (StartAPIServer) afterwards.
func KillProcesses(dir string) (int, error) {
	// First envtest's links: a process it starts after this fails to exec,
	// and one it started before is in /proc, exec'd as a link, when we look.
	links, err := filepath.Abs(filepath.Join(dir, "bin")) // as linkControlPlane's
	if err != nil {
		return 0, fmt.Errorf("control plane links: %w", err)
	}
	if err := os.RemoveAll(links); err != nil {
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
		if !clusterProcess(p, links, marker) {
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

// execSettle bounds how long clusterProcess waits for a child in the middle
// of execve to show its new arguments and environment.
const execSettle = time.Second

// clusterProcess: the child in procDir was exec'd as one of the links or
// carries the marker. A child in the middle of execve reads an empty
// cmdline and environ for a moment (the kernel has swapped in the new image
// but not yet laid out its arguments), and a read that spans the swap
// returns the old image's first bytes only; so the two are read twice and
// judged only when both reads agree and are not empty. A zombie (no image at
// all) is not the cluster's to kill.
func clusterProcess(procDir, links string, marker []byte) bool {
	deadline := time.Now().Add(execSettle)
	for {
		cmdline, environ, err := readImage(procDir)
		if err != nil {
			return false // gone, or not ours to read
		}
		cmdline2, environ2, err := readImage(procDir)
		if err != nil {
			return false
		}
		settled := len(cmdline)+len(environ) > 0 &&
			bytes.Equal(cmdline, cmdline2) && bytes.Equal(environ, environ2)
		if settled {
			return startedThrough(cmdline, links) || hasEnv(environ, marker)
		}
		if zombie(procDir) || time.Now().After(deadline) {
			return false
		}
		time.Sleep(time.Millisecond)
	}
}

// readImage reads a process's argv and environment from /proc.
func readImage(procDir string) (cmdline, environ []byte, err error) {
	if cmdline, err = os.ReadFile(filepath.Join(procDir, "cmdline")); err != nil {
		return nil, nil, err
	}
	environ, err = os.ReadFile(filepath.Join(procDir, "environ"))
	return cmdline, environ, err
}

// startedThrough: cmdline's argv0 is one of the links in links (the kernel
// keeps it after the link is removed).
func startedThrough(cmdline []byte, links string) bool {
	argv0, _, _ := bytes.Cut(cmdline, []byte{0})
	for _, name := range controlPlaneLinks {
		if string(argv0) == filepath.Join(links, name) {
			return true
		}
	}
	return false
}

// hasEnv: environ (a process's NUL-separated environment) holds entry
// ("NAME=value\x00").
func hasEnv(environ, entry []byte) bool {
	return bytes.Contains(append([]byte{0}, environ...), append([]byte{0}, entry...))
}

// zombie: the process has exited and waits to be reaped.
func zombie(procDir string) bool {
	stat, err := os.ReadFile(filepath.Join(procDir, "stat"))
	if err != nil {
		return true
	}
	f := statFields(stat)
	return len(f) > 0 && f[0] == "Z"
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
