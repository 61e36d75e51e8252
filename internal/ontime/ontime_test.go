package ontime

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestCreditIgnoresLateTicks(t *testing.T) {
	cases := []struct {
		name  string
		ticks []time.Duration // time between ticks
		spent bool
	}{
		{"on time, under budget", []time.Duration{100, 100, 100}, false},
		{"on time, budget spent", []time.Duration{100, 100, 100, 100, 100, 100, 100, 100, 100, 100}, true},
		{"starved: a 10s gap counts two steps", []time.Duration{100, 10_000, 100}, false},
		{"clock stepped back counts nothing", []time.Duration{-5_000, 100}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := &watch{budget: time.Second, step: 100 * time.Millisecond}
			spent := false
			for _, ms := range tc.ticks {
				spent = w.credit(ms * time.Millisecond)
			}
			if spent != tc.spent {
				t.Fatalf("spent %v after %v (watched %v), want %v", spent, tc.ticks, w.watched, tc.spent)
			}
		})
	}
}

func TestWithTimeoutEnds(t *testing.T) {
	ctx, cancel := WithTimeout(context.Background(), 50*time.Millisecond, time.Minute)
	defer cancel()
	<-ctx.Done()
	if !errors.Is(context.Cause(ctx), ErrTimeout) {
		t.Fatalf("cause %v, want ErrTimeout", context.Cause(ctx))
	}
}

func TestWithTimeoutHardLimit(t *testing.T) {
	// A budget no ticker reaches before the hard limit: the limit ends it.
	ctx, cancel := WithTimeout(context.Background(), time.Hour, 20*time.Millisecond)
	defer cancel()
	<-ctx.Done()
	if !errors.Is(context.Cause(ctx), ErrTimeout) {
		t.Fatalf("cause %v, want ErrTimeout", context.Cause(ctx))
	}
}

func TestCancelReleases(t *testing.T) {
	parent, stop := context.WithCancel(context.Background())
	ctx, cancel := WithTimeout(parent, time.Hour, time.Hour)
	defer cancel()
	stop()
	<-ctx.Done()
	if errors.Is(context.Cause(ctx), ErrTimeout) {
		t.Fatal("a cancelled parent reported as a timeout")
	}
}
