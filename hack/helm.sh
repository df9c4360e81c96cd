#!/usr/bin/env bash
# Installs helm from the Go module proxy into bin/helm at a pinned version
# (`make helm`). Skips the build when bin/helm was already built from that
# module version with the Kubernetes version below (bin/helm.stamp).
# test/e2e/deploy needs it to render and lint the chart.
set -euo pipefail
version=v3.21.4
root=$(cd "$(dirname "$0")/.." && pwd)
out="$root/bin"
# The Kubernetes version `helm template` and `helm lint` assume without a cluster: Helm's Makefile sets it from
# the k8s.io/client-go it builds with (v0.36 -> 1.36); without it helm assumes 1.20 and refuses the chart
# (kubeVersion >=1.28). Read from helm's go.mod, as its Makefile does.
gomod=$(cd / && go mod download -json "helm.sh/helm/v3@$version" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
client_go=$(awk '$1 == "k8s.io/client-go" { print $2 }' "$gomod")
kube_major=$(( $(echo "$client_go" | cut -d. -f1 | tr -d v) + 1 ))
kube_minor=$(echo "$client_go" | cut -d. -f2)
stamp="$version kube=$kube_major.$kube_minor"
if [[ -x "$out/helm" && -f "$out/helm.stamp" && "$(cat "$out/helm.stamp")" == "$stamp" ]]; then
  echo "bin/helm is up to date ($stamp)"
  exit 0
fi
mkdir -p "$out"
echo "installing helm $version into bin/helm (a cold build takes a few minutes)"
# The version ldflag makes `helm version` report the real version instead of the
# source default; go install already records the module version in the binary.
ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$version"
for pkg in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
  ldflags="$ldflags -X $pkg.k8sVersionMajor=$kube_major -X $pkg.k8sVersionMinor=$kube_minor"
done
GOBIN="$out" GOFLAGS=-mod=mod CGO_ENABLED=0 go install -trimpath -ldflags "$ldflags" \
  "helm.sh/helm/v3/cmd/helm@$version"
echo "$stamp" > "$out/helm.stamp"
"$out/helm" version --short
