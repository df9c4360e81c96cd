#!/usr/bin/env bash
# Load-test the ext_authz server with ghz (github.com/bojand/ghz):
#   1. generate N AuthorizationPolicies over 100 namespaces (+ one Pod) into a temp dir,
#   2. start `meshguard authz serve` on 127.0.0.1 with that dir,
#   3. warm up (WARMUP requests, default 2000, not reported), then run a bounded ghz load
#      (fixed request count) and print rps, p50, p99.
# Usage: hack/ghz-load.sh [policies=1000] [requests=20000] [concurrency=16]
# PIN=1 pins the server to CPU 0 and ghz to CPU 1 (taskset), so the load generator
# does not steal the server's core on a 2-core machine.
# ghz runs with GOGC=400 (GHZ_GOGC to change): with Go's default its own 3-6 MB heap is collected every ~40 ms
# on the same two cores, and those pauses land in the latencies it records (docs/benchmarks.md).
# The server runs with meshguard's own GC default (GOGC unset; see cmd/meshguard/gc.go).
# Needs bin/ghz: GOBIN=$PWD/bin go install github.com/bojand/ghz/cmd/ghz@v0.93.0
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1000}
REQUESTS=${2:-20000}
CONC=${3:-16}
PORT=${PORT:-19000}
GHZ=${GHZ:-bin/ghz}
[[ -x $GHZ ]] || { echo "missing $GHZ: GOBIN=\$PWD/bin go install github.com/bojand/ghz/cmd/ghz@v0.93.0" >&2; exit 2; }

work=$(mktemp -d)
pid=""
cleanup() { [[ -n $pid ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

# Same shape as policy.GenerateSet: policy i in ns-(i%100), selector app-((i/100)%10),
# ALLOW on principals+methods+paths+header condition; every 10th is a DENY on /admin*.
mkdir -p "$work/policies"
{
  for ((i = 0; i < N; i++)); do
    ns="ns-$((i % 100))"; app="app-$(((i / 100) % 10))"
    if ((i % 10 == 9)); then
      cat <<Y
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: p-$i, namespace: $ns}
spec:
  selector: {matchLabels: {app: $app}}
  action: DENY
  rules:
  - to: [{operation: {paths: ["/admin*"]}}]
---
Y
    else
      cat <<Y
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: p-$i, namespace: $ns}
spec:
  selector: {matchLabels: {app: $app}}
  rules:
  - from: [{source: {principals: ["cluster.local/ns/$ns/sa/client-$i", "cluster.local/ns/ingress/sa/gw"]}}]
    to: [{operation: {methods: ["GET", "POST"], paths: ["/api/v$((i % 3))/*", "/healthz"]}}]
    when: [{key: "request.headers[x-tenant]", values: ["t-$((i % 7))", "shared"]}]
---
Y
    fi
  done
  cat <<Y
apiVersion: v1
kind: Pod
metadata: {name: app-0, namespace: ns-0, labels: {app: app-0}}
status: {podIP: 10.0.1.1}
Y
} > "$work/policies/policies.yaml"

cat > "$work/req.json" <<'J'
{"attributes": {
  "source": {"principal": "spiffe://cluster.local/ns/ingress/sa/gw", "address": {"socketAddress": {"address": "10.0.0.5", "portValue": 40000}}},
  "destination": {"address": {"socketAddress": {"address": "10.0.1.1", "portValue": 8080}}},
  "request": {"http": {"method": "GET", "path": "/api/v0/items?x=1", "host": "app-0.ns-0",
    "headers": {":authority": "app-0.ns-0", ":method": "GET", ":path": "/api/v0/items?x=1", "x-tenant": "shared", "user-agent": "ghz", "accept": "*/*"}}}}}
J

go build -o "$work/meshguard" ./cmd/meshguard
# Verify the verdict offline first: the load must exercise an ALLOW match.
"$work/meshguard" authz check --policy-dir "$work/policies" --request "$work/req.json"

server_cpu=() client_cpu=()
if [[ ${PIN:-0} == 1 ]]; then server_cpu=(taskset -c 0) client_cpu=(taskset -c 1); fi
"${server_cpu[@]}" "$work/meshguard" authz serve --policy-dir "$work/policies" --authz-addr "127.0.0.1:$PORT" --decision-log=off 2>"$work/server.log" &
pid=$!
for _ in $(seq 1 300); do
  if "$GHZ" --insecure --call envoy.service.auth.v3.Authorization/Check -D "$work/req.json" -n 1 "127.0.0.1:$PORT" >/dev/null 2>&1; then break; fi
  kill -0 "$pid" 2>/dev/null || { cat "$work/server.log" >&2; exit 1; }
  sleep 0.1
done

# Warm-up, not reported: connections, the evaluation caches and pools, the
# first collections of a fresh process (WARMUP requests, default 2000).
GOGC=${GHZ_GOGC:-400} "${client_cpu[@]}" "$GHZ" --insecure --call envoy.service.auth.v3.Authorization/Check -D "$work/req.json" \
  -n "${WARMUP:-2000}" -c "$CONC" --connections 2 "127.0.0.1:$PORT" -O summary >/dev/null

echo "== ghz: $N policies, $REQUESTS requests, concurrency $CONC, GOMAXPROCS=${GOMAXPROCS:-all}, PIN=${PIN:-0}, ghz GOGC=${GHZ_GOGC:-400}"", warm-up ${WARMUP:-2000}"
GOGC=${GHZ_GOGC:-400} "${client_cpu[@]}" "$GHZ" --insecure --call envoy.service.auth.v3.Authorization/Check -D "$work/req.json" \
  -n "$REQUESTS" -c "$CONC" --connections 2 "127.0.0.1:$PORT" -O summary | tee "$work/ghz.txt" |
  grep -E "Count:|Requests/sec:|Average:|Fastest:|Slowest:|50 %|90 %|99 %|\[OK\]|\[PermissionDenied\]|Error" || true
