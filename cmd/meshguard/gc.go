package main

import (
	"os"
	"runtime/debug"
	"strconv"
)

// serverGCPercent is the GOGC the long-running servers (serve, authz serve,
// dev) use when the environment does not set one. Their live heap is mostly
// long-lived (compiled policy, informer caches, ~30 MB at 1,000 policies), and
// each request leaves only a few KB of garbage, so Go's default of 100 runs a
// collection every few hundred milliseconds under load, and on a small CPU
// allotment those collections are the tail of the Check latency
// (docs/benchmarks.md, "Load and GC"). 400 makes them four times rarer.
// Prometheus sets its own default (75) the same way.
const serverGCPercent = 400

// memoryLimitEnv carries the container's memory limit in bytes (the chart
// sets it with a resourceFieldRef). Unless GOMEMLIMIT is set, the runtime's
// soft limit becomes 90% of it: near that the runtime collects whatever GOGC
// says, and the rest is headroom for memory the Go heap does not count
// (stacks, OPA's and gRPC's buffers in flight, fragmentation).
const memoryLimitEnv = "MESHGUARD_MEMORY_LIMIT"

// tuneGC applies serverGCPercent unless the environment sets GOGC, and the
// soft memory limit from memoryLimitEnv unless it sets GOMEMLIMIT.
func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(serverGCPercent)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		if limit, err := strconv.ParseInt(os.Getenv(memoryLimitEnv), 10, 64); err == nil && limit > 0 {
			debug.SetMemoryLimit(limit / 10 * 9)
		}
	}
}
