package validation

import (
	"encoding/base64"
	"strings"
	"testing"
)

// TestIstioTableVirtualService: the rows of Istio's own unit tests for
// VirtualService parts (istio/istio pkg/config/validation/validation_test.go,
// virtualservice_test.go and agent/validation_test.go, the versions of the
// 86c9f01 era), each
// re-expressed as a whole VirtualService and run through meshguard's
// single-object entry point. A row is named "<upstream test>/<upstream row>".
//
// Where Istio's row tests a part on its own (validateHTTPRoute,
// validateHTTPRetry, ...), the part is put into a minimal, otherwise valid
// VirtualService: an HTTP part into http[0] of a mesh VirtualService for
// foo.bar, a route-destination list into tcp[0].route, a delegate route into
// a VirtualService without hosts. Warnings are asserted only where Istio's row
// asserts them (TestValidateVirtualService, TestValidateHTTPDirectResponse).
//
// Rows not asserted, with the reason:
//   - TestValidateHTTPStatus 600: Istio's validateHTTPStatus accepts 600;
//     meshguard refuses it deliberately (docs/compatibility.md
//     "VirtualService", fault.abort.httpStatus and directResponse.status).
//   - TestValidateHTTPFaultInjectionAbort "nil"/"grpc: nil",
//     TestValidateHTTPRewrite "nil in", TestValidateUriRegexRewrite
//     "uriRegexRewrite nil", TestValidateHTTPRedirect "nil redirect",
//     TestValidateHTTPDirectResponse "nil redirect",
//     TestValidateHTTPFaultInjectionDelay "nil": an absent section; each is
//     covered by the rows whose route leaves that section out.
//   - TestValidateWildcardDomainForVirtualServiceBoundToGateway "IP address":
//     ValidateVirtualService ignores that helper's error for an IP host
//     (netutil.IsValidIPAddress), so an IP host is valid on a VirtualService.
//   - Rows of older (gogo-protobuf era) versions of these tests whose rule
//     Istio has since reversed, ported here as the newer rows instead: route
//     weights summing to 100 ("total weight > 100"/"< 100" invalid), an
//     :authority set in a destination's headers invalid, the x-jwt-claim
//     header prefix, a mesh-bound root VirtualService with a delegate, regex
//     matches on a root route and sourceNamespace in a delegate all invalid.
//   - TestStrictValidateHTTPHeaderName: ValidateStrictHTTPHeaderName is not
//     used by any VirtualService field.
//   - "null header match" (TestValidateHTTPRoute, TestValidateRootHTTPRoute,
//     TestValidateDelegateHTTPRoute) and "match with nil element"
//     (TestValidateHTTPRoute, TestValidateDelegateHTTPRoute): a Go nil no
//     object can carry. The API server prunes `headers: {h: null}` (a
//     non-nullable map value) before any webhook sees it, so Istio's webhook
//     gets a route without that header, as meshguard does (schema.go
//     pruneNulls); `match: [null]` fails the CRD schema (an array item must be
//     an object) in both. The mirror rows keep their point without Istio's
//     incidental `Match: []*HTTPMatchRequest{nil}`.
func TestIstioTableVirtualService(t *testing.T) {
	const head = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: r, namespace: shop}\nspec:\n"
	// vs: a whole spec given as YAML lines (two-space indented).
	vs := func(spec string) string { return head + spec }
	// route: an HTTP route (flow YAML) in a mesh VirtualService for foo.bar.
	route := func(r string) string { return vs("  hosts: [foo.bar]\n  http:\n  - " + r + "\n") }
	// delegateRoute: an HTTP route in a delegate VirtualService (no hosts).
	delegateRoute := func(r string) string { return vs("  http:\n  - " + r + "\n") }
	// withDest: an HTTP route to foo.baz plus the given fields.
	withDest := func(fields string) string {
		if fields == "" {
			return route("{route: [{destination: {host: foo.baz}}]}")
		}
		return route("{route: [{destination: {host: foo.baz}}], " + fields + "}")
	}
	// tcpDests: a route-destination list (flow YAML) as tcp[0].route.
	tcpDests := func(ds string) string { return vs("  hosts: [foo.bar]\n  tcp:\n  - route: " + ds + "\n") }
	// headerOps: header operations on route[0] of an HTTP route.
	headerOps := func(h string) string {
		return route("{route: [{destination: {host: foo.baz}, headers: " + h + "}]}")
	}
	// gwHost: host h on a VirtualService bound to gateway ns1/gw; with sni, a
	// TLS route with an SNI host under a second host *.sni.example.
	gwHost := func(h string, sni bool) string {
		if sni {
			return vs("  hosts: [\"" + h + "\", \"*.sni.example\"]\n  gateways: [ns1/gw]\n  tls: [{match: [{sniHosts: [a.sni.example]}], route: [{destination: {host: a.sni.example}}]}]\n")
		}
		return vs("  hosts: [\"" + h + "\"]\n  gateways: [ns1/gw]\n  http: [{route: [{destination: {host: foo.baz}}]}]\n")
	}
	bigString := func(n int) string { return strings.Repeat("a", n) }
	bigBytes := func(n int) string { return base64.StdEncoding.EncodeToString([]byte(strings.Repeat("a", n))) }
	const kb, mb = 1024, 1024 * 1024

	const (
		noCheck = -1 // the upstream row does not check warnings
		noWarn  = 0
		warn    = 1
	)
	type row struct {
		name  string
		doc   string
		valid bool
		warn  int
	}
	rows := []row{
		// ---- validation_test.go TestValidateHTTPHeaderName (ValidateHTTPHeaderNameOrJwtClaimRoute, as a match header name) ----
		{"TestValidateHTTPHeaderName/header1", withDest(`match: [{headers: {header1: {exact: x}}}]`), true, noCheck},
		{"TestValidateHTTPHeaderName/X-Requested-With", withDest(`match: [{headers: {X-Requested-With: {exact: x}}}]`), true, noCheck},
		{"TestValidateHTTPHeaderName/:authority", withDest(`match: [{headers: {":authority": {exact: x}}}]`), true, noCheck},
		{"TestValidateHTTPHeaderName/funky!$#_", withDest(`match: [{headers: {"funky!$#_": {exact: x}}}]`), true, noCheck},
		{"TestValidateHTTPHeaderName/empty", withDest(`match: [{headers: {"": {exact: x}}}]`), false, noCheck},
		{"TestValidateHTTPHeaderName/::", withDest(`match: [{headers: {"::": {exact: x}}}]`), false, noCheck},
		{"TestValidateHTTPHeaderName/illegal\"char", withDest(`match: [{headers: {"illegal\"char": {exact: x}}}]`), false, noCheck},

		// ---- TestValidateCORSPolicy ----
		{"TestValidateCORSPolicy/valid", withDest(`corsPolicy: {allowMethods: [GET, POST], allowHeaders: [header1, header2], exposeHeaders: [header3], maxAge: 2s}`), true, noCheck},
		{"TestValidateCORSPolicy/bad method", withDest(`corsPolicy: {allowMethods: [GET, PUTT], allowHeaders: [header1, header2], exposeHeaders: [header3], maxAge: 2s}`), false, noCheck},
		{"TestValidateCORSPolicy/bad header", withDest(`corsPolicy: {allowMethods: [GET, POST], allowHeaders: [header1, header2], exposeHeaders: [""], maxAge: 2s}`), false, noCheck},
		{"TestValidateCORSPolicy/bad max age", withDest(`corsPolicy: {allowMethods: [GET, POST], allowHeaders: [header1, header2], exposeHeaders: [header3], maxAge: 2.000000042s}`), false, noCheck},
		{"TestValidateCORSPolicy/empty matchType AllowOrigins", withDest(`corsPolicy: {allowOrigins: [{exact: ""}, {prefix: ""}, {regex: ""}], allowMethods: [GET, POST], allowHeaders: [header1, header2], exposeHeaders: [header3], maxAge: 2s}`), false, noCheck},
		{"TestValidateCORSPolicy/non empty matchType AllowOrigins", withDest(`corsPolicy: {allowOrigins: [{exact: exact}, {prefix: prefix}, {regex: regex}], allowMethods: [GET, POST], allowHeaders: [header1, header2], exposeHeaders: [header3], maxAge: 2s}`), true, noCheck},

		// ---- TestValidateHTTPStatus (validateHTTPStatus, as fault.abort.httpStatus) ----
		{"TestValidateHTTPStatus/-100", withDest(`fault: {abort: {httpStatus: -100}}`), false, noCheck},
		{"TestValidateHTTPStatus/0", withDest(`fault: {abort: {httpStatus: 0}}`), false, noCheck},
		{"TestValidateHTTPStatus/200", withDest(`fault: {abort: {httpStatus: 200}}`), true, noCheck},
		{"TestValidateHTTPStatus/601", withDest(`fault: {abort: {httpStatus: 601}}`), false, noCheck},

		// ---- TestValidateHTTPFaultInjectionAbort ----
		{"TestValidateHTTPFaultInjectionAbort/valid", withDest(`fault: {abort: {percentage: {value: 20}, httpStatus: 200}}`), true, noCheck},
		{"TestValidateHTTPFaultInjectionAbort/valid default", withDest(`fault: {abort: {httpStatus: 200}}`), true, noCheck},
		{"TestValidateHTTPFaultInjectionAbort/invalid http status", withDest(`fault: {abort: {percentage: {value: 20}, httpStatus: 9000}}`), false, noCheck},
		{"TestValidateHTTPFaultInjectionAbort/invalid low http status", withDest(`fault: {abort: {percentage: {value: 20}, httpStatus: 100}}`), false, noCheck},
		{"TestValidateHTTPFaultInjectionAbort/valid percentage", withDest(`fault: {abort: {percentage: {value: 0.001}, httpStatus: 200}}`), true, noCheck},
		{"TestValidateHTTPFaultInjectionAbort/invalid fractional percent", withDest(`fault: {abort: {percentage: {value: -10.0}, httpStatus: 200}}`), false, noCheck},
		{"TestValidateHTTPFaultInjectionAbort/grpc: valid", withDest(`fault: {abort: {percentage: {value: 20}, grpcStatus: DEADLINE_EXCEEDED}}`), true, noCheck},
		{"TestValidateHTTPFaultInjectionAbort/grpc: valid default percentage", withDest(`fault: {abort: {grpcStatus: DEADLINE_EXCEEDED}}`), true, noCheck},
		{"TestValidateHTTPFaultInjectionAbort/grpc: invalid status", withDest(`fault: {abort: {percentage: {value: 20}, grpcStatus: BAD_STATUS}}`), false, noCheck},
		{"TestValidateHTTPFaultInjectionAbort/grpc: valid percentage", withDest(`fault: {abort: {percentage: {value: 0.001}, grpcStatus: INTERNAL}}`), true, noCheck},
		{"TestValidateHTTPFaultInjectionAbort/grpc: invalid fractional percent", withDest(`fault: {abort: {percentage: {value: -10.0}, grpcStatus: DEADLINE_EXCEEDED}}`), false, noCheck},

		// ---- TestValidateHTTPFaultInjectionDelay ----
		{"TestValidateHTTPFaultInjectionDelay/valid fixed", withDest(`fault: {delay: {percentage: {value: 20}, fixedDelay: 3s}}`), true, noCheck},
		{"TestValidateHTTPFaultInjectionDelay/valid default", withDest(`fault: {delay: {fixedDelay: 3s}}`), true, noCheck},
		{"TestValidateHTTPFaultInjectionDelay/invalid percent", withDest(`fault: {delay: {percentage: {value: 101}, fixedDelay: 3s}}`), false, noCheck},
		{"TestValidateHTTPFaultInjectionDelay/invalid delay", withDest(`fault: {delay: {percentage: {value: 20}, fixedDelay: 3.000000042s}}`), false, noCheck},
		{"TestValidateHTTPFaultInjectionDelay/valid fractional percentage", withDest(`fault: {delay: {percentage: {value: 0.001}, fixedDelay: 3s}}`), true, noCheck},
		{"TestValidateHTTPFaultInjectionDelay/invalid fractional percentage", withDest(`fault: {delay: {percentage: {value: -10.0}, fixedDelay: 3s}}`), false, noCheck},

		// ---- TestValidateHTTPRetry ----
		{"TestValidateHTTPRetry/valid", withDest(`retries: {attempts: 10, perTryTimeout: 2s, retryOn: "5xx,gateway-error"}`), true, noCheck},
		{"TestValidateHTTPRetry/disable retries", withDest(`retries: {attempts: 0}`), true, noCheck},
		{"TestValidateHTTPRetry/invalid, retry policy configured but attempts set to zero", withDest(`retries: {attempts: 0, perTryTimeout: 2s, retryOn: "5xx,gateway-error"}`), false, noCheck},
		{"TestValidateHTTPRetry/valid default", withDest(`retries: {attempts: 10}`), true, noCheck},
		{"TestValidateHTTPRetry/valid http status retryOn", withDest(`retries: {attempts: 10, perTryTimeout: 2s, retryOn: "503,connect-failure"}`), true, noCheck},
		{"TestValidateHTTPRetry/invalid attempts", withDest(`retries: {attempts: -1, perTryTimeout: 2s}`), false, noCheck},
		{"TestValidateHTTPRetry/invalid timeout", withDest(`retries: {attempts: 10, perTryTimeout: 2.000000001s}`), false, noCheck},
		{"TestValidateHTTPRetry/timeout too small", withDest(`retries: {attempts: 10, perTryTimeout: 0.000000999s}`), false, noCheck},
		{"TestValidateHTTPRetry/invalid backoff", withDest(`retries: {attempts: 10, backoff: 0.000000999s}`), false, noCheck},
		{"TestValidateHTTPRetry/invalid policy retryOn", withDest(`retries: {attempts: 10, perTryTimeout: 2s, retryOn: "5xx,invalid policy"}`), false, noCheck},
		{"TestValidateHTTPRetry/invalid http status retryOn", withDest(`retries: {attempts: 10, perTryTimeout: 2s, retryOn: "600,connect-failure"}`), false, noCheck},
		{"TestValidateHTTPRetry/invalid, retryRemoteLocalities configured but attempts set to zero", withDest(`retries: {attempts: 0, retryRemoteLocalities: false}`), false, noCheck},

		// ---- TestValidateHTTPRewrite ----
		{"TestValidateHTTPRewrite/uri and authority", withDest(`rewrite: {uri: /path/to/resource, authority: foobar.org}`), true, noCheck},
		{"TestValidateHTTPRewrite/uri", withDest(`rewrite: {uri: /path/to/resource}`), true, noCheck},
		{"TestValidateHTTPRewrite/authority", withDest(`rewrite: {authority: foobar.org}`), true, noCheck},
		{"TestValidateHTTPRewrite/uriRegexRewrite", withDest(`rewrite: {uriRegexRewrite: {match: "^/service/([^/]+)(/.*)$", rewrite: '\2/instance/\1'}}`), true, noCheck},
		{"TestValidateHTTPRewrite/uriRegexRewrite and authority", withDest(`rewrite: {authority: foobar.org, uriRegexRewrite: {match: "^/service/([^/]+)(/.*)$", rewrite: '\2/instance/\1'}}`), true, noCheck},
		{"TestValidateHTTPRewrite/uriRegexRewrite and uri", withDest(`rewrite: {uri: /path/to/resource, uriRegexRewrite: {match: "^/service/([^/]+)(/.*)$", rewrite: '\2/instance/\1'}}`), false, noCheck},
		{"TestValidateHTTPRewrite/no uri, uriRegexRewrite, or authority", withDest(`rewrite: {}`), false, noCheck},

		// ---- TestValidateUriRegexRewrite ----
		{"TestValidateUriRegexRewrite/uriRegexRewrite happy path", withDest(`rewrite: {uriRegexRewrite: {match: "^/service/([^/]+)(/.*)$", rewrite: '\2/instance/\1'}}`), true, noCheck},
		{"TestValidateUriRegexRewrite/uriRegexRewrite missing match", withDest(`rewrite: {uriRegexRewrite: {rewrite: '\2/instance/\1'}}`), false, noCheck},
		{"TestValidateUriRegexRewrite/uriRegexRewrite missing rewrite", withDest(`rewrite: {uriRegexRewrite: {match: "^/service/([^/]+)(/.*)$"}}`), false, noCheck},
		{"TestValidateUriRegexRewrite/uriRegexRewrite invalid regex patterns", withDest(`rewrite: {uriRegexRewrite: {match: "[", rewrite: "["}}`), false, noCheck},

		// ---- TestValidateHTTPRedirect ----
		{"TestValidateHTTPRedirect/empty uri and authority", route(`{redirect: {uri: "", authority: ""}}`), false, noCheck},
		{"TestValidateHTTPRedirect/too small redirect code", route(`{redirect: {uri: t, authority: "", redirectCode: 299}}`), false, noCheck},
		{"TestValidateHTTPRedirect/too large redirect code", route(`{redirect: {uri: t, authority: "", redirectCode: 400}}`), false, noCheck},
		{"TestValidateHTTPRedirect/empty authority", route(`{redirect: {uri: t, authority: ""}}`), true, noCheck},
		{"TestValidateHTTPRedirect/empty uri", route(`{redirect: {uri: "", authority: t}}`), true, noCheck},
		{"TestValidateHTTPRedirect/empty redirect code", route(`{redirect: {uri: t, authority: t, redirectCode: 0}}`), true, noCheck},
		{"TestValidateHTTPRedirect/normal redirect", route(`{redirect: {uri: t, authority: t, redirectCode: 308}}`), true, noCheck},

		// ---- TestValidateHTTPDirectResponse (warnings asserted) ----
		{"TestValidateHTTPDirectResponse/status 200", route(`{directResponse: {status: 200}}`), true, noWarn},
		{"TestValidateHTTPDirectResponse/status 100", route(`{directResponse: {status: 199}}`), false, noWarn},
		{"TestValidateHTTPDirectResponse/status 600", route(`{directResponse: {status: 601}}`), false, noWarn},
		{"TestValidateHTTPDirectResponse/with string body", route(`{directResponse: {status: 200, body: {string: hello}}}`), true, noWarn},
		{"TestValidateHTTPDirectResponse/with string body over 100kb", route(`{directResponse: {status: 200, body: {string: "` + bigString(101*kb) + `"}}}`), true, warn},
		{"TestValidateHTTPDirectResponse/with string body over 1mb", route(`{directResponse: {status: 200, body: {string: "` + bigString(2*mb) + `"}}}`), false, noWarn},
		{"TestValidateHTTPDirectResponse/with bytes body", route(`{directResponse: {status: 200, body: {bytes: "` + base64.StdEncoding.EncodeToString([]byte("hello")) + `"}}}`), true, noWarn},
		{"TestValidateHTTPDirectResponse/with bytes body over 100kb", route(`{directResponse: {status: 200, body: {bytes: "` + bigBytes(100*kb+1) + `"}}}`), true, warn},
		{"TestValidateHTTPDirectResponse/with bytes body over 1mb", route(`{directResponse: {status: 200, body: {bytes: "` + bigBytes(mb+1) + `"}}}`), false, noWarn},

		// ---- TestValidateDestination (as http[0].route[0].destination) ----
		{"TestValidateDestination/empty", route(`{route: [{destination: {}}]}`), false, noCheck},
		{"TestValidateDestination/simple", route(`{route: [{destination: {host: foo.bar}}]}`), true, noCheck},
		{"TestValidateDestination/full", route(`{route: [{destination: {host: foo.bar, subset: shiny, port: {number: 5000}}}]}`), true, noCheck},
		{"TestValidateDestination/unnumbered-selector", route(`{route: [{destination: {host: foo.bar, subset: shiny, port: {}}}]}`), false, noCheck},

		// ---- validation_test.go TestValidateHTTPRoute (validateHTTPRoute, not a delegate, no gateway semantics) ----
		{"TestValidateHTTPRoute/empty", route(`{}`), false, noCheck},
		{"TestValidateHTTPRoute/simple", route(`{route: [{destination: {host: foo.baz}}]}`), true, noCheck},
		{"TestValidateHTTPRoute/no destination", route(`{route: [{destination: null}]}`), false, noCheck},
		{"TestValidateHTTPRoute/weighted", route(`{route: [{destination: {host: foo.baz.south}, weight: 25}, {destination: {host: foo.baz.east}, weight: 75}]}`), true, noCheck},
		{"TestValidateHTTPRoute/total weight > 100", route(`{route: [{destination: {host: foo.baz.south}, weight: 550}, {destination: {host: foo.baz.east}, weight: 500}]}`), true, noCheck},
		{"TestValidateHTTPRoute/total weight < 100", route(`{route: [{destination: {host: foo.baz.south}, weight: 49}, {destination: {host: foo.baz.east}, weight: 50}]}`), true, noCheck},
		{"TestValidateHTTPRoute/simple redirect", route(`{redirect: {uri: /lerp, authority: foo.biz}}`), true, noCheck},
		{"TestValidateHTTPRoute/conflicting redirect and route", route(`{route: [{destination: {host: foo.baz}}], redirect: {uri: /lerp, authority: foo.biz}}`), false, noCheck},
		{"TestValidateHTTPRoute/request response headers", route(`{route: [{destination: {host: foo.baz}}]}`), true, noCheck},
		{"TestValidateHTTPRoute/valid headers", headerOps(`{request: {add: {name: ""}, set: {name: ""}, remove: [name]}, response: {add: {name: ""}, set: {name: ""}, remove: [name]}}`), true, noCheck},
		{"TestValidateHTTPRoute/empty header name - request add", headerOps(`{request: {add: {"": value}}}`), false, noCheck},
		{"TestValidateHTTPRoute/empty header name - request set", headerOps(`{request: {set: {"": value}}}`), false, noCheck},
		{"TestValidateHTTPRoute/empty header name - request remove", headerOps(`{request: {remove: [""]}}`), false, noCheck},
		{"TestValidateHTTPRoute/empty header name - response add", headerOps(`{response: {add: {"": value}}}`), false, noCheck},
		{"TestValidateHTTPRoute/empty header name - response set", headerOps(`{response: {set: {"": value}}}`), false, noCheck},
		{"TestValidateHTTPRoute/empty header name - response remove", headerOps(`{response: {remove: [""]}}`), false, noCheck},
		{"TestValidateHTTPRoute/envoy escaped % set", headerOps(`{response: {set: {i-love-istio: "100%%"}}}`), true, noCheck},
		{"TestValidateHTTPRoute/envoy variable set", headerOps(`{response: {set: {name: "%HOSTNAME%"}}}`), true, noCheck},
		{"TestValidateHTTPRoute/envoy unescaped % set", headerOps(`{response: {set: {name: "abcd%oijasodifj"}}}`), false, noCheck},
		{"TestValidateHTTPRoute/envoy escaped % add", headerOps(`{response: {add: {i-love-istio: "100%% and more"}}}`), true, noCheck},
		{"TestValidateHTTPRoute/envoy variable add", headerOps(`{response: {add: {name: "hello %HOSTNAME%"}}}`), true, noCheck},
		{"TestValidateHTTPRoute/envoy unescaped % add", headerOps(`{response: {add: {name: "abcd%oijasodifj"}}}`), false, noCheck},
		{"TestValidateHTTPRoute/empty prefix header match", route(`{route: [{destination: {host: foo.bar}}], match: [{headers: {emptyprefix: {prefix: ""}}}]}`), false, noCheck},
		{"TestValidateHTTPRoute/nil match", route(`{route: [{destination: {host: foo.bar}}]}`), true, noCheck},
		{"TestValidateHTTPRoute/invalid mirror percent", route(`{mirrorPercent: 101, route: [{destination: {host: foo.bar}}]}`), false, noCheck},
		{"TestValidateHTTPRoute/invalid mirror percentage", route(`{mirrorPercentage: {value: 101}, route: [{destination: {host: foo.bar}}]}`), false, noCheck},
		{"TestValidateHTTPRoute/valid mirror percentage", route(`{mirrorPercentage: {value: 1}, route: [{destination: {host: foo.bar}}]}`), true, noCheck},
		{"TestValidateHTTPRoute/negative mirror percentage", route(`{mirrorPercentage: {value: -1}, route: [{destination: {host: foo.bar}}]}`), false, noCheck},
		{"TestValidateHTTPRoute/mirrors without destination", route(`{mirrors: [{destination: null}], route: [{destination: {host: foo.bar}}]}`), false, noCheck},
		{"TestValidateHTTPRoute/mirrors invalid mirror percentage", route(`{mirrors: [{destination: {host: foo.baz}}, {destination: {host: foo.baz}, percentage: {value: 101}}], route: [{destination: {host: foo.bar}}]}`), false, noCheck},
		{"TestValidateHTTPRoute/mirrors valid mirror percentage", route(`{mirrors: [{destination: {host: foo.baz}, percentage: {value: 1}}, {destination: {host: foo.baz}, percentage: {value: 50}}], route: [{destination: {host: foo.bar}}]}`), true, noCheck},
		{"TestValidateHTTPRoute/mirrors negative mirror percentage", route(`{mirrors: [{destination: {host: foo.baz}, percentage: {value: -1}}], route: [{destination: {host: foo.bar}}]}`), false, noCheck},
		{"TestValidateHTTPRoute/conflicting mirror and mirrors", route(`{mirror: {host: foo.baz}, mirrors: [{destination: {host: foo.bar}}], route: [{destination: {host: foo.baz}}]}`), false, noCheck},

		// ---- TestValidateRouteDestination (validateRouteDestinations, as tcp[0].route) ----
		{"TestValidateRouteDestination/simple", tcpDests(`[{destination: {host: foo.baz}}]`), true, noCheck},
		{"TestValidateRouteDestination/wildcard dash", tcpDests(`[{destination: {host: "*-foo.baz"}}]`), true, noCheck},
		{"TestValidateRouteDestination/wildcard prefix", tcpDests(`[{destination: {host: "*foo.baz"}}]`), true, noCheck},
		{"TestValidateRouteDestination/wildcard", tcpDests(`[{destination: {host: "*"}}]`), false, noCheck},
		{"TestValidateRouteDestination/bad wildcard", tcpDests(`[{destination: {host: "foo.*"}}]`), false, noCheck},
		{"TestValidateRouteDestination/bad fqdn", tcpDests(`[{destination: {host: default/baz}}]`), false, noCheck},
		{"TestValidateRouteDestination/no destination", tcpDests(`[{destination: null}]`), false, noCheck},
		{"TestValidateRouteDestination/weighted", tcpDests(`[{destination: {host: foo.baz.south}, weight: 25}, {destination: {host: foo.baz.east}, weight: 75}]`), true, noCheck},
		{"TestValidateRouteDestination/weight < 0", tcpDests(`[{destination: {host: foo.baz.south}, weight: 5}, {destination: {host: foo.baz.east}, weight: -1}]`), false, noCheck},
		{"TestValidateRouteDestination/total weight > 100", tcpDests(`[{destination: {host: foo.baz.south}, weight: 550}, {destination: {host: foo.baz.east}, weight: 500}]`), true, noCheck},
		{"TestValidateRouteDestination/total weight < 100", tcpDests(`[{destination: {host: foo.baz.south}, weight: 49}, {destination: {host: foo.baz.east}, weight: 50}]`), true, noCheck},
		{"TestValidateRouteDestination/total weight = 100", tcpDests(`[{destination: {host: foo.baz.south}, weight: 100}, {destination: {host: foo.baz.east}, weight: 0}]`), true, noCheck},
		{"TestValidateRouteDestination/weight = 0", tcpDests(`[{destination: {host: foo.baz.south}, weight: 0}]`), true, noCheck},
		{"TestValidateRouteDestination/total weight = 0 with multi RouteDestination", tcpDests(`[{destination: {host: foo.baz.south}, weight: 0}, {destination: {host: foo.baz.east}, weight: 0}]`), false, noCheck},

		// ---- TestValidateVirtualService (ValidateVirtualService; warnings asserted) ----
		{"TestValidateVirtualService/simple", vs("  hosts: [foo.bar]\n  http: [{route: [{destination: {host: foo.baz}}]}]\n"), true, noWarn},
		{"TestValidateVirtualService/allow sni based domains", vs("  hosts: [outbound_.15010_._.istiod.istio-system.svc.cluster.local]\n  gateways: [ns1/gateway]\n  tls: [{match: [{sniHosts: [outbound_.15010_._.istiod.istio-system.svc.cluster.local]}], route: [{destination: {host: istio.istio-system.svc.cluster.local}}]}]\n"), true, noWarn},
		{"TestValidateVirtualService/duplicate hosts", vs("  hosts: [\"*.foo.bar\", \"*.bar\"]\n  http: [{route: [{destination: {host: foo.baz}}]}]\n"), false, noWarn},
		{"TestValidateVirtualService/with no destination", vs("  hosts: [\"*.foo.bar\", \"*.bar\"]\n  http: [{route: [{}]}]\n"), false, noWarn},
		{"TestValidateVirtualService/destination with out hosts", vs("  hosts: [\"*.foo.bar\", \"*.bar\"]\n  http: [{route: [{destination: {}}]}]\n"), false, noWarn},
		{"TestValidateVirtualService/delegate with no hosts", vs("  http: [{route: [{destination: {host: foo.baz}}]}]\n"), true, noWarn},
		{"TestValidateVirtualService/bad host", vs("  hosts: [foo.ba!r]\n  http: [{route: [{destination: {host: foo.baz}}]}]\n"), false, noWarn},
		{"TestValidateVirtualService/no tcp or http routing", vs("  hosts: [foo.bar]\n"), false, noWarn},
		{"TestValidateVirtualService/bad gateway", vs("  hosts: [foo.bar]\n  gateways: [b@dgateway]\n  http: [{route: [{destination: {host: foo.baz}}]}]\n"), false, noWarn},
		{"TestValidateVirtualService/FQDN for gateway", vs("  hosts: [foo.bar]\n  gateways: [gateway.example.com]\n  http: [{route: [{destination: {host: foo.baz}}]}]\n"), true, warn},
		{"TestValidateVirtualService/namespace/name for gateway", vs("  hosts: [foo.bar]\n  gateways: [ns1/gateway]\n  http: [{route: [{destination: {host: foo.baz}}]}]\n"), true, noWarn},
		{"TestValidateVirtualService/namespace/* for gateway", vs("  hosts: [foo.bar]\n  gateways: [\"ns1/*\"]\n  http: [{route: [{destination: {host: foo.baz}}]}]\n"), false, noWarn},
		{"TestValidateVirtualService/*/name for gateway", vs("  hosts: [foo.bar]\n  gateways: [\"*/gateway\"]\n  http: [{route: [{destination: {host: foo.baz}}]}]\n"), false, noWarn},
		{"TestValidateVirtualService/wildcard for mesh gateway", vs("  hosts: [\"*\"]\n  http: [{route: [{destination: {host: foo.baz}}]}]\n"), false, noWarn},
		{"TestValidateVirtualService/wildcard for non-mesh gateway", vs("  hosts: [\"*\"]\n  gateways: [somegateway]\n  http: [{route: [{destination: {host: foo.baz}}]}]\n"), true, noWarn},
		{"TestValidateVirtualService/missing tcp route", vs("  hosts: [foo.bar]\n  tcp: [{match: [{port: 999}]}]\n"), false, noWarn},
		{"TestValidateVirtualService/missing tls route", vs("  hosts: [foo.bar]\n  tls: [{match: [{port: 999, sniHosts: [foo.bar]}]}]\n"), false, noWarn},
		{"TestValidateVirtualService/deprecated mirror", vs("  hosts: [foo.bar]\n  gateways: [ns1/gateway]\n  http: [{mirrorPercent: 5, route: [{destination: {host: foo.baz}}]}]\n"), true, warn},
		{"TestValidateVirtualService/set authority", vs("  hosts: [foo.bar]\n  http: [{headers: {request: {set: {\":authority\": foo}}}, route: [{destination: {host: foo.baz}}]}]\n"), true, noWarn},
		{"TestValidateVirtualService/set authority in destination", vs("  hosts: [foo.bar]\n  http: [{route: [{destination: {host: foo.baz}, headers: {request: {set: {\":authority\": foo}}}}]}]\n"), true, noWarn},
		{"TestValidateVirtualService/set authority in rewrite and header", vs("  hosts: [foo.bar]\n  http: [{headers: {request: {set: {\":authority\": foo}}}, rewrite: {authority: bar}, route: [{destination: {host: foo.baz}}]}]\n"), false, noWarn},
		{"TestValidateVirtualService/non-method-get", vs("  hosts: [foo.bar]\n  http: [{route: [{destination: {host: foo.baz}}], match: [{uri: {prefix: /api/v1/product}}, {uri: {prefix: /api/v1/products}, method: {exact: GET}}]}]\n"), true, warn},
		{"TestValidateVirtualService/uri-with-prefix-exact", vs("  hosts: [foo.bar]\n  http: [{route: [{destination: {host: foo.baz}}], match: [{uri: {prefix: /}}, {uri: {exact: /}, method: {exact: GET}}]}]\n"), true, noWarn},
		{"TestValidateVirtualService/jwt claim route without gateway", vs("  hosts: [foo.bar]\n  gateways: [mesh]\n  http: [{route: [{destination: {host: foo.baz}}], match: [{uri: {prefix: /}, headers: {\"@request.auth.claims.foo\": {exact: bar}}}]}]\n"), false, noWarn},
		{"TestValidateVirtualService/ip address as sni host", vs("  hosts: [foo.bar]\n  tls: [{route: [{destination: {host: foo.baz}}], match: [{port: 999, sniHosts: [1.1.1.1]}]}]\n"), true, warn},
		{"TestValidateVirtualService/invalid wildcard as sni host", vs("  hosts: [foo.bar]\n  tls: [{route: [{destination: {host: foo.baz}}], match: [{port: 999, sniHosts: [\"foo.*.com\"]}]}]\n"), false, noWarn},

		// ---- agent/validation_test.go TestValidateWildcardDomainForVirtualServiceBoundToGateway (a host of a
		// gateway-bound VirtualService; sni: the VirtualService also has a TLS route with SNI hosts, here
		// a.sni.example under a second host, so only the host under test is judged) ----
		{"TestValidateWildcardDomainForVirtualServiceBoundToGateway/empty", gwHost("", false), false, noCheck},
		{"TestValidateWildcardDomainForVirtualServiceBoundToGateway/too long", gwHost(strings.Repeat("x", 256), false), false, noCheck},
		{"TestValidateWildcardDomainForVirtualServiceBoundToGateway/happy", gwHost(strings.Repeat("x", 63), false), true, noCheck},
		{"TestValidateWildcardDomainForVirtualServiceBoundToGateway/wildcard", gwHost("*", false), true, noCheck},
		{"TestValidateWildcardDomainForVirtualServiceBoundToGateway/wildcard multi-segment", gwHost("*.bar.com", false), true, noCheck},
		{"TestValidateWildcardDomainForVirtualServiceBoundToGateway/wildcard single segment", gwHost("*foo", false), true, noCheck},
		{"TestValidateWildcardDomainForVirtualServiceBoundToGateway/wildcard prefix", gwHost("*foo.bar.com", false), true, noCheck},
		{"TestValidateWildcardDomainForVirtualServiceBoundToGateway/wildcard prefix dash", gwHost("*-foo.bar.com", false), true, noCheck},
		{"TestValidateWildcardDomainForVirtualServiceBoundToGateway/bad wildcard foo.*.com", gwHost("foo.*.com", false), false, noCheck},
		{"TestValidateWildcardDomainForVirtualServiceBoundToGateway/bad wildcard foo*.bar.com", gwHost("foo*.bar.com", false), false, noCheck},
		{"TestValidateWildcardDomainForVirtualServiceBoundToGateway/SNI domain", gwHost("outbound_.80_._.e2e.foobar.mesh", true), true, noCheck},
		{"TestValidateWildcardDomainForVirtualServiceBoundToGateway/happy sni outbound.com", gwHost("outbound.com", true), true, noCheck},
		{"TestValidateWildcardDomainForVirtualServiceBoundToGateway/invalid SNI domain neverbound_", gwHost("neverbound_.80_._.e2e.foobar.mesh", true), false, noCheck},
		{"TestValidateWildcardDomainForVirtualServiceBoundToGateway/invalid SNI domain port", gwHost("outbound_.thisIsNotAPort_._.e2e.foobar.mesh", true), false, noCheck},
		{"TestValidateWildcardDomainForVirtualServiceBoundToGateway/invalid SNI domain no host", gwHost("outbound_.80_._", true), false, noCheck},
		// An SNI-form host without TLS SNI routes is an ordinary host: "_" is not allowed.
		{"TestValidateWildcardDomainForVirtualServiceBoundToGateway/SNI domain without sni", gwHost("outbound_.80_._.e2e.foobar.mesh", false), false, noCheck},

		// ---- virtualservice_test.go TestValidateChainingVirtualService ----
		{"TestValidateChainingVirtualService/root simple", vs("  hosts: [foo.bar]\n  gateways: [test-gateway]\n  http: [{delegate: {name: test, namespace: test}}]\n"), true, noCheck},
		{"TestValidateChainingVirtualService/root applies to sidecar with delegate", vs("  hosts: [foo.bar]\n  http: [{delegate: {name: test, namespace: test}}]\n"), true, noCheck},
		{"TestValidateChainingVirtualService/root with delegate and destination in one route", vs("  hosts: [foo.bar]\n  http: [{delegate: {name: test, namespace: test}, route: [{destination: {host: foo.baz}}]}]\n"), false, noCheck},
		{"TestValidateChainingVirtualService/delegate with no destination", vs("  hosts: []\n  http: [{}]\n"), false, noCheck},
		{"TestValidateChainingVirtualService/delegate with delegate", vs("  hosts: []\n  http: [{delegate: {name: test, namespace: test}}]\n"), false, noCheck},
		{"TestValidateChainingVirtualService/delegate with TCP route", vs("  hosts: []\n  tcp: [{route: [{destination: {host: foo.baz}}]}]\n"), false, noCheck},
		{"TestValidateChainingVirtualService/delegate with gateway", vs("  hosts: []\n  gateways: [test]\n  http: [{route: [{destination: {host: foo.baz}}]}]\n"), false, noCheck},
		{"TestValidateChainingVirtualService/delegate with sourceNamespace", vs("  hosts: []\n  http: [{match: [{sourceNamespace: test}], route: [{destination: {host: foo.baz}}]}]\n"), true, noCheck},

		// ---- virtualservice_test.go TestValidateRootHTTPRoute (validateHTTPRoute, not a delegate) ----
		{"TestValidateRootHTTPRoute/simple", route(`{delegate: {name: test, namespace: test}}`), true, noCheck},
		{"TestValidateRootHTTPRoute/route and delegate conflict", route(`{route: [{destination: {host: foo.baz}}], delegate: {name: test, namespace: test}}`), false, noCheck},
		{"TestValidateRootHTTPRoute/redirect and delegate conflict", route(`{redirect: {uri: /lerp, authority: foo.biz}, delegate: {name: test, namespace: test}}`), false, noCheck},
		{"TestValidateRootHTTPRoute/prefix header match", route(`{delegate: {name: test, namespace: test}, match: [{headers: {header: {prefix: test}}}]}`), true, noCheck},
		{"TestValidateRootHTTPRoute/exact header match", route(`{delegate: {name: test, namespace: test}, match: [{headers: {header: {exact: test}}}]}`), true, noCheck},
		{"TestValidateRootHTTPRoute/regex header match", route(`{delegate: {name: test, namespace: test}, match: [{headers: {header: {regex: test}}}]}`), true, noCheck},
		{"TestValidateRootHTTPRoute/regex uri match", route(`{delegate: {name: test, namespace: test}, match: [{uri: {regex: test}}]}`), true, noCheck},
		{"TestValidateRootHTTPRoute/prefix uri match", route(`{delegate: {name: test, namespace: test}, match: [{uri: {prefix: test}}]}`), true, noCheck},
		{"TestValidateRootHTTPRoute/exact uri match", route(`{delegate: {name: test, namespace: test}, match: [{uri: {exact: test}}]}`), true, noCheck},
		{"TestValidateRootHTTPRoute/prefix queryParams match", route(`{delegate: {name: test, namespace: test}, match: [{queryParams: {q: {prefix: test}}}]}`), true, noCheck},
		{"TestValidateRootHTTPRoute/exact queryParams match", route(`{delegate: {name: test, namespace: test}, match: [{queryParams: {q: {exact: test}}}]}`), true, noCheck},
		{"TestValidateRootHTTPRoute/regex queryParams match", route(`{delegate: {name: test, namespace: test}, match: [{headers: {q: {regex: test}}}]}`), true, noCheck},
		{"TestValidateRootHTTPRoute/empty regex match in method", route(`{match: [{method: {regex: ""}}], redirect: {uri: /, authority: foo.biz}}`), false, noCheck},
		{"TestValidateRootHTTPRoute/empty regex match in uri", route(`{match: [{uri: {regex: ""}}], redirect: {uri: /, authority: foo.biz}}`), false, noCheck},
		{"TestValidateRootHTTPRoute/empty regex match in query", route(`{match: [{queryParams: {q: {regex: ""}}}], redirect: {uri: /, authority: foo.biz}}`), false, noCheck},
		{"TestValidateRootHTTPRoute/empty regex match in scheme", route(`{match: [{scheme: {regex: ""}}], redirect: {uri: /, authority: foo.biz}}`), false, noCheck},

		// ---- not an upstream row: virtualservice.go validateHTTPRouteConflict returns for a root route
		// (one with a delegate) before its mirror/mirrors check, so a root route may carry both ----
		{"validateHTTPRouteConflict/root route with mirror and mirrors", route(`{delegate: {name: test, namespace: test}, mirror: {host: foo.baz}, mirrors: [{destination: {host: foo.bar}}]}`), true, noCheck},
		{"validateHTTPRouteConflict/route with mirror and mirrors", route(`{route: [{destination: {host: foo.baz}}], mirror: {host: foo.baz}, mirrors: [{destination: {host: foo.bar}}]}`), false, noCheck},

		// ---- virtualservice_test.go TestValidateDelegateHTTPRoute (validateHTTPRoute in a delegate) ----
		{"TestValidateDelegateHTTPRoute/empty", delegateRoute(`{}`), false, noCheck},
		{"TestValidateDelegateHTTPRoute/simple", delegateRoute(`{route: [{destination: {host: foo.baz}}]}`), true, noCheck},
		{"TestValidateDelegateHTTPRoute/no destination", delegateRoute(`{route: [{destination: null}]}`), false, noCheck},
		{"TestValidateDelegateHTTPRoute/weighted", delegateRoute(`{route: [{destination: {host: foo.baz.south}, weight: 25}, {destination: {host: foo.baz.east}, weight: 75}]}`), true, noCheck},
		{"TestValidateDelegateHTTPRoute/total weight > 100", delegateRoute(`{route: [{destination: {host: foo.baz.south}, weight: 55}, {destination: {host: foo.baz.east}, weight: 50}]}`), true, noCheck},
		{"TestValidateDelegateHTTPRoute/total weight < 100", delegateRoute(`{route: [{destination: {host: foo.baz.south}, weight: 49}, {destination: {host: foo.baz.east}, weight: 50}]}`), true, noCheck},
		{"TestValidateDelegateHTTPRoute/simple redirect", delegateRoute(`{redirect: {uri: /lerp, authority: foo.biz}}`), true, noCheck},
		{"TestValidateDelegateHTTPRoute/conflicting redirect and route", delegateRoute(`{route: [{destination: {host: foo.baz}}], redirect: {uri: /lerp, authority: foo.biz}}`), false, noCheck},
		{"TestValidateDelegateHTTPRoute/request response headers", delegateRoute(`{route: [{destination: {host: foo.baz}}]}`), true, noCheck},
		{"TestValidateDelegateHTTPRoute/valid headers", delegateRoute(`{route: [{destination: {host: foo.baz}, headers: {request: {add: {name: ""}, set: {name: ""}, remove: [name]}, response: {add: {name: ""}, set: {name: ""}, remove: [name]}}}]}`), true, noCheck},
		{"TestValidateDelegateHTTPRoute/empty header name - request add", delegateRoute(`{route: [{destination: {host: foo.baz}, headers: {request: {add: {"": value}}}}]}`), false, noCheck},
		{"TestValidateDelegateHTTPRoute/empty header name - request set", delegateRoute(`{route: [{destination: {host: foo.baz}, headers: {request: {set: {"": value}}}}]}`), false, noCheck},
		{"TestValidateDelegateHTTPRoute/empty header name - request remove", delegateRoute(`{route: [{destination: {host: foo.baz}, headers: {request: {remove: [""]}}}]}`), false, noCheck},
		{"TestValidateDelegateHTTPRoute/empty header name - response add", delegateRoute(`{route: [{destination: {host: foo.baz}, headers: {response: {add: {"": value}}}}]}`), false, noCheck},
		{"TestValidateDelegateHTTPRoute/empty header name - response set", delegateRoute(`{route: [{destination: {host: foo.baz}, headers: {response: {set: {"": value}}}}]}`), false, noCheck},
		{"TestValidateDelegateHTTPRoute/empty header name - response remove", delegateRoute(`{route: [{destination: {host: foo.baz}, headers: {response: {remove: [""]}}}]}`), false, noCheck},
		{"TestValidateDelegateHTTPRoute/nil match", delegateRoute(`{route: [{destination: {host: foo.bar}}]}`), true, noCheck},
		{"TestValidateDelegateHTTPRoute/invalid mirror percent", delegateRoute(`{mirrorPercent: 101, route: [{destination: {host: foo.bar}}]}`), false, noCheck},
		{"TestValidateDelegateHTTPRoute/invalid mirror percentage", delegateRoute(`{mirrorPercentage: {value: 101}, route: [{destination: {host: foo.bar}}]}`), false, noCheck},
		{"TestValidateDelegateHTTPRoute/valid mirror percentage", delegateRoute(`{mirrorPercentage: {value: 1}, route: [{destination: {host: foo.bar}}]}`), true, noCheck},
		{"TestValidateDelegateHTTPRoute/negative mirror percentage", delegateRoute(`{mirrorPercentage: {value: -1}, route: [{destination: {host: foo.bar}}]}`), false, noCheck},
		{"TestValidateDelegateHTTPRoute/delegate route with delegate", delegateRoute(`{delegate: {name: test, namespace: test}}`), false, noCheck},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			res := validateNetYAML(t, r.doc)
			if res.Valid() != r.valid {
				t.Errorf("valid %v, want %v: %v", res.Valid(), r.valid, res.ErrorLines())
			}
			if r.warn == noCheck {
				return
			}
			if got := len(res.Warnings) > 0; got != (r.warn == warn) {
				t.Errorf("warnings %v, want some: %v", res.WarningLines(), r.warn == warn)
			}
		})
	}
}
