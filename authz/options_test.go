package authz

import (
	"strings"
	"testing"
)

// TestValidateTrustDomainFlags: --trust-domain and --trust-domain-aliases
// pass the mesh config's trustDomain rule (validation.TrustDomain), as the
// same values in --mesh-config do; an empty alias would otherwise make the
// principals of an empty trust domain match policies of the mesh's.
func TestValidateTrustDomainFlags(t *testing.T) {
	for _, c := range []struct {
		name    string
		td      string
		aliases []string
		wantErr string
	}{
		{"defaults", "cluster.local", nil, ""},
		{"unset in code", "", nil, ""},
		{"aliases", "td.example", []string{"old.td", "cluster.local"}, ""},
		{"empty alias", "cluster.local", []string{""}, `--trust-domain-aliases ""`},
		{"malformed alias", "cluster.local", []string{"Bad_TD"}, `--trust-domain-aliases "Bad_TD"`},
		{"malformed trust domain", "a..b", nil, `--trust-domain "a..b"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := DefaultOptions()
			o.TrustDomain, o.TrustDomainAliases = c.td, c.aliases
			err := o.Validate()
			if c.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Fatalf("Validate = %v; want an error containing %s", err, c.wantErr)
			}
			// The flag names the value; no field path of a mesh config.
			if strings.Contains(err.Error(), "<nil>") {
				t.Fatalf("Validate = %v; want no empty field path", err)
			}
		})
	}
}
