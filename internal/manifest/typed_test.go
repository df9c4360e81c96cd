package manifest

import (
	"errors"
	"strings"
	"testing"
)

// TestDecodeStrict: every refusal names the field by its path in the
// object (at in front), as the API server's strict field validation does.
func TestDecodeStrict(t *testing.T) {
	type inner struct {
		Name  string `json:"name"`
		Count int32  `json:"count"`
	}
	type obj struct {
		Items []inner        `json:"items"`
		Extra map[string]any `json:"extra"`
	}
	for _, tc := range []struct{ name, in, at, want string }{
		{"valid", "items: [{name: a, count: 1}]\n", "", ""},
		{"unknown field", "items: [{name: a, nmae: b}]\n", "", "field items[0].nmae: unknown field"},
		{"unknown field under at", "itemz: []\n", "spec.", "field spec.itemz: unknown field"},
		{"case differs", "Items: []\n", "", "field Items: unknown field"},
		{"wrong type", "items: [{count: many}]\n", "spec.", "field spec.items.count: cannot decode string as int32"},
		{"an object where a list is", "items: {a: 1}\n", "", "field items: cannot decode object as a list"},
		{"duplicate key", "items: []\nitems: []\n", "", `line 2: key "items" already set in map`},
		{"not YAML", "items: [\n", "", "yaml: line 1: did not find expected node content"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var o obj
			err := DecodeStrict([]byte(tc.in), &o, tc.at)
			if got := errString(err); got != tc.want {
				t.Fatalf("error %q, want %q", got, tc.want)
			}
		})
	}
	// An integer in an untyped field keeps every digit.
	var o obj
	if err := DecodeStrict([]byte("extra: {num: 9007199254740993}\n"), &o, ""); err != nil || o.Extra["num"] != int64(9007199254740993) {
		t.Errorf("extra.num = %#v (%v), want int64 9007199254740993", o.Extra["num"], err)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestSplitRawUnbounded: the same cut as SplitRaw, a document over the
// limit of one object returned whole for the caller to bound
// (CheckObjectSize, SplitRaw's own refusal).
func TestSplitRawUnbounded(t *testing.T) {
	big := "a: " + strings.Repeat("x", MaxDocumentBytes) + "\n"
	in := []byte("b: 1\n---\n" + big + "---\n# only a comment\n---\nc: 2\n")
	got, err := SplitRawUnbounded(in)
	if err != nil || len(got) != 3 {
		t.Fatalf("%d documents, %v", len(got), err)
	}
	bounded, _ := SplitRaw(in)
	for i, d := range got {
		if d.Err != nil || d.Index != bounded[i].Index {
			t.Errorf("document %d: index %d err %v, SplitRaw's index %d", i, d.Index, d.Err, bounded[i].Index)
		}
	}
	if string(got[1].Raw) != big {
		t.Errorf("the large document is not returned whole (%d bytes)", len(got[1].Raw))
	}
	if err := CheckObjectSize("document", len(got[1].Raw)); !errors.Is(err, ErrTooLarge) || err.Error() != bounded[1].Err.Error() {
		t.Errorf("CheckObjectSize: %v, SplitRaw: %v", err, bounded[1].Err)
	}
	if err := CheckObjectSize("object", MaxDocumentBytes); err != nil {
		t.Errorf("an object of exactly the limit: %v", err)
	}
}
