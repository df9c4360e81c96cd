package main

import (
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
