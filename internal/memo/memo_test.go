package memo_test

import (
	"strconv"
	"sync"
	"testing"

	"github.com/streamgate/streamgate/internal/memo"
)

// A Map answers what was added, and past its limit adds nothing more.
func TestMapKeepsUpToItsLimit(t *testing.T) {
	t.Parallel()
	var m memo.Map[int, string]
	if _, ok := m.Get(1); ok {
		t.Fatal("an empty Map answered")
	}
	for i := range memo.Limit + 10 {
		m.Add(i, strconv.Itoa(i))
	}
	if v, ok := m.Get(7); !ok || v != "7" {
		t.Fatalf("Get(7) = %q, %v", v, ok)
	}
	if _, ok := m.Get(memo.Limit); ok {
		t.Fatalf("the Map kept more than %d values", memo.Limit)
	}
}

// Adds and lookups at once (run with -race) lose nothing under the limit.
func TestMapConcurrently(t *testing.T) {
	t.Parallel()
	var m memo.Map[int, int]
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 100 {
				k := g*100 + i
				m.Add(k, k)
				if v, ok := m.Get(k); !ok || v != k {
					t.Errorf("Get(%d) = %d, %v", k, v, ok)
					return
				}
			}
		})
	}
	wg.Wait()
}
