package main

import (
	"math"
	"runtime/debug"
	"testing"
)

func TestTuneGC(t *testing.T) {
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
			prev := debug.SetGCPercent(before)
			defer debug.SetGCPercent(prev)
			tuneGC()
			if got := debug.SetGCPercent(before); got != tc.want {
				t.Errorf("GC percent after tuneGC with GOGC=%q: %d, want %d", tc.env, got, tc.want)
			}
		})
	}
}

func TestTuneGCMemoryLimit(t *testing.T) {
	const before = int64(math.MaxInt64) // the runtime's default: no limit
	for _, tc := range []struct {
		name, limit, gomemlimit string
		want                    int64
	}{
		{name: "90% of the container limit", limit: "536870912", want: 536870912 / 10 * 9},
		{name: "GOMEMLIMIT wins", limit: "536870912", gomemlimit: "100MiB", want: before},
		{name: "no limit given", want: before},
		{name: "garbage ignored", limit: "lots", want: before},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(memoryLimitEnv, tc.limit)
			t.Setenv("GOMEMLIMIT", tc.gomemlimit)
			t.Setenv("GOGC", "100") // leave the GC percent alone here
			prev := debug.SetMemoryLimit(before)
			defer debug.SetMemoryLimit(prev)
			tuneGC()
			if got := debug.SetMemoryLimit(before); got != tc.want {
				t.Errorf("memory limit %d, want %d", got, tc.want)
			}
		})
	}
}
