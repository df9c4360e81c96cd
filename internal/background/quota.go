package background

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strconv"
	"strings"
)

// cpuQuota describes the CPU bandwidth limit on this process's cgroup or
// one of its ancestors ("" when there is none), as the Go runtime's own
// GOMAXPROCS default reads it (cgroup v2 cpu.max, v1 cpu.cfs_quota_us).
func cpuQuota() (string, error) { return findQuota(os.DirFS("/")) }

// Bounds on what findQuota reads: a line of /proc/self/cgroup or
// /proc/self/mountinfo (the runtime's ParseSize: four escaped PATH_MAX), one
// of those files whole, and a quota file (the runtime reads 64 bytes).
const (
	maxProcLine  = 64 << 10
	maxProcFile  = 8 << 20
	maxQuotaFile = 64
)

// findQuota finds the process's CPU cgroup and the mount that holds it the
// way the Go runtime does for its GOMAXPROCS default (GOROOT
// src/internal/runtime/cgroup/cgroup.go: parseCPUCgroup, parseCPUMount), in
// root ("/" but for tests), then reads the quota file of that cgroup and of
// each ancestor within the mount (the runtime reads the cgroup's own only: an
// ancestor's limit applies too); a missing file is no quota. No cgroup, or
// none mounted, is no quota, as for the runtime.
func findQuota(root fs.FS) (string, error) {
	cg, v1, err := cpuCgroup(root)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil // no cgroups (not Linux): no quota
	}
	if err != nil || cg == "" {
		return "", err
	}
	mnt, rel, err := cgroupMount(root, cg, v1)
	if err != nil || mnt == "" {
		return "", err
	}
	file := "cpu.max"
	if v1 {
		file = "cpu.cfs_quota_us"
	}
	for dir := rel; ; dir = path.Dir(dir) {
		f := path.Join(mnt, dir, file)
		v, err := readQuotaFile(root, f)
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return "", err
		default:
			limited, err := quotaSet(file, v)
			if err != nil {
				return "", fmt.Errorf("%s: %w", f, err)
			}
			if limited {
				return f + ": " + v, nil
			}
		}
		if dir == "/" {
			return "", nil
		}
	}
}

// cpuCgroup is the process's CPU cgroup in /proc/self/cgroup
// (hierarchy-ID:controllers:path): the v1 hierarchy with the cpu controller,
// or else the v2 one (ID 0); "" for neither.
func cpuCgroup(root fs.FS) (cg string, v1 bool, err error) {
	err = eachLine(root, "/proc/self/cgroup", func(line string) (bool, error) {
		id, rest, ok1 := strings.Cut(line, ":")
		controllers, p, ok2 := strings.Cut(rest, ":")
		if !ok1 || !ok2 || !strings.HasPrefix(p, "/") {
			return false, fmt.Errorf("line %q: want hierarchy-ID:controllers:/path", line)
		}
		switch {
		case id == "0":
			cg = p // unless a v1 line has the cpu controller
		case hasController(controllers, "cpu"):
			cg, v1 = p, true
			return true, nil
		}
		return false, nil
	})
	return cg, v1, err
}

// cgroupMount finds in /proc/self/mountinfo the first mount of cg's
// hierarchy (cgroup2, or cgroup with the cpu option for v1) whose root
// contains cg, and returns its mount point and cg's path below it, "/"
// for the mount point itself; "" when there is none.
func cgroupMount(root fs.FS, cg string, v1 bool) (mnt, rel string, err error) {
	err = eachLine(root, "/proc/self/mountinfo", func(line string) (bool, error) {
		// 36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
		// (proc_pid_mountinfo(5)): paths have their spaces escaped.
		head, tail, ok := strings.Cut(line, " - ")
		f := strings.Split(head, " ")
		fstype, rest, ok2 := strings.Cut(tail, " ")
		if !ok || !ok2 || len(f) < 6 {
			return false, fmt.Errorf("line %q: want ID parent major:minor root mount-point options ... - type source options", line)
		}
		_, opts, _ := strings.Cut(rest, " ")
		if v1 && (fstype != "cgroup" || !hasController(opts, "cpu")) || !v1 && fstype != "cgroup2" {
			return false, nil
		}
		mroot, err := unescapeMountPath(f[3])
		point := ""
		if err == nil {
			point, err = unescapeMountPath(f[4])
		}
		if err != nil {
			return false, fmt.Errorf("line %q: %w", line, err)
		}
		if !strings.HasPrefix(mroot, "/") || !strings.HasPrefix(point, "/") {
			return false, fmt.Errorf("line %q: root and mount point must be absolute", line)
		}
		below, ok := cutPathPrefix(cg, mroot)
		// A cgroup outside the process's cgroup namespace ("/../x") cannot
		// be reached through this mount.
		if !ok || below == "/.." || strings.HasPrefix(below, "/../") {
			return false, nil
		}
		mnt, rel = point, path.Clean("/"+below)
		return true, nil
	})
	if err != nil {
		return "", "", err
	}
	return mnt, rel, nil
}

