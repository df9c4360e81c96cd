package background

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"
)

// cpuQuota describes the CPU bandwidth limit on this process's cgroup or
// one of its ancestors ("" when there is none), as the Go runtime's own
// GOMAXPROCS default reads it (cgroup v2 cpu.max, v1 cpu.cfs_quota_us).
func cpuQuota() (string, error) {
	b, err := os.ReadFile("/proc/self/cgroup")
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil // no cgroups (not Linux): no quota
	}
	if err != nil {
		return "", err
	}
	return findQuota(string(b), os.ReadFile)
}

// cgroupV1CPU: where the v1 cpu controller is commonly mounted.
var cgroupV1CPU = []string{"/sys/fs/cgroup/cpu", "/sys/fs/cgroup/cpu,cpuacct", "/sys/fs/cgroup/cpuacct,cpu"}

// findQuota reads, for each cgroup of /proc/self/cgroup's content, the
// quota files of the cgroup and its ancestors; a missing file is no quota.
func findQuota(procSelfCgroup string, read func(string) ([]byte, error)) (string, error) {
	for _, line := range strings.Split(strings.TrimSpace(procSelfCgroup), "\n") {
		id, rest, ok1 := strings.Cut(line, ":")
		controllers, cg, ok2 := strings.Cut(rest, ":")
		if !ok1 || !ok2 {
			return "", fmt.Errorf("/proc/self/cgroup line %q: want id:controllers:path", line)
		}
		var roots []string
		var file string
		switch {
		case id == "0" && controllers == "":
			roots, file = []string{"/sys/fs/cgroup", "/sys/fs/cgroup/unified"}, "cpu.max"
		case hasController(controllers, "cpu"):
			roots, file = cgroupV1CPU, "cpu.cfs_quota_us"
		default:
			continue
		}
		for _, root := range roots {
			for dir := path.Clean("/" + cg); ; dir = path.Dir(dir) {
				f := path.Join(root, dir, file)
				b, err := read(f)
				switch {
				case errors.Is(err, fs.ErrNotExist):
				case err != nil:
					return "", err
				default:
					limited, err := quotaSet(file, strings.TrimSpace(string(b)))
					if err != nil {
						return "", fmt.Errorf("%s: %w", f, err)
					}
					if limited {
						return f + ": " + strings.TrimSpace(string(b)), nil
					}
				}
				if dir == "/" {
					break
				}
			}
		}
	}
	return "", nil
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
// -1 or the quota.
func quotaSet(file, v string) (bool, error) {
	if file == "cpu.max" {
		q, _, ok := strings.Cut(v, " ")
		if !ok || q == "" {
			return false, fmt.Errorf("%q: want QUOTA PERIOD", v)
		}
		return q != "max", nil
	}
	if v == "" {
		return false, errors.New("empty")
	}
	return v != "-1", nil
}
