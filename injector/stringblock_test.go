package injector

import (
	"strconv"
	"strings"
	"testing"
)

// TestStringBlock: the strings of a block are what concatenation and
// strconv give, whether or not grow sized the buffer for all of them.
func TestStringBlock(t *testing.T) {
	for _, size := range []int{0, 4, 256} {
		var b stringBlock
		b.grow(size)
		long := strings.Repeat("x", 300)
		i := b.str("--a=", "1")
		j := b.int(-1337)
		k := b.str(long, "y")
		l := b.int(15001)
		m := b.str("", "")
		got := []string{b.get(i), b.get(j), b.get(k), b.get(l), b.get(m)}
		want := []string{"--a=1", strconv.Itoa(-1337), long + "y", "15001", ""}
		for n := range want {
			if got[n] != want[n] {
				t.Errorf("grow(%d): string %d is %q, want %q", size, n, got[n], want[n])
			}
		}
	}
}
