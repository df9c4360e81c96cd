#!/usr/bin/env bash
# The side-by-side benchmarks in one interleaved run (docs/benchmarks.md):
# meshguard's ext_authz server (`meshguard authz serve`) at 10 / 1,000 / 10,000
# policies against a no-op Check server with the same gRPC options, under ghz
# at concurrency 2 and 16; the in-process Check against the OPA "policies as
# data" baseline; /inject against its decode-only floor; memory and snapshot
# swaps; and, when perf is installed (Debian: linux-perf), where the CPU of a
# request goes in the no-op and the 10-, 1,000- and 10,000-policy servers
# (one more profiled run each). Prints the ratio table (min / median / max of per-round ratios),
# the raw figures and the load average, and keeps a copy in bin/bench-compare/.
#
# Usage: hack/bench-compare.sh [flags of test/bench/compare], e.g.
#   hack/bench-compare.sh -rounds 3 -requests 10000     # shorter
#   hack/bench-compare.sh -skip-inject                 # ext_authz only
# Defaults (5 rounds, 20,000 requests per run, 3 swaps) take about 4
# minutes on 2 cores, builds included. Run it on a quiet machine: the figures
# are ratios within one round, but a busy neighbour still widens their spread.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=${GOTOOLCHAIN:-go1.27.3}
out=bin/bench-compare
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

make --no-print-directory ghz >&2
echo "building meshguard, the no-op server and the benchmark binaries..." >&2
go build -trimpath -o "$work/meshguard" ./cmd/meshguard
go build -trimpath -o "$work/noop" ./test/bench/noop
go build -trimpath -o "$work/compare" ./test/bench/compare
go test -c -o "$work/sidebyside.test" ./test/bench/opabaseline
go test -c -o "$work/webhook.test" ./webhook

report="$out/$(date -u +%Y%m%dT%H%M%SZ).txt"
{
  echo "commit: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . 2>/dev/null || echo ' (with uncommitted changes)')"
  "$work/compare" -meshguard "$work/meshguard" -noop "$work/noop" -ghz bin/ghz \
    -sidebyside-test "$work/sidebyside.test" -webhook-test "$work/webhook.test" -webhook-dir webhook \
    -work "$work" -clk-tck "$(getconf CLK_TCK)" "$@"
} | tee "$report"
echo "report: $report" >&2
