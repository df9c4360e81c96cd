package policy

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"

	secv1 "istio.io/client-go/pkg/apis/security/v1beta1"

	"github.com/meshguard/meshguard/validation"
)

// Every policy source runs `meshguard validate`'s rules (validation/, whose
// value parsers are secpolicy's, shared with the compiler): a directory or
// `authz check` rejects the whole input (AddYAML), the API server's stored
// objects fail closed one by one (Compile, see failClosed in translate.go).

// validateDoc validates one decoded document (unknown fields included)
// exactly as `meshguard validate` does; the error lists every problem.
func validateDoc(where string, obj map[string]any) error {
	_, err := checkDoc(where, obj)
	return err
}

// checkDoc is validateDoc, also returning the object validation checked
// (validation.Result.Checked): the one form a loader decodes.
func checkDoc(where string, obj map[string]any) (checked map[string]any, err error) {
	r, checked := rejection(obj)
	if r != "" {
		return checked, fmt.Errorf("%s: rejected as `meshguard validate` rejects it: %s", where, r)
	}
	return checked, nil
}

// rejection lists every problem `meshguard validate` finds in a decoded
// document, or is "" when it accepts it; checked is the object it checked
// (nil when it was not checked: another group's object).
func rejection(obj map[string]any) (reason string, checked map[string]any) {
	res := validation.ValidateObject(context.Background(), obj, validation.Options{DefaultNamespace: "default"})
	if res.Valid() {
		return "", res.Checked()
	}
	return strings.Join(res.ErrorLines(), "; "), res.Checked()
}

// validDocs memoizes validateDoc across reloads of a policy directory: the
// keys (docKey) of documents it accepted. Validation (CRD schema and CEL per
// object) dominates loading a large directory, and a reload usually changes
// one document, so an unchanged document is not validated again. Only
// acceptances are kept: a rejected document is validated (and its error
// built) every time. Cleared when it grows past maxValidDocs.
var (
	validDocs      sync.Map // [sha256.Size]byte → struct{}
	validDocsCount int64
	validDocsMu    sync.Mutex
)

const maxValidDocs = 200000

// validateDocMemo is validateDoc with the validDocs memo; validated says
// whether the validation rules ran (tests count it). Only documents whose
// checked form is the document itself (nothing pruned) are memoized, so a
// memo hit's checked form is obj.
func validateDocMemo(where string, obj map[string]any) (validated bool, checked map[string]any, err error) {
	key, ok := docKey(obj)
	if ok {
		if _, hit := validDocs.Load(key); hit {
			return false, obj, nil
		}
	}
	checked, err = checkDoc(where, obj)
	if err != nil {
		return true, checked, err
	}
	if ok && sameMap(checked, obj) {
		validDocsMu.Lock()
		if validDocsCount++; validDocsCount > maxValidDocs {
			validDocs.Clear()
			validDocsCount = 1
		}
		validDocsMu.Unlock()
		validDocs.Store(key, struct{}{})
	}
	return true, checked, nil
}

// sameMap: a and b are the same map (not equal contents: the same one).
func sameMap(a, b map[string]any) bool {
	return a != nil && b != nil && reflect.ValueOf(a).UnsafePointer() == reflect.ValueOf(b).UnsafePointer()
}

// docKey hashes a decoded document canonically: map keys sorted, and every
// value tagged with its Go type, so documents that differ only in a value's
// type (1 as an integer or as 1.0, "1" or 1) do not share a verdict. ok is
// false for a value of a type it does not know (then nothing is memoized).
func docKey(obj map[string]any) (key [sha256.Size]byte, ok bool) {
	h := sha256.New()
	var buf []byte
	var walk func(v any) bool
	str := func(tag byte, s string) {
		buf = append(buf[:0], tag)
		buf = binary.AppendUvarint(buf, uint64(len(s)))
		h.Write(buf)
		io.WriteString(h, s)
	}
	walk = func(v any) bool {
		switch x := v.(type) {
		case nil:
			h.Write([]byte{'z'})
		case string:
			str('s', x)
		case bool:
			if x {
				h.Write([]byte{'t'})
			} else {
				h.Write([]byte{'f'})
			}
		case int64:
			str('i', strconv.FormatInt(x, 10))
		case int:
			str('i', strconv.Itoa(x))
		case float64:
			str('d', strconv.FormatFloat(x, 'g', -1, 64))
		case json.Number:
			str('n', string(x))
		case []any:
			str('[', strconv.Itoa(len(x)))
			for _, e := range x {
				if !walk(e) {
					return false
				}
			}
		case map[string]any:
			keys := make([]string, 0, len(x))
			for k := range x {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			str('{', strconv.Itoa(len(x)))
			for _, k := range keys {
				str('k', k)
				if !walk(x[k]) {
					return false
				}
			}
		default:
			return false
		}
		return true
	}
	if !walk(obj) {
		return key, false
	}
	h.Sum(key[:0])
	return key, true
}

// validateTyped validates an object given as a Go value (a Set built in
// code, not read by AddYAML or DecodeStored). The result lists the object's
// invalid fields, or is "" when it is valid.
func validateTyped(apiVersion, kind string, obj any) string {
	b, err := json.Marshal(obj)
	if err != nil {
		return fmt.Sprintf("cannot be encoded for validation: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Sprintf("cannot be encoded for validation: %v", err)
	}
	m["apiVersion"], m["kind"] = apiVersion, kind
	if pa, ok := obj.(*secv1.PeerAuthentication); ok {
		typedNulls(pa, m)
	}
	res := validation.ValidateObject(context.Background(), m, validation.Options{DefaultNamespace: "default", APIServerAdmitted: true})
	if res.Valid() {
		return ""
	}
	return strings.Join(res.ErrorLines(), "; ")
}

// typedNulls writes back into m, pa's JSON form, the null of a nil
// spec.portLevelMtls entry: the JSON encoding of the typed value turns it
// into {}, a valid entry, while the same object read as a document
// (AddYAML, DecodeStored) has a null there, which the validator prunes as
// the API server does (validation prune), and a map left empty is refused.
// The typed value gets the document's verdict.
func typedNulls(pa *secv1.PeerAuthentication, m map[string]any) {
	for port, v := range pa.Spec.GetPortLevelMtls() {
		if v != nil {
			continue
		}
		spec, ok := m["spec"].(map[string]any)
		if !ok {
			spec = map[string]any{}
			m["spec"] = spec
		}
		ports, ok := spec["portLevelMtls"].(map[string]any)
		if !ok {
			ports = map[string]any{}
			spec["portLevelMtls"] = ports
		}
		ports[strconv.FormatUint(uint64(port), 10)] = nil
	}
}

// validateStored is the verdict on obj's raw document when the Set has it,
// else validateTyped's.
func validateStored(set *Set, kind string, obj any) string {
	if r, ok := set.verdicts[obj]; ok {
		return r
	}
	return validateTyped("security.istio.io/v1", kind, obj)
}
