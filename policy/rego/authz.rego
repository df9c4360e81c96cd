# meshguard: fixed prelude of the per-snapshot Rego v1 module. policy/regogen.go
# appends the generated part: one else-chain branch per policy rule with the
# conditions inlined as literal comparisons, keyed by equalities on input.view
# and input.labels so OPA's rule index selects the destination workload's
# policies only (spec authz.md §5 item 5, §8), then PeerAuthentication, the
# decision and `result` = [decision, PeerAuthentication mode, reports?, user headers?].
package meshguard.authz

# DISABLE means the sidecar does not terminate TLS: no peer identity (spec §2.3).
mtls if {
	input.principal != ""
	pa_eff.mode != "DISABLE"
}