// cutPathPrefix is p less prefix when prefix is p or one of its ancestors.
func cutPathPrefix(p, prefix string) (string, bool) {
	if prefix == "/" {
		return p, true
	}
	rest, ok := strings.CutPrefix(p, prefix)
	return rest, ok && (rest == "" || rest[0] == '/')
}

// unescapeMountPath undoes the kernel's octal escapes in a mountinfo path
// (show_path: "\040" for a space, likewise tab, newline and backslash).
func unescapeMountPath(s string) (string, error) {
	if !strings.Contains(s, `\`) {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			b.WriteByte(s[i])
			continue
		}
		if i+3 >= len(s) {
			return "", fmt.Errorf("path %q: truncated escape", s)
		}
		c, err := strconv.ParseUint(s[i+1:i+4], 8, 8)
		if err != nil {
			return "", fmt.Errorf("path %q: bad escape %q", s, s[i:i+4])
		}
		b.WriteByte(byte(c))
		i += 3
	}
	return b.String(), nil
}

// eachLine calls fn on each line of the file name (absolute) in root until
// fn returns true, reading at most maxProcFile bytes in lines of at most
// maxProcLine.
func eachLine(root fs.FS, name string, fn func(line string) (bool, error)) error {
	f, err := root.Open(fsPath(name))
	if err != nil {
		return err
	}
	defer f.Close()
	r := bufio.NewReaderSize(io.LimitReader(f, maxProcFile+1), maxProcLine)
	for n := 0; ; {
		line, err := r.ReadSlice('\n')
		n += len(line)
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			return fmt.Errorf("%s: a line is longer than %d bytes", name, maxProcLine)
		case n > maxProcFile:
			return fmt.Errorf("%s: longer than %d bytes", name, maxProcFile)
		case err != nil && err != io.EOF:
			return fmt.Errorf("%s: %w", name, err)
		}
		if len(line) > 0 {
			stop, ferr := fn(strings.TrimSuffix(string(line), "\n"))
			if ferr != nil {
				return fmt.Errorf("%s: %w", name, ferr)
			}
			if stop {
				return nil
			}
		}
		if err == io.EOF {
			return nil
		}
	}
}

// readQuotaFile is the content of a quota file, at most maxQuotaFile bytes,
// without surrounding space.
func readQuotaFile(root fs.FS, name string) (string, error) {
	f, err := root.Open(fsPath(name))
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxQuotaFile+1))
	if err != nil {
		return "", fmt.Errorf("%s: %w", name, err)
	}
	if len(b) > maxQuotaFile {
		return "", fmt.Errorf("%s: longer than %d bytes", name, maxQuotaFile)
	}
	return strings.TrimSpace(string(b)), nil
}

// fsPath is the absolute path p as an fs.FS name.
func fsPath(p string) string {
	if p = strings.TrimPrefix(path.Clean(p), "/"); p == "" {
		return "."
	}
	return p
}

func hasController(list, name string) bool {
	for _, c := range strings.Split(list, ",") {
		if c == name {
			return true
		}
	}
	return false
}

// quotaSet: cpu.max is "max PERIOD" or "QUOTA PERIOD"; cpu.cfs_quota_us is
// -1 (or any negative number) or the quota (the runtime's parseV2Limit,
// parseV1Number).
func quotaSet(file, v string) (bool, error) {
	if file == "cpu.max" {
		q, p, ok := strings.Cut(v, " ")
		if !ok {
			return false, fmt.Errorf("%q: want QUOTA PERIOD", v)
		}
		if q == "max" {
			return false, nil
		}
		_, err1 := strconv.ParseInt(q, 10, 64)
		_, err2 := strconv.ParseInt(p, 10, 64)
		if err1 != nil || err2 != nil {
			return false, fmt.Errorf("%q: want QUOTA PERIOD", v)
		}
		return true, nil
	}
	q, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return false, fmt.Errorf("%q: want a number of microseconds", v)
	}
	return q >= 0, nil
}
