# A rule over input.referenced: the DestinationRules a VirtualService routes
# through must set TLS; routing to a plain Kubernetes Service is a warning.
package meshguard.validation

deny contains msg if {
	input.kind == "VirtualService"
	some r in input.referenced
	r.kind == "DestinationRule"
	not r.spec.trafficPolicy.tls
	msg := sprintf("VirtualService %s/%s: routes through DestinationRule %s/%s, which sets no TLS", [input.object.metadata.namespace, input.object.metadata.name, r.metadata.namespace, r.metadata.name])
}

warn contains msg if {
	input.kind == "VirtualService"
	some r in input.referenced
	r.kind == "Service"
	msg := sprintf("VirtualService %s/%s: routes to Service %s/%s", [input.object.metadata.namespace, input.object.metadata.name, r.metadata.namespace, r.metadata.name])
}
