#!/usr/bin/env bash
# Installs helm from the Go module proxy into bin/helm at a pinned version
# (`make helm`). Skips the build when bin/helm was already built from that
# module version. test/e2e/deploy needs it to render and lint the chart.
set -euo pipefail
version=v3.21.4
root=$(cd "$(dirname "$0")/.." && pwd)
out="$root/bin"
if [[ -x "$out/helm" ]] && [[ "$(go version -m "$out/helm" | awk '$1 == "mod" { print $3 }')" == "$version" ]]; then
  echo "bin/helm is up to date ($version)"
  exit 0
fi
mkdir -p "$out"
echo "installing helm $version into bin/helm (a cold build takes a few minutes)"
# The ldflag makes `helm version` report the real version instead of the
# source default; go install already records the module version in the binary.
GOBIN="$out" GOFLAGS=-mod=mod CGO_ENABLED=0 go install -trimpath \
  -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$version" \
  "helm.sh/helm/v3/cmd/helm@$version"
"$out/helm" version --short
