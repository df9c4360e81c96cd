package main

import (
	"testing"
	"time"
)

// TestGCCycles: gctrace lines as Go 1.27 writes them (one forced), with a
// server's own log lines between them.
func TestGCCycles(t *testing.T) {
	log := []byte(`{"level":"info","msg":"policy snapshot active"}
gc 1 @0.095s 1%: 0.036+4.6+0.054 ms clock, 0.073+0/2.2/0.38+0.10 ms cpu, 3->4->1 MB, 4 MB goal, 0 MB stacks, 0 MB globals, 2 P
gc 2 @12.107s 3%: 0.067+103+0.009 ms clock, 0.13+0.55/88/0.10+0.019 ms cpu, 201->208->104 MB, 232 MB goal, 0 MB stacks, 0 MB globals, 2 P (forced)
gc 3 x
`)
	got := gcCycles(log)
	want := []gcCycle{
		{at: 95 * time.Millisecond, clock: 4690 * time.Microsecond, liveMB: 1},
		{at: 12107 * time.Millisecond, clock: 103076 * time.Microsecond, liveMB: 104},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d cycles %+v, want %d", len(got), got, len(want))
	}
	for i := range want {
		// float parsing: within a microsecond
		if d := got[i].at - want[i].at; d < -time.Microsecond || d > time.Microsecond {
			t.Errorf("cycle %d: start %v, want %v", i+1, got[i].at, want[i].at)
		}
		if d := got[i].clock - want[i].clock; d < -time.Microsecond || d > time.Microsecond {
			t.Errorf("cycle %d: clock %v, want %v", i+1, got[i].clock, want[i].clock)
		}
		if got[i].liveMB != want[i].liveMB {
			t.Errorf("cycle %d: live heap %d MB, want %d", i+1, got[i].liveMB, want[i].liveMB)
		}
	}
}
