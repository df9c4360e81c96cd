package reload

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/meshguard/meshguard/internal/dirwalk"
)

// A rejected update keeps the last good value, is counted once under its
// source and under the deprecated name operators alert on, and reaches
// OnReject once; an accepted one swaps and is counted, not reported.
func TestStoreKeepsLastGoodAndReportsRejections(t *testing.T) {
	type counts struct{ reloads, errors, deprecatedErrors float64 }
	cases := []struct {
		source     Source
		deprecated prometheus.Counter // the old name this source's errors still count under
	}{
		{InjectorConfig, deprecatedInjectorErrors},
		{Policy, deprecatedAuthzErrors},
		{MeshConfig, deprecatedAuthzErrors},
	}
	for _, tc := range cases {
		t.Run(string(tc.source), func(t *testing.T) {
			read := func() counts {
				return counts{testutil.ToFloat64(ReloadsTotal.WithLabelValues(string(tc.source))),
					testutil.ToFloat64(ReloadErrorsTotal.WithLabelValues(string(tc.source))),
					testutil.ToFloat64(tc.deprecated)}
			}
			var rejected []error
			first := "first"
			s := NewStore(&first, Reporting{Source: tc.source, OnReject: func(err error) { rejected = append(rejected, err) }})
			before := read()

			broken := errors.New("values.global.hub: broken")
			if v, err := s.Update(func() (*string, error) { return nil, broken }); !errors.Is(err, broken) || v != nil {
				t.Fatalf("Update = %v, %v; want nil, %v", v, err, broken)
			}
			if got := *s.Load(); got != "first" {
				t.Fatalf("after a rejected update Load = %q, want the last good %q", got, "first")
			}
			if len(rejected) != 1 || !errors.Is(rejected[0], broken) {
				t.Fatalf("OnReject saw %v, want exactly %v", rejected, broken)
			}
			if got, want := read(), (counts{before.reloads, before.errors + 1, before.deprecatedErrors + 1}); got != want {
				t.Fatalf("after a rejection counts = %+v, want %+v", got, want)
			}

			// A build that returns no value is rejected, not swapped in as nil.
			if _, err := s.Update(func() (*string, error) { return nil, nil }); err == nil || s.Load() == nil {
				t.Fatalf("a nil value was accepted: err=%v", err)
			}

			second := "second"
			if v, err := s.Update(func() (*string, error) { return &second, nil }); err != nil || v != &second {
				t.Fatalf("Update = %v, %v; want the new value", v, err)
			}
			if s.Load() != &second {
				t.Fatal("an accepted update did not become current")
			}
			if len(rejected) != 2 {
				t.Fatalf("OnReject calls = %d, want 2 (the accepted update is not reported)", len(rejected))
			}
			if got, want := read(), (counts{before.reloads + 1, before.errors + 2, before.deprecatedErrors + 2}); got != want {
				t.Fatalf("after an accepted update counts = %+v, want %+v", got, want)
			}
		})
	}
}

// The injector's successful reloads still count under their old name.
func TestDeprecatedInjectorReloadsCount(t *testing.T) {
	s := NewStore[int](nil, Reporting{Source: InjectorConfig})
	before := testutil.ToFloat64(deprecatedReloads)
	one := 1
	if _, err := s.Update(func() (*int, error) { return &one, nil }); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(deprecatedReloads); got != before+1 {
		t.Fatalf("meshguard_injector_config_reloads_total = %v, want %v", got, before+1)
	}
}

// A store without a source counts nothing (policy.Engine used offline).
func TestStoreWithoutSourceCountsNothing(t *testing.T) {
	before := testutil.CollectAndCount(ReloadErrorsTotal)
	s := NewStore[int](nil, Reporting{})
	_, _ = s.Update(func() (*int, error) { return nil, errors.New("x") })
	if got := testutil.CollectAndCount(ReloadErrorsTotal); got != before {
		t.Fatalf("series %d, want %d: an unnamed source was counted", got, before)
	}
}

