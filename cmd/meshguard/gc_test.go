package main

import (
	"fmt"
	"math"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"
)

// stopGCTuners stops the tuner an earlier test left running (an in-process
// serve starts one, which sets the GC percent after every collection), so a
// test reading the GC percent reads only what it set.
func stopGCTuners(t *testing.T) {
	t.Helper()
	if old := activeTuner.Swap(nil); old != nil {
		old.stop()
	}
}

func TestTuneGC(t *testing.T) {
	stopGCTuners(t)
	const before = 77 // what the runtime took from the environment at start
	for _, tc := range []struct {
		env  string
		want int
	}{
		{env: "", want: serverGCPercent}, // unset: meshguard's default
		{env: "50", want: before},        // set: the runtime's value stays
	} {
		t.Run("GOGC="+tc.env, func(t *testing.T) {
			t.Setenv("GOGC", tc.env)
			t.Setenv(gcHeadroomEnv, "0") // no tuner: TestGCTuner covers it
			prev := debug.SetGCPercent(before)
			defer debug.SetGCPercent(prev)
			if err := tuneGC(); err != nil {
				t.Fatal(err)
			}
			if got := debug.SetGCPercent(before); got != tc.want {
				t.Errorf("GC percent after tuneGC with GOGC=%q: %d, want %d", tc.env, got, tc.want)
			}
		})
	}
}

// TestTuneGCHeadroomOff: MESHGUARD_GC_HEADROOM=0 turns the cap off: GOGC
// stays at serverGCPercent, with no tuner lowering it.
func TestTuneGCHeadroomOff(t *testing.T) {
	stopGCTuners(t)
	t.Setenv("GOGC", "")
	t.Setenv(gcHeadroomEnv, "0")
	prev := debug.SetGCPercent(77)
	defer debug.SetGCPercent(prev)
	before := activeTuner.Load()
	if err := tuneGC(); err != nil {
		t.Fatal(err)
	}
	if now := activeTuner.Load(); now != before {
		now.stop()
		t.Fatal("a GC tuner started with the headroom cap off")
	}
}

func TestTuneGCMemoryLimit(t *testing.T) {
	stopGCTuners(t)
	const before = int64(math.MaxInt64) // the runtime's default: no limit
	for _, tc := range []struct {
		name, limit, gomemlimit string
		want                    int64
	}{
		{name: "90% of the container limit", limit: "536870912", want: 536870912 / 10 * 9},
		{name: "GOMEMLIMIT wins", limit: "536870912", gomemlimit: "100MiB", want: before},
		{name: "no limit given", want: before},
		{name: "no limit (0)", limit: "0", want: before},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(memoryLimitEnv, tc.limit)
			t.Setenv("GOMEMLIMIT", tc.gomemlimit)
			t.Setenv("GOGC", "100") // leave the GC percent alone here (and no tuner)
			prev := debug.SetMemoryLimit(before)
			defer debug.SetMemoryLimit(prev)
			if err := tuneGC(); err != nil {
				t.Fatal(err)
			}
			if got := debug.SetMemoryLimit(before); got != tc.want {
				t.Errorf("memory limit %d, want %d", got, tc.want)
			}
		})
	}
}

func TestGCPercentFor(t *testing.T) {
	const mi = 1 << 20
	for _, tc := range []struct {
		live, headroom uint64
		want           int
	}{
		{live: 0, headroom: 128 * mi, want: serverGCPercent},
		{live: 10 * mi, headroom: 128 * mi, want: serverGCPercent}, // 4x live is less than the cap
		{live: 64 * mi, headroom: 128 * mi, want: 199},             // the cap: ~2x live
		{live: 128 * mi, headroom: 128 * mi, want: 99},
		{live: 1024 * mi, headroom: 128 * mi, want: minGCPercent}, // never below the floor
		{live: 9900, headroom: 4900, want: minGCPercent},          // 49: just below it
	} {
		if got := gcPercentFor(tc.live, tc.headroom); got != tc.want {
			t.Errorf("gcPercentFor(live %d MiB, headroom %d MiB) = %d, want %d", tc.live/mi, tc.headroom/mi, got, tc.want)
		}
	}
}

