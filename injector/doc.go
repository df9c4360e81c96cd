// Package injector is meshguard's Istio-compatible sidecar injection, as pure
// functions without I/O: the injection decision (Istio's injectRequired order),
// the injected pod (the result of Istio's default `sidecar` template plus its
// post-processing, built as typed Go values instead of rendering YAML), and
// the JSON Patch operations that turn the incoming pod into it. Behaviour
// follows Istio's pkg/kube/inject and its injection-template.yaml; deliberate
// differences are listed in docs/compatibility.md "Sidecar injection".
package injector
