package deadline_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/streamgate/streamgate/services/socket/internal/deadline"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type key struct{}

func TestDeadlineIsAValue(t *testing.T) {
	t.Parallel()
	at := time.Now().Add(time.Hour)
	ctx, cancel := deadline.New(context.WithValue(context.Background(), key{}, "v"), at)
	defer cancel()
	if d, ok := ctx.Deadline(); !ok || !d.Equal(at) {
		t.Fatalf("Deadline() = %v, %v; want %v, true", d, ok, at)
	}
	if ctx.Value(key{}) != "v" {
		t.Fatal("the parent's value is lost")
	}
	if err := ctx.Err(); err != nil {
		t.Fatalf("Err() = %v before the deadline", err)
	}
}

func TestParentsEarlierDeadlineWins(t *testing.T) {
	t.Parallel()
	early := time.Now().Add(time.Minute)
	parent, pcancel := context.WithDeadline(context.Background(), early)
	defer pcancel()
	ctx, cancel := deadline.New(parent, time.Now().Add(time.Hour))
	defer cancel()
	if d, _ := ctx.Deadline(); !d.Equal(early) {
		t.Fatalf("Deadline() = %v; want the parent's %v", d, early)
	}
	none, cancel2 := deadline.New(context.Background(), time.Time{})
	defer cancel2()
	if _, ok := none.Deadline(); ok {
		t.Fatal("a zero deadline reports one")
	}
}

func TestErrReadsTheClockWithoutDone(t *testing.T) {
	t.Parallel()
	ctx, cancel := deadline.New(context.Background(), time.Now().Add(-time.Millisecond))
	defer cancel()
	if err := ctx.Err(); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Err() = %v past the deadline; want DeadlineExceeded", err)
	}
	cancel()
	if err := ctx.Err(); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Err() = %v after cancel; want it to stay DeadlineExceeded", err)
	}
	select {
	case <-ctx.Done():
	default:
		t.Fatal("Done is open though Err is not nil")
	}
}

func TestDoneClosesAtTheDeadline(t *testing.T) {
	t.Parallel()
	ctx, cancel := deadline.New(context.Background(), time.Now().Add(20*time.Millisecond))
	defer cancel()
	<-ctx.Done()
	if err := ctx.Err(); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Err() = %v; want DeadlineExceeded", err)
	}
}

func TestDoneClosesOnCancel(t *testing.T) {
	t.Parallel()
	for _, asked := range []bool{false, true} {
		ctx, cancel := deadline.New(context.Background(), time.Now().Add(time.Hour))
		var done <-chan struct{}
		if asked {
			done = ctx.Done()
		}
		cancel()
		if !asked {
			done = ctx.Done()
		}
		<-done
		if err := ctx.Err(); !errors.Is(err, context.Canceled) {
			t.Fatalf("Done asked before cancel %v: Err() = %v; want Canceled", asked, err)
		}
	}
}

func TestDoneClosesWhenTheParentEnds(t *testing.T) {
	t.Parallel()
	for _, asked := range []bool{false, true} {
		parent, pcancel := context.WithCancel(context.Background())
		ctx, cancel := deadline.New(parent, time.Time{})
		var done <-chan struct{}
		if asked {
			done = ctx.Done()
		}
		pcancel()
		if !asked {
			if err := ctx.Err(); !errors.Is(err, context.Canceled) {
				t.Fatalf("Err() = %v once the parent ended; want Canceled", err)
			}
			done = ctx.Done()
		}
		<-done
		cancel()
	}
}

func TestDerivedContextEndsWithIt(t *testing.T) {
	t.Parallel()
	ctx, cancel := deadline.New(context.Background(), time.Now().Add(time.Hour))
	child, ccancel := context.WithCancel(ctx)
	defer ccancel()
	stopped := make(chan struct{})
	stop := context.AfterFunc(ctx, func() { close(stopped) })
	defer stop()
	cancel()
	<-child.Done()
	<-stopped
	if err := context.Cause(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Cause() = %v; want Canceled", err)
	}
}

func TestWaitWithoutDone(t *testing.T) {
	t.Parallel()
	parent, pcancel := context.WithCancel(context.Background())
	defer pcancel()
	ctx, cancel := deadline.New(parent, time.Now().Add(time.Hour))
	cancelled, parentDone := ctx.Wait()
	if parentDone != parent.Done() {
		t.Fatal("Wait does not return the parent's Done")
	}
	select {
	case <-cancelled:
		t.Fatal("cancelled is closed before cancel")
	default:
	}
	cancel()
	<-cancelled
	if err := ctx.Err(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Err() = %v; want Canceled", err)
	}

	// Cancelled before Wait: closed at once.
	ctx2, cancel2 := deadline.New(parent, time.Now().Add(time.Hour))
	cancel2()
	cancelled, _ = ctx2.Wait()
	<-cancelled

	// Done asked before Wait: Wait is Done.
	ctx3, cancel3 := deadline.New(parent, time.Now().Add(time.Hour))
	defer cancel3()
	done := ctx3.Done()
	if cancelled, _ = ctx3.Wait(); cancelled != done {
		t.Fatal("Wait after Done does not return Done")
	}
}

func TestWaitThenDoneStillCancels(t *testing.T) {
	t.Parallel()
	ctx, cancel := deadline.New(context.Background(), time.Now().Add(time.Hour))
	cancelled, _ := ctx.Wait()
	done := ctx.Done()
	cancel()
	<-cancelled
	<-done
}
