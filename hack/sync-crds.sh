#!/usr/bin/env bash
# Copies the CRDs that the test API server and `meshguard dev` install from the
# module cache at the versions go.mod pins: Istio's (istio.io/api) and
# cert-manager's (deploy/crds). test/cluster embeds them; its TestCRDsMatchModules
# fails when they drift from go.mod.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
istio=$(go list -m -f '{{.Dir}}' istio.io/api)
cm=$(go list -m -f '{{.Dir}}' github.com/cert-manager/cert-manager)
dst=test/cluster/crds
rm -rf "$dst" && mkdir -p "$dst/istio" "$dst/cert-manager"
install -m 0644 "$istio/kubernetes/customresourcedefinitions.gen.yaml" "$dst/istio/"
for f in "$cm"/deploy/crds/*.yaml; do install -m 0644 "$f" "$dst/cert-manager/"; done
echo "synced CRDs into $dst"
