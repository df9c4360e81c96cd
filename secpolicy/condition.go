package secpolicy

import (
	"fmt"
	"strings"
)

// KeyKind is what an AuthorizationPolicy `when` key refers to
// (pilot/pkg/security/authz/model/model.go attr* constants).
type KeyKind int

// The `when` keys.
const (
	KeyRequestHeader KeyKind = iota + 1
	KeyRequestClaims
	KeyEnvoyFilter // experimental.envoy.filters.*: valid, not evaluated by meshguard
	KeySourceIP
	KeyRemoteIP
	KeyDestinationIP
	KeyDestinationPort
	KeySourceNamespace
	KeySourcePrincipal
	KeySourceServiceAccount
	KeySourceTrustDomain
	KeyRequestPrincipal
	KeyRequestAudiences
	KeyRequestPresenter
	KeyConnectionSNI
	// request.experimental.inline.headers[<name>]: one element of a
	// comma-separated header value (model.go attrRequestInlineHeader).
	KeyRequestInlineHeader
)

// ConditionKey is a parsed `when` key.
type ConditionKey struct {
	Kind KeyKind
	// Header: the header name of request.headers[<name>] (and of
	// request.experimental.inline.headers[<name>]), as written.
	Header string
	// Path: the claim path of request.auth.claims[a][b]..., or the metadata
	// key path of experimental.envoy.filters.<f>[k]...
	Path []string
}

var simpleKeys = map[string]KeyKind{
	"source.ip": KeySourceIP, "remote.ip": KeyRemoteIP, "destination.ip": KeyDestinationIP,
	"destination.port": KeyDestinationPort, "source.namespace": KeySourceNamespace,
	"source.principal": KeySourcePrincipal, "source.serviceAccount": KeySourceServiceAccount,
	"source.trustDomain": KeySourceTrustDomain, "request.auth.principal": KeyRequestPrincipal,
	"request.auth.audiences": KeyRequestAudiences, "request.auth.presenter": KeyRequestPresenter,
	"connection.sni": KeyConnectionSNI,
}

// ParseConditionKey parses a `when` key; the error is the validation message.
func ParseConditionKey(key string) (ConditionKey, error) {
	if k, ok := simpleKeys[key]; ok {
		return ConditionKey{Kind: k}, nil
	}
	switch {
	case key == "":
		return ConditionKey{}, fmt.Errorf("`key` must not be empty")
	case strings.HasPrefix(key, "request.headers"):
		parts, err := bracketParts(key, "request.headers", false)
		if err != nil {
			return ConditionKey{}, err
		}
		return ConditionKey{Kind: KeyRequestHeader, Header: parts[0]}, nil
	case strings.HasPrefix(key, "request.experimental.inline.headers"):
		parts, err := bracketParts(key, "request.experimental.inline.headers", false)
		if err != nil {
			return ConditionKey{}, err
		}
		return ConditionKey{Kind: KeyRequestInlineHeader, Header: parts[0]}, nil
	case strings.HasPrefix(key, "request.auth.claims"):
		parts, err := bracketParts(key, "request.auth.claims", true)
		if err != nil {
			return ConditionKey{}, err
		}
		return ConditionKey{Kind: KeyRequestClaims, Path: parts}, nil
	case strings.HasPrefix(key, "experimental.envoy.filters."):
		parts, err := bracketParts(key, key[:strings.Index(key+"[", "[")], true)
		if err != nil {
			return ConditionKey{}, err
		}
		return ConditionKey{Kind: KeyEnvoyFilter, Path: parts}, nil
	case key == "destination.namespace", strings.HasPrefix(key, "destination.labels"),
		key == "destination.name", key == "destination.user":
		return ConditionKey{}, fmt.Errorf("attribute %s is no longer supported: use the policy's namespace and selector (or targetRefs) instead", key)
	}
	return ConditionKey{}, fmt.Errorf("unknown attribute: %s", key)
}

// bracketParts parses prefix[a] (nested: prefix[a][b]...): parts non-empty, no brackets inside.
func bracketParts(key, prefix string, nested bool) ([]string, error) {
	rest := strings.TrimPrefix(key, prefix)
	bad := fmt.Errorf("bad key (%s): should have format %s[b]", key, prefix)
	if !strings.HasPrefix(rest, "[") || !strings.HasSuffix(rest, "]") || len(rest) < 3 {
		return nil, bad
	}
	inner := rest[1 : len(rest)-1]
	parts := []string{inner}
	if nested {
		parts = strings.Split(inner, "][")
	}
	for _, part := range parts {
		if part == "" || strings.ContainsAny(part, "[]") {
			return nil, bad
		}
	}
	return parts, nil
}

// HTTPOnly: the key reads a request attribute (model.go: HTTP only).
func (k ConditionKey) HTTPOnly() bool {
	return k.Kind == KeyRequestHeader || k.Kind == KeyRequestInlineHeader || k.RequestAuth()
}

// RequestAuth: the key reads the request's JWT (request.auth.*; not with
// CUSTOM).
func (k ConditionKey) RequestAuth() bool {
	switch k.Kind {
	case KeyRequestClaims, KeyRequestPrincipal, KeyRequestAudiences, KeyRequestPresenter:
		return true
	}
	return false
}

// PeerIdentity: the key reads the peer certificate (not with CUSTOM).
func (k ConditionKey) PeerIdentity() bool {
	switch k.Kind {
	case KeySourceNamespace, KeySourcePrincipal, KeySourceServiceAccount, KeySourceTrustDomain:
		return true
	}
	return false
}
