package manifest

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestDecodeDuplicateKeys(t *testing.T) {
	cases := map[string]struct{ in, want string }{
		"YAML":              {"a: 1\nb:\n  c: x\n  c: y\n", `line 4: key "c" already set in map`},
		"YAML flow":         {"{a: 1, a: 2}", `key "a" already set in map`},
		"JSON":              {`{"spec": {"action": "ALLOW", "action": "DENY"}}`, `line 1: key "action" already set in map`},
		"JSON across lines": {"{\n\"a\": 1,\n\"a\": 2\n}", `line 3: key "a" already set in map`},
	}
	for name, c := range cases {
		if _, err := Decode([]byte(c.in)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: Decode(%q) error %v, want %q", name, c.in, err, c.want)
		}
	}
}

func TestDecodeTypes(t *testing.T) {
	for in, want := range map[string]map[string]any{
		`{"n": 5, "f": 1.5}`:   {"n": int64(5), "f": 1.5},
		"num: 5\nm: {x: null}": {"num": int64(5), "m": map[string]any{"x": nil}},
		"":                     nil,
	} {
		got, err := Decode([]byte(in))
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("Decode(%q) = %#v, %v; want %#v", in, got, err, want)
		}
	}
	for _, in := range []string{"[1, 2]", "x", "a: [", `{"a": [}`} {
		if _, err := Decode([]byte(in)); err == nil {
			t.Errorf("Decode(%q) accepted", in)
		}
	}
}

// TestDecodeRefusesASecondDocument: the YAML parser reads one document and
// ignored what followed it, so a second object after a JSON object or a
// "..." line (istioctl validate's decoder reads it as the next document;
// kubectl applies a JSON stream whole) was never validated nor loaded.
func TestDecodeRefusesASecondDocument(t *testing.T) {
	for _, in := range []string{
		"{\"a\": 1}\n{\"b\": 2}\n",
		`{"a": 1}{"b": 2}`,
		"# c\n{a: 1}\n{b: 2}\n",
		"{a: 1}\n]]]\n",
		"!!map {a: 1}\n{b: 2}\n",
		"a: 1\n...\nb: 2\n",
		"a: 1\n... # end\n{b: 2}\n",
		"\ufeff{a: 1}\n{b: 2}\n",
	} {
		if v, err := Decode([]byte(in)); err == nil || !strings.Contains(err.Error(), "more than one document") {
			t.Errorf("Decode(%q) = %v, %v; want an error saying more than one document", in, v, err)
		}
	}
	// One document, with what may legally follow it.
	for _, in := range []string{"{a: 1}\n# end\n", "a: 1\n...\n", "a: 1\n... # end\n", `{"a": 1}` + "\n\n", "a: [1]\nb: {c: 2}\n"} {
		if _, err := Decode([]byte(in)); err != nil {
			t.Errorf("Decode(%q): %v", in, err)
		}
	}
}

func TestReadAllBounded(t *testing.T) {
	if b, err := ReadAll(strings.NewReader("12345"), 5); err != nil || string(b) != "12345" {
		t.Errorf("at the limit: %q, %v", b, err)
	}
	if _, err := ReadAll(strings.NewReader("123456"), 5); !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "more than 5 bytes") {
		t.Errorf("over the limit: %v", err)
	}
	// A limit of 0 (or less) is DefaultMaxInputBytes, not "nothing".
	for _, max := range []int64{0, -1} {
		if b, err := ReadAll(strings.NewReader("12345"), max); err != nil || string(b) != "12345" {
			t.Errorf("limit %d: %q, %v", max, b, err)
		}
		if _, err := ReadAll(strings.NewReader(strings.Repeat("x", DefaultMaxInputBytes+1)), max); !errors.Is(err, ErrTooLarge) {
			t.Errorf("limit %d, input over DefaultMaxInputBytes: %v", max, err)
		}
	}
	// Files are read into a buffer of their size: the same limits hold.
	path := filepath.Join(t.TempDir(), "f")
	for _, c := range []struct {
		content string
		max     int64
		tooBig  bool
	}{{"12345", 5, false}, {"123456", 5, true}, {"", 5, false}, {strings.Repeat("x", 70000), 70000, false}, {strings.Repeat("x", 70001), 70000, true}} {
		if err := os.WriteFile(path, []byte(c.content), 0o600); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		b, err := ReadAll(f, c.max)
		f.Close()
		if c.tooBig != errors.Is(err, ErrTooLarge) || !c.tooBig && (err != nil || string(b) != c.content) {
			t.Errorf("file of %d bytes, limit %d: %d bytes, %v", len(c.content), c.max, len(b), err)
		}
	}
}