func TestGCHeadroomEnv(t *testing.T) {
	for _, tc := range []struct {
		env  string
		want uint64
	}{
		{"", defaultGCHeadroom}, {"64Mi", 64 << 20}, {"0", 0}, {"9223372036854775807", math.MaxInt64},
	} {
		t.Setenv(gcHeadroomEnv, tc.env)
		if got, err := gcHeadroom(); err != nil || got != tc.want {
			t.Errorf("%s=%q: %d, %v; want %d", gcHeadroomEnv, tc.env, got, err, tc.want)
		}
	}
}

// TestTuneGCRefusesUnreadableEnv: a value that does not parse fails the
// start naming the variable (the runtime refuses an invalid GOMEMLIMIT so),
// instead of running silently with the default, and changes nothing.
func TestTuneGCRefusesUnreadableEnv(t *testing.T) {
	stopGCTuners(t)
	for _, tc := range []struct{ env, value string }{
		{gcHeadroomEnv, "lots"}, {gcHeadroomEnv, "-1Mi"}, {memoryLimitEnv, "512Mi"}, {memoryLimitEnv, "-5"},
		{memoryLimitEnv, "9"}, {memoryLimitEnv, "512"}, // a soft limit of 0, of 460 bytes
		// Beyond int64: Quantity.Value read 1e30 as 0 (cap off) and 2^63 as
		// a negative number, i.e. no cap.
		{gcHeadroomEnv, "1e30"}, {gcHeadroomEnv, "9223372036854775808"},
	} {
		t.Run(tc.env+"="+tc.value, func(t *testing.T) {
			t.Setenv(gcHeadroomEnv, "0")
			t.Setenv(tc.env, tc.value)
			t.Setenv("GOGC", "")
			prev := debug.SetGCPercent(77)
			defer debug.SetGCPercent(prev)
			prevLimit := debug.SetMemoryLimit(math.MaxInt64)
			defer debug.SetMemoryLimit(prevLimit)
			if err := tuneGC(); err == nil || !strings.Contains(err.Error(), tc.env) {
				t.Fatalf("tuneGC = %v; want an error naming %s", err, tc.env)
			}
			if got := debug.SetGCPercent(77); got != 77 {
				t.Errorf("GC percent changed to %d by a refused start", got)
			}
			if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
				t.Errorf("memory limit changed to %d by a refused start", got)
			}
		})
	}
}

// TestMemoryLimitEnv: MESHGUARD_MEMORY_LIMIT is the container's limit in
// bytes (resourceFieldRef, divisor 1). "0" is no limit; a value under
// minMemoryLimit is refused naming the variable: 90% of it would be a soft
// limit of 0 to a few bytes, under which the runtime collects continuously
// (runtime/debug.SetMemoryLimit), and it is a value in another unit (a
// divisor of 1Mi gives "512"). GOMEMLIMIT's suffixes are not taken.
func TestMemoryLimitEnv(t *testing.T) {
	for _, tc := range []struct {
		value string
		want  int64 // -1: refused
	}{
		{"", 0}, {"0", 0},
		{"1", -1}, {"9", -1}, {"10", -1}, {"512", -1}, {"524288", -1}, // 512Mi with divisor 1Mi, 1Ki
		{fmt.Sprint(minMemoryLimit - 1), -1},
		{fmt.Sprint(minMemoryLimit), minMemoryLimit},
		{"536870912", 536870912},
		{"9223372036854775807", math.MaxInt64},
		{"9223372036854775808", -1}, // overflow
		{"1Ki", -1}, {"512MiB", -1}, {"-1", -1}, {"-536870912", -1}, {"lots", -1}, {" 536870912", -1},
	} {
		t.Run(tc.value, func(t *testing.T) {
			t.Setenv(memoryLimitEnv, tc.value)
			got, err := memoryLimit()
			switch {
			case tc.want < 0 && (err == nil || !strings.Contains(err.Error(), memoryLimitEnv)):
				t.Errorf("%s=%q: %d, %v; want an error naming %s", memoryLimitEnv, tc.value, got, err, memoryLimitEnv)
			case tc.want >= 0 && (err != nil || got != tc.want):
				t.Errorf("%s=%q: %d, %v; want %d", memoryLimitEnv, tc.value, got, err, tc.want)
			}
		})
	}
}

