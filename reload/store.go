package reload

import (
	"errors"
	"io/fs"
	"sync"
	"sync/atomic"

	"github.com/go-logr/logr"
)

// Reporting says how a Store reports its updates: counted under Source in
// meshguard_config_reloads_total / meshguard_config_reload_errors_total, a
// rejection logged on Log and handed to OnReject.
type Reporting struct {
	// Source names the input in the metrics; "" counts nothing.
	Source Source
	// Log gets one error line per rejected update; the zero Logger discards.
	Log logr.Logger
	// OnReject, if set, runs after every rejected update with its error
	// (serve records a Kubernetes Event). It runs on the updating goroutine.
	OnReject func(error)
}

// Store holds the last good value of one hot-reloaded input. Load never
// blocks and never sees a half-built value: Update builds and validates a
// complete new value first and swaps it in atomically only if that
// succeeded; a failed build keeps the last good value and is reported once
// (log, metric, OnReject). Istio swapped its injector template before the
// values were known to parse (istio/istio#53923); this is the fix, in one place.
type Store[T any] struct {
	cur    atomic.Pointer[T]
	mu     sync.Mutex // one Update at a time
	report Reporting
}

// NewStore returns a store holding initial (nil: nothing yet) that reports
// its updates as r says.
func NewStore[T any](initial *T, r Reporting) *Store[T] {
	s := &Store[T]{report: r}
	s.cur.Store(initial)
	if r.Source != "" {
		sourceMetrics(r.Source) // export the source's series at 0 from the start
	}
	return s
}

// Load returns the current good value (nil before the first success).
func (s *Store[T]) Load() *T { return s.cur.Load() }

// Update runs build and, if it returns a value without error, makes that
// value current and counts a reload. A build failing on a file that does
// not exist (fs.ErrNotExist) runs once more first, so a volume update
// racing the load is not reported as a rejection. On error it keeps the
// current value, counts a reload error, logs it and calls OnReject; the
// error is returned.
// Updates are serialised, so build may read the current value.
func (s *Store[T]) Update(build func() (*T, error)) (*T, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, err := build()
	if errors.Is(err, fs.ErrNotExist) {
		// A mounted volume's old content directory is removed right after
		// its ..data link is swapped (kubelet AtomicWriter): a load reading
		// it then finds its files gone, and one more build reads the new
		// content. A file that is really missing fails the same way again.
		v, err = build()
	}
	if err == nil && v == nil {
		err = errNilValue
	}
	if err != nil {
		countReject(s.report.Source)
		s.report.Log.Error(err, "update rejected; keeping the last good one", "source", string(s.report.Source))
		if s.report.OnReject != nil {
			s.report.OnReject(err)
		}
		return nil, err
	}
	s.cur.Store(v)
	countReload(s.report.Source)
	return v, nil
}

var errNilValue = errors.New("the update built no value")
