package validation

import (
	"testing"

	"google.golang.org/protobuf/types/known/durationpb"
	security "istio.io/api/security/v1beta1"
	typev1beta1 "istio.io/api/type/v1beta1"
)

// RFC 7517 appendix A.1 (public RSA key) and A.3 (symmetric key).
const (
	raPublicJWKS    = `{"keys":[{"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB","alg":"RS256","kid":"2011-04-29"}]}`
	raSymmetricJWKS = `{"keys":[{"kty":"oct","alg":"HS256","k":"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow"}]}`
)

func raRule(r *security.JWTRule) *security.RequestAuthentication {
	return &security.RequestAuthentication{JwtRules: []*security.JWTRule{r}}
}

func TestValidateRequestAuthentication(t *testing.T) {
	runKindCases(t, validateRequestAuthentication, []kindCase{
		{name: "full", spec: &security.RequestAuthentication{
			Selector: &typev1beta1.WorkloadSelector{MatchLabels: map[string]string{"app": "a"}},
			JwtRules: []*security.JWTRule{{Issuer: "example.com", JwksUri: "https://example.com:8443/.well-known/jwks.json",
				Audiences: []string{"a"}, FromCookies: []string{"c"}, FromParams: []string{"p"},
				FromHeaders:          []*security.JWTHeader{{Name: "x-jwt", Prefix: "Bearer "}},
				OutputClaimToHeaders: []*security.ClaimToHeader{{Claim: "sub", Header: "x-sub"}},
				Timeout:              durationpb.New(5e9)}}}},
		{name: "inline public jwks", spec: raRule(&security.JWTRule{Issuer: "i", Jwks: raPublicJWKS})},
		{name: "targetRef and selector", spec: &security.RequestAuthentication{
			Selector:  &typev1beta1.WorkloadSelector{MatchLabels: map[string]string{"a": "b"}},
			TargetRef: &typev1beta1.PolicyTargetReference{Kind: "Service", Name: "foo"}},
			errs: []string{"only one of targetRefs or selector can be set"}},
		{name: "cross namespace", spec: &security.RequestAuthentication{
			TargetRefs: []*typev1beta1.PolicyTargetReference{{Kind: "Service", Name: "foo", Namespace: "bar"}}},
			errs: []string{"spec.targetRefs[0].namespace: Invalid value: \"bar\": cross namespace referencing is not currently supported"}},
		{name: "null rule", spec: raRule(nil), errs: []string{"spec.jwtRules[0]: Required value"}},
		{name: "no issuer no jwksUri", spec: raRule(&security.JWTRule{}),
			errs: []string{"spec.jwtRules[0].issuer: Required value: issuer or jwksUri must be non-empty string"}},
		{name: "jwksUri only is enough", spec: raRule(&security.JWTRule{JwksUri: "http://jwks.example.com/keys"})},
		{name: "empty audience", spec: raRule(&security.JWTRule{Issuer: "i", Audiences: []string{"a", ""}}),
			errs: []string{`spec.jwtRules[0].audiences[1]: Invalid value: "": audience must be non-empty string`}},
		{name: "jwksUri scheme", spec: raRule(&security.JWTRule{Issuer: "i", JwksUri: "ftp://example.com/keys"}),
			errs: []string{`URI scheme "ftp" is not supported`}},
		{name: "jwksUri unparsable", spec: raRule(&security.JWTRule{Issuer: "i", JwksUri: "hTPp\\\blah"}),
			errs: []string{`spec.jwtRules[0].jwksUri: Invalid value: "hTPp\\\blah": url must have scheme http:// or https://`}},
		{name: "jwksUri bad port", spec: raRule(&security.JWTRule{Issuer: "i", JwksUri: "https://example.com:99999/keys"}),
			errs: []string{`jwksUri port "99999" must be an integer in 1..65535`}},
		{name: "jwks not json", spec: raRule(&security.JWTRule{Issuer: "i", Jwks: "{not json"}),
			errs: []string{"spec.jwtRules[0].jwks: Invalid value: jwks parse error"}},
		{name: "jwks not a set", spec: raRule(&security.JWTRule{Issuer: "i", Jwks: `{"kty":"RSA"}`}),
			errs: []string{"jwks parse error: not a JWK set"}},
		{name: "jwks bad key", spec: raRule(&security.JWTRule{Issuer: "i", Jwks: `{"keys":[{"kty":"RSA","n":"!!","e":"AQAB"}]}`}),
			errs: []string{"jwks parse error"}},
		{name: "jwks symmetric warns", spec: raRule(&security.JWTRule{Issuer: "i", Jwks: raSymmetricJWKS}),
			warns: []string{"jwks key 0 contains private or symmetric key material"}},
		{name: "locations", spec: raRule(&security.JWTRule{Issuer: "i", FromHeaders: []*security.JWTHeader{nil, {Prefix: "x"}},
			FromParams: []string{""}, FromCookies: []string{""}}),
			errs: []string{"spec.jwtRules[0].fromHeaders[0]: Required value", "spec.jwtRules[0].fromHeaders[1].name: Required value",
				"spec.jwtRules[0].fromParams[0]", "spec.jwtRules[0].fromCookies[0]"}},
		{name: "claim to header", spec: raRule(&security.JWTRule{Issuer: "i", OutputClaimToHeaders: []*security.ClaimToHeader{
			nil, {Header: "h"}, {Claim: "c"}, {Claim: "c", Header: ":authority"}, {Claim: "c", Header: "x_user"}, {Claim: "c", Header: "X-User-1"}}}),
			errs: []string{"outputClaimToHeaders[0]: Required value", "outputClaimToHeaders[1].claim: Required value",
				"outputClaimToHeaders[2].header: Required value", `outputClaimToHeaders[3].header: Invalid value: ":authority": header name :authority is not a valid header name`,
				// Istio's ValidateStrictHTTPHeaderName: no "_", though the CRD's pattern allows it.
				`outputClaimToHeaders[4].header: Invalid value: "x_user"`}},
		{name: "bad timeout", spec: raRule(&security.JWTRule{Issuer: "i", Timeout: durationpb.New(0)}),
			errs: []string{"spec.jwtRules[0].timeout"}},
		{name: "duplicate issuer warns", spec: &security.RequestAuthentication{JwtRules: []*security.JWTRule{{Issuer: "i"}, {Issuer: "i"}}},
			warns: []string{`spec.jwtRules[1].issuer: Invalid value: "i": issuer is also used by jwtRules[0]`}},
	})
}

func TestRequestAuthenticationYAML(t *testing.T) {
	runYAMLCases(t, []yamlCase{
		{name: "valid", doc: `
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: jwt, namespace: foo}
spec:
  selector: {matchLabels: {app: httpbin}}
  jwtRules:
  - issuer: testing@secure.istio.io
    jwksUri: https://raw.githubusercontent.com/istio/istio/release-1.31/security/tools/jwt/samples/jwks.json
`},
		{name: "ftp jwksUri", doc: `
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: jwt, namespace: foo}
spec:
  jwtRules:
  - issuer: a
    jwksUri: ftp://example.com/keys
`, errs: []string{"RequestAuthentication foo/jwt", "spec.jwtRules[0].jwksUri"}},
	})
}
