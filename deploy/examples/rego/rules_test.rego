package meshguard.validation_test

import data.meshguard.validation

vs(ns, host) := {"kind": "VirtualService", "namespaceLabels": {}, "object": {
	"metadata": {"name": "r", "namespace": ns},
	"spec": {"hosts": [host]},
}}

test_wildcard_host_denied_outside_istio_system if {
	count(validation.deny) == 1 with input as vs("default", "*")
}

test_wildcard_host_allowed_in_istio_system if {
	count(validation.deny) == 0 with input as vs("istio-system", "*")
}

test_named_host_allowed if {
	count(validation.deny) == 0 with input as vs("default", "reviews")
}

ap(spec) := {"kind": "AuthorizationPolicy", "namespaceLabels": {}, "object": {
	"metadata": {"name": "p", "namespace": "default"},
	"spec": spec,
}}

test_allow_without_principals_denied if {
	count(validation.deny) == 1 with input as ap({"rules": [{"to": [{"operation": {"methods": ["GET"]}}]}]})
}

test_allow_with_principals_allowed if {
	count(validation.deny) == 0 with input as ap({"rules": [{"from": [{"source": {"principals": ["cluster.local/ns/default/sa/a"]}}]}]})
}

test_deny_policy_needs_no_principals if {
	count(validation.deny) == 0 with input as ap({"action": "DENY", "rules": [{"to": [{"operation": {"methods": ["GET"]}}]}]})
}

pa(labels, mode) := {"kind": "PeerAuthentication", "namespaceLabels": labels, "object": {
	"metadata": {"name": "default", "namespace": "shop"},
	"spec": {"mtls": {"mode": mode}},
}}

test_disable_denied_in_production if {
	count(validation.deny) == 1 with input as pa({"environment": "production"}, "DISABLE")
}

test_disable_allowed_elsewhere if {
	count(validation.deny) == 0 with input as pa({"environment": "staging"}, "DISABLE")
}

test_permissive_warns_in_production if {
	count(validation.deny) == 0 with input as pa({"environment": "production"}, "PERMISSIVE")
	count(validation.warn) == 1 with input as pa({"environment": "production"}, "PERMISSIVE")
}
