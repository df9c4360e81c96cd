package authzref

import "google.golang.org/protobuf/types/known/structpb"

// Payload is the token as Envoy's jwt_authn filter hands it to ext_authz
// (the "payload" of its filter metadata): exactly the token's claims, with
// string lists as JSON arrays. A claim the token lacks, iss and sub
// included, is omitted (not written as ""). Tests that feed a Request to
// meshguard use it; the reference itself reads the JWT claims directly.
func (j *JWT) Payload() (*structpb.Struct, error) {
	claims := map[string]any{}
	for k, v := range j.Claims {
		claims[k] = jsonValue(v)
	}
	return structpb.NewStruct(claims)
}

// jsonValue turns []string into []any for structpb, recursively.
func jsonValue(v any) any {
	switch x := v.(type) {
	case []string:
		out := make([]any, len(x))
		for i, s := range x {
			out[i] = s
		}
		return out
	case map[string]any:
		out := map[string]any{}
		for k, e := range x {
			out[k] = jsonValue(e)
		}
		return out
	}
	return v
}
