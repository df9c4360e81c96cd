# Example organisation rules for `meshguard validate --rego` and
# `meshguard analyze --rego` (see docs/governance.md).
package meshguard.validation

# No VirtualService may claim every host ("*") outside istio-system.
deny contains msg if {
	input.kind == "VirtualService"
	input.object.metadata.namespace != "istio-system"
	some h in input.object.spec.hosts
	h == "*"
	msg := sprintf("VirtualService %s/%s: host \"*\" is only allowed in istio-system", [input.object.metadata.namespace, input.object.metadata.name])
}

# Every ALLOW AuthorizationPolicy (action ALLOW is the default) names the
# principals it lets in, in every rule.
deny contains msg if {
	input.kind == "AuthorizationPolicy"
	object.get(input.object.spec, "action", "ALLOW") == "ALLOW"
	some i, rule in object.get(input.object.spec, "rules", [])
	not rule_names_principals(rule)
	msg := sprintf("AuthorizationPolicy %s/%s: ALLOW rule %d names no principals", [input.object.metadata.namespace, input.object.metadata.name, i])
}

rule_names_principals(rule) if {
	some f in rule.from
	count(object.get(f.source, "principals", [])) > 0
}

# PeerAuthentication never turns mTLS off in a namespace labelled
# environment=production.
deny contains msg if {
	input.kind == "PeerAuthentication"
	input.namespaceLabels.environment == "production"
	disables_mtls(input.object.spec)
	msg := sprintf("PeerAuthentication %s/%s: mTLS DISABLE is not allowed in production namespaces", [input.object.metadata.namespace, input.object.metadata.name])
}

disables_mtls(spec) if spec.mtls.mode == "DISABLE"

disables_mtls(spec) if {
	some _, p in spec.portLevelMtls
	p.mode == "DISABLE"
}

# A permissive PeerAuthentication in production is allowed, with a warning.
warn contains msg if {
	input.kind == "PeerAuthentication"
	input.namespaceLabels.environment == "production"
	input.object.spec.mtls.mode == "PERMISSIVE"
	msg := sprintf("PeerAuthentication %s/%s: PERMISSIVE mTLS in a production namespace", [input.object.metadata.namespace, input.object.metadata.name])
}
