#!/usr/bin/env bash
# Copies cert-manager's CRDs (deploy/crds), which the test API server and
# `meshguard dev` install, from the module cache at the version go.mod pins.
# test/cluster embeds them; its TestCRDsMatchModules fails when they drift from
# go.mod. Istio's CRDs come from package validation (`go generate ./validation`),
# so validation and the API server always agree.
#
# The wgpolicyk8s.io/v1alpha2 PolicyReport CRD (written by meshguard's audit)
# is Kyverno's (Apache-2.0), from the Kyverno module at $KYVERNO_VERSION
# (config/crds/policyreport); it goes to test/cluster/crds/policyreport and to
# the chart's crds/, and test/cluster TestPolicyReportCRDSameInChart keeps
# the two copies equal.
set -euo pipefail
KYVERNO_VERSION=v1.19.1
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
cm=$(go list -m -f '{{.Dir}}' github.com/cert-manager/cert-manager)
dst=test/cluster/crds
rm -rf "$dst" && mkdir -p "$dst/cert-manager"
for f in "$cm"/deploy/crds/*.yaml; do install -m 0644 "$f" "$dst/cert-manager/"; done
kyverno=$(go mod download -json "github.com/kyverno/kyverno@$KYVERNO_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
mkdir -p "$dst/policyreport" deploy/helm/meshguard/crds
for d in "$dst/policyreport" deploy/helm/meshguard/crds; do
	install -m 0644 "$kyverno/config/crds/policyreport/wgpolicyk8s.io_policyreports.yaml" "$d/"
done
echo "synced CRDs into $dst"
