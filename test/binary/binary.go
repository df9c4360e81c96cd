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

// DevTag is the build tag that adds `meshguard dev` (which links the test
// harness) to the command; `make run` builds with it, the product build never does.
const DevTag = "dev"

// build is one lazily built binary.
type build struct {
	once sync.Once
	path string
	err  error
}

var product, dev build

// Path returns the path of the product meshguard binary (as `make build`
// builds it) built from this checkout into a temporary directory (removed
// with Cleanup).
func Path() (string, error) { return product.get("meshguard") }

// DevPath returns the path of a meshguard binary built with -tags dev (as
// `make run` builds it), which has the `dev` command.
func DevPath() (string, error) { return dev.get("meshguard-dev", "-tags", DevTag) }

func (b *build) get(name string, flags ...string) (string, error) {
	b.once.Do(func() {
		var root, dir string
		if root, b.err = cluster.RepoRoot(); b.err != nil {
			return
		}
		if dir, b.err = os.MkdirTemp("", "meshguard-bin-"); b.err != nil {
			return
		}
		b.path = filepath.Join(dir, name)
		args := append(append([]string{"build"}, flags...), "-o", b.path, "./cmd/meshguard")
		cmd := exec.Command("go", args...)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("go %v: %v\n%s", args, err, out)
		}
	})
	return b.path, b.err
}

// Cleanup removes the built binaries; call it from TestMain after m.Run.
func Cleanup() {
	for _, b := range []*build{&product, &dev} {
		if b.path != "" {
			_ = os.RemoveAll(filepath.Dir(b.path))
		}
	}
}
