package main

import (
	"fmt"
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"sync/atomic"

	"k8s.io/apimachinery/pkg/api/resource"
)

// serverGCPercent is the most GOGC the long-running servers (serve, authz
// serve, dev) use when the environment does not set one. Their live heap is
// mostly long-lived (compiled policy, informer caches), and each request
// leaves only a few KB of garbage, so Go's default of 100 runs a collection
// every few hundred milliseconds under load, and on a small CPU allotment
// those collections are the tail of the Check latency (docs/benchmarks.md,
// "Load and GC"). 400 makes them four times rarer. Prometheus sets its own
// default (75) the same way.
const serverGCPercent = 400

// minGCPercent bounds the tuner from below: past that, a huge live heap is
// collected so often that the collector would take the CPU.
const minGCPercent = 50

// gcHeadroomEnv caps the garbage a server's heap holds between collections
// (a quantity: "128Mi"; "0" turns the cap off). With a fixed GOGC of 400 a
// 70 MB live heap (10,000 policies) may grow to 350 MB before a collection,
// and compiling a new snapshot beside the old one doubles that; the cap
// keeps GOGC at 400 for small heaps and lowers it as the live heap grows, so
// memory is live heap + at most the cap (docs/benchmarks.md, "Memory").
const gcHeadroomEnv = "MESHGUARD_GC_HEADROOM"

const defaultGCHeadroom = 128 << 20

// memoryLimitEnv carries the container's memory limit in bytes (the chart
// sets it with a resourceFieldRef). Unless GOMEMLIMIT is set, the runtime's
// soft limit becomes 90% of it: near that the runtime collects whatever GOGC
// says, and the rest is headroom for memory the Go heap does not count
// (stacks, OPA's and gRPC's buffers in flight, fragmentation).
const memoryLimitEnv = "MESHGUARD_MEMORY_LIMIT"

// tuneGC applies the server GC policy unless the environment sets GOGC
// (serverGCPercent, lowered per collection so the garbage stays within
// gcHeadroomEnv), and the soft memory limit from memoryLimitEnv unless it
// sets GOMEMLIMIT. An unreadable value of either is an error naming it
// (as the runtime refuses an invalid GOMEMLIMIT), applied before anything.
func tuneGC() error {
	headroom, err := gcHeadroom()
	if err != nil {
		return err
	}
	limit, err := memoryLimit()
	if err != nil {
		return err
	}
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(serverGCPercent)
		if headroom > 0 {
			startGCTuner(headroom, debug.FreeOSMemory, nil)
		}
	}
	if os.Getenv("GOMEMLIMIT") == "" && limit > 0 {
		debug.SetMemoryLimit(limit / 10 * 9)
	}
	return nil
}

// minMemoryLimit is the smallest memoryLimitEnv taken. Below it the value is
// not a container's limit in bytes but one in another unit (a
// resourceFieldRef divisor of 1Mi gives "512", of 1Ki "524288"), and 90% of
// it would be a soft limit under the process's own heap, or 0 for 1 to 9,
// where the runtime collects nearly continuously (runtime/debug.SetMemoryLimit).
const minMemoryLimit = 16 << 20

// memoryLimit reads memoryLimitEnv: bytes, as the downward API gives them;
// unset or "0" is no limit.
func memoryLimit() (int64, error) {
	v := os.Getenv(memoryLimitEnv)
	if v == "" {
		return 0, nil
	}
	limit, err := strconv.ParseInt(v, 10, 64)
	switch {
	case err != nil || limit < 0:
		return 0, fmt.Errorf("%s=%q: want the container's memory limit in bytes", memoryLimitEnv, v)
	case limit > 0 && limit < minMemoryLimit:
		return 0, fmt.Errorf("%s=%q: under %d bytes (16Mi), not a container's memory limit in bytes (a resourceFieldRef divisor other than 1?)", memoryLimitEnv, v, minMemoryLimit)
	}
	return limit, nil
}

