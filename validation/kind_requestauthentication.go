package validation

import (
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/lestrrat-go/jwx/v3/jwk"
	security "istio.io/api/security/v1beta1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// raHeaderName is the syntax of outputClaimToHeaders[].header: Istio's
// ValidateStrictHTTPHeaderName (validation.go validStrictHeaderNameRegex),
// stricter than the CRD's pattern, which also allows "_".
var raHeaderName = regexp.MustCompile(`^[-A-Za-z0-9]+$`)

// validateRequestAuthentication implements Istio's
// ValidateRequestAuthentication (pkg/config/validation/validation.go). "Only one of jwks or
// jwksUri" and spaceDelimitedClaims "" are CRD rules, checked by the CRD
// layer, not repeated here. Beyond Istio: a warning for two rules with the
// same issuer (only one of them can apply to a token).
func validateRequestAuthentication(_ metav1.ObjectMeta, ra *security.RequestAuthentication, f *Findings) {
	sp := field.NewPath("spec")
	khPolicyTargets(sp, ra.GetSelector(), ra.GetTargetRef(), ra.GetTargetRefs(), f)
	issuers := map[string]int{}
	for i, r := range ra.GetJwtRules() {
		rp := sp.Child("jwtRules").Index(i)
		if r == nil {
			f.Required(rp, "jwtRule must not be null")
			continue
		}
		raJWTRule(rp, r, f)
		if iss := r.GetIssuer(); iss != "" {
			if j, dup := issuers[iss]; dup {
				f.Warn(rp.Child("issuer"), iss, fmt.Sprintf("issuer is also used by jwtRules[%d]; a token matches only one rule per issuer", j))
			} else {
				issuers[iss] = i
			}
		}
	}
}

func raJWTRule(p *field.Path, r *security.JWTRule, f *Findings) {
	for i, a := range r.GetAudiences() {
		if a == "" {
			f.Error(p.Child("audiences").Index(i), a, "audience must be non-empty string")
		}
	}
	if r.GetIssuer() == "" && r.GetJwksUri() == "" {
		f.Required(p.Child("issuer"), "issuer or jwksUri must be non-empty string")
	}
	if u := r.GetJwksUri(); u != "" {
		raJwksURI(p.Child("jwksUri"), u, f)
	}
	if j := r.GetJwks(); j != "" {
		raJwks(p.Child("jwks"), j, f)
	}
	for i, h := range r.GetFromHeaders() {
		hp := p.Child("fromHeaders").Index(i)
		if h == nil {
			f.Required(hp, "location header must not be null")
			continue
		}
		if h.GetName() == "" {
			f.Required(hp.Child("name"), "location header name must be non-empty string")
		}
	}
	for i, v := range r.GetFromParams() {
		if v == "" {
			f.Error(p.Child("fromParams").Index(i), v, "location query must be non-empty string")
		}
	}
	for i, v := range r.GetFromCookies() {
		if v == "" {
			f.Error(p.Child("fromCookies").Index(i), v, "cookie name must be non-empty string")
		}
	}
	for i, c := range r.GetOutputClaimToHeaders() {
		cp := p.Child("outputClaimToHeaders").Index(i)
		if c == nil {
			f.Required(cp, "outputClaimToHeaders entry must not be null")
			continue
		}
		if c.GetClaim() == "" {
			f.Required(cp.Child("claim"), "claim must be non-empty string")
		}
		switch h := c.GetHeader(); {
		case h == "":
			f.Required(cp.Child("header"), "header must be non-empty string")
		case !raHeaderName.MatchString(h):
			f.Error(cp.Child("header"), h, "header name "+h+" is not a valid header name: must match ^[-A-Za-z0-9]+$")
		}
	}
	validateDuration(p.Child("timeout"), r.GetTimeout(), f)
}

func raJwksURI(p *field.Path, s string, f *Findings) {
	u, err := url.Parse(s)
	if err != nil {
		f.Error(p, s, "url must have scheme http:// or https://: invalid jwksUri: "+err.Error())
		return
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		f.Error(p, s, fmt.Sprintf("URI scheme %q is not supported: url must have scheme http:// or https://", u.Scheme))
	}
	if u.Host == "" {
		f.Error(p, s, "jwksUri must include a host")
	}
	if port := u.Port(); port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			f.Error(p, s, fmt.Sprintf("jwksUri port %q must be an integer in 1..65535", port))
		}
	}
}

// raJwks checks an inline JWK set: it must parse, and must not carry private
// or symmetric key material (anyone who can read the policy gets the key).
func raJwks(p *field.Path, s string, f *Findings) {
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal([]byte(s), &set); err != nil {
		f.Error(p, nil, "jwks parse error: "+err.Error())
		return
	}
	if set.Keys == nil {
		f.Error(p, nil, "jwks parse error: not a JWK set (no \"keys\" member)")
		return
	}
	if _, err := jwk.Parse([]byte(s)); err != nil {
		f.Error(p, nil, "jwks parse error: "+err.Error())
		return
	}
	for i, k := range set.Keys {
		_, hasD := k["d"]
		_, hasK := k["k"]
		if hasD || hasK || strings.EqualFold(fmt.Sprint(k["kty"]), "oct") {
			f.Warn(p, nil, fmt.Sprintf("jwks key %d contains private or symmetric key material; publish only public keys", i))
		}
	}
}
