package workers_test

import (
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/streamgate/streamgate/internal/workers"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestPoolRunsEveryTaskAndStops(t *testing.T) {
	stop := make(chan struct{})
	done := make(chan int, 100)
	p := workers.New(func(n *int) { done <- *n }, stop)
	sum := 0
	for i := 1; i <= 100; i++ {
		p.Go(i)
		sum -= i
	}
	for range 100 {
		select {
		case n := <-done:
			sum += n
		case <-time.After(10 * time.Second):
			t.Fatal("a task did not run")
		}
	}
	if sum != 0 {
		t.Fatalf("tasks ran with the wrong values (sum off by %d)", sum)
	}
	close(stop)
	p.Wait() // goleak checks that the workers exited
}

func TestPoolReusesIdleWorkers(t *testing.T) {
	stop := make(chan struct{})
	ids := make(chan uint64, 1)
	p := workers.New(func(*struct{}) { ids <- goroutineID(t) }, stop)
	// One task at a time: a fresh goroutine per task would give 200
	// goroutines; idle workers take most of them (Go only starts a worker
	// when none is waiting yet, which a busy machine makes happen at times).
	const n = 200
	seen := map[uint64]bool{}
	for range n {
		p.Go(struct{}{})
		select {
		case id := <-ids:
			seen[id] = true
		case <-time.After(10 * time.Second):
			t.Fatal("a task did not run")
		}
	}
	close(stop)
	p.Wait()
	if len(seen) > n/4 {
		t.Fatalf("%d tasks ran on %d goroutines: idle workers were not reused", n, len(seen))
	}
}

// goroutineID is the running goroutine's id, from its stack trace.
func goroutineID(t *testing.T) uint64 {
	buf := make([]byte, 64)
	buf = buf[:runtime.Stack(buf, false)]
	f := strings.Fields(strings.TrimPrefix(string(buf), "goroutine "))
	id, err := strconv.ParseUint(f[0], 10, 64)
	if err != nil {
		t.Error(err)
	}
	return id
}
