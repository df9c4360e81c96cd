package manifest

import (
	"strings"
	"testing"
)

// A configuration file is one object: content in a second YAML document,
// which sigs.k8s.io/yaml (and so Istio's decoder) drops, is an error naming
// the document; empty documents (a leading or trailing "---", comments,
// null) are not.
func TestSingleDocument(t *testing.T) {
	for _, c := range []struct {
		in, want string // want: "" accepted, else a substring of the error
	}{
		{"", ""},
		{"trustDomain: a\n", ""},
		{"---\ntrustDomain: a\n", ""},
		{"# c\n---\ntrustDomain: a\n", ""},
		{"trustDomain: a\n---\n", ""},
		{"trustDomain: a\n---\n# only a comment\n---\nnull\n", ""},
		{`{"trustDomain": "a"}`, ""},
		{"rootNamespace: a\n---\ntrustDomain: evil.example\n", "document 2"},
		{"---\n---\ntrustDomain: x\n", "document 2"},
		{"trustDomain: a\n---\n# c\n---\ntrustDomainAliases: [old]\n", "document 2"}, // comment-only documents are not counted (SplitRaw)
		{"policy: enabled\n---\n[1]\n", "document 2"},
		{"trustDomain: x.example\n...\nrootNamespace: zz\n", "more than one document"},
		{`{"trustDomain": "a"}{"trustDomain": "b"}`, "more than one document"},
		{"--- junk\n", "separator"},
	} {
		err := SingleDocument([]byte(c.in))
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%q: %v, want accepted", c.in, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%q: %v, want an error containing %q", c.in, err, c.want)
		}
	}
}
