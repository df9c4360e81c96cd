# An OPA-Envoy user's "policies as data" authorization: the Istio
# AuthorizationPolicy objects and Pods are loaded as JSON data where kube-mgmt
# replicates them (data.kubernetes.<resource>.<namespace>.<name>) and
# this one generic policy iterates over them with Istio's semantics for the
# fields the benchmark policies use (principals, methods, paths, request
# header conditions, their not* forms, selectors, ALLOW/DENY). Input is
# OPA-Envoy's: the CheckRequest as protojson plus parsed_path/parsed_query.
package envoy.authz

default allow := false

http := input.attributes.request.http

dst_ip := input.attributes.destination.address.socketAddress.address

# The source identity without the spiffe:// scheme, as Istio matches principals.
principal := trim_prefix(input.attributes.source.principal, "spiffe://") if {
	input.attributes.source.principal != ""
}

request_path := split(http.path, "?")[0]

workload := pod if {
	some pods in data.kubernetes.pods
	some pod in pods
	pod.status.podIP == dst_ip
}

action(p) := object.get(p.spec, "action", "ALLOW")

# The policies of the workload's namespace and of the mesh root namespace
# whose selector labels all match the workload.
applicable contains p if {
	some ns in {workload.metadata.namespace, data.root_namespace}
	some p in data.kubernetes.authorizationpolicies[ns]
	every k, v in object.get(p.spec, ["selector", "matchLabels"], {}) {
		workload.metadata.labels[k] == v
	}
}

# Istio's string match: exact, "prefix*", "*suffix" or "*".
str_match(_, "*")

str_match(v, pat) if {
	endswith(pat, "*")
	startswith(v, trim_suffix(pat, "*"))
}

str_match(v, pat) if {
	startswith(pat, "*")
	endswith(v, trim_prefix(pat, "*"))
}

str_match(v, pat) if v == pat

any_match(v, pats) if {
	some pat in pats
	str_match(v, pat)
}

# A field constrains only when present; its value must be defined to match.
field_ok(obj, field, _) if not obj[field]

field_ok(obj, field, v) if any_match(v, obj[field])

not_field_ok(obj, field, _) if not obj[field]

not_field_ok(obj, field, v) if {
	obj[field]
	not any_match(v, obj[field])
}

source_ok(s) if {
	field_ok(s, "principals", principal)
	not_field_ok(s, "notPrincipals", principal)
}

operation_ok(o) if {
	field_ok(o, "methods", http.method)
	not_field_ok(o, "notMethods", http.method)
	field_ok(o, "paths", request_path)
	not_field_ok(o, "notPaths", request_path)
}

header_name(key) := trim_suffix(trim_prefix(key, "request.headers["), "]") if startswith(key, "request.headers[")

condition_ok(c) if {
	v := http.headers[header_name(c.key)]
	field_ok(c, "values", v)
	not_field_ok(c, "notValues", v)
}

from_ok(r) if not r.from

from_ok(r) if {
	some f in r.from
	source_ok(f.source)
}

to_ok(r) if not r.to

to_ok(r) if {
	some t in r.to
	operation_ok(t.operation)
}

when_ok(r) if {
	every c in object.get(r, "when", []) {
		condition_ok(c)
	}
}

policy_matches(p) if {
	some r in p.spec.rules
	from_ok(r)
	to_ok(r)
	when_ok(r)
}

deny if {
	some p in applicable
	action(p) == "DENY"
	policy_matches(p)
}

allow_policy_exists if {
	some p in applicable
	action(p) == "ALLOW"
}

allow_matched if {
	some p in applicable
	action(p) == "ALLOW"
	policy_matches(p)
}

# A destination with no Pod is denied: the policies that select it cannot
# be found (meshguard denies it whenever they could depend on it).
allow if {
	workload
	not deny
	not allow_policy_exists
}

allow if {
	workload
	not deny
	allow_matched
}
