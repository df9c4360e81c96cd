package policy

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash"
	"io"
	"maps"
	"math"
	"reflect"
	"slices"
	"strings"
)

// settingsKey identifies what every shard of a build depends on besides
// its own views or module: the mesh settings (every field, including ones
// added later), the user modules and the prelude. Computed once per build
// for shardKey and shardInputKey.
func settingsKey(mesh Mesh, user map[string]string, prelude string) [sha256.Size]byte {
	w := &keyWriter{h: sha256.New()}
	w.str(fmt.Sprintf("%#v", mesh))
	w.str(prelude)
	names := slices.Sorted(maps.Keys(user))
	w.int(int64(len(names)))
	for _, n := range names {
		w.str(n)
		w.str(user[n])
	}
	return w.sum()
}

// shardInputKey identifies everything a shard's generated module is made
// from (generateShard's inputs): the build's common inputs (commonInputKey:
// settings, PeerAuthentication constant, default view) and the translated
// views of the shard. A shard of
// the previous snapshot with the same input key has the module generation
// would write again, so it is reused without generating it (measured: at
// 10,000 policies, regenerating all 64 shards to find the one that changed
// was ≈ 40% of a reload's garbage). The views are hashed by reflection,
// every field, exported or not, so a field added to the model later is
// covered without a change here; a kind the hasher does not know is an
// error, and the caller then generates as before. A translated policy
// is hashed by its digest (policyDigest).
func shardInputKey(common [sha256.Size]byte, d *data, views []string) ([sha256.Size]byte, error) {
	w := &keyWriter{h: sha256.New()}
	w.buf = append(w.buf, common[:]...)
	w.int(int64(len(views)))
	for _, vn := range views {
		w.str(vn)
		if err := w.value(reflect.ValueOf(d.view(vn))); err != nil {
			return [sha256.Size]byte{}, err
		}
	}
	return w.sum(), nil
}

// commonInputKey is what every shard's module is made from besides its
// own views: the settings (settingsKey: mesh settings, user modules,
// prelude), the PeerAuthentication constant and the default view (whose
// mode every shard reads). Hashed once per build.
func commonInputKey(settings [sha256.Size]byte, paConst string, d *data) ([sha256.Size]byte, error) {
	w := &keyWriter{h: sha256.New()}
	w.buf = append(w.buf, settings[:]...)
	w.str(paConst)
	if err := w.value(reflect.ValueOf(d.Dflt)); err != nil {
		return [sha256.Size]byte{}, err
	}
	return w.sum(), nil
}

// policyDigest hashes a translated policy, every field but O (its age
// rank in one build) and digest, so that the shard input keys of the
// builds reusing its translation (translatememo.go) hash 32 bytes instead
// of walking its rules again. "" when it cannot be hashed (then
// keyWriter walks it, and fails as it would).
func policyDigest(cp compiledPolicy) string {
	cp.O, cp.digest = 0, ""
	w := &keyWriter{h: sha256.New()}
	if err := w.value(reflect.ValueOf(cp)); err != nil {
		return ""
	}
	k := w.sum()
	return string(k[:])
}

var compiledPolicyType = reflect.TypeFor[compiledPolicy]()

// keyWriter writes an unambiguous encoding (kinds, lengths, nil marks) of
// values into a hash, through a buffer.
type keyWriter struct {
	h   hash.Hash
	buf []byte
}

func (w *keyWriter) flush() {
	w.h.Write(w.buf)
	w.buf = w.buf[:0]
}

func (w *keyWriter) byte(b byte) { w.buf = append(w.buf, b) }

func (w *keyWriter) int(i int64) {
	w.buf = binary.AppendVarint(w.buf, i)
	if len(w.buf) > 4096 {
		w.flush()
	}
}

func (w *keyWriter) str(s string) {
	w.int(int64(len(s)))
	if len(s) > 4096 { // a module or the prelude: into the hash, not the buffer
		w.flush()
		io.WriteString(w.h, s)
		return
	}
	w.buf = append(w.buf, s...)
	if len(w.buf) > 4096 {
		w.flush()
	}
}

func (w *keyWriter) sum() [sha256.Size]byte {
	w.flush()
	var k [sha256.Size]byte
	w.h.Sum(k[:0])
	return k
}

func (w *keyWriter) value(v reflect.Value) error {
	w.byte(byte(v.Kind()))
	switch v.Kind() {
	case reflect.Bool:
		if v.Bool() {
			w.byte(1)
		} else {
			w.byte(0)
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		w.int(v.Int())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		w.int(int64(v.Uint()))
	case reflect.Float32, reflect.Float64:
		w.int(int64(math.Float64bits(v.Float())))
	case reflect.String:
		w.str(v.String())
	case reflect.Slice, reflect.Array:
		if v.Kind() == reflect.Slice && v.IsNil() {
			w.int(-1) // nil and empty are different JSON (null, []) in the model
			return nil
		}
		w.int(int64(v.Len()))
		for i := range v.Len() {
			if err := w.value(v.Index(i)); err != nil {
				return err
			}
		}
	case reflect.Map:
		if v.IsNil() {
			w.int(-1)
			return nil
		}
		if v.Type().Key().Kind() != reflect.String {
			return fmt.Errorf("shard input key: map with %s keys", v.Type().Key())
		}
		keys := v.MapKeys()
		slices.SortFunc(keys, func(a, b reflect.Value) int { return strings.Compare(a.String(), b.String()) })
		w.int(int64(len(keys)))
		for _, k := range keys {
			w.str(k.String())
			if err := w.value(v.MapIndex(k)); err != nil {
				return err
			}
		}
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			w.byte(0)
			return nil
		}
		w.byte(1)
		if v.Kind() == reflect.Interface {
			w.str(v.Elem().Type().String())
		}
		return w.value(v.Elem())
	case reflect.Struct:
		w.str(v.Type().String())
		if v.Type() == compiledPolicyType {
			if digest := v.FieldByName("digest").String(); digest != "" {
				w.byte('d') // the digest stands for every field but O and Sel
				w.int(v.FieldByName("O").Int())
				w.str(digest)
				// Sel: a Gateway-attached policy's copies get theirs after translation (build).
				return w.value(v.FieldByName("Sel"))
			}
		}
		for i := range v.NumField() {
			if err := w.value(v.Field(i)); err != nil {
				return err
			}
		}
	default:
		return fmt.Errorf("shard input key: cannot hash a %s", v.Type())
	}
	return nil
}
