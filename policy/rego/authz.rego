# meshguard: fixed prelude of the per-snapshot Rego v1 module. policy/regogen.go
# appends the generated part: one else-chain branch per policy rule with the
# conditions inlined as literal comparisons, keyed by equalities on input.view
# and input.labels so OPA's rule index selects the destination workload's
# policies only (OPA's policy-performance docs, "Use indexed statements"), then PeerAuthentication, the
# decision and `result` = [decision, PeerAuthentication mode, reports?, user headers?].
package meshguard.authz

# DISABLE means the sidecar does not terminate TLS: no peer identity. A
# gateway's pods (not `sidecar`, see regogen.go) keep the identity their
# listener saw: PeerAuthentication does not configure them.
mtls if {
	input.principal != ""
	pa_eff.mode != "DISABLE"
}

mtls if {
	input.principal != ""
	not sidecar
}
