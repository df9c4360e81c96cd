package policy

import (
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/topdown"
)

// flatCache is a topdown.VirtualCache for the generated module: a request
// evaluates about ten argument-free rules, so a pooled slice scanned
// linearly replaces OPA's per-evaluation tree of hash maps (about a dozen
// allocations per request).
type flatCache struct {
	frames [][]cacheEntry
	// arena holds copies of the cached refs: topdown may reuse a ref's
	// backing array after Put (OPA's own cache copies the terms into a
	// tree). Sub-slices stay valid when append moves the arena.
	arena []*ast.Term
}

type cacheEntry struct {
	ref ast.Ref
	val *ast.Term // nil: undefined
}

var _ topdown.VirtualCache = (*flatCache)(nil)

var cachePool = sync.Pool{New: func() any { return &flatCache{frames: make([][]cacheEntry, 1, 4)} }}

func getCache() *flatCache { return cachePool.Get().(*flatCache) }

func putCache(c *flatCache) {
	c.reset()
	cachePool.Put(c)
}

// reset empties the cache for the next evaluation, keeping its capacity.
func (c *flatCache) reset() {
	for i := range c.frames {
		clear(c.frames[i])
		c.frames[i] = c.frames[i][:0]
	}
	c.frames = c.frames[:1]
	clear(c.arena)
	c.arena = c.arena[:0]
}

func (c *flatCache) Push() {
	if len(c.frames) < cap(c.frames) {
		c.frames = c.frames[:len(c.frames)+1]
		return
	}
	c.frames = append(c.frames, nil)
}

func (c *flatCache) Pop() {
	top := len(c.frames) - 1
	clear(c.frames[top])
	c.frames[top] = c.frames[top][:0]
	c.frames = c.frames[:top]
}

func (c *flatCache) Get(ref ast.Ref) (*ast.Term, bool) {
	f := c.frames[len(c.frames)-1]
	for i := range f {
		if f[i].ref.Equal(ref) {
			return f[i].val, f[i].val == nil
		}
	}
	return nil, false
}

func (c *flatCache) Put(ref ast.Ref, value *ast.Term) {
	top := len(c.frames) - 1
	f := c.frames[top]
	for i := range f {
		if f[i].ref.Equal(ref) {
			f[i].val = value
			return
		}
	}
	start := len(c.arena)
	c.arena = append(c.arena, ref...)
	c.frames[top] = append(f, cacheEntry{c.arena[start:len(c.arena):len(c.arena)], value})
}

func (c *flatCache) Keys() []ast.Ref {
	f := c.frames[len(c.frames)-1]
	out := make([]ast.Ref, 0, len(f))
	for _, e := range f {
		if e.val != nil {
			out = append(out, e.ref)
		}
	}
	return out
}

// noBaseCache: the snapshot has no base documents (everything is in the module).
type noBaseCache struct{}

func (noBaseCache) Get(ast.Ref) ast.Value  { return nil }
func (noBaseCache) Put(ast.Ref, ast.Value) {}