// gcHeadroom reads gcHeadroomEnv; unset gives the default.
func gcHeadroom() (uint64, error) {
	v := os.Getenv(gcHeadroomEnv)
	if v == "" {
		return defaultGCHeadroom, nil
	}
	q, err := resource.ParseQuantity(v)
	// Past int64, Quantity.Value is no longer the quantity (1e30 reads as
	// 0, turning the cap off; 2^63 as a negative number, no cap at all).
	if err != nil || q.Sign() < 0 || q.CmpInt64(math.MaxInt64) > 0 {
		return 0, fmt.Errorf("%s=%q: want a quantity such as 128Mi, or 0", gcHeadroomEnv, v)
	}
	return uint64(q.Value()), nil
}

// gcPercentFor is the GOGC that lets a heap of live bytes collect garbage up
// to headroom bytes (at most serverGCPercent, at least minGCPercent).
func gcPercentFor(live, headroom uint64) int {
	if live == 0 {
		return serverGCPercent
	}
	p := headroom / (live/100 + 1)
	switch {
	case p > serverGCPercent:
		return serverGCPercent
	case p < minGCPercent:
		return minGCPercent
	}
	return int(p)
}

// gcTuner re-computes GOGC after every collection from the live heap it
// left (runtime/metrics /gc/heap/live:bytes). A finalizer on a sentinel
// object runs once per cycle; it re-arms itself until stopped.
type gcTuner struct {
	headroom  uint64
	stopped   atomic.Bool
	sample    []metrics.Sample
	adjusted  func(percent int) // tests: called after each adjustment
	peakLive  uint64            // the largest live heap since memory was last released
	releasing atomic.Bool
	release   func()
}

type gcSentinel struct{ _ *int } // a pointer, so it is not a tiny allocation

// activeTuner is the process's one tuner: GOGC is process-wide, so two
// tuners (a second server started in the same process, a test after a
// server) would overwrite each other's setting after every collection.
var activeTuner atomic.Pointer[gcTuner]

// startGCTuner starts the tuner, stopping the one running before it;
// release returns free memory to the OS (debug.FreeOSMemory), adjusted
// (tests; may be nil) sees every GOGC set.
func startGCTuner(headroom uint64, release func(), adjusted func(int)) *gcTuner {
	t := &gcTuner{headroom: headroom, adjusted: adjusted, release: release,
		sample: []metrics.Sample{{Name: "/gc/heap/live:bytes"}}}
	if old := activeTuner.Swap(t); old != nil {
		old.stop()
	}
	t.arm()
	return t
}

func (t *gcTuner) arm() {
	runtime.SetFinalizer(&gcSentinel{}, func(*gcSentinel) {
		if t.stopped.Load() {
			return
		}
		t.adjust()
		t.arm()
	})
}

func (t *gcTuner) adjust() {
	metrics.Read(t.sample)
	if t.sample[0].Value.Kind() != metrics.KindUint64 {
		return
	}
	live := t.sample[0].Value.Uint64()
	p := gcPercentFor(live, t.headroom)
	debug.SetGCPercent(p)
	if t.adjusted != nil {
		t.adjusted(p)
	}
	t.peakLive = max(t.peakLive, live)
	if shouldRelease(t.peakLive, live, t.headroom) && t.releasing.CompareAndSwap(false, true) {
		t.peakLive = live
		// Not from the finalizer: FreeOSMemory collects again and waits.
		go func() {
			defer t.releasing.Store(false)
			t.release()
		}()
	}
}

// shouldRelease: the live heap has shrunk by more than the headroom since
// its peak (a policy snapshot was built beside the old one, or a large
// start-up load finished). The runtime hands such memory back to the OS only
// slowly, so the process would keep the peak's size for minutes; it is
// returned at once instead (debug.FreeOSMemory: one more collection, off the
// request path, once per such drop).
func shouldRelease(peak, live, headroom uint64) bool {
	return peak > live && peak-live > headroom
}

func (t *gcTuner) stop() { t.stopped.Store(true) }