// TestSplitDocumentLimitBoundary: a document of exactly MaxDocumentBytes
// (the API server's 3 MiB request limit) is read; one byte more is refused.
func TestSplitDocumentLimitBoundary(t *testing.T) {
	for _, c := range []struct {
		size    int
		tooLong bool
	}{
		{MaxDocumentBytes, false},
		{MaxDocumentBytes + 1, true},
	} {
		doc := "a: " + strings.Repeat("x", c.size-4) + "\n" // c.size bytes
		raws, err := SplitRaw([]byte("b: 1\n---\n" + doc))
		if err != nil || len(raws) != 2 || len(doc) != c.size {
			t.Fatalf("%d bytes: SplitRaw: %d docs, %v", c.size, len(raws), err)
		}
		if got := errors.Is(raws[1].Err, ErrTooLarge); got != c.tooLong || (!got && len(raws[1].Raw) != c.size) {
			t.Errorf("%d bytes: err %v (want too large: %v), %d bytes kept", c.size, raws[1].Err, c.tooLong, len(raws[1].Raw))
		}
	}
}

func TestSplitDocumentLimit(t *testing.T) {
	big := "a: " + strings.Repeat("x", MaxDocumentBytes) + "\n"
	docs, err := Split([]byte("b: 1\n---\n" + big + "---\nc: 2\n"))
	if err != nil || len(docs) != 3 {
		t.Fatalf("Split: %d docs, %v", len(docs), err)
	}
	if docs[0].Err != nil || !errors.Is(docs[1].Err, ErrTooLarge) || docs[2].Err != nil || docs[2].Index != 2 {
		t.Errorf("documents: %+v / %v / %+v", docs[0], docs[1].Err, docs[2])
	}
}

func TestLists(t *testing.T) {
	for in, want := range map[string]bool{
		"kind: List\n":                          true,
		"kind: VirtualServiceList\nitems: []\n": true,
		"kind: VirtualServiceList\n":            false, // no items: a kind that happens to end in List
		"kind: VirtualService\nitems: []\n":     false,
	} {
		obj, err := Decode([]byte(in))
		if err != nil || IsList(obj) != want {
			t.Errorf("IsList(%q) = %v, %v; want %v", in, IsList(obj), err, want)
		}
	}
	obj, _ := Decode([]byte("kind: List\nitems: [{kind: A}, {kind: B}]\n"))
	items, err := Items(obj)
	if err != nil || len(items) != 2 || items[1]["kind"] != "B" {
		t.Errorf("Items = %v, %v", items, err)
	}
	obj, _ = Decode([]byte("kind: List\nitems: [{kind: A}, 3]\n"))
	if _, err := Items(obj); err == nil || !strings.Contains(err.Error(), "items[1]") {
		t.Errorf("non-object item: %v", err)
	}
	obj, _ = Decode([]byte("kind: List\nitems: [{kind: A}, {kind: List, items: [{kind: B}]}]\n"))
	if _, err := Items(obj); err == nil || !strings.Contains(err.Error(), "items[1]: a list inside a list") {
		t.Errorf("nested list: %v", err)
	}
}

// FuzzDecode: no panic; a decoded object survives a JSON round trip through
// Decode unchanged; an object given a duplicate key is always refused naming it.
func FuzzDecode(f *testing.F) {
	f.Add([]byte("a: 1\nb: [x, {c: null}]\n"), "k")
	f.Add([]byte(`{"a": {"b": 1}, "a": 2}`), "a")
	f.Add([]byte("kind: List\nitems:\n- {kind: A}\n"), "items")
	f.Add([]byte("{a: b}"), "")
	f.Fuzz(func(t *testing.T, data []byte, key string) {
		obj, err := Decode(data)
		if err != nil || obj == nil {
			return
		}
		js, err := json.Marshal(obj)
		if err != nil {
			return // e.g. NaN cannot be JSON
		}
		again, err := Decode(js)
		if err != nil {
			t.Fatalf("re-decoding %s: %v", js, err)
		}
		if !reflect.DeepEqual(normalize(obj), normalize(again)) {
			t.Fatalf("round trip changed %#v into %#v", obj, again)
		}
		k, _ := json.Marshal(key)
		dup := append([]byte("{"+string(k)+": 1, "+string(k)+": 2, "), js[1:]...)
		if _, err := Decode(dup); err == nil || !strings.Contains(err.Error(), "already set in map") && !strings.Contains(err.Error(), "duplicate field") {
			t.Fatalf("duplicate key %s accepted in %s: %v", k, dup, err)
		}
	})
}

