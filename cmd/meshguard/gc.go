package main

import (
	"os"
	"runtime/debug"
)

// serverGCPercent is the GOGC the long-running servers (serve, authz serve,
// dev) use when the environment does not set one. Their live heap is mostly
// long-lived (compiled policy, informer caches, ~30 MB at 1,000 policies), and
// each request leaves only a few KB of garbage, so Go's default of 100 runs a
// collection every few hundred milliseconds under load, and on a small CPU
// allotment those collections are the tail of the Check latency
// (docs/benchmarks.md, "GC and the tail"). 400 makes them four times rarer.
// GOMEMLIMIT, which the chart sets from the container's memory limit, still
// bounds the heap: near the limit the runtime collects regardless of GOGC.
// Prometheus sets its own default (75) the same way.
const serverGCPercent = 400

// tuneGC applies serverGCPercent unless the environment sets GOGC.
func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(serverGCPercent)
	}
}
