package asyncwriter_test

import (
	"bytes"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/streamgate/streamgate/internal/asyncwriter"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// lockedBuffer is a destination that records what reached it and how
// many writes did.
type lockedBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	writes  int
	gate    chan struct{} // when not nil, each write waits for a receive from it
	entered chan struct{} // when not nil, told (without blocking) of each write as it begins
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	if b.entered != nil {
		select {
		case b.entered <- struct{}{}:
		default:
		}
	}
	if b.gate != nil {
		<-b.gate
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.writes++
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestEveryLineOnceInOrder: lines written by many goroutines all reach
// the destination, whole, each writer's in its order, fewer writes than
// lines once they pile up, and Close leaves no goroutine behind.
func TestEveryLineOnceInOrder(t *testing.T) {
	dst := &lockedBuffer{}
	w := asyncwriter.New(dst, 0)
	const writers, lines = 8, 2000
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for i := range lines {
				fmt.Fprintf(w, "g%d line %d\n", g, i)
			}
		})
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	next := make([]int, writers)
	got := strings.Split(strings.TrimSuffix(dst.String(), "\n"), "\n")
	for _, line := range got {
		var g, i int
		if _, err := fmt.Sscanf(line, "g%d line %d", &g, &i); err != nil {
			t.Fatalf("line %q is not whole: %v", line, err)
		}
		if i != next[g] {
			t.Fatalf("writer %d: line %d after %d", g, i, next[g]-1)
		}
		next[g]++
	}
	if len(got) != writers*lines || w.Dropped() != 0 {
		t.Fatalf("%d lines arrived, %d dropped; want %d and 0", len(got), w.Dropped(), writers*lines)
	}
	if dst.writes >= writers*lines {
		t.Errorf("%d writes reached the destination for %d lines: want them gathered", dst.writes, writers*lines)
	}
}

// TestStuckDestinationDropsWholeLines: while the destination takes
// nothing, writes return at once; past the limit they are dropped whole
// and counted; what was kept arrives once the destination moves.
func TestStuckDestinationDropsWholeLines(t *testing.T) {
	dst := &lockedBuffer{gate: make(chan struct{}), entered: make(chan struct{}, 1)}
	w := asyncwriter.New(dst, 100)
	line := []byte("0123456789012345678\n") // 20 bytes
	_, _ = w.Write(line)
	<-dst.entered // the goroutine holds the first line in the destination
	for i := range 10 {
		if n, err := w.Write(line); n != len(line) || err != nil {
			t.Fatalf("write %d: %d, %v", i, n, err)
		}
	}
	if d := w.Dropped(); d != 5 {
		t.Fatalf("%d writes dropped: want 5 (5 × 20 bytes fill the limit of 100)", d)
	}
	close(dst.gate) // the destination moves again
	w.Flush()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got := dst.String()
	if len(got)%len(line) != 0 || strings.Count(got, string(line)) != len(got)/len(line) {
		t.Fatalf("a line was cut: %q", got)
	}
	if n := len(got) / len(line); n != 6 {
		t.Fatalf("%d lines arrived: want the first and the 5 that fit the limit", n)
	}
}

// TestFlushAndWritesAfterClose: Flush returns once earlier writes
// arrived; after Close writes go straight through.
func TestFlushAndWritesAfterClose(t *testing.T) {
	dst := &lockedBuffer{}
	w := asyncwriter.New(dst, 0)
	_, _ = w.Write([]byte("a\n"))
	w.Flush()
	if dst.String() != "a\n" {
		t.Fatalf("after Flush: %q", dst.String())
	}
	_ = w.Close()
	_ = w.Close()
	_, _ = w.Write([]byte("b\n"))
	if dst.String() != "a\nb\n" {
		t.Fatalf("after Close: %q", dst.String())
	}
}

// TestLinesGatherIntoFewWrites: lines written one at a time, with the
// goroutine free to run between them, reach the destination in far fewer
// writes than lines (they gather for Linger), and Flush writes them out
// without waiting Linger out.
func TestLinesGatherIntoFewWrites(t *testing.T) {
	dst := &lockedBuffer{}
	w := asyncwriter.New(dst, 0)
	defer w.Close()
	const lines = 1000
	for i := range lines {
		_, _ = fmt.Fprintf(w, "line %d\n", i)
		runtime.Gosched() // the goroutine may run after every line, as on one busy CPU
	}
	w.Flush()
	if got := strings.Count(dst.String(), "\n"); got != lines {
		t.Fatalf("%d lines reached the destination, want %d", got, lines)
	}
	dst.mu.Lock()
	writes := dst.writes
	dst.mu.Unlock()
	if writes > lines/10 {
		t.Fatalf("%d lines took %d writes; want them gathered (at most %d)", lines, writes, lines/10)
	}
	t.Logf("%d lines in %d writes", lines, writes)
}

// TestLingerAllocatesNothing: a batch that waits out Linger, from the
// write of its line to its write out, allocates nothing once the buffers
// are there (the goroutine's timer is made once, not per batch).
func TestLingerAllocatesNothing(t *testing.T) {
	dst := &lockedBuffer{entered: make(chan struct{}, 1)}
	w := asyncwriter.New(dst, 0)
	defer w.Close()
	line := []byte("a line\n")
	allocs := testing.AllocsPerRun(20, func() {
		_, _ = w.Write(line)
		<-dst.entered
	})
	if allocs > 0 {
		t.Fatalf("a lingering batch allocates %.0f times", allocs)
	}
}
