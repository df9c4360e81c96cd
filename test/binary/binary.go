// Package binary builds the meshguard command once per test binary, for
// black-box tests that run it as users and Kubernetes do.
package binary

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"

	"github.com/meshguard/meshguard/test/cluster"
)

var (
	once sync.Once
	path string
	err  error
)

// Path returns the path of a meshguard binary built from this checkout into
// a temporary directory (removed with Cleanup).
func Path() (string, error) {
	once.Do(func() {
		var root, dir string
		if root, err = cluster.RepoRoot(); err != nil {
			return
		}
		if dir, err = os.MkdirTemp("", "meshguard-bin-"); err != nil {
			return
		}
		path = filepath.Join(dir, "meshguard")
		cmd := exec.Command("go", "build", "-o", path, "./cmd/meshguard")
		cmd.Dir = root
		if out, buildErr := cmd.CombinedOutput(); buildErr != nil {
			err = fmt.Errorf("go build ./cmd/meshguard: %v\n%s", buildErr, out)
		}
	})
	return path, err
}

// Cleanup removes the built binary; call it from TestMain after m.Run.
func Cleanup() {
	if path != "" {
		_ = os.RemoveAll(filepath.Dir(path))
	}
}
