package kubeinject

import (
	"runtime"
	"strings"
	"testing"

	"github.com/meshguard/meshguard/injector/config"
)

// TestInjectListCostsAsDocuments: a List costs about what its items cost as
// separate documents. Encoding the whole List in one yaml.Marshal kept every
// emitter event: 300 pods allocated 2.5 times the documents' cost, 3,000 five
// times (4 GB), 30,000 (a 3 MB List) took 14 GB of memory.
func TestInjectListCostsAsDocuments(t *testing.T) {
	const n = 300
	item := `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a"},"spec":{"containers":[{"name":"a","image":"a"}]}}`
	docs := strings.Repeat(item+"\n---\n", n)
	list := `{"apiVersion":"v1","kind":"List","items":[` + strings.Repeat(item+",", n-1) + item + "]}"
	allocated := func(in string) uint64 {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		if _, err := InjectData([]byte(in), config.Default()); err != nil {
			t.Fatal(err)
		}
		runtime.ReadMemStats(&after)
		return after.TotalAlloc - before.TotalAlloc
	}
	d, l := allocated(docs), allocated(list)
	if l > d*3/2 {
		t.Errorf("a List of %d pods allocated %d bytes, its items as documents %d: want at most 1.5 times", n, l, d)
	}
}