// normalize makes numbers comparable across the round trip (1.0 may come back as 1).
func normalize(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			t[k] = normalize(x)
		}
	case []any:
		for i, x := range t {
			t[i] = normalize(x)
		}
	case int64:
		return float64(t)
	}
	return v
}

// TestReadFileRefusesAFIFO: a FIFO, or a file replaced by one while it is
// read (a rename over it), is refused promptly: a stat before the open left a
// window where the open blocked until something wrote to the FIFO, for good.
func TestReadFileRefusesAFIFO(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.yaml")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatalf("mkfifo: %v", err)
	}
	if _, err := ReadFile(fifo, 0); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("ReadFile(FIFO) = %v, want \"not a regular file\"", err)
	}
	// Swap the name between a regular file and a FIFO while reading it.
	name := filepath.Join(dir, "p.yaml")
	stop := make(chan struct{})
	swapped := make(chan struct{})
	go func() {
		defer close(swapped)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			tmp := filepath.Join(dir, "tmp")
			var err error
			if i%2 == 0 {
				err = os.WriteFile(tmp, []byte("a: 1\n"), 0o600)
			} else {
				err = syscall.Mkfifo(tmp, 0o600)
			}
			if err == nil {
				err = os.Rename(tmp, name)
			}
			if err != nil {
				t.Error(err)
				return
			}
		}
	}()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); {
			if b, err := ReadFile(name, 0); err == nil && string(b) != "a: 1\n" {
				t.Errorf("ReadFile = %q", b)
			}
		}
	}()
	select {
	case <-done:
		close(stop)
		<-swapped
	case <-time.After(10 * time.Second):
		close(stop)
		<-swapped
		// Unblock the reader stuck in open (a writer opens the FIFO).
		if f, err := os.OpenFile(name, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			f.Close()
		}
		t.Fatal("ReadFile blocked on a file replaced by a FIFO")
	}
}

// TestDecodeRefusesTextReadAsReplacement: invalid UTF-8 and JSON escapes of
// lone surrogates would decode to U+FFFD (JSON silently; YAML refuses
// invalid UTF-8 naming no field). Every reader of documents (validate, the
// webhook, --policy-dir) goes through Decode, so all refuse them alike,
// naming the field; what decodes to itself is accepted.
func TestDecodeRefusesTextReadAsReplacement(t *testing.T) {
	for _, c := range []struct {
		name, doc, field string // field "": accepted
	}{
		{"JSON invalid UTF-8", `{"spec":{"paths":["/admin` + "\xff" + `"]}}`, "spec.paths[0]"},
		{"JSON lone surrogate escape", `{"spec":{"v":"a\ud800"}}`, "spec.v"},
		// A lone trailing surrogate decodes to U+FFFD as a leading one does
		// (encoding/json's getu4 / utf16.DecodeRune).
		{"JSON lone trailing surrogate escape", `{"spec":{"v":"a\udc00"}}`, "spec.v"},
		{"JSON invalid UTF-8 in a key", `{"spec":{"k` + "\xc3" + `":1}}`, "spec.k\uFFFD"},
		{"YAML invalid UTF-8", "spec:\n  v: a\xff\n", "spec.v"},
		{"JSON surrogate pair", `{"v":"\ud83d\ude00"}`, ""},
		{"JSON escaped backslash", `{"v":"\\ud800"}`, ""},
		{"YAML single-quoted backslash-u", "v: '\\ud800'\n", ""},
		{"U+FFFD written as such", `{"v":"` + "\uFFFD" + `\ufffd"}`, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Decode([]byte(c.doc))
			if c.field == "" {
				if err != nil {
					t.Fatalf("Decode: %v; want accepted", err)
				}
				return
			}
			if err == nil || !strings.HasPrefix(err.Error(), c.field+" (line ") {
				t.Fatalf("Decode = %v; want an error naming %s", err, c.field)
			}
		})
	}
}
