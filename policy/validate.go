package policy

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshguard/meshguard/validation"
)

// Every policy source runs `meshguard validate`'s rules (validation/, whose
// value parsers are secpolicy's, shared with the compiler): a directory or
// `authz check` rejects the whole input (AddYAML), the API server's stored
// objects fail closed one by one (Compile, see failClosed in translate.go).

// validateDoc validates one decoded document (unknown fields included)
// exactly as `meshguard validate` does; the error lists every problem.
func validateDoc(where string, obj map[string]any) error {
	res := validation.ValidateObject(context.Background(), obj, validation.Options{DefaultNamespace: "default"})
	if !res.Valid() {
		return fmt.Errorf("%s: rejected as `meshguard validate` rejects it: %s", where, strings.Join(res.ErrorLines(), "; "))
	}
	return nil
}

// validateTyped validates a decoded object (from the API server, whose
// pruning already removed unknown fields). The result names the object's
// first invalid field, or is "" when it is valid.
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
	res := validation.ValidateObject(context.Background(), m, validation.Options{DefaultNamespace: "default", APIServerAdmitted: true})
	if res.Valid() {
		return ""
	}
	return strings.Join(res.ErrorLines(), "; ")
}

// typedVerdicts caches validateTyped by object UID and resourceVersion (an
// API-server object with both never changes), so a reload revalidates only
// what changed. Cleared when it grows past maxTypedVerdicts.
var typedVerdicts sync.Map

const maxTypedVerdicts = 200000

var typedVerdictCount int64
var typedVerdictMu sync.Mutex

// validateStored is validateTyped with the cache; objects AddYAML already
// validated from their raw document are skipped.
func validateStored(set *Set, meta *metav1.ObjectMeta, kind string, obj any) string {
	if set.prevalidated[obj] {
		return ""
	}
	key := ""
	if meta.UID != "" && meta.ResourceVersion != "" {
		key = kind + "/" + string(meta.UID) + "/" + meta.ResourceVersion
		if r, ok := typedVerdicts.Load(key); ok {
			return r.(string)
		}
	}
	r := validateTyped("security.istio.io/v1", kind, obj)
	if key != "" {
		typedVerdictMu.Lock()
		if typedVerdictCount++; typedVerdictCount > maxTypedVerdicts {
			typedVerdicts.Clear()
			typedVerdictCount = 1
		}
		typedVerdictMu.Unlock()
		typedVerdicts.Store(key, r)
	}
	return r
}
