// Package deploy holds the end-to-end tests of meshguard's packaging: the Helm
// chart (deploy/helm/meshguard) and the kustomize overlays (deploy/kustomize)
// are rendered with the real helm and kubectl, checked for the properties
// docs/operations.md describes (webhook selectors, failure policies,
// least-privilege RBAC, pod security) and applied with a server-side dry run to a real API server
// with Istio's and cert-manager's CRDs installed.
//
// bin/helm comes from `make helm` (hack/helm.sh); the tests fail, not skip,
// when it is missing.
package deploy
