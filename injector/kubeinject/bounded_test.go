package kubeinject

import (
	"strings"
	"testing"

	"github.com/meshguard/meshguard/injector/config"
	"github.com/meshguard/meshguard/internal/manifest"
)

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

// TestInjectInputBounded: an endless input is refused once it passes the
// input limit, not buffered without end.
func TestInjectInputBounded(t *testing.T) {
	in := &endless{}
	_, err := Inject(in, config.Default())
	if err == nil || !strings.Contains(err.Error(), "input too large") {
		t.Fatalf("err = %v, want the input refused as too large", err)
	}
	if in.read > manifest.DefaultMaxInputBytes+1<<20 {
		t.Errorf("read %d bytes, want at most about the %d-byte limit", in.read, manifest.DefaultMaxInputBytes)
	}
}
