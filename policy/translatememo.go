package policy

import (
	"fmt"
	"reflect"
	"slices"

	secv1 "istio.io/client-go/pkg/apis/security/v1beta1"
)

// A reload usually changes one policy of many, and translating every
// AuthorizationPolicy again was most of what a rebuild allocated (≈ 60 of
// 86 MB at 10,000 policies, docs/benchmarks.md), garbage that the GC then
// collected beside the requests. So a snapshot keeps what each policy's
// translation yields (translatedAP), and the next build under the same
// mesh settings reuses it for every object it has seen before, translating
// the rules again only for the shards it generates.
//
// translator.policy depends only on the object, the mesh settings and the
// object's validation verdict (it reads nothing of other policies), so an
// unchanged object under unchanged settings translates the same.

// The memo is keyed by the object itself: both loaders hand out the same
// object while it is unchanged and a new one when it changes (the policy
// directory's DirLoader per document bytes; the API loader the informer
// cache's objects, which an update replaces, never modifies), and objects
// in a Set are never modified after it is compiled. Not by UID and
// resourceVersion: a policy file exported with `kubectl get -o yaml` keeps
// both however it is edited or copied, and two such objects would share
// one translation (a fail-open reuse; TestTranslationMemoIgnoresFileUIDs).

// translatedAP is what a snapshot keeps of one object's translation: the
// policy without its rules (placement in views and shard input keys need
// only its selector, age and digest), and what translating it recorded
// (warnings, fail-closed entry), replayed on reuse so the snapshot's
// warnings and failed list come out as from a fresh build. The rules are
// translated again only for the shards a build generates (materialize):
// keeping every policy's rules cost ≈ 34 MB of live heap at 10,000
// policies, which every GC cycle would mark.
type translatedAP struct {
	cp       compiledPolicy // Rules and TRules nil: see materialize
	bucket   string
	ok       bool
	invalid  string // the validation verdict it was translated under
	warnings []string
	failed   []FailedPolicy
}

// translationMemo is one build's view: prev from the snapshot before (nil
// when the mesh settings changed), next what this build's snapshot keeps:
// only the objects of its own set, so a deleted policy is forgotten.
type translationMemo struct {
	prev, next map[*secv1.AuthorizationPolicy]*translatedAP
	translated int // objects translated, not reused
	// src: this build's object for each digest, to materialize a reused
	// policy (equal digests: equal translations, O aside).
	src map[string]*secv1.AuthorizationPolicy
}

// newTranslationMemo starts a build's memo from prev's entries (nil: none
// reusable), sized for n objects.
func newTranslationMemo(prev map[*secv1.AuthorizationPolicy]*translatedAP, n int) translationMemo {
	return translationMemo{prev: prev, next: make(map[*secv1.AuthorizationPolicy]*translatedAP, n),
		src: make(map[string]*secv1.AuthorizationPolicy, n)}
}

// policyMemo is translator.policy through the memo. A reused policy comes
// back without its rules (Rules nil); materialize restores them.
func (t *translator) policyMemo(ap *secv1.AuthorizationPolicy) (compiledPolicy, string, bool) {
	invalid := t.invalidAP[ap]
	if e := t.memo.prev[ap]; e != nil && e.invalid == invalid {
		t.warnings = append(t.warnings, e.warnings...)
		t.failed = append(t.failed, e.failed...)
		t.memo.next[ap] = e
		t.memo.src[e.cp.digest] = ap
		return e.cp, e.bucket, e.ok
	}
	w, f := len(t.warnings), len(t.failed)
	cp, bucket, ok := t.policy(ap)
	cp.digest = policyDigest(cp)
	t.memo.translated++
	if cp.digest == "" { // cannot be hashed (nor keyed): never reused
		return cp, bucket, ok
	}
	t.memo.src[cp.digest] = ap
	light := cp
	light.Rules, light.TRules = nil, nil
	t.memo.next[ap] = &translatedAP{cp: light, bucket: bucket, ok: ok, invalid: invalid,
		warnings: slices.Clone(t.warnings[w:]), failed: slices.Clone(t.failed[f:])}
	return cp, bucket, ok
}

// materialize gives every reused policy of view v its rules back, by
// translating its object again (what that records was replayed already and
// is dropped); the translation must have the digest it was reused by.
func (t *translator) materialize(v *view) error {
	w, f := len(t.warnings), len(t.failed)
	defer func() { t.warnings, t.failed = t.warnings[:w], t.failed[:f] }()
	fill := func(list []compiledPolicy) error {
		for i := range list {
			light := &list[i]
			if light.Rules != nil {
				continue
			}
			ap := t.memo.src[light.digest]
			if ap == nil {
				return fmt.Errorf("policy %s: reused translation has no object in this set", light.ID)
			}
			cp, _, _ := t.policy(ap)
			if policyDigest(cp) != light.digest {
				return fmt.Errorf("policy %s: translates differently than the translation reused for it", light.ID)
			}
			cp.O, cp.digest, cp.Sel = light.O, light.digest, light.Sel // Sel: see build's Gateway copies
			*light = cp
		}
		return nil
	}
	for _, b := range v.B {
		if err := fill(b.Any); err != nil {
			return err
		}
		for _, byValue := range b.By {
			for _, list := range byValue {
				if err := fill(list); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// sameTranslation: translations made under m and b (both withDefaults) are
// interchangeable: every setting equal, a field added to Mesh later
// included (a nil and an empty alias list differ: a missed reuse, never a
// wrong one).
func (m Mesh) sameTranslation(b Mesh) bool { return reflect.DeepEqual(m, b) }