// TestGCTuner: after a collection, the tuner sets GOGC from the live heap
// the collection left: with 96 MiB live and a 48 MiB cap, 50 (the floor);
// with the big object gone, higher again (400 in an otherwise empty
// process; other tests' heaps may keep it lower).
func TestGCTuner(t *testing.T) {
	prev := debug.SetGCPercent(serverGCPercent)
	defer debug.SetGCPercent(prev)
	got := make(chan int, 64)
	tuner := startGCTuner(48<<20, func() {}, func(p int) { got <- p })
	defer tuner.stop()
	live := make([]byte, 96<<20)
	for i := range live {
		live[i] = 1 // touched, so it is really there
	}
	runtime.GC()
	if p := awaitPercent(t, got, func(p int) bool { return p == minGCPercent }); p != minGCPercent {
		t.Fatalf("GOGC with 96 MiB live and a 48 MiB cap: %d, want %d", p, minGCPercent)
	}
	if cur := debug.SetGCPercent(minGCPercent); cur != minGCPercent {
		t.Fatalf("the runtime's GOGC is %d, the tuner reported %d", cur, minGCPercent)
	}
	runtime.KeepAlive(live)
	live = nil
	runtime.GC()
	if p := awaitPercent(t, got, func(p int) bool { return p > minGCPercent }); p <= minGCPercent {
		t.Fatalf("GOGC after the live heap shrank by 96 MiB: %d, want more than %d", p, minGCPercent)
	}
}

// awaitPercent reads adjustments until one satisfies ok, forcing further
// collections while none does (each collection runs the tuner once).
func awaitPercent(t *testing.T, got chan int, ok func(int) bool) int {
	t.Helper()
	last := -1
	for i := 0; i < 20; i++ {
		select {
		case last = <-got:
			if ok(last) {
				return last
			}
		case <-time.After(time.Second):
			runtime.GC()
		}
	}
	return last
}

func TestShouldRelease(t *testing.T) {
	const mi = 1 << 20
	for _, tc := range []struct {
		peak, live, headroom uint64
		want                 bool
	}{
		{peak: 220 * mi, live: 72 * mi, headroom: 128 * mi, want: true},  // a build finished
		{peak: 150 * mi, live: 72 * mi, headroom: 128 * mi, want: false}, // within the headroom
		{peak: 72 * mi, live: 72 * mi, headroom: 128 * mi, want: false},  // steady
		{peak: 72 * mi, live: 200 * mi, headroom: 128 * mi, want: false}, // growing
	} {
		if got := shouldRelease(tc.peak, tc.live, tc.headroom); got != tc.want {
			t.Errorf("shouldRelease(peak %d MiB, live %d MiB, headroom %d MiB) = %v, want %v", tc.peak/mi, tc.live/mi, tc.headroom/mi, got, tc.want)
		}
	}
}

// TestGCTunerReleasesAfterShrink: once the live heap falls by more than the
// headroom, the tuner releases memory once (and not again while it stays).
func TestGCTunerReleasesAfterShrink(t *testing.T) {
	prev := debug.SetGCPercent(serverGCPercent)
	defer debug.SetGCPercent(prev)
	released := make(chan struct{}, 8)
	tuner := startGCTuner(32<<20, func() { released <- struct{}{} }, nil)
	defer tuner.stop()
	big := make([]byte, 96<<20)
	for i := range big {
		big[i] = 1
	}
	for i := 0; i < 3; i++ {
		runtime.GC() // the tuner sees the peak
	}
	select {
	case <-released:
		t.Fatal("released while the live heap was at its peak")
	default:
	}
	runtime.KeepAlive(big)
	big = nil
	for i := 0; i < 20; i++ {
		runtime.GC()
		select {
		case <-released:
			return
		case <-time.After(500 * time.Millisecond):
		}
	}
	t.Fatal("no release after the live heap shrank by 96 MiB with a 32 MiB headroom")
}

// TestOneGCTunerPerProcess: a second tuner (a server started after another
// in the same process) stops the first, which would otherwise set GOGC from
// its own headroom after every collection.
func TestOneGCTunerPerProcess(t *testing.T) {
	prev := debug.SetGCPercent(serverGCPercent)
	defer debug.SetGCPercent(prev)
	firstSaw := make(chan int, 64)
	first := startGCTuner(1<<40, func() {}, func(p int) { firstSaw <- p })
	second := startGCTuner(48<<20, func() {}, nil)
	defer second.stop()
	if !first.stopped.Load() {
		t.Fatal("the first tuner still runs after a second one started")
	}
	for i := 0; i < 3; i++ {
		runtime.GC()
	}
	select {
	case p := <-firstSaw:
		t.Fatalf("the stopped tuner set GOGC to %d", p)
	default:
	}
}