// Concurrent readers never see a value other than one that was stored
// (run with -race to check the swap is atomic).
func TestStoreConcurrentLoadAndUpdate(t *testing.T) {
	zero := 0
	s := NewStore(&zero, Reporting{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 1000 {
				if v := s.Load(); v == nil || *v < 0 {
					t.Errorf("Load = %v", v)
					return
				}
			}
		}()
	}
	for i := 1; i <= 1000; i++ {
		if i%3 == 0 {
			_, _ = s.Update(func() (*int, error) { return nil, errors.New("rejected") })
			continue
		}
		_, _ = s.Update(func() (*int, error) { return &i, nil })
	}
	wg.Wait()
	if got := *s.Load(); got != 1000 {
		t.Fatalf("final value %d, want 1000", got)
	}
}

// Registering twice (the injector and ext_authz in one process) is fine,
// and the deprecated names are served next to the labelled ones.
func TestRegisterMetricsServesBothNames(t *testing.T) {
	reg := prometheus.NewRegistry()
	RegisterMetrics(reg)
	RegisterMetrics(reg)
	NewStore[int](nil, Reporting{Source: Policy})
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, mf := range mfs {
		names[mf.GetName()] = true
	}
	for _, n := range []string{"meshguard_config_reloads_total", "meshguard_config_reload_errors_total",
		"meshguard_injector_config_reloads_total", "meshguard_injector_config_reload_errors_total", "meshguard_authz_reload_errors_total"} {
		if !names[n] {
			t.Errorf("%s not served; got %v", n, names)
		}
	}
}

// A kubelet volume update (AtomicWriter: write a new timestamped directory,
// swap ..data to it, remove the old one) during a load makes the load's
// reads of the old directory fail: Update builds once more, against the new
// ..data target, instead of rejecting (an error logged, a PolicyRejected
// Event). A build failing that way twice is rejected once.
func TestStoreRetriesWhenVolumeSwappedMidRead(t *testing.T) {
	dir := t.TempDir()
	writeVersion := func(ts, content string) {
		t.Helper()
		if err := os.Mkdir(filepath.Join(dir, ts), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, ts, "p.yaml"), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		// The swap: a new link renamed over ..data, as AtomicWriter does.
		if err := os.Symlink(ts, filepath.Join(dir, "..data_tmp")); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
	}
	writeVersion("..2026_01_01_00_00_00.1", "old")
	if err := os.Symlink(filepath.Join("..data", "p.yaml"), filepath.Join(dir, "p.yaml")); err != nil {
		t.Fatal(err)
	}
	var rejected []error
	s := NewStore[string](nil, Reporting{OnReject: func(err error) { rejected = append(rejected, err) }})

	builds, versions := 0, 1
	build := func(swaps bool) func() (*string, error) {
		return func() (*string, error) {
			builds++
			root, rel, err := dirwalk.Files(dir, dirwalk.Options{Exts: []string{".yaml"}, Confine: true})
			if err != nil {
				return nil, err
			}
			if swaps || builds == 1 {
				// The kubelet updates the volume between the listing and the reads.
				versions++
				ts := fmt.Sprintf("..2026_01_01_00_00_00.%d", versions)
				writeVersion(ts, "new "+ts)
				if err := os.RemoveAll(root); err != nil {
					t.Fatal(err)
				}
			}
			b, err := os.ReadFile(filepath.Join(root, rel[0]))
			if err != nil {
				return nil, fmt.Errorf("policy dir: %w", err)
			}
			v := string(b)
			return &v, nil
		}
	}
	v, err := s.Update(build(false))
	if err != nil || *v != "new ..2026_01_01_00_00_00.2" || len(rejected) != 0 || builds != 2 {
		t.Fatalf("Update = %v, %v after %d builds, rejected %v; want the new version, read by a second build", v, err, builds, rejected)
	}
	builds = 0
	if _, err := s.Update(build(true)); !errors.Is(err, fs.ErrNotExist) || len(rejected) != 1 || builds != 2 {
		t.Fatalf("Update = %v after %d builds, rejected %v; want one retry, then one rejection", err, builds, rejected)
	}
}
