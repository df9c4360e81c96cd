#!/usr/bin/env bash
# Builds kube-apiserver, kube-controller-manager, kubectl and etcd from the Go module proxy into bin/k8s, at the
# versions pinned in test/tools/go.mod. Skips the build when bin/k8s already
# holds binaries stamped with those versions.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out="$root/bin/k8s"
tools="$root/test/tools"
k8s_version=$(cd "$tools" && go list -m -f '{{.Version}}' k8s.io/kubernetes)
etcd_version=$(cd "$tools" && go list -m -f '{{.Version}}' go.etcd.io/etcd/server/v3)
stamp="kube-apiserver=$k8s_version kube-controller-manager=$k8s_version kubectl=$k8s_version etcd=$etcd_version go=$(go env GOVERSION)"
if [[ -x "$out/kube-apiserver" && -x "$out/kube-controller-manager" && -x "$out/kubectl" && -x "$out/etcd" && -f "$out/VERSION" && "$(cat "$out/VERSION")" == "$stamp" ]]; then
  echo "bin/k8s is up to date ($stamp)"
  exit 0
fi
mkdir -p "$out"
pkg=k8s.io/component-base/version
# The version ldflags make the server report its real version to `kubectl version`.
ldflags="-s -w -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$(echo "$k8s_version" | cut -d. -f2)"
ldflags="$ldflags -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
ldflags="$ldflags -X k8s.io/client-go/pkg/version.gitVersion=$k8s_version"
echo "building kube-apiserver, kube-controller-manager and kubectl $k8s_version and etcd $etcd_version into bin/k8s (a cold build takes 10-15 minutes)"
cd "$tools"
CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$out/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver
CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$out/kube-controller-manager" k8s.io/kubernetes/cmd/kube-controller-manager
CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$out/kubectl" k8s.io/kubernetes/cmd/kubectl
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$out/etcd" go.etcd.io/etcd/server/v3
echo "$stamp" > "$out/VERSION"
# Print only the first line of each version report. No `| head -1`: head exits early, the writer dies of SIGPIPE,
# and pipefail turns that into a failed build (exit 141).
first_line() { local text; text=$("$@"); echo "${text%%$'\n'*}"; }
first_line "$out/kube-apiserver" --version
first_line "$out/kubectl" version --client
first_line "$out/etcd" --version
