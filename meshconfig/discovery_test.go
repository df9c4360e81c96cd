package meshconfig

import (
	"strings"
	"testing"
)

// TestDiscoverySelectors: Istio's pkg/kube/namespace/filter.go semantics
// (LabelSelectorAsSelector, isSelectedLocked): ANY selector matching selects
// the namespace; within one, matchLabels and matchExpressions are ANDed;
// {} selects every namespace; no selectors select every namespace.
func TestDiscoverySelectors(t *testing.T) {
	cases := []struct {
		name, yaml string
		labels     map[string]string
		want       bool
	}{
		{"none: all", "{}", nil, true},
		{"matchLabels hit", "discoverySelectors: [{matchLabels: {mesh: enabled}}]", map[string]string{"mesh": "enabled"}, true},
		{"matchLabels miss", "discoverySelectors: [{matchLabels: {mesh: enabled}}]", map[string]string{"mesh": "off"}, false},
		{"no labels", "discoverySelectors: [{matchLabels: {mesh: enabled}}]", nil, false},
		{"any of two", "discoverySelectors: [{matchLabels: {a: x}}, {matchLabels: {b: z}}]", map[string]string{"b": "z"}, true},
		{"labels AND expressions", "discoverySelectors: [{matchLabels: {a: x}, matchExpressions: [{key: env, operator: In, values: [prod]}]}]",
			map[string]string{"a": "x", "env": "dev"}, false},
		{"In", "discoverySelectors: [{matchExpressions: [{key: env, operator: In, values: [prod, stage]}]}]", map[string]string{"env": "stage"}, true},
		{"NotIn absent key", "discoverySelectors: [{matchExpressions: [{key: env, operator: NotIn, values: [prod]}]}]", nil, true},
		{"NotIn", "discoverySelectors: [{matchExpressions: [{key: env, operator: NotIn, values: [prod]}]}]", map[string]string{"env": "prod"}, false},
		{"Exists", "discoverySelectors: [{matchExpressions: [{key: mesh, operator: Exists}]}]", map[string]string{"mesh": ""}, true},
		{"DoesNotExist", "discoverySelectors: [{matchExpressions: [{key: mesh, operator: DoesNotExist}]}]", map[string]string{"mesh": ""}, false},
		{"empty selector: all", "discoverySelectors: [{}]", nil, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := Parse([]byte(c.yaml))
			if err != nil {
				t.Fatal(err)
			}
			d, err := Validated(m)
			if err != nil {
				t.Fatal(err)
			}
			if got := d.Selects(c.labels); got != c.want {
				t.Errorf("Selects(%v) = %v, want %v (%s)", c.labels, got, c.want, d)
			}
		})
	}
}

// TestDiscoverySelectorsInvalid: a selector Istio cannot convert (it logs
// and keeps its previous namespaces) is a mesh config error naming the field.
func TestDiscoverySelectorsInvalid(t *testing.T) {
	cases := []struct{ yaml, field string }{
		{"discoverySelectors: [{matchExpressions: [{key: env, operator: in, values: [a]}]}]", "mesh.discoverySelectors[0].matchExpressions[0].operator"},
		{"discoverySelectors: [{}, {matchExpressions: [{key: env, operator: In}]}]", "mesh.discoverySelectors[1].matchExpressions[0]"},
		{"discoverySelectors: [{matchExpressions: [{key: env, operator: Exists, values: [a]}]}]", "mesh.discoverySelectors[0].matchExpressions[0]"},
		{"discoverySelectors: [{matchLabels: {'bad key!': x}}]", "mesh.discoverySelectors[0].matchLabels[bad key!]"},
		{"discoverySelectors: [{matchLabels: {k: 'bad value!'}}]", "mesh.discoverySelectors[0].matchLabels[k]"},
	}
	for _, c := range cases {
		_, err := Load([]byte(c.yaml))
		if err == nil || !strings.Contains(err.Error(), c.field) {
			t.Errorf("Load(%s): %v, want an error naming %s", c.yaml, err, c.field)
		}
	}
}
