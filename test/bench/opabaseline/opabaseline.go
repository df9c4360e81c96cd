// Package opabaseline is the OPA baseline of the side-by-side benchmarks
// (hack/bench-compare.sh, docs/benchmarks.md): the benchmark's policies
// evaluated the way an OPA-Envoy user would write it, with OPA's own rego
// package: the AuthorizationPolicies and Pods as JSON data, one generic Rego
// v1 policy iterating over them (authz.rego), prepared once, and each
// CheckRequest turned into OPA-Envoy's input (opa-envoy-plugin envoyauth/
// request.go RequestToInput: protojson, then parsed_path and parsed_query).
// It is test tooling, not linked into cmd/meshguard.
package opabaseline

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/util"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/meshguard/meshguard/policy"
)

//go:embed authz.rego
var module string

// Query is OPA-Envoy's default decision path.
const Query = "data.envoy.authz.allow"

// Baseline is a prepared "policies as data" evaluation.
type Baseline struct {
	pq rego.PreparedEvalQuery
}

// Data renders a policy set as the JSON documents an OPA-Envoy deployment
// would hold, where kube-mgmt replicates Kubernetes objects
// (data.kubernetes.<resource>.<namespace>.<name>): AuthorizationPolicies with
// their spec in Istio's JSON form, Pods, and data.root_namespace.
func Data(set *policy.Set, rootNamespace string) (map[string]any, error) {
	policies := map[string]any{}
	pods := map[string]any{}
	put := func(m map[string]any, ns, name string, v any) {
		byName, ok := m[ns].(map[string]any)
		if !ok {
			byName = map[string]any{}
			m[ns] = byName
		}
		byName[name] = v
	}
	for _, ap := range set.AuthorizationPolicies {
		spec, err := protojson.Marshal(&ap.Spec)
		if err != nil {
			return nil, fmt.Errorf("AuthorizationPolicy %s/%s: %w", ap.Namespace, ap.Name, err)
		}
		var s any
		if err := util.UnmarshalJSON(spec, &s); err != nil {
			return nil, fmt.Errorf("AuthorizationPolicy %s/%s: %w", ap.Namespace, ap.Name, err)
		}
		put(policies, ap.Namespace, ap.Name, map[string]any{
			"metadata": map[string]any{"name": ap.Name, "namespace": ap.Namespace},
			"spec":     s,
		})
	}
	for _, p := range set.Pods {
		b, err := json.Marshal(p)
		if err != nil {
			return nil, fmt.Errorf("pod %s/%s: %w", p.Namespace, p.Name, err)
		}
		var v any
		if err := util.UnmarshalJSON(b, &v); err != nil {
			return nil, fmt.Errorf("pod %s/%s: %w", p.Namespace, p.Name, err)
		}
		put(pods, p.Namespace, p.Name, v)
	}
	return map[string]any{"kubernetes": map[string]any{"authorizationpolicies": policies, "pods": pods},
		"root_namespace": rootNamespace}, nil
}

// New loads set as data and prepares the query once. The store returns AST
// values on read (OPA's inmem.OptReturnASTValuesOnRead, `opa run`'s
// storage setting for read-heavy data), so evaluation does not convert the
// policies from Go values on every request.
func New(ctx context.Context, set *policy.Set, rootNamespace string) (*Baseline, error) {
	data, err := Data(set, rootNamespace)
	if err != nil {
		return nil, err
	}
	pq, err := rego.New(
		rego.Query(Query),
		rego.Module("authz.rego", module),
		rego.Store(inmem.NewFromObjectWithOpts(data, inmem.OptReturnASTValuesOnRead(true))),
		rego.SetRegoVersion(ast.RegoV1),
	).PrepareForEval(ctx)
	if err != nil {
		return nil, fmt.Errorf("prepare OPA baseline: %w", err)
	}
	return &Baseline{pq: pq}, nil
}

// Input converts a CheckRequest as OPA-Envoy does (RequestToInput, without
// the body parsing the benchmark requests do not need).
func Input(req *authv3.CheckRequest) (map[string]any, error) {
	bs, err := protojson.Marshal(req)
	if err != nil {
		return nil, err
	}
	var input map[string]any
	if err := util.UnmarshalJSON(bs, &input); err != nil {
		return nil, err
	}
	input["version"] = map[string]string{"ext_authz": "v3", "encoding": "protojson"}
	u, err := url.Parse(req.GetAttributes().GetRequest().GetHttp().GetPath())
	if err != nil {
		return nil, err
	}
	parts := strings.Split(strings.TrimLeft(u.Path, "/"), "/")
	parsedPath := make([]any, len(parts))
	for i, p := range parts {
		parsedPath[i] = p
	}
	query := map[string]any{}
	for k, vs := range u.Query() {
		vals := make([]any, len(vs))
		for i, v := range vs {
			vals[i] = v
		}
		query[k] = vals
	}
	input["parsed_path"] = parsedPath
	input["parsed_query"] = query
	input["parsed_body"] = nil
	input["truncated_body"] = false
	return input, nil
}

// Allowed evaluates one CheckRequest.
func (b *Baseline) Allowed(ctx context.Context, req *authv3.CheckRequest) (bool, error) {
	input, err := Input(req)
	if err != nil {
		return false, fmt.Errorf("OPA-Envoy input: %w", err)
	}
	rs, err := b.pq.Eval(ctx, rego.EvalInput(input))
	if err != nil {
		return false, fmt.Errorf("evaluate %s: %w", Query, err)
	}
	if len(rs) != 1 || len(rs[0].Expressions) != 1 {
		return false, fmt.Errorf("evaluate %s: undefined", Query)
	}
	allowed, ok := rs[0].Expressions[0].Value.(bool)
	if !ok {
		return false, fmt.Errorf("evaluate %s: not a boolean: %v", Query, rs[0].Expressions[0].Value)
	}
	return allowed, nil
}
