#!/usr/bin/env bash
# Copies cert-manager's CRDs (deploy/crds), which the test API server and
# `meshguard dev` install, from the module cache at the version go.mod pins.
# test/cluster embeds them; its TestCRDsMatchModules fails when they drift from
# go.mod. Istio's CRDs come from package validation (`go generate ./validation`),
# so validation and the API server always agree.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
cm=$(go list -m -f '{{.Dir}}' github.com/cert-manager/cert-manager)
dst=test/cluster/crds
rm -rf "$dst" && mkdir -p "$dst/cert-manager"
for f in "$cm"/deploy/crds/*.yaml; do install -m 0644 "$f" "$dst/cert-manager/"; done
echo "synced CRDs into $dst"
